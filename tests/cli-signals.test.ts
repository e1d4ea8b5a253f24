// SIGTERM (Slurm time limits, Kubernetes, most launchers) and SIGINT (Ctrl-C) stop `wgpt train` after the step in
// progress with a checkpoint, and the exit status says which signal it was (143, 130). A repeated signal while it
// stops is only noted; a third one ends the process at once. Everything waits on output lines, never on time.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ShardWriter } from '@wgpt/data';
import { loadCheckpoint } from '@wgpt/gpt2';

const ROOT = new URL('..', import.meta.url).pathname;

/** A child process whose output is collected, with waits for a line on stdout or stderr. */
class Child {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: (() => void)[] = [];

  constructor(args: string[]) {
    this.proc = spawn('node', args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const wake = () => this.waiters.forEach((w) => w());
    this.proc.stdout!.on('data', (d: Buffer) => ((this.stdout += d), wake()));
    this.proc.stderr!.on('data', (d: Buffer) => ((this.stderr += d), wake()));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => (resolve({ code, signal }), wake())));
  }

  /** Resolves once `re` matches the stream's text; fails if the process ends first. */
  waitFor(stream: 'stdout' | 'stderr', re: RegExp): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (re.test(this[stream])) {
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve();
        } else if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
          reject(new Error(`process ended before ${re} on ${stream}:\n${this.stdout}\n${this.stderr}`));
        }
      };
      this.waiters.push(check);
      check();
    });
  }
}

describe('stopOnSignals', () => {
  it('notes the first signal, says so on a second, and a third ends the process by that signal', async () => {
    const c = new Child(['scripts/run-ts.mjs', 'tests/fixtures/stop-signals.ts']);
    await c.waitFor('stdout', /^ready\n/);
    c.proc.kill('SIGTERM');
    await c.waitFor('stderr', /^\nwgpt: SIGTERM: stopping the test work \(exit status 143\)\n$/);
    c.proc.stdin!.write('state\n');
    await c.waitFor('stdout', /\{.*\}\n/);
    expect(JSON.parse(c.stdout.split('\n')[1]!)).toEqual({ signal: 'SIGTERM', exitCode: 143 });
    c.proc.kill('SIGINT');
    await c.waitFor(
      'stderr',
      /\nwgpt: SIGINT again: already stopping, .* a third signal ends it at once, without saving\n/,
    );
    c.proc.kill('SIGINT');
    expect(await c.exited).toEqual({ code: null, signal: 'SIGINT' });
  });
});

describe('wgpt train stopped by a signal', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wgpt-signal-'));
  // The learnable stream of tests/train.test.ts, on a model of one layer: steps of a few tens of milliseconds.
  for (const split of ['train', 'val'] as const) {
    const w = new ShardWriter({ dir, prefix: 's', split, part: 0, nVocab: 61, shardTokens: 400 });
    for (let d = 0; d < (split === 'train' ? 60 : 10); d++) {
      const stride = 1 + (d % 3);
      w.addDocument([60, ...Array.from({ length: 15 }, (_, i) => (d + i * stride) % 60)]);
    }
    w.close();
  }
  const quiet = ['--val-every', '1000', '--sample-every', '0'];
  const model = [
    '--depth',
    '1',
    '--channels',
    '16',
    '--heads',
    '2',
    '--vocab',
    '61',
    '--context',
    '16',
    '-B',
    '2',
    '-T',
    '8',
  ];
  const train = (out: string) =>
    new Child(['scripts/wgpt.mjs', 'train', '--data', dir, '--out', out, ...model, '--steps', '100000', ...quiet]);
  const lastStep = (stdout: string) =>
    Math.max(...[...stdout.matchAll(/^step +(\d+)\/100000 \|/gm)].map((m) => +m[1]!));

  it.each([
    ['SIGTERM', 1, 143],
    ['SIGINT', 2, 130],
  ] as const)('%s x%d: finishes the step, writes a checkpoint and exits %d', async (signal, times, status) => {
    const out = join(dir, `run-${signal}`);
    const c = train(out);
    await c.waitFor('stdout', /^step +3\/100000 \|/m);
    c.proc.kill(signal);
    const notice =
      `\nwgpt: ${signal}: finishing this step, writing a checkpoint, ` + `then exiting \\(exit status ${status}\\)`;
    await c.waitFor('stderr', new RegExp(notice));
    if (times === 2) {
      c.proc.kill(signal);
      await c.waitFor('stderr', new RegExp(`wgpt: ${signal} again: already stopping`));
    }
    expect(await c.exited, c.stderr).toEqual({ code: status, signal: null });
    const step = lastStep(c.stdout);
    expect(step).toBeGreaterThanOrEqual(3);
    expect(c.stdout).toContain(`stopped after step ${step}; resume with the checkpoint ${join(out, 'checkpoint')}\n`);
    // The checkpoint holds the last step that ran, and reads back whole.
    const ckpt = loadCheckpoint(join(out, 'checkpoint'));
    expect(ckpt.state.step).toBe(step);
    expect(ckpt.model.config).toMatchObject({ L: 1, C: 16, NH: 2, V: 61, maxT: 16 });
    expect(c.stderr).not.toMatch(/\n\s+at /);
  });
});

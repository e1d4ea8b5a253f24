import fs from 'node:fs';
import path from 'node:path';
import { Command, type CommanderError } from 'commander';
import { UsageError } from '@wgpt/base';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { register, taskFromEnv } from '../src/cli.ts';
import { htmlBenchmarkFiles } from '../src/corpus.ts';
import { tmpDir } from './helpers.ts';

function program(): Command {
  const p = new Command('wgpt').exitOverride();
  register(p);
  return p;
}
function capture() {
  let out = '', err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
  return { get out() { return out; }, get err() { return err; } };
}
afterEach(() => { vi.restoreAllMocks(); process.exitCode = undefined; });

describe('wgpt data CLI', () => {
  it('task index/count from flags, SLURM, or JOB_COMPLETION_INDEX', () => {
    expect(taskFromEnv(undefined, undefined, {})).toEqual({ taskIndex: 0, taskCount: 1 });
    expect(taskFromEnv(undefined, undefined, { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '8' }))
      .toEqual({ taskIndex: 3, taskCount: 8 });
    expect(taskFromEnv(undefined, 4, { JOB_COMPLETION_INDEX: '2' })).toEqual({ taskIndex: 2, taskCount: 4 });
    expect(taskFromEnv(1, 2, { SLURM_ARRAY_TASK_ID: '3' })).toEqual({ taskIndex: 1, taskCount: 2 });
  });

  it('pack-warc, run with a config file, then inspect and stats', async () => {
    const d = tmpDir();
    const warc = path.join(d, 'p.warc.gz');
    const files = htmlBenchmarkFiles().slice(0, 12);
    let io = capture();
    await program().parseAsync(['node', 'wgpt', 'data', 'pack-warc', '-o', warc, ...files]);
    expect(io.out).toContain('12 records');
    vi.restoreAllMocks();
    const cfg = path.join(d, 'pipeline.json');
    fs.writeFileSync(cfg, JSON.stringify({
      inputs: [warc], output: path.join(d, 'out'), pii: { emailReplacement: '<EMAIL>' }, tokenize: { valFraction: 0.2 },
    }));
    io = capture();
    await program().parseAsync(['node', 'wgpt', 'data', 'run', '--config', cfg, '--tokenizer', 'bytes']);
    expect(io.out).toMatch(/^stage\s+in\s+kept\s+removed/m);
    expect(io.out).toMatch(/^read\s+12\s+12\s+0/m);
    expect(io.out).toMatch(/train: \d+ docs, \d+ tokens in 1 shard\(s\)/);
    expect(io.err).toMatch(/\[data\] process: 12 docs, [\d.]+ docs\/s/);
    const shardDir = path.join(d, 'out', 'shards');
    const shard = path.join(shardDir, fs.readdirSync(shardDir).find((f) => f.includes('_train_'))!);
    vi.restoreAllMocks();
    io = capture();
    await program().parseAsync(['node', 'wgpt', 'data', 'inspect', shard]);
    expect(io.out).toMatch(/magic 20240520 version 1 uint16 \d+ tokens; first: 256 /);
    // a corrupt header: error names the file and the problem, exit code 1
    const bad = path.join(d, 'bad.bin');
    const b = fs.readFileSync(shard); b.writeInt32LE(7, 0); fs.writeFileSync(bad, b);
    vi.restoreAllMocks();
    io = capture();
    await program().parseAsync(['node', 'wgpt', 'data', 'inspect', bad]);
    expect(io.err).toContain(`${bad}: bad magic number 7 in header[0]`);
    expect(process.exitCode).toBe(1);
    vi.restoreAllMocks();
    io = capture();
    await program().parseAsync(['node', 'wgpt', 'data', 'stats', path.join(d, 'out')]);
    expect(io.out).toMatch(/^fineweb_quality/m);
    // re-running resumes: everything is skipped
    vi.restoreAllMocks();
    io = capture();
    await program().parseAsync(['node', 'wgpt', 'data', 'run', '--config', cfg, '--tokenizer', 'bytes']);
    expect(io.err).toMatch(/process: 1 unit\(s\) already done, skipped/);
  });
});

describe('wgpt data run: numeric flags are checked (usage errors, exit code 2, naming the flag)', () => {
  const cases: Array<[string[], string]> = [
    [['--workers', '0'], "option '--workers <n>' argument '0' is invalid. 0 must be at least 1"],
    [['--workers', '2.5'], "option '--workers <n>' argument '2.5' is invalid. not an integer: \"2.5\""],
    [['--task-index', '-1'], "option '--task-index <i>' argument '-1' is invalid. -1 must be at least 0"],
    [['--task-count', '0'], "option '--task-count <k>' argument '0' is invalid. 0 must be at least 1"],
    [['--units', 'x'], "option '--units <n>' argument 'x' is invalid. not an integer: \"x\""],
    [['--val-fraction', '1'], "option '--val-fraction <x>' argument '1' is invalid. 1 must be less than 1"],
    [['--val-fraction', '-0.1'], "option '--val-fraction <x>' argument '-0.1' is invalid. -0.1 must be at least 0"],
    [['--min-language-score', '2'], "option '--min-language-score <x>' argument '2' is invalid. 2 must be at most 1"],
    [['--shard-tokens', '0'], "option '--shard-tokens <n>' argument '0' is invalid. 0 must be at least 1"],
    [['--shard-tokens', String(2 ** 31)], `option '--shard-tokens <n>' argument '${2 ** 31}' is invalid. ` +
      `${2 ** 31} must be at most ${2 ** 31 - 1}`],
    [['--languages', 'en', 'English'], "option '--languages <codes...>' argument 'English' is invalid. " +
      '"English" is not an ISO 639 code'],
    [['--task-index', '3', '--task-count', '2'], 'task index 3 is outside 0..1 for a task count of 2'],
    [['--tokenizer', 'gpt9'], '--tokenizer "gpt9": unknown; use bytes, '],
  ];
  it.each(cases)('%j', async (flags, message) => {
    capture();
    const err = await program().parseAsync(['node', 'wgpt', 'data', 'run', '-o', tmpDir(), ...flags]).then(
      () => null, (e: unknown) => e as Error);
    // Both kinds end `wgpt` with the usage status 2 (packages/cli/src/errors.ts; cli-failures.test.ts runs the CLI).
    const usage = err instanceof UsageError || (err as CommanderError | null)?.code === 'commander.invalidArgument';
    expect(usage, String(err)).toBe(true);
    expect(err!.message).toContain(message);
  });

  it('an environment variable that is not a task number is named', () => {
    expect(() => taskFromEnv(undefined, undefined, { SLURM_ARRAY_TASK_ID: 'x' }))
      .toThrow('$SLURM_ARRAY_TASK_ID="x": expected a whole number ≥ 0');
    expect(() => taskFromEnv(undefined, undefined, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '0' }))
      .toThrow('$SLURM_ARRAY_TASK_COUNT="0": expected a whole number ≥ 1');
  });
});

describe('tokenizer selection', () => {
  it("'bytes' is built in; other names go to @wgpt/tokenizer and fail clearly while it has no getEncoding",
    async () => {
    const { pickTokenizer } = await import('../src/cli.ts');
    expect((await pickTokenizer('bytes')).nVocab).toBe(257);
    const mod = (await import('@wgpt/tokenizer')) as unknown as Record<string, unknown>;
    if (typeof mod.getEncoding !== 'function') {
      await expect(pickTokenizer('r50k_base')).rejects.toThrow(/no getEncoding yet; use --tokenizer bytes/);
    }
    else expect((await pickTokenizer('r50k_base')).eotToken).toBe(50256);
  });
});

// The `wgpt` binary as users run it (node scripts/wgpt.mjs ...), in a child process.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ShardWriter } from '@wgpt/data';
import { getEncoding } from '@wgpt/tokenizer';

const ROOT = new URL('..', import.meta.url).pathname;
const run = promisify(execFile);

async function wgpt(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['scripts/wgpt.mjs', ...args], { cwd: ROOT, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** Runs a bash command line in the repository (for pipes); the exit statuses of its pipeline go to stderr. */
async function sh(line: string): Promise<{ stdout: string; stderr: string }> {
  const script = `${line}; echo "status \${PIPESTATUS[*]}" >&2`;
  return run('bash', ['-c', script], { cwd: ROOT, timeout: 120_000, maxBuffer: 64 << 20 });
}

describe('wgpt CLI', () => {
  it('--help lists the subcommands', async () => {
    const r = await wgpt('--help');
    expect(r.code).toBe(0);
    for (const c of ['gpus', 'selfcheck', 'demo', 'bench']) expect(r.stdout).toContain(c);
  });

  it('--version prints the version of the root package.json; usage errors exit 2 with one line', async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    expect(await wgpt('--version')).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    const none = await wgpt();
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^Usage: wgpt /);
    expect(await wgpt('eval', '--checkpoint', 'x', '--tokens', 'y', '-B', '0')).toEqual({
      code: 2,
      stdout: '',
      stderr: "wgpt: option '-B, --batch <n>' argument '0' is invalid. 0 must be at least 1\n",
    });
  });

  it('gpus --json lists SwiftShader with its limits', async () => {
    const r = await wgpt('gpus', '--json');
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as { name: string; software: boolean; maxStorageBufferBindingSize: number }[];
    const ss = list.find((a) => /swiftshader/i.test(a.name));
    expect(ss?.software).toBe(true);
    expect(ss!.maxStorageBufferBindingSize).toBeGreaterThan(128 << 20);
  });

  it('an unknown --adapter exits 1 with the list of adapters, no stack trace', async () => {
    const r = await wgpt('--adapter', 'no-such-gpu', 'selfcheck');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/wgpt: No adapter named "no-such-gpu"\. Adapters:\n.*SwiftShader/);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  it('selfcheck trains the MLP and the loss at least halves', async () => {
    const r = await wgpt('selfcheck', '--steps', '60', '--hidden', '32');
    expect(r.stdout).toMatch(/PASS: loss fell from [\d.]+ to [\d.]+/);
    expect(r.code).toBe(0);
    const losses = [...r.stdout.matchAll(/loss (\d+\.\d+)/g)].map((m) => Number(m[1]));
    expect(losses.length).toBeGreaterThanOrEqual(3);
    expect(losses.at(-1)!).toBeLessThan(losses[0]! / 2);
  });

  it('sample gives the same greedy ids with and without --no-kv-cache', async () => {
    const args = [
      'sample',
      '--checkpoint',
      'tests/fixtures/gpt2-tiny/model.bin',
      '--prompt-ids',
      '5,9,2',
      '--max-tokens',
      '20',
      '--temperature',
      '0',
      '--stop',
      '61',
      '--json',
    ];
    const [a, b] = [await wgpt(...args), await wgpt(...args, '--no-kv-cache')];
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const ids = (r: { stdout: string }) => (JSON.parse(r.stdout.trim().split('\n').pop()!) as { ids: number[] }).ids;
    expect(ids(a)).toHaveLength(20);
    expect(ids(a)).toEqual(ids(b));
  });

  it('bench --quick prints the table and writes JSON with passing checks', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'wgpt-bench-')), 'b.json');
    const r = await wgpt('bench', '--quick', '--out', out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\| suite \| name \| shape \| median ms \| rate \| of baseline \| check \|/);
    const j = JSON.parse(readFileSync(out, 'utf8')) as { adapter: string; rows: { name: string; check: string }[] };
    expect(j.adapter).toMatch(/SwiftShader/);
    expect(j.rows.some((r) => r.name.startsWith('matmul'))).toBe(true);
    expect(j.rows.every((r) => r.check !== 'fail')).toBe(true);
  });
});

describe('output through pipes', () => {
  // Over 512 KiB of ids: many times a pipe's 64 KiB buffer.
  const dir = mkdtempSync(join(tmpdir(), 'wgpt-pipe-'));
  const file = join(dir, 'big.txt');
  const text = Array.from({ length: 20_000 }, (_, i) => `line ${i}: the fox ${(i * 7919) % 1000} jumps`).join('\n');
  writeFileSync(file, text);
  const ids = getEncoding('r50k_base').encodeOrdinary(text);
  const plain = `${ids.join(' ')}\n`;
  const json = `${JSON.stringify(ids)}\n`;

  it('tokenize writes all of a large output into a pipe: ids, --json, --decode', async () => {
    expect(plain.length).toBeGreaterThan(512 << 10);
    const a = await sh(`node scripts/wgpt.mjs tokenize -e r50k_base --file ${file} | cat`);
    expect(a.stderr).toBe('status 0 0\n');
    expect(a.stdout.length).toBe(plain.length);
    expect(a.stdout).toBe(plain);
    const b = await sh(`node scripts/wgpt.mjs tokenize -e r50k_base --file ${file} --json | cat`);
    expect(b.stderr).toBe('status 0 0\n');
    expect(b.stdout).toBe(json);
    const idsFile = join(dir, 'ids.txt');
    writeFileSync(idsFile, plain);
    const c = await sh(`node scripts/wgpt.mjs tokenize -e r50k_base --decode --file ${idsFile} | cat`);
    expect(c.stderr).toBe('status 0 0\n');
    expect(c.stdout).toBe(`${text}\n`);
  });

  it('a reader that stops early ends wgpt quietly with SIGPIPE (141), tokenize and a streamed sample', async () => {
    const a = await sh(`node scripts/wgpt.mjs tokenize -e r50k_base --file ${file} | head -c 1000`);
    expect(a.stdout).toBe(plain.slice(0, 1000));
    expect(a.stderr).toBe('status 141 0\n');
    // The sample streams token by token with the GPU busy; the text is ASCII (ids below 61 of r50k_base).
    const model = join(ROOT, 'tests/fixtures/gpt2-tiny/model.bin');
    const sample = `sample --checkpoint ${model} --prompt-ids 5 --max-tokens 5000 --stop 9999`;
    const b = await sh(`node scripts/wgpt.mjs ${sample} | head -c 10`);
    expect(b.stdout).toHaveLength(10);
    expect(b.stderr).toBe('status 141 0\n');
  });
});

describe('wgpt sample and eval on the tiny GPT-2 fixture', () => {
  const model = join(ROOT, 'tests/fixtures/gpt2-tiny/model.bin');

  it('sample --json: greedy is deterministic, different seeds differ at temperature 1', async () => {
    const run = async (...extra: string[]) => {
      const r = await wgpt(
        'sample',
        '--checkpoint',
        model,
        '--prompt-ids',
        '3,10,17',
        '--max-tokens',
        '12',
        '--stop',
        '9999',
        '--json',
        ...extra,
      );
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { prompt: number[]; ids: number[]; text: string };
    };
    const g1 = await run('--temperature', '0');
    const g2 = await run('--temperature', '0', '--seed', '99');
    expect(g1.prompt).toEqual([3, 10, 17]);
    expect(g1.ids.length).toBe(12);
    expect(g1.ids.every((t) => t >= 0 && t < 61)).toBe(true);
    expect(g2.ids).toEqual(g1.ids);
    const s1 = await run('--seed', '1');
    const s2 = await run('--seed', '2');
    const s1again = await run('--seed', '1');
    expect(s1again.ids).toEqual(s1.ids);
    expect(s2.ids).not.toEqual(s1.ids);
  });

  it('sample rejects a prompt token outside the vocabulary', async () => {
    const r = await wgpt('sample', '--checkpoint', model, '--prompt-ids', '5,61', '--max-tokens', '2');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('wgpt: --prompt-ids: prompt token 61 is outside the vocabulary [0, 61) of the model\n');
  });

  it('eval prints the mean loss of a shard as JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-eval-'));
    const w = new ShardWriter({ dir, prefix: 'e', split: 'val', part: 0, nVocab: 61 });
    w.addDocument(Array.from({ length: 200 }, (_, i) => (i * 7) % 61));
    const [shard] = w.close();
    const r = await wgpt('eval', '--checkpoint', model, '--tokens', join(dir, shard!.file), '-B', '2', '-T', '8');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { loss: number; batches: number };
    expect(j.batches).toBe(Math.floor(199 / 16));
    // A freshly initialised model predicts about uniformly: loss ≈ ln 61 = 4.11.
    expect(Math.abs(j.loss - Math.log(61))).toBeLessThan(0.1);
  });
});

// `wgpt train / sample / eval` as users run them: a run killed with SIGKILL twice in checkpoint writing resumes
// exactly, an existing run folder is not overwritten by accident, a changed setting is refused on resume, and
// tokenizers and shards that do not fit the model fail before the first step with one line.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ShardWriter } from '@wgpt/data';

const ROOT = new URL('..', import.meta.url).pathname;
const run = promisify(execFile);

interface Ran {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

async function wgpt(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  try {
    const opts = { cwd: ROOT, timeout: 120_000, env: { ...process.env, ...env } };
    const { stdout, stderr } = await run('node', ['scripts/wgpt.mjs', ...args], opts);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as Ran;
    return { code: err.code, signal: err.signal, stdout: err.stdout, stderr: err.stderr };
  }
}

const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
let data: string;
beforeAll(() => {
  data = tmp('wgpt-cli-data-');
  for (const split of ['train', 'val'] as const) {
    const w = new ShardWriter({ dir: data, prefix: 't', split, part: 0, nVocab: 61, shardTokens: 400 });
    for (let d = 0; d < (split === 'train' ? 60 : 10); d++) {
      w.addDocument([60, ...Array.from({ length: 15 }, (_, i) => (d + i * (1 + (d % 3))) % 60)]);
    }
    w.close();
  }
});

const model = ['--depth', '1', '--channels', '16', '--heads', '2', '--vocab', '61', '--context', '16'];
const trainArgs = (out: string, ...extra: string[]) => [
  ...['train', '--data', data, ...model, '-B', '2', '-T', '8', '--steps', '3'],
  ...['--sample-every', '0', '--checkpoint-every', '1', '--out', out, ...extra],
];
const losses = (out: string) =>
  readFileSync(join(out, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; loss: number; gradNorm: number })
    .map((e) => [e.step, e.loss, e.gradNorm]);

describe('wgpt train: crashes, run folders, resume checks', () => {
  let reference: string;
  beforeAll(async () => {
    reference = tmp('wgpt-cli-ref-');
    const r = await wgpt(trainArgs(reference));
    expect(r.code, r.stderr).toBe(0);
  });

  it('killed (SIGKILL) inside a checkpoint swap, then again in the resumed run, it resumes exactly', async () => {
    const out = tmp('wgpt-cli-kill-');
    // Fault point 7: the second checkpoint's swap, after `checkpoint` became `checkpoint.old` (see checkpoint.ts).
    const a = await wgpt(trainArgs(out), { WGPT_TEST_KILL_AT: '7' });
    expect(a.signal).toBe('SIGKILL');
    const folders = readdirSync(out).filter((f) => f.startsWith('checkpoint'));
    expect(folders.map((f) => f.replace(/tmp-.*/, 'tmp-'))).toEqual(['checkpoint.old', 'checkpoint.tmp-']);
    // Sampling the run folder's checkpoint works meanwhile (the newest whole model.bin beside it).
    const s = await wgpt([
      'sample',
      '--checkpoint',
      join(out, 'checkpoint'),
      '--prompt-ids',
      '1,2',
      '--max-tokens',
      '2',
    ]);
    expect(s.code, s.stderr).toBe(0);
    // The resumed run: 1 rewrite of the log, then its checkpoint's files; killed before its folder is in place.
    const b = await wgpt(trainArgs(out, '--resume', join(out, 'checkpoint')), { WGPT_TEST_KILL_AT: '4' });
    expect(b.signal).toBe('SIGKILL');
    expect(b.stdout).toMatch(/resuming from .*checkpoint\.tmp-\d+-\w+, the newest complete checkpoint/);
    const c = await wgpt(trainArgs(out, '--resume', join(out, 'checkpoint')));
    expect(c.code, c.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['checkpoint', 'log.jsonl', 'loss.svg']);
    expect(losses(out)).toEqual(losses(reference));
  });

  it('refuses an --out folder that holds a run unless --resume or --overwrite, and keeps its log', async () => {
    const out = tmp('wgpt-cli-exists-');
    cpSync(reference, out, { recursive: true });
    const before = readFileSync(join(out, 'log.jsonl'));
    const r = await wgpt(trainArgs(out));
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `wgpt: ${out} already holds a training run (checkpoint, log.jsonl, loss.svg); ` +
        `continue it with --resume ${out}/checkpoint, or pass --overwrite to start over (deletes them)`,
    );
    expect(readFileSync(join(out, 'log.jsonl')).equals(before)).toBe(true);
    const o = await wgpt(trainArgs(out, '--overwrite', '--steps', '2'));
    expect(o.code, o.stderr).toBe(0);
    expect(losses(out)).toEqual(
      losses(reference)
        .slice(0, 2)
        .map(([s]) => [s, expect.any(Number), expect.any(Number)]),
    );
  });

  it('refuses a resume with a changed setting, naming old → new, unless --allow-change', async () => {
    const out = tmp('wgpt-cli-change-');
    cpSync(reference, out, { recursive: true });
    const r = await wgpt(
      trainArgs(out, '--resume', join(out, 'checkpoint'), '-B', '1', '--lr', '0.001', '--steps', '4'),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'resuming with other settings would not continue the run exactly: ' +
        '-B 2 → 1; --total-batch 16 → 8; --steps 3 → 4; --lr 0.0006 → 0.001. ' +
        "Give the checkpoint's values, or pass --allow-change to continue with the new ones",
    );
    expect(r.stdout).not.toMatch(/^step /m);
    const a = await wgpt(trainArgs(out, '--resume', join(out, 'checkpoint'), '--steps', '4', '--allow-change'));
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/setting changed on resume \(--allow-change\): --steps 3 → 4/);
    expect(losses(out).map(([s]) => s)).toEqual([1, 2, 3, 4]);
  });
});

describe('tokenizers and shards that do not fit the model', () => {
  it('a tokenizer larger than the model, or without <|endoftext|>, fails before the first step', async () => {
    const out = tmp('wgpt-cli-tok-');
    const big = await wgpt(trainArgs(join(out, 'a'), '--sample-every', '2'));
    expect(big.code).toBe(1);
    expect(big.stderr.trim()).toMatch(
      /^wgpt: tokenizer r50k_base has 50257 tokens, more than the model's vocabulary V=61/,
    );
    expect(big.stdout).not.toMatch(/^step /m);
    // A tokenizer trained without special tokens.
    const text = join(out, 'text.txt');
    writeFileSync(text, 'the cat sat on the mat; the dog sat on the log. '.repeat(20));
    const t = await wgpt(['tokenizer', 'train', '-i', text, '-n', '270', '-o', join(out, 'tok'), '--special', '']);
    expect(t.code, t.stderr).toBe(0);
    const args = [
      ...['train', '--data', data, '--depth', '1', '--channels', '16', '--heads', '2', '--vocab', '320'],
      ...['--context', '16', '-B', '2', '-T', '8', '--steps', '2'],
    ];
    const noEot = await wgpt([
      ...args,
      '--tokenizer',
      join(out, 'tok'),
      '--sample-every',
      '1',
      '--out',
      join(out, 'b'),
    ]);
    expect(noEot.code).toBe(1);
    expect(noEot.stderr.trim()).toMatch(
      new RegExp(
        '^wgpt: tokenizer \\S+tok has no <\\|endoftext\\|> special token ' +
          '\\(it was trained without special tokens\\), and samples',
      ),
    );
    const fixture = 'tests/fixtures/gpt2-tiny/model.bin';
    const s = await wgpt(['sample', '--checkpoint', fixture, '--tokenizer', join(out, 'tok'), '--max-tokens', '2']);
    expect(s.code).toBe(1);
    expect(s.stderr.trim()).toMatch(
      /^wgpt: tokenizer \S+tok has no <\|endoftext\|> special token .*--prompt or --prompt-ids$/,
    );
  });

  it('eval refuses a shard with ids ≥ V and a model whose loss is not finite', async () => {
    const dir = tmp('wgpt-cli-eval-');
    const fixture = join(ROOT, 'tests/fixtures/gpt2-tiny/model.bin');
    for (const bad of [63, 100]) {
      const w = new ShardWriter({ dir, prefix: `bad${bad}`, split: 'val', part: 0, nVocab: 200 });
      w.addDocument(Array.from({ length: 200 }, (_, i) => (i === 50 ? bad : (i * 7) % 61)));
      const [shard] = w.close();
      const r = await wgpt(['eval', '--checkpoint', fixture, '--tokens', join(dir, shard!.file), '-B', '2', '-T', '8']);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(
        `wgpt: ${join(dir, shard!.file)}: token id ${bad} is outside the model's vocabulary V=61 (ids 0..60); ` +
          "the shards were made with a larger tokenizer than this model's: use the model (or --vocab) of that " +
          'tokenizer, or re-tokenize the data',
      );
    }
    const w = new ShardWriter({ dir, prefix: 'good', split: 'val', part: 0, nVocab: 61 });
    w.addDocument(Array.from({ length: 200 }, (_, i) => (i * 7) % 61));
    const [shard] = w.close();
    const nan = readFileSync(fixture);
    nan.writeFloatLE(NaN, 1024 + 4 * 100); // a weight of wte
    writeFileSync(join(dir, 'nan.bin'), nan);
    const r = await wgpt(['eval', '--checkpoint', join(dir, 'nan.bin'), '--tokens', join(dir, shard!.file), '-T', '8']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^wgpt: \S+nan\.bin: the loss on \S+ over \d+ batches is NaN: the model holds NaN/);
  });
});

// `wgpt data run` on bad input, through the real CLI (scripts/wgpt.mjs) in a child process. Every run has a time
// limit, so a run that would never end (the old behaviour of some of these cases) fails the test instead of
// hanging it.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from './helpers.ts';
import { GOOD } from './texts.ts';

const WGPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../scripts/wgpt.mjs');
/** Far above a normal run of these small inputs (seconds); reached only by a run that does not end. */
const LIMIT_MS = 90_000;

interface Result { rc: number | null; signal: NodeJS.Signals | null; out: string; err: string }
function wgpt(args: string[], env: Record<string, string> = {}): Result {
  const r = spawnSync(process.execPath, [WGPT, 'data', ...args], {
    encoding: 'utf8', timeout: LIMIT_MS, killSignal: 'SIGKILL', env: { ...process.env, ...env },
  });
  return { rc: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}
/** The last line on stderr: the error message, which must be one line (no stack trace). */
const lastLine = (r: Result) => r.err.trimEnd().split('\n').at(-1)!;

let d: string;
/** A config with the quality filters and dedup off: any text is kept, and no language model is loaded. */
let keepAll: string;
/** 20 distinct documents, as JSONL. */
let docs: string;
const run = (...args: string[]) => ['run', '--tokenizer', 'bytes', '--config', keepAll, ...args];

beforeAll(() => {
  d = tmpDir();
  keepAll = path.join(d, 'keep-all.json');
  fs.writeFileSync(keepAll, JSON.stringify({
    language: false, gopherRepetition: false, gopherQuality: false, c4: false, fineweb: false, dedup: false,
  }));
  docs = path.join(d, 'docs.jsonl');
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: `doc${i}`, text: `${i}: ${GOOD}` }));
  fs.writeFileSync(docs, lines.join('\n') + '\n');
});

describe('wgpt data run: values that never let a run finish are refused at once', () => {
  it('--shard-tokens 0 is a usage error naming the flag (it used to write empty shards for ever)', () => {
    const out = path.join(d, 'o-st0');
    const r = wgpt([...run('-i', docs, '-o', out, '--shard-tokens', '0')]);
    expect(r.signal).toBeNull();
    expect(r.rc).toBe(2);
    expect(r.err.split('\n')[0])
      .toBe("wgpt: option '--shard-tokens <n>' argument '0' is invalid. 0 must be at least 1");
    expect(fs.existsSync(path.join(out, 'shards'))).toBe(false);
  });

  it('shardTokens 0 in a config file is an error naming the file and the key', () => {
    const cfg = path.join(d, 'st0.json');
    fs.writeFileSync(cfg, JSON.stringify({ tokenize: { shardTokens: 0 } }));
    const r = wgpt(['run', '--tokenizer', 'bytes', '--config', cfg, '-i', docs, '-o', path.join(d, 'o-st0b')]);
    expect(r.signal).toBeNull();
    expect(r.rc).toBe(1);
    expect(lastLine(r)).toBe(`wgpt: ${cfg}: tokenize.shardTokens: must be at least 1 (got 0)`);
  });

  it.skipIf(!fs.existsSync('/proc/self'))('an output that cannot be created (/proc/x) fails at once naming it', () => {
    const r = wgpt(run('-i', docs, '-o', '/proc/x'));
    expect(r.signal).toBeNull();
    expect(r.rc).toBe(1);
    expect(lastLine(r)).toBe('wgpt: cannot create or write the output directory /proc/x (ENOENT); ' +
      'choose another path with -o/--output');
  });

  it('an output below a file fails naming it', () => {
    const r = wgpt(run('-i', docs, '-o', path.join(docs, 'sub')));
    expect(r.rc).toBe(1);
    expect(lastLine(r))
      .toBe(`wgpt: cannot create the output directory ${path.join(docs, 'sub')}: ${docs} is not a directory`);
  });

  it('a task index outside the task count, from $SLURM_ARRAY_TASK_ID, is a usage error', () => {
    const env = { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_COUNT: '4' };
    const r = wgpt(run('-i', docs, '-o', path.join(d, 'o-slurm')), env);
    expect(r.rc).toBe(2);
    expect(r.err.split('\n')[0]).toMatch(/^wgpt: task index 4 is outside 0\.\.3 for a task count of 4 /);
  });
});

describe('wgpt data run: inputs that give nothing to train on', () => {
  it('one text document without separators goes to validation: an error that says so, and no manifest', () => {
    const f = path.join(d, 'one.txt');
    fs.writeFileSync(f, GOOD);
    const out = path.join(d, 'o-one');
    const r = wgpt(run('-i', f, '-o', out));
    expect(r.rc).toBe(1);
    expect(lastLine(r)).toMatch(new RegExp(`^wgpt: ${out}: the train split is empty: the 1 document\\(s\\) kept all ` +
      'went to the validation split .*separate them with lines holding <\\|endoftext\\|>\\), ' +
      'or set --val-fraction 0\\. '));
    expect(fs.existsSync(path.join(out, 'manifest.json'))).toBe(false);
    expect(fs.existsSync(path.join(out, 'stats.txt'))).toBe(true);
    // and with --val-fraction 0 it trains (a new output: the first one's plan has the default fraction)
    const ok = wgpt(run('-i', f, '-o', path.join(d, 'o-one0'), '--val-fraction', '0'));
    expect(ok.rc).toBe(0);
    expect(ok.out).toMatch(/^train: 1 docs, \d+ tokens in 1 shard\(s\); val: 0 docs/m);
  });

  it('an empty file: a warning naming it, then the empty train split error', () => {
    const f = path.join(d, 'empty.txt');
    fs.writeFileSync(f, '');
    const r = wgpt(run('-i', f, '-o', path.join(d, 'o-empty')));
    expect(r.rc).toBe(1);
    expect(r.err).toContain(`[data] warning: input ${f} is empty (0 bytes); it adds no documents\n`);
    expect(lastLine(r)).toMatch(/the train split is empty: no documents were read from the 1 input file\(s\)/);
  });

  it('an empty folder, and a missing input, are errors naming them', () => {
    const empty = path.join(d, 'nothing');
    fs.mkdirSync(empty);
    let r = wgpt(run('-i', empty, '-o', path.join(d, 'o-none')));
    expect(r.rc).toBe(1);
    expect(lastLine(r)).toBe(`wgpt: input folder ${empty} holds no files; give files or a folder with some`);
    r = wgpt(run('-i', path.join(d, 'nope.jsonl'), '-o', path.join(d, 'o-none')));
    expect(r.rc).toBe(1);
    expect(lastLine(r)).toBe(`wgpt: input ${path.join(d, 'nope.jsonl')}: no such file or directory`);
  });
});

describe('wgpt data run: broken files among good ones', () => {
  it('a truncated .jsonl.gz and a file that is not parquet are skipped, counted and named; the rest is processed',
    () => {
    const empty = path.join(d, 'empty.jsonl');
    fs.writeFileSync(empty, '');
    const gz = zlib.gzipSync(fs.readFileSync(docs));
    const cut = path.join(d, 'cut.jsonl.gz');
    fs.writeFileSync(cut, gz.subarray(0, gz.length - 40));
    const notPq = path.join(d, 'x.parquet');
    fs.writeFileSync(notPq, 'not parquet at all');
    const out = path.join(d, 'o-broken');
    const r = wgpt(run('-i', cut, notPq, empty, docs, '-o', out));
    expect(r.rc).toBe(0);
    expect(r.err).toContain(`[data] warning: input ${empty} is empty (0 bytes); it adds no documents\n`);
    expect(r.err).toMatch(new RegExp(`\\[data\\] warning: ${cut}: unexpected end of file at line \\d+; the rest of ` +
      'the file is skipped \\(counted as truncated_gzip_member\\)'));
    expect(r.err).toContain(`[data] warning: ${notPq}: not a readable parquet file (`);
    const readRow = r.out.split('\n').find((l) => l.startsWith('read '))!;
    expect(readRow).toMatch(/^read +\d+ +\d+ +2 /);
    expect(readRow.split(/ {2,}/).at(-1)!.split(', ').sort()).toEqual(['bad_parquet 1', 'truncated_gzip_member 1']);
    const removed = fs.readFileSync(path.join(out, 'removed', 'process.00000.jsonl'), 'utf8');
    expect(removed).toContain('"id":"x.parquet#0","stage":"read","reason":"bad_parquet"');
    // every document of the good file made it
    const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    expect(m.totals.train.docs + m.totals.val.docs).toBeGreaterThanOrEqual(20);
  });
});

describe('wgpt data run: one output, several runs', () => {
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600_000)'], { stdio: 'ignore' });
  afterAll(() => { sleeper.kill(); });
  /** Writes the lock of task i of k as a run with `pid` on this host would. */
  const lock = (out: string, [i, k]: [number, number], pid: number) => {
    fs.mkdirSync(path.join(out, 'locks'), { recursive: true });
    const f = path.join(out, 'locks', `task-${i}-of-${k}.lock`);
    fs.writeFileSync(f, JSON.stringify({ pid, host: os.hostname(), taskIndex: i, taskCount: k,
      startedAt: '2026-01-01T00:00:00.000Z', token: 't' }));
    return f;
  };

  it('a run of the same task in progress: exit 1 naming its pid; a stale lock is taken over with a note', () => {
    const out = path.join(d, 'o-lock');
    const f = lock(out, [0, 1], sleeper.pid!);
    let r = wgpt(run('-i', docs, '-o', out));
    expect(r.rc).toBe(1);
    expect(lastLine(r)).toBe(`wgpt: ${out}: this task is running there already: task 0 of 1, pid ${sleeper.pid} ` +
      `on this host, since 2026-01-01T00:00:00.000Z (lock ${f}). Wait for it to finish`);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    lock(out, [0, 1], dead);
    r = wgpt(run('-i', docs, '-o', out));
    expect(r.rc).toBe(0);
    expect(r.err).toContain(`[data] note: took over the lock ${f} from pid ${dead} `);
    expect(fs.existsSync(f)).toBe(false); // released at the end
  });

  it('tasks of an array run side by side; a second run of one of them is refused', () => {
    const out = path.join(d, 'o-array');
    lock(out, [1, 2], sleeper.pid!); // task 1 of 2 is "running"
    const r0 = wgpt(run('-i', docs, '-o', out, '--units', '2', '--task-index', '0', '--task-count', '2'));
    expect(r0.rc).toBe(0);
    expect(r0.out).toContain('task 0/2: ran {"process":[0],"tokenize":[0]}');
    const r1 = wgpt(run('-i', docs, '-o', out, '--task-index', '1', '--task-count', '2'));
    expect(r1.rc).toBe(1);
    expect(lastLine(r1)).toContain(`this task is running there already: task 1 of 2, pid ${sleeper.pid}`);
  });

  it('a re-run with other settings is refused with what differs; without them it resumes', () => {
    const out = path.join(d, 'o-rerun');
    expect(wgpt(run('-i', docs, '-o', out, '--val-fraction', '0.2')).rc).toBe(0);
    let r = wgpt(run('-o', out, '--val-fraction', '0.3', '--shard-tokens', '1000'));
    expect(r.rc).toBe(1);
    expect(lastLine(r)).toBe(`wgpt: ${path.join(out, 'plan.json')}: this output was started with other settings: ` +
      'tokenize.valFraction: 0.2 there, 0.3 here; tokenize.shardTokens: unset (the default) there, 1000 here. ' +
      'Give the same settings (or leave them out to resume with the saved ones), or use a new --output');
    r = wgpt(run('-o', out));
    expect(r.rc).toBe(0);
    expect(r.err).toContain('[data] process: 1 unit(s) already done, skipped');
  });
});

// runPipeline's guards: configuration checks, the output lock, and the empty train split.
import fs from 'node:fs';
import path from 'node:path';
import { UsageError, WgptError } from '@wgpt/base';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../src/config.ts';
import { runPipeline } from '../src/pipeline.ts';
import { readShardHeader, ShardFormatError } from '../src/shards.ts';
import { ShardSink } from '../src/tokenize.ts';
import { tmpDir } from './helpers.ts';
import { GOOD } from './texts.ts';
import { byteEncoder } from './toy-encoder.ts';

const quiet = { log: () => {}, tokenizer: byteEncoder };
/** The quality filters and dedup off: every document is kept, and no language model is loaded. */
const keepAll = {
  language: false, gopherRepetition: false, gopherQuality: false, c4: false, fineweb: false, dedup: false,
} as const satisfies Partial<PipelineConfig>;
let d: string;
let docs: string;
const N = 40;

beforeAll(() => {
  d = tmpDir();
  docs = path.join(d, 'docs.jsonl');
  const lines = Array.from({ length: N }, (_, i) => JSON.stringify({ id: `doc${i}`, text: `${i}: ${GOOD}` }));
  fs.writeFileSync(docs, lines.join('\n') + '\n');
});

describe('runPipeline guards', () => {
  it('two runs of the same task on one output: the second is refused, the first finishes with every document',
    async () => {
    const out = path.join(d, 'o-twice');
    const cfg = { ...keepAll, inputs: [docs], output: out };
    const [a, b] = await Promise.allSettled([runPipeline(cfg, quiet), runPipeline(cfg, quiet)]);
    expect(a.status).toBe('fulfilled');
    expect(b.status).toBe('rejected');
    const err = (b as PromiseRejectedResult).reason as Error;
    expect(err).toBeInstanceOf(WgptError);
    expect(err.message)
      .toMatch(new RegExp(`^${out}: this task is running there already: task 0 of 1, pid ${process.pid} `));
    const m = (a as PromiseFulfilledResult<Awaited<ReturnType<typeof runPipeline>>>).value.manifest!;
    expect(m.totals.train.docs + m.totals.val.docs).toBe(N);
    expect(fs.readdirSync(path.join(out, 'locks'))).toEqual([]);
  });

  it('the tasks of an array run at once on one output, and a later run makes the manifest', async () => {
    const out = path.join(d, 'o-array');
    const cfg = { ...keepAll, inputs: [docs], output: out, units: 2 };
    const tasks = [0, 1].map((taskIndex) =>
      runPipeline(cfg, { ...quiet, taskIndex, taskCount: 2, steps: ['process', 'tokenize'] }));
    const rs = await Promise.all(tasks);
    expect(rs.map((r) => r.ran.process)).toEqual([[0], [1]]);
    const m = (await runPipeline({ output: out }, { ...quiet, steps: ['manifest'] })).manifest!;
    expect(m.totals.train.docs + m.totals.val.docs).toBe(N);
  });

  it('an empty train split is an error saying why; the stats are written, the manifest is not', async () => {
    const one = path.join(d, 'one.txt');
    fs.writeFileSync(one, GOOD);
    const out = path.join(d, 'o-one');
    await expect(runPipeline({ ...keepAll, inputs: [one], output: out }, quiet)).rejects.toThrow(
      new RegExp(`^${out}: the train split is empty: the 1 document\\(s\\) kept all went to the validation split`));
    expect(fs.existsSync(path.join(out, 'manifest.json'))).toBe(false);
    expect(fs.readFileSync(path.join(out, 'stats.txt'), 'utf8')).toMatch(/^tokenize +1 +1 /m);
    // everything removed by the filters
    const out2 = path.join(d, 'o-removed');
    const cfg: PipelineConfig = {
      inputs: [one], output: out2, language: false, gopherQuality: { minDocWords: 10_000 },
    };
    await expect(runPipeline(cfg, quiet))
      .rejects.toThrow(/the train split is empty: the filters removed all 1 documents read/);
  });

  // (A shard size of 0, which used to run for ever, is tested through the CLI in a child process with a time limit.)
  it('a bad config or task is refused before anything is written', async () => {
    const out = path.join(d, 'o-bad');
    const bad = { inputs: [docs], output: out, tokenize: { valFraction: 0.5, shardTokenz: 9 } };
    await expect(runPipeline(bad as PipelineConfig, quiet))
      .rejects.toThrow('pipeline config: tokenize.shardTokenz: unknown key (did you mean "shardTokens"?)');
    await expect(runPipeline({ inputs: [docs], output: out }, { ...quiet, taskIndex: 2, taskCount: 2 }))
      .rejects.toThrow(UsageError);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('ShardSink refuses a shard size that would never fill (0) instead of writing empty shards', () => {
    const o = { dir: path.join(d, 'sink'), prefix: 'p', part: 0 };
    expect(() => new ShardSink(byteEncoder, { ...o, shardTokens: 0 })).toThrow(WgptError);
    expect(() => new ShardSink(byteEncoder, { ...o, shardTokens: 0 }))
      .toThrow('tokenize.shardTokens: must be a whole number');
    expect(() => new ShardSink(byteEncoder, { ...o, valFraction: 1 }))
      .toThrow('tokenize.valFraction: must be in [0, 1)');
  });

  it('a shard that is not one is a user error (WgptError) naming the file', () => {
    const f = path.join(d, 'not-a-shard.bin');
    fs.writeFileSync(f, 'hello');
    expect(() => readShardHeader(f)).toThrow(ShardFormatError);
    expect(() => readShardHeader(f)).toThrow(WgptError);
    expect(() => readShardHeader(f)).toThrow(`${f}: file is 5 bytes, shorter than the 1024-byte header`);
  });
});

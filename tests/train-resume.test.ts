// Resuming the GPT-2 trainer: after crashes at any rename or removal of checkpoint writing a resume continues bit
// for bit (losses and log equal to an uninterrupted run's), a resume with other settings is refused, and shards
// and sample tokens are checked against the model's vocabulary before the first step.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ShardWriter, SHARD_MAX_IDS_FILE } from '@wgpt/data';
import {
  initParams,
  loadCheckpoint,
  makeConfig,
  setFaultHook,
  train,
  type StepLog,
  type TrainOptions,
} from '@wgpt/gpt2';
import { WgptError, type Gpu } from '@wgpt/runtime';
import { testGpu } from '@wgpt/runtime/testing';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
  gpu.poisonNew = false;
});
afterAll(() => gpu.destroy());
afterEach(() => setFaultHook(null));

const config = makeConfig({ maxT: 16, V: 61, L: 1, NH: 2, C: 16 });

/** Learnable shards (as in train.test.ts); `bad` puts one out-of-vocabulary token into the first training shard. */
function shards(dir: string, bad?: number): { train: string[]; val: string[] } {
  const out = { train: [] as string[], val: [] as string[] };
  for (const split of ['train', 'val'] as const) {
    const w = new ShardWriter({ dir, prefix: 't', split, part: 0, nVocab: 200, shardTokens: 400 });
    for (let d = 0; d < (split === 'train' ? 60 : 10); d++) {
      const stride = 1 + (d % 3);
      const doc = [60, ...Array.from({ length: 15 }, (_, i) => (d + i * stride) % 60)];
      if (bad !== undefined && split === 'train' && d === 2) doc[5] = bad;
      w.addDocument(doc);
    }
    out[split] = w.close().map((s) => join(dir, s.file));
  }
  return out;
}

let data: { train: string[]; val: string[] };
beforeAll(() => {
  data = shards(mkdtempSync(join(tmpdir(), 'wgpt-resume-data-')));
});

function options(outDir: string, over: Partial<TrainOptions> = {}): TrainOptions {
  return {
    config,
    init: initParams(config, 3),
    trainFiles: data.train,
    valFiles: [],
    B: 2,
    T: 8,
    totalBatchTokens: 16,
    steps: 3,
    lr: 1e-2,
    warmupSteps: 1,
    finalLrFrac: 0.1,
    weightDecay: 0.1,
    maxNorm: 1,
    valEvery: 100,
    valBatches: 1,
    sampleEvery: 0,
    sampleTokens: 4,
    checkpointEvery: 1,
    outDir,
    seed: 5,
    eotToken: 60,
    peakTflops: 1,
    log: () => {},
    ...over,
  };
}

const logOf = (dir: string): StepLog[] =>
  readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StepLog);
const numbers = (l: StepLog[]) => l.map((s) => ({ step: s.step, loss: s.loss, gradNorm: s.gradNorm, lr: s.lr }));

class Crash extends Error {}
interface Crashed {
  crashed: boolean;
  points: number;
  completed: number;
}

/** train() that resolves to its error instead of rejecting. */
const attempt = (o: TrainOptions): Promise<unknown> => train(gpu, o).catch((e: unknown) => e);

/** The checkpoint folders of a run folder, temp folders without their unique suffix. */
const checkpointFolders = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.startsWith('checkpoint'))
    .map((f) => f.replace(/tmp-.*/, 'tmp-'))
    .sort();

/**
 * Runs train() with a crash at fault point `at` (0: none). Returns how many fault points it passed and how many
 * checkpoints it completed (a checkpoint is complete once its state.bin is renamed into place in its folder).
 */
async function runCrashing(o: TrainOptions, at: number): Promise<Crashed> {
  let n = 0;
  let completed = 0;
  setFaultHook((op, path) => {
    if (++n === at) throw new Crash();
    if (op === 'rename' && /\.state\.bin\.tmp-\d+$/.test(path)) completed++;
  });
  try {
    await train(gpu, o);
    return { crashed: false, points: n, completed };
  } catch (e) {
    if (!(e instanceof Crash)) throw e;
    return { crashed: true, points: n, completed };
  } finally {
    setFaultHook(null);
  }
}

/** The step a resume continues from: the newest complete checkpoint's, or 0 when there is none. */
function foundStep(out: string): number {
  try {
    return loadCheckpoint(join(out, 'checkpoint')).state.step;
  } catch (e) {
    if (!(e instanceof WgptError)) throw e;
    return 0;
  }
}

/** A resume as a user makes one: from the run's checkpoint, or from scratch when no checkpoint was completed. */
function resumeOptions(out: string): TrainOptions {
  return foundStep(out) ? options(out, { resume: join(out, 'checkpoint') }) : options(out);
}

describe('resume after crashes in checkpoint writing', () => {
  let reference: StepLog[];
  let points: number;
  beforeAll(async () => {
    const out = mkdtempSync(join(tmpdir(), 'wgpt-crash-ref-'));
    const r = await runCrashing(options(out), 0);
    points = r.points;
    reference = logOf(out);
  });

  /** Checks a run folder after its last run: one checkpoint folder, the whole log once, numbers equal the reference. */
  function expectWhole(out: string, what: string): void {
    expect(readdirSync(out).sort(), what).toEqual(['checkpoint', 'log.jsonl', 'loss.svg']);
    expect(numbers(logOf(out)), what).toEqual(numbers(reference));
    expect(loadCheckpoint(join(out, 'checkpoint')).state.step).toBe(3);
  }

  // For every fault point of a run, a crash there; then for every fault point of the resumed run, a crash there
  // too (the last try of each row has no second crash); then a resume to the end.
  it('two crashes (any pair of points) and a resume give the uninterrupted run (losses, log)', async () => {
    expect(points).toBe(15); // 3 for the first checkpoint, 6 for each later one
    expect(reference.map((s) => s.step)).toEqual([1, 2, 3]);
    let pairs = 0;
    // With a checkpoint every step, a run from step s that completed k checkpoints has one of step s + k (a run
    // resumed at the last step writes that step again).
    for (let n = 1; n <= points; n++) {
      const first = mkdtempSync(join(tmpdir(), `wgpt-crash2-${n}-`));
      const r1 = await runCrashing(options(first), n);
      expect(r1.crashed).toBe(true);
      const committed1 = Math.min(3, r1.completed);
      expect(foundStep(first), `crash at ${n}: the newest complete checkpoint`).toBeGreaterThanOrEqual(committed1);
      // Point 7: `checkpoint` renamed to `checkpoint.old`, the new one not yet in place; the resumed run once deleted
      // checkpoint.old there.
      if (n === 7) expect(checkpointFolders(first)).toEqual(['checkpoint.old', 'checkpoint.tmp-']);
      for (let m = 1; ; m++) {
        const out = `${first}-m${m}`;
        cpSync(first, out, { recursive: true });
        const from = foundStep(out);
        const second = await runCrashing(resumeOptions(out), m);
        const committed2 = Math.max(committed1, Math.min(3, from + second.completed));
        const what = `crash at ${n}, then at ${m}: the newest complete checkpoint`;
        expect(foundStep(out), what).toBeGreaterThanOrEqual(committed2);
        await train(gpu, resumeOptions(out));
        expectWhole(out, `crash at ${n}, then at ${m}`);
        rmSync(out, { recursive: true });
        pairs++;
        if (!second.crashed) break;
      }
      rmSync(first, { recursive: true });
    }
    expect(pairs).toBeGreaterThan(5 * points);
  });
});

describe('resume checks', () => {
  let stopped: string;
  beforeAll(async () => {
    stopped = mkdtempSync(join(tmpdir(), 'wgpt-settings-'));
    await train(gpu, options(stopped, { steps: 4, stopAfter: 2 }));
  });

  it('refuses settings that change the numbers, saying what changed, unless allowChange', async () => {
    const resume = join(stopped, 'checkpoint');
    const other = shards(mkdtempSync(join(tmpdir(), 'wgpt-other-data-'))).train.slice(0, 2);
    const tries: [Partial<TrainOptions>, RegExp][] = [
      [{ lr: 0.5 }, /--lr 0\.01 → 0\.5/],
      [{ B: 1, totalBatchTokens: 8 }, /-B 2 → 1; --total-batch 16 → 8/],
      [{ T: 4, totalBatchTokens: 8 }, /-T 8 → 4/],
      [{ seed: 6 }, /--seed 5 → 6/],
      [{ steps: 5 }, /--steps 4 → 5/],
      [{ warmupSteps: 2, finalLrFrac: 0.5 }, /--warmup 1 → 2; --final-lr-frac 0\.1 → 0\.5/],
      [{ weightDecay: 0, maxNorm: 2 }, /--weight-decay 0\.1 → 0; --grad-clip 1 → 2/],
      [{ trainFiles: other }, /--data: training shards 3 shards of \d+ tokens \(t_train_00000_0000\.bin, …\) → 2/],
    ];
    for (const [over, want] of tries) {
      const lines: string[] = [];
      const out = mkdtempSync(join(tmpdir(), 'wgpt-changed-'));
      const err = await attempt(options(out, { steps: 4, resume, ...over, log: (l) => lines.push(l) }));
      expect(err).toBeInstanceOf(WgptError);
      expect((err as Error).message).toMatch(want);
      const msg = (err as Error).message;
      expect(msg).toMatch(/checkpoint: resuming with other settings would not continue the run exactly: /);
      expect(msg).toMatch(/Give the checkpoint's values, or pass --allow-change to continue with the new ones$/);
      expect(lines.some((l) => l.startsWith('step '))).toBe(false);
    }
    // Same-sized shards with other tokens under the same name: caught by the sampled fingerprint.
    const copy = mkdtempSync(join(tmpdir(), 'wgpt-copy-data-'));
    const files = data.train.map((f) => join(copy, f.split('/').pop()!));
    data.train.forEach((f, i) => cpSync(f, files[i]!));
    const bytes = readFileSync(files[1]!);
    bytes[1024 + 10] ^= 1;
    writeFileSync(files[1]!, bytes);
    const fresh = () => mkdtempSync(join(tmpdir(), 'wgpt-changed-'));
    const err = await attempt(options(fresh(), { steps: 4, resume, trainFiles: files }));
    expect((err as Error).message).toMatch(/--data: t_train_00000_0001\.bin has the same size but different tokens/);
    // allowChange continues, and logs each change.
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const r = await train(gpu, options(fresh(), { steps: 4, resume, lr: 0.02, allowChange: true, log }));
    expect(r.steps.map((s) => s.step)).toEqual([3, 4]);
    expect(lines).toContain('setting changed on resume (--allow-change): --lr 0.01 → 0.02');
  });

  it('accepts settings that do not change the numbers, and gives the same losses', async () => {
    const whole = await train(gpu, options(mkdtempSync(join(tmpdir(), 'wgpt-free-whole-')), { steps: 4 }));
    const out = mkdtempSync(join(tmpdir(), 'wgpt-free-'));
    const free = { valFiles: data.val, valEvery: 1, sampleEvery: 1, checkpointEvery: 0 };
    const r = await train(gpu, options(out, { steps: 4, resume: join(stopped, 'checkpoint'), ...free }));
    expect(r.steps.map((s) => s.loss)).toEqual(whole.steps.slice(2).map((s) => s.loss));
  });

  it('resumes a checkpoint written without settings (older versions), saying it cannot check them', async () => {
    const old = mkdtempSync(join(tmpdir(), 'wgpt-oldck-'));
    cpSync(stopped, old, { recursive: true });
    const file = join(old, 'checkpoint', 'state.bin');
    const raw = readFileSync(file);
    const n = raw.readUInt32LE(8);
    const meta = JSON.parse(raw.toString('utf8', 12, 12 + n)) as Record<string, unknown>;
    delete meta.settings;
    const json = Buffer.from(JSON.stringify(meta));
    const head = Buffer.from(raw.subarray(0, 12));
    head.writeUInt32LE(json.length, 8);
    writeFileSync(file, Buffer.concat([head, json, raw.subarray(12 + n)]));
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const r = await train(gpu, options(old, { steps: 4, resume: join(old, 'checkpoint'), lr: 0.5, log }));
    expect(r.steps.map((s) => s.step)).toEqual([3, 4]);
    expect(lines.some((l) => /does not record its run's settings .* cannot be checked to be exact/.test(l))).toBe(true);
  });

  it("the log holds each step once after a crash, and loss.svg plots the whole run", async () => {
    const out = mkdtempSync(join(tmpdir(), 'wgpt-log-'));
    const o = options(out, { steps: 6, checkpointEvery: 2, valFiles: data.val, valEvery: 2 });
    // Crash in the write of step 4's checkpoint before its state.bin is in place (fault point 3 + 2): the log
    // already holds steps 1-4, the newest complete checkpoint is step 2's.
    expect((await runCrashing(o, 3 + 2)).crashed).toBe(true);
    expect(logOf(out).map((s) => s.step)).toEqual([1, 2, 3, 4]);
    expect(loadCheckpoint(join(out, 'checkpoint')).state.step).toBe(2);
    const r = await train(gpu, { ...o, resume: join(out, 'checkpoint') });
    expect(r.steps.map((s) => s.step)).toEqual([3, 4, 5, 6]);
    const whole = mkdtempSync(join(tmpdir(), 'wgpt-log-whole-'));
    await train(gpu, { ...o, outDir: whole });
    expect(numbers(logOf(out))).toEqual(numbers(logOf(whole)));
    expect(logOf(out).map((s) => s.valLoss)).toEqual(logOf(whole).map((s) => s.valLoss));
    // The plot: one train-loss line over steps 1..6 (M then 5 L; the data series are ECharts' clipped paths) and
    // validation points marked at steps 2, 4, 6.
    const svg = readFileSync(join(out, 'loss.svg'), 'utf8');
    const series = [...svg.matchAll(/<g clip-path="[^"]*">\s*<path d="([^"]*)"/g)].map((m) => m[1]!);
    expect(series[0]!.match(/[ML]/g)).toEqual(['M', 'L', 'L', 'L', 'L', 'L']);
    expect(svg.match(/ecmeta_series_index="1" ecmeta_data_index="\d+" ecmeta_ssr_type="chart"/g)?.length).toBe(3);
    expect(svg).toBe(readFileSync(join(whole, 'loss.svg'), 'utf8'));
  });
});

describe('inputs checked against the model before the first step', () => {
  it('a shard with a token id ≥ V is refused, naming the shard, the id and V, whether in V..Vp or beyond', async () => {
    for (const bad of [63, 150]) {
      const dir = mkdtempSync(join(tmpdir(), 'wgpt-badtok-'));
      const s = shards(dir, bad);
      const lines: string[] = [];
      const err = await attempt(options(join(dir, 'run'), { trainFiles: s.train, log: (l) => lines.push(l) }));
      expect(err).toBeInstanceOf(WgptError);
      const want =
        `t_train_00000_0000\\.bin: token id ${bad} is outside the model's vocabulary V=61 ` + `\\(ids 0\\.\\.60\\)`;
      expect((err as Error).message).toMatch(new RegExp(want));
      expect(lines).toEqual([]);
    }
  });

  it('shards written without the largest id in their header are scanned once, and remembered beside them', async () => {
    for (const bad of [63, undefined]) {
      const dir = mkdtempSync(join(tmpdir(), 'wgpt-oldshard-'));
      const s = shards(dir, bad);
      for (const f of [...s.train, ...s.val]) {
        const b = readFileSync(f);
        b.fill(0, 12, 20); // header[3], header[4] as llm.c and older wgpt write them
        writeFileSync(f, b);
      }
      const out = join(dir, 'run');
      const r = await attempt(options(out, { trainFiles: s.train, valFiles: s.val }));
      type Manifest = Record<string, { maxTokenId: number }>;
      const manifest = JSON.parse(readFileSync(join(dir, SHARD_MAX_IDS_FILE), 'utf8')) as Manifest;
      if (bad) {
        expect((r as Error).message).toMatch(/t_train_00000_0000\.bin: token id 63 is outside the model's vocabulary/);
        expect(manifest['t_train_00000_0000.bin']!.maxTokenId).toBe(63);
        expect(existsSync(join(out, 'log.jsonl'))).toBe(false);
      } else {
        expect(r).not.toBeInstanceOf(Error);
        expect(Object.keys(manifest).sort()).toEqual([...s.train, ...s.val].map((f) => f.split('/').pop()).sort());
        expect(Object.values(manifest).map((e) => e.maxTokenId)).toEqual([60, 60, 60, 60]);
      }
    }
  });

  it('samples need <|endoftext|> inside the vocabulary', async () => {
    const out = mkdtempSync(join(tmpdir(), 'wgpt-eot-'));
    for (const eotToken of [61, -1]) {
      const err = await attempt(options(out, { sampleEvery: 2, eotToken }));
      const want = `<\\|endoftext\\|> token, but its id ${eotToken} is not in the model's vocabulary \\[0, 61\\)`;
      expect((err as Error).message).toMatch(new RegExp(want));
    }
    expect(existsSync(join(out, 'log.jsonl'))).toBe(false);
  });
});

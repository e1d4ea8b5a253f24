// The GPT-2 trainer end to end on SwiftShader: loss falls, stopping and resuming gives the same losses bit for bit
// as an uninterrupted run, non-finite losses skip updates and then stop the run.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardWriter } from '@wgpt/data';
import { initParams, loadCheckpoint, makeConfig, paramOffsets, train, type TrainOptions } from '@wgpt/gpt2';
import type { Gpu } from '@wgpt/runtime';
import { testGpu } from '@wgpt/runtime/testing';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
  gpu.poisonNew = false; // poisoning is for kernel tests; here it only costs time
});
afterAll(() => gpu.destroy());

const config = makeConfig({ maxT: 16, V: 61, L: 1, NH: 2, C: 16 });

function shards(dir: string): { train: string[]; val: string[] } {
  // A learnable stream: short "documents" counting up by a per-document stride, so the next token is predictable.
  const out = { train: [] as string[], val: [] as string[] };
  for (const split of ['train', 'val'] as const) {
    const w = new ShardWriter({ dir, prefix: 't', split, part: 0, nVocab: 61, shardTokens: 400 });
    for (let d = 0; d < (split === 'train' ? 60 : 10); d++) {
      const stride = 1 + (d % 3);
      w.addDocument([60, ...Array.from({ length: 15 }, (_, i) => (d + i * stride) % 60)]);
    }
    out[split] = w.close().map((s) => join(dir, s.file));
  }
  return out;
}

function options(dir: string, over: Partial<TrainOptions> = {}): TrainOptions {
  const s = shards(dir);
  return {
    config,
    init: initParams(config, 3),
    trainFiles: s.train,
    valFiles: s.val,
    B: 2,
    T: 8,
    totalBatchTokens: 32, // two micro-batches per step
    steps: 6,
    lr: 1e-2,
    warmupSteps: 2,
    finalLrFrac: 0.1,
    weightDecay: 0.1,
    maxNorm: 1,
    valEvery: 3,
    valBatches: 2,
    sampleEvery: 0,
    sampleTokens: 8,
    checkpointEvery: 0,
    outDir: join(dir, 'run'),
    seed: 5,
    eotToken: 60,
    peakTflops: 1,
    log: () => {},
    ...over,
  };
}

describe('GPT-2 trainer', () => {
  it('the loss falls, validation and samples run, and a checkpoint and plot are written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-train-'));
    const lines: string[] = [];
    const r = await train(
      gpu,
      options(dir, { steps: 30, lr: 3e-2, valEvery: 10, sampleEvery: 15, log: (l) => lines.push(l) }),
    );
    expect(r.steps.length).toBe(30);
    const first = r.steps.slice(0, 3).reduce((a, s) => a + s.loss, 0) / 3;
    const last = r.steps.slice(-3).reduce((a, s) => a + s.loss, 0) / 3;
    expect(first).toBeGreaterThan(3.5); // ≈ ln 61 at init
    // Half a nat in 30 steps: far beyond step-to-step noise (~0.05 here), and the stride patterns are learnable.
    expect(last).toBeLessThan(first - 0.5);
    expect(r.valLosses.length).toBe(3);
    expect(r.valLosses.at(-1)!.loss).toBeLessThan(r.valLosses[0]!.loss);
    expect(lines.filter((l) => l.startsWith('--- sample at step')).length).toBe(2);
    expect(lines.some((l) => /^step 30\/30 \| loss \d+\.\d+ \| lr .* \| norm .* tok\/s \| MFU/.test(l))).toBe(true);
    expect(loadCheckpoint(r.checkpoint).state.step).toBe(30);
  });

  it('stopping and resuming gives the same losses, bit for bit, as an uninterrupted run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-resume-'));
    const whole = await train(gpu, options(dir, { outDir: join(dir, 'whole') }));
    // A fresh trainer from the step-3 checkpoint of a run stopped there.
    const stopped = await train(gpu, options(dir, { outDir: join(dir, 'stopped'), stopAfter: 3 }));
    expect(stopped.stoppedEarly).toMatch(/stopped after step 3/);
    const resumed = await train(gpu, options(dir, { outDir: join(dir, 'resumed'), resume: stopped.checkpoint }));
    expect(resumed.steps.map((s) => s.step)).toEqual([4, 5, 6]);
    const a = whole.steps.slice(3).map((s) => s.loss);
    const b = resumed.steps.map((s) => s.loss);
    expect(b).toEqual(a); // exact equality of the f32 values read back
    expect(resumed.steps.map((s) => s.gradNorm)).toEqual(whole.steps.slice(3).map((s) => s.gradNorm));
  });

  it('non-finite losses skip the update, and three in a row stop the run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-nan-'));
    const init = initParams(config, 3);
    const o = paramOffsets(config).lnfw!;
    init[o.offset] = NaN; // every logit becomes NaN
    const lines: string[] = [];
    const r = await train(gpu, options(dir, { init, log: (l) => lines.push(l) }));
    expect(r.stoppedEarly).toMatch(/3 non-finite steps in a row at step 3/);
    expect(r.steps.every((s) => s.skipped)).toBe(true);
    expect(lines.some((l) => /update skipped/.test(l))).toBe(true);
  });
});

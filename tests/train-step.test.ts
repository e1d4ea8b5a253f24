// What a GPT-2 training step costs the GPU: one submit and one read, after the optimizer's update (no wait in the
// middle of a step), three AdamW dispatches for all parameters, one (B·T, Vp) buffer for the logits and their
// gradient, and the profile the trainer prints.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardWriter } from '@wgpt/data';
import { GPT2, initParams, makeConfig, paramOffsets, readLlmcModel, train, type TrainOptions } from '@wgpt/gpt2';
import { FIXTURE } from '@wgpt/tools/reference/make-fixture';
import { AdamW, adamwVersion } from '@wgpt/kernels';
import { backward, tensor, tidyAsync, type DispatchArgs, type Gpu, type KernelSpec } from '@wgpt/runtime';
import { testGpu } from '@wgpt/runtime/testing';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
  gpu.poisonNew = false;
});
afterAll(() => gpu.destroy());

const config = makeConfig({ maxT: 16, V: 61, L: 1, NH: 2, C: 16 });

function options(dir: string, over: Partial<TrainOptions> = {}): TrainOptions {
  const w = new ShardWriter({ dir, prefix: 't', split: 'train', part: 0, nVocab: 61, shardTokens: 400 });
  for (let d = 0; d < 40; d++) w.addDocument([60, ...Array.from({ length: 15 }, (_, i) => (d + i) % 60)]);
  return {
    config,
    init: initParams(config, 3),
    trainFiles: w.close().map((s) => join(dir, s.file)),
    valFiles: [],
    B: 2,
    T: 8,
    totalBatchTokens: 32, // two micro-batches per step
    steps: 4,
    lr: 1e-2,
    warmupSteps: 1,
    finalLrFrac: 0.1,
    weightDecay: 0.1,
    maxNorm: 1,
    valEvery: 100,
    valBatches: 1,
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

describe('a training step on the GPU', () => {
  it('is one read, after the AdamW update, and (past the first) one submit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-step-'));
    // Per step (from one step's log line to the next): the reads, the kernel recorded last before each, submits.
    type Step = { reads: string[]; submits: number };
    const steps: Step[] = [];
    let cur: Step = { reads: [], submits: gpu.submitCount };
    let lastKernel = '(none)';
    const { dispatch, read } = gpu;
    gpu.dispatch = function (spec: KernelSpec, args: DispatchArgs) {
      lastKernel = spec.name;
      return dispatch.call(this, spec, args);
    };
    gpu.read = function (...args: Parameters<Gpu['read']>) {
      cur.reads.push(lastKernel);
      return read.apply(this, args);
    };
    const log = (line: string) => {
      if (!/^step \d+\/\d+ \|/.test(line)) return;
      steps.push({ reads: cur.reads, submits: gpu.submitCount - cur.submits });
      cur = { reads: [], submits: gpu.submitCount };
    };
    try {
      await train(gpu, options(dir, { log }));
    } finally {
      // The wrappers are the instance's own properties, shadowing the class's methods.
      delete (gpu as Partial<Gpu>).dispatch;
      delete (gpu as Partial<Gpu>).read;
    }
    expect(steps).toHaveLength(4);
    for (const [i, s] of steps.entries()) {
      expect(s.reads, `step ${i + 1}`).toEqual(['adamw']);
      if (i > 0) expect(s.submits, `step ${i + 1}`).toBe(1);
    }
  });

  it('packs GPT-2 in llm.c order (toFlat gives the model file back) and updates it in 3 AdamW dispatches', async () => {
    const cfg = makeConfig({ maxT: 16, V: 61, L: 2, NH: 2, C: 20 }); // tensors of 20 floats: padding between
    const init = initParams(cfg, 1);
    const model = new GPT2(gpu, cfg, init);
    const opt = new AdamW(gpu, model.parameters(), {}, model.decayFlags());
    expect(model.parameters()).toHaveLength(2 + 12 * cfg.L + 2);
    expect(model.pack.segments).toHaveLength(1);
    expect(opt.dispatchesPerStep).toBe(3);
    const flat = await model.toFlat();
    expect(Buffer.from(flat.buffer).equals(Buffer.from(init.buffer))).toBe(true);
    const o = paramOffsets(cfg).ln1b!; // layer 1's LayerNorm bias, a slice at an offset
    expect(Array.from(await model.blocks[1]!.ln1b.read())).toEqual(
      Array.from(init.subarray(o.offset + cfg.C, o.offset + 2 * cfg.C)),
    );
    opt.dispose();
    model.dispose();
  });

  it('holds one (B·T, Vp) buffer for the logits and their gradient', async () => {
    // A vocabulary large next to everything else, so the (B·T, Vp) buffers dominate the step's memory.
    const big = makeConfig({ maxT: 16, V: 4096, L: 1, NH: 2, C: 16 });
    const [B, T] = [2, 16];
    const logitBytes = B * T * big.Vp * 4; // 512 KiB, a size class of its own
    const model = new GPT2(gpu, big, initParams(big, 1));
    const opt = new AdamW(gpu, model.parameters(), {}, model.decayFlags());
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 37) % big.V);
    const peakOfStep = async (overwriteLogits: boolean) => {
      const before = gpu.pool.stats.bytesInUse;
      gpu.pool.stats.peakBytesInUse = before;
      await tidyAsync(async () => {
        opt.zeroGrad();
        const { loss } = model.forward(tensor(gpu, ids, [B, T], 'i32'), tensor(gpu, ids, [B, T], 'i32'), {
          overwriteLogits,
        });
        backward(loss!);
        opt.update();
        return loss!.item();
      });
      return gpu.pool.stats.peakBytesInUse - before;
    };
    const separate = await peakOfStep(false);
    const inPlace = await peakOfStep(true);
    // Everything but the logits takes well under one logits buffer (activations 32 × 64 floats, wte's gradient
    // is packed and allocated already): in place, one buffer; with a separate gradient, two.
    expect(inPlace).toBeGreaterThanOrEqual(logitBytes);
    expect(inPlace).toBeLessThan(1.5 * logitBytes);
    expect(separate).toBeGreaterThanOrEqual(2 * logitBytes);
    opt.dispose();
    model.dispose();
  });

  it('overwriting the logits gives the PyTorch-checked gradients, bit for bit (tiny GPT-2 fixture)', async () => {
    // tests/gpt2-reference.test.ts checks the path with a separate logits gradient against PyTorch; in place, the
    // same kernel writes the same values into the logits' buffer, and the tied wte matmul reads only those.
    const file = new URL('./fixtures/gpt2-tiny/model.bin', import.meta.url).pathname;
    const { config: cfg, params } = readLlmcModel(file);
    const { B, T, tokens } = FIXTURE;
    const rows = Array.from({ length: B }, (_, b) => tokens.slice(b * (T + 1), (b + 1) * (T + 1)));
    const x = rows.flatMap((r) => r.slice(0, T));
    const y = rows.flatMap((r) => r.slice(1));
    const grads = async (overwriteLogits: boolean) => {
      const model = new GPT2(gpu, cfg, params);
      const out = await tidyAsync(async () => {
        model.pack.zeroGrads();
        const { loss } = model.forward(tensor(gpu, x, [B, T], 'i32'), tensor(gpu, y, [B, T], 'i32'), {
          overwriteLogits,
        });
        backward(loss!);
        return (await model.pack.gradSegments![0]!.read()) as Float32Array;
      });
      model.dispose();
      return out;
    };
    const [separate, inPlace] = [await grads(false), await grads(true)];
    expect(separate.some((g) => g !== 0)).toBe(true);
    expect(Buffer.from(inPlace.buffer).equals(Buffer.from(separate.buffer))).toBe(true);
  });

  for (const profile of [true, 'wall'] as const)
    it(`--profile${profile === 'wall' ? ' wall' : ''}: GPU time per kernel and step, dispatches, matmuls`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wgpt-profile-'));
      const lines: string[] = [];
      await train(gpu, options(dir, { steps: 3, profile, log: (l) => lines.push(l) }));
      const at = lines.findIndex((l) => l.startsWith('GPU time per kernel over a step'));
      expect(lines[at]).toContain(profile === 'wall' ? 'wall time per dispatch' : 'timestamp queries');
      expect(lines[at]).toContain('mean of 2 steps'); // the first step (pipeline compilation) is not timed
      const rows = lines.slice(at + 2).filter((l) => /^ {2}\S+@v\d/.test(l));
      const kernels = rows.map((l) => l.trim().split(/\s+/)[0]);
      const adamw = adamwVersion(gpu) === 'v1' ? ['adamw@v1-r2', 'adamw_norm@v1'] : ['adamw@v2', 'adamw_norm@v2'];
      expect(kernels).toEqual(expect.arrayContaining([...adamw, 'adamw_status@v1']));
      expect(kernels.some((k) => k!.startsWith('matmul@'))).toBe(true);
      const total = lines.find((l) => /^ {2}total /.test(l))!;
      expect(total).toMatch(/\(matmuls \d+\.\d%\)$/);
      // Every dispatch of a step is timed: the calls per step add up to the dispatch count.
      const calls = rows.reduce((a, l) => a + Number(l.trim().split(/\s+/)[1]), 0);
      const dispatches = Number(/^dispatches per step: (\d+) \(AdamW 3\)$/.exec(lines.at(-1)!)![1]);
      expect(Number(total.trim().split(/\s+/)[1])).toBe(calls);
      expect(calls).toBe(dispatches);
    });
});

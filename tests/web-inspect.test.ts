// The model view's numbers in Node (Dawn): inspect() reads a layer's q and k through GPT2.forward's hook and turns
// them into attention probabilities equal to an f64 forward's; topK is the softmax of the logits; a model too large
// for the adapter is refused before any buffer, saying what is too large.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPT2, makeConfig, paramCount, paramOffsets } from '@wgpt/gpt2';
import { type Gpu, noGrad, tensor, tidyAsync } from '@wgpt/runtime';
import { randomF32, testGpu } from '@wgpt/runtime/testing';
import { architecture, checkModelFits, inspect, topK } from '@wgpt/web';
import { attentionProbsRef, qkvRef } from './attention-ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu?.destroy());

describe('model view', () => {
  it("inspect: every layer's attention equals the f64 forward's; its logits are the forward's last row", async () => {
    const c = makeConfig({ L: 3, C: 32, NH: 4, V: 100, maxT: 32 });
    // LayerNorm weights of 1 to 3 make the attention far from uniform.
    const params = randomF32(paramCount(c), 11, -0.15, 0.15);
    const offs = paramOffsets(c);
    for (const n of ['ln1w', 'ln2w', 'lnfw']) params.set(randomF32(offs[n]!.size, 12, 1, 3), offs[n]!.offset);
    const model = new GPT2(gpu, c, params);
    try {
      const ids = Array.from({ length: 13 }, (_, i) => (i * 37 + 5) % c.V);
      for (let layer = 0; layer < c.L; layer++) {
        const r = await inspect(model, ids, layer);
        const want = attentionProbsRef(qkvRef(c, params, ids, layer), ids.length, c.C, c.NH);
        // As in the browser test: f32 scores within ±5 off by ≲5e-5, a softmax halves that.
        let worst = 0;
        r.attention.forEach((h, i) =>
          h.forEach((row, q) =>
            row.forEach((p, k) => {
              worst = Math.max(worst, Math.abs(p - want[i]![q]![k]!));
            }),
          ),
        );
        expect(worst, `layer ${layer}`).toBeLessThanOrEqual(5e-5);
        expect(Math.max(...r.attention.flatMap((h) => h.slice(3).flat()))).toBeGreaterThan(0.5);
      }
      const logits = await tidyAsync(async () => {
        const { logits } = noGrad(() => model.forward(tensor(gpu, ids, [1, ids.length], 'i32')));
        return (await logits.read()) as Float32Array;
      });
      const r = await inspect(model, ids, 0);
      const T = ids.length;
      expect(Array.from(r.lastLogits)).toEqual(Array.from(logits.subarray((T - 1) * c.Vp, (T - 1) * c.Vp + c.V)));
      await expect(inspect(model, [1, 2], 3)).rejects.toThrow('layer 3: the model has 0..2');
    } finally {
      model.dispose();
    }
  });

  it('topK: the softmax of the logits, most probable first, ties by id', () => {
    const logits = [0, Math.log(3), 1, Math.log(3), -2];
    const z = 1 + 3 + Math.E + 3 + Math.exp(-2);
    const top = topK(logits, 3);
    expect(top.map((t) => t.id)).toEqual([1, 3, 2]);
    top.forEach((t, i) => expect(t.p).toBeCloseTo([3 / z, 3 / z, Math.E / z][i]!, 15));
  });

  it('architecture: every parameter tensor with its count, summing to paramCount', () => {
    const c = makeConfig({ L: 2, C: 32, NH: 2, V: 300, maxT: 64 });
    const a = architecture(c);
    expect(a.rows.map((r) => r.name)).toEqual(Object.keys(paramOffsets(c)));
    expect(a.rows.find((r) => r.name === 'qkvw')).toEqual({ name: 'qkvw', shape: [2, 96, 32], count: 2 * 96 * 32 });
    expect(a.total).toBe(paramCount(c));
  });

  it('a model too large for the adapter is refused, naming the part, the sizes and what to do', () => {
    const c = makeConfig({ L: 2, C: 768, NH: 12, V: 50257, maxT: 1024 });
    const small = { limits: { maxStorageBufferBindingSize: 128 << 20 } } as unknown as Gpu;
    // wte: 50304 × 768 × 4 = 154.5 MB > 128 MiB.
    expect(() => checkModelFits(small, c, 1024, 'gpt2.bin')).toThrow(
      'gpt2.bin is too large for this adapter: its token embedding (Vp=50304 × C=768) needs 154533888 bytes, and ' +
        'its largest buffer is 134217728 bytes (maxStorageBufferBindingSize); use a smaller model, batch or ' +
        'context, or a browser on a GPU',
    );
    const big = { limits: { maxStorageBufferBindingSize: 1 << 30 } } as unknown as Gpu;
    expect(() => checkModelFits(big, c, 1024, 'gpt2.bin')).not.toThrow();
    // The logits of 8192 positions: 8192 × 50304 × 4 > 1 GiB.
    expect(() => checkModelFits(big, c, 8192, 'x')).toThrow(/the logits of 8192 positions over Vp=50304 needs/);
  });
});

import { EPS32, checkOp, randomF32, rng, testGpu } from '@wgpt/runtime/testing';
import { checkSpec, tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossEntropy } from '../index.ts';
import { crossEntropyBackwardSpec, crossEntropyForwardSpec } from './crossentropy.ts';
import { crossEntropyRef } from './crossentropy.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

function targetsFor(R: number, V: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: R }, () => Math.floor(r() * V));
}

// Absolute error: each thread sums ceil(V/64) exps in sequence (each exp within a few ulps), then a 6-level merge:
// the sum carries ≤ (ceil(V/64) + 6 + 4)·ε relative error, which log turns into that much absolute error in the
// loss; each probability exp(x − max) / sum carries as much, so the gradient row p − onehot(t) is off by that
// much times ‖p‖ ≤ 1.
// The ×8 turns absolute into relative error, which is what checkOp measures: the forward divides by the loss, the
// gradient by ‖p − onehot(t)‖ ≥ 1 − p_t = 1 − exp(−loss). For every loss ≥ 1/7 both factors are below 8 (7 and
// 1/(1 − e^(−1/7)) = 7.5); the cases below have losses ≥ 1.3, and the test checks that premise per case.
// A wrong max or index is off by ≫ 1e-3.
const MIN_LOSS = 1 / 7;
const tol = (V: number) => (Math.ceil(V / 64) + 10) * EPS32 * 8;

describe('cross_entropy', () => {
  for (const s of [crossEntropyForwardSpec, crossEntropyBackwardSpec])
    it(`${s.name} matches its WGSL`, () => expect(checkSpec(s)).toEqual([]));

  for (const [R, V] of [[1, 1], [1, 3], [3, 17], [17, 65], [5, 769], [2, 1000]] as [number, number][]) {
    it(`R=${R} V=${V}`, async () => {
      const logits = randomF32(R * V, R * V, -4, 4);
      const t = targetsFor(R, V, R + V);
      const inputs = [{ data: logits, shape: [R, V] }, { data: t, shape: [R], dtype: 'i32' as const }];
      const r = await checkOp(gpu, (l, tt) => crossEntropy(l, tt), inputs, ([l, tt]) => crossEntropyRef(l!, tt!, R, V));
      if (V === 1) {
        // A single class: softmax is exactly 1, so the loss is exactly 0 and so is the gradient (relErr against an
        // all-zero reference is the absolute error).
        expect(Array.from(r.out)).toEqual(new Array(R).fill(0));
        expect(r.gradWrite[0]).toBe(0);
        expect(r.gradAccumulate[0]).toBe(0);
        return;
      }
      expect(Math.min(...crossEntropyRef(logits, t, R, V)), 'the premise of tol').toBeGreaterThanOrEqual(MIN_LOSS);
      expect(r.forward).toBeLessThanOrEqual(tol(V));
      expect(r.gradWrite[0]).toBeLessThanOrEqual(tol(V));
      expect(r.gradAccumulate[0]).toBeLessThanOrEqual(tol(V));
    });
  }

  it('large logits do not overflow', async () => {
    const logits = Float32Array.from([1000, 999, -1000, 50, 3e4, 3e4 - 1]);
    const inputs = [{ data: logits, shape: [2, 3] }, { data: [1, 2], shape: [2], dtype: 'i32' as const }];
    const r = await checkOp(gpu, (l, tt) => crossEntropy(l, tt), inputs, ([l, tt]) => crossEntropyRef(l!, tt!, 2, 3));
    expect(r.forward).toBeLessThanOrEqual(1e-6);
  });

  it('an out-of-range target gives NaN, never a plausible loss', async () => {
    await tidyAsync(async () => {
      const l = tensor(gpu, randomF32(6, 1), [2, 3]);
      const t = tensor(gpu, [1, 3], [2], 'i32');
      const out = await crossEntropy(l, t).read();
      expect(Number.isFinite(out[0]!)).toBe(true);
      expect(Number.isNaN(out[1]!)).toBe(true);
    });
  });
});

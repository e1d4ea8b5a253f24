import { EPS32, checkOp, randomF32, testGpu } from '@wgpt/runtime/testing';
import { checkSpec, type Gpu } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linear, matmul } from '../index.ts';
import { matmulSpec } from './matmul.ts';
import { linearRef, matmulRef } from './matmul.ref.ts';

// Bound for a length-K f32 dot product with random-sign terms: rounding errors of the running sum add like a random
// walk, ‖err‖/‖ref‖ ≈ sqrt(K)·ε/sqrt(2); 4·sqrt(K)·ε leaves a wide margin yet catches any wrong term (≥ 1/K).
const tol = (K: number) => 4 * Math.sqrt(Math.max(K, 1)) * EPS32;

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

describe('matmul', () => {
  it('spec matches its WGSL', () => expect(checkSpec(matmulSpec)).toEqual([]));

  // (M, K, N): odd sizes, edge tiles, K shorter and longer than a tile, one-element cases.
  const forwardGrid: [number, number, number][] = [
    [1, 1, 1],
    [3, 17, 5],
    [17, 65, 3],
    [65, 127, 17],
    [1, 769, 3],
    [127, 3, 65],
  ];
  for (const [M, K, N] of forwardGrid) {
    it(`forward M=${M} K=${K} N=${N}`, async () => {
      const a = randomF32(M * K, M * 1000 + K);
      const b = randomF32(K * N, N * 1000 + K + 7);
      const r = await checkOp(gpu, (x, y) => matmul(x, y), [{ data: a, shape: [M, K], grad: false }, { data: b, shape: [K, N], grad: false }], ([x, y]) => matmulRef(x!, y!, M, K, N));
      expect(r.forward).toBeLessThanOrEqual(tol(K));
    });
  }

  // Gradients against central differences of the f64 reference: small shapes (FD costs one reference per element).
  for (const [M, K, N] of [[3, 5, 7], [17, 3, 1], [1, 19, 17]] as [number, number, number][]) {
    it(`gradients M=${M} K=${K} N=${N} (write, then accumulate)`, async () => {
      const r = await checkOp(gpu, (x, y) => matmul(x, y), [{ data: randomF32(M * K, 3), shape: [M, K] }, { data: randomF32(K * N, 4), shape: [K, N] }], ([x, y]) => matmulRef(x!, y!, M, K, N));
      expect(r.forward).toBeLessThanOrEqual(tol(K));
      // dA contracts over N, dB over M.
      expect(r.gradWrite[0]).toBeLessThanOrEqual(tol(N));
      expect(r.gradWrite[1]).toBeLessThanOrEqual(tol(M));
      expect(r.gradAccumulate[0]).toBeLessThanOrEqual(tol(2 * N));
      expect(r.gradAccumulate[1]).toBeLessThanOrEqual(tol(2 * M));
    });
  }
});

describe('linear', () => {
  for (const [M, C, OC] of [[5, 7, 3], [17, 16, 33], [1, 3, 65]] as [number, number, number][]) {
    it(`forward and gradients M=${M} C=${C} OC=${OC}, with bias`, async () => {
      const r = await checkOp(
        gpu,
        (x, w, b) => linear(x, w, b),
        [{ data: randomF32(M * C, 11), shape: [M, C] }, { data: randomF32(OC * C, 12), shape: [OC, C] }, { data: randomF32(OC, 13), shape: [OC] }],
        ([x, w, b]) => linearRef(x!, w!, b!, M, C, OC),
      );
      expect(r.forward).toBeLessThanOrEqual(tol(C + 1));
      expect(r.gradWrite[0]).toBeLessThanOrEqual(tol(OC));
      expect(r.gradWrite[1]).toBeLessThanOrEqual(tol(M));
      expect(r.gradWrite[2]).toBeLessThanOrEqual(tol(M));
      for (const e of r.gradAccumulate) expect(e).toBeLessThanOrEqual(tol(2 * Math.max(M, OC)));
    });
  }

  it('without bias', async () => {
    const r = await checkOp(gpu, (x, w) => linear(x, w), [{ data: randomF32(12, 1), shape: [4, 3] }, { data: randomF32(6, 2), shape: [2, 3] }], ([x, w]) => linearRef(x!, w!, null, 4, 3, 2));
    expect(r.forward).toBeLessThanOrEqual(tol(3));
    expect(r.gradWrite[1]).toBeLessThanOrEqual(tol(4));
  });

  it('rejects mismatched shapes naming the tensors', async () => {
    const { tensor, tidy } = await import('@wgpt/runtime');
    tidy(() => {
      const x = tensor(gpu, new Float32Array(6), [2, 3]);
      const w = tensor(gpu, new Float32Array(8), [2, 4]);
      expect(() => linear(x, w)).toThrow(/linear: .*\[2x4\].*dimension 1 must be 3/);
    });
  });
});

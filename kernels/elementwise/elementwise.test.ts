import { EPS32, checkOp, randomF32, testGpu } from '@wgpt/runtime/testing';
import { checkSpec, tensor, tidy, type Gpu } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { add, gelu, reshape } from '../index.ts';
import { accumulateSpec, addSpec, geluBackwardSpec, geluForwardSpec } from './elementwise.ts';
import { addRef, geluRef } from './elementwise.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

const SIZES = [1, 3, 17, 65, 127, 769];

describe('elementwise specs', () => {
  for (const s of [addSpec, accumulateSpec, geluForwardSpec, geluBackwardSpec])
    it(`${s.name} matches its WGSL`, () => expect(checkSpec(s)).toEqual([]));
});

describe('add', () => {
  for (const n of SIZES) {
    it(`n=${n}`, async () => {
      const inputs = [{ data: randomF32(n, n), shape: [n] }, { data: randomF32(n, n + 1), shape: [n] }];
      const r = await checkOp(gpu, (a, b) => add(a, b), inputs, ([a, b]) => addRef(a!, b!));
      // One rounding of an exact sum: ≤ ε relative per element.
      expect(r.forward).toBeLessThanOrEqual(EPS32);
      // Pass-through gradient of both inputs: an exact copy of g, then exactly 2g; the f64 central differences of
      // Σ g·(a + b) are exact to ~1e-11 (roundoff ε64/h), so 1e-9 leaves no room for a wrong element.
      expect(r.gradWrite).toHaveLength(2);
      for (const e of [...r.gradWrite, ...r.gradAccumulate]) expect(e).toBeLessThanOrEqual(1e-9);
    });
  }

  it('rejects different shapes', () => {
    tidy(() => {
      expect(() => add(tensor(gpu, [1, 2], [2]), tensor(gpu, [1, 2, 3], [3]))).toThrow(/add: shapes differ/);
    });
  });
});

describe('gelu', () => {
  // exp and tanh in WGSL are allowed a few ulps (WGSL: exp within 3 + 2|x| ulp); the formula adds ~6 roundings.
  // 64·ε bounds the elementwise relative error with room to spare; a wrong constant is off by ≥ 1e-4.
  const TOL = 64 * EPS32;
  for (const n of SIZES) {
    it(`n=${n}, x in [-6, 6)`, async () => {
      const r = await checkOp(
        gpu,
        (x) => gelu(x),
        [{ data: randomF32(n, 7 * n, -6, 6), shape: [n] }],
        ([x]) => geluRef(x!),
      );
      expect(r.forward).toBeLessThanOrEqual(TOL);
      expect(r.gradWrite[0]).toBeLessThanOrEqual(TOL);
      expect(r.gradAccumulate[0]).toBeLessThanOrEqual(TOL);
    });
  }

  it('stays finite for large |x|', async () => {
    const xs = [-1e4, -100, -30, -10, 10, 30, 100, 1e4];
    const r = await checkOp(gpu, (x) => gelu(x), [{ data: xs, shape: [xs.length] }], ([x]) => geluRef(x!));
    expect(r.forward).toBeLessThanOrEqual(TOL);
    expect(r.gradWrite[0]).toBeLessThanOrEqual(TOL);
  });
});

describe('reshape', () => {
  it('views the same data with another shape; the gradient passes through', async () => {
    const x = randomF32(3 * 5 * 7, 77);
    const r = await checkOp(
      gpu,
      (t) => gelu(reshape(t, [15, 7])),
      [{ data: x, shape: [3, 5, 7] }],
      ([v]) => geluRef(v!),
    );
    expect(r.forward).toBeLessThanOrEqual(64 * EPS32);
    expect(r.gradWrite[0]).toBeLessThanOrEqual(64 * EPS32);
    expect(r.gradAccumulate[0]).toBeLessThanOrEqual(64 * EPS32);
  });

  it('refuses a shape with another element count', () => {
    tidy(() => {
      expect(() => reshape(tensor(gpu, [1, 2, 3, 4], [4]), [3])).toThrow(/3 elements, not 4/);
    });
  });
});

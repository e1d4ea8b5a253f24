import { EPS32, checkOp, randomF32, testGpu } from '@wgpt/runtime/testing';
import { backward, checkSpec, tensor, tidy, tidyAsync, type Gpu } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { add, gelu, reshape } from '../index.ts';
import {
  accumulateInto,
  accumulatePairInto,
  accumulatePairV2Spec,
  accumulateSpec,
  accumulateV2Spec,
  addInto,
  addSpec,
  addV2Spec,
  elementwiseVersion,
  geluBackwardInto,
  geluBackwardSpec,
  geluBackwardV2Spec,
  geluForwardSpec,
  type ElementwiseVersion,
} from './elementwise.ts';
import { addRef, geluRef } from './elementwise.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

// Odd sizes run v1 everywhere; multiples of 4 run v2 on software adapters (the bit-for-bit tests below take v2
// through larger grids).
const SIZES = [1, 3, 17, 65, 127, 769, 4, 68, 260];

describe('elementwise specs', () => {
  for (const s of [
    addSpec,
    accumulateSpec,
    geluForwardSpec,
    geluBackwardSpec,
    addV2Spec,
    accumulateV2Spec,
    accumulatePairV2Spec,
    geluBackwardV2Spec,
  ])
    it(`${s.name}@${s.version} matches its WGSL`, () => expect(checkSpec(s)).toEqual([]));

  it('runs v2 by default on the software test adapter when n % 4 == 0', () => {
    expect(elementwiseVersion(gpu, 64)).toBe(gpu.software ? 'v2' : 'v1');
    expect(elementwiseVersion(gpu, 66)).toBe('v1');
  });
});

// v2 is v1's arithmetic per element (the f64 tests below check v1 on odd sizes and the default on the others): the
// same bits, on sizes around the v2 grid's steps (16 vec4s per invocation, 64 invocations per workgroup, so 4096
// elements per workgroup), and nothing written past n (the buffers hold 16 more elements, kept as they were). The
// outputs start with values other than the result, so an element not written shows.
describe('v2 = v1, bit for bit', () => {
  const PAD = 16;
  /** Runs `record` with each version on fresh copies of `outs` (n + PAD elements each) and returns the results. */
  async function both(
    ins: Float32Array[],
    outs: Float32Array[],
    record: (v: ElementwiseVersion, ins: GPUBuffer[], outs: GPUBuffer[]) => void,
  ): Promise<Float32Array[][]> {
    const res: Float32Array[][] = [];
    for (const v of ['v1', 'v2'] as const)
      res.push(
        await tidyAsync(async () => {
          const i = ins.map((x) => tensor(gpu, x, [x.length]).buffer);
          const o = outs.map((x) => tensor(gpu, x, [x.length]));
          record(
            v,
            i,
            o.map((t) => t.buffer),
          );
          return Promise.all(o.map(async (t) => (await t.read()) as Float32Array));
        }),
      );
    return res;
  }
  const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
  /** Output contents before the kernel: finite values, then a marker past n. */
  const before = (n: number, seed: number) => {
    const x = new Float32Array(n + PAD).fill(-7.5);
    x.set(randomF32(n, seed));
    return x;
  };

  for (const n of [4, 60, 4096, 4100, 70000]) {
    const src = randomF32(n + PAD, n, -6, 6);
    const other = randomF32(n + PAD, n + 1);
    it(`n=${n}: add, accumulate, the pair, GELU backward`, async () => {
      for (const acc of [0, 1] as const) {
        const [v1, v2] = await both([src], [before(n, 1)], (v, [s], [o]) => accumulateInto(gpu, s!, o!, n, acc, v));
        expect(same(v1![0]!, v2![0]!), `accumulate ${acc}`).toBe(true);
        expect(Array.from(v2![0]!.subarray(n))).toEqual(new Array(PAD).fill(-7.5));
        const [g1, g2] = await both([src, other], [before(n, 2)], (v, [x, d], [o]) =>
          geluBackwardInto(gpu, x!, d!, o!, n, acc, v),
        );
        expect(same(g1![0]!, g2![0]!), `gelu backward ${acc}`).toBe(true);
        expect(Array.from(g2![0]!.subarray(n))).toEqual(new Array(PAD).fill(-7.5));
      }
      const [a1, a2] = await both([src, other], [before(n, 3)], (v, [x, y], [o]) => addInto(gpu, x!, y!, o!, n, v));
      expect(same(a1![0]!, a2![0]!), 'add').toBe(true);
      expect(Array.from(a2![0]!.subarray(n))).toEqual(new Array(PAD).fill(-7.5));
      for (const [acc0, acc1] of [
        [0, 1],
        [1, 0],
      ] as const) {
        const [p1, p2] = await both([src], [before(n, 4), before(n, 5)], (v, [s], [o0, o1]) =>
          accumulatePairInto(gpu, s!, n, { buffer: o0!, accumulate: acc0 }, { buffer: o1!, accumulate: acc1 }, v),
        );
        for (const k of [0, 1]) {
          expect(same(p1![k]!, p2![k]!), `pair ${acc0}${acc1} output ${k}`).toBe(true);
          expect(Array.from(p2![k]!.subarray(n))).toEqual(new Array(PAD).fill(-7.5));
        }
        // And the pair is what it says: out_k = src, or before_k + src.
        const want = (acc: number, seed: number) => before(n, seed).map((b, i) => (i < n ? acc * b + src[i]! : b));
        expect(same(p2![0]!, want(acc0, 4))).toBe(true);
        expect(same(p2![1]!, want(acc1, 5))).toBe(true);
      }
    });
  }
});

describe('add', () => {
  for (const n of SIZES) {
    it(`n=${n}`, async () => {
      const inputs = [
        { data: randomF32(n, n), shape: [n] },
        { data: randomF32(n, n + 1), shape: [n] },
      ];
      const r = await checkOp(
        gpu,
        (a, b) => add(a, b),
        inputs,
        ([a, b]) => addRef(a!, b!),
      );
      // One rounding of an exact sum: ≤ ε relative per element.
      expect(r.forward).toBeLessThanOrEqual(EPS32);
      // Pass-through gradient of both inputs: an exact copy of g, then exactly 2g; the f64 central differences of
      // Σ g·(a + b) are exact to ~1e-11 (roundoff ε64/h), so 1e-9 leaves no room for a wrong element.
      expect(r.gradWrite).toHaveLength(2);
      for (const e of [...r.gradWrite, ...r.gradAccumulate]) expect(e).toBeLessThanOrEqual(1e-9);
    });
  }

  it('add(x, x): the gradient is 2g (two contributions to one buffer, not one dispatch binding it twice)', async () => {
    const n = 68;
    const g = randomF32(n, 5);
    const got = await tidyAsync(async () => {
      const x = tensor(gpu, randomF32(n, 4), [n], 'f32', { requiresGrad: true });
      backward(add(x, x), tensor(gpu, g, [n]));
      return x.grad!.read();
    });
    expect(Array.from(got)).toEqual(Array.from(g, (v) => 2 * v));
  });

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
    const r = await checkOp(
      gpu,
      (x) => gelu(x),
      [{ data: xs, shape: [xs.length] }],
      ([x]) => geluRef(x!),
    );
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

import { EPS32, checkOp, randomF32, relErr, testGpu } from '@wgpt/runtime/testing';
import { checkSpec, empty, tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mean, sum, sumRowsInto } from '../index.ts';
import { broadcastSpec, sumAllSpec, sumRowsSpec } from './reduce.ts';
import { sumAbsRef, sumRef, sumRowsRef } from './reduce.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

// sum_all: each of 256 threads adds ceil(n/256) terms in sequence, then an 8-level tree: at most
// (ceil(n/256) + 8 + 1) roundings, each ≤ ε times a partial sum ≤ Σ|x|. So |err| ≤ (ceil(n/256) + 9)·ε·Σ|x|.
const sumBound = (x: ArrayLike<number>) => (Math.ceil(x.length / 256) + 9) * EPS32 * sumAbsRef(x);

describe('reduce specs', () => {
  for (const s of [sumAllSpec, sumRowsSpec, broadcastSpec])
    it(`${s.name} matches its WGSL`, () => expect(checkSpec(s)).toEqual([]));
});

describe('sum and mean', () => {
  for (const n of [1, 3, 17, 255, 256, 257, 769, 70001]) {
    it(`sum n=${n}`, async () => {
      const x = randomF32(n, n);
      const fdCheck = n <= 769;
      const r = await checkOp(gpu, (t) => sum(t), [{ data: x, shape: [n], grad: fdCheck }], ([v]) => [sumRef(v!)]);
      expect(Math.abs(r.out[0]! - sumRef(x))).toBeLessThanOrEqual(sumBound(x));
      // d sum / dx = 1 exactly: the broadcast writes g, then 2g.
      if (fdCheck) {
        expect(r.gradWrite[0]).toBeLessThanOrEqual(1e-9);
        expect(r.gradAccumulate[0]).toBeLessThanOrEqual(1e-9);
      }
    });
  }

  it('mean n=65', async () => {
    const x = randomF32(65, 5);
    const r = await checkOp(
      gpu,
      (t) => mean(t),
      [{ data: x, shape: [5, 13] }],
      ([v]) => [sumRef(v!) / 65],
    );
    expect(Math.abs(r.out[0]! - sumRef(x) / 65)).toBeLessThanOrEqual(
      sumBound(x) / 65 + EPS32 * Math.abs(sumRef(x) / 65),
    );
    // g/65 rounded once to f32.
    expect(r.gradWrite[0]).toBeLessThanOrEqual(2 * EPS32);
  });
});

describe.each(['v1', 'v2'] as const)('sum_rows %s (bias gradient)', (version) => {
  const shapes = [[1, 1], [3, 17], [65, 3], [127, 65], [600, 70]] as [number, number][];
  for (const [M, N] of shapes) {
    it(`M=${M} N=${N}, overwrite then accumulate`, async () => {
      await tidyAsync(async () => {
        const x = randomF32(M * N, M + N);
        const xt = tensor(gpu, x, [M, N]);
        const out = empty(gpu, [N]);
        sumRowsInto(gpu, xt.buffer, M, N, out.buffer, 0, version);
        const ref = sumRowsRef(x, M, N);
        // M sequential additions per column: ≤ M·ε·Σ|x| per column; as a norm-wise bound, M·ε·(Σ|x|/|Σx|) is too
        // loose to mean anything, so check each column against its own sequential-sum bound.
        const got = await out.read();
        for (let n = 0; n < N; n++) {
          let abs = 0;
          for (let m = 0; m < M; m++) abs += Math.abs(x[m * N + n]!);
          expect(Math.abs(got[n]! - ref[n]!)).toBeLessThanOrEqual(M * EPS32 * abs);
        }
        sumRowsInto(gpu, xt.buffer, M, N, out.buffer, 1, version);
        expect(relErr(await out.read(), ref.map((v) => 2 * v))).toBeLessThanOrEqual(4 * M * EPS32 + 1e-12);
      });
    });
  }
});

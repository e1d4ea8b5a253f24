import { EPS32, checkOp, randomF32, relErr, testGpu } from '@wgpt/runtime/testing';
import { checkSpec, empty, tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linear, linearGelu, matmul } from '../index.ts';
import { geluRef } from '../elementwise/elementwise.ref.ts';
import { subgroupsOf4 } from '../common.ts';
import {
  gemm,
  gemmStrided,
  gemmVersion,
  matmulSpec,
  matmulSubgroupSpec,
  matmulTiledSpec,
  matmulVec4Spec,
  subgroupEligible,
  vec4Eligible,
  type GemmArgs,
  type TileConfig,
} from './matmul.ts';
import { linearRef, matmulRef, transposeRef } from './matmul.ref.ts';

// Bound for a length-K f32 dot product with random-sign terms: rounding errors of the running sum add like a random
// walk, ‖err‖/‖ref‖ ≈ sqrt(K)·ε/sqrt(2); 4·sqrt(K)·ε leaves a wide margin yet catches any wrong term (≥ 1/K).
const tol = (K: number) => 4 * Math.sqrt(Math.max(K, 1)) * EPS32;

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

describe('matmul', () => {
  it('specs match their WGSL', () => {
    expect(checkSpec(matmulSpec)).toEqual([]);
    expect(checkSpec(matmulTiledSpec)).toEqual([]);
    expect(checkSpec(matmulVec4Spec)).toEqual([]);
    expect(checkSpec(matmulSubgroupSpec)).toEqual([]);
  });

  it('runs v4 by default on the software test adapter, where the shapes allow', () => {
    // The v4 tests below run only where subgroups of 4 exist: make sure that is here, so they cannot pass vacuously.
    if (gpu.software) expect(subgroupsOf4(gpu)).toBe(true);
    const expected = subgroupsOf4(gpu) && gpu.software ? 'v4' : 'v3';
    expect(gemmVersion(gpu, { M: 256, N: 192, K: 64, transB: true })).toBe(expected);
    expect(gemmVersion(gpu, { M: 8, N: 8, K: 6, transA: true })).toBe('v3'); // K % 4
    expect(gemmVersion(gpu, { M: 8, N: 6, K: 8, transB: true })).toBe('v3'); // N % 4
    expect(gemmVersion(gpu, { M: 8, N: 8, K: 7 })).toBe('v2');
  });

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
      const r = await checkOp(
        gpu,
        (x, y) => matmul(x, y),
        [
          { data: a, shape: [M, K], grad: false },
          { data: b, shape: [K, N], grad: false },
        ],
        ([x, y]) => matmulRef(x!, y!, M, K, N),
      );
      expect(r.forward).toBeLessThanOrEqual(tol(K));
    });
  }

  // Gradients against central differences of the f64 reference: small shapes (FD costs one reference per element).
  for (const [M, K, N] of [
    [3, 5, 7],
    [17, 3, 1],
    [1, 19, 17],
  ] as [number, number, number][]) {
    it(`gradients M=${M} K=${K} N=${N} (write, then accumulate)`, async () => {
      const r = await checkOp(
        gpu,
        (x, y) => matmul(x, y),
        [
          { data: randomF32(M * K, 3), shape: [M, K] },
          { data: randomF32(K * N, 4), shape: [K, N] },
        ],
        ([x, y]) => matmulRef(x!, y!, M, K, N),
      );
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
  for (const [M, C, OC] of [
    [5, 7, 3],
    [17, 16, 33],
    [1, 3, 65],
  ] as [number, number, number][]) {
    it(`forward and gradients M=${M} C=${C} OC=${OC}, with bias`, async () => {
      const r = await checkOp(
        gpu,
        (x, w, b) => linear(x, w, b),
        [
          { data: randomF32(M * C, 11), shape: [M, C] },
          { data: randomF32(OC * C, 12), shape: [OC, C] },
          { data: randomF32(OC, 13), shape: [OC] },
        ],
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
    const r = await checkOp(
      gpu,
      (x, w) => linear(x, w),
      [
        { data: randomF32(12, 1), shape: [4, 3] },
        { data: randomF32(6, 2), shape: [2, 3] },
      ],
      ([x, w]) => linearRef(x!, w!, null, 4, 3, 2),
    );
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

describe('matmul versions on every layout, epilogue and tile shape', () => {
  // Tile shapes: the default, non-square ones (16x64: the KV-cache decode step's few-row tiles), and BK that does
  // not divide K.
  const tiles: TileConfig[] = [
    { BM: 64, BN: 64, BK: 16 },
    { BM: 16, BN: 64, BK: 16 },
    { BM: 32, BN: 64, BK: 8 },
    { BM: 16, BN: 16, BK: 4 },
  ];
  // Odd shapes (v2 only) and shapes whose dimensions are multiples of 4 but not of the tiles (v2 and v3).
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [17, 65, 3],
    [65, 17, 127],
    [3, 769, 5],
    [4, 4, 4],
    [68, 20, 132],
    [12, 772, 8],
    [9, 12, 20], // v4: a partial 8-row tile and a lane past N
  ];
  for (const [M, K, N] of shapes)
    for (const transA of [false, true])
      for (const transB of [false, true]) {
        const shape = `M=${M} K=${K} N=${N}${transA ? ' Aᵀ' : ''}${transB ? ' Bᵀ' : ''}`;
        it(`v2/v3 ${shape}, all tile shapes, bias+accumulate`, async () => {
          await tidyAsync(async () => {
            const a = randomF32(M * K, M + K); // op(A) (M, K), row-major
            const b = randomF32(K * N, K + N + 1); // op(B) (K, N)
            const bias = randomF32(N, 9);
            const prev = randomF32(M * N, 10);
            const A = tensor(gpu, transA ? transposeRef(a, M, K) : a, transA ? [K, M] : [M, K]);
            const B = tensor(gpu, transB ? transposeRef(b, K, N) : b, transB ? [N, K] : [K, N]);
            const bT = tensor(gpu, bias, [N]);
            const ref = matmulRef(a, b, M, K, N);
            const C3 = empty(gpu, [M, N]);
            let v3first: Buffer | undefined;
            let ran = 0;
            for (const t of tiles)
              for (const version of ['v2', 'v3'] as const) {
                if (version === 'v3' && !vec4Eligible({ M, N, K, transA, transB }, t)) continue;
                ran++;
                const what = `${version} tiles ${JSON.stringify(t)}`;
                const C = empty(gpu, [M, N]);
                gemm(gpu, { M, N, K, a: A.buffer, transA, b: B.buffer, transB, c: C.buffer, tiles: t, version });
                const got = await C.read();
                expect(relErr(got, ref), what).toBeLessThanOrEqual(tol(K));
                // v3 adds along K in the same order whatever the tiles: the decode step's few-row tiles (and v4)
                // rely on getting the default tiles' bits.
                if (version === 'v3') {
                  const bits = Buffer.from(got.buffer);
                  v3first ??= bits;
                  expect(bits.equals(v3first), `${what}: the same bits as ${JSON.stringify(tiles[0])}`).toBe(true);
                }
                // alpha, bias and accumulate together: C = prev + 0.5·A·B + bias
                const C2 = tensor(gpu, prev, [M, N]);
                gemm(gpu, {
                  M,
                  N,
                  K,
                  a: A.buffer,
                  transA,
                  b: B.buffer,
                  transB,
                  c: C2.buffer,
                  bias: bT.buffer,
                  accumulate: 1,
                  alpha: 0.5,
                  tiles: t,
                  version,
                });
                const want = ref.map((v, i) => prev[i]! + 0.5 * v + bias[i % N]!);
                expect(relErr(await C2.read(), want), what).toBeLessThanOrEqual(tol(K + 2));
              }
            // Aligned shapes must really have exercised v3.
            if (M % 4 === 0 && N % 4 === 0 && K % 4 === 0) expect(ran).toBe(2 * tiles.length);
            if (!subgroupsOf4(gpu) || !subgroupEligible({ M, N, K, transA, transB })) return;
            // v4 (no tiles): the same products, with the same bits as v3's default tiles.
            const g: GemmArgs = { M, N, K, a: A.buffer, transA, b: B.buffer, transB, c: C3.buffer };
            gemm(gpu, { ...g, version: 'v3' });
            const C4 = empty(gpu, [M, N]);
            gemm(gpu, { ...g, c: C4.buffer, version: 'v4' });
            const v4 = await C4.read();
            expect(relErr(v4, ref), 'v4').toBeLessThanOrEqual(tol(K));
            const v3bits = Buffer.from((await C3.read()).buffer);
            expect(Buffer.from(v4.buffer).equals(v3bits), 'v4 bits = v3 bits').toBe(true);
            const C5 = tensor(gpu, prev, [M, N]);
            gemm(gpu, { ...g, c: C5.buffer, bias: bT.buffer, accumulate: 1, alpha: 0.5, version: 'v4' });
            const want = ref.map((v, i) => prev[i]! + 0.5 * v + bias[i % N]!);
            expect(relErr(await C5.read(), want), 'v4 bias+accumulate').toBeLessThanOrEqual(tol(K + 2));
          });
        });
      }

  for (const [M, K, N, version] of [
    [17, 33, 65, 'v2'],
    [20, 36, 68, 'v3'],
    [20, 36, 68, 'v4'],
  ] as const)
    it(`${version} bias+GELU epilogue writes GELU(out) and the pre-activation`, async () => {
      if (version === 'v4' && !subgroupsOf4(gpu)) return;
      await tidyAsync(async () => {
        const a = randomF32(M * K, 1, -2, 2);
        const b = randomF32(K * N, 2);
        const bias = randomF32(N, 3);
        const C = empty(gpu, [M, N]);
        const P = empty(gpu, [M, N]);
        gemm(gpu, {
          M,
          N,
          K,
          a: tensor(gpu, a, [M, K]).buffer,
          b: tensor(gpu, b, [K, N]).buffer,
          c: C.buffer,
          bias: tensor(gpu, bias, [N]).buffer,
          gelu: true,
          pre: P.buffer,
          version,
        });
        const pre = matmulRef(a, b, M, K, N).map((v, i) => v + bias[i % N]!);
        expect(relErr(await P.read(), pre)).toBeLessThanOrEqual(tol(K + 1));
        // GELU's slope is at most ~1.13, so the pre-activation's error passes through, plus GELU's own (64 ε).
        expect(relErr(await C.read(), geluRef(pre))).toBeLessThanOrEqual(2 * tol(K + 1) + 64 * EPS32);
      });
    });

  it('v1 with explicit strides agrees with v2 on a transposed product', async () => {
    await tidyAsync(async () => {
      const [M, K, N] = [19, 23, 29];
      const a = randomF32(M * K, 5);
      const bt = randomF32(N * K, 6); // B stored (N, K)
      const A = tensor(gpu, a, [M, K]);
      const B = tensor(gpu, bt, [N, K]);
      const C1 = empty(gpu, [M, N]);
      const C2 = empty(gpu, [M, N]);
      gemmStrided(gpu, { M, N, K, a: A.buffer, sAm: K, sAk: 1, b: B.buffer, sBk: 1, sBn: K, c: C1.buffer });
      gemm(gpu, { M, N, K, a: A.buffer, b: B.buffer, transB: true, c: C2.buffer });
      const ref = matmulRef(a, transposeRef(bt, N, K), M, K, N);
      expect(relErr(await C1.read(), ref)).toBeLessThanOrEqual(tol(K));
      expect(relErr(await C2.read(), ref)).toBeLessThanOrEqual(tol(K));
    });
  });
});

describe('linear_gelu (fused)', () => {
  for (const [M, C, OC] of [
    [5, 7, 3],
    [17, 16, 33],
  ] as [number, number, number][]) {
    it(`forward and gradients M=${M} C=${C} OC=${OC}`, async () => {
      const r = await checkOp(
        gpu,
        (x, w, b) => linearGelu(x, w, b),
        [
          { data: randomF32(M * C, 21), shape: [M, C] },
          { data: randomF32(OC * C, 22), shape: [OC, C] },
          { data: randomF32(OC, 23), shape: [OC] },
        ],
        ([x, w, b]) => geluRef(linearRef(x!, w!, b!, M, C, OC)),
      );
      const gel = 64 * EPS32; // GELU and its derivative in f32 (see elementwise.test.ts)
      expect(r.forward).toBeLessThanOrEqual(2 * tol(C + 1) + gel);
      for (const e of r.gradWrite) expect(e).toBeLessThanOrEqual(2 * tol(Math.max(M, OC)) + 2 * gel);
      for (const e of r.gradAccumulate) expect(e).toBeLessThanOrEqual(2 * tol(2 * Math.max(M, OC)) + 2 * gel);
    });
  }
});

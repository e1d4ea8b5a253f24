import { EPS32, checkOp, randomF32, relErr, testGpu } from '@wgpt/runtime/testing';
import { backward, checkSpec, empty, tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layernorm, layernormForwardInto } from '../index.ts';
import { subgroupsOf4 } from '../common.ts';
import {
  layernormBackwardReduceSpec,
  layernormBackwardReduceV2Spec,
  layernormBackwardSpec,
  layernormBackwardV2Spec,
  layernormForwardSpec,
  layernormForwardV2Spec,
  layernormVersion,
  type LayerNormVersion,
} from './layernorm.ts';
import { layernormRef } from './layernorm.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

// mean and variance are length-C sums (v1: a strided run of C/256 terms, then two 16-term levels; v2: four
// interleaved runs of C/4 terms, then a pairwise sum of the four): their rounding errors
// add like a random walk, ≤ sqrt(C)·ε relative. Each output adds ≈ 6 roundings (subtract, two multiplies, fma-like add,
// inverseSqrt within 2 ulp). 4·(sqrt(C) + 8)·ε bounds that with margin; a wrong term is off by ≥ 1/C.
const tolForward = (C: number) => 4 * (Math.sqrt(C) + 8) * EPS32;
// dx = rstd·(g − mean(g) − xhat·mean(g·xhat)): the same length-C sums, and the three terms partly cancel (random
// data: the result is of the terms' order), so twice the forward bound.
const tolDx = (C: number) => 8 * (Math.sqrt(C) + 8) * EPS32;
// dweight, dbias: sums over N rows (chunk runs, then a chunk sum) of products that carry the xhat error.
const tolParams = (N: number, C: number) => 4 * (Math.sqrt(N) + Math.sqrt(C) + 8) * EPS32;

/** The versions for C columns: v1 always, v2 where C % 4 == 0 (it runs where subgroups have 4 invocations). */
const versionsFor = (C: number): LayerNormVersion[] => (C % 4 === 0 ? ['v1', 'v2'] : ['v1']);
/** Whether a version can run here (decided once the device is open). */
const runs = (version: LayerNormVersion) => version === 'v1' || subgroupsOf4(gpu);

describe('layernorm', () => {
  for (const s of [
    layernormForwardSpec,
    layernormBackwardSpec,
    layernormBackwardReduceSpec,
    layernormForwardV2Spec,
    layernormBackwardV2Spec,
    layernormBackwardReduceV2Spec,
  ])
    it(`${s.name}@${s.version} matches its WGSL`, () => expect(checkSpec(s)).toEqual([]));

  it('runs v2 by default on the software test adapter when C % 4 == 0', () => {
    // The v2 cases below run only where subgroups of 4 exist: make sure that is here, so they cannot pass vacuously.
    if (gpu.software) expect(subgroupsOf4(gpu)).toBe(true);
    expect(layernormVersion(gpu, 64)).toBe(gpu.software ? 'v2' : 'v1');
    expect(layernormVersion(gpu, 66)).toBe('v1');
  });

  // v1: 1100 rows: two rows per backward chunk (≤ 1024 chunks) and a short last chunk; C = 2048: all 8 columns per
  // thread. v2 (C % 4 == 0): 1101 rows: 276 chunks of 4 rows, the last with one; N = 2, 3: rows past N in a chunk.
  // (Not C = 2: there dx is the projection of g onto a space of dimension ~eps/var, so it is all cancellation.)
  for (const [N, C] of [
    [1, 3],
    [3, 17],
    [17, 65],
    [2, 769],
    [5, 127],
    [1, 257],
    [1100, 3],
    [2, 2048],
    [1, 4],
    [3, 12],
    [17, 68],
    [1101, 4],
    [6, 772],
  ] as [number, number][])
    for (const version of versionsFor(C))
      it(`${version} N=${N} C=${C}: forward vs f64, dx/dweight/dbias vs finite differences`, async () => {
        if (!runs(version)) return;
        const x = randomF32(N * C, N * 1000 + C, -2, 2);
        const w = randomF32(C, C + 1, 0.5, 1.5);
        const b = randomF32(C, C + 2);
        const r = await checkOp(
          gpu,
          (xx, ww, bb) => layernorm(xx, ww, bb, { version }),
          [
            { data: x, shape: [N, C] },
            { data: w, shape: [C] },
            { data: b, shape: [C] },
          ],
          ([xx, ww, bb]) => layernormRef(xx!, ww!, bb!, N, C),
        );
        expect(r.forward).toBeLessThanOrEqual(tolForward(C));
        expect(r.gradWrite[0]).toBeLessThanOrEqual(tolDx(C));
        expect(r.gradAccumulate[0]).toBeLessThanOrEqual(tolDx(C));
        for (const i of [1, 2]) {
          expect(r.gradWrite[i]).toBeLessThanOrEqual(tolParams(N, C));
          expect(r.gradAccumulate[i]).toBeLessThanOrEqual(tolParams(N, C));
        }
      });

  it('C=1: the output is the bias and every gradient but dbias is 0', async () => {
    const N = 3;
    const r = await checkOp(
      gpu,
      (xx, ww, bb) => layernorm(xx, ww, bb),
      [
        { data: [1, -2, 3], shape: [N, 1] },
        { data: [2], shape: [1] },
        { data: [0.5], shape: [1] },
      ],
      ([xx, ww, bb]) => layernormRef(xx!, ww!, bb!, N, 1),
    );
    expect(Array.from(r.out)).toEqual([0.5, 0.5, 0.5]);
    expect(r.gradWrite[0]).toBe(0);
    expect(r.gradWrite[1]).toBe(0);
    expect(r.gradWrite[2]).toBeLessThanOrEqual(EPS32 * 4);
  });

  it('N=0: empty output, zero dweight and dbias', async () => {
    const C = 5;
    const r = await checkOp(
      gpu,
      (xx, ww, bb) => layernorm(xx, ww, bb),
      [
        { data: [], shape: [0, C] },
        { data: randomF32(C, 1), shape: [C] },
        { data: randomF32(C, 2), shape: [C] },
      ],
      ([xx, ww, bb]) => layernormRef(xx!, ww!, bb!, 0, C),
    );
    expect(r.out.length).toBe(0);
    expect(r.gradWrite[1]).toBe(0);
    expect(r.gradWrite[2]).toBe(0);
  });

  it('C=3000, v1: the forward strides any width; the backward refuses more than 8 columns per thread', async () => {
    const [N, C] = [2, 3000];
    const x = randomF32(N * C, 41);
    const r = await checkOp(
      gpu,
      (xx, ww, bb) => layernorm(xx, ww, bb, { version: 'v1' }),
      [
        { data: x, shape: [N, C], grad: false },
        { data: randomF32(C, 42), shape: [C], grad: false },
        { data: randomF32(C, 43), shape: [C], grad: false },
      ],
      ([xx, ww, bb]) => layernormRef(xx!, ww!, bb!, N, C),
    );
    expect(r.forward).toBeLessThanOrEqual(tolForward(C));
    const maxThreads = Math.min(
      gpu.limits.maxComputeInvocationsPerWorkgroup,
      gpu.limits.maxComputeWorkgroupSizeX,
      1024,
    );
    if (C > 8 * maxThreads) {
      await tidyAsync(async () => {
        const xt = tensor(gpu, x, [N, C], 'f32', { requiresGrad: true });
        const w = tensor(gpu, randomF32(C, 42), [C]);
        const out = layernorm(xt, w, tensor(gpu, randomF32(C, 43), [C]), { version: 'v1' });
        expect(() => backward(out, tensor(gpu, randomF32(N * C, 44), [N, C]))).toThrow(
          /layernorm backward: C=3000 exceeds/,
        );
      });
    }
  });

  it('C=3000, v2: one invocation per row has no column limit, backward included', async () => {
    if (!runs('v2')) return;
    const [N, C] = [2, 3000];
    const r = await checkOp(
      gpu,
      (xx, ww, bb) => layernorm(xx, ww, bb, { version: 'v2' }),
      [
        { data: randomF32(N * C, 41, -2, 2), shape: [N, C] },
        { data: randomF32(C, 42, 0.5, 1.5), shape: [C] },
        { data: randomF32(C, 43), shape: [C] },
      ],
      ([xx, ww, bb]) => layernormRef(xx!, ww!, bb!, N, C),
    );
    expect(r.forward).toBeLessThanOrEqual(tolForward(C));
    expect(r.gradWrite[0]).toBeLessThanOrEqual(tolDx(C));
    for (const i of [1, 2]) expect(r.gradWrite[i]).toBeLessThanOrEqual(tolParams(N, C));
  });

  for (const [version, C] of [
    ['v1', 33],
    ['v2', 36],
  ] as const)
    it(`${version}: a large common offset does not spoil the variance (centred two-pass)`, async () => {
      if (!runs(version)) return;
      const N = 4;
      const x = randomF32(N * C, 9).map((v) => 1000 + v);
      const r = await checkOp(
        gpu,
        (xx, ww, bb) => layernorm(xx, ww, bb, { version }),
        [
          { data: x, shape: [N, C], grad: false },
          { data: new Float32Array(C).fill(1), shape: [C], grad: false },
          { data: new Float32Array(C), shape: [C], grad: false },
        ],
        ([xx, ww, bb]) => layernormRef(xx!, ww!, bb!, N, C),
      );
      // x − mean loses log2(1000) ≈ 10 bits to the offset: the inputs carry 1000·ε absolute, xhat ~1000·ε·rstd
      // relative.
      expect(r.forward).toBeLessThanOrEqual(4 * 1000 * 2 * EPS32);
    });

  for (const which of [
    [false, true, true],
    [true, false, true],
    [false, false, true],
  ])
    for (const [version, C] of [
      ['v1', 33],
      ['v2', 36],
    ] as const) {
      it(`${version}: gradients only for ${which
        .map((w, i) => (w ? ['x', 'weight', 'bias'][i] : ''))
        .filter(Boolean)
        .join(', ')}`, async () => {
        if (!runs(version)) return;
        const N = 5;
        const r = await checkOp(
          gpu,
          (xx, ww, bb) => layernorm(xx, ww, bb, { version }),
          [
            { data: randomF32(N * C, 31), shape: [N, C], grad: which[0] },
            { data: randomF32(C, 32), shape: [C], grad: which[1] },
            { data: randomF32(C, 33), shape: [C], grad: which[2] },
          ],
          ([xx, ww, bb]) => layernormRef(xx!, ww!, bb!, N, C),
        );
        which.forEach((w, i) => {
          if (!w) return expect(r.gradWrite[i]).toBeNull();
          const tol = i === 0 ? tolDx(C) : tolParams(N, C);
          expect(r.gradWrite[i]).toBeLessThanOrEqual(tol);
          expect(r.gradAccumulate[i]).toBeLessThanOrEqual(tol);
        });
      });
    }

  for (const WG of [16, 64]) {
    it(`v1 forward with ${WG} threads per row (one and four second-level partials)`, async () => {
      const [N, C] = [3, 100];
      const x = randomF32(N * C, 21);
      const w = randomF32(C, 22);
      const b = randomF32(C, 23);
      const out = await tidyAsync(async () => {
        const [xt, wt, bt, o, m, r] = [
          tensor(gpu, x, [N, C]),
          tensor(gpu, w, [C]),
          tensor(gpu, b, [C]),
          empty(gpu, [N, C]),
          empty(gpu, [N]),
          empty(gpu, [N]),
        ];
        layernormForwardInto(gpu, {
          x: xt.buffer,
          weight: wt.buffer,
          bias: bt.buffer,
          out: o.buffer,
          mean: m.buffer,
          rstd: r.buffer,
          N,
          C,
          workgroupSize: WG,
          version: 'v1',
        });
        return o.read();
      });
      expect(relErr(out, layernormRef(x, w, b, N, C))).toBeLessThanOrEqual(tolForward(C));
    });
  }

  for (const [version, C] of [
    ['v1', 19],
    ['v2', 20],
  ] as const)
    it(`${version}: dweight and dbias have the same bits on every run`, async () => {
      if (!runs(version)) return;
      const N = 1500; // more rows than chunks (v1: ≤ 1024): two rows per chunk
      const x = randomF32(N * C, 5);
      const g = randomF32(N * C, 6);
      const run = () =>
        tidyAsync(async () => {
          const xt = tensor(gpu, x, [N, C], 'f32', { requiresGrad: true });
          const wt = tensor(gpu, randomF32(C, 7), [C], 'f32', { requiresGrad: true });
          const bt = tensor(gpu, randomF32(C, 8), [C], 'f32', { requiresGrad: true });
          backward(layernorm(xt, wt, bt, { version }), tensor(gpu, g, [N, C]));
          return [await xt.grad!.read(), await wt.grad!.read(), await bt.grad!.read()].map((a) =>
            Array.from(new Uint32Array(a.buffer)),
          );
        });
      const a = await run();
      const b = await run();
      expect(b).toEqual(a);
    });
});

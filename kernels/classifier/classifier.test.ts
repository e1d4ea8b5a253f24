import { EPS32, checkOp, dot, finiteDiff, randomF32, relErr, rng, testGpu, toF64 } from '@wgpt/runtime/testing';
import { backward, checkSpec, empty, noGrad, tensor, tidyAsync, type Gpu, type Tensor } from '@wgpt/runtime';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { subgroupsOf4 } from '../common.ts';
import { fusedClassifier, fusedClassifierBackwardInto, fusedClassifierInto } from '../index.ts';
import {
  classifierVersion,
  fusedClassifierBackwardSpec,
  fusedClassifierBackwardV2Spec,
  fusedClassifierSpec,
  fusedClassifierV2Spec,
  type ClassifierVersion,
} from './classifier.ts';
import { classifierLossesRef, classifierMeanLossRef } from './classifier.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

/**
 * The VJP with a random upstream gradient on logits whose padding is NaN, against central differences of the
 * reference on the same logits with the padding zeroed (the reference never reads it, so the function is the same).
 */
async function nanPadVjp(
  version: ClassifierVersion,
  logits: Float32Array,
  t: Int32Array,
  R: number,
  V: number,
  Vp: number,
): Promise<number> {
  const g = randomF32(R, 77);
  const grad = await tidyAsync(async () => {
    const l = tensor(gpu, logits, [R, Vp], 'f32', { requiresGrad: true });
    backward(fusedClassifier(l, tensor(gpu, t, [R], 'i32'), { V, version }), tensor(gpu, g, [R]));
    return l.grad!.read();
  });
  const clean = toF64(logits).map((x) => (Number.isNaN(x) ? 0 : x));
  const fd = finiteDiff((x) => dot(g, classifierLossesRef(x, t, null, R, V, Vp)), clean);
  return relErr(grad, fd);
}

const padTo64 = (V: number) => Math.ceil(V / 64) * 64;

/** Logits (R, Vp) in [-4, 4) with `pad` in every padded column. */
function makeLogits(R: number, V: number, Vp: number, seed: number, pad: number): Float32Array {
  const real = randomF32(R * V, seed, -4, 4);
  const out = new Float32Array(R * Vp).fill(pad);
  for (let r = 0; r < R; r++) out.set(real.subarray(r * V, (r + 1) * V), r * Vp);
  return out;
}

function targetsFor(R: number, V: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: R }, () => Math.floor(r() * V));
}

// v1: each of WG threads sums ceil(V/WG) exps in sequence (in vec4 groups; exp within a few ulps), then 16 merges and
// WG/16 merges: the sum carries ≤ (ceil(V/WG) + 16 + WG/16 + 4)·ε relative error, which log turns into that much
// absolute error in the loss and which every p = exp(l − max)/sum inherits.
// v2: the max is exact; 64 partial sums per row (4 lanes × 4 vec4 accumulators × 4 components) of ceil(V/64) exps
// each, then 2 levels adding the accumulators, 2 adding the components and at most 3 in the subgroup sum of the 4
// lanes: ≤ (ceil(V/64) + 7 + 4)·ε, the same way into the loss and every p.
// The ×8 turns absolute into relative error, which is what checkOp measures (‖got − want‖ / ‖want‖ over all rows;
// a row's mask weight scales its error and its value alike, and masked rows are 0 in both): the forward divides by
// the loss, the gradient row w·g·(p − onehot(t)) by ‖p − onehot(t)‖ ≥ 1 − p_t = 1 − exp(−loss). For every loss ≥
// 1/7 both factors are below 8 (7 and 1/(1 − e^(−1/7)) = 7.5); each case checks that premise on its unmasked rows.
// A wrong max, index or column is off by ≫ 1e-3.
const MIN_LOSS = 1 / 7;
const tolWG = (V: number, WG: number) => (Math.ceil(V / WG) + 16 + WG / 16 + 4) * EPS32 * 8;
const tolV2 = (V: number) => (Math.ceil(V / 64) + 7 + 4) * EPS32 * 8;

const versions: ClassifierVersion[] = ['v1', 'v2'];
/** Whether a version can run here (decided once the device is open). */
const runs = (version: ClassifierVersion) => version === 'v1' || subgroupsOf4(gpu);

/** The smallest per-row loss (unweighted) over the rows whose mask weight is not 0. */
function minUnmaskedLoss(
  logits: Float32Array,
  t: Int32Array,
  mask: Float32Array | null,
  R: number,
  V: number,
  Vp: number,
): number {
  const losses = classifierLossesRef(logits, t, null, R, V, Vp);
  return Math.min(...Array.from(losses).filter((_, r) => !mask || mask[r] !== 0));
}

describe('fused_classifier', () => {
  for (const s of [
    fusedClassifierSpec,
    fusedClassifierBackwardSpec,
    fusedClassifierV2Spec,
    fusedClassifierBackwardV2Spec,
  ])
    it(`${s.name}@${s.version} matches its WGSL`, () => expect(checkSpec(s)).toEqual([]));

  it('runs v2 by default on the software test adapter', () => {
    // The v2 cases below run only where subgroups of 4 exist: make sure that is here, so they cannot pass vacuously.
    if (gpu.software) expect(subgroupsOf4(gpu)).toBe(true);
    expect(classifierVersion(gpu)).toBe(gpu.software ? 'v2' : 'v1');
  });

  for (const version of versions)
    describe(version, () => {
      const tol = version === 'v1' ? (V: number) => tolWG(V, 256) : tolV2;
      beforeEach((ctx) => {
        if (!runs(version)) ctx.skip(`${version} needs subgroups of 4 (${gpu.describe()})`);
      });
      // (R, V, padding value, masked?): V not a multiple of 64, garbage in the padding, R = 1, V = 1.
      const cases: [number, number, number, boolean][] = [
        [1, 3, 1e30, false],
        [3, 17, NaN, false],
        [5, 65, -1e30, true],
        [2, 769, 1e30, true],
        [17, 64, 0, true], // Vp = V: no padding
        [4, 127, Infinity, false],
      ];
      for (const [R, V, pad, masked] of cases) {
        const title = `R=${R} V=${V} Vp=${padTo64(V)} pad=${pad}${masked ? ' masked' : ''}`;
        it(`${title}: losses vs f64, VJP vs finite differences`, async () => {
          const Vp = padTo64(V);
          const logits = makeLogits(R, V, Vp, R * 100 + V, pad);
          const t = targetsFor(R, V, R + V);
          const mask = masked ? Float32Array.from({ length: R }, (_, r) => (r % 3 === 1 ? 0 : 1)) : null;
          expect(minUnmaskedLoss(logits, t, mask, R, V, Vp), 'the premise of tol').toBeGreaterThanOrEqual(MIN_LOSS);
          const inputs = [
            { data: logits, shape: [R, Vp] },
            { data: t, shape: [R], dtype: 'i32' as const },
            ...(mask ? [{ data: mask, shape: [R], grad: false }] : []),
          ];
          const r = await checkOp(
            gpu,
            (l, tt, m) => fusedClassifier(l!, tt!, { V, mask: m, version }),
            inputs,
            ([l, tt, m]) => classifierLossesRef(l!, tt!, m ?? null, R, V, Vp),
          );
          expect(r.forward).toBeLessThanOrEqual(tol(V));
          if (mask) mask.forEach((m, i) => m === 0 && expect(r.out[i]).toBe(0));
          // The FD of the reference is exactly 0 in the padded columns and on masked rows; relErr fails any NaN.
          // (finiteDiff cannot step a NaN input, so with NaN padding the gradient is checked by nanPadVjp below.)
          if (Number.isNaN(pad)) expect(await nanPadVjp(version, logits, t, R, V, Vp)).toBeLessThanOrEqual(tol(V));
          else {
            expect(r.gradWrite[0]).toBeLessThanOrEqual(tol(V));
            expect(r.gradAccumulate[0]).toBeLessThanOrEqual(tol(V));
          }
        });
      }

      it('a weighted mask (0.5, 2, 0, 1): losses and VJP vs f64, and the gradient of the weighted mean', async () => {
        const [R, V, Vp] = [4, 30, 64];
        const logits = makeLogits(R, V, Vp, 5, 1e30);
        const t = targetsFor(R, V, 6);
        const mask = Float32Array.from([0.5, 2, 0, 1]);
        expect(minUnmaskedLoss(logits, t, mask, R, V, Vp), 'the premise of tol').toBeGreaterThanOrEqual(MIN_LOSS);
        const r = await checkOp(
          gpu,
          (l, tt, m) => fusedClassifier(l!, tt!, { V, mask: m, version }),
          [
            { data: logits, shape: [R, Vp] },
            { data: t, shape: [R], dtype: 'i32' },
            { data: mask, shape: [R], grad: false },
          ],
          ([l, tt, m]) => classifierLossesRef(l!, tt!, m!, R, V, Vp),
        );
        expect(r.forward).toBeLessThanOrEqual(tol(V));
        expect(r.gradWrite[0]).toBeLessThanOrEqual(tol(V));
        expect(r.gradAccumulate[0]).toBeLessThanOrEqual(tol(V));
      });

      it('V=1: every loss and gradient is exactly 0, padding notwithstanding', async () => {
        const R = 3;
        const logits = makeLogits(R, 1, 64, 3, NaN);
        const r = await checkOp(
          gpu,
          (l, tt) => fusedClassifier(l!, tt!, { V: 1, version }),
          [
            { data: logits, shape: [R, 64] },
            { data: [0, 0, 0], shape: [R], dtype: 'i32' },
          ],
          ([l, tt]) => classifierLossesRef(l!, tt!, null, R, 1, 64),
        );
        expect(Array.from(r.out)).toEqual([0, 0, 0]);
        expect(await nanPadVjp(version, logits, Int32Array.from([0, 0, 0]), R, 1, 64)).toBe(0);
      });

      // GPT-2's use (and SFT's): L = scale · mean of the losses over unmasked rows.
      for (const [R, V, scale] of [
        [6, 50, 1],
        [1, 200, 0.25],
        [9, 65, 3],
      ] as [number, number, number][]) {
        it(`R=${R} V=${V} scale=${scale}: gradient of the masked mean loss vs finite differences`, async () => {
          const Vp = padTo64(V);
          const logits = makeLogits(R, V, Vp, 11 * R + V, 1e30);
          const t = targetsFor(R, V, 5);
          const mask = Float32Array.from({ length: R }, (_, r) => (R > 1 && r % 2 === 0 ? 0 : 1));
          // Masked rows may hold any target (an ignore index): they must not matter.
          mask.forEach((m, r) => m === 0 && (t[r] = -100));
          const count = mask.reduce((a, b) => a + b, 0);
          const got = await tidyAsync(async () => {
            const l = tensor(gpu, logits, [R, Vp], 'f32', { requiresGrad: true });
            const losses = fusedClassifier(l, tensor(gpu, t, [R], 'i32'), { V, mask: tensor(gpu, mask, [R]), version });
            const host = await losses.read();
            // The upstream gradient of scale · Σ mask·loss / count.
            backward(
              losses,
              tensor(
                gpu,
                Array.from(mask, (m) => (scale * m) / count),
                [R],
              ),
            );
            return { host, grad: await l.grad!.read() };
          });
          const want = classifierMeanLossRef(logits, t, mask, R, V, Vp, scale);
          let mean = 0;
          got.host.forEach((x) => (mean += x)); // masked rows hold exactly 0
          expect(Math.abs((scale * mean) / count - want)).toBeLessThanOrEqual(tol(V) * Math.abs(want));
          const fd = finiteDiff((x) => classifierMeanLossRef(x, t, mask, R, V, Vp, scale), toF64(logits));
          expect(relErr(got.grad, fd)).toBeLessThanOrEqual(tol(V));
        });
      }

      let rawFd: Float64Array | undefined; // the same inputs for every WG: one finite-difference pass
      // v1: threads per row; v2: threads per workgroup (1 row per workgroup, then rows past R in the last one).
      for (const WG of version === 'v1' ? [16, 64, 256, 1024] : [4, 16, 64, 256])
        it(`raw kernels (WG=${WG}): losses, then the gradient of scale · masked mean over the logits`, async (ctx) => {
          if (WG > gpu.limits.maxComputeInvocationsPerWorkgroup)
            ctx.skip(`the adapter allows ${gpu.limits.maxComputeInvocationsPerWorkgroup} threads per workgroup`);
          const [R, V, scale] = [7, 600, 0.5];
          const Vp = padTo64(V);
          const logits = makeLogits(R, V, Vp, 42, -1e30);
          const t = targetsFor(R, V, 43);
          const mask = Float32Array.from([1, 0, 1, 1, 0, 0, 1]);
          const count = 4;
          expect(minUnmaskedLoss(logits, t, mask, R, V, Vp), 'the premise of tol').toBeGreaterThanOrEqual(MIN_LOSS);
          const got = await tidyAsync(async () => {
            const [l, tt, m, losses, g] = [
              tensor(gpu, logits, [R, Vp]),
              tensor(gpu, t, [R], 'i32'),
              tensor(gpu, mask, [R]),
              empty(gpu, [R]),
              tensor(
                gpu,
                Array.from(mask, (x) => (scale * x) / count),
                [R],
              ),
            ];
            const common = {
              ...{ R, V, Vp, logits: l.buffer, targets: tt.buffer, mask: m.buffer },
              ...{ workgroupSize: WG, version },
            };
            fusedClassifierInto(gpu, { ...common, losses: losses.buffer });
            fusedClassifierBackwardInto(gpu, { ...common, dlosses: g.buffer }); // over the logits
            return { losses: await losses.read(), dl: await l.read() };
          });
          const tolRaw = version === 'v1' ? tolWG(V, WG) : tolV2(V);
          expect(relErr(got.losses, classifierLossesRef(logits, t, mask, R, V, Vp))).toBeLessThanOrEqual(tolRaw);
          rawFd ??= finiteDiff((x) => classifierMeanLossRef(x, t, mask, R, V, Vp, scale), toF64(logits));
          expect(relErr(got.dl, rawFd)).toBeLessThanOrEqual(tolRaw);
        });

      // In place, the gradient is the same arithmetic written over the logits: the same bits as the separate one (whose
      // VJP the tests above check against finite differences), overwriting or adding to a gradient already there.
      for (const masked of [false, true])
        it(`inPlace${masked ? ' (masked)' : ''}: same gradient bits in the logits' buffer, logits gone`, async () => {
          const [R, V] = [5, 131];
          const Vp = padTo64(V);
          const logits = makeLogits(R, V, Vp, 9, 1e30);
          const t = targetsFor(R, V, 10);
          const mask = masked ? Float32Array.from([1, 0, 2, 1, 0.5]) : null;
          const g = randomF32(R, 11);
          const run = (inPlace: boolean, before?: Float32Array) =>
            tidyAsync(async () => {
              const l = tensor(gpu, logits, [R, Vp], 'f32', { requiresGrad: true });
              if (before) (l.ensureGrad().write(before), l.markGradReady());
              const m = mask ? tensor(gpu, mask, [R]) : undefined;
              backward(
                fusedClassifier(l, tensor(gpu, t, [R], 'i32'), { V, mask: m, inPlace, version }),
                tensor(gpu, g, [R]),
              );
              const shared = l.grad!.buffer === l.buffer;
              const grad = (await l.grad!.read()) as Float32Array;
              const logitsRead = await l.read().then(
                () => 'read',
                (e: Error) => e.message,
              );
              return { shared, grad, logitsRead };
            });
          const separate = await run(false);
          const inPlace = await run(true);
          expect(separate.shared).toBe(false);
          expect(inPlace.shared).toBe(true);
          expect(Buffer.from(inPlace.grad.buffer).equals(Buffer.from(separate.grad.buffer))).toBe(true);
          expect(separate.logitsRead).toBe('read');
          expect(inPlace.logitsRead).toMatch(/holds its gradient now \(fused_classifier wrote it over the values/);
          // A gradient already there (another consumer wrote it): in place is not possible, the backward adds to it.
          const acc = await run(true, separate.grad);
          expect(acc.shared).toBe(false);
          expect(Array.from(acc.grad)).toEqual(Array.from(separate.grad, (x) => x + x));
        });

      it('an out-of-range target on an unmasked row gives NaN loss, never a plausible one', async () => {
        await tidyAsync(async () => {
          const l = tensor(gpu, makeLogits(3, 5, 64, 1, 0), [3, 64]);
          const out = await fusedClassifier(l, tensor(gpu, [1, 5, -1], [3], 'i32'), {
            V: 5,
            mask: tensor(gpu, [1, 1, 0], [3]),
            version,
          }).read();
          expect(Number.isFinite(out[0]!)).toBe(true);
          expect(Number.isNaN(out[1]!)).toBe(true);
          expect(out[2]).toBe(0); // masked
        });
      });

      it('without grad, only the losses are computed', async () => {
        await tidyAsync(async () => {
          const logits = makeLogits(2, 10, 64, 2, 1e30);
          const l = tensor(gpu, logits, [2, 64], 'f32', { requiresGrad: true });
          const out = noGrad(() => fusedClassifier(l, tensor(gpu, [3, 9], [2], 'i32'), { V: 10, version }));
          expect(out.node).toBeNull();
          expect(relErr(await out.read(), classifierLossesRef(logits, [3, 9], null, 2, 10, 64))).toBeLessThanOrEqual(
            tol(10),
          );
        });
      });
    });

  it('rejects V larger than the logits row and rows that are not whole vec4s', () => {
    return tidyAsync(async () => {
      const l = tensor(gpu, new Float32Array(64), [1, 64]);
      const t: Tensor = tensor(gpu, [0], [1], 'i32');
      expect(() => fusedClassifier(l, t, { V: 65 })).toThrow(/V=65/);
      expect(() => fusedClassifier(tensor(gpu, new Float32Array(6), [1, 6]), t, { V: 5 })).toThrow(/multiple of 4/);
    });
  });
});

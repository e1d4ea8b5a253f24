import { EPS32, randomF32, relErr, testGpu } from '@wgpt/runtime/testing';
import { checkSpec, parameter, parameters, tensor, TensorPack, type Gpu, type Tensor } from '@wgpt/runtime';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { subgroupsOf4 } from '../common.ts';
import {
  AdamW,
  adamwNormSpec,
  adamwNormV2Spec,
  adamwSpec,
  adamwStatusSpec,
  adamwV2Spec,
  adamwVersion,
  type AdamWConfig,
  type AdamWVersion,
} from './adamw.ts';
import { adamwRefStep, clipScaleRef, type AdamWRefState } from './adamw.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

// Odd sizes (padding between packed tensors), 2-D and 1-D, and one of 105,000 elements: its norm pass needs
// several workgroups, whose partial sums the status kernel adds.
const SHAPES = [[17, 65], [127], [3, 1], [300, 350]];
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function makeParams(packed: boolean, init: Float32Array[]): Tensor[] {
  return packed
    ? parameters(
        gpu,
        SHAPES.map((shape, i) => ({ shape, data: init[i], name: `p${i}` })),
      )
    : SHAPES.map((s, i) => parameter(gpu, init[i]!, s, `p${i}`));
}

function dispose(ps: Tensor[], opt: AdamW): void {
  opt.dispose();
  if (ps[0]!.pack) ps[0]!.pack.dispose();
  else ps.forEach((p) => (p.grad?.dispose(), p.dispose()));
}

/** Gradients of a size that makes clipping bite at maxNorm = 1 (‖g‖ ≈ 0.29 · √106,000 ≈ 94). */
const gradsFor = (step: number) => SHAPES.map((s, i) => randomF32(size(s), 100 * step + i, -0.5, 0.5));

function setGrads(ps: Tensor[], grads: Float32Array[]): void {
  ps.forEach((p, i) => p.ensureGrad().write(grads[i]!));
  ps.forEach((p) => p.markGradReady());
}

const versions: AdamWVersion[] = ['v1', 'v2'];
/** Whether a version can run here (decided once the device is open). */
const runs = (version: AdamWVersion) => version === 'v1' || subgroupsOf4(gpu);

describe('adamw', () => {
  for (const s of [adamwSpec, adamwNormSpec, adamwStatusSpec, adamwV2Spec, adamwNormV2Spec])
    it(`${s.name}@${s.version} matches its WGSL`, () => expect(checkSpec(s)).toEqual([]));

  it('runs v2 by default on the software test adapter', () => {
    // The v2 cases below run only where subgroups of 4 exist: make sure that is here, so they cannot pass vacuously.
    if (gpu.software) expect(subgroupsOf4(gpu)).toBe(true);
    expect(adamwVersion(gpu)).toBe(gpu.software ? 'v2' : 'v1');
    const p = parameter(gpu, [1, 2], [2]);
    const opt = new AdamW(gpu, [p]);
    expect(opt.version).toBe(adamwVersion(gpu));
    opt.dispose();
    p.grad?.dispose();
    p.dispose();
  });

  // Per element, v2's update is v1's arithmetic: without clipping (no norm in the numbers) the same bits, packed or
  // not, in either version.
  it('v1 and v2, packed and separate parameters, give the same bits without clipping', async (ctx) => {
    if (!runs('v2')) ctx.skip(`v2 needs subgroups of 4 (${gpu.describe()})`);
    const init = SHAPES.map((s, i) => randomF32(size(s), 7 + i));
    const out: Float32Array[][] = [];
    for (const version of versions)
      for (const packed of [true, false]) {
        const ps = makeParams(packed, init);
        const opt = new AdamW(gpu, ps, { lr: 1e-2, maxNorm: 0 }, undefined, { version });
        for (let step = 0; step < 2; step++) {
          setGrads(ps, gradsFor(step));
          opt.update();
        }
        out.push(await Promise.all(ps.map(async (p) => (await p.read()) as Float32Array)));
        dispose(ps, opt);
      }
    for (const o of out.slice(1))
      o.forEach((a, i) => expect(Buffer.from(a.buffer).equals(Buffer.from(out[0]![i]!.buffer))).toBe(true));
  });

  for (const version of versions)
    describe(version, () => {
      beforeEach((ctx) => {
        if (!runs(version)) ctx.skip(`${version} needs subgroups of 4 (${gpu.describe()})`);
      });

      for (const packed of [true, false])
        for (const [maxNorm, eps] of [
          [0, 1e-8],
          [1, 1e-8],
          [1, 0], // eps 0: an update of the padding (all zeros) would make it 0/0 = NaN
        ] as const) {
          const what = packed ? 'packed in one buffer' : 'in separate buffers';
          it(`3 steps over parameters ${what}, maxNorm=${maxNorm} eps=${eps}, against f64`, async () => {
            const cfg: AdamWConfig = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps, weightDecay: 0.1, maxNorm };
            const init = SHAPES.map((s, i) => randomF32(size(s), 40 + i));
            const ps = makeParams(packed, init);
            const opt = new AdamW(gpu, ps, cfg, undefined, { version });
            // One norm pass per span, the status, one update per span: 3 for one packed span.
            expect(opt.dispatchesPerStep).toBe(packed ? 3 : 2 * SHAPES.length + 1);
            const refs: AdamWRefState[] = init.map((x) => ({
              p: Float64Array.from(x),
              m: new Float64Array(x.length),
              v: new Float64Array(x.length),
              t: 0,
            }));
            for (let step = 0; step < 3; step++) {
              const grads = gradsFor(step);
              setGrads(ps, grads);
              const d0 = gpu.dispatchCount;
              opt.update();
              expect(gpu.dispatchCount - d0).toBe(opt.dispatchesPerStep);
              const clip = clipScaleRef(grads, maxNorm);
              if (maxNorm > 0) expect(clip).toBeLessThan(1);
              refs.forEach((r, i) =>
                adamwRefStep(r, grads[i]!, {
                  ...cfg,
                  weightDecay: ps[i]!.shape.length >= 2 ? cfg.weightDecay : 0,
                  clipScale: clip,
                }),
              );
            }
            // Each step changes p by ≈ lr; f32 rounding of p (|p| ≤ 1) and of the update (a handful of ops, and the
            // norm's Σ of ~106,000 squares: v1 ≤ 26 per thread, then 8 + 5 tree levels; v2 16 per lane and
            // component (417 partials of 256), 2 + 3 levels in a subgroup, then 2 per status thread and 8 levels;
            // ≤ 40ε either way) leaves ≤ ~100 ε relative per step. 3 steps: 300 ε ≈ 1.8e-5 of ‖p‖ is the worst case;
            // a wrong bias correction, decay flag, clip or element offset moves p by ≥ 1e-3 relative.
            for (let i = 0; i < ps.length; i++) {
              expect(relErr(await ps[i]!.read(), refs[i]!.p), `p${i}`).toBeLessThanOrEqual(300 * EPS32);
              expect(relErr(await opt.m[i]!.read(), refs[i]!.m), `m${i}`).toBeLessThanOrEqual(300 * EPS32);
              expect(relErr(await opt.v[i]!.read(), refs[i]!.v), `v${i}`).toBeLessThanOrEqual(300 * EPS32);
            }
            expect(opt.step).toBe(3);
            if (packed) {
              // The padding between packed tensors is never updated (zero, not NaN, even with eps = 0).
              const pack = ps[0]!.pack as TensorPack;
              const seg = (await pack.segments[0]!.read()) as Float32Array;
              const inside = new Uint8Array(seg.length);
              pack.layout.slots.forEach((s) => inside.fill(1, s.offset / 4, (s.offset + s.bytes) / 4));
              expect(seg.filter((x, j) => !inside[j] && x !== 0).length).toBe(0);
            }
            dispose(ps, opt);
          });
        }

      it('packed and separate parameters give the same bits without clipping (same arithmetic)', async () => {
        const init = SHAPES.map((s, i) => randomF32(size(s), 7 + i));
        const out: Float32Array[][] = [];
        for (const packed of [true, false]) {
          const ps = makeParams(packed, init);
          const opt = new AdamW(gpu, ps, { lr: 1e-2, maxNorm: 0 }, undefined, { version });
          for (let step = 0; step < 2; step++) {
            setGrads(ps, gradsFor(step));
            opt.update();
          }
          out.push(await Promise.all(ps.map(async (p) => (await p.read()) as Float32Array)));
          dispose(ps, opt);
        }
        out[0]!.forEach((a, i) => expect(Buffer.from(a.buffer).equals(Buffer.from(out[1]![i]!.buffer))).toBe(true));
      });

      it('a guarded step with a non-finite loss or norm changes nothing, uncounted; a finite one counts', async () => {
        const cfg: AdamWConfig = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxNorm: 1 };
        const init = SHAPES.map((s, i) => randomF32(size(s), 60 + i));
        const ps = makeParams(true, init);
        const opt = new AdamW(gpu, ps, cfg, undefined, { version });
        const snapshot = async () =>
          Promise.all([...ps, ...opt.m, ...opt.v].map(async (t) => Array.from((await t.read()) as Float32Array)));
        const before = await snapshot();
        const good = gradsFor(0);
        const losses = (xs: number[]) => tensor(gpu, xs, [xs.length], 'f32', { track: false });
        const overflow = good.map((g) => g.slice());
        overflow[3]![5] = 1e20; // its square overflows f32: ‖g‖² = Inf
        const nanGrad = good.map((g) => g.slice());
        nanGrad[1]![0] = NaN;
        const bad: [string, Float32Array[], number[]][] = [
          ['a NaN loss', good, [2.5, NaN]],
          ['an infinite loss', good, [Infinity, 2.5]],
          ['a NaN gradient', nanGrad, [2.5, 2.5]],
          ['a norm² that overflows', overflow, [2.5, 2.5]],
        ];
        for (const [what, grads, ls] of bad) {
          setGrads(ps, grads);
          const l = losses(ls);
          opt.update(cfg.lr, { skipNonFinite: true, losses: l });
          expect(() => opt.update()).toThrow(/await lastStep\(\) before the next update/);
          const r = await opt.lastStep();
          expect(r.applied, what).toBe(false);
          expect(Array.from(r.losses)).toEqual(ls);
          expect(opt.step, what).toBe(0);
          expect(await snapshot(), what).toEqual(before); // parameters and moments, bit for bit
          l.dispose();
        }
        // Now a finite step: it is step 1 of the bias correction, as if the skipped ones never happened.
        setGrads(ps, good);
        const l = losses([2.5, 2.25]);
        opt.update(cfg.lr, { skipNonFinite: true, losses: l });
        const r = await opt.lastStep();
        expect(r.applied).toBe(true);
        expect(opt.step).toBe(1);
        let ss = 0;
        for (const g of good) for (const x of g) ss += x * x;
        // Σ of 106,000 squares in f32, in the order the norm kernels use: ≤ 40ε relative (see above), 64ε bounds it.
        expect(Math.abs(r.normSq - ss) / ss).toBeLessThanOrEqual(64 * EPS32);
        const clip = clipScaleRef(good, cfg.maxNorm);
        for (let i = 0; i < ps.length; i++) {
          const ref: AdamWRefState = {
            p: Float64Array.from(init[i]!),
            m: new Float64Array(init[i]!.length),
            v: new Float64Array(init[i]!.length),
            t: 0,
          };
          adamwRefStep(ref, good[i]!, { ...cfg, weightDecay: ps[i]!.shape.length >= 2 ? 0.1 : 0, clipScale: clip });
          // One step: ≤ 100ε (see above).
          expect(relErr(await ps[i]!.read(), ref.p)).toBeLessThanOrEqual(100 * EPS32);
        }
        l.dispose();
        dispose(ps, opt);
      });

      it('state() and load() round-trip the moments per parameter, and load() checks their sizes', async () => {
        const init = SHAPES.map((s, i) => randomF32(size(s), 80 + i));
        const ps = makeParams(true, init);
        const opt = new AdamW(gpu, ps, {}, undefined, { version });
        setGrads(ps, gradsFor(1));
        opt.update();
        const st = await opt.state();
        expect(st.step).toBe(1);
        for (let i = 0; i < ps.length; i++) expect(Array.from(st.m[i]!)).toEqual(Array.from(await opt.m[i]!.read()));
        const other = new AdamW(gpu, ps, {}, undefined, { version });
        other.load(st);
        expect(other.step).toBe(1);
        for (let i = 0; i < ps.length; i++) {
          expect(Array.from(await other.m[i]!.read())).toEqual(Array.from(st.m[i]!));
          expect(Array.from(await other.v[i]!.read())).toEqual(Array.from(st.v[i]!));
        }
        expect(() => other.load({ ...st, m: st.m.slice(1) })).toThrow(/3 moments, the optimizer 4 parameters/);
        expect(() => other.load({ ...st, v: [...st.v.slice(0, 3), new Float32Array(2)] })).toThrow(
          /parameter 3 has 105000 and 2 moment values/,
        );
        other.dispose();
        dispose(ps, opt);
      });

      it('owned: updates only the owned tensors, each with the bits of an optimizer that owns all', async () => {
        // Two steps with clipping: the norm covers every gradient either way, the moments carry over.
        const init = SHAPES.map((s, i) => randomF32(size(s), 90 + i));
        const all = makeParams(true, init);
        const some = makeParams(true, init);
        const owned = [false, true, true, false];
        const cfg = { maxNorm: 1, weightDecay: 0.1 };
        const a = new AdamW(gpu, all, cfg, undefined, { version });
        const b = new AdamW(gpu, some, cfg, undefined, { version, owned });
        for (const step of [1, 2]) {
          setGrads(all, gradsFor(step));
          setGrads(some, gradsFor(step));
          a.update(1e-2);
          b.update(1e-2);
        }
        expect(b.dispatchesPerStep).toBe(a.dispatchesPerStep); // p1, p2: one piece; one span
        for (let i = 0; i < SHAPES.length; i++) {
          const got = Array.from((await some[i]!.read()) as Float32Array);
          const want = owned[i] ? (await all[i]!.read()) : init[i]!;
          expect(got, `p${i}`).toEqual(Array.from(want as Float32Array));
        }
        const st = await b.state();
        const full = await a.state();
        expect(st.m.map((m) => m.length)).toEqual([0, 127, 3, 0]);
        for (const i of [1, 2]) {
          expect(Array.from(st.m[i]!)).toEqual(Array.from(full.m[i]!));
          expect(Array.from(st.v[i]!)).toEqual(Array.from(full.v[i]!));
        }
        expect(b.m).toHaveLength(2);
        // A full state (a checkpoint's) loads into the owned moments.
        const c = new AdamW(gpu, some, cfg, undefined, { version, owned: [true, false, false, true] });
        c.load(full);
        expect(Array.from(await c.m[1]!.read())).toEqual(Array.from(full.m[3]!));
        c.dispose();
        dispose(some, b);
        dispose(all, a);
      });

      it('refuses to step a parameter that has no gradient', () => {
        const p = parameter(gpu, [1, 2], [2]);
        const opt = new AdamW(gpu, [p], {}, undefined, { version });
        expect(() => opt.update()).toThrow(/has no gradient/);
        opt.dispose();
        p.grad?.dispose();
        p.dispose();
      });
    });
});

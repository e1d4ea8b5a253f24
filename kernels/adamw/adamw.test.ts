import { EPS32, randomF32, relErr, testGpu } from '@wgpt/runtime/testing';
import { checkSpec, parameter, type Gpu } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdamW, adamwSpec, sumsqSpec } from './adamw.ts';
import { adamwRefStep, clipScaleRef, type AdamWRefState } from './adamw.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

describe('adamw', () => {
  for (const s of [adamwSpec, sumsqSpec]) it(`${s.name} matches its WGSL`, () => expect(checkSpec(s)).toEqual([]));

  for (const maxNorm of [0, 1.0]) {
    it(`3 steps over 2-D and 1-D parameters of odd sizes, maxNorm=${maxNorm}`, async () => {
      const shapes = [[17, 65], [127], [3, 1]];
      const cfg = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxNorm };
      const init = shapes.map((s, i) => randomF32(s.reduce((a, b) => a * b), 40 + i));
      const ps = shapes.map((s, i) => parameter(gpu, init[i]!, s, `p${i}`));
      const opt = new AdamW(gpu, ps, cfg);
      const refs: AdamWRefState[] = init.map((x) => ({
        p: Float64Array.from(x),
        m: new Float64Array(x.length),
        v: new Float64Array(x.length),
        t: 0,
      }));
      for (let step = 0; step < 3; step++) {
        // Gradients of a size that makes clipping bite when maxNorm = 1.
        const grads = shapes.map((s, i) => randomF32(s.reduce((a, b) => a * b), 100 * step + i, -0.5, 0.5));
        ps.forEach((p, i) => p.ensureGrad().write(grads[i]!));
        ps.forEach((p) => p.markGradReady());
        opt.update();
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
      // norm's Σ of ~2300 squares) leaves ≤ ~100 ε relative per step. 3 steps: 300 ε ≈ 1.8e-5 of ‖p‖ is the
      // worst case; a wrong bias correction or decay flag moves p by ≥ 1e-3 relative.
      for (let i = 0; i < ps.length; i++) {
        const got = await ps[i]!.read();
        expect(relErr(got, refs[i]!.p)).toBeLessThanOrEqual(300 * EPS32);
        expect(relErr(await opt.m[i]!.read(), refs[i]!.m)).toBeLessThanOrEqual(300 * EPS32);
        expect(relErr(await opt.v[i]!.read(), refs[i]!.v)).toBeLessThanOrEqual(300 * EPS32);
      }
      opt.dispose();
      ps.forEach((p) => p.dispose());
    });
  }

  it('refuses to step a parameter that has no gradient', () => {
    const p = parameter(gpu, [1, 2], [2]);
    const opt = new AdamW(gpu, [p]);
    expect(() => opt.update()).toThrow(/has no gradient/);
    opt.dispose();
    p.dispose();
  });
});

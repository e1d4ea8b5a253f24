import { EPS32, randomF32, relErr, testGpu } from '@wgpt/runtime/testing';
import { checkSpec, tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAttention, kvAppend } from '../index.ts';
import { decodeWorkgroup, kvcacheSpecs } from './kvcache.ts';
import { decodeAttentionRef, kvAppendRef } from './kvcache.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

// Error bound of decode attention (norm-wise, relative), from its f32 arithmetic, n = pos + t + 1 ≤ pos + T keys:
//  - a score is a length-HS dot product: absolute error ≲ sqrt(HS)·ε at the O(1) scale of the scaled scores (inputs
//    in [-1, 1)), and exp turns an absolute score error δ into a relative error δ of p;
//  - exp itself: WGSL allows 3 + 2·|x| ulp; |s − m| stays a few units for these inputs: ≲ 8ε;
//  - the running sum l and the output Σ p·v each add ≲ sqrt(n)·ε (sequential, random-sign v), and every chunk of WG
//    keys adds one rescale (exp, multiply): n/WG · 2ε.
// So ‖err‖/‖ref‖ ≲ (sqrt(HS) + 2·sqrt(n) + 2·n/WG + 8)·ε; a factor 4 covers each term's constant.
const decodeTol = (n: number, HS: number) =>
  4 * (Math.sqrt(HS) + 2 * Math.sqrt(n) + (2 * n) / decodeWorkgroup(HS) + 8) * EPS32;

/** Caches with random contents at positions < pos and NaN at ≥ pos: any read of an unwritten position shows. */
function oldCache(B: number, NH: number, maxT: number, HS: number, pos: number, seed: number): Float32Array {
  const c = randomF32(B * NH * maxT * HS, seed);
  for (let i = 0; i < c.length; i++) if (Math.floor(i / HS) % maxT >= pos) c[i] = NaN;
  return c;
}

describe('kvcache kernels', () => {
  for (const s of kvcacheSpecs) it(`${s.name} matches its WGSL`, () => expect(checkSpec(s)).toEqual([]));

  // (B, T, NH, HS, maxT, pos): head sizes 4/8/64 and odd ones, single-token decode and multi-token chunks,
  // pos 0 (prefill), pos > 0, chunks crossing a WG boundary (n > 64), and the cache filled to maxT exactly.
  const shapes: [number, number, number, number, number, number][] = [
    [1, 1, 1, 4, 1, 0],
    [2, 1, 3, 8, 16, 0],
    [2, 1, 2, 4, 20, 7],
    [1, 3, 4, 8, 17, 14],
    [3, 5, 3, 5, 40, 11],
    [2, 65, 2, 64, 70, 0],
    [1, 1, 2, 64, 130, 129],
    [2, 7, 3, 64, 100, 60],
    [1, 65, 1, 4, 131, 66],
    [1, 2, 2, 96, 70, 67],
  ];
  for (const [B, T, NH, HS, maxT, pos] of shapes) {
    it(`B=${B} T=${T} NH=${NH} HS=${HS} maxT=${maxT} pos=${pos}: append exact, attention vs f64`, async () => {
      const C = NH * HS;
      const s = { B, T, NH, HS, maxT, pos };
      const qkv = randomF32(B * T * 3 * C, B + T + HS + pos);
      const k0 = oldCache(B, NH, maxT, HS, pos, 1 + pos);
      const v0 = oldCache(B, NH, maxT, HS, pos, 2 + pos);
      const { k, v, out } = await tidyAsync(async () => {
        const q = tensor(gpu, qkv, [B, T, 3 * C]);
        const kc = tensor(gpu, k0, [B, NH, maxT, HS]);
        const vc = tensor(gpu, v0, [B, NH, maxT, HS]);
        kvAppend(q, kc, vc, pos);
        const o = decodeAttention(q, kc, vc, pos);
        return { out: await o.read(), k: await kc.read(), v: await vc.read() };
      });
      const want = kvAppendRef(k0, v0, qkv, s);
      // A copy: bit-exact, NaN (never-written positions past pos + T) included.
      expect(Array.from(k)).toEqual(Array.from(want.k));
      expect(Array.from(v)).toEqual(Array.from(want.v));
      const ref = decodeAttentionRef(qkv, want.k, want.v, s);
      const err = relErr(out, ref);
      expect(err).toBeLessThanOrEqual(decodeTol(pos + T, HS));
    });
  }

  it('a NaN query gives NaN output (NaN never passes)', async () => {
    const [B, T, NH, HS, maxT, pos] = [1, 1, 1, 4, 4, 1];
    const qkv = randomF32(3 * HS, 3);
    qkv[0] = NaN;
    const out = await tidyAsync(async () => {
      const q = tensor(gpu, qkv, [B, T, 3 * NH * HS]);
      const kc = tensor(gpu, randomF32(maxT * HS, 4), [B, NH, maxT, HS]);
      const vc = tensor(gpu, randomF32(maxT * HS, 5), [B, NH, maxT, HS]);
      kvAppend(q, kc, vc, pos);
      return decodeAttention(q, kc, vc, pos).read();
    });
    expect(relErr(out, [0, 0, 0, 1])).toBe(Infinity);
  });

  it('rejects positions past the cache and mismatched shapes', async () => {
    await tidyAsync(async () => {
      const q = tensor(gpu, randomF32(2 * 3 * 8, 1), [1, 2, 24]);
      const kc = tensor(gpu, randomF32(2 * 4 * 4, 2), [1, 2, 4, 4]);
      const vc = tensor(gpu, randomF32(2 * 4 * 4, 3), [1, 2, 4, 4]);
      expect(() => kvAppend(q, kc, vc, 3)).toThrow(/positions \[3, 5\)/);
      expect(() => decodeAttention(q, kc, kc.view([1, 4, 2, 4]), 0)).toThrow(/dimension/);
      const bad = tensor(gpu, randomF32(2 * 3 * 9, 1), [1, 2, 27]);
      expect(() => decodeAttention(bad, kc, vc, 0)).toThrow(/channels/);
    });
  });
});

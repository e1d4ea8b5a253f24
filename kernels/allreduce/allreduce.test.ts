// The slice-sum kernel and the GPU summer against the plain host loop (bit for bit) and the exact sum (a bound).
import { cpuPieceSummer } from '@wgpt/runtime/dist';
import { checkSpec, POISON_BITS, tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { EPS32, randomF32, rng, testGpu } from '@wgpt/runtime/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exactReciprocal, gpuPieceSummer, sumSlicesInto, sumSlicesSpec } from './allreduce.ts';
import { rankOrderSumRef, sumF64Ref } from './allreduce.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
/** The first index where two arrays differ in their bits, or -1. */
function firstDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const x = bits(a);
  const y = bits(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/**
 * W slices of n floats with values of mixed sign and magnitude (so roundings happen and the order of the additions
 * shows in the bits): uniform in [-1, 1) times 2^k, k in -20..20.
 */
function slicesOf(W: number, n: number, seed: number): Float32Array[] {
  const r = rng(seed);
  return [...Array(W)].map((_, s) => {
    const x = randomF32(n, seed * 31 + s);
    for (let i = 0; i < n; i++) x[i] = x[i]! * 2 ** Math.floor(41 * r() - 20);
    return x;
  });
}

const PAD = 9; // floats past n in the output, and between slices when stride > n

/**
 * Runs the kernel on the slices packed with `stride` (the gaps hold NaN, which must not reach the result) into an
 * output of n + PAD floats that starts as NaN poison (n elements) and a marker (the pad); returns all of it.
 */
async function runKernel(slices: Float32Array[], stride: number, op: 'sum' | 'mean' = 'sum'): Promise<Float32Array> {
  const W = slices.length;
  const n = slices[0]!.length;
  const packed = new Float32Array(W * stride).fill(NaN);
  slices.forEach((s, r) => packed.set(s, r * stride));
  const init = new Float32Array(n + PAD).fill(-7.5);
  new Uint32Array(init.buffer).fill(POISON_BITS, 0, n);
  return tidyAsync(async () => {
    const x = tensor(gpu, packed);
    const out = tensor(gpu, init);
    sumSlicesInto(gpu, { x: x.buffer, out: out.buffer, n, W, stride, op });
    return (await out.read()) as Float32Array;
  });
}

describe('sum_slices', () => {
  it('matches its WGSL', () => expect(checkSpec(sumSlicesSpec)).toEqual([]));

  for (const W of [2, 3, 4, 8])
    for (const n of [1, 7, 255, 257, 4099, 70001]) {
      it(`W=${W} n=${n}: the host loop's bits, within f32's bound of the exact sum, nothing past n`, async () => {
        const xs = slicesOf(W, n, 1000 * W + n);
        const stride = n % 2 ? n + 3 : n; // odd lengths also with gaps between the slices
        const got = await runKernel(xs, stride);
        const want = rankOrderSumRef(xs);
        expect(firstDiff(got.subarray(0, n), want), 'first element off the host loop').toBe(-1);
        expect(Array.from(got.subarray(n))).toEqual(new Array(PAD).fill(-7.5));
        // Recursive summation of W terms: |ŝ − s| ≤ γ(W−1) Σ|x|, γ(k) = ku / (1 − ku), u = 2^-24 (Higham).
        const { sum, abs } = sumF64Ref(xs);
        const g = ((W - 1) * EPS32) / (1 - (W - 1) * EPS32);
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i]! - sum[i]!) / (g * abs[i]!));
        expect(worst).toBeLessThanOrEqual(1);
        // The order matters in these inputs: summed in reverse rank order, some element would differ.
        if (W > 2 && n > 1000) expect(firstDiff(rankOrderSumRef([...xs].reverse()), want)).toBeGreaterThanOrEqual(0);
      });
    }

  for (const W of [2, 4, 8])
    it(`mean, W=${W}: multiplied by 1/W = the host's correctly rounded x / W`, async () => {
      const n = 1031;
      const xs = slicesOf(W, n, 7 * W);
      const got = await runKernel(xs, n, 'mean');
      expect(firstDiff(got.subarray(0, n), rankOrderSumRef(xs, true))).toBe(-1);
    });

  it('mean over a W that is not a power of two is refused (WGSL division is not correctly rounded)', () => {
    expect(exactReciprocal(3)).toBe(false);
    expect(exactReciprocal(8)).toBe(true);
    const b = gpu.pool.acquire(64, GPUBufferUsage.STORAGE, 'unused');
    expect(() => sumSlicesInto(gpu, { x: b, out: b, n: 2, W: 3, op: 'mean' })).toThrow(/W=3.*divide on the host/);
    expect(() => sumSlicesInto(gpu, { x: b, out: b, n: 4, W: 2, stride: 3 })).toThrow(/stride 3 is below n=4/);
    gpu.pool.release(b);
  });

  it('NaN and infinities propagate as in the host loop', async () => {
    const n = 12;
    const I = Infinity;
    const xs = [
      [NaN, 1, 1, I, I, -I, 0, 1, 2, 3e38, -3e38, 5],
      [1, NaN, 1, 1, -I, -I, 0, 1, 2, 3e38, -3e38, 5],
      [1, 1, NaN, 1, 1, 1, -0, I, 2, 1, 1, 5],
    ].map((a) => Float32Array.from(a));
    const got = (await runKernel(xs, n)).subarray(0, n);
    const want = rankOrderSumRef(xs);
    expect(Array.from(want)).toEqual([NaN, NaN, NaN, I, NaN, -I, 0, I, 6, I, -I, 15]);
    // NaN payloads may differ; everything else to the bit (0 + 0 + -0 = +0 included).
    for (let i = 0; i < n; i++) {
      if (Number.isNaN(want[i]!)) expect(got[i], `element ${i}`).toBeNaN();
      else expect(bits(got)[i], `element ${i}`).toBe(bits(want)[i]);
    }
  });

  it('subnormals: the host bits, or those of flushing inputs and results to zero (SwiftShader flushes)', async () => {
    const minN = 2 ** -126; // the smallest normal f32
    const a = Float32Array.from([2 ** -149, minN / 2, minN, 1.5 * minN, -minN, 1e-40, 1, minN, 3 * minN]);
    const b = Float32Array.from([0, 0, -minN / 2, -minN, 0.75 * minN, 2e-40, 2 ** -140, -minN, -minN]);
    const got = (await runKernel([a, b], a.length)).subarray(0, a.length);
    const host = rankOrderSumRef([a, b]);
    const ftz = (v: number) => (Math.abs(v) < minN ? 0 : v); // the sign of a flushed zero is not compared
    const flushed = Float32Array.from(a, (v, i) => ftz(Math.fround(ftz(v) + ftz(b[i]!))));
    let asFlushed = 0;
    for (let i = 0; i < a.length; i++) {
      const g = bits(got)[i];
      const ok = g === bits(host)[i] || g === bits(flushed)[i] || (got[i] === 0 && flushed[i] === 0);
      expect(ok, `element ${i}: ${got[i]} is neither ${host[i]} nor ${flushed[i]}`).toBe(true);
      if (got[i] === flushed[i]) asFlushed++;
    }
    expect(firstDiff(host, flushed)).toBeGreaterThanOrEqual(0); // the two models differ on this input
    if (gpu.adapterInfo?.architecture === 'swiftshader') expect(asFlushed).toBe(a.length);
  });
});

describe('gpuPieceSummer', () => {
  for (const W of [2, 3, 4, 8])
    for (const op of ['sum', 'mean'] as const)
      it(`W=${W} ${op}: the CPU summer's bits, in one block and in blocks of 1000 floats`, async () => {
        const n = 4097;
        const xs = slicesOf(W, n, 50 + W);
        const want = Float32Array.from(await cpuPieceSummer.sum(xs, op));
        expect(firstDiff(want, rankOrderSumRef(xs, op === 'mean'))).toBe(-1);
        for (const s of [gpuPieceSummer(gpu), gpuPieceSummer(gpu, { maxBlockBytes: 4000 * W })]) {
          const got = await s.sum(xs, op);
          expect(firstDiff(got, want)).toBe(-1);
        }
      });

  it('reuses its result array: shorter pieces, then an empty one', async () => {
    const s = gpuPieceSummer(gpu);
    const xs = slicesOf(3, 100, 9);
    expect(firstDiff(await s.sum(xs, 'sum'), rankOrderSumRef(xs))).toBe(-1);
    const ys = xs.map((x) => x.subarray(0, 37));
    expect(firstDiff(await s.sum(ys, 'mean'), rankOrderSumRef(ys, true))).toBe(-1);
    expect((await s.sum([new Float32Array(0), new Float32Array(0)], 'sum')).length).toBe(0);
    await expect(s.sum([new Float32Array(3), new Float32Array(2)], 'sum')).rejects.toThrow(/slices of 3 and 2/);
  });
});

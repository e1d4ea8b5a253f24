// Helpers for tests that compare GPU results with independent f64 references.
import { Gpu } from './gpu.ts';
import { Tensor, tensor } from './tensor.ts';

/** f32 unit roundoff (half an ulp at 1): 2^-24. */
export const EPS32 = 2 ** -24;

let shared: Promise<Gpu> | null = null;

/** One Gpu per test process (Dawn wants one instance per process), poisoning every new tensor with NaN. */
export function testGpu(): Promise<Gpu> {
  shared ??= Gpu.open().then((g) => {
    g.poisonNew = true;
    return g;
  });
  return shared;
}

/** Deterministic pseudo-random numbers (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [lo, hi), rounded to f32 so the reference sees exactly what the GPU sees. */
export function randomF32(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

export function toF64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}

/** ‖out − ref‖₂ / ‖ref‖₂; Infinity if out has a NaN or ±Inf (so NaN never passes), or if lengths differ. */
export function relErr(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const o = out[i]!;
    if (!Number.isFinite(o)) return Infinity;
    const d = o - ref[i]!;
    num += d * d;
    den += ref[i]! * ref[i]!;
  }
  if (den === 0) return Math.sqrt(num);
  return Math.sqrt(num / den);
}

/** Index of the first non-finite value, or -1. */
export function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i;
  return -1;
}

/**
 * Central finite differences of a scalar f64 function of one input array: d L / d x[i] for every i.
 * h is scaled per element; in f64 the truncation error (h² f''') and roundoff (ε/h) are both far below f32's.
 */
export function finiteDiff(f: (x: Float64Array) => number, x: Float64Array, h = 1e-5): Float64Array {
  const g = new Float64Array(x.length);
  const xx = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const step = h * Math.max(1, Math.abs(x[i]!));
    xx[i] = x[i]! + step;
    const fp = f(xx);
    xx[i] = x[i]! - step;
    const fm = f(xx);
    xx[i] = x[i]!;
    g[i] = (fp - fm) / (2 * step);
  }
  return g;
}

/** Sum over i of w[i] * y[i]: the scalar whose gradient w.r.t. y is w (the upstream gradient in a VJP check). */
export function dot(w: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += w[i]! * y[i]!;
  return s;
}

export function input(gpu: Gpu, data: ArrayLike<number>, shape: number[], requiresGrad = true): Tensor {
  return tensor(gpu, data, shape, 'f32', { requiresGrad });
}

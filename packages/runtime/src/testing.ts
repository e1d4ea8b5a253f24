// Helpers for tests that compare GPU results with independent f64 references.
import { Gpu } from './gpu.ts';
import { mulberry32 } from './random.ts';
import { backward } from './autograd.ts';
import { Tensor, tensor, tidyAsync } from './tensor.ts';

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
export const rng = mulberry32;

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

export interface CheckInput {
  data: ArrayLike<number>;
  shape: number[];
  dtype?: 'f32' | 'i32';
  /** Check the gradient w.r.t. this input (f32 only). Default true for f32. */
  grad?: boolean;
}

export interface OpCheckResult {
  /** ‖out − ref‖ / ‖ref‖ of the forward. */
  forward: number;
  /** Per input with grad: relative error after one backward (kernels write) ... */
  gradWrite: (number | null)[];
  /** ... and after a second backward (kernels accumulate into the first): compared with 2× the FD gradient. */
  gradAccumulate: (number | null)[];
  out: Float32Array;
}

/**
 * Runs `op` on the GPU and its f64 reference `ref`: forward against ref, then the vector-Jacobian product with a
 * random upstream gradient against central differences of Σ g·ref(x). Every new tensor is NaN-poisoned by testGpu().
 */
export async function checkOp(
  gpu: Gpu,
  op: (...xs: Tensor[]) => Tensor,
  inputs: CheckInput[],
  ref: (xs: Float64Array[]) => ArrayLike<number>,
  seed = 1,
): Promise<OpCheckResult> {
  return tidyAsync(async () => {
    const ts = inputs.map((x) =>
      tensor(gpu, x.data, x.shape, x.dtype ?? 'f32', {
        requiresGrad: (x.dtype ?? 'f32') === 'f32' && x.grad !== false,
      }),
    );
    const out = op(...ts);
    const got = (await out.read()) as Float32Array;
    const xs64 = inputs.map((x) => toF64(x.data));
    const want = ref(xs64);
    const forward = relErr(got, want);
    const g = randomF32(out.size, seed + 101);
    const gT = tensor(gpu, g, out.shape);
    const gradWrite: (number | null)[] = [];
    const gradAccumulate: (number | null)[] = [];
    const fd = inputs.map((x, i) => {
      if (!ts[i]!.requiresGrad) return null;
      return finiteDiff((xi) => dot(g, ref(xs64.map((v, j) => (j === i ? xi : v)))), xs64[i]!);
    });
    if (!ts.some((t) => t.requiresGrad)) return { forward, gradWrite, gradAccumulate, out: got };
    backward(out, gT);
    for (let i = 0; i < ts.length; i++)
      gradWrite.push(fd[i] ? relErr((await ts[i]!.grad!.read()) as Float32Array, fd[i]!) : null);
    // A fresh forward and backward: its intermediate gradients start empty, the inputs' grads accumulate.
    backward(op(...ts), gT);
    for (let i = 0; i < ts.length; i++)
      gradAccumulate.push(
        fd[i]
          ? relErr(
              (await ts[i]!.grad!.read()) as Float32Array,
              fd[i]!.map((v) => 2 * v),
            )
          : null,
      );
    return { forward, gradWrite, gradAccumulate, out: got };
  });
}
export { recordingGpu, RECORDING_LIMITS } from './recording.ts';

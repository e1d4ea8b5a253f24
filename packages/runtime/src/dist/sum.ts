// The host summation of the shared-memory all-reduce: acc += x over f32 arrays, in rank order, exactly IEEE f32
// addition whichever way it runs. A JavaScript loop adds about 1 ns per element, several times slower than a
// memcpy of the same bytes, and was the larger part of an all-reduce once the copies went through mapped memory.
// BLAS's saxpy with alpha = 1 computes y = 1·x + y, where 1·x is exact, so every element gets the correctly
// rounded f32 sum (with or without a fused multiply-add) in SIMD: the same bits as the loop. It runs through koffi
// when the machine has a BLAS library (OpenBLAS, the reference libblas, Apple's Accelerate); otherwise the loop.
import { UsageError } from '@wgpt/base/errors';
import { DistError, type PieceSummer, type ReduceOp } from './collective.ts';

export interface Adder {
  /** 'blas (libopenblas.so.0)' or 'js': for logs and bench rows. */
  readonly name: string;
  /** acc[i] = fl(acc[i] + x[i]) for every i < acc.length (x at least as long). */
  add(acc: Float32Array, x: Float32Array): void;
  /** acc[i] = fl(x0[i] + x1[i]). */
  add2(acc: Float32Array, x0: Float32Array, x1: Float32Array): void;
}

/** The loop: a Float32Array store rounds the f64 sum of two f32 values to f32, which is exactly f32 addition. */
export const jsAdder: Adder = {
  name: 'js',
  add(acc, x) {
    for (let i = 0; i < acc.length; i++) acc[i] += x[i]!;
  },
  add2(acc, x0, x1) {
    for (let i = 0; i < acc.length; i++) acc[i] = x0[i]! + x1[i]!;
  },
};

const BLAS_LIBS: Record<string, string[]> = {
  linux: ['libopenblas.so.0', 'libblas.so.3', 'libcblas.so.3'],
  darwin: ['/System/Library/Frameworks/Accelerate.framework/Accelerate'],
};

/** saxpy from the first BLAS library that loads, or null (with why) when none does. */
export async function blasAdder(): Promise<{ adder: Adder | null; why: string }> {
  let koffi: typeof import('koffi');
  try {
    koffi = (await import('koffi')).default as unknown as typeof import('koffi');
  } catch (e) {
    return { adder: null, why: `koffi cannot be loaded: ${(e as Error).message}` };
  }
  const tried: string[] = [];
  for (const name of BLAS_LIBS[process.platform] ?? []) {
    let lib: ReturnType<typeof koffi.load>;
    // OpenBLAS starts its thread pool when it is loaded, sized by OPENBLAS_NUM_THREADS or else the core count (a
    // hundred threads per rank on a big node), and those threads outliving the loaded library at process exit is
    // a known way for it to crash. One thread, from the start: the ranks already use a core each.
    const before = process.env.OPENBLAS_NUM_THREADS;
    process.env.OPENBLAS_NUM_THREADS = '1';
    try {
      lib = koffi.load(name);
    } catch {
      tried.push(name);
      continue;
    } finally {
      if (before === undefined) delete process.env.OPENBLAS_NUM_THREADS;
      else process.env.OPENBLAS_NUM_THREADS = before;
    }
    let saxpy: (n: number, alpha: number, x: Float32Array, incx: number, y: Float32Array, incy: number) => void;
    try {
      saxpy = lib.func('void cblas_saxpy(int n, float alpha, const float *x, int incx, _Inout_ float *y, int incy)');
    } catch {
      tried.push(`${name} (no cblas_saxpy)`);
      continue;
    }
    // And one thread where the library was loaded before (by someone else, with more).
    try {
      lib.func('void openblas_set_num_threads(int n)')(1);
    } catch {
      /* not OpenBLAS */
    }
    const add = (acc: Float32Array, x: Float32Array) => {
      if (acc.length > 0) saxpy(acc.length, 1, x, 1, acc, 1);
    };
    return {
      adder: {
        name: `blas (${name.split('/').pop()})`,
        add,
        add2(acc, x0, x1) {
          acc.set(x0.subarray(0, acc.length));
          add(acc, x1);
        },
      },
      why: '',
    };
  }
  return { adder: null, why: `no BLAS library with cblas_saxpy found (tried ${tried.join(', ')})` };
}

const chosen = new Map<string, Promise<Adder>>();

/** Where a rank sums its shard of each reduction (WGPT_DIST_SUM). */
export type SumChoice = 'auto' | 'blas' | 'js' | 'gpu';
const SUM_CHOICES: readonly SumChoice[] = ['auto', 'blas', 'js', 'gpu'];

/**
 * WGPT_DIST_SUM: auto (the default: BLAS where a library loads, else the JavaScript loop), blas, js, or gpu (a
 * WGSL kernel on the rank's GPU, once the rank attaches it with useSummer; the host adds as with auto until then).
 */
export function readSumChoice(vars: Record<string, string | undefined> = process.env): SumChoice {
  const v = vars.WGPT_DIST_SUM || 'auto';
  if (!(SUM_CHOICES as readonly string[]).includes(v)) {
    throw new UsageError(
      `WGPT_DIST_SUM="${v}" is not one of ${SUM_CHOICES.join(', ')}: where each rank sums its shard of a reduction`,
    );
  }
  return v as SumChoice;
}

/** The host adder WGPT_DIST_SUM asks for: 'blas' (an error when none loads), 'js', or BLAS where it loads. */
export function pickAdder(env: Record<string, string | undefined> = process.env): Promise<Adder> {
  let want: SumChoice;
  try {
    want = readSumChoice(env);
  } catch (e) {
    return Promise.reject(e);
  }
  if (want === 'gpu') want = 'auto';
  let got = chosen.get(want);
  if (got) return got;
  got = (async () => {
    if (want === 'js') return jsAdder;
    const { adder, why } = await blasAdder();
    if (adder) return adder;
    if (want === 'blas') throw new DistError(`WGPT_DIST_SUM=blas: ${why}`);
    return jsAdder;
  })();
  chosen.set(want, got);
  return got;
}

/**
 * acc = term(0) + term(1) + ... + term(W-1), added left to right in f32. Terms are at least acc's length and must
 * not overlap it.
 */
export function sumInOrder(adder: Adder, acc: Float32Array, term: (r: number) => Float32Array, W: number): void {
  if (W === 1) {
    acc.set(term(0).subarray(0, acc.length));
    return;
  }
  adder.add2(acc, term(0), term(1));
  for (let r = 2; r < W; r++) adder.add(acc, term(r));
}

/**
 * A PieceSummer on the host: the slices added in rank order with `adder`, then divided by W for a mean. The result
 * is a view of the summer's own buffer, reused by the next call (a fresh array per call would cost its page faults:
 * on the development machine more than the additions themselves).
 */
export function hostPieceSummer(adder: Adder): PieceSummer {
  let buf = new Float32Array(0);
  return {
    name: adder.name,
    sum(slices: readonly Float32Array[], op: ReduceOp) {
      const W = slices.length;
      const n = slices[0]!.length;
      if (buf.length < n) buf = new Float32Array(n);
      const acc = buf.subarray(0, n);
      sumInOrder(adder, acc, (r) => slices[r]!, W);
      // The f64 quotient of two f32 values, stored, is the correctly rounded f32 quotient.
      if (op === 'mean') for (let i = 0; i < acc.length; i++) acc[i] /= W;
      return acc;
    },
  };
}

/** The JavaScript loop as a PieceSummer: the reference the GPU summer is held to. */
export const cpuPieceSummer = hostPieceSummer(jsAdder);

// The summation of an all-reduce on the GPU: W ranks' slices of one piece, summed elementwise in rank order by one
// kernel, so that the result has the bits of the host loop (cpuPieceSummer): WGSL f32 addition is correctly rounded.
// `gpuPieceSummer` plugs it into the shared-memory collective (ShmOptions.sum, or collective.useSummer).
//
// What is promised, and where it stops:
//   - sum: bit for bit the host loop's result wherever no input, partial sum or result is subnormal. WGSL lets an
//     implementation flush subnormals to zero (SwiftShader does, on inputs and results: allreduce.test.ts), so a
//     subnormal gradient can differ from the host's (by less than 2^-126 in absolute value). Every rank's shard is
//     summed by one rank and read by all, so the ranks still agree with each other whatever the device does.
//   - mean: WGSL f32 division is only accurate to 2.5 ulp, so it is not used. For a power-of-two W the kernel
//     multiplies by 1/W, which is exact (the correctly rounded quotient, as the host's) unless the quotient is
//     subnormal; for any other W the host divides the kernel's sum (one more pass over the piece on the CPU).
//   - NaN and infinities propagate as in IEEE arithmetic (a NaN's payload may differ; it is still a NaN).
import type { PieceSummer, ReduceOp } from '@wgpt/runtime/dist';
import { WgptError, type Gpu, type KernelSpec } from '@wgpt/runtime';
import { grid1d } from '../common.ts';
import sumSlicesSource from './sum_slices.wgsl';

export const sumSlicesSpec: KernelSpec = {
  name: 'sum_slices',
  version: 'v1',
  description: 'one invocation per element, a loop over the W slices in order',
  source: sumSlicesSource,
  file: 'kernels/allreduce/sum_slices.wgsl',
  bindings: [
    { name: 'x', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'W', type: 'u32' },
    { name: 'stride', type: 'u32' },
    { name: 'scale', type: 'f32' },
  ],
  overrides: { WG: 256 },
};

const WG = 256;

/** Whether x · (1/W) is x / W for every f32 x with a normal quotient: W a power of two. */
export function exactReciprocal(W: number): boolean {
  return Number.isInteger(W) && W >= 1 && (W & (W - 1)) === 0;
}

export interface SumSlicesArgs {
  /** W slices of n floats, slice r at float r·stride. */
  x: GPUBuffer;
  /** n floats. */
  out: GPUBuffer;
  n: number;
  W: number;
  /** Floats from one slice's start to the next (default n). */
  stride?: number;
  /** 'mean' needs a power-of-two W (see exactReciprocal); divide on the host otherwise. Default 'sum'. */
  op?: ReduceOp;
}

/** Records out[i] = x[i] + x[stride + i] + ... + x[(W-1)·stride + i], added in that order (÷ W for 'mean'). */
export function sumSlicesInto(gpu: Gpu, a: SumSlicesArgs): void {
  const stride = a.stride ?? a.n;
  const op = a.op ?? 'sum';
  if (!Number.isInteger(a.W) || a.W < 1) throw new WgptError(`sum_slices: W=${a.W} is not a positive integer`);
  if (stride < a.n) throw new WgptError(`sum_slices: stride ${stride} is below n=${a.n}: the slices would overlap`);
  if (op === 'mean' && !exactReciprocal(a.W)) {
    throw new WgptError(
      `sum_slices: a mean over W=${a.W} slices would need a division, which WGSL does not round correctly: ` +
        'take the sum and divide on the host (W a power of two multiplies by 1/W, which is exact)',
    );
  }
  gpu.dispatch(sumSlicesSpec, {
    buffers: { x: a.x, out: a.out },
    uniforms: { n: a.n, W: a.W, stride, scale: op === 'mean' ? 1 / a.W : 1 },
    workgroups: grid1d(gpu, a.n, WG),
    context: `n=${a.n} W=${a.W} stride=${stride}`,
  });
}

/**
 * A PieceSummer that sums on this GPU: the slices go up through a mapped MAP_WRITE staging buffer and a copy (not
 * queue.writeBuffer, which crashed dawn.node when handed memory it did not own), one dispatch sums them, the result
 * comes back through the pool's read-back staging. A piece of more than `maxBlockBytes` of slices (default 64 MiB,
 * less where one binding allows less) is summed in blocks of elements, one upload, dispatch and read-back each.
 * The result is the summer's own array, valid until its next call.
 */
export function gpuPieceSummer(gpu: Gpu, opts: { maxBlockBytes?: number } = {}): PieceSummer {
  let out = new Float32Array(0);
  return {
    name: 'gpu',
    async sum(slices, op) {
      const W = slices.length;
      const len = slices[0]?.length ?? 0;
      for (const s of slices) {
        if (s.length !== len) throw new WgptError(`gpu summer: slices of ${len} and ${s.length} floats`);
      }
      if (out.length < len) out = new Float32Array(len);
      const res = out.subarray(0, len);
      if (len === 0) return res;
      const onGpu: ReduceOp = op === 'mean' && exactReciprocal(W) ? 'mean' : 'sum';
      // Blocks of at most 64 MiB of slices by default: a mappable staging buffer as large as the binding limit
      // failed to allocate on SwiftShader (1 GiB at W=4, n=64 Mi), and smaller blocks bound the memory held.
      const maxBytes = Math.min(
        gpu.limits.maxStorageBufferBindingSize,
        gpu.limits.maxBufferSize,
        opts.maxBlockBytes ?? 64 << 20,
      );
      const block = Math.max(1, Math.min(len, Math.floor(maxBytes / (4 * W))));
      for (let a = 0; a < len; a += block) {
        const m = Math.min(block, len - a);
        const bytes = 4 * W * m;
        const staging = gpu.pool.acquire(bytes, GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC, 'sum staging');
        const x = gpu.pool.acquire(bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, 'sum slices');
        const y = gpu.pool.acquire(4 * m, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'sum result');
        try {
          await staging.mapAsync(GPUMapMode.WRITE, 0, bytes);
          const mapped = new Float32Array(staging.getMappedRange(0, bytes));
          for (let r = 0; r < W; r++) mapped.set(slices[r]!.subarray(a, a + m), r * m);
          staging.unmap();
          gpu.copy(staging, 0, x, 0, bytes);
          sumSlicesInto(gpu, { x, out: y, n: m, W, op: onGpu });
          res.set(new Float32Array(await gpu.read(y, 4 * m)), a);
        } finally {
          // read() has waited for the queue: nothing recorded still uses them.
          for (const b of [staging, x, y]) gpu.pool.release(b);
        }
      }
      if (op === 'mean' && onGpu === 'sum') for (let i = 0; i < len; i++) res[i] /= W;
      return res;
    },
  };
}

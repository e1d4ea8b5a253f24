// Reductions: sum and mean of a whole tensor (to one element), column sums (bias gradients).
import { defineOp, empty, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { grid1d } from '../common.ts';
import broadcastSource from './broadcast.wgsl';
import sumAllSource from './sum_all.wgsl';
import sumRowsSource from './sum_rows.wgsl';

export const sumAllSpec: KernelSpec = {
  name: 'sum_all',
  version: 'v1',
  description: 'one workgroup, strided partial sums, tree in workgroup memory',
  source: sumAllSource,
  file: 'kernels/reduce/sum_all.wgsl',
  bindings: [
    { name: 'x', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'scale', type: 'f32' },
    { name: 'accumulate', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

export const sumRowsSpec: KernelSpec = {
  name: 'sum_rows',
  version: 'v1',
  description: 'one thread per column',
  source: sumRowsSource,
  file: 'kernels/reduce/sum_rows.wgsl',
  bindings: [
    { name: 'x', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'M', type: 'u32' },
    { name: 'N', type: 'u32' },
    { name: 'accumulate', type: 'u32' },
  ],
  overrides: { WG: 64 },
};

export const broadcastSpec: KernelSpec = {
  name: 'broadcast_scalar',
  version: 'v1',
  source: broadcastSource,
  file: 'kernels/reduce/broadcast.wgsl',
  bindings: [
    { name: 'g', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'scale', type: 'f32' },
    { name: 'accumulate', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

/** out[n] (+)= Σ_m x[m, n] for x of shape (M, N). */
export function sumRowsInto(gpu: Gpu, x: GPUBuffer, M: number, N: number, out: GPUBuffer, accumulate: 0 | 1): void {
  gpu.dispatch(sumRowsSpec, {
    buffers: { x, out },
    uniforms: { M, N, accumulate },
    workgroups: [Math.ceil(N / 64)],
    context: `M=${M} N=${N}`,
  });
}

function reduceAll(name: string, mean: boolean) {
  return defineOp({
    name,
    forward(x: Tensor) {
      const out = empty(x.gpu, [1]);
      const scale = mean ? 1 / Math.max(1, x.size) : 1;
      x.gpu.dispatch(sumAllSpec, {
        buffers: { x: x.buffer, out: out.buffer },
        uniforms: { n: x.size, scale, accumulate: 0 },
        workgroups: [1],
        context: `n=${x.size}`,
      });
      return { out, saved: scale };
    },
    backward(ctx, g, { args: [x], saved: scale }) {
      const dx = ctx.grad(x);
      if (dx)
        x.gpu.dispatch(broadcastSpec, {
          buffers: { g: g.buffer, out: dx.tensor.buffer },
          uniforms: { n: x.size, scale, accumulate: dx.accumulate },
          workgroups: grid1d(x.gpu, x.size, 256),
          context: `n=${x.size}`,
        });
    },
  });
}

/** The sum of every element, as a one-element tensor. */
export const sum = reduceAll('sum', false);
/** The mean of every element, as a one-element tensor. */
export const mean = reduceAll('mean', true);

// Elementwise ops: add (the residual stream), GELU (tanh approximation, as GPT-2), and the gradient pass-through.
import { defineOp, empty, type Gpu, type KernelSpec, type Tensor, WgptError } from '@wgpt/runtime';
import { expectSameGpu, grid1d } from '../common.ts';
import accumulateSource from './accumulate.wgsl';
import addSource from './add.wgsl';
import geluBackwardSource from './gelu_backward.wgsl';
import geluForwardSource from './gelu_forward.wgsl';

const u = (name: string) => ({ name, type: 'u32' as const });

export const addSpec: KernelSpec = {
  name: 'add',
  version: 'v1',
  source: addSource,
  file: 'kernels/elementwise/add.wgsl',
  bindings: [
    { name: 'a', kind: 'read-only-storage' },
    { name: 'b', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [u('n')],
  overrides: { WG: 256 },
};

export const accumulateSpec: KernelSpec = {
  name: 'accumulate',
  version: 'v1',
  source: accumulateSource,
  file: 'kernels/elementwise/accumulate.wgsl',
  bindings: [
    { name: 'src', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [u('n'), u('accumulate')],
  overrides: { WG: 256 },
};

export const geluForwardSpec: KernelSpec = {
  name: 'gelu_forward',
  version: 'v1',
  source: geluForwardSource,
  file: 'kernels/elementwise/gelu_forward.wgsl',
  bindings: [
    { name: 'x', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [u('n')],
  overrides: { WG: 256 },
};

export const geluBackwardSpec: KernelSpec = {
  name: 'gelu_backward',
  version: 'v1',
  source: geluBackwardSource,
  file: 'kernels/elementwise/gelu_backward.wgsl',
  bindings: [
    { name: 'x', kind: 'read-only-storage' },
    { name: 'dout', kind: 'read-only-storage' },
    { name: 'dx', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [u('n'), u('accumulate')],
  overrides: { WG: 256 },
};

/** out (+)= src over n elements. */
export function accumulateInto(gpu: Gpu, src: GPUBuffer, out: GPUBuffer, n: number, accumulate: 0 | 1): void {
  gpu.dispatch(accumulateSpec, {
    buffers: { src, out },
    uniforms: { n, accumulate },
    workgroups: grid1d(gpu, n, 256),
    context: `n=${n}`,
  });
}

/** dx (+)= dout · gelu'(x) over n elements. */
export function geluBackwardInto(
  gpu: Gpu,
  x: GPUBuffer,
  dout: GPUBuffer,
  dx: GPUBuffer,
  n: number,
  accumulate: 0 | 1,
): void {
  gpu.dispatch(geluBackwardSpec, {
    buffers: { x, dout, dx },
    uniforms: { n, accumulate },
    workgroups: grid1d(gpu, n, 256),
    context: `n=${n}`,
  });
}

/** out = a + b (same shapes). */
export const add = defineOp({
  name: 'add',
  forward(a: Tensor, b: Tensor) {
    expectSameGpu('add', a, b);
    if (a.shape.join() !== b.shape.join()) throw new WgptError(`add: shapes differ: ${a} and ${b}`);
    const out = empty(a.gpu, a.shape);
    a.gpu.dispatch(addSpec, {
      buffers: { a: a.buffer, b: b.buffer, out: out.buffer },
      uniforms: { n: a.size },
      workgroups: grid1d(a.gpu, a.size, 256),
      context: `n=${a.size}`,
    });
    return { out, saved: null };
  },
  backward(ctx, g, { args }) {
    for (const x of args) {
      const d = ctx.grad(x);
      if (d) accumulateInto(x.gpu, g.buffer, d.tensor.buffer, x.size, d.accumulate);
    }
  },
});

/** GELU with GPT-2's tanh approximation. */
export const gelu = defineOp({
  name: 'gelu',
  forward(x: Tensor) {
    const out = empty(x.gpu, x.shape);
    x.gpu.dispatch(geluForwardSpec, {
      buffers: { x: x.buffer, out: out.buffer },
      uniforms: { n: x.size },
      workgroups: grid1d(x.gpu, x.size, 256),
      context: `n=${x.size}`,
    });
    return { out, saved: null };
  },
  backward(ctx, g, { args: [x] }) {
    const dx = ctx.grad(x);
    if (dx) geluBackwardInto(x.gpu, x.buffer, g.buffer, dx.tensor.buffer, x.size, dx.accumulate);
  },
});

/** The same data with another shape (a view: no copy); the gradient flows back unchanged. */
export const reshape = defineOp({
  name: 'reshape',
  forward(x: Tensor, shape: readonly number[]) {
    return { out: x.view(shape), saved: null };
  },
  backward(ctx, g, { args: [x] }) {
    const d = ctx.grad(x);
    if (d) accumulateInto(x.gpu, g.buffer, d.tensor.buffer, x.size, d.accumulate);
  },
});

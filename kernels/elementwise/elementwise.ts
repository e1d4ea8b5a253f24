// Elementwise ops: add (the residual stream), GELU (tanh approximation, as GPT-2), and the gradient pass-through.
// Two versions of add, accumulate and the GELU backward, with the same bits:
//   v1  one invocation per element: for GPUs.
//   v2  vec4s, about 16 per invocation in a grid-stride loop, and add's backward writes both inputs' gradients in
//       one dispatch: for CPU adapters (SwiftShader), where an invocation and a dispatch cost more than an element.
//       Needs n % 4 == 0.
import {
  bufferRange,
  defineOp,
  empty,
  type GradTarget,
  type Gpu,
  type KernelSpec,
  type Tensor,
  WgptError,
} from '@wgpt/runtime';
import { expectSameGpu, grid1d } from '../common.ts';
import accumulateSource from './accumulate.wgsl';
import accumulatePairV2Source from './accumulate_pair_v2.wgsl';
import accumulateV2Source from './accumulate_v2.wgsl';
import addSource from './add.wgsl';
import addV2Source from './add_v2.wgsl';
import geluBackwardSource from './gelu_backward.wgsl';
import geluBackwardV2Source from './gelu_backward_v2.wgsl';
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

const v2 = (spec: KernelSpec, file: string, source: string, description: string): KernelSpec => ({
  ...spec,
  version: 'v2',
  description,
  source,
  file: `kernels/elementwise/${file}`,
  overrides: { WG: 64 },
});

export const addV2Spec = v2(addSpec, 'add_v2.wgsl', addV2Source, 'vec4s, ~16 per invocation (grid-stride): CPU');
export const accumulateV2Spec = v2(
  accumulateSpec,
  'accumulate_v2.wgsl',
  accumulateV2Source,
  'vec4s, ~16 per invocation (grid-stride): CPU',
);
export const geluBackwardV2Spec = v2(
  geluBackwardSpec,
  'gelu_backward_v2.wgsl',
  geluBackwardV2Source,
  'vec4s, ~16 per invocation (grid-stride): CPU',
);
export const accumulatePairV2Spec: KernelSpec = {
  name: 'accumulate_pair',
  version: 'v2',
  description: "out0 (+)= src and out1 (+)= src in one pass (add's backward), vec4s, ~16 per invocation: CPU",
  source: accumulatePairV2Source,
  file: 'kernels/elementwise/accumulate_pair_v2.wgsl',
  bindings: [
    { name: 'src', kind: 'read-only-storage' },
    { name: 'out0', kind: 'storage' },
    { name: 'out1', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [u('n'), u('accumulate0'), u('accumulate1')],
  overrides: { WG: 64 },
};

export type ElementwiseVersion = 'v1' | 'v2';

/** The version for n elements on this device: v2 on software adapters when n % 4 == 0, else v1. */
export function elementwiseVersion(gpu: Gpu, n: number): ElementwiseVersion {
  return gpu.software && n % 4 === 0 ? 'v2' : 'v1';
}

function pick(gpu: Gpu, n: number, version: ElementwiseVersion | undefined): ElementwiseVersion {
  const v = version ?? elementwiseVersion(gpu, n);
  if (v === 'v2' && n % 4 !== 0) throw new Error(`elementwise v2 needs n % 4 == 0 (n=${n})`);
  return v;
}

/** v2's grid: 64 invocations per workgroup, about 16 vec4s each (more where the grid reaches its limit). */
function gridV2(gpu: Gpu, n: number): [number] {
  return [Math.min(Math.ceil(n / 4 / 16 / 64), gpu.limits.maxComputeWorkgroupsPerDimension)];
}

/** out (+)= src over n elements. */
export function accumulateInto(
  gpu: Gpu,
  src: GPUBuffer,
  out: GPUBuffer,
  n: number,
  accumulate: 0 | 1,
  version?: ElementwiseVersion,
): void {
  const v = pick(gpu, n, version);
  gpu.dispatch(v === 'v2' ? accumulateV2Spec : accumulateSpec, {
    buffers: { src, out },
    uniforms: { n, accumulate },
    workgroups: v === 'v2' ? gridV2(gpu, n) : grid1d(gpu, n, 256),
    context: `n=${n}`,
  });
}

/**
 * out0 (+)= src and out1 (+)= src over n elements (two different buffers, each with its own accumulate flag): one
 * v2 dispatch where v2 applies, else two accumulates.
 */
export function accumulatePairInto(
  gpu: Gpu,
  src: GPUBuffer,
  n: number,
  out0: { buffer: GPUBuffer; accumulate: 0 | 1 },
  out1: { buffer: GPUBuffer; accumulate: 0 | 1 },
  version?: ElementwiseVersion,
): void {
  const v = pick(gpu, n, version);
  if (v === 'v1') {
    accumulateInto(gpu, src, out0.buffer, n, out0.accumulate, v);
    accumulateInto(gpu, src, out1.buffer, n, out1.accumulate, v);
    return;
  }
  gpu.dispatch(accumulatePairV2Spec, {
    buffers: { src, out0: out0.buffer, out1: out1.buffer },
    uniforms: { n, accumulate0: out0.accumulate, accumulate1: out1.accumulate },
    workgroups: gridV2(gpu, n),
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
  version?: ElementwiseVersion,
): void {
  const v = pick(gpu, n, version);
  gpu.dispatch(v === 'v2' ? geluBackwardV2Spec : geluBackwardSpec, {
    buffers: { x, dout, dx },
    uniforms: { n, accumulate },
    workgroups: v === 'v2' ? gridV2(gpu, n) : grid1d(gpu, n, 256),
    context: `n=${n}`,
  });
}

/** out = a + b over n elements. */
export function addInto(
  gpu: Gpu,
  a: GPUBuffer,
  b: GPUBuffer,
  out: GPUBuffer,
  n: number,
  version?: ElementwiseVersion,
): void {
  const v = pick(gpu, n, version);
  gpu.dispatch(v === 'v2' ? addV2Spec : addSpec, {
    buffers: { a, b, out },
    uniforms: { n },
    workgroups: v === 'v2' ? gridV2(gpu, n) : grid1d(gpu, n, 256),
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
    addInto(a.gpu, a.buffer, b.buffer, out.buffer, a.size);
    return { out, saved: null };
  },
  backward(ctx, g, { args: [a, b] }) {
    const da = ctx.grad(a);
    const db = ctx.grad(b);
    const root = (d: GradTarget) => bufferRange(d.tensor.buffer).buffer;
    // Both in one dispatch, unless they share a buffer (add(x, x) asks twice for x's gradient, write then add; two
    // packed parameters lie in one): WebGPU binds a buffer writable only once per dispatch.
    if (da && db && root(da) !== root(db)) {
      const out = (d: GradTarget) => ({ buffer: d.tensor.buffer, accumulate: d.accumulate });
      accumulatePairInto(a.gpu, g.buffer, a.size, out(da), out(db));
      return;
    }
    for (const d of [da, db]) if (d) accumulateInto(a.gpu, g.buffer, d.tensor.buffer, a.size, d.accumulate);
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

// GPT-2 LayerNorm over the last dimension, with weight and bias: forward saves mean and rstd per row; backward
// computes dx (one workgroup per row) and dweight/dbias deterministically (per-chunk partials, then a fixed-order
// column sum by sum_rows: no float atomics, the same bits on every run).
import { defineOp, empty, grid1d, WgptError, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { expectSameGpu, expectShape } from '../common.ts';
import { sumRowsInto } from '../reduce/reduce.ts';
import backwardDxSource from './layernorm_backward_dx.wgsl';
import backwardParamsSource from './layernorm_backward_params.wgsl';
import forwardSource from './layernorm_forward.wgsl';

export const LAYERNORM_EPS = 1e-5;

export const layernormForwardSpec: KernelSpec = {
  name: 'layernorm_forward',
  version: 'v1',
  description: 'one workgroup per row, strided partial sums, two-level 16-way sums in workgroup memory, centred two-pass variance',
  source: forwardSource,
  file: 'kernels/layernorm/layernorm_forward.wgsl',
  bindings: [
    { name: 'x', kind: 'read-only-storage' },
    { name: 'weight', kind: 'read-only-storage' },
    { name: 'bias', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'mean', kind: 'storage' },
    { name: 'rstd', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'N', type: 'u32' },
    { name: 'C', type: 'u32' },
    { name: 'eps', type: 'f32' },
  ],
  overrides: { WG: 256 },
};

export const layernormBackwardDxSpec: KernelSpec = {
  name: 'layernorm_backward_dx',
  version: 'v1',
  description: 'one workgroup per row, both row means by two-level 16-way sums',
  source: backwardDxSource,
  file: 'kernels/layernorm/layernorm_backward_dx.wgsl',
  bindings: [
    { name: 'x', kind: 'read-only-storage' },
    { name: 'weight', kind: 'read-only-storage' },
    { name: 'mean', kind: 'read-only-storage' },
    { name: 'rstd', kind: 'read-only-storage' },
    { name: 'dout', kind: 'read-only-storage' },
    { name: 'dx', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'N', type: 'u32' },
    { name: 'C', type: 'u32' },
    { name: 'accumulate', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

export const layernormBackwardParamsSpec: KernelSpec = {
  name: 'layernorm_backward_params',
  version: 'v1',
  description: 'per-chunk column partials of dweight and dbias, one thread per (chunk, column)',
  source: backwardParamsSource,
  file: 'kernels/layernorm/layernorm_backward_params.wgsl',
  bindings: [
    { name: 'x', kind: 'read-only-storage' },
    { name: 'mean', kind: 'read-only-storage' },
    { name: 'rstd', kind: 'read-only-storage' },
    { name: 'dout', kind: 'read-only-storage' },
    { name: 'pw', kind: 'storage' },
    { name: 'pb', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'N', type: 'u32' },
    { name: 'C', type: 'u32' },
    { name: 'rows', type: 'u32' },
  ],
  overrides: { WG: 64 },
};

/** Number of row chunks for the dweight/dbias partials: at most 256, so the second stage stays small. */
export function layernormChunks(N: number): { rows: number; chunks: number } {
  const rows = Math.max(1, Math.ceil(N / 256));
  return { rows, chunks: Math.max(1, Math.ceil(N / rows)) };
}

export interface LayerNormSaved {
  mean: Tensor;
  rstd: Tensor;
}

/** Records the forward: out, mean and rstd must be preallocated ((N, C), (N), (N)). workgroupSize: a multiple of 16. */
export function layernormForwardInto(gpu: Gpu, a: { x: GPUBuffer; weight: GPUBuffer; bias: GPUBuffer; out: GPUBuffer; mean: GPUBuffer; rstd: GPUBuffer; N: number; C: number; workgroupSize?: number }): void {
  gpu.dispatch(layernormForwardSpec, {
    buffers: { x: a.x, weight: a.weight, bias: a.bias, out: a.out, mean: a.mean, rstd: a.rstd },
    uniforms: { N: a.N, C: a.C, eps: LAYERNORM_EPS },
    overrides: a.workgroupSize ? { WG: a.workgroupSize } : undefined,
    workgroups: grid1d(gpu, a.N, 1),
    context: `N=${a.N} C=${a.C}`,
  });
}

/** out (N, C) = (x − mean) · rstd · weight + bias, per row of x (N, C); weight and bias (C). eps = 1e-5. */
export const layernorm = defineOp({
  name: 'layernorm',
  forward(x: Tensor, weight: Tensor, bias: Tensor) {
    expectSameGpu('layernorm', x, weight, bias);
    expectShape('layernorm', x, 2);
    const [N, C] = x.shape as [number, number];
    if (C === 0) throw new WgptError(`layernorm: ${x} has no columns`);
    expectShape('layernorm', weight, 1, [C]);
    expectShape('layernorm', bias, 1, [C]);
    const gpu = x.gpu;
    const out = empty(gpu, [N, C]);
    const mean = empty(gpu, [N], 'f32', { name: 'layernorm mean' });
    const rstd = empty(gpu, [N], 'f32', { name: 'layernorm rstd' });
    layernormForwardInto(gpu, { x: x.buffer, weight: weight.buffer, bias: bias.buffer, out: out.buffer, mean: mean.buffer, rstd: rstd.buffer, N, C });
    return { out, saved: { mean, rstd } as LayerNormSaved };
  },
  backward(ctx, g, saved, out) {
    const [x, weight, bias] = out.node!.inputs as [Tensor, Tensor, Tensor];
    const [N, C] = x.shape as [number, number];
    const gpu = x.gpu;
    const context = `N=${N} C=${C}`;
    const dx = ctx.grad(x);
    if (dx) {
      gpu.dispatch(layernormBackwardDxSpec, {
        buffers: { x: x.buffer, weight: weight.buffer, mean: saved.mean.buffer, rstd: saved.rstd.buffer, dout: g.buffer, dx: dx.tensor.buffer },
        uniforms: { N, C, accumulate: dx.accumulate },
        workgroups: grid1d(gpu, N, 1),
        context,
      });
    }
    const dw = ctx.grad(weight);
    const db = ctx.grad(bias);
    if (!dw && !db) return;
    const { rows, chunks } = layernormChunks(N);
    // Temporaries: released right after recording; later users of the same buffers are recorded after these reads.
    const pw = empty(gpu, [chunks, C], 'f32', { track: false, name: 'layernorm dweight partials' });
    const pb = empty(gpu, [chunks, C], 'f32', { track: false, name: 'layernorm dbias partials' });
    gpu.dispatch(layernormBackwardParamsSpec, {
      buffers: { x: x.buffer, mean: saved.mean.buffer, rstd: saved.rstd.buffer, dout: g.buffer, pw: pw.buffer, pb: pb.buffer },
      uniforms: { N, C, rows },
      workgroups: [Math.ceil(C / 64), chunks],
      context: `${context} rows=${rows}`,
    });
    if (dw) sumRowsInto(gpu, pw.buffer, chunks, C, dw.tensor.buffer, dw.accumulate);
    if (db) sumRowsInto(gpu, pb.buffer, chunks, C, db.tensor.buffer, db.accumulate);
    pw.dispose();
    pb.dispose();
  },
});

// GPT-2 LayerNorm over the last dimension, with weight and bias: forward saves mean and rstd per row; backward is
// one kernel for dx and per-chunk dweight/dbias partials (x and dout read once), then a fixed-order column sum of
// the partials: no float atomics, the same bits on every run.
// Two versions of the three kernels, with the same outputs up to rounding:
//   v1  one workgroup per row (forward) or per chunk of rows (backward), sums through workgroup memory: for GPUs.
//   v2  one invocation per row, vec4 loads, no workgroup memory or barriers, 4-row chunks summed by a subgroup
//       sum: for CPU adapters (SwiftShader), where barriers and loads are what costs. Needs C % 4 == 0 (and, for
//       the backward, subgroups of 4).
import { defineOp, empty, grid1d, WgptError, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { expectSameGpu, expectShape, subgroupsOf4 } from '../common.ts';
import backwardSource from './layernorm_backward.wgsl';
import reduceSource from './layernorm_backward_reduce.wgsl';
import reduceV2Source from './layernorm_backward_reduce_v2.wgsl';
import backwardV2Source from './layernorm_backward_v2.wgsl';
import forwardSource from './layernorm_forward.wgsl';
import forwardV2Source from './layernorm_forward_v2.wgsl';

export const LAYERNORM_EPS = 1e-5;

export const layernormForwardSpec: KernelSpec = {
  name: 'layernorm_forward',
  version: 'v1',
  description:
    'one workgroup per row, strided partial sums, two-level 16-way sums in workgroup memory, centred two-pass variance',
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

export const layernormBackwardSpec: KernelSpec = {
  name: 'layernorm_backward',
  version: 'v1',
  description: 'one workgroup per chunk of rows: dx per row, dweight/dbias chunk partials in registers',
  source: backwardSource,
  file: 'kernels/layernorm/layernorm_backward.wgsl',
  bindings: [
    { name: 'x', kind: 'read-only-storage' },
    { name: 'weight', kind: 'read-only-storage' },
    { name: 'mean', kind: 'read-only-storage' },
    { name: 'rstd', kind: 'read-only-storage' },
    { name: 'dout', kind: 'read-only-storage' },
    { name: 'dx', kind: 'storage' },
    { name: 'pw', kind: 'storage' },
    { name: 'pb', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'N', type: 'u32' },
    { name: 'C', type: 'u32' },
    { name: 'rows', type: 'u32' },
    { name: 'accumulate', type: 'u32' },
    { name: 'write_dx', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

export const layernormBackwardReduceSpec: KernelSpec = {
  name: 'layernorm_backward_reduce',
  version: 'v1',
  description: 'column sums of the chunk partials, 64 columns x LANES lanes per workgroup, fixed order',
  source: reduceSource,
  file: 'kernels/layernorm/layernorm_backward_reduce.wgsl',
  bindings: [
    { name: 'pw', kind: 'read-only-storage' },
    { name: 'pb', kind: 'read-only-storage' },
    { name: 'dweight', kind: 'storage' },
    { name: 'dbias', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'K', type: 'u32' },
    { name: 'C', type: 'u32' },
    { name: 'accumulate_w', type: 'u32' },
    { name: 'accumulate_b', type: 'u32' },
  ],
  overrides: { LANES: 4 },
};

export const layernormForwardV2Spec: KernelSpec = {
  ...layernormForwardSpec,
  version: 'v2',
  description: 'one invocation per row, vec4 loads, no workgroup memory: for CPU adapters; C % 4 == 0',
  source: forwardV2Source,
  file: 'kernels/layernorm/layernorm_forward_v2.wgsl',
  overrides: { WG: 64 },
};

export const layernormBackwardV2Spec: KernelSpec = {
  ...layernormBackwardSpec,
  version: 'v2',
  description:
    'one invocation per row: dx, and dweight/dbias partials per 4-row chunk by subgroup sums; for CPU adapters',
  source: backwardV2Source,
  file: 'kernels/layernorm/layernorm_backward_v2.wgsl',
  uniforms: [
    { name: 'N', type: 'u32' },
    { name: 'C', type: 'u32' },
    { name: 'accumulate', type: 'u32' },
    { name: 'write_dx', type: 'u32' },
  ],
  overrides: { WG: 64 },
};

export const layernormBackwardReduceV2Spec: KernelSpec = {
  ...layernormBackwardReduceSpec,
  version: 'v2',
  description: 'column sums of the chunk partials, one invocation per 4 columns of one tensor, chunks in order',
  source: reduceV2Source,
  file: 'kernels/layernorm/layernorm_backward_reduce_v2.wgsl',
  overrides: { WG: 32 },
};

export type LayerNormVersion = 'v1' | 'v2';

/**
 * The version for C columns on this device: v2 on software adapters (with subgroups of 4, which the backward needs)
 * when C % 4 == 0, else v1.
 */
export function layernormVersion(gpu: Gpu, C: number): LayerNormVersion {
  return gpu.software && subgroupsOf4(gpu) && C % 4 === 0 ? 'v2' : 'v1';
}

function checkVersion(gpu: Gpu, version: LayerNormVersion, C: number): void {
  if (version === 'v2' && (C % 4 !== 0 || !subgroupsOf4(gpu)))
    throw new Error(`layernorm v2 needs C % 4 == 0 (C=${C}) and subgroups of 4 (${gpu.describe()})`);
}

/** Columns each backward thread handles at most (PER in layernorm_backward.wgsl). */
const PER = 8;

/** Threads per row of the forward: C rounded up to a multiple of 16, at most 256 (GPT-2's C = 768 gets 256). */
export function layernormForwardWorkgroup(C: number): number {
  return Math.min(256, Math.max(16, Math.ceil(C / 16) * 16));
}

/**
 * Threads per row chunk of the backward: as the forward, but at least C/PER (each thread keeps PER columns'
 * partials in registers). C beyond PER·(the device's largest workgroup, at most 1024) is refused.
 */
export function layernormBackwardWorkgroup(gpu: Gpu, C: number): number {
  const wg = layernormForwardWorkgroup(C);
  if (C <= PER * wg) return wg;
  const max = Math.min(gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX, 1024);
  if (C > PER * max)
    throw new WgptError(
      `layernorm backward: C=${C} exceeds ${PER}·${max} columns (${PER} per thread, ${max} threads on this device)`,
    );
  return Math.ceil(C / PER / 16) * 16;
}

/**
 * Row chunks of the backward: at most 1024 workgroups (enough to fill an H100, ~8 rows each at GPT-2's N = 8192),
 * each writing one row of dweight/dbias partials; the reduce then reads 1024·C·2 floats (6 MB at C = 768).
 */
export function layernormChunks(N: number): { rows: number; chunks: number } {
  const rows = Math.max(1, Math.ceil(N / 1024));
  return { rows, chunks: Math.max(1, Math.ceil(N / rows)) };
}

export interface LayerNormSaved {
  mean: Tensor;
  rstd: Tensor;
}

/** Records the forward: out, mean and rstd must be preallocated ((N, C), (N), (N)). workgroupSize: a multiple of 16. */
export function layernormForwardInto(
  gpu: Gpu,
  a: {
    x: GPUBuffer;
    weight: GPUBuffer;
    bias: GPUBuffer;
    out: GPUBuffer;
    mean: GPUBuffer;
    rstd: GPUBuffer;
    N: number;
    C: number;
    /** v1 only. */
    workgroupSize?: number;
    /** Default: layernormVersion(). */
    version?: LayerNormVersion;
  },
): void {
  const version = a.version ?? layernormVersion(gpu, a.C);
  checkVersion(gpu, version, a.C);
  if (version === 'v2') {
    gpu.dispatch(layernormForwardV2Spec, {
      buffers: { x: a.x, weight: a.weight, bias: a.bias, out: a.out, mean: a.mean, rstd: a.rstd },
      uniforms: { N: a.N, C: a.C, eps: LAYERNORM_EPS },
      workgroups: grid1d(gpu, a.N, 64),
      context: `N=${a.N} C=${a.C}`,
    });
    return;
  }
  gpu.dispatch(layernormForwardSpec, {
    buffers: { x: a.x, weight: a.weight, bias: a.bias, out: a.out, mean: a.mean, rstd: a.rstd },
    uniforms: { N: a.N, C: a.C, eps: LAYERNORM_EPS },
    overrides: { WG: a.workgroupSize ?? layernormForwardWorkgroup(a.C) },
    workgroups: grid1d(gpu, a.N, 1),
    context: `N=${a.N} C=${a.C}`,
  });
}

export interface GradOut {
  buffer: GPUBuffer;
  /** 1: add into the buffer; 0: overwrite it. */
  accumulate: 0 | 1;
}

/** Records the backward (the fused kernel, then the partials' reduce). Gradients left null are not computed. */
export function layernormBackwardInto(
  gpu: Gpu,
  a: {
    x: GPUBuffer;
    weight: GPUBuffer;
    mean: GPUBuffer;
    rstd: GPUBuffer;
    dout: GPUBuffer;
    N: number;
    C: number;
    dx?: GradOut | null;
    dweight?: GradOut | null;
    dbias?: GradOut | null;
    /** Default: layernormVersion(). */
    version?: LayerNormVersion;
  },
): void {
  const { N, C } = a;
  if (N === 0) {
    // No rows: dweight and dbias are empty sums (overwrite with zeros, or leave as they are).
    for (const d of [a.dweight, a.dbias]) if (d && !d.accumulate) gpu.clear(d.buffer, 0, 4 * C);
    return;
  }
  const version = a.version ?? layernormVersion(gpu, C);
  checkVersion(gpu, version, C);
  const context = `N=${N} C=${C}`;
  const v2 = version === 'v2';
  // v2: chunks of 4 rows (one subgroup each).
  const { rows, chunks } = v2 ? { rows: 4, chunks: Math.ceil(N / 4) } : layernormChunks(N);
  // Temporaries: released right after recording; later users of the same buffers are recorded after these reads.
  const temps: Tensor[] = [];
  const tmp = (n: number, name: string) =>
    temps[temps.push(empty(gpu, [n], 'f32', { track: false, name })) - 1]!.buffer;
  const pw = tmp(chunks * C, 'layernorm dweight partials');
  const pb = tmp(chunks * C, 'layernorm dbias partials');
  const buffers = {
    x: a.x,
    weight: a.weight,
    mean: a.mean,
    rstd: a.rstd,
    dout: a.dout,
    dx: a.dx?.buffer ?? tmp(4, 'layernorm unused dx'),
    pw,
    pb,
  };
  const flags = { accumulate: a.dx?.accumulate ?? 0, write_dx: a.dx ? 1 : 0 };
  if (v2)
    gpu.dispatch(layernormBackwardV2Spec, {
      buffers,
      uniforms: { N, C, ...flags },
      workgroups: grid1d(gpu, chunks, 64 / 4),
      context: `${context} rows=4`,
    });
  else
    gpu.dispatch(layernormBackwardSpec, {
      buffers,
      uniforms: { N, C, rows, ...flags },
      overrides: { WG: layernormBackwardWorkgroup(gpu, C) },
      workgroups: grid1d(gpu, chunks, 1),
      context: `${context} rows=${rows}`,
    });
  if (a.dweight || a.dbias) {
    gpu.dispatch(v2 ? layernormBackwardReduceV2Spec : layernormBackwardReduceSpec, {
      buffers: {
        pw,
        pb,
        dweight: a.dweight?.buffer ?? tmp(C, 'layernorm unused dweight'),
        dbias: a.dbias?.buffer ?? tmp(C, 'layernorm unused dbias'),
      },
      uniforms: { K: chunks, C, accumulate_w: a.dweight?.accumulate ?? 0, accumulate_b: a.dbias?.accumulate ?? 0 },
      workgroups: v2 ? [Math.ceil(C / 2 / 32)] : [Math.ceil(C / 64), 2],
      context: `${context} K=${chunks}`,
    });
  }
  for (const t of temps) t.dispose();
}

export interface LayerNormOptions {
  /** Force a version (tests, benches); default: layernormVersion(). */
  version?: LayerNormVersion;
}

/** out (N, C) = (x − mean) · rstd · weight + bias, per row of x (N, C); weight and bias (C). eps = 1e-5. */
export const layernorm = defineOp({
  name: 'layernorm',
  forward(x: Tensor, weight: Tensor, bias: Tensor, opts: LayerNormOptions = {}) {
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
    layernormForwardInto(gpu, {
      x: x.buffer,
      weight: weight.buffer,
      bias: bias.buffer,
      out: out.buffer,
      mean: mean.buffer,
      rstd: rstd.buffer,
      N,
      C,
      version: opts.version,
    });
    return { out, saved: { mean, rstd } as LayerNormSaved };
  },
  backward(ctx, g, { args: [x, weight, bias, opts], saved }) {
    const [N, C] = x.shape as [number, number];
    const gpu = x.gpu;
    const dx = ctx.grad(x);
    const dw = ctx.grad(weight);
    const db = ctx.grad(bias);
    if (!dx && !dw && !db) return;
    layernormBackwardInto(gpu, {
      x: x.buffer, weight: weight.buffer, mean: saved.mean.buffer, rstd: saved.rstd.buffer, dout: g.buffer, N, C,
      dx: dx && { buffer: dx.tensor.buffer, accumulate: dx.accumulate },
      dweight: dw && { buffer: dw.tensor.buffer, accumulate: dw.accumulate },
      dbias: db && { buffer: db.tensor.buffer, accumulate: db.accumulate },
      version: opts?.version,
    });
  },
});

// Causal multi-head attention as GPT-2 uses it: qkv packed (B, T, 3C) from one matmul (q at channels [0, C), k at
// [C, 2C), v at [2C, 3C); head h at h*HS within each), output (B, T, C) with head h at channels [h*HS, (h+1)*HS),
// scale 1/sqrt(HS). Two versions with the same semantics:
//   attention       flash attention (FlashAttention-2 schedule): online softmax over K/V blocks streamed through
//                   workgroup memory, causal blocks above the diagonal skipped, logsumexp saved; the backward
//                   recomputes P and produces dQ (one pass per query block) and dK, dV (one pass per key block)
//                   without any T×T buffer and without atomics. Extra memory: (B, NH, T) for lse and for D.
//                   Two kernel sets (FlashPlan): v1, one score per thread with TPR threads per row (faster on
//                   SwiftShader, the default there), and v2, register tiles of R rows x several keys per thread with
//                   each probability computed once (built for hardware GPUs, the default there; unmeasured on one yet).
//   attentionNaive  the probabilities (B, NH, T, T) materialised and kept for the backward, plus a (B, NH, T, T)
//                   score gradient in the backward: the reference and the memory baseline.
import { defineOp, empty, WgptError, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { expectShape, grid1d } from '../common.ts';
import flashBackwardDkvSource from './flash_backward_dkv.wgsl';
import flashBackwardDotSource from './flash_backward_dot.wgsl';
import flashBackwardDqSource from './flash_backward_dq.wgsl';
import flashBackwardDqV2Source from './flash_backward_dq_v2.wgsl';
import flashBackwardDkvV2Source from './flash_backward_dkv_v2.wgsl';
import flashForwardSource from './flash_forward.wgsl';
import flashForwardV2Source from './flash_forward_v2.wgsl';
import naiveBackwardAttSource from './naive_backward_att.wgsl';
import naiveBackwardQkvSource from './naive_backward_qkv.wgsl';
import naiveForwardAttSource from './naive_forward_att.wgsl';
import naiveForwardOutSource from './naive_forward_out.wgsl';

const dims = [
  { name: 'B', type: 'u32' },
  { name: 'T', type: 'u32' },
  { name: 'NH', type: 'u32' },
] as const;
const tileOverrides = { HS: 64, BR: 16, BC: 16, TPR: 16 };
/** Output dims a thread of the flash kernels can hold in registers (MAXD in the WGSL): HS <= TPR * MAXD. */
export const FLASH_MAXD = 8;

export const flashForwardSpec: KernelSpec = {
  name: 'attention_flash_forward',
  version: 'v1',
  description: 'BR queries x HS per workgroup (TPR threads per row), BC-key K/V blocks streamed, online softmax, causal blocks skipped',
  source: flashForwardSource,
  file: 'kernels/attention/flash_forward.wgsl',
  bindings: [
    { name: 'qkv', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'lse', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [...dims],
  overrides: tileOverrides,
};

export const flashForwardV2Spec: KernelSpec = {
  name: 'attention_flash_forward',
  version: 'v2',
  description: 'register tiles: RQ query rows x (BC/TX) keys of S and RQ rows x (HS/TX) dims of O per thread, P computed once per element',
  source: flashForwardV2Source,
  file: 'kernels/attention/flash_forward_v2.wgsl',
  bindings: flashForwardSpec.bindings,
  uniforms: [...dims],
  overrides: { HS: 64, NY: 8, BC: 32, RQ: 4, TX: 16 },
};

export const flashBackwardDotSpec: KernelSpec = {
  name: 'attention_flash_backward_dot',
  version: 'v1',
  description: 'D = rowsum(dO ∘ O), one thread per (b, h, t)',
  source: flashBackwardDotSource,
  file: 'kernels/attention/flash_backward_dot.wgsl',
  bindings: [
    { name: 'dout', kind: 'read-only-storage' },
    { name: 'out', kind: 'read-only-storage' },
    { name: 'D', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [...dims, { name: 'HS', type: 'u32' }],
  overrides: { WG: 64 },
};

const flashBackwardBindings = [
  { name: 'qkv', kind: 'read-only-storage' },
  { name: 'dout', kind: 'read-only-storage' },
  { name: 'lse', kind: 'read-only-storage' },
  { name: 'D', kind: 'read-only-storage' },
  { name: 'dqkv', kind: 'storage' },
  { name: 'params', kind: 'uniform' },
] as const;

export const flashBackwardDqSpec: KernelSpec = {
  name: 'attention_flash_backward_dq',
  version: 'v1',
  description: 'per query block: stream K/V blocks, recompute P from lse, dQ in registers',
  source: flashBackwardDqSource,
  file: 'kernels/attention/flash_backward_dq.wgsl',
  bindings: flashBackwardBindings,
  uniforms: [...dims, { name: 'accumulate', type: 'u32' }],
  overrides: tileOverrides,
};

export const flashBackwardDkvSpec: KernelSpec = {
  name: 'attention_flash_backward_dkv',
  version: 'v1',
  description: 'per key block: stream Q/dO blocks at or below the diagonal, recompute P from lse, dK and dV in registers',
  source: flashBackwardDkvSource,
  file: 'kernels/attention/flash_backward_dkv.wgsl',
  bindings: flashBackwardBindings,
  uniforms: [...dims, { name: 'accumulate', type: 'u32' }],
  overrides: tileOverrides,
};

export const flashBackwardDqV2Spec: KernelSpec = {
  name: 'attention_flash_backward_dq',
  version: 'v2',
  description: 'register tiles: RQ query rows x (BC/TX) keys of S and dP, RQ rows x (HS/TX) dims of dQ per thread',
  source: flashBackwardDqV2Source,
  file: 'kernels/attention/flash_backward_dq_v2.wgsl',
  bindings: flashBackwardBindings,
  uniforms: [...dims, { name: 'accumulate', type: 'u32' }],
  overrides: { HS: 64, NY: 8, RQ: 4, BC: 16, TX: 16 },
};

export const flashBackwardDkvV2Spec: KernelSpec = {
  name: 'attention_flash_backward_dkv',
  version: 'v2',
  description: 'register tiles: RK key rows x (BR/TX) queries of S and dP, RK rows x (HS/TX) dims of dK and dV per thread',
  source: flashBackwardDkvV2Source,
  file: 'kernels/attention/flash_backward_dkv_v2.wgsl',
  bindings: flashBackwardBindings,
  uniforms: [...dims, { name: 'accumulate', type: 'u32' }],
  overrides: { HS: 64, NY: 8, RK: 4, BR: 16, TX: 16 },
};

const naiveDims = [...dims, { name: 'HS', type: 'u32' }] as const;

export const naiveForwardAttSpec: KernelSpec = {
  name: 'attention_naive_forward_att',
  version: 'v1',
  description: 'probabilities (B, NH, T, T), one thread per row',
  source: naiveForwardAttSource,
  file: 'kernels/attention/naive_forward_att.wgsl',
  bindings: [
    { name: 'qkv', kind: 'read-only-storage' },
    { name: 'att', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: naiveDims,
  overrides: { WG: 64 },
};

export const naiveForwardOutSpec: KernelSpec = {
  name: 'attention_naive_forward_out',
  version: 'v1',
  description: 'out = att · V, one thread per output element',
  source: naiveForwardOutSource,
  file: 'kernels/attention/naive_forward_out.wgsl',
  bindings: [
    { name: 'qkv', kind: 'read-only-storage' },
    { name: 'att', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: naiveDims,
  overrides: { WG: 64 },
};

export const naiveBackwardAttSpec: KernelSpec = {
  name: 'attention_naive_backward_att',
  version: 'v1',
  description: 'score gradient (B, NH, T, T) through the softmax, one thread per row',
  source: naiveBackwardAttSource,
  file: 'kernels/attention/naive_backward_att.wgsl',
  bindings: [
    { name: 'qkv', kind: 'read-only-storage' },
    { name: 'att', kind: 'read-only-storage' },
    { name: 'dout', kind: 'read-only-storage' },
    { name: 'dpre', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: naiveDims,
  overrides: { WG: 64 },
};

export const naiveBackwardQkvSpec: KernelSpec = {
  name: 'attention_naive_backward_qkv',
  version: 'v1',
  description: 'dq, dk, dv from the (B, NH, T, T) matrices, one thread per dqkv element',
  source: naiveBackwardQkvSource,
  file: 'kernels/attention/naive_backward_qkv.wgsl',
  bindings: [
    { name: 'qkv', kind: 'read-only-storage' },
    { name: 'att', kind: 'read-only-storage' },
    { name: 'dpre', kind: 'read-only-storage' },
    { name: 'dout', kind: 'read-only-storage' },
    { name: 'dqkv', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [...naiveDims, { name: 'accumulate', type: 'u32' }],
  overrides: { WG: 64 },
};

export const attentionSpecs: KernelSpec[] = [
  flashForwardSpec,
  flashForwardV2Spec,
  flashBackwardDotSpec,
  flashBackwardDqSpec,
  flashBackwardDkvSpec,
  flashBackwardDqV2Spec,
  flashBackwardDkvV2Spec,
  naiveForwardAttSpec,
  naiveForwardOutSpec,
  naiveBackwardAttSpec,
  naiveBackwardQkvSpec,
];

export interface AttentionOptions {
  /** Number of heads; C = 3C/3 must be a multiple of it. */
  NH: number;
  /**
   * Flash kernels, forward and backward alike: v1 (one score per thread, TPR threads per row) or v2 (register
   * tiles: R rows x several keys per thread, each probability computed once). Default: v1 on software adapters,
   * where it measured faster (SwiftShader spills v2's register arrays), v2 on hardware ones, which it is built for.
   */
  version?: 'v1' | 'v2';
  /** v1 tile sizes (queries per block, keys per block, threads per row); from the device when absent. */
  tiles?: Partial<FlashTiles>;
  /** v2 tile sizes per kernel; from the device when absent. */
  v2Tiles?: { forward?: Partial<V2Tiles>; dq?: Partial<V2Tiles>; dkv?: Partial<V2Tiles> };
}

/**
 * Tiles of a v2 kernel. The workgroup owns a block of rows (BR queries for the forward and dQ, BC keys for dK/dV)
 * and streams blocks of the other side; R of its rows per thread, TX threads per row group.
 */
export interface V2Tiles {
  BR: number;
  BC: number;
  /** Owned rows per thread, 1..4, dividing the owned block. */
  R: number;
  /** Threads per row group: HS <= 8·TX and the streamed block <= 4·TX. */
  TX: number;
}

type V2Kernel = 'forward' | 'dq' | 'dkv';
const v2Defaults: Record<V2Kernel, V2Tiles> = {
  forward: { BR: 32, BC: 32, R: 4, TX: 16 },
  dq: { BR: 32, BC: 16, R: 4, TX: 16 },
  dkv: { BR: 16, BC: 32, R: 4, TX: 16 },
};

/** Workgroup memory (bytes) of a v2 kernel. */
export function flashV2Bytes(kernel: V2Kernel, HS: number, t: V2Tiles): number {
  if (kernel === 'forward') return 4 * (t.BR * HS + t.BC * (HS + 1) + t.BC * HS + t.BR * t.BC + t.BR * t.TX);
  if (kernel === 'dq') return 4 * (2 * t.BR * HS + 2 * t.BC * (HS + 1) + t.BR * t.BC);
  return 4 * (2 * t.BC * HS + 2 * t.BR * (HS + 1) + 2 * t.BR * t.BC + 2 * t.BR);
}

/** v2 tiles for a kernel: the given ones, else the defaults with the larger block halved until the device allows. */
export function flashV2Tiles(gpu: Gpu, kernel: V2Kernel, HS: number, given: Partial<V2Tiles> = {}): V2Tiles {
  const t: V2Tiles = { ...v2Defaults[kernel], ...given };
  const own = kernel === 'dkv' ? 'BC' : 'BR';
  const streamed = kernel === 'dkv' ? 'BR' : 'BC';
  const mem = gpu.limits.maxComputeWorkgroupStorageSize;
  const inv = gpu.limits.maxComputeInvocationsPerWorkgroup;
  const bad = () => `attention v2 ${kernel}: tiles ${JSON.stringify(t)} with HS=${HS}`;
  while (flashV2Bytes(kernel, HS, t) > mem || (t.TX * t[own]) / t.R > inv) {
    if (given[own] === undefined && t[own] >= t[streamed] && t[own] > t.R) t[own] /= 2;
    else if (given[streamed] === undefined && t[streamed] > 1) t[streamed] /= 2;
    else throw new WgptError(`${bad()} need ${flashV2Bytes(kernel, HS, t)} bytes of workgroup memory (limit ${mem}) and ${(t.TX * t[own]) / t.R} invocations (limit ${inv})`);
  }
  if (!(t.R >= 1 && t.R <= 4 && t[own] % t.R === 0)) throw new WgptError(`${bad()}: R must be 1..4 and divide ${own}`);
  if (HS > 8 * t.TX || t[streamed] > 4 * t.TX) throw new WgptError(`${bad()}: need HS <= 8·TX and ${streamed} <= 4·TX`);
  return t;
}

export interface FlashTiles {
  BR: number;
  BC: number;
  TPR: number;
}

export interface Shape {
  B: number;
  T: number;
  NH: number;
  HS: number;
  C: number;
}

export function shapeOf(op: string, qkv: Tensor, NH: number): Shape {
  expectShape(op, qkv, 3);
  const [B, T, C3] = qkv.shape as [number, number, number];
  if (!Number.isInteger(NH) || NH < 1) throw new WgptError(`${op}: NH=${NH} must be a positive integer`);
  if (C3 % (3 * NH) !== 0) throw new WgptError(`${op}: ${qkv} last dimension must be 3·NH·HS with NH=${NH}`);
  const C = C3 / 3;
  return { B, T, NH, HS: C / NH, C };
}

/** Workgroup memory (bytes) of the largest flash kernel (the backward ones) for a tiling. */
export function flashWorkgroupBytes(HS: number, t: FlashTiles): number {
  return 4 * (2 * t.BR * HS + 2 * t.BC * HS + 2 * t.BR * t.BC + 2 * t.BR);
}

/**
 * Tiles for head size HS on this device: the given ones, else 16 queries x 16 keys x 16 threads per row, halved
 * (queries first) until the workgroup memory and invocation limits allow.
 */
export function flashTiles(gpu: Gpu, HS: number, given: Partial<FlashTiles> = {}): FlashTiles {
  const t: FlashTiles = { BR: given.BR ?? 16, BC: given.BC ?? 16, TPR: given.TPR ?? 16 };
  const mem = gpu.limits.maxComputeWorkgroupStorageSize;
  const inv = gpu.limits.maxComputeInvocationsPerWorkgroup;
  while (flashWorkgroupBytes(HS, t) > mem || Math.max(t.BR, t.BC) * t.TPR > inv) {
    if (given.BR === undefined && t.BR >= t.BC && t.BR > 1) t.BR /= 2;
    else if (given.BC === undefined && t.BC > 1) t.BC /= 2;
    else throw new WgptError(`attention: tiles BR=${t.BR} BC=${t.BC} TPR=${t.TPR} with HS=${HS} need ${flashWorkgroupBytes(HS, t)} bytes of workgroup memory (limit ${mem}) and ${Math.max(t.BR, t.BC) * t.TPR} invocations (limit ${inv})`);
  }
  if (HS > t.TPR * FLASH_MAXD) throw new WgptError(`attention: head size ${HS} exceeds TPR·MAXD = ${t.TPR}·${FLASH_MAXD}; raise TPR`);
  return t;
}

/** Records the v2 flash forward (same outputs as v1). */
export function flashForwardV2(gpu: Gpu, qkv: GPUBuffer, out: GPUBuffer, lse: GPUBuffer, s: Shape, tiles: V2Tiles): void {
  gpu.dispatch(flashForwardV2Spec, {
    buffers: { qkv, out, lse },
    uniforms: { B: s.B, T: s.T, NH: s.NH },
    overrides: { HS: s.HS, NY: tiles.BR / tiles.R, BC: tiles.BC, RQ: tiles.R, TX: tiles.TX },
    workgroups: [Math.ceil(s.T / tiles.BR), s.NH, s.B],
    context: `B=${s.B} T=${s.T} NH=${s.NH} HS=${s.HS}`,
  });
}

/** Which flash kernels run, with their tiles. */
export type FlashPlan = { version: 'v1'; tiles: FlashTiles } | { version: 'v2'; forward: V2Tiles; dq: V2Tiles; dkv: V2Tiles };

export function flashPlan(gpu: Gpu, HS: number, opts: Omit<AttentionOptions, 'NH'> = {}): FlashPlan {
  const version = opts.version ?? (gpu.software ? 'v1' : 'v2');
  if (version === 'v1') return { version: 'v1', tiles: flashTiles(gpu, HS, opts.tiles) };
  const t = opts.v2Tiles ?? {};
  return { version: 'v2', forward: flashV2Tiles(gpu, 'forward', HS, t.forward), dq: flashV2Tiles(gpu, 'dq', HS, t.dq), dkv: flashV2Tiles(gpu, 'dkv', HS, t.dkv) };
}

export function describePlan(p: FlashPlan): string {
  if (p.version === 'v1') return `v1 BR=${p.tiles.BR} BC=${p.tiles.BC} TPR=${p.tiles.TPR}`;
  const f = (t: V2Tiles) => `${t.BR}x${t.BC}/R${t.R}/TX${t.TX}`;
  return `v2 fwd ${f(p.forward)}, dq ${f(p.dq)}, dkv ${f(p.dkv)}`;
}

/** Records the v1 flash forward: out (B, T, C) and lse (B, NH, T) from qkv (B, T, 3C). */
export function flashForwardV1(gpu: Gpu, qkv: GPUBuffer, out: GPUBuffer, lse: GPUBuffer, s: Shape, tiles: FlashTiles): void {
  gpu.dispatch(flashForwardSpec, {
    buffers: { qkv, out, lse },
    uniforms: { B: s.B, T: s.T, NH: s.NH },
    overrides: { HS: s.HS, ...tiles },
    workgroups: [Math.ceil(s.T / tiles.BR), s.NH, s.B],
    context: `B=${s.B} T=${s.T} NH=${s.NH} HS=${s.HS}`,
  });
}

/** Records the flash forward of a plan. */
export function flashForward(gpu: Gpu, qkv: GPUBuffer, out: GPUBuffer, lse: GPUBuffer, s: Shape, plan: FlashPlan): void {
  if (plan.version === 'v1') flashForwardV1(gpu, qkv, out, lse, s, plan.tiles);
  else flashForwardV2(gpu, qkv, out, lse, s, plan.forward);
}

/** Records the flash backward of a plan into dqkv (B, T, 3C); D is scratch of (B, NH, T) floats. */
export function flashBackward(gpu: Gpu, a: { qkv: GPUBuffer; out: GPUBuffer; dout: GPUBuffer; lse: GPUBuffer; D: GPUBuffer; dqkv: GPUBuffer; accumulate: 0 | 1 }, s: Shape, plan: FlashPlan): void {
  const context = `B=${s.B} T=${s.T} NH=${s.NH} HS=${s.HS}`;
  gpu.dispatch(flashBackwardDotSpec, {
    buffers: { dout: a.dout, out: a.out, D: a.D },
    uniforms: { B: s.B, T: s.T, NH: s.NH, HS: s.HS },
    workgroups: grid1d(gpu, s.B * s.NH * s.T, 64),
    context,
  });
  const buffers = { qkv: a.qkv, dout: a.dout, lse: a.lse, D: a.D, dqkv: a.dqkv };
  const uniforms = { B: s.B, T: s.T, NH: s.NH, accumulate: a.accumulate };
  if (plan.version === 'v1') {
    const { tiles } = plan;
    const overrides = { HS: s.HS, ...tiles };
    gpu.dispatch(flashBackwardDqSpec, { buffers, uniforms, overrides, workgroups: [Math.ceil(s.T / tiles.BR), s.NH, s.B], context });
    gpu.dispatch(flashBackwardDkvSpec, { buffers, uniforms, overrides, workgroups: [Math.ceil(s.T / tiles.BC), s.NH, s.B], context });
  } else {
    const { dq, dkv } = plan;
    gpu.dispatch(flashBackwardDqV2Spec, { buffers, uniforms, overrides: { HS: s.HS, NY: dq.BR / dq.R, RQ: dq.R, BC: dq.BC, TX: dq.TX }, workgroups: [Math.ceil(s.T / dq.BR), s.NH, s.B], context });
    gpu.dispatch(flashBackwardDkvV2Spec, { buffers, uniforms, overrides: { HS: s.HS, NY: dkv.BC / dkv.R, RK: dkv.R, BR: dkv.BR, TX: dkv.TX }, workgroups: [Math.ceil(s.T / dkv.BC), s.NH, s.B], context });
  }
}

/** Causal multi-head flash attention: out (B, T, C) from qkv (B, T, 3C). */
export const attention = defineOp({
  name: 'attention',
  forward(qkv: Tensor, opts: AttentionOptions) {
    const s = shapeOf('attention', qkv, opts.NH);
    const gpu = qkv.gpu;
    const plan = flashPlan(gpu, s.HS, opts);
    const out = empty(gpu, [s.B, s.T, s.C]);
    const lse = empty(gpu, [s.B, s.NH, s.T], 'f32', { name: 'attention lse' });
    flashForward(gpu, qkv.buffer, out.buffer, lse.buffer, s, plan);
    return { out, saved: { lse, plan, s } };
  },
  backward(ctx, g, { args: [qkv], saved, out }) {
    const d = ctx.grad(qkv);
    if (!d) return;
    const gpu = qkv.gpu;
    const { s, plan, lse } = saved;
    const D = empty(gpu, [s.B, s.NH, s.T], 'f32', { name: 'attention D' });
    flashBackward(gpu, { qkv: qkv.buffer, out: out.buffer, dout: g.buffer, lse: lse.buffer, D: D.buffer, dqkv: d.tensor.buffer, accumulate: d.accumulate }, s, plan);
    D.dispose(); // back to the pool; the dispatches recorded above still see it (queue order)
  },
});

/** Records the naive forward: att (B, NH, T, T) and out (B, T, C). */
export function naiveForward(gpu: Gpu, qkv: GPUBuffer, att: GPUBuffer, out: GPUBuffer, s: Shape): void {
  const context = `B=${s.B} T=${s.T} NH=${s.NH} HS=${s.HS}`;
  const uniforms = { B: s.B, T: s.T, NH: s.NH, HS: s.HS };
  gpu.dispatch(naiveForwardAttSpec, { buffers: { qkv, att }, uniforms, workgroups: grid1d(gpu, s.B * s.NH * s.T, 64), context });
  gpu.dispatch(naiveForwardOutSpec, { buffers: { qkv, att, out }, uniforms, workgroups: grid1d(gpu, s.B * s.T * s.C, 64), context });
}

/** Records the naive backward into dqkv; dpre is scratch of (B, NH, T, T) floats. */
export function naiveBackward(gpu: Gpu, a: { qkv: GPUBuffer; att: GPUBuffer; dout: GPUBuffer; dpre: GPUBuffer; dqkv: GPUBuffer; accumulate: 0 | 1 }, s: Shape): void {
  const context = `B=${s.B} T=${s.T} NH=${s.NH} HS=${s.HS}`;
  const uniforms = { B: s.B, T: s.T, NH: s.NH, HS: s.HS };
  gpu.dispatch(naiveBackwardAttSpec, { buffers: { qkv: a.qkv, att: a.att, dout: a.dout, dpre: a.dpre }, uniforms, workgroups: grid1d(gpu, s.B * s.NH * s.T, 64), context });
  gpu.dispatch(naiveBackwardQkvSpec, {
    buffers: { qkv: a.qkv, att: a.att, dpre: a.dpre, dout: a.dout, dqkv: a.dqkv },
    uniforms: { ...uniforms, accumulate: a.accumulate },
    workgroups: grid1d(gpu, s.B * s.T * 3 * s.C, 64),
    context,
  });
}

/** The same attention with the (B, NH, T, T) probabilities materialised (and kept for the backward). */
export const attentionNaive = defineOp({
  name: 'attentionNaive',
  forward(qkv: Tensor, opts: { NH: number }) {
    const s = shapeOf('attentionNaive', qkv, opts.NH);
    const gpu = qkv.gpu;
    const att = empty(gpu, [s.B, s.NH, s.T, s.T], 'f32', { name: 'attention probabilities' });
    const out = empty(gpu, [s.B, s.T, s.C]);
    naiveForward(gpu, qkv.buffer, att.buffer, out.buffer, s);
    return { out, saved: { att, s } };
  },
  backward(ctx, g, { args: [qkv], saved }) {
    const d = ctx.grad(qkv);
    if (!d) return;
    const gpu = qkv.gpu;
    const { s, att } = saved;
    const dpre = empty(gpu, [s.B, s.NH, s.T, s.T], 'f32', { name: 'attention score gradient' });
    naiveBackward(gpu, { qkv: qkv.buffer, att: att.buffer, dout: g.buffer, dpre: dpre.buffer, dqkv: d.tensor.buffer, accumulate: d.accumulate }, s);
    dpre.dispose();
  },
});

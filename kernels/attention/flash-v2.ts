// Flash attention v2: the same schedule and outputs as v1, with register tiles. A workgroup owns a block of rows
// (BR queries for the forward and dQ, BC keys for dK/dV) and streams blocks of the other side; TX threads share a
// row group and each thread holds R of the owned rows, so each probability is computed once and every workgroup-
// memory load feeds R multiply-adds. Built for hardware GPUs (the default there).
import { WgptError, type Gpu, type KernelSpec } from '@wgpt/runtime';
import flashBackwardDkvV2Source from './flash_backward_dkv_v2.wgsl';
import flashBackwardDqV2Source from './flash_backward_dq_v2.wgsl';
import flashForwardV2Source from './flash_forward_v2.wgsl';
import {
  dims,
  flashBackwardBindings,
  segmentArgs,
  shapeContext,
  type FlashBackwardBuffers,
  type Shape,
} from './shared.ts';

/** Tiles of a v2 kernel, named as its WGSL overrides are. */
export interface V2Tiles {
  /** Queries per block (owned by the forward and dQ workgroups, streamed by dK/dV). */
  BR: number;
  /** Keys per block (streamed by the forward and dQ, owned by dK/dV). */
  BC: number;
  /** Owned rows per thread, 1..4, dividing the owned block. */
  R: number;
  /** Threads per row group: HS <= 8·TX and the streamed block <= 4·TX. */
  TX: number;
}

export type V2Kernel = 'forward' | 'dq' | 'dkv';
const v2Defaults: Record<V2Kernel, V2Tiles> = {
  forward: { BR: 32, BC: 32, R: 4, TX: 16 },
  dq: { BR: 32, BC: 16, R: 4, TX: 16 },
  dkv: { BR: 16, BC: 32, R: 4, TX: 16 },
};

export const flashForwardV2Spec: KernelSpec = {
  name: 'attention_flash_forward',
  version: 'v2',
  description:
    'register tiles: R query rows x (BC/TX) keys of S and R rows x (HS/TX) dims of O per thread, P computed once ' +
    'per element',
  source: flashForwardV2Source,
  file: 'kernels/attention/flash_forward_v2.wgsl',
  bindings: [
    { name: 'qkv', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'lse', kind: 'storage' },
    { name: 'bounds', kind: 'read-only-storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [...dims],
  overrides: { HS: 64, ...v2Defaults.forward, SEG: 0 },
};

export const flashBackwardDqV2Spec: KernelSpec = {
  name: 'attention_flash_backward_dq',
  version: 'v2',
  description: 'register tiles: R query rows x (BC/TX) keys of S and dP, R rows x (HS/TX) dims of dQ per thread',
  source: flashBackwardDqV2Source,
  file: 'kernels/attention/flash_backward_dq_v2.wgsl',
  bindings: flashBackwardBindings,
  uniforms: [...dims, { name: 'accumulate', type: 'u32' }],
  overrides: { HS: 64, ...v2Defaults.dq, SEG: 0 },
};

export const flashBackwardDkvV2Spec: KernelSpec = {
  name: 'attention_flash_backward_dkv',
  version: 'v2',
  description:
    'register tiles: R key rows x (BR/TX) queries of S and dP, R rows x (HS/TX) dims of dK and dV per thread',
  source: flashBackwardDkvV2Source,
  file: 'kernels/attention/flash_backward_dkv_v2.wgsl',
  bindings: flashBackwardBindings,
  uniforms: [...dims, { name: 'accumulate', type: 'u32' }],
  overrides: { HS: 64, ...v2Defaults.dkv, SEG: 0 },
};

export const flashV2Specs = [flashForwardV2Spec, flashBackwardDqV2Spec, flashBackwardDkvV2Spec];

/** Workgroup memory (bytes) of a v2 kernel. */
export function flashV2Bytes(kernel: V2Kernel, HS: number, t: V2Tiles): number {
  if (kernel === 'forward') return 4 * (t.BR * HS + t.BC * (HS + 1) + t.BC * HS + t.BR * t.BC + t.BR * t.TX);
  if (kernel === 'dq') return 4 * (2 * t.BR * HS + 2 * t.BC * (HS + 1) + t.BR * t.BC);
  return 4 * (2 * t.BC * HS + 2 * t.BR * (HS + 1) + 2 * t.BR * t.BC + 2 * t.BR);
}

/** v2 tiles for a kernel: the given ones, else the defaults with the larger block halved until the device allows. */
export function flashV2Tiles(gpu: Gpu, kernel: V2Kernel, HS: number, given: Partial<V2Tiles> = {}): V2Tiles {
  const d = v2Defaults[kernel];
  const t: V2Tiles = { BR: given.BR ?? d.BR, BC: given.BC ?? d.BC, R: given.R ?? d.R, TX: given.TX ?? d.TX };
  const own = kernel === 'dkv' ? 'BC' : 'BR';
  const streamed = kernel === 'dkv' ? 'BR' : 'BC';
  const mem = gpu.limits.maxComputeWorkgroupStorageSize;
  const inv = gpu.limits.maxComputeInvocationsPerWorkgroup;
  const bad = () => `attention v2 ${kernel}: tiles ${JSON.stringify(t)} with HS=${HS}`;
  while (flashV2Bytes(kernel, HS, t) > mem || (t.TX * t[own]) / t.R > inv) {
    if (given[own] === undefined && t[own] >= t[streamed] && t[own] > t.R) t[own] /= 2;
    else if (given[streamed] === undefined && t[streamed] > 1) t[streamed] /= 2;
    else {
      throw new WgptError(
        `${bad()} need ${flashV2Bytes(kernel, HS, t)} bytes of workgroup memory (limit ${mem}) and ` +
          `${(t.TX * t[own]) / t.R} invocations (limit ${inv})`,
      );
    }
  }
  if (!(t.R >= 1 && t.R <= 4 && t[own] % t.R === 0)) throw new WgptError(`${bad()}: R must be 1..4 and divide ${own}`);
  if (HS > 8 * t.TX || t[streamed] > 4 * t.TX) throw new WgptError(`${bad()}: need HS <= 8·TX and ${streamed} <= 4·TX`);
  return t;
}

/** Records the v2 forward (same outputs as v1). */
export function flashForwardV2(
  gpu: Gpu,
  qkv: GPUBuffer,
  out: GPUBuffer,
  lse: GPUBuffer,
  s: Shape,
  t: V2Tiles,
  bounds?: GPUBuffer,
): void {
  const seg = segmentArgs(gpu, bounds);
  gpu.dispatch(flashForwardV2Spec, {
    buffers: { qkv, out, lse, bounds: seg.bounds },
    uniforms: { B: s.B, T: s.T, NH: s.NH },
    overrides: { HS: s.HS, ...t, SEG: seg.SEG },
    workgroups: [Math.ceil(s.T / t.BR), s.NH, s.B],
    context: shapeContext(s),
  });
}

/** Records the v2 dQ and dK/dV passes into dqkv (D already computed). */
export function flashBackwardV2(gpu: Gpu, a: FlashBackwardBuffers, s: Shape, dq: V2Tiles, dkv: V2Tiles): void {
  const seg = segmentArgs(gpu, a.bounds);
  const buffers = { qkv: a.qkv, dout: a.dout, lse: a.lse, D: a.D, dqkv: a.dqkv, bounds: seg.bounds };
  const uniforms = { B: s.B, T: s.T, NH: s.NH, accumulate: a.accumulate };
  const context = shapeContext(s);
  gpu.dispatch(flashBackwardDqV2Spec, {
    buffers,
    uniforms,
    overrides: { HS: s.HS, ...dq, SEG: seg.SEG },
    workgroups: [Math.ceil(s.T / dq.BR), s.NH, s.B],
    context,
  });
  gpu.dispatch(flashBackwardDkvV2Spec, {
    buffers,
    uniforms,
    overrides: { HS: s.HS, ...dkv, SEG: seg.SEG },
    workgroups: [Math.ceil(s.T / dkv.BC), s.NH, s.B],
    context,
  });
}

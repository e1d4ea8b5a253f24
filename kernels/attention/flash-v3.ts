// Flash attention v3, for CPU (SwiftShader) adapters: the same outputs as v1 and v2 up to rounding, with no
// workgroup memory and no barriers. A subgroup of 4 lanes owns 4 consecutive rows (queries for the forward and dQ,
// keys for dK/dV), one per lane, and streams the other side's rows one at a time, each loaded a quarter per lane and
// shared by subgroup broadcasts; a lane's own rows and accumulators are mat4x4 chunks of 16 dims in registers. The
// default on software adapters with subgroups of 4 for head sizes that are multiples of 4 up to 64.
import type { Gpu, KernelSpec } from '@wgpt/runtime';
import { grid1d, subgroupsOf4 } from '../common.ts';
import flashBackwardDkvV3Source from './flash_backward_dkv_v3.wgsl';
import flashBackwardDqV3Source from './flash_backward_dq_v3.wgsl';
import flashForwardV3Source from './flash_forward_v3.wgsl';
import {
  dims,
  flashBackwardBindings,
  segmentArgs,
  shapeContext,
  type FlashBackwardBuffers,
  type Shape,
} from './shared.ts';

/** Invocations per v3 workgroup: 16 subgroups, each 4 rows. */
const WG = 64;

export const flashForwardV3Spec: KernelSpec = {
  name: 'attention_flash_forward',
  version: 'v3',
  description:
    'for CPU adapters: a query per lane, key/value rows shared by subgroup broadcasts, online softmax in registers',
  source: flashForwardV3Source,
  file: 'kernels/attention/flash_forward_v3.wgsl',
  bindings: [
    { name: 'qkv', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'lse', kind: 'storage' },
    { name: 'bounds', kind: 'read-only-storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [...dims],
  overrides: { HS: 64, WG, SEG: 0 },
};

export const flashBackwardDqV3Spec: KernelSpec = {
  name: 'attention_flash_backward_dq',
  version: 'v3',
  description: 'for CPU adapters: a query per lane, key/value rows shared by subgroup broadcasts, dQ in registers',
  source: flashBackwardDqV3Source,
  file: 'kernels/attention/flash_backward_dq_v3.wgsl',
  bindings: flashBackwardBindings,
  uniforms: [...dims, { name: 'accumulate', type: 'u32' }],
  overrides: { HS: 64, WG, SEG: 0 },
};

export const flashBackwardDkvV3Spec: KernelSpec = {
  name: 'attention_flash_backward_dkv',
  version: 'v3',
  description: 'for CPU adapters: a key per lane, query/dO rows shared by subgroup broadcasts, dK and dV in registers',
  source: flashBackwardDkvV3Source,
  file: 'kernels/attention/flash_backward_dkv_v3.wgsl',
  bindings: flashBackwardBindings,
  uniforms: [...dims, { name: 'accumulate', type: 'u32' }],
  overrides: { HS: 64, WG, SEG: 0 },
};

export const flashV3Specs = [flashForwardV3Spec, flashBackwardDqV3Spec, flashBackwardDkvV3Spec];

/** Can v3 run head size HS on this device? */
export function flashV3Eligible(gpu: Gpu, HS: number): boolean {
  return subgroupsOf4(gpu) && HS % 4 === 0 && HS <= 64;
}

/** One workgroup per 16 blocks of 4 rows: B·NH·ceil(T/4) blocks. */
const grid = (gpu: Gpu, s: Shape) => grid1d(gpu, s.B * s.NH * Math.ceil(s.T / 4), WG / 4);

/** Records the v3 forward (same outputs as v1). */
export function flashForwardV3(
  gpu: Gpu,
  qkv: GPUBuffer,
  out: GPUBuffer,
  lse: GPUBuffer,
  s: Shape,
  bounds?: GPUBuffer,
): void {
  const seg = segmentArgs(gpu, bounds);
  gpu.dispatch(flashForwardV3Spec, {
    buffers: { qkv, out, lse, bounds: seg.bounds },
    uniforms: { B: s.B, T: s.T, NH: s.NH },
    overrides: { HS: s.HS, SEG: seg.SEG },
    workgroups: grid(gpu, s),
    context: shapeContext(s),
  });
}

/** Records the v3 dQ and dK/dV passes into dqkv (D already computed). */
export function flashBackwardV3(gpu: Gpu, a: FlashBackwardBuffers, s: Shape): void {
  const seg = segmentArgs(gpu, a.bounds);
  const buffers = { qkv: a.qkv, dout: a.dout, lse: a.lse, D: a.D, dqkv: a.dqkv, bounds: seg.bounds };
  const uniforms = { B: s.B, T: s.T, NH: s.NH, accumulate: a.accumulate };
  const overrides = { HS: s.HS, SEG: seg.SEG };
  const context = shapeContext(s);
  const workgroups = grid(gpu, s);
  gpu.dispatch(flashBackwardDqV3Spec, { buffers, uniforms, overrides, workgroups, context });
  gpu.dispatch(flashBackwardDkvV3Spec, { buffers, uniforms, overrides, workgroups, context });
}

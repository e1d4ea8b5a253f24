// Flash attention v1 (FlashAttention-2 schedule), one score per thread: a workgroup owns a block of BR queries (BC
// keys in the dK/dV pass) with TPR threads per row, streams the other side's blocks through workgroup memory with
// an online softmax, and skips blocks above the diagonal. The forward saves the logsumexp; the backward recomputes
// P from it. Faster than v2 on SwiftShader (which spills v2's register arrays) and, measured, on an H200: the
// default on hardware adapters (v3 on software ones).
import { WgptError, type Gpu, type KernelSpec } from '@wgpt/runtime';
import flashBackwardDkvSource from './flash_backward_dkv.wgsl';
import flashBackwardDqSource from './flash_backward_dq.wgsl';
import flashForwardSource from './flash_forward.wgsl';
import {
  dims,
  flashBackwardBindings,
  segmentArgs,
  shapeContext,
  type FlashBackwardBuffers,
  type Shape,
} from './shared.ts';

/** v1 tiles, named as the WGSL overrides are. */
export interface FlashTiles {
  /** Queries per block. */
  BR: number;
  /** Keys per block. */
  BC: number;
  /** Threads per row. */
  TPR: number;
}

const defaultTiles: FlashTiles = { BR: 16, BC: 16, TPR: 16 };
/** Output dims a thread can hold in registers (MAXD in the WGSL): HS <= TPR * MAXD. */
export const FLASH_MAXD = 8;

export const flashForwardSpec: KernelSpec = {
  name: 'attention_flash_forward',
  version: 'v1',
  description:
    'BR queries x HS per workgroup (TPR threads per row), BC-key K/V blocks streamed, online softmax, causal ' +
    'blocks skipped',
  source: flashForwardSource,
  file: 'kernels/attention/flash_forward.wgsl',
  bindings: [
    { name: 'qkv', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'lse', kind: 'storage' },
    { name: 'bounds', kind: 'read-only-storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [...dims],
  overrides: { HS: 64, ...defaultTiles, SEG: 0 },
};

export const flashBackwardDqSpec: KernelSpec = {
  name: 'attention_flash_backward_dq',
  version: 'v1',
  description: 'per query block: stream K/V blocks, recompute P from lse, dQ in registers',
  source: flashBackwardDqSource,
  file: 'kernels/attention/flash_backward_dq.wgsl',
  bindings: flashBackwardBindings,
  uniforms: [...dims, { name: 'accumulate', type: 'u32' }],
  overrides: { HS: 64, ...defaultTiles, SEG: 0 },
};

export const flashBackwardDkvSpec: KernelSpec = {
  name: 'attention_flash_backward_dkv',
  version: 'v1',
  description:
    'per key block: stream Q/dO blocks at or below the diagonal, recompute P from lse, dK and dV in registers',
  source: flashBackwardDkvSource,
  file: 'kernels/attention/flash_backward_dkv.wgsl',
  bindings: flashBackwardBindings,
  uniforms: [...dims, { name: 'accumulate', type: 'u32' }],
  overrides: { HS: 64, ...defaultTiles, SEG: 0 },
};

export const flashV1Specs = [flashForwardSpec, flashBackwardDqSpec, flashBackwardDkvSpec];

/** Workgroup memory (bytes) of the largest v1 kernel (the backward ones) for a tiling. */
export function flashWorkgroupBytes(HS: number, t: FlashTiles): number {
  return 4 * (2 * t.BR * HS + 2 * t.BC * HS + 2 * t.BR * t.BC + 2 * t.BR);
}

/**
 * Tiles for head size HS on this device: the given ones, else 16 queries x 16 keys x 16 threads per row, halved
 * (queries first) until the workgroup memory and invocation limits allow.
 */
export function flashTiles(gpu: Gpu, HS: number, given: Partial<FlashTiles> = {}): FlashTiles {
  const t: FlashTiles = {
    BR: given.BR ?? defaultTiles.BR,
    BC: given.BC ?? defaultTiles.BC,
    TPR: given.TPR ?? defaultTiles.TPR,
  };
  const mem = gpu.limits.maxComputeWorkgroupStorageSize;
  const inv = gpu.limits.maxComputeInvocationsPerWorkgroup;
  while (flashWorkgroupBytes(HS, t) > mem || Math.max(t.BR, t.BC) * t.TPR > inv) {
    if (given.BR === undefined && t.BR >= t.BC && t.BR > 1) t.BR /= 2;
    else if (given.BC === undefined && t.BC > 1) t.BC /= 2;
    else {
      throw new WgptError(
        `attention: tiles BR=${t.BR} BC=${t.BC} TPR=${t.TPR} with HS=${HS} need ${flashWorkgroupBytes(HS, t)} bytes ` +
          `of workgroup memory (limit ${mem}) and ${Math.max(t.BR, t.BC) * t.TPR} invocations (limit ${inv})`,
      );
    }
  }
  if (HS > t.TPR * FLASH_MAXD) {
    throw new WgptError(`attention: head size ${HS} exceeds TPR·MAXD = ${t.TPR}·${FLASH_MAXD}; raise TPR`);
  }
  return t;
}

/** Records the v1 forward: out (B, T, C) and lse (B, NH, T) from qkv (B, T, 3C), within segments given bounds. */
export function flashForwardV1(
  gpu: Gpu,
  qkv: GPUBuffer,
  out: GPUBuffer,
  lse: GPUBuffer,
  s: Shape,
  t: FlashTiles,
  bounds?: GPUBuffer,
): void {
  const seg = segmentArgs(gpu, bounds);
  gpu.dispatch(flashForwardSpec, {
    buffers: { qkv, out, lse, bounds: seg.bounds },
    uniforms: { B: s.B, T: s.T, NH: s.NH },
    overrides: { HS: s.HS, ...t, SEG: seg.SEG },
    workgroups: [Math.ceil(s.T / t.BR), s.NH, s.B],
    context: shapeContext(s),
  });
}

/** Records the v1 dQ and dK/dV passes into dqkv (D already computed). */
export function flashBackwardV1(gpu: Gpu, a: FlashBackwardBuffers, s: Shape, t: FlashTiles): void {
  const seg = segmentArgs(gpu, a.bounds);
  const buffers = { qkv: a.qkv, dout: a.dout, lse: a.lse, D: a.D, dqkv: a.dqkv, bounds: seg.bounds };
  const uniforms = { B: s.B, T: s.T, NH: s.NH, accumulate: a.accumulate };
  const overrides = { HS: s.HS, ...t, SEG: seg.SEG };
  const context = shapeContext(s);
  gpu.dispatch(flashBackwardDqSpec, {
    buffers,
    uniforms,
    overrides,
    workgroups: [Math.ceil(s.T / t.BR), s.NH, s.B],
    context,
  });
  gpu.dispatch(flashBackwardDkvSpec, {
    buffers,
    uniforms,
    overrides,
    workgroups: [Math.ceil(s.T / t.BC), s.NH, s.B],
    context,
  });
}

// Causal multi-head attention as GPT-2 uses it (layout in shared.ts). Two implementations with the same semantics:
//   attention       flash attention (FlashAttention-2 schedule): online softmax over K/V blocks streamed through
//                   workgroup memory, causal blocks above the diagonal skipped, logsumexp saved; the backward
//                   recomputes P and produces dQ (one pass per query block) and dK, dV (one pass per key block)
//                   without any T×T buffer and without atomics. Extra memory: (B, NH, T) for lse and for D.
//                   Three kernel sets, chosen by a FlashPlan: v1 (flash-v1.ts, one score per thread), v2
//                   (flash-v2.ts, register tiles) and v3 (flash-v3.ts, a row per lane, subgroup broadcasts, for
//                   CPU adapters).
//   attentionNaive  naive.ts: the (B, NH, T, T) probabilities materialised; the reference and memory baseline.
// Both take optional segment ids for packed rows (shared.ts): each segment attends only to itself.
import { defineOp, empty, WgptError, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { flashBackwardV1, flashForwardV1, flashTiles, flashV1Specs, type FlashTiles } from './flash-v1.ts';
import { flashBackwardV2, flashForwardV2, flashV2Specs, flashV2Tiles, type V2Tiles } from './flash-v2.ts';
import { flashBackwardV3, flashForwardV3, flashV3Eligible, flashV3Specs } from './flash-v3.ts';
import { naiveSpecs } from './naive.ts';
import {
  expectSegments,
  flashBackwardDot,
  flashBackwardDotSpec,
  segmentBounds,
  segmentBoundsSpec,
  shapeOf,
  type FlashBackwardBuffers,
  type Shape,
} from './shared.ts';

export const attentionSpecs: KernelSpec[] = [
  ...flashV1Specs,
  ...flashV2Specs,
  ...flashV3Specs,
  flashBackwardDotSpec,
  segmentBoundsSpec,
  ...naiveSpecs,
];

export interface AttentionOptions {
  /** Number of heads; C = 3C/3 must be a multiple of it. */
  NH: number;
  /**
   * Packed rows: i32 segment ids, B·T of them (shape (B, T) or (B·T)), row-major like qkv's tokens. Query t of row b
   * attends key j iff j <= t and segments[b, j] == segments[b, t]. Each id must be one contiguous run of its row
   * (checkSegments); padding is a run of its own (e.g. -1), whose tokens attend among themselves. Absent: causal
   * attention over the whole row, with the same kernels' bits and speed as ever.
   */
  segments?: Tensor;
  /**
   * Flash kernels, forward and backward alike: v1 (one score per thread, TPR threads per row), v2 (register
   * tiles: R rows x several keys per thread, each probability computed once) or v3 (a row per lane of a subgroup of
   * 4, the other side's rows shared by subgroup broadcasts, no workgroup memory; HS a multiple of 4 up to 64).
   * Default: on software adapters v3 where it can run (measured many times faster on SwiftShader, where barriers and
   * loads are what costs), else v1 (SwiftShader spills v2's register arrays); v1 on hardware ones too: on an H200
   * at B=8 NH=12 HS=64 T=1024..4096, v1 took 0.45x the time of v2 forward and backward (bench/RESULTS.md).
   */
  version?: 'v1' | 'v2' | 'v3';
  /** v1 tile sizes; from the device when absent. */
  tiles?: Partial<FlashTiles>;
  /** v2 tile sizes per kernel; from the device when absent. */
  v2Tiles?: { forward?: Partial<V2Tiles>; dq?: Partial<V2Tiles>; dkv?: Partial<V2Tiles> };
}

/** Which flash kernels run, with their tiles. */
export type FlashPlan =
  | { version: 'v1'; tiles: FlashTiles }
  | { version: 'v2'; forward: V2Tiles; dq: V2Tiles; dkv: V2Tiles }
  | { version: 'v3' };

export function flashPlan(gpu: Gpu, HS: number, opts: Omit<AttentionOptions, 'NH'> = {}): FlashPlan {
  const version = opts.version ?? (gpu.software && flashV3Eligible(gpu, HS) ? 'v3' : 'v1');
  if (version === 'v3') {
    if (!flashV3Eligible(gpu, HS))
      throw new WgptError(
        `attention v3: head size ${HS} must be a multiple of 4 up to 64, on a device with subgroups of 4 ` +
          `(${gpu.describe()})`,
      );
    return { version: 'v3' };
  }
  if (version === 'v1') return { version: 'v1', tiles: flashTiles(gpu, HS, opts.tiles) };
  const t = opts.v2Tiles ?? {};
  return {
    version: 'v2',
    forward: flashV2Tiles(gpu, 'forward', HS, t.forward),
    dq: flashV2Tiles(gpu, 'dq', HS, t.dq),
    dkv: flashV2Tiles(gpu, 'dkv', HS, t.dkv),
  };
}

export function describePlan(p: FlashPlan): string {
  if (p.version === 'v3') return 'v3';
  if (p.version === 'v1') return `v1 BR=${p.tiles.BR} BC=${p.tiles.BC} TPR=${p.tiles.TPR}`;
  const f = (t: V2Tiles) => `${t.BR}x${t.BC}/R${t.R}/TX${t.TX}`;
  return `v2 fwd ${f(p.forward)}, dq ${f(p.dq)}, dkv ${f(p.dkv)}`;
}

/**
 * Records the flash forward of a plan: out (B, T, C) and lse (B, NH, T) from qkv (B, T, 3C); within segments when
 * given their bounds (segmentBounds).
 */
export function flashForward(
  gpu: Gpu,
  qkv: GPUBuffer,
  out: GPUBuffer,
  lse: GPUBuffer,
  s: Shape,
  plan: FlashPlan,
  bounds?: GPUBuffer,
): void {
  if (plan.version === 'v1') flashForwardV1(gpu, qkv, out, lse, s, plan.tiles, bounds);
  else if (plan.version === 'v2') flashForwardV2(gpu, qkv, out, lse, s, plan.forward, bounds);
  else flashForwardV3(gpu, qkv, out, lse, s, bounds);
}

/**
 * Records the flash backward of a plan into dqkv (B, T, 3C); D is scratch of (B, NH, T) floats; a.bounds as the
 * forward's.
 */
export function flashBackward(gpu: Gpu, a: FlashBackwardBuffers, s: Shape, plan: FlashPlan): void {
  flashBackwardDot(gpu, a, s);
  if (plan.version === 'v1') flashBackwardV1(gpu, a, s, plan.tiles);
  else if (plan.version === 'v2') flashBackwardV2(gpu, a, s, plan.dq, plan.dkv);
  else flashBackwardV3(gpu, a, s);
}

/**
 * Causal multi-head flash attention: out (B, T, C) from qkv (B, T, 3C), within segments when given. With segments
 * the forward first computes their bounds (one small dispatch) and keeps them, with lse, for the backward.
 */
export const attention = defineOp({
  name: 'attention',
  forward(qkv: Tensor, opts: AttentionOptions) {
    const s = shapeOf('attention', qkv, opts.NH);
    const gpu = qkv.gpu;
    const plan = flashPlan(gpu, s.HS, opts);
    if (opts.segments) expectSegments('attention', opts.segments, qkv, s);
    const bounds = opts.segments ? segmentBounds(gpu, opts.segments.buffer, s.B, s.T) : undefined;
    const out = empty(gpu, [s.B, s.T, s.C]);
    const lse = empty(gpu, [s.B, s.NH, s.T], 'f32', { name: 'attention lse' });
    flashForward(gpu, qkv.buffer, out.buffer, lse.buffer, s, plan, bounds?.buffer);
    return { out, saved: { lse, plan, s, bounds } };
  },
  backward(ctx, g, { args: [qkv], saved: { s, plan, lse, bounds }, out }) {
    const d = ctx.grad(qkv);
    if (!d) return;
    const gpu = qkv.gpu;
    const D = empty(gpu, [s.B, s.NH, s.T], 'f32', { name: 'attention D' });
    const buffers = {
      qkv: qkv.buffer,
      out: out.buffer,
      dout: g.buffer,
      lse: lse.buffer,
      D: D.buffer,
      bounds: bounds?.buffer,
    };
    flashBackward(gpu, { ...buffers, dqkv: d.tensor.buffer, accumulate: d.accumulate }, s, plan);
    D.dispose(); // back to the pool; the dispatches recorded above still see it (queue order)
  },
});

export { attentionNaive, naiveBackward, naiveForward } from './naive.ts';
export { FLASH_MAXD, flashTiles, flashWorkgroupBytes, type FlashTiles } from './flash-v1.ts';
export { flashV2Bytes, flashV2Tiles, type V2Tiles } from './flash-v2.ts';
export { flashV3Eligible } from './flash-v3.ts';
export { checkSegments, segmentBounds, shapeOf, type Shape } from './shared.ts';

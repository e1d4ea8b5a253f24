// What the attention implementations share: the packed layout and its shape checks, and the row-dot kernel both
// flash backwards start with.
//
// Layout, as GPT-2 uses it: qkv (B, T, 3C) packed from one matmul (q at channels [0, C), k at [C, 2C), v at
// [2C, 3C); head h at h*HS within each), output (B, T, C) with head h at channels [h*HS, (h+1)*HS), causal,
// scale 1/sqrt(HS).
//
// Packed rows (supervised fine-tuning packs several conversations into one row): an optional segments tensor, i32
// of B·T, says which conversation each token belongs to; query i then attends key j iff j <= i and seg[j] == seg[i]
// within its row (FlashAttention's variable-length mode, on fixed-length rows). Segments must be contiguous runs
// of a row (checkSegments; packages/chat's row packing writes them so; padding is one more run, e.g. of -1). The
// flash kernels work from per-token run bounds (segmentBounds, a small kernel): a query sees the keys from the
// start of its run, a key is seen by the queries before the end of its run. As the bounds never decrease along a
// row, a block of queries needs keys only from the start of its first query's run, and a block of keys (dK/dV)
// needs queries only up to the end of its last key's run: the blocks outside are skipped. A run that repeats an
// id after another id is a separate segment for the flash kernels (the naive ones compare ids): hence the
// requirement. The diagonal is always visible, so no row is empty and nothing is NaN, padding included. Without
// segments the kernels are specialised by the override SEG = false: the mask and bounds code is compiled out.
import { empty, WgptError, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { expectDtype, expectSameGpu, expectShape, grid1d, placeholder } from '../common.ts';
import flashBackwardDotSource from './flash_backward_dot.wgsl';
import segmentBoundsSource from './segment_bounds.wgsl';

/** The uniforms every attention kernel starts with. */
export const dims = [
  { name: 'B', type: 'u32' },
  { name: 'T', type: 'u32' },
  { name: 'NH', type: 'u32' },
] as const;

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

/** The shape for dispatch error messages. */
export const shapeContext = (s: Shape): string => `B=${s.B} T=${s.T} NH=${s.NH} HS=${s.HS}`;

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

/** The buffers of a flash backward: inputs, saved lse, D (scratch of (B, NH, T) floats) and the output dqkv. */
export interface FlashBackwardBuffers {
  qkv: GPUBuffer;
  out: GPUBuffer;
  dout: GPUBuffer;
  lse: GPUBuffer;
  D: GPUBuffer;
  dqkv: GPUBuffer;
  accumulate: 0 | 1;
  /** Segment bounds (B, T, 2) u32 from segmentBounds; absent: plain causal attention. */
  bounds?: GPUBuffer;
}

/** The bindings of every version's dQ and dK/dV kernels. */
export const flashBackwardBindings = [
  { name: 'qkv', kind: 'read-only-storage' },
  { name: 'dout', kind: 'read-only-storage' },
  { name: 'lse', kind: 'read-only-storage' },
  { name: 'D', kind: 'read-only-storage' },
  { name: 'bounds', kind: 'read-only-storage' },
  { name: 'dqkv', kind: 'storage' },
  { name: 'params', kind: 'uniform' },
] as const;

/**
 * The bounds binding and the SEG override of a flash dispatch: the bounds, or (no segments) a placeholder that the
 * specialised pipeline never reads.
 */
export function segmentArgs(gpu: Gpu, bounds: GPUBuffer | undefined): { bounds: GPUBuffer; SEG: number } {
  return bounds ? { bounds, SEG: 1 } : { bounds: placeholder(gpu), SEG: 0 };
}

export const segmentBoundsSpec: KernelSpec = {
  name: 'attention_segment_bounds',
  version: 'v1',
  description: 'per-token [start, end) of its run of equal segment ids; a workgroup per row, chunked scans',
  source: segmentBoundsSource,
  file: 'kernels/attention/segment_bounds.wgsl',
  bindings: [
    { name: 'segments', kind: 'read-only-storage' },
    { name: 'bounds', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'B', type: 'u32' },
    { name: 'T', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

/** Throws unless `segments` can label the tokens of a (B, T) attention: i32, B·T elements, on qkv's device. */
export function expectSegments(op: string, segments: Tensor, qkv: Tensor, s: Shape): void {
  expectSameGpu(op, qkv, segments);
  expectDtype(op, segments, 'i32');
  if (segments.size !== s.B * s.T)
    throw new WgptError(`${op}: segments ${segments} must have B·T = ${s.B}·${s.T} = ${s.B * s.T} elements`);
}

/**
 * Records the per-token run bounds of segments (B·T i32) into a new (B, T, 2) u32 tensor: [start, end) of the
 * run holding each token, as indices within its row.
 */
export function segmentBounds(gpu: Gpu, segments: GPUBuffer, B: number, T: number): Tensor {
  const bounds = empty(gpu, [B, T, 2], 'u32', { name: 'attention segment bounds' });
  gpu.dispatch(segmentBoundsSpec, {
    buffers: { segments, bounds: bounds.buffer },
    uniforms: { B, T },
    workgroups: grid1d(gpu, B, 1),
    context: `B=${B} T=${T}`,
  });
  return bounds;
}

/**
 * Checks packed rows' segment ids on the CPU before they go to the GPU: each id of a row must form one contiguous
 * run (the flash kernels' requirement). Throws a WgptError naming the row and the position where an id reappears.
 */
export function checkSegments(segments: ArrayLike<number>, B: number, T: number, what = 'segments'): void {
  if (segments.length !== B * T)
    throw new WgptError(`${what}: ${segments.length} ids for B·T = ${B}·${T} tokens; give one id per token`);
  for (let b = 0; b < B; b++) {
    const seen = new Set<number>();
    for (let t = 0; t < T; t++) {
      const id = segments[b * T + t]!;
      if (!Number.isInteger(id) || id < -(2 ** 31) || id >= 2 ** 31)
        throw new WgptError(`${what}: row ${b} position ${t} holds ${id}, not an i32 segment id`);
      if (t > 0 && id === segments[b * T + t - 1]) continue;
      if (seen.has(id))
        throw new WgptError(
          `${what}: row ${b} position ${t}: segment ${id} starts again after another segment; each ` +
            'segment must be one contiguous run of its row',
        );
      seen.add(id);
    }
  }
}

/** Records D = rowsum(dO ∘ O) per (b, h, t): the first step of either flash backward. */
export function flashBackwardDot(gpu: Gpu, a: FlashBackwardBuffers, s: Shape): void {
  gpu.dispatch(flashBackwardDotSpec, {
    buffers: { dout: a.dout, out: a.out, D: a.D },
    uniforms: { B: s.B, T: s.T, NH: s.NH, HS: s.HS },
    workgroups: grid1d(gpu, s.B * s.NH * s.T, 64),
    context: shapeContext(s),
  });
}

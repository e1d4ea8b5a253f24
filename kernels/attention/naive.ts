// Naive attention: the probabilities (B, NH, T, T) materialised and kept for the backward, plus a (B, NH, T, T)
// score gradient in the backward. The straightforward reference for the flash kernels and their memory baseline.
// With segments (shared.ts) the kernels compare segment ids pair by pair, the mask's definition.
import { defineOp, empty, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { grid1d, placeholder } from '../common.ts';
import naiveBackwardAttSource from './naive_backward_att.wgsl';
import naiveBackwardQkvSource from './naive_backward_qkv.wgsl';
import naiveForwardAttSource from './naive_forward_att.wgsl';
import naiveForwardOutSource from './naive_forward_out.wgsl';
import { dims, expectSegments, shapeContext, shapeOf, type Shape } from './shared.ts';

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
    { name: 'segments', kind: 'read-only-storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: naiveDims,
  overrides: { WG: 64, SEG: 0 },
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
    { name: 'segments', kind: 'read-only-storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: naiveDims,
  overrides: { WG: 64, SEG: 0 },
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
    { name: 'segments', kind: 'read-only-storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: naiveDims,
  overrides: { WG: 64, SEG: 0 },
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
    { name: 'segments', kind: 'read-only-storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [...naiveDims, { name: 'accumulate', type: 'u32' }],
  overrides: { WG: 64, SEG: 0 },
};

export const naiveSpecs = [naiveForwardAttSpec, naiveForwardOutSpec, naiveBackwardAttSpec, naiveBackwardQkvSpec];

/** The segments binding and the SEG override: the (B·T) i32 ids, or a placeholder the kernels never read. */
const segArgs = (gpu: Gpu, segments?: GPUBuffer) =>
  segments ? { segments, SEG: 1 } : { segments: placeholder(gpu), SEG: 0 };

/** Records the naive forward: att (B, NH, T, T) and out (B, T, C), within segments when given. */
export function naiveForward(
  gpu: Gpu,
  qkv: GPUBuffer,
  att: GPUBuffer,
  out: GPUBuffer,
  s: Shape,
  segments?: GPUBuffer,
): void {
  const context = shapeContext(s);
  const uniforms = { B: s.B, T: s.T, NH: s.NH, HS: s.HS };
  const rows = grid1d(gpu, s.B * s.NH * s.T, 64);
  const seg = segArgs(gpu, segments);
  const overrides = { SEG: seg.SEG };
  gpu.dispatch(naiveForwardAttSpec, {
    buffers: { qkv, att, segments: seg.segments },
    uniforms,
    overrides,
    workgroups: rows,
    context,
  });
  gpu.dispatch(naiveForwardOutSpec, {
    buffers: { qkv, att, out, segments: seg.segments },
    uniforms,
    overrides,
    workgroups: grid1d(gpu, s.B * s.T * s.C, 64),
    context,
  });
}

export interface NaiveBackwardBuffers {
  qkv: GPUBuffer;
  att: GPUBuffer;
  dout: GPUBuffer;
  /** Scratch of (B, NH, T, T) floats. */
  dpre: GPUBuffer;
  dqkv: GPUBuffer;
  accumulate: 0 | 1;
  /** (B·T) i32 segment ids; absent: plain causal attention. */
  segments?: GPUBuffer;
}

/** Records the naive backward into dqkv. */
export function naiveBackward(gpu: Gpu, a: NaiveBackwardBuffers, s: Shape): void {
  const context = shapeContext(s);
  const uniforms = { B: s.B, T: s.T, NH: s.NH, HS: s.HS };
  const seg = segArgs(gpu, a.segments);
  const overrides = { SEG: seg.SEG };
  gpu.dispatch(naiveBackwardAttSpec, {
    buffers: { qkv: a.qkv, att: a.att, dout: a.dout, dpre: a.dpre, segments: seg.segments },
    uniforms,
    overrides,
    workgroups: grid1d(gpu, s.B * s.NH * s.T, 64),
    context,
  });
  gpu.dispatch(naiveBackwardQkvSpec, {
    buffers: { qkv: a.qkv, att: a.att, dpre: a.dpre, dout: a.dout, dqkv: a.dqkv, segments: seg.segments },
    uniforms: { ...uniforms, accumulate: a.accumulate },
    overrides,
    workgroups: grid1d(gpu, s.B * s.T * 3 * s.C, 64),
    context,
  });
}

/**
 * The same attention with the (B, NH, T, T) probabilities materialised (and kept for the backward). segments:
 * (B·T) i32, as for attention().
 */
export const attentionNaive = defineOp({
  name: 'attention_naive',
  forward(qkv: Tensor, opts: { NH: number; segments?: Tensor }) {
    const s = shapeOf('attention_naive', qkv, opts.NH);
    if (opts.segments) expectSegments('attention_naive', opts.segments, qkv, s);
    const gpu = qkv.gpu;
    const att = empty(gpu, [s.B, s.NH, s.T, s.T], 'f32', { name: 'attention probabilities' });
    const out = empty(gpu, [s.B, s.T, s.C]);
    naiveForward(gpu, qkv.buffer, att.buffer, out.buffer, s, opts.segments?.buffer);
    return { out, saved: { att, s } };
  },
  backward(ctx, g, { args: [qkv, opts], saved: { s, att } }) {
    const d = ctx.grad(qkv);
    if (!d) return;
    const gpu = qkv.gpu;
    const dpre = empty(gpu, [s.B, s.NH, s.T, s.T], 'f32', { name: 'attention score gradient' });
    const dqkv = d.tensor.buffer;
    naiveBackward(
      gpu,
      {
        qkv: qkv.buffer,
        att: att.buffer,
        dout: g.buffer,
        dpre: dpre.buffer,
        dqkv,
        accumulate: d.accumulate,
        segments: opts.segments?.buffer,
      },
      s,
    );
    dpre.dispose(); // back to the pool; the dispatches recorded above still see it (queue order)
  },
});

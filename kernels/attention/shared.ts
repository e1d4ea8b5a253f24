// What the attention implementations share: the packed layout and its shape checks, and the row-dot kernel both
// flash backwards start with.
//
// Layout, as GPT-2 uses it: qkv (B, T, 3C) packed from one matmul (q at channels [0, C), k at [C, 2C), v at
// [2C, 3C); head h at h*HS within each), output (B, T, C) with head h at channels [h*HS, (h+1)*HS), causal,
// scale 1/sqrt(HS).
import { WgptError, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { expectShape, grid1d } from '../common.ts';
import flashBackwardDotSource from './flash_backward_dot.wgsl';

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
}

/** The bindings of both versions' dQ and dK/dV kernels. */
export const flashBackwardBindings = [
  { name: 'qkv', kind: 'read-only-storage' },
  { name: 'dout', kind: 'read-only-storage' },
  { name: 'lse', kind: 'read-only-storage' },
  { name: 'D', kind: 'read-only-storage' },
  { name: 'dqkv', kind: 'storage' },
  { name: 'params', kind: 'uniform' },
] as const;

/** Records D = rowsum(dO ∘ O) per (b, h, t): the first step of either flash backward. */
export function flashBackwardDot(gpu: Gpu, a: FlashBackwardBuffers, s: Shape): void {
  gpu.dispatch(flashBackwardDotSpec, {
    buffers: { dout: a.dout, out: a.out, D: a.D },
    uniforms: { B: s.B, T: s.T, NH: s.NH, HS: s.HS },
    workgroups: grid1d(gpu, s.B * s.NH * s.T, 64),
    context: shapeContext(s),
  });
}

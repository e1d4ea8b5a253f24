// matmul family: the strided tiled kernel and the ops built on it (matmul = A·B, linear = x·Wᵀ + b).
import { defineOp, empty, WgptError, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { expectSameGpu, expectShape, placeholder } from '../common.ts';
import { sumRowsInto } from '../reduce/reduce.ts';
import source from './matmul.wgsl';

export const matmulSpec: KernelSpec = {
  name: 'matmul',
  version: 'v1',
  description: '16x16 workgroup tiles, one output per thread, strides for every layout, optional bias, accumulate',
  source,
  file: 'kernels/matmul/matmul.wgsl',
  bindings: [
    { name: 'a', kind: 'read-only-storage' },
    { name: 'b', kind: 'read-only-storage' },
    { name: 'bias', kind: 'read-only-storage' },
    { name: 'c', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'M', type: 'u32' },
    { name: 'N', type: 'u32' },
    { name: 'K', type: 'u32' },
    { name: 'sAm', type: 'u32' },
    { name: 'sAk', type: 'u32' },
    { name: 'sBk', type: 'u32' },
    { name: 'sBn', type: 'u32' },
    { name: 'accumulate', type: 'u32' },
    { name: 'has_bias', type: 'u32' },
    { name: 'alpha', type: 'f32' },
  ],
};

export interface GemmArgs {
  M: number;
  N: number;
  K: number;
  a: GPUBuffer;
  /** Strides of op(A): element (m, k) at a[m*sAm + k*sAk]. */
  sAm: number;
  sAk: number;
  b: GPUBuffer;
  /** Strides of op(B): element (k, n) at b[k*sBk + n*sBn]. */
  sBk: number;
  sBn: number;
  c: GPUBuffer;
  bias?: GPUBuffer;
  accumulate?: 0 | 1;
  alpha?: number;
}

/** Records C (+)= alpha·op(A)·op(B) (+ bias) into the pending encoder. */
export function gemm(gpu: Gpu, g: GemmArgs): void {
  gpu.dispatch(matmulSpec, {
    buffers: { a: g.a, b: g.b, c: g.c, bias: g.bias ?? placeholder(gpu) },
    uniforms: { M: g.M, N: g.N, K: g.K, sAm: g.sAm, sAk: g.sAk, sBk: g.sBk, sBn: g.sBn, accumulate: g.accumulate ?? 0, has_bias: g.bias ? 1 : 0, alpha: g.alpha ?? 1 },
    workgroups: [Math.ceil(g.N / 16), Math.ceil(g.M / 16)],
    context: `M=${g.M} N=${g.N} K=${g.K}`,
  });
}

/** out (M, N) = a (M, K) · b (K, N). */
export const matmul = defineOp({
  name: 'matmul',
  forward(a: Tensor, b: Tensor) {
    expectSameGpu('matmul', a, b);
    expectShape('matmul', a, 2);
    const [M, K] = a.shape as [number, number];
    expectShape('matmul', b, 2, [K]);
    const N = b.shape[1]!;
    const out = empty(a.gpu, [M, N]);
    gemm(a.gpu, { M, N, K, a: a.buffer, sAm: K, sAk: 1, b: b.buffer, sBk: N, sBn: 1, c: out.buffer });
    return { out, saved: null };
  },
  backward(ctx, g, _saved, out) {
    const [a, b] = out.node!.inputs as [Tensor, Tensor];
    const [M, K] = a.shape as [number, number];
    const N = b.shape[1]!;
    const da = ctx.grad(a);
    // dA (M, K) = g (M, N) · Bᵀ (N, K)
    if (da) gemm(a.gpu, { M, N: K, K: N, a: g.buffer, sAm: N, sAk: 1, b: b.buffer, sBk: 1, sBn: N, c: da.tensor.buffer, accumulate: da.accumulate });
    const db = ctx.grad(b);
    // dB (K, N) = Aᵀ (K, M) · g (M, N)
    if (db) gemm(a.gpu, { M: K, N, K: M, a: a.buffer, sAm: 1, sAk: K, b: g.buffer, sBk: N, sBn: 1, c: db.tensor.buffer, accumulate: db.accumulate });
  },
});

/** out (M, OC) = x (M, C) · Wᵀ + bias, with W of shape (OC, C) as llm.c and PyTorch store it. */
export const linear = defineOp({
  name: 'linear',
  forward(x: Tensor, w: Tensor, bias?: Tensor) {
    expectSameGpu('linear', x, w, ...(bias ? [bias] : []));
    expectShape('linear', x, 2);
    const [M, C] = x.shape as [number, number];
    expectShape('linear', w, 2, [undefined, C]);
    const OC = w.shape[0]!;
    if (bias) expectShape('linear', bias, 1, [OC]);
    const out = empty(x.gpu, [M, OC]);
    gemm(x.gpu, { M, N: OC, K: C, a: x.buffer, sAm: C, sAk: 1, b: w.buffer, sBk: 1, sBn: C, c: out.buffer, bias: bias?.buffer });
    return { out, saved: null };
  },
  backward(ctx, g, _saved, out) {
    const [x, w, bias] = out.node!.inputs as [Tensor, Tensor, Tensor | undefined];
    const [M, C] = x.shape as [number, number];
    const OC = w.shape[0]!;
    const gpu = x.gpu;
    const dx = ctx.grad(x);
    // dx (M, C) = g (M, OC) · W (OC, C)
    if (dx) gemm(gpu, { M, N: C, K: OC, a: g.buffer, sAm: OC, sAk: 1, b: w.buffer, sBk: C, sBn: 1, c: dx.tensor.buffer, accumulate: dx.accumulate });
    const dw = ctx.grad(w);
    // dW (OC, C) = gᵀ (OC, M) · x (M, C)
    if (dw) gemm(gpu, { M: OC, N: C, K: M, a: g.buffer, sAm: 1, sAk: OC, b: x.buffer, sBk: C, sBn: 1, c: dw.tensor.buffer, accumulate: dw.accumulate });
    const db = bias ? ctx.grad(bias) : null;
    if (db) sumRowsInto(gpu, g.buffer, M, OC, db.tensor.buffer, db.accumulate);
  },
});


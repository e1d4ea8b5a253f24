// matmul family: three kernel versions and the ops built on them (matmul = A·B, linear = x·Wᵀ + b).
//   v1 matmul.wgsl        16x16 tiles, one output per thread, arbitrary strides: the simple reference version.
//   v2 matmul_tiled.wgsl  BM×BN workgroup tiles, 4x4 register tiles per thread, layouts as overrides, fused
//                         bias / bias+GELU epilogue: any shape.
//   v3 matmul_vec4.wgsl   v2 with vec4 global loads, vec4 workgroup reads and vec4 accumulators, for operands whose
//                         contiguous dimension is a multiple of 4 (every GPT-2 shape).
//   v4 matmul_subgroup.wgsl  for SwiftShader: no workgroup memory, loads shared by subgroup broadcasts, 8 x 16
//                         tiles per subgroup of 4; bit-identical to v3. Needs subgroups of 4 and K, N multiples of 4.
// gemm() picks v4 on software adapters with subgroups of 4 where the shapes allow, else v3 where they allow, else v2.
import { defineOp, empty, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { expectSameGpu, expectShape, grid1d, placeholder, subgroupsOf4 } from '../common.ts';
import { geluBackwardInto } from '../elementwise/elementwise.ts';
import { sumRowsInto } from '../reduce/reduce.ts';
import source from './matmul.wgsl';
import tiledSource from './matmul_tiled.wgsl';
import subgroupSource from './matmul_subgroup.wgsl';
import vec4Source from './matmul_vec4.wgsl';

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

export const matmulTiledSpec: KernelSpec = {
  name: 'matmul',
  version: 'v2',
  description:
    'BM×BN workgroup tiles through workgroup memory, 4x4 outputs per thread in registers, layouts as overrides, ' +
    'bias/GELU epilogue',
  source: tiledSource,
  file: 'kernels/matmul/matmul_tiled.wgsl',
  bindings: [
    { name: 'a', kind: 'read-only-storage' },
    { name: 'b', kind: 'read-only-storage' },
    { name: 'bias', kind: 'read-only-storage' },
    { name: 'c', kind: 'storage' },
    { name: 'pre', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'M', type: 'u32' },
    { name: 'N', type: 'u32' },
    { name: 'K', type: 'u32' },
    { name: 'accumulate', type: 'u32' },
    { name: 'epilogue', type: 'u32' },
    { name: 'store_pre', type: 'u32' },
    { name: 'alpha', type: 'f32' },
  ],
  // Booleans are passed as 0/1 (WebGPU override constants are numbers).
  overrides: { BM: 64, BN: 64, BK: 16, TRANS_A: 0, TRANS_B: 0, WG: 256 },
};

export const matmulVec4Spec: KernelSpec = {
  ...matmulTiledSpec,
  version: 'v3',
  description:
    'v2 tiling with vec4 global loads, vec4 workgroup reads and vec4 accumulator rows; contiguous dims multiple of 4',
  source: vec4Source,
  file: 'kernels/matmul/matmul_vec4.wgsl',
};

export const matmulSubgroupSpec: KernelSpec = {
  ...matmulTiledSpec,
  version: 'v4',
  description:
    'for CPU adapters: 8x16 tiles per subgroup of 4, loads shared by subgroup broadcasts, mat4x4 accumulators, no ' +
    'workgroup memory, epilogue switches as overrides; bit-identical to v3',
  source: subgroupSource,
  file: 'kernels/matmul/matmul_subgroup.wgsl',
  uniforms: [
    { name: 'M', type: 'u32' },
    { name: 'N', type: 'u32' },
    { name: 'K', type: 'u32' },
    { name: 'alpha', type: 'f32' },
  ],
  overrides: { TRANS_A: 0, TRANS_B: 0, WG: 64, ACCUMULATE: 0, EPILOGUE: 0, STORE_PRE: 0 },
};

/** Invocations per v4 workgroup (16 subgroups, 16 tiles of 8 x 16). */
const V4_WG = 64;

/**
 * Can v4 run these operands? v3's conditions, K a multiple of 4 (it steps k by 4 without a tail) and N one too (it
 * reads the bias and writes C as vec4s).
 */
export function subgroupEligible(g: { M: number; N: number; K: number; transA?: boolean; transB?: boolean }): boolean {
  return vec4Eligible(g, { BM: 4, BN: 4, BK: 4 }) && g.K % 4 === 0 && g.N % 4 === 0;
}

/** The version gemm() runs by default: v4 on software adapters with subgroups of 4, else v3, else v2. */
export function gemmVersion(
  gpu: Gpu,
  g: { M: number; N: number; K: number; transA?: boolean; transB?: boolean },
  t: TileConfig = tileConfig(gpu),
): 'v2' | 'v3' | 'v4' {
  if (gpu.software && subgroupsOf4(gpu) && subgroupEligible(g)) return 'v4';
  return vec4Eligible(g, t) ? 'v3' : 'v2';
}

/** Can v3 run these operands? Each one's contiguous dimension must be a multiple of 4, and so must the tiles. */
export function vec4Eligible(
  g: { M: number; N: number; K: number; transA?: boolean; transB?: boolean },
  t: TileConfig,
): boolean {
  const aContig = g.transA ? g.M : g.K;
  const bContig = g.transB ? g.K : g.N;
  return aContig % 4 === 0 && bContig % 4 === 0 && t.BM % 4 === 0 && t.BN % 4 === 0 && t.BK % 4 === 0;
}

export interface TileConfig {
  BM: number;
  BN: number;
  BK: number;
}

/** Tile shape per adapter: within its invocation and workgroup-memory limits (threads = BM·BN/16). */
export function tileConfig(gpu: Gpu): TileConfig {
  const maxThreads = gpu.limits.maxComputeInvocationsPerWorkgroup;
  const t: TileConfig = { BM: 64, BN: 64, BK: 16 };
  while ((t.BM * t.BN) / 16 > maxThreads) t.BM /= 2;
  return t;
}

export interface StridedGemmArgs {
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

/** v1: records C (+)= alpha·op(A)·op(B) (+ bias) with arbitrary strides. */
export function gemmStrided(gpu: Gpu, g: StridedGemmArgs): void {
  gpu.dispatch(matmulSpec, {
    buffers: { a: g.a, b: g.b, c: g.c, bias: g.bias ?? placeholder(gpu) },
    uniforms: {
      M: g.M,
      N: g.N,
      K: g.K,
      sAm: g.sAm,
      sAk: g.sAk,
      sBk: g.sBk,
      sBn: g.sBn,
      accumulate: g.accumulate ?? 0,
      has_bias: g.bias ? 1 : 0,
      alpha: g.alpha ?? 1,
    },
    workgroups: [Math.ceil(g.N / 16), Math.ceil(g.M / 16)],
    context: `M=${g.M} N=${g.N} K=${g.K}`,
  });
}

export interface GemmArgs {
  M: number;
  N: number;
  K: number;
  /** op(A) is (M, K): A stored (M, K) row-major, or (K, M) when transA. */
  a: GPUBuffer;
  transA?: boolean;
  /** op(B) is (K, N): B stored (K, N) row-major, or (N, K) when transB. */
  b: GPUBuffer;
  transB?: boolean;
  c: GPUBuffer;
  bias?: GPUBuffer;
  /** Apply GELU after the bias (needs bias); with `pre`, also store the pre-GELU values there. */
  gelu?: boolean;
  pre?: GPUBuffer;
  accumulate?: 0 | 1;
  alpha?: number;
  /** v2 and v3 tiles; default tileConfig(). */
  tiles?: TileConfig;
  /** Force a version (tests, benches); default: gemmVersion(). `tiles` apply to v2 and v3. */
  version?: 'v2' | 'v3' | 'v4';
}

/** Records C (+)= epilogue(alpha·op(A)·op(B)) with the version gemmVersion() picks (or the one given). */
export function gemm(gpu: Gpu, g: GemmArgs): void {
  const t = g.tiles ?? tileConfig(gpu);
  const epilogue = g.gelu ? 2 : g.bias ? 1 : 0;
  if (g.gelu && !g.bias) throw new Error('gemm: the GELU epilogue needs a bias');
  const shape = () => `M=${g.M} N=${g.N} K=${g.K}${g.transA ? ' Aᵀ' : ''}${g.transB ? ' Bᵀ' : ''}`;
  // v4 gives v3's bits whatever v3's tiles, so it serves callers that ask for tiles (the decode step's few-row
  // ones) too: on SwiftShader it ran those 3-7x faster than v3 with 16-row tiles.
  const version = g.version ?? gemmVersion(gpu, g, t);
  const buffers = {
    a: g.a,
    b: g.b,
    c: g.c,
    bias: g.bias ?? placeholder(gpu),
    pre: g.pre ?? placeholder(gpu, 'write'),
  };
  const uniforms = {
    M: g.M,
    N: g.N,
    K: g.K,
    accumulate: g.accumulate ?? 0,
    epilogue,
    store_pre: g.pre ? 1 : 0,
    alpha: g.alpha ?? 1,
  };
  if (version === 'v4') {
    if (!subgroupEligible(g)) throw new Error(`gemm v4: ${shape()} is not vec4-aligned with K and N multiples of 4`);
    if (!subgroupsOf4(gpu)) throw new Error(`gemm v4 needs subgroups of 4 invocations, which ${gpu.describe()} lacks`);
    const tiles = Math.ceil(g.M / 8) * Math.ceil(g.N / 16);
    gpu.dispatch(matmulSubgroupSpec, {
      buffers,
      uniforms: { M: g.M, N: g.N, K: g.K, alpha: uniforms.alpha },
      overrides: {
        TRANS_A: g.transA ? 1 : 0,
        TRANS_B: g.transB ? 1 : 0,
        WG: V4_WG,
        ACCUMULATE: uniforms.accumulate,
        EPILOGUE: epilogue,
        STORE_PRE: uniforms.store_pre,
      },
      workgroups: grid1d(gpu, tiles, V4_WG / 4),
      context: shape(),
    });
    return;
  }
  const v3 = version === 'v3';
  if (v3 && !vec4Eligible(g, t))
    throw new Error(`gemm v3: ${shape()} with tiles ${JSON.stringify(t)} is not vec4-aligned`);
  gpu.dispatch(v3 ? matmulVec4Spec : matmulTiledSpec, {
    buffers,
    uniforms,
    overrides: {
      BM: t.BM,
      BN: t.BN,
      BK: t.BK,
      TRANS_A: g.transA ? 1 : 0,
      TRANS_B: g.transB ? 1 : 0,
      WG: (t.BM * t.BN) / 16,
    },
    workgroups: [Math.ceil(g.N / t.BN), Math.ceil(g.M / t.BM)],
    context: shape(),
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
    gemm(a.gpu, { M, N, K, a: a.buffer, b: b.buffer, c: out.buffer });
    return { out, saved: null };
  },
  backward(ctx, g, { args: [a, b] }) {
    const [M, K] = a.shape as [number, number];
    const N = b.shape[1]!;
    const da = ctx.grad(a);
    // dA (M, K) = g (M, N) · Bᵀ, B stored (K, N) = (N, K)ᵀ
    if (da)
      gemm(a.gpu, {
        M,
        N: K,
        K: N,
        a: g.buffer,
        b: b.buffer,
        transB: true,
        c: da.tensor.buffer,
        accumulate: da.accumulate,
      });
    const db = ctx.grad(b);
    // dB (K, N) = Aᵀ · g, A stored (M, K)
    if (db)
      gemm(a.gpu, {
        M: K,
        N,
        K: M,
        a: a.buffer,
        transA: true,
        b: g.buffer,
        c: db.tensor.buffer,
        accumulate: db.accumulate,
      });
  },
});

/** out (M, OC) = x (M, C) · Wᵀ + bias, with W of shape (OC, C) as llm.c and PyTorch store it. */
export const linear = defineOp({
  name: 'linear',
  forward(x: Tensor, w: Tensor, bias?: Tensor) {
    const { M, C, OC } = linearShapes('linear', x, w, bias);
    const out = empty(x.gpu, [M, OC]);
    gemm(x.gpu, { M, N: OC, K: C, a: x.buffer, b: w.buffer, transB: true, c: out.buffer, bias: bias?.buffer });
    return { out, saved: null };
  },
  backward(ctx, g, { args: [x, w, bias] }) {
    linearBackward(ctx, g, x, w, bias);
  },
});

/** gelu(x (M, C) · Wᵀ + bias) in one kernel; the pre-activation is kept for the backward. */
export const linearGelu = defineOp({
  name: 'linear_gelu',
  forward(x: Tensor, w: Tensor, bias: Tensor) {
    const { M, C, OC } = linearShapes('linear_gelu', x, w, bias);
    const out = empty(x.gpu, [M, OC]);
    const pre = empty(x.gpu, [M, OC]);
    gemm(x.gpu, {
      M,
      N: OC,
      K: C,
      a: x.buffer,
      b: w.buffer,
      transB: true,
      c: out.buffer,
      bias: bias.buffer,
      gelu: true,
      pre: pre.buffer,
    });
    return { out, saved: pre };
  },
  backward(ctx, g, { args: [x, w, bias], saved: pre }) {
    // d pre = g · gelu'(pre), then the linear layer's backward from d pre.
    const dpre = empty(x.gpu, pre.shape);
    geluBackwardInto(x.gpu, pre.buffer, g.buffer, dpre.buffer, pre.size, 0);
    linearBackward(ctx, dpre, x, w, bias);
    dpre.dispose(); // back to the pool; the commands recorded above still read it first (queue order)
  },
});

function linearShapes(op: string, x: Tensor, w: Tensor, bias?: Tensor) {
  expectSameGpu(op, x, w, ...(bias ? [bias] : []));
  expectShape(op, x, 2);
  const [M, C] = x.shape as [number, number];
  expectShape(op, w, 2, [undefined, C]);
  const OC = w.shape[0]!;
  if (bias) expectShape(op, bias, 1, [OC]);
  return { M, C, OC };
}

function linearBackward(
  ctx: import('@wgpt/runtime').BackwardCtx,
  g: Tensor,
  x: Tensor,
  w: Tensor,
  bias: Tensor | undefined,
): void {
  const [M, C] = x.shape as [number, number];
  const OC = w.shape[0]!;
  const gpu = x.gpu;
  const dx = ctx.grad(x);
  // dx (M, C) = g (M, OC) · W, W stored (OC, C)
  if (dx) gemm(gpu, { M, N: C, K: OC, a: g.buffer, b: w.buffer, c: dx.tensor.buffer, accumulate: dx.accumulate });
  const dw = ctx.grad(w);
  // dW (OC, C) = gᵀ · x, g stored (M, OC)
  if (dw)
    gemm(gpu, {
      M: OC,
      N: C,
      K: M,
      a: g.buffer,
      transA: true,
      b: x.buffer,
      c: dw.tensor.buffer,
      accumulate: dw.accumulate,
    });
  const db = bias ? ctx.grad(bias) : null;
  if (db) sumRowsInto(gpu, g.buffer, M, OC, db.tensor.buffer, db.accumulate);
}


// Inference-only kernels for sampling with a KV cache (plain recorded functions, not autograd ops: nothing here
// has a backward).
//   kvAppend         copies the k and v parts of a packed qkv (B, T, 3C) into per-layer caches (B, NH, maxT, HS)
//                    at positions [pos, pos + T). Head-major caches keep each head's keys contiguous, so the
//                    decode kernel reads one (maxT, HS) slab per (b, h) with unit stride over d.
//   decodeAttention  T new queries at absolute positions pos..pos + T - 1 attend causally over cached keys
//                    0..(own position); output (B, T, C) in the attention op's head-interleaved layout.
import { empty, WgptError, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { expectSameGpu, expectShape, grid1d } from '../common.ts';
import appendSource from './kv_append.wgsl';
import decodeSource from './decode_attention.wgsl';

const shapeUniforms = (['B', 'T', 'NH', 'HS', 'maxT', 'pos'] as const).map((name) => ({ name, type: 'u32' as const }));

export const kvAppendSpec: KernelSpec = {
  name: 'kvcache_append',
  version: 'v1',
  description: 'one thread per (b, t, c): k and v of packed qkv into (B, NH, maxT, HS) caches at pos + t',
  source: appendSource,
  file: 'kernels/kvcache/kv_append.wgsl',
  bindings: [
    { name: 'qkv', kind: 'read-only-storage' },
    { name: 'kcache', kind: 'storage' },
    { name: 'vcache', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: shapeUniforms,
  overrides: { WG: 256 },
};

export const decodeAttentionSpec: KernelSpec = {
  name: 'kvcache_decode_attention',
  version: 'v1',
  description:
    'one workgroup per (query, head, batch): keys in chunks of WG, tree max, online softmax, ' +
    'thread d owns output dim d',
  source: decodeSource,
  file: 'kernels/kvcache/decode_attention.wgsl',
  bindings: [
    { name: 'qkv', kind: 'read-only-storage' },
    { name: 'kcache', kind: 'read-only-storage' },
    { name: 'vcache', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: shapeUniforms,
  overrides: { WG: 64 },
};

export const kvcacheSpecs = [kvAppendSpec, decodeAttentionSpec];

interface CacheShape {
  B: number;
  T: number;
  C: number;
  NH: number;
  HS: number;
  maxT: number;
}

function cacheShapes(op: string, qkv: Tensor, k: Tensor, v: Tensor, pos: number): CacheShape {
  expectSameGpu(op, qkv, k, v);
  expectShape(op, qkv, 3);
  const [B, T, C3] = qkv.shape as [number, number, number];
  expectShape(op, k, 4, [B]);
  const [, NH, maxT, HS] = k.shape as [number, number, number, number];
  expectShape(op, v, 4, [B, NH, maxT, HS]);
  const C = NH * HS;
  if (C3 !== 3 * C) throw new WgptError(`${op}: ${qkv} must have 3·NH·HS = ${3 * C} channels for caches ${k}`);
  if (!Number.isInteger(pos) || pos < 0 || pos + T > maxT)
    throw new WgptError(`${op}: positions [${pos}, ${pos + T}) do not fit a cache of ${maxT}`);
  for (const t of [qkv, k, v]) if (t.dtype !== 'f32') throw new WgptError(`${op}: ${t} must be f32`);
  return { B, T, C, NH, HS, maxT };
}

/** Records k, v (B, NH, maxT, HS)[b, h, pos + t, d] = qkv (B, T, 3C)[b, t, C + h·HS + d] (and 2C + … for v). */
export function kvAppend(qkv: Tensor, k: Tensor, v: Tensor, pos: number): void {
  const { B, T, C, NH, HS, maxT } = cacheShapes('kvAppend', qkv, k, v, pos);
  const gpu = qkv.gpu;
  gpu.dispatch(kvAppendSpec, {
    buffers: { qkv: qkv.buffer, kcache: k.buffer, vcache: v.buffer },
    uniforms: { B, T, NH, HS, maxT, pos },
    workgroups: grid1d(gpu, B * T * C, 256),
    context: `B=${B} T=${T} NH=${NH} HS=${HS} maxT=${maxT} pos=${pos}`,
  });
}

/** Workgroup size for a head size: a power of two ≥ HS, at least 64. */
export function decodeWorkgroup(HS: number): number {
  let wg = 64;
  while (wg < HS) wg *= 2;
  return wg;
}

/**
 * out (B, T, C): query t of qkv (B, T, 3C), at absolute position pos + t, attends over cache positions 0..pos + t
 * of k, v (B, NH, maxT, HS). Append the new k, v first (kvAppend) so each query sees itself.
 */
export function decodeAttention(qkv: Tensor, k: Tensor, v: Tensor, pos: number): Tensor {
  const { B, T, C, NH, HS, maxT } = cacheShapes('decodeAttention', qkv, k, v, pos);
  const gpu = qkv.gpu;
  const WG = decodeWorkgroup(HS);
  if (WG > gpu.limits.maxComputeInvocationsPerWorkgroup)
    throw new WgptError(
      `decodeAttention: head size ${HS} needs ${WG} threads per workgroup, ` +
        `the device allows ${gpu.limits.maxComputeInvocationsPerWorkgroup}`,
    );
  const out = empty(gpu, [B, T, C]);
  gpu.dispatch(decodeAttentionSpec, {
    buffers: { qkv: qkv.buffer, kcache: k.buffer, vcache: v.buffer, out: out.buffer },
    uniforms: { B, T, NH, HS, maxT, pos },
    overrides: { WG },
    workgroups: [T, NH, B],
    context: `B=${B} T=${T} NH=${NH} HS=${HS} maxT=${maxT} pos=${pos}`,
  });
  return out;
}

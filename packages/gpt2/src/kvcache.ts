// A KV cache for sampling from GPT-2: per layer, the keys and values of every position seen so far, so that a new
// token costs one token's worth of matmuls plus attention over the cache instead of a forward over the whole
// context. Layout per layer: k, v (B, NH, maxT, HS), head-major so each head's keys are one contiguous slab.
//
// forwardCached(model, tokens (B, Tnew), cache, pos) embeds the new tokens at positions pos..pos+Tnew-1, appends
// their k and v to every layer's cache and attends over positions 0..(own); it returns the new positions' logits.
// Prefill is the prompt in one call (pos 0); each later call adds one token (pos = cache.length).
// The cache holds at most maxT positions (the model's learned positions end there): the caller re-prefills the
// last maxT tokens from pos 0 once the context would pass maxT (see generate()).
import { empty, noGrad, WgptError, type Gpu, type Tensor } from '@wgpt/runtime';
import { add, decodeAttention, encoderAt, gemm, kvAppend, layernorm, linear, linearGelu, reshape, type TileConfig } from '@wgpt/kernels';
import type { GPT2 } from './model.ts';

export class KVCache {
  readonly k: Tensor[];
  readonly v: Tensor[];
  readonly maxT: number;
  /** Positions 0..length-1 hold valid keys and values. */
  length = 0;

  constructor(
    readonly gpu: Gpu,
    readonly config: { L: number; NH: number; C: number; maxT: number },
    readonly B = 1,
    maxT = config.maxT,
  ) {
    if (maxT > config.maxT) throw new WgptError(`KVCache: ${maxT} positions, but the model has only ${config.maxT}`);
    this.maxT = maxT;
    const HS = config.C / config.NH;
    const mk = (what: string, l: number) => empty(gpu, [B, config.NH, maxT, HS], 'f32', { track: false, name: `${what}cache[${l}]` });
    this.k = Array.from({ length: config.L }, (_, l) => mk('k', l));
    this.v = Array.from({ length: config.L }, (_, l) => mk('v', l));
  }

  /** Forgets every position (the buffers are kept). */
  reset(): void {
    this.length = 0;
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v]) t.dispose();
  }
}

/**
 * Tiles for the few-row products of a decode step: the ops' default 64-row tiles would compute 63 wasted rows per
 * workgroup for one new token (measured on SwiftShader at M=1: 16x64 tiles run the 128→384 projection ~4x faster).
 */
const DECODE_TILES: TileConfig = { BM: 16, BN: 64, BK: 16 };

/** out (M, OC) = x · Wᵀ + bias (then GELU): the linear ops' kernel with few-row tiles when M ≤ 16. */
function linearRows(x: Tensor, w: Tensor, bias: Tensor | undefined, gelu = false): Tensor {
  const [M, K] = x.shape as [number, number];
  if (M > DECODE_TILES.BM) return gelu ? linearGelu(x, w, bias!) : linear(x, w, bias);
  const N = w.shape[0]!;
  if (w.shape[1] !== K) throw new WgptError(`forwardCached: ${x} does not fit ${w}`);
  const out = empty(x.gpu, [M, N]);
  gemm(x.gpu, { M, N, K, a: x.buffer, b: w.buffer, transB: true, c: out.buffer, bias: bias?.buffer, gelu, tiles: DECODE_TILES });
  return out;
}

export interface CachedForwardOptions {
  /** Compute the logits of the last new position of each sequence only: (B, Vp) instead of (B·Tnew, Vp). */
  lastOnly?: boolean;
}

/**
 * Runs the model on tokens (B, Tnew) i32 at positions pos..pos+Tnew-1 (default pos: cache.length), attending over
 * the cached positions 0..pos-1 and the new ones causally; writes the new keys and values into the cache and sets
 * cache.length = pos + Tnew. Returns the logits (B·Tnew, Vp), or (B, Vp) with lastOnly. No autograd. Record it
 * inside tidy(): the activations are tensors of the scope (the cache is not).
 */
export function forwardCached(model: GPT2, tokens: Tensor, cache: KVCache, pos = cache.length, opts: CachedForwardOptions = {}): Tensor {
  const { C } = model.config;
  if (tokens.shape.length !== 2 || tokens.dtype !== 'i32') throw new WgptError(`forwardCached: tokens ${tokens} must be (B, T) i32`);
  const [B, T] = tokens.shape as [number, number];
  if (B !== cache.B) throw new WgptError(`forwardCached: batch ${B}, cache built for ${cache.B}`);
  if (T < 1) throw new WgptError('forwardCached: no new tokens');
  if (!Number.isInteger(pos) || pos < 0 || pos > cache.length) throw new WgptError(`forwardCached: pos ${pos} leaves a gap after the ${cache.length} cached positions`);
  if (pos + T > cache.maxT) throw new WgptError(`forwardCached: positions [${pos}, ${pos + T}) exceed the cache's ${cache.maxT}; re-prefill the last ${cache.maxT} tokens`);
  return noGrad(() => {
    const BT = B * T;
    let x = reshape(encoderAt(tokens, model.wte, model.wpe, pos), [BT, C]);
    model.blocks.forEach((blk, l) => {
      const h = layernorm(x, blk.ln1w, blk.ln1b);
      const qkv = reshape(linearRows(h, blk.qkvw, blk.qkvb), [B, T, 3 * C]);
      kvAppend(qkv, cache.k[l]!, cache.v[l]!, pos);
      const y = reshape(decodeAttention(qkv, cache.k[l]!, cache.v[l]!, pos), [BT, C]);
      x = add(x, linearRows(y, blk.attprojw, blk.attprojb));
      const h2 = layernorm(x, blk.ln2w, blk.ln2b);
      const f = linearRows(h2, blk.fcw, blk.fcb, true);
      x = add(x, linearRows(f, blk.fcprojw, blk.fcprojb));
    });
    cache.length = pos + T;
    if (opts.lastOnly && T > 1) {
      // Only the last row of each sequence goes through the final LayerNorm and the (large) vocabulary matmul.
      const last = empty(model.gpu, [B, C]);
      for (let b = 0; b < B; b++) model.gpu.copy(x.buffer, ((b * T + T - 1) * C) * 4, last.buffer, b * C * 4, C * 4);
      x = last;
    }
    const xf = layernorm(x, model.lnfw, model.lnfb);
    return linearRows(xf, model.wte, undefined);
  });
}

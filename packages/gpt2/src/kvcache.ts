// What sampling with a KV cache needs besides the model: the cache itself and the few-row matmuls of a decode step.
// GPT2.forwardCached (model.ts) runs the same blocks as the full forward; in each block, KVCache.attend appends the
// new positions' keys and values to that layer's cache and attends over every cached position up to their own.
//
// Per layer the cache holds k and v of shape (B, NH, maxT, HS), head-major so each head's keys are one contiguous
// slab. Prefill is the prompt in one call (pos 0); each later call adds one token (pos = cache.length). The cache
// holds at most maxT positions (the model's learned positions end there): the caller re-prefills the last maxT
// tokens from pos 0 once the context would pass maxT (see generate() in sample.ts).
import { empty, WgptError, type Gpu, type Tensor } from '@wgpt/runtime';
import { decodeAttention, gemm, kvAppend, linear, linearGelu, reshape, type TileConfig } from '@wgpt/kernels';

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
    const mk = (what: string, l: number) =>
      empty(gpu, [B, config.NH, maxT, HS], 'f32', { track: false, name: `${what}cache[${l}]` });
    this.k = Array.from({ length: config.L }, (_, l) => mk('k', l));
    this.v = Array.from({ length: config.L }, (_, l) => mk('v', l));
  }

  /** Throws unless tokens (B, T) i32 fit at positions pos..pos+T-1: right after the cached ones, within maxT. */
  checkFits(tokens: Tensor, pos: number): void {
    if (tokens.shape.length !== 2 || tokens.dtype !== 'i32') {
      throw new WgptError(`forwardCached: tokens ${tokens} must be (B, T) i32`);
    }
    const [B, T] = tokens.shape as [number, number];
    if (B !== this.B) throw new WgptError(`forwardCached: batch ${B}, cache built for ${this.B}`);
    if (T < 1) throw new WgptError('forwardCached: no new tokens');
    if (!Number.isInteger(pos) || pos < 0 || pos > this.length) {
      throw new WgptError(`forwardCached: pos ${pos} leaves a gap after the ${this.length} cached positions`);
    }
    if (pos + T > this.maxT) {
      throw new WgptError(
        `forwardCached: positions [${pos}, ${pos + T}) exceed the cache's ${this.maxT}; re-prefill the last ` +
          `${this.maxT} tokens`,
      );
    }
  }

  /**
   * Layer l's attention for the new positions pos..pos+T-1: appends their keys and values from qkv (B·T, 3C) to
   * the cache, then attends causally over positions 0..(own). Returns y (B·T, C). Does not move `length`.
   */
  attend(l: number, qkv: Tensor, pos: number): Tensor {
    const { C } = this.config;
    const BT = qkv.shape[0]!;
    const qkv3 = reshape(qkv, [this.B, BT / this.B, 3 * C]);
    kvAppend(qkv3, this.k[l]!, this.v[l]!, pos);
    return reshape(decodeAttention(qkv3, this.k[l]!, this.v[l]!, pos), [BT, C]);
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
 * The tiles change no summation order along K: the results are the linear ops' bits (kvcache.test.ts).
 */
const DECODE_TILES: TileConfig = { BM: 16, BN: 64, BK: 16 };

/** out (M, OC) = x · Wᵀ + bias (then GELU): the linear ops' kernel, few-row tiles when M ≤ 16. Under noGrad only. */
function linearRows(x: Tensor, w: Tensor, bias: Tensor | undefined, gelu: boolean): Tensor {
  const [M, K] = x.shape as [number, number];
  if (M > DECODE_TILES.BM) return gelu ? linearGelu(x, w, bias!) : linear(x, w, bias);
  const N = w.shape[0]!;
  if (w.shape[1] !== K) throw new WgptError(`forwardCached: ${x} does not fit ${w}`);
  const out = empty(x.gpu, [M, N]);
  gemm(x.gpu, {
    M, N, K, a: x.buffer, b: w.buffer, transB: true, c: out.buffer, bias: bias?.buffer, gelu, tiles: DECODE_TILES,
  });
  return out;
}

/** `linear` for a decode step (see linearRows). */
export const decodeLinear = (x: Tensor, w: Tensor, bias?: Tensor): Tensor => linearRows(x, w, bias, false);

/** `linearGelu` for a decode step (see linearRows). */
export const decodeLinearGelu = (x: Tensor, w: Tensor, bias: Tensor): Tensor => linearRows(x, w, bias, true);

// GPT-2 on wgpt's kernels, laid out like nanoGPT: token + learned position embeddings, L pre-LayerNorm blocks
// (x + attention(ln1(x)), then x + MLP(ln2(x)) with a GELU MLP of 4C), a final LayerNorm, and logits through the tied
// token embedding over the padded vocabulary (the fused classifier ignores the padded columns). Parameters are one
// tensor per llm.c parameter per layer, packed in llm.c's order into one buffer (and their gradients into another), so
// the optimizer updates all of them in a few dispatches; parameters() is that order.
//
// forward() is for training and evaluation: causal flash attention over the whole sequence, with autograd; for
// packed rows (several conversations per row, supervised fine-tuning) segment ids confine attention to each
// conversation and per-token positions restart the position embedding at each one.
// forwardCached() is for sampling: each block's attention appends the new positions' keys and values to a KVCache
// and attends over the cache; the matmuls use few-row tiles (kvcache.ts). Both run the same block() and head().
import { empty, noGrad, TensorPack, WgptError, type Gpu, type PackItem, type Tensor } from '@wgpt/runtime';
import {
  add, attention, encoder, encoderAt, fusedClassifier, layernorm, linear, linearGelu, mean, reshape,
} from '@wgpt/kernels';
import { paramOffsets, type GPT2Config } from './config.ts';
import { decodeLinear, decodeLinearGelu, type KVCache } from './kvcache.ts';

const PER_LAYER = [
  'ln1w', 'ln1b', 'qkvw', 'qkvb', 'attprojw', 'attprojb', 'ln2w', 'ln2b', 'fcw', 'fcb', 'fcprojw', 'fcprojb',
] as const;
type LayerParam = (typeof PER_LAYER)[number];
/** Matrices get weight decay; biases and LayerNorm parameters do not. */
const DECAYED = new Set(['wte', 'wpe', 'qkvw', 'attprojw', 'fcw', 'fcprojw']);

export interface Block {
  ln1w: Tensor;
  ln1b: Tensor;
  qkvw: Tensor;
  qkvb: Tensor;
  attprojw: Tensor;
  attprojb: Tensor;
  ln2w: Tensor;
  ln2b: Tensor;
  fcw: Tensor;
  fcb: Tensor;
  fcprojw: Tensor;
  fcprojb: Tensor;
}

export interface ForwardResult {
  /** (B·T, Vp) */
  logits: Tensor;
  /** Per-position losses (B·T) and their mean, when targets were given. */
  losses?: Tensor;
  loss?: Tensor;
}

export interface ForwardOptions {
  /** (B·T) f32 row weights for the loss (0: the row does not count). */
  mask?: Tensor;
  /**
   * Let the classifier's backward write dL/dlogits over the logits (llm.c's in-place trick): one (B·T, Vp) buffer
   * for both, instead of two. The returned logits are unreadable after backward. For training.
   */
  overwriteLogits?: boolean;
  /**
   * Packed rows: i32 segment ids, B·T of them (shape (B, T) or (B·T)), row-major like tokens: token t of row b
   * attends only to tokens j <= t with the same id (every block's attention). Each id must be one contiguous run
   * of its row (checkSegments from @wgpt/kernels); padding is one more run, e.g. of -1.
   */
  segments?: Tensor;
  /**
   * Per-token positions for the position embedding, i32, B·T of them, each in [0, maxT) (checkPositions from
   * @wgpt/kernels): packed rows restart them at 0 per conversation. Absent: 0..T-1 in every row. With them T may
   * exceed maxT.
   */
  positions?: Tensor;
  /**
   * Called with each block's q, k and v, (B·T, 3C) as the attention gets them, before it runs: for looking at
   * attention patterns (the tensor belongs to the caller's tidy scope).
   */
  onQkv?: (layer: number, qkv: Tensor) => void;
}

export interface CachedForwardOptions {
  /** Compute the logits of the last new position of each sequence only: (B, Vp) instead of (B·Tnew, Vp). */
  lastOnly?: boolean;
}

/** The linear layers of a forward pass: the autograd ops, or a decode step's few-row variants. */
interface Linears {
  linear(x: Tensor, w: Tensor, bias?: Tensor): Tensor;
  linearGelu(x: Tensor, w: Tensor, bias: Tensor): Tensor;
}
const AUTOGRAD: Linears = { linear, linearGelu };
const DECODE: Linears = { linear: decodeLinear, linearGelu: decodeLinearGelu };

/**
 * One transformer block on x (B·T, C). `attend` is the attention step, qkv (B·T, 3C) → y (B·T, C): the only part
 * whose arithmetic differs between forward() and forwardCached(); `mm` only changes how the matmuls are tiled.
 */
function block(x: Tensor, p: Block, attend: (qkv: Tensor) => Tensor, mm: Linears): Tensor {
  const y = attend(mm.linear(layernorm(x, p.ln1w, p.ln1b), p.qkvw, p.qkvb));
  x = add(x, mm.linear(y, p.attprojw, p.attprojb));
  const h = mm.linearGelu(layernorm(x, p.ln2w, p.ln2b), p.fcw, p.fcb);
  return add(x, mm.linear(h, p.fcprojw, p.fcprojb));
}

export class GPT2 {
  readonly wte: Tensor;
  readonly wpe: Tensor;
  readonly blocks: Block[];
  readonly lnfw: Tensor;
  readonly lnfb: Tensor;
  /** Every parameter in one buffer (llm.c's order), their gradients in another once backward needs them. */
  readonly pack: TensorPack;

  constructor(
    readonly gpu: Gpu,
    readonly config: GPT2Config,
    flat: Float32Array,
  ) {
    const offs = paramOffsets(config);
    const total = Object.values(offs).reduce((a, o) => a + o.size, 0);
    if (flat.length !== total) {
      throw new WgptError(`GPT2: ${flat.length} parameters given, config ${JSON.stringify(config)} needs ${total}`);
    }
    // Items in llm.c's order (parameters()'s), each with its slice of the flat array.
    const items: PackItem[] = [];
    const whole = (name: string) => {
      const o = offs[name]!;
      items.push({ shape: o.shape, data: flat.subarray(o.offset, o.offset + o.size), name });
    };
    const layer = (name: LayerParam, l: number) => {
      const o = offs[name]!;
      const per = o.size / config.L;
      const slice = flat.subarray(o.offset + l * per, o.offset + (l + 1) * per);
      items.push({ shape: o.shape.slice(1), data: slice, name: `${name}[${l}]` });
    };
    whole('wte');
    whole('wpe');
    for (const name of PER_LAYER) for (let l = 0; l < config.L; l++) layer(name, l);
    whole('lnfw');
    whole('lnfb');
    this.pack = new TensorPack(gpu, items, { param: true, label: 'GPT-2 parameters' });
    const byName = new Map(this.pack.tensors.map((t) => [t.name!, t]));
    const get = (name: string) => byName.get(name)!;
    this.wte = get('wte');
    this.wpe = get('wpe');
    this.blocks = Array.from(
      { length: config.L },
      (_, l) => Object.fromEntries(PER_LAYER.map((n) => [n, get(`${n}[${l}]`)])) as unknown as Block,
    );
    this.lnfw = get('lnfw');
    this.lnfb = get('lnfb');
  }

  /** Every parameter tensor, in a fixed order (llm.c's, layers expanded): the optimizer's and checkpoints' order. */
  parameters(): Tensor[] {
    const out: Tensor[] = [this.wte, this.wpe];
    for (const name of PER_LAYER) for (const b of this.blocks) out.push(b[name]);
    out.push(this.lnfw, this.lnfb);
    return out;
  }

  /** Weight decay flags for parameters(), in the same order. */
  decayFlags(): boolean[] {
    return this.parameters().map((p) => DECAYED.has(p.name!.replace(/\[\d+\]$/, '')));
  }

  /**
   * tokens (B, T) i32, optional targets (B, T) i32 → logits (B·T, Vp) and, with targets, per-position losses
   * and their mean. Record it inside tidy(): every activation is a tensor of the scope.
   */
  forward(tokens: Tensor, targets?: Tensor, opts: ForwardOptions = {}): ForwardResult {
    const { C, NH, V } = this.config;
    const [B, T] = tokens.shape as [number, number];
    const { segments, positions } = opts;
    const causal = (qkv: Tensor) => reshape(attention(reshape(qkv, [B, T, 3 * C]), { NH, segments }), [B * T, C]);
    let x = reshape(encoder(tokens, this.wte, this.wpe, { positions }), [B * T, C]);
    const { onQkv } = opts;
    for (const [l, p] of this.blocks.entries()) {
      x = block(x, p, onQkv ? (qkv) => (onQkv(l, qkv), causal(qkv)) : causal, AUTOGRAD);
    }
    const logits = this.head(x, AUTOGRAD);
    if (!targets) return { logits };
    const losses = fusedClassifier(logits, reshape(targets, [B * T]), {
      V,
      mask: opts.mask,
      inPlace: opts.overwriteLogits,
    });
    return { logits, losses, loss: mean(losses) };
  }

  /**
   * Inference with a KV cache: tokens (B, Tnew) i32 at positions pos..pos+Tnew-1 (default pos: cache.length),
   * attending over the cached positions 0..pos-1 and the new ones causally; writes the new keys and values into the
   * cache and sets cache.length = pos + Tnew. Returns the logits (B·Tnew, Vp), or (B, Vp) with lastOnly. No
   * autograd. Record it inside tidy(): the activations are tensors of the scope (the cache is not).
   */
  forwardCached(tokens: Tensor, cache: KVCache, pos = cache.length, opts: CachedForwardOptions = {}): Tensor {
    cache.checkFits(tokens, pos);
    const { C } = this.config;
    const [B, T] = tokens.shape as [number, number];
    return noGrad(() => {
      let x = reshape(encoderAt(tokens, this.wte, this.wpe, pos), [B * T, C]);
      for (const [l, p] of this.blocks.entries()) x = block(x, p, (qkv) => cache.attend(l, qkv, pos), DECODE);
      cache.length = pos + T;
      if (opts.lastOnly && T > 1) {
        // Only the last row of each sequence goes through the final LayerNorm and the (large) vocabulary matmul.
        const last = empty(this.gpu, [B, C]);
        for (let b = 0; b < B; b++) this.gpu.copy(x.buffer, (b * T + T - 1) * C * 4, last.buffer, b * C * 4, C * 4);
        x = last;
      }
      return this.head(x, DECODE);
    });
  }

  /** Final LayerNorm, then logits (rows, Vp) through the tied token embedding: wte's gradient gets both parts. */
  private head(x: Tensor, mm: Linears): Tensor {
    return mm.linear(layernorm(x, this.lnfw, this.lnfb), this.wte);
  }

  /**
   * Reads every parameter back into one flat array in llm.c's order: parameters() in order, each following the
   * last, which is the packed buffer without the padding between tensors (one read per buffer).
   */
  async toFlat(): Promise<Float32Array> {
    const { layout, segments } = this.pack;
    const out = new Float32Array(this.pack.tensors.reduce((a, t) => a + t.size, 0));
    const segs = await Promise.all(segments.map(async (s) => (await s.read()) as Float32Array));
    let at = 0;
    for (const slot of layout.slots) {
      const n = slot.bytes / 4;
      out.set(segs[slot.segment]!.subarray(slot.offset / 4, slot.offset / 4 + n), at);
      at += n;
    }
    return out;
  }

  dispose(): void {
    this.pack.dispose();
  }
}

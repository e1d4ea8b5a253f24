// GPT-2 on wgpt's kernels: learned positions, pre-LayerNorm blocks, causal multi-head attention, GELU MLP of 4C,
// final LayerNorm, logits through the tied token embedding over the padded vocabulary (padded columns ignored by
// the fused classifier). Parameters are one tensor per llm.c parameter per layer; `flat` order is llm.c's.
import { parameter, WgptError, type Gpu, type Tensor } from '@wgpt/runtime';
import { add, attention, encoder, fusedClassifier, layernorm, linear, linearGelu, mean, reshape } from '@wgpt/kernels';
import { paramOffsets, type GPT2Config } from './config.ts';
import { forwardCached, type CachedForwardOptions, type KVCache } from './kvcache.ts';

const PER_LAYER = ['ln1w', 'ln1b', 'qkvw', 'qkvb', 'attprojw', 'attprojb', 'ln2w', 'ln2b', 'fcw', 'fcb', 'fcprojw', 'fcprojb'] as const;
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

export class GPT2 {
  readonly wte: Tensor;
  readonly wpe: Tensor;
  readonly blocks: Block[];
  readonly lnfw: Tensor;
  readonly lnfb: Tensor;

  constructor(
    readonly gpu: Gpu,
    readonly config: GPT2Config,
    flat: Float32Array,
  ) {
    const offs = paramOffsets(config);
    const total = Object.values(offs).reduce((a, o) => a + o.size, 0);
    if (flat.length !== total) throw new WgptError(`GPT2: ${flat.length} parameters given, config ${JSON.stringify(config)} needs ${total}`);
    const whole = (name: string) => parameter(gpu, flat.subarray(offs[name]!.offset, offs[name]!.offset + offs[name]!.size), offs[name]!.shape, name);
    const layer = (name: LayerParam, l: number) => {
      const o = offs[name]!;
      const per = o.size / config.L;
      return parameter(gpu, flat.subarray(o.offset + l * per, o.offset + (l + 1) * per), o.shape.slice(1), `${name}[${l}]`);
    };
    this.wte = whole('wte');
    this.wpe = whole('wpe');
    this.blocks = Array.from({ length: config.L }, (_, l) => Object.fromEntries(PER_LAYER.map((n) => [n, layer(n, l)])) as unknown as Block);
    this.lnfw = whole('lnfw');
    this.lnfb = whole('lnfb');
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
  forward(tokens: Tensor, targets?: Tensor, opts: { mask?: Tensor } = {}): ForwardResult {
    const { C, NH, V } = this.config;
    const [B, T] = tokens.shape as [number, number];
    const BT = B * T;
    let x = reshape(encoder(tokens, this.wte, this.wpe), [BT, C]);
    for (const blk of this.blocks) {
      const h = layernorm(x, blk.ln1w, blk.ln1b);
      const qkv = linear(h, blk.qkvw, blk.qkvb);
      const y = reshape(attention(reshape(qkv, [B, T, 3 * C]), { NH }), [BT, C]);
      x = add(x, linear(y, blk.attprojw, blk.attprojb));
      const h2 = layernorm(x, blk.ln2w, blk.ln2b);
      const f = linearGelu(h2, blk.fcw, blk.fcb);
      x = add(x, linear(f, blk.fcprojw, blk.fcprojb));
    }
    const xf = layernorm(x, this.lnfw, this.lnfb);
    const logits = linear(xf, this.wte); // tied weights: wte's gradient gets both contributions
    if (!targets) return { logits };
    const losses = fusedClassifier(logits, reshape(targets, [BT]), { V, mask: opts.mask });
    return { logits, losses, loss: mean(losses) };
  }

  /**
   * Inference with a KV cache: tokens (B, Tnew) at positions pos..pos+Tnew-1 → their logits (B·Tnew, Vp), or
   * (B, Vp) with lastOnly; appends their keys and values to `cache` (see kvcache.ts). No autograd.
   */
  forwardCached(tokens: Tensor, cache: KVCache, pos = cache.length, opts: CachedForwardOptions = {}): Tensor {
    return forwardCached(this, tokens, cache, pos, opts);
  }

  /** Reads every parameter back into one flat array in llm.c's order. */
  async toFlat(): Promise<Float32Array> {
    const offs = paramOffsets(this.config);
    const out = new Float32Array(Object.values(offs).reduce((a, o) => a + o.size, 0));
    const put = async (name: string, t: Tensor, l?: number) => {
      const o = offs[name]!;
      const per = l === undefined ? o.size : o.size / this.config.L;
      out.set(await t.read(), o.offset + (l ?? 0) * per);
    };
    await put('wte', this.wte);
    await put('wpe', this.wpe);
    for (const name of PER_LAYER) for (let l = 0; l < this.config.L; l++) await put(name, this.blocks[l]![name], l);
    await put('lnfw', this.lnfw);
    await put('lnfb', this.lnfb);
    return out;
  }

  dispose(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.dispose();
    }
  }
}

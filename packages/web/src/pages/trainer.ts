// Training in a page. @wgpt/gpt2's train() reads token shards and writes logs and checkpoints to disk, so the page
// runs its own small loop over the same pieces that train() steps with: the GPT2 model (forward with the fused
// classifier, backward through the tape) and @wgpt/kernels' AdamW, one submit and one read per step as train()
// does. The text is tokenized by a byte-level BPE trained on it in the page (@wgpt/tokenizer's trainer).
import { backward, empty, type Gpu, type Tensor, tensor, tidyAsync } from '@wgpt/runtime';
import { AdamW } from '@wgpt/kernels';
import { generate, type GPT2Config, GPT2, initParams, makeConfig } from '@wgpt/gpt2';
import { type Encoding, trainBpe, trainedEncoding } from '@wgpt/tokenizer/core';
import { checkModelFits } from './model.ts';

export interface PageTrainOptions {
  L: number;
  C: number;
  NH: number;
  /** Context length; each row of a batch is T tokens. */
  T: number;
  B: number;
  /** The BPE vocabulary trained on the text (256 bytes + merges). */
  vocabSize: number;
  lr: number;
  weightDecay: number;
  maxNorm: number;
  /** Initialisation (initParams) and samples. */
  seed: number;
}

/** Small enough for SwiftShader (about a GFLOP/s): a step is a few tens of MFLOP. */
export const PAGE_TRAIN_DEFAULTS: PageTrainOptions = {
  L: 2,
  C: 32,
  NH: 2,
  T: 32,
  B: 4,
  vocabSize: 320,
  lr: 1e-2,
  weightDecay: 0.1,
  maxNorm: 1,
  seed: 1337,
};

export function pageTokenizer(text: string, vocabSize: number): Encoding {
  return trainedEncoding(trainBpe(text, { vocabSize, pattern: 'gpt2' }), 'page');
}

/**
 * The k-th batch (k from 0): B rows of T tokens read one after another through the text, wrapping around, and the
 * same rows shifted by one as targets.
 */
export function batchAt(ids: ArrayLike<number>, B: number, T: number, k: number) {
  const windows = ids.length - T; // row starts 0..ids.length-T-1 leave room for the last target
  if (windows < 1) throw new Error(`the text has ${ids.length} tokens, fewer than a row of T=${T} + 1`);
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const start = ((k * B + b) * T) % windows;
    for (let t = 0; t < T; t++) {
      inputs[b * T + t] = ids[start + t]!;
      targets[b * T + t] = ids[start + t + 1]!;
    }
  }
  return { inputs, targets };
}

export class PageTrainer {
  readonly config: GPT2Config;
  readonly model: GPT2;
  readonly ids: number[];
  steps = 0;
  private readonly opt: AdamW;
  private readonly lossOut: Tensor;

  constructor(
    readonly gpu: Gpu,
    readonly enc: Encoding,
    text: string,
    readonly o: PageTrainOptions,
  ) {
    this.ids = enc.encode(text, { allowedSpecial: 'all' });
    this.config = makeConfig({ L: o.L, C: o.C, NH: o.NH, V: enc.nVocab, maxT: o.T });
    checkModelFits(gpu, this.config, o.B * o.T, `the page's model (B=${o.B} T=${o.T})`);
    this.model = new GPT2(gpu, this.config, initParams(this.config, o.seed));
    this.opt = new AdamW(
      gpu,
      this.model.parameters(),
      { lr: o.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: o.weightDecay, maxNorm: o.maxNorm },
      this.model.decayFlags(),
    );
    this.lossOut = empty(gpu, [1], 'f32', { track: false, name: 'page step loss' });
  }

  /** One optimizer step on the next batch: its loss (before the update) and the gradient norm. */
  async step(): Promise<{ loss: number; gradNorm: number }> {
    const { B, T } = this.o;
    const { inputs, targets } = batchAt(this.ids, B, T, this.steps);
    const r = await tidyAsync(async () => {
      const x = tensor(this.gpu, inputs, [B, T], 'i32');
      const y = tensor(this.gpu, targets, [B, T], 'i32');
      this.opt.zeroGrad();
      const { loss } = this.model.forward(x, y, { overwriteLogits: true });
      backward(loss!);
      this.gpu.copy(loss!.buffer, 0, this.lossOut.buffer, 0, 4);
      this.opt.update(this.o.lr, { skipNonFinite: true, losses: this.lossOut });
      return this.opt.lastStep();
    });
    this.steps++;
    return { loss: r.losses[0]!, gradNorm: r.gradNorm };
  }

  /** A sample: the text's first token, then `n` tokens drawn at temperature 1 (the text has no <|endoftext|>). */
  async sample(n: number, seed: number): Promise<string> {
    const start = [this.ids[0]!];
    const out = [...start];
    for await (const t of generate(this.model, start, { maxNewTokens: n, temperature: 1, seed })) out.push(t);
    return this.enc.decode(out);
  }

  dispose(): void {
    this.opt.dispose();
    this.lossOut.dispose();
    this.model.dispose();
  }
}

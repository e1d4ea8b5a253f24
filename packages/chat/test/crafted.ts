// A GPT-2 made by hand for the chat tests: after <|im_sep|> (the end of the assistant's opener) greedy decoding
// gives a known reply, then <|im_end|> (or the reply's last token forever), whatever came before.
//
// Every block's weights and biases are zero, so each block adds nothing to the residual stream, and wpe is zero:
// the final LayerNorm sees wte[last token] and the logits are LN(wte[a]) · wte[v]. With the final LayerNorm's
// weight as a diagonal D (bias 0) and zero-mean rows (LayerNorm then only divides row a by its σ_a > 0), the logit
// of v after a is ⟨x_a, D x_v⟩ / σ_a: a symmetric form, scaled per row (which no argmax sees). A chain
// c0 → c1 → ... → cm (c0 = <|im_sep|>) is then greedy's path when the form has weight w_i between c_i and c_(i+1),
// nothing else, and w_i increases along the chain: from c_i the way forward (w_i) beats the way back (w_(i-1)).
// Each link gets two channels of its own with D = (+g, -g): c_i holds (s, s) there and c_(i+1) holds (s, -s),
// s = sqrt(w_i / 2), so ⟨x_ci, D x_ci+1⟩ = 2s² = w_i while each token's own ⟨x, D x⟩ gets s² - s² = 0. A loop on
// the last token is one more channel (+g) with weight above w_(m-1). One last channel with D = 0 makes every row's
// mean zero. Tokens outside the chain have zero rows: all their logits are 0 (uniform), and they score 0 after a
// chain token, below the way forward.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeConfig, paramOffsets, writeLlmcModel, type ModelFile } from '@wgpt/gpt2';
import { CHAT_FORMAT_FILE, type ChatFormat, writeChatFormat } from '../src/index.ts';

export interface CraftOptions {
  /** The reply, as text or as token ids (which need not be how the text encodes); its tokens must all differ. */
  reply: string | number[];
  /** After the reply: <|im_end|> (default), or its last token again and again. */
  end?: 'im_end' | 'loop';
  /** The model's context (default 64). */
  maxT?: number;
  /** About the logit of the next token of the chain (default 8; the other ~50k tokens have about 0). */
  logit?: number;
}

export interface CraftedModel extends ModelFile {
  /** The reply's tokens (with <|im_end|> last, for end: 'im_end'). */
  replyIds: number[];
}

export function craftChatModel(cf: ChatFormat, o: CraftOptions): CraftedModel {
  const replyIds = typeof o.reply === 'string' ? cf.encoding.encodeOrdinary(o.reply) : o.reply;
  const loop = o.end === 'loop';
  const chain = [cf.imSep, ...replyIds, ...(loop ? [] : [cf.imEnd])];
  if (new Set(chain).size !== chain.length) {
    throw new Error(`craftChatModel: the tokens of ${JSON.stringify(o.reply)} repeat (${replyIds.join(' ')})`);
  }
  const links = chain.length - 1;
  const channels = 2 * links + (loop ? 1 : 0) + 1;
  const C = Math.ceil(channels / 16) * 16;
  const config = makeConfig({ L: 1, NH: C / 16, C, V: cf.vocabSize, maxT: o.maxT ?? 64 });
  const offs = paramOffsets(config);
  const params = new Float32Array(Object.values(offs).reduce((a, p) => a + p.size, 0));
  const row = (id: number) => offs.wte!.offset + id * C;
  const w = (i: number) => 1 + (i + 1) / links; // increasing, in (1, 2]
  const D = new Float64Array(C);
  for (let i = 0; i < links; i++) {
    const s = Math.sqrt(w(i) / 2);
    const [a, b] = [row(chain[i]!), row(chain[i + 1]!)];
    params[a + 2 * i] = s;
    params[a + 2 * i + 1] = s;
    params[b + 2 * i] = s;
    params[b + 2 * i + 1] = -s;
    D[2 * i] = 1;
    D[2 * i + 1] = -1;
  }
  if (loop) {
    params[row(chain[links]!) + 2 * links] = Math.sqrt(w(links - 1) + 0.5);
    D[2 * links] = 1;
  }
  const sink = C - 1;
  for (const id of chain) {
    let sum = 0;
    for (let c = 0; c < C; c++) sum += params[row(id) + c]!;
    params[row(id) + sink] = -sum;
  }
  // Scale D so that the way forward from a typical chain token (|x|² ≈ 4 · 1.5) has a logit of about o.logit.
  const g = ((o.logit ?? 8) * Math.sqrt(6 / C)) / 1.5;
  for (let c = 0; c < C; c++) params[offs.lnfw!.offset + c] = g * D[c]!;
  for (const ln of ['ln1w', 'ln2w']) params.fill(1, offs[ln]!.offset, offs[ln]!.offset + offs[ln]!.size);
  const model = { config, params, replyIds: [...replyIds, ...(loop ? [] : [cf.imEnd])] };
  checkChain(model, chain, loop);
  return model;
}

/** The crafted model's greedy path, computed here in float64 as the model would: throws unless it is the chain. */
function checkChain(m: ModelFile, chain: number[], loop: boolean): void {
  const { C } = m.config;
  const offs = paramOffsets(m.config);
  const x = (id: number) => m.params.subarray(offs.wte!.offset + id * C, offs.wte!.offset + (id + 1) * C);
  const lnfw = m.params.subarray(offs.lnfw!.offset, offs.lnfw!.offset + C);
  for (let i = 0; i < chain.length - (loop ? 0 : 1); i++) {
    const a = x(chain[i]!);
    const mean = a.reduce((s, v) => s + v, 0) / C;
    const sigma = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / C + 1e-5);
    const logit = (id: number) => x(id).reduce((s, v, c) => s + ((a[c]! - mean) / sigma) * lnfw[c]! * v, 0);
    const want = chain[Math.min(i + 1, chain.length - 1)]!;
    // Every other token: the rest of the chain, and any one outside it (logit 0).
    const best = Math.max(0, ...chain.filter((t) => t !== want).map(logit));
    if (!(logit(want) > best + 0.1)) throw new Error(`craftChatModel: after ${chain[i]} greedy would not pick ${want}`);
  }
}

/**
 * Writes a crafted model as a checkpoint folder `dir` (model.bin, and chat_format.json unless `format` is false);
 * returns the folder.
 */
export function writeCraftedCheckpoint(dir: string, cf: ChatFormat, m: ModelFile, format = true): string {
  mkdirSync(dir, { recursive: true });
  writeLlmcModel(join(dir, 'model.bin'), m);
  if (format) writeChatFormat(join(dir, CHAT_FORMAT_FILE), cf);
  return dir;
}

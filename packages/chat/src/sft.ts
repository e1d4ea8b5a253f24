// Supervised fine-tuning on conversations: rows of rendered conversations as the GPT-2 trainer's batch source, and
// `sft()`, which readies a base model for the chat format and trains it with the loss on the assistants' tokens.
//
// The trainer is the pre-training one (same checkpoints, logs, plot, exact resume); only the batches differ. Each
// epoch places the conversations into rows anew (shuffled by seed + epoch), so a position in the data is
// (epoch, batch within the epoch), which checkpoints record as they record a shard loader's.
import { createHash } from 'node:crypto';
import { WgptError } from '@wgpt/base/errors';
import {
  type Batch,
  type BatchSource,
  type DataIdentity,
  generate,
  type GPT2,
  type LoaderState,
  type ModelFile,
  train,
  type TrainOptions,
  type TrainResult,
  type ValidationSource,
} from '@wgpt/gpt2';
import type { Gpu } from '@wgpt/runtime';
import { prepareModelForChat } from './embed.ts';
import { type ChatFormat, chatFormatJson, CHAT_FORMAT_FILE } from './format.ts';
import {
  newRowBatch,
  type PackMode,
  type PackStats,
  planRows,
  type RowBatch,
  type RowPlan,
  writeRows,
} from './pack.ts';
import { type ChatMessage, type RenderedConversation, renderPrompt } from './render.ts';

export interface ConversationRowsOptions {
  B: number;
  T: number;
  mode: PackMode;
  /** Places the conversations in a new order each epoch (seed + epoch); without it, in the given order. */
  shuffle: boolean;
  seed: number;
  truncate?: boolean;
  /** Names conversation i in errors (e.g. `data.jsonl:12`). */
  describe?: (i: number) => string;
  /** Names the data in the resume check (e.g. the file). */
  name: string;
  /** The input id of padding (any id of the model; its loss is masked). */
  padId?: number;
}

/**
 * Rendered conversations as B×T batches with a loss mask: the training source (shuffled per epoch) or the
 * validation one (unshuffled; reset() goes back to its first batch). When packing, `segments` and `positions` come
 * with each batch: which conversation of its row each token belongs to, and its position within it.
 */
export class ConversationRows implements BatchSource, ValidationSource {
  readonly B: number;
  readonly T: number;
  private st: LoaderState = { epoch: 0, shard: 0, window: 0 };
  private plan: { epoch: number; plan: RowPlan } | null = null;
  private readonly rows: RowBatch;
  private readonly ident: DataIdentity;

  constructor(
    readonly items: readonly RenderedConversation[],
    readonly o: ConversationRowsOptions,
  ) {
    if (items.length === 0) throw new WgptError(`${o.name}: no conversations to train on`);
    this.B = o.B;
    this.T = o.T;
    this.rows = newRowBatch(o.B, o.T);
    // Planning the first epoch checks every conversation (too long without truncate: an error naming it).
    this.planFor(0);
    const h = createHash('sha256');
    let tokens = 0;
    for (const it of items) {
      h.update(new Uint8Array(it.ids.buffer, it.ids.byteOffset, it.ids.byteLength)).update(it.mask);
      tokens += it.ids.length;
    }
    this.ident = { name: `${o.name} (${items.length} conversations, ${o.mode})`, tokens, sample: h.digest('hex') };
  }

  /** The counts of the first epoch's rows (padding, wasted share, loss tokens, truncated). */
  get stats(): PackStats {
    return this.planFor(0).stats;
  }

  /** Batches in the first epoch (each epoch's differ only by a few rows when packing). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.planFor(0).rows.length / this.B);
  }

  get state(): LoaderState {
    return { ...this.st };
  }

  restore(s: LoaderState): void {
    if (!(Number.isSafeInteger(s.epoch) && s.epoch >= 0 && Number.isSafeInteger(s.window) && s.window >= 0)) {
      throw new WgptError(`${this.o.name}: the checkpoint's data position ${JSON.stringify(s)} is not a valid one`);
    }
    const batches = Math.ceil(this.planFor(s.epoch).rows.length / this.B);
    if (s.window >= batches) {
      throw new WgptError(
        `${this.o.name}: the checkpoint's position (batch ${s.window} of epoch ${s.epoch}) is past the ` +
          `${batches} batches of that epoch: it was made from other data`,
      );
    }
    this.st = { epoch: s.epoch, shard: 0, window: s.window };
  }

  reset(): void {
    this.st = { epoch: 0, shard: 0, window: 0 };
  }

  identity(): DataIdentity[] {
    return [this.ident];
  }

  next(): Batch {
    const plan = this.planFor(this.st.epoch);
    writeRows(plan, this.items, this.st.window * this.B, this.rows, this.o.padId ?? 0);
    const r = this.rows;
    const batch: Batch = {
      inputs: r.inputs.slice(),
      // Positions whose loss does not count have target -1 in the rows: any id will do there, 0 is one.
      targets: r.targets.map((t) => (t < 0 ? 0 : t)),
      mask: r.mask.slice(),
      // Padded rows need neither: one conversation from position 0, and the causal mask keeps the padding after
      // it out of its attention.
      ...(this.o.mode === 'pack' ? { segments: r.segments.slice(), positions: r.positions.slice() } : {}),
    };
    this.st.window++;
    if (this.st.window * this.B >= plan.rows.length) this.st = { epoch: this.st.epoch + 1, shard: 0, window: 0 };
    return batch;
  }

  private planFor(epoch: number): RowPlan {
    if (this.plan?.epoch !== epoch) {
      const { T, mode, truncate, describe } = this.o;
      const seed = this.o.shuffle ? (this.o.seed + epoch) >>> 0 : undefined;
      this.plan = { epoch, plan: planRows(this.items, { T, mode, seed, truncate, describe }) };
    }
    return this.plan.plan;
  }
}

/** A question and the reply the data gives to it: the conversation up to the reply, and the reply's text. */
export interface AnswerCase {
  messages: ChatMessage[];
  expected: string;
}

/**
 * The first question of a conversation and its reply as an answer case: the messages before the first assistant
 * message that follows a user message, and that message's content (null when there is none).
 */
export function firstAnswerCase(messages: readonly ChatMessage[]): AnswerCase | null {
  for (let i = 1; i < messages.length; i++) {
    if (messages[i]!.role === 'assistant' && messages[i - 1]!.role === 'user') {
      return { messages: messages.slice(0, i), expected: messages[i]!.content };
    }
  }
  return null;
}

export interface AnswerResult {
  case: AnswerCase;
  reply: string;
  correct: boolean;
}

/**
 * Greedy replies to each case (stopping at <|im_end|> or after `maxTokens`), and whether each equals the expected
 * reply exactly. Replies are decoded with undecodable bytes as U+FFFD, so such a reply is never correct.
 */
export async function answerCases(
  model: GPT2,
  cf: ChatFormat,
  cases: readonly AnswerCase[],
  maxTokens = 32,
): Promise<AnswerResult[]> {
  const out: AnswerResult[] = [];
  const room = model.config.maxT;
  for (const c of cases) {
    const prompt = Array.from(renderPrompt(cf, c.messages));
    if (prompt.length >= room) {
      out.push({ case: c, reply: '', correct: false });
      continue;
    }
    const ids: number[] = [];
    const tokens = generate(model, prompt, {
      maxNewTokens: Math.min(maxTokens, room - prompt.length),
      temperature: 0,
      stopTokens: [cf.imEnd],
    });
    for await (const id of tokens) {
      if (id === cf.imEnd) break;
      ids.push(id);
    }
    const reply = decodeReply(cf, ids);
    out.push({ case: c, reply, correct: reply === c.expected });
  }
  return out;
}

/** The text of reply tokens, undecodable bytes as U+FFFD. */
export function decodeReply(cf: ChatFormat, ids: readonly number[]): string {
  const parts: Uint8Array[] = [];
  for (const id of ids) {
    try {
      parts.push(cf.encoding.tokenBytes(id));
    } catch {
      parts.push(new TextEncoder().encode('\uFFFD'));
    }
  }
  return new TextDecoder('utf-8').decode(Buffer.concat(parts));
}

export interface SftOptions extends Omit<
  TrainOptions,
  'config' | 'init' | 'trainFiles' | 'valFiles' | 'trainSource' | 'valSource' | 'eotToken'
> {
  /** The base model (a pre-trained GPT-2); its vocabulary grows to hold the chat markers when it must. */
  base: ModelFile;
  cf: ChatFormat;
  train: readonly RenderedConversation[];
  val: readonly RenderedConversation[];
  /** Names training conversation i in errors (its file and line). */
  describe?: (i: number) => string;
  /** Names the data in logs and in the resume check. */
  dataName: string;
  mode: PackMode;
  truncate?: boolean;
  /** A question whose greedy reply is printed as the sample every `sampleEvery` steps. */
  sampleMessages?: ChatMessage[];
}

export interface SftResult extends TrainResult {
  stats: PackStats;
  valStats: PackStats | null;
  /** Token ids whose embedding rows were new and initialised (the markers past the base model's vocabulary). */
  initialised: number[];
}

/** Fine-tunes `base` on the conversations; checkpoints carry the chat format (chat_format.json) beside model.bin. */
export async function sft(gpu: Gpu, o: SftOptions): Promise<SftResult> {
  const log = o.log ?? ((s: string) => console.log(s));
  const { model: ready, initialised } = prepareModelForChat(o.base, o.cf, o.seed);
  if (ready.config.maxT < o.T) {
    throw new WgptError(`-T ${o.T} exceeds the base model's context ${ready.config.maxT}`);
  }
  const rowOpts = { B: o.B, T: o.T, mode: o.mode, truncate: o.truncate, seed: o.seed, padId: 0 };
  const trainSource = new ConversationRows(o.train, {
    ...rowOpts,
    shuffle: true,
    describe: o.describe,
    name: o.dataName,
  });
  const valSource = o.val.length
    ? new ConversationRows(o.val, { ...rowOpts, shuffle: false, name: `${o.dataName} (held out)` })
    : null;
  const s = trainSource.stats;
  log(
    `rows of T=${o.T}, ${o.mode === 'pack' ? 'packed' : 'padded'}: ${s.conversations} conversations in ${s.rows} ` +
      `rows, ${(100 * s.wastedShare).toFixed(1)}% padding, loss on ${s.lossTokens} tokens` +
      (s.truncated ? `, ${s.truncated} conversations truncated (${s.truncatedTokens} tokens cut)` : '') +
      (valSource ? `; ${o.val.length} held out for validation` : ''),
  );
  if (initialised.length) {
    log(`new embedding rows for the chat markers ${initialised.join(', ')} (the mean of the others, plus noise)`);
  }
  const sampleMessages = o.sampleMessages;
  const r = await train(gpu, {
    ...o,
    config: ready.config,
    init: ready.params,
    trainSource,
    valSource: valSource ?? undefined,
    eotToken: -1,
    sampler: sampleMessages
      ? async (model) => {
          const [res] = await answerCases(model, o.cf, [{ messages: sampleMessages, expected: '' }], o.sampleTokens);
          const q = sampleMessages[sampleMessages.length - 1]!.content;
          return `user: ${q}\nassistant: ${res!.reply}`;
        }
      : undefined,
    sampleEvery: sampleMessages ? o.sampleEvery : 0,
    checkpointFiles: { ...o.checkpointFiles, [CHAT_FORMAT_FILE]: chatFormatJson(o.cf) },
  });
  return { ...r, stats: s, valStats: valSource?.stats ?? null, initialised };
}

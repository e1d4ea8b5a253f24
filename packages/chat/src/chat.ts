// A conversation with a GPT-2 in ChatML: the session behind `wgpt chat` (the REPL and --once).
//
// The conversation is kept as token ids, not text: a reply is kept as the ids that were sampled (re-encoding its
// text could give other ids), so every prompt starts with exactly the tokens of the previous one and the KV cache,
// kept across turns, is reused: a turn prefills only what is new (the last reply's <|im_end|>, the question and the
// assistant's opener). A prompt always leaves room for a whole reply of maxTokens: when the conversation would not,
// its oldest turns (a question and its reply) are dropped, the system message is kept. The turns that remain then
// sit at other positions, so that turn prefills everything after the system message again (at most maxT tokens).
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { WgptError } from '@wgpt/base/errors';
import { checkpointModelPath, generate, type GPT2, type GPT2Config, KVCache } from '@wgpt/gpt2';
import { CHAT_FORMAT_FILE, type ChatFormat, checkChatFormat, IM_END, IM_SEP, IM_START } from './format.ts';
import { renderConversation, renderPrompt } from './render.ts';

export interface ChatSettings {
  /** 0: greedy. */
  temperature: number;
  topK?: number;
  topP?: number;
  /** The most tokens of one reply; every prompt leaves room for this many. */
  maxTokens: number;
  /** Reply n (from 0) since the start or the last reset samples with seed + n. */
  seed: number;
}

/** Why a reply ended: its <|im_end|>, the maxTokens limit, or the caller's shouldStop (Ctrl-C). */
export type StopReason = 'im_end' | 'max_tokens' | 'interrupted';

export interface ChatReply {
  /** The tokens the reply continued: system message, kept turns, the question, the assistant's opener. */
  promptIds: number[];
  /** The sampled tokens, the closing <|im_end|> included when the reply stopped there. */
  ids: number[];
  /** The reply's text (without <|im_end|>); bytes that are not UTF-8 (and unknown ids) become U+FFFD. */
  text: string;
  stopped: StopReason;
  /** Earlier turns dropped before this reply so that it fits the context. */
  dropped: number;
  /** Earlier turns kept in the prompt. */
  kept: number;
}

export interface AskOptions {
  /** Called with each new piece of the reply's text as soon as it is valid UTF-8. */
  onText?: (text: string) => void;
  /** Polled after each token: true ends the reply there. */
  shouldStop?: () => boolean;
}

const REPLACEMENT = new TextEncoder().encode('\uFFFD');

/**
 * A reply's text as its tokens arrive: each token's bytes go through a streaming UTF-8 decoder, so a character
 * split over tokens appears once it is whole, and bytes that cannot be UTF-8 become U+FFFD (as in decode()).
 */
export class ReplyText {
  private readonly decoder = new TextDecoder('utf-8');
  text = '';

  constructor(private readonly cf: ChatFormat) {}

  /** The text that token `id` completes (often all of it, sometimes none). */
  push(id: number): string {
    let bytes: Uint8Array;
    try {
      bytes = this.cf.encoding.tokenBytes(id);
    } catch {
      bytes = REPLACEMENT; // an id the encoding has no token for (a model whose V is larger, a gap in the ids)
    }
    return this.add(this.decoder.decode(bytes, { stream: true }));
  }

  /** What an unfinished character at the end leaves: U+FFFD, or nothing. */
  end(): string {
    return this.add(this.decoder.decode());
  }

  private add(s: string): string {
    this.text += s;
    return s;
  }
}

/** A conversation that does not fit in the model's context, whatever is dropped. */
export class ContextError extends WgptError {}

/**
 * A conversation with a model in a chat format: ask() answers a question and keeps the turn. Holds a KV cache on
 * the model's GPU until dispose().
 */
export class ChatSession {
  /** temperature, topK and topP may change between replies; maxTokens is fixed (the context's room counts on it). */
  readonly settings: Omit<ChatSettings, 'maxTokens'> & { readonly maxTokens: number };
  private systemText: string | null = null;
  private systemIds: number[] = [];
  /** Each turn: the user's message and the assistant's reply, rendered and closed with <|im_end|>. */
  private turns: number[][] = [];
  private replies = 0;
  private readonly opener: number[];
  private readonly reuse: { cache: KVCache; ids: number[] };

  constructor(
    readonly model: GPT2,
    readonly cf: ChatFormat,
    settings: ChatSettings,
    system: string | null = null,
  ) {
    const { V, maxT } = model.config;
    if (V < cf.vocabSize) {
      throw new WgptError(`chat: the model's vocabulary V=${V} does not hold the chat markers (V ≥ ${cf.vocabSize})`);
    }
    this.settings = { ...settings };
    if (!Number.isInteger(settings.maxTokens) || settings.maxTokens < 1 || settings.maxTokens >= maxT) {
      throw new WgptError(`chat: maxTokens ${settings.maxTokens} must be in [1, ${maxT - 1}] (the context is ${maxT})`);
    }
    this.opener = Array.from(renderPrompt(cf, []));
    this.setSystem(system);
    this.reuse = { cache: new KVCache(model.gpu, model.config, 1), ids: [] };
  }

  get system(): string | null {
    return this.systemText;
  }

  /** The number of turns (question and reply) kept. */
  get turnCount(): number {
    return this.turns.length;
  }

  /** The conversation's tokens so far: system message and kept turns. */
  get ids(): number[] {
    return [...this.systemIds, ...this.turns.flat()];
  }

  /**
   * Sets (null: removes) the system message; the turns are kept. Refused when the system message would leave no
   * room for an empty question and a whole reply in the context.
   */
  setSystem(text: string | null): void {
    const ids = text === null ? [] : this.message('system', text);
    const least = ids.length + this.message('user', '').length + this.opener.length + this.settings.maxTokens;
    if (least > this.model.config.maxT) {
      throw new ContextError(
        `the system message is ${ids.length} tokens: with a question and a reply of up to ${this.settings.maxTokens} ` +
          `tokens it passes the model's context of ${this.model.config.maxT} tokens; shorten it or lower --max-tokens`,
      );
    }
    this.systemText = text;
    this.systemIds = ids;
  }

  /** Forgets the turns (the system message stays); the next reply samples with the seed again. */
  reset(): void {
    this.turns = [];
    this.replies = 0;
  }

  /**
   * Answers `question`, streaming the text through onText. The turn is kept however the reply ended (shouldStop is
   * polled after each token, so an interrupted reply has at least one).
   */
  async ask(question: string, opts: AskOptions = {}): Promise<ChatReply> {
    const { maxT } = this.model.config;
    const { maxTokens } = this.settings;
    const user = this.message('user', question);
    const fixed = this.systemIds.length + user.length + this.opener.length;
    if (fixed + maxTokens > maxT) {
      throw new ContextError(
        `the question is ${user.length} tokens: with the system message (${this.systemIds.length}) and a reply of up ` +
          `to ${maxTokens} tokens it passes the model's context of ${maxT} tokens; shorten it or lower --max-tokens`,
      );
    }
    let history = this.turns.reduce((n, t) => n + t.length, 0);
    let dropped = 0;
    while (fixed + history + maxTokens > maxT) history -= this.turns[dropped++]!.length;
    this.turns.splice(0, dropped);
    const kept = this.turns.length;
    const promptIds = [...this.systemIds, ...this.turns.flat(), ...user, ...this.opener];

    const ids: number[] = [];
    const text = new ReplyText(this.cf);
    let stopped: StopReason = 'max_tokens';
    const s = this.settings;
    const tokens = generate(this.model, promptIds, {
      maxNewTokens: maxTokens,
      temperature: s.temperature,
      topK: s.topK,
      topP: s.topP,
      seed: s.seed + this.replies,
      stopTokens: [this.cf.imEnd],
      reuse: this.reuse,
    });
    for await (const id of tokens) {
      ids.push(id);
      if (id === this.cf.imEnd) {
        stopped = 'im_end';
        break;
      }
      const piece = text.push(id);
      if (piece) opts.onText?.(piece);
      if (opts.shouldStop?.()) {
        stopped = 'interrupted';
        break;
      }
    }
    const rest = text.end();
    if (rest) opts.onText?.(rest);
    this.replies++;
    // A reply that did not end with <|im_end|> is closed with one, so the conversation stays well formed.
    const closed = stopped === 'im_end' ? ids : [...ids, this.cf.imEnd];
    this.turns.push([...user, ...this.opener, ...closed]);
    return { promptIds, ids, text: text.text, stopped, dropped, kept };
  }

  dispose(): void {
    this.reuse.cache.dispose();
  }

  private message(role: 'system' | 'user', content: string): number[] {
    return Array.from(renderConversation(this.cf, [{ role, content }]).ids);
  }
}

/** The chat_format.json that belongs to a checkpoint: in its folder, or beside its model file. */
export function chatFormatPath(checkpoint: string): string {
  const model =
    !existsSync(checkpoint) || statSync(checkpoint).isDirectory() ? checkpointModelPath(checkpoint) : checkpoint;
  return join(dirname(model), CHAT_FORMAT_FILE);
}

/**
 * Checks that a model can chat in `cf`: against the checkpoint's chat_format.json when it has one, and in any case
 * that its vocabulary holds the three markers. `tokenizer` is what --tokenizer said, for the messages.
 */
export function checkModelForChat(checkpoint: string, config: GPT2Config, cf: ChatFormat, tokenizer: string): void {
  const saved = chatFormatPath(checkpoint);
  if (existsSync(saved)) checkChatFormat(saved, cf);
  if (config.V >= cf.vocabSize) return;
  const markers = `${IM_START} ${IM_END} ${IM_SEP} are ids ${cf.imStart}, ${cf.imEnd}, ${cf.imSep}`;
  throw new WgptError(
    `${checkpoint}: the model's vocabulary (V=${config.V}) is too small for the chat markers of ${tokenizer} ` +
      `(${markers}; V ≥ ${cf.vocabSize} needed): it was not fine-tuned for chat. Fine-tune it on conversations ` +
      '(ChatML) first, or give the --tokenizer it was fine-tuned with',
  );
}

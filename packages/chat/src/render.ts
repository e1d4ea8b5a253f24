// Rendering conversations to token ids in ChatML, with the loss mask of supervised fine-tuning.
import { WgptError } from '@wgpt/base/errors';
import { type ChatFormat, IM_END, IM_SEP, IM_START } from './format.ts';

export type ChatRole = 'system' | 'user' | 'assistant';
export const CHAT_ROLES: readonly ChatRole[] = ['system', 'user', 'assistant'];

export interface ChatMessage {
  role: ChatRole;
  /** Kept exactly as given: never trimmed, and encoded as plain text whatever it holds. */
  content: string;
}

export interface RenderedConversation {
  /** The conversation's token ids. */
  ids: Int32Array;
  /**
   * Per token: 1 for the tokens the model learns to produce, which are each assistant message's content and its
   * `<|im_end|>`; 0 for every header (`<|im_start|>role<|im_sep|>`) and for system and user messages. The loss at
   * input position i is on predicting ids[i + 1], so it counts where mask[i + 1] is 1 (see trainingExample).
   */
  mask: Uint8Array;
}

export function isChatRole(x: unknown): x is ChatRole {
  return typeof x === 'string' && (CHAT_ROLES as readonly string[]).includes(x);
}

/** Throws unless every message has a known role and string content (`where` prefixes the message). */
export function checkMessages(messages: readonly ChatMessage[], where = 'conversation'): void {
  if (!Array.isArray(messages)) throw new WgptError(`${where}: "messages" must be a list of messages`);
  messages.forEach((m, i) => {
    if (!isChatRole(m?.role)) {
      throw new WgptError(
        `${where}: message ${i + 1} has role ${JSON.stringify(m?.role)}; expected ${CHAT_ROLES.join(', ')}`,
      );
    }
    if (typeof m.content !== 'string') {
      throw new WgptError(`${where}: message ${i + 1} (${m.role}) has no text content (a string)`);
    }
  });
}

/**
 * The ChatML text of a conversation, markers included: what render() encodes, for display and for tests against
 * other tokenizers (encode it with the three markers allowed as special tokens).
 */
export function chatmlText(messages: readonly ChatMessage[], opts: { prompt?: boolean } = {}): string {
  let s = '';
  for (const m of messages) s += `${IM_START}${m.role}${IM_SEP}${m.content}${IM_END}`;
  if (opts.prompt) s += `${IM_START}assistant${IM_SEP}`;
  return s;
}

/**
 * Renders messages to ids and loss mask. With `prompt`, the assistant's opener `<|im_start|>assistant<|im_sep|>`
 * follows (what a model continues at inference; its tokens are not trained).
 */
export function renderConversation(
  cf: ChatFormat,
  messages: readonly ChatMessage[],
  opts: { prompt?: boolean } = {},
): RenderedConversation {
  checkMessages(messages);
  const enc = cf.encoding;
  const ids: number[] = [];
  const mask: number[] = [];
  const push = (toks: readonly number[], m: 0 | 1) => {
    for (const t of toks) {
      ids.push(t);
      mask.push(m);
    }
  };
  const header = (role: string) => {
    push([cf.imStart], 0);
    push(enc.encodeOrdinary(role), 0);
    push([cf.imSep], 0);
  };
  for (const m of messages) {
    header(m.role);
    const trained = m.role === 'assistant' ? 1 : 0;
    push(enc.encodeOrdinary(m.content), trained);
    push([cf.imEnd], trained);
  }
  if (opts.prompt) header('assistant');
  return { ids: Int32Array.from(ids), mask: Uint8Array.from(mask) };
}

/** The ids a model continues to answer: the conversation so far, then the assistant's opener. */
export function renderPrompt(cf: ChatFormat, messages: readonly ChatMessage[]): Int32Array {
  return renderConversation(cf, messages, { prompt: true }).ids;
}

export interface TrainingExample {
  /** ids[0 .. n-2]. */
  inputs: Int32Array;
  /** ids[1 .. n-1]: the token each input position predicts. */
  targets: Int32Array;
  /** mask[1 .. n-1]: 1 where the loss counts. */
  lossMask: Uint8Array;
}

/** Inputs, next-token targets and the loss mask aligned with the inputs, for one conversation on its own. */
export function trainingExample(r: RenderedConversation): TrainingExample {
  const n = r.ids.length;
  if (n < 2) throw new WgptError(`a conversation of ${n} token(s) has nothing to predict`);
  return { inputs: r.ids.slice(0, n - 1), targets: r.ids.slice(1), lossMask: r.mask.slice(1) };
}

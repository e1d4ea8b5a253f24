// Probing what a model knows: k sampled replies per question, each judged against the reference answer, and the
// question classified from the verdicts (known, unknown, uncertain). Questions come from a JSONL file of
// conversations ({"messages": [...]} as questionJsonl writes them); the reference is the line's "answer" when it
// has one, else the first assistant reply.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { systemErrorReason, WgptError } from '@wgpt/base/errors';
import { generate, type GPT2 } from '@wgpt/gpt2';
import { ConversationDataError, parseConversationLine } from './data.ts';
import type { ChatFormat } from './format.ts';
import type { Judge, Verdict } from './judge.ts';
import { type AskedQuestion, type Classified, type ClassifyOptions, classify, type Knowledge } from './refusal.ts';
import { type ChatMessage, checkMessages, renderPrompt } from './render.ts';
import { decodeReply, firstAnswerCase } from './sft.ts';

export interface ProbeQuestion {
  /** The messages up to the question, which the model continues. */
  messages: ChatMessage[];
  reference: string;
  /** The line's own reply to the question (what fine-tuning on a known question keeps). */
  reply: string;
  /** `file:line`. */
  where: string;
  /** The line's own fields beside the messages (person, fact, answer), kept for the output. */
  extra: Record<string, unknown>;
}

/** The questions of a JSONL file; a line that is not a conversation with a question and an answer is an error. */
export async function readProbeQuestions(file: string): Promise<ProbeQuestion[]> {
  const out: ProbeQuestion[] = [];
  let lineNo = 0;
  try {
    const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const text of lines) {
      lineNo++;
      if (text.trim() === '') continue;
      let messages: ChatMessage[];
      try {
        [messages] = parseConversationLine(text, file, lineNo, 'openai').conversations as [ChatMessage[]];
      } catch (e) {
        // Its advice names --skip-invalid, which probing has not: every question is to be asked.
        if (e instanceof ConversationDataError)
          throw new WgptError(e.message.replace(/; fix the line, .*$/, '; fix the line'));
        throw e;
      }
      const c = firstAnswerCase(messages);
      if (c === null) throw new WgptError(`${file}:${lineNo}: no user question answered by the assistant`);
      const extra = JSON.parse(text) as Record<string, unknown>;
      delete extra.messages;
      if (extra.answer !== undefined && (typeof extra.answer !== 'string' || extra.answer.trim() === '')) {
        throw new WgptError(`${file}:${lineNo}: "answer" must be a non-empty string (the reference answer)`);
      }
      const reference = (extra.answer as string | undefined) ?? c.expected;
      out.push({ messages: c.messages, reference, reply: c.expected, where: `${file}:${lineNo}`, extra });
    }
  } catch (e) {
    const reason = systemErrorReason(e);
    if (reason !== null) throw new WgptError(`${file}: ${reason}`);
    throw e;
  }
  if (out.length === 0) throw new WgptError(`${file}: no questions (${lineNo} lines)`);
  return out;
}

export interface SampleReplyOptions {
  samples: number;
  temperature: number;
  maxTokens: number;
  seed: number;
}

/**
 * `samples` replies to the messages, each sampled with its own seed (seed, seed + 1, ...), each ending at
 * <|im_end|> or after maxTokens (fewer where the context runs out; none fits: empty replies).
 */
export async function sampleReplies(
  model: GPT2,
  cf: ChatFormat,
  messages: readonly ChatMessage[],
  o: SampleReplyOptions,
): Promise<string[]> {
  const prompt = Array.from(renderPrompt(cf, messages));
  const room = model.config.maxT - prompt.length;
  const replies: string[] = [];
  for (let s = 0; s < o.samples; s++) {
    if (room <= 0) {
      replies.push('');
      continue;
    }
    const ids: number[] = [];
    const tokens = generate(model, prompt, {
      maxNewTokens: Math.min(o.maxTokens, room),
      temperature: o.temperature,
      seed: o.seed + s,
      stopTokens: [cf.imEnd],
    });
    for await (const id of tokens) {
      if (id === cf.imEnd) break;
      ids.push(id);
    }
    replies.push(decodeReply(cf, ids));
  }
  return replies;
}

export interface ProbeResult extends Classified<ProbeQuestion> {
  replies: string[];
}

/** Samples, judges and classifies every question; question i samples from seed + i * samples on. */
export async function probe(
  model: GPT2,
  cf: ChatFormat,
  questions: readonly ProbeQuestion[],
  judge: Judge,
  o: Omit<SampleReplyOptions, 'seed'> & ClassifyOptions & { seed: number; onResult?: (r: ProbeResult) => void },
): Promise<ProbeResult[]> {
  const out: ProbeResult[] = [];
  for (const [i, q] of questions.entries()) {
    const replies = await sampleReplies(model, cf, q.messages, { ...o, seed: o.seed + i * o.samples });
    const verdicts: Verdict[] = replies.map((r) => judge.judge(r, q.reference));
    const r = { ...classify(q, verdicts, o), replies };
    o.onResult?.(r);
    out.push(r);
  }
  return out;
}

/** The output line of a probed question: its fields, the question, the replies and their verdicts, the class. */
export function probeJsonl(r: ProbeResult): string {
  const q = r.question;
  return `${JSON.stringify({
    ...q.extra,
    messages: q.messages,
    reference: q.reference,
    reply: q.reply,
    replies: r.replies,
    verdicts: r.verdicts.map((v) => v.kind),
    rightFraction: r.rightFraction,
    knowledge: r.knowledge,
  })}\n`;
}

const KNOWLEDGE: readonly Knowledge[] = ['known', 'unknown', 'uncertain'];

/** The lines of a `wgpt probe` output: each question's messages and reply, and its class. */
export async function readProbed(file: string): Promise<{ question: AskedQuestion; knowledge: Knowledge }[]> {
  const out: { question: AskedQuestion; knowledge: Knowledge }[] = [];
  let lineNo = 0;
  try {
    const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
    for await (const text of lines) {
      lineNo++;
      if (text.trim() === '') continue;
      const where = `${file}:${lineNo}`;
      let o: { messages?: unknown; reply?: unknown; knowledge?: unknown };
      try {
        o = JSON.parse(text) as typeof o;
      } catch (e) {
        throw new WgptError(`${where}: not JSON (${(e as Error).message}); expected a line of wgpt probe's output`);
      }
      const bad = (what: string) => new WgptError(`${where}: ${what}; expected a line of wgpt probe's output`);
      if (!Array.isArray(o?.messages) || o.messages.length === 0) throw bad('no "messages"');
      checkMessages(o.messages as ChatMessage[], where);
      if (typeof o.reply !== 'string') throw bad('no "reply"');
      if (!KNOWLEDGE.includes(o.knowledge as Knowledge)) throw bad(`"knowledge" is not one of ${KNOWLEDGE.join(', ')}`);
      out.push({
        question: { messages: o.messages as ChatMessage[], reply: o.reply },
        knowledge: o.knowledge as Knowledge,
      });
    }
  } catch (e) {
    const reason = systemErrorReason(e);
    if (reason !== null) throw new WgptError(`${file}: ${reason}`);
    throw e;
  }
  if (out.length === 0) throw new WgptError(`${file}: no probed questions (${lineNo} lines)`);
  return out;
}

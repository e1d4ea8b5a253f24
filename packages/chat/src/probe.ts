// Probing what a model knows: k sampled replies per question, each judged against the reference answer, and the
// question classified from the verdicts (known, unknown, uncertain). Questions come from a JSONL file of
// conversations ({"messages": [...]} as questionJsonl writes them); the reference is the line's "answer" when it
// has one, else the first assistant reply.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { systemErrorReason, WgptError } from '@wgpt/base/errors';
import { generateBatch, type GPT2 } from '@wgpt/gpt2';
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

/** The most rows one batched decode call runs: enough to pay for the call's fixed costs, few enough for memory. */
const MAX_ROWS = 128;

/**
 * `samples` replies to each question's messages: question i's sample j drawn with seed + i * samples + j, each
 * reply ending at <|im_end|> or after maxTokens (fewer where the context runs out; none fits: empty replies).
 * Questions whose prompts have the same length are answered together as the rows of one batch (generateBatch),
 * which gives each row the tokens generate() would give it alone.
 */
export async function sampleReplies(
  model: GPT2,
  cf: ChatFormat,
  questions: readonly (readonly ChatMessage[])[],
  o: SampleReplyOptions,
): Promise<string[][]> {
  const k = o.samples;
  const out: string[][] = questions.map(() => []);
  const rows = new Map<number, { q: number; s: number; prompt: number[] }[]>();
  for (const [q, messages] of questions.entries()) {
    const prompt = Array.from(renderPrompt(cf, messages));
    if (prompt.length >= model.config.maxT) {
      out[q] = Array.from({ length: k }, () => '');
      continue;
    }
    const group = rows.get(prompt.length) ?? [];
    for (let s = 0; s < k; s++) group.push({ q, s, prompt });
    rows.set(prompt.length, group);
  }
  for (const group of rows.values()) {
    for (let at = 0; at < group.length; at += MAX_ROWS) {
      const part = group.slice(at, at + MAX_ROWS);
      const ids = await generateBatch(
        model,
        part.map((r) => r.prompt),
        {
          maxNewTokens: o.maxTokens,
          temperature: o.temperature,
          seeds: part.map((r) => o.seed + r.q * k + r.s),
          stopTokens: [cf.imEnd],
        },
      );
      for (const [i, r] of part.entries()) {
        const reply = ids[i]!;
        if (reply.at(-1) === cf.imEnd) reply.pop();
        out[r.q]![r.s] = decodeReply(cf, reply);
      }
    }
  }
  return out;
}

export interface ProbeResult extends Classified<ProbeQuestion> {
  replies: string[];
}

/** Samples (see sampleReplies), judges and classifies every question. */
export async function probe(
  model: GPT2,
  cf: ChatFormat,
  questions: readonly ProbeQuestion[],
  judge: Judge,
  o: SampleReplyOptions & ClassifyOptions & { onResult?: (r: ProbeResult) => void },
): Promise<ProbeResult[]> {
  const replies = await sampleReplies(
    model,
    cf,
    questions.map((q) => q.messages),
    o,
  );
  return questions.map((q, i) => {
    const verdicts: Verdict[] = replies[i]!.map((r) => judge.judge(r, q.reference));
    const r = { ...classify(q, verdicts, o), replies: replies[i]! };
    o.onResult?.(r);
    return r;
  });
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

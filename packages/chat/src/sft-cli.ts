// `wgpt sft` (supervised fine-tuning of a GPT-2 checkpoint on conversations) and `wgpt chat eval` (exact-answer
// accuracy of greedy replies).
import { join } from 'node:path';
import { intArg, numArg, stopOnSignals, UsageError } from '@wgpt/base';
import { WgptError } from '@wgpt/base/errors';
import { addRunOptions, checkOutDir, GPT2, loadModelFile, runOptions, type RunFlags } from '@wgpt/gpt2';
import { Gpu } from '@wgpt/runtime';
import { type Command, Option } from 'commander';
import { checkModelForChat } from './chat.ts';
import { prepareModelForChat } from './embed.ts';
import { CONVERSATION_FORMATS, type ConversationFormat, newReadStats, readConversations } from './data.ts';
import { type ChatFormat, resolveChatFormat } from './format.ts';
import type { PackMode } from './pack.ts';
import { type ChatMessage, type RenderedConversation, renderConversation } from './render.ts';
import { Rng } from './rng.ts';
import { type AnswerCase, type AnswerResult, answerCases, firstAnswerCase, sft } from './sft.ts';
import { synthConversations } from './synth.ts';

export interface LoadedConversations {
  messages: ChatMessage[][];
  rendered: RenderedConversation[];
  where: string[];
  name: string;
}

/** Conversations from a JSONL file (every line checked), or `synth` synthetic ones from `seed` without a file. */
export async function loadConversations(
  cf: ChatFormat,
  o: { file?: string; format?: ConversationFormat | 'auto'; skipInvalid?: boolean; synth: number; seed: number },
  log: (s: string) => void,
): Promise<LoadedConversations> {
  const out: LoadedConversations = { messages: [], rendered: [], where: [], name: '' };
  if (o.file === undefined) {
    let i = 0;
    for (const m of synthConversations(o.synth, o.seed)) {
      out.messages.push(m);
      out.where.push(`synthetic conversation ${i++}`);
    }
    out.name = `synthetic (wgpt chat synth --count ${o.synth} --seed ${o.seed})`;
  } else {
    const stats = newReadStats();
    for await (const c of readConversations(o.file, { format: o.format, skipInvalid: o.skipInvalid, stats })) {
      out.messages.push(c.messages);
      out.where.push(c.path > 0 ? `${c.file}:${c.line} (path ${c.path + 1})` : `${c.file}:${c.line}`);
    }
    const skipped = Object.entries(stats.skipped).filter(([, n]) => n > 0);
    log(
      `${o.file}: ${stats.conversations} conversations from ${stats.lines} lines` +
        (skipped.length ? `; skipped ${skipped.map(([r, n]) => `${r} ${n}`).join(', ')}` : ''),
    );
    if (out.messages.length === 0) throw new WgptError(`${o.file}: no conversations (${stats.lines} lines)`);
    out.name = o.file;
  }
  out.rendered = out.messages.map((m) => renderConversation(cf, m));
  return out;
}

/** Splits off `frac` of the conversations (at least one when frac > 0 and there are two), chosen by seed. */
export function holdOut<T>(items: readonly T[], frac: number, seed: number): { train: T[]; val: T[] } {
  const k = frac > 0 && items.length > 1 ? Math.min(items.length - 1, Math.max(1, Math.round(items.length * frac))) : 0;
  const order = new Rng(seed).shuffle(Array.from({ length: items.length }, (_, i) => i));
  const val = new Set(order.slice(0, k));
  return { train: items.filter((_, i) => !val.has(i)), val: items.filter((_, i) => val.has(i)) };
}

interface SftFlags extends RunFlags {
  checkpoint: string;
  data?: string;
  valData?: string;
  valFrac: number;
  synth: number;
  format: ConversationFormat | 'auto';
  skipInvalid?: boolean;
  tokenizer: string;
  rows: PackMode;
  truncate?: boolean;
  overwrite?: boolean;
}

async function sftCommand(o: SftFlags, adapter: string | undefined): Promise<void> {
  checkOutDir(o.out, o.resume, !!o.overwrite);
  const cf = resolveChatFormat(o.tokenizer, '--tokenizer');
  const base = loadModelFile(o.checkpoint);
  o.seq ??= base.config.maxT;
  if (o.seq > base.config.maxT) {
    throw new UsageError(`-T, --seq ${o.seq} exceeds the base model's context ${base.config.maxT}`);
  }
  if (o.totalBatch !== undefined && o.totalBatch % (o.batch * o.seq)) {
    throw new UsageError(`--total-batch ${o.totalBatch} is not a multiple of B·T = ${o.batch * o.seq} tokens`);
  }
  const log = (s: string) => console.log(s);
  const data = await loadConversations(cf, { ...o, file: o.data }, log);
  let train: number[];
  let val: number[];
  let valData: LoadedConversations | null = null;
  const all = data.rendered.map((_, i) => i);
  if (o.valData !== undefined) {
    valData = await loadConversations(cf, { ...o, file: o.valData }, log);
    [train, val] = [all, []];
  } else {
    ({ train, val } = holdOut(all, o.valFrac, o.seed));
  }
  const firstVal = val.length ? data.messages[val[0]!]! : valData?.messages[0];
  const sample = firstVal ? firstAnswerCase(firstVal)?.messages : undefined;
  const gpu = await Gpu.open({ adapter });
  const signals = stopOnSignals('finishing this step, writing a checkpoint, then exiting');
  try {
    const r = await sft(gpu, {
      ...runOptions(o),
      base,
      cf,
      train: train.map((i) => data.rendered[i]!),
      val: valData ? valData.rendered : val.map((i) => data.rendered[i]!),
      describe: (i) => data.where[train[i]!]!,
      dataName: data.name,
      mode: o.rows,
      truncate: o.truncate,
      sampleMessages: sample,
      shouldStop: () => signals.signal !== null,
    });
    console.log(
      `checkpoint: ${r.checkpoint} (chat format: ${join(r.checkpoint, 'chat_format.json')})\n` +
        `loss plot: ${r.plot}\nlog: ${join(o.out, 'log.jsonl')}\n` +
        `chat with it: wgpt chat --checkpoint ${r.checkpoint} --tokenizer ${o.tokenizer}`,
    );
    if (r.stoppedEarly) process.exitCode = signals.exitCode ?? 1;
  } finally {
    signals.dispose();
    gpu.destroy();
  }
}

interface EvalFlags {
  checkpoint: string;
  tokenizer: string;
  data?: string;
  synth: number;
  seed: number;
  format: ConversationFormat | 'auto';
  skipInvalid?: boolean;
  limit?: number;
  maxTokens: number;
  json?: boolean;
  show: number;
  exclude?: string;
}

/** The share of exact replies, and how many were asked. */
export function accuracy(results: readonly AnswerResult[]): { correct: number; total: number; share: number } {
  const correct = results.filter((r) => r.correct).length;
  return { correct, total: results.length, share: results.length ? correct / results.length : NaN };
}

async function evalCommand(o: EvalFlags, adapter: string | undefined): Promise<void> {
  const cf = resolveChatFormat(o.tokenizer, '--tokenizer');
  let m = loadModelFile(o.checkpoint);
  const log = o.json ? () => {} : (s: string) => console.log(s);
  // A base model (not fine-tuned: no room for the markers) is scored as fine-tuning would start from it, so that
  // the same command measures before and after.
  const base = m.config.V < cf.vocabSize;
  if (base) {
    m = prepareModelForChat(m, cf, 0).model;
    log(`${o.checkpoint}: not fine-tuned for chat; scored with new rows for the markers, as sft starts`);
  } else {
    checkModelForChat(o.checkpoint, m.config, cf, o.tokenizer);
  }
  const data = await loadConversations(cf, { ...o, file: o.data }, log);
  // --exclude: questions asked there (the same messages before the reply) are not asked, to measure held-out ones.
  const key = (msgs: readonly ChatMessage[]) => JSON.stringify(msgs.map((x) => [x.role, x.content]));
  const excluded = new Set<string>();
  if (o.exclude !== undefined) {
    const ex = await loadConversations(cf, { ...o, file: o.exclude }, log);
    for (const msgs of ex.messages) {
      const c = firstAnswerCase(msgs);
      if (c) excluded.add(key(c.messages));
    }
  }
  const cases = data.messages
    .map((msgs) => firstAnswerCase(msgs))
    .filter((c) => c !== null && !excluded.has(key(c.messages)))
    .slice(0, o.limit) as AnswerCase[];
  if (!cases.length) throw new WgptError(`${data.name}: no conversation has a question answered by the assistant`);
  const gpu = await Gpu.open({ adapter });
  try {
    const model = new GPT2(gpu, m.config, m.params);
    const results = await answerCases(model, cf, cases, o.maxTokens);
    model.dispose();
    const a = accuracy(results);
    if (o.json) {
      console.log(JSON.stringify({ checkpoint: o.checkpoint, data: data.name, base, excluded: excluded.size, ...a }));
      return;
    }
    const wrong = results.filter((r) => !r.correct).slice(0, o.show);
    for (const w of wrong) {
      const q = w.case.messages[w.case.messages.length - 1]!.content;
      console.log(
        `wrong: ${JSON.stringify(q)} → ${JSON.stringify(w.reply)} (expected ${JSON.stringify(w.case.expected)})`,
      );
    }
    console.log(`exact replies: ${a.correct} of ${a.total} (${(100 * a.share).toFixed(1)}%) on ${data.name}`);
  } finally {
    gpu.destroy();
  }
}

const formatOption = () =>
  new Option('--format <name>', "the lines' format").choices(['auto', ...CONVERSATION_FORMATS]).default('auto');
const MAX_SEED = 2 ** 32 - 1;

/** Registers `wgpt sft` on the program and `eval` on the `chat` command. */
export function registerSft(program: Command, chat: Command): void {
  const cmd = program
    .command('sft')
    .description(
      "fine-tune a GPT-2 checkpoint on conversations (ChatML), with the loss on the assistants' replies only; " +
        'without --data, on synthetic conversations (arithmetic, country facts)',
    )
    .requiredOption('--checkpoint <path>', 'the base model: llm.c .bin, checkpoint folder, or .safetensors')
    .option('--data <file>', 'conversations, JSONL: openai messages, ShareGPT, or oasst message trees')
    .option('--val-data <file>', 'held-out conversations for the validation loss (default: --val-frac of --data)')
    .option('--val-frac <x>', 'share of the conversations held out for validation', numArg({ min: 0, below: 1 }), 0.05)
    .option('--synth <n>', 'without --data: this many synthetic conversations (seed: --seed)', intArg({ min: 1 }), 2000)
    .addOption(formatOption())
    .option('--skip-invalid', 'skip and count unusable lines instead of stopping at the first')
    .option(
      '--tokenizer <name|dir>',
      "the base model's encoding: r50k_base (GPT-2, markers appended), cl100k_base, o200k_base, or a tokenizer folder",
      'r50k_base',
    )
    .addOption(
      new Option('--rows <how>', 'pack: several conversations per row; pad: one per row, padded')
        .choices(['pack', 'pad'])
        .default('pack'),
    )
    .option('--truncate', 'cut conversations longer than -T to their first T tokens (counted) instead of stopping');
  addRunOptions(cmd, { steps: 200, lr: 1e-4, out: 'out/sft', weightDecay: 0, valEvery: 50, seed: 42 }).action(
    async (o: SftFlags, c: Command) => sftCommand(o, c.optsWithGlobals().adapter as string | undefined),
  );
  chat
    .command('eval')
    .description('exact-answer accuracy: greedy replies to the first question of each conversation, against its reply')
    .requiredOption('--checkpoint <path>', 'the model (fine-tuned for chat)')
    .option('--tokenizer <name|dir>', "the model's encoding or tokenizer folder", 'r50k_base')
    .option('--data <file>', 'conversations, JSONL (default: synthetic ones, --synth and --seed)')
    .option('--synth <n>', 'without --data: this many synthetic conversations', intArg({ min: 1 }), 200)
    .option('--seed <n>', 'seed of the synthetic conversations', intArg({ min: 0, max: MAX_SEED }), 0)
    .addOption(formatOption())
    .option('--skip-invalid', 'skip and count unusable lines instead of stopping at the first')
    .option('--exclude <file>', 'leave out questions asked in these conversations (e.g. the training data)')
    .option('--limit <n>', 'ask at most this many questions', intArg({ min: 1 }))
    .option('--max-tokens <n>', 'the most tokens of a reply', intArg({ min: 1 }), 32)
    .option('--show <n>', 'print up to this many wrong replies', intArg({ min: 0 }), 5)
    .option('--json', 'print {"checkpoint", "data", "correct", "total", "share"}')
    .action(async (o: EvalFlags, c: Command) => evalCommand(o, c.optsWithGlobals().adapter as string | undefined));
}

// `wgpt chat` (`chat talk`: a terminal chat with a model, or one answer with --once), and `wgpt chat render`,
// `wgpt chat synth` and `wgpt chat stats`. Results go to stdout.
import { readFileSync } from 'node:fs';
import { intArg, numArg } from '@wgpt/base';
import { systemErrorReason, UsageError, WgptError } from '@wgpt/base/errors';
import { GPT2, loadModelFile, printable } from '@wgpt/gpt2';
import { Gpu } from '@wgpt/runtime';
import { type Command, Option } from 'commander';
import { type ChatReply, ChatSession, checkModelForChat, ContextError } from './chat.ts';
import { CONVERSATION_FORMATS, type ConversationFormat, newReadStats, readConversations } from './data.ts';
import { type ChatFormat, resolveChatFormat } from './format.ts';
import { type PackStats, planRows } from './pack.ts';
import { checkMessages, type ChatMessage, type RenderedConversation, renderConversation } from './render.ts';
import { runRepl } from './repl.ts';
import { registerEvalFactuality } from './factuality-cli.ts';
import { registerBio, registerProbe, registerRefusals } from './probe-cli.ts';
import { registerSft } from './sft-cli.ts';
import { SYNTH_KINDS, type SynthKind, writeSynthJsonl } from './synth.ts';

export interface ChatCliIo {
  out(s: string): void;
  err(s: string): void;
}

const processIo: ChatCliIo = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

const MAX_SEED = 2 ** 32 - 1;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A token as text: a special token by its name, else its text as a JSON string (bytes that are not UTF-8 as \xNN). */
export function tokenLabel(cf: ChatFormat, id: number): string {
  const enc = cf.encoding;
  const bytes = enc.tokenBytes(id);
  if (enc.isSpecial(id)) return new TextDecoder().decode(bytes);
  try {
    return JSON.stringify(utf8.decode(bytes));
  } catch {
    // A piece of a character (an emoji split over tokens): its bytes.
    const byte = (b: number) =>
      b < 0x80 ? JSON.stringify(String.fromCharCode(b)).slice(1, -1) : `\\x${b.toString(16).padStart(2, '0')}`;
    return `"${[...bytes].map(byte).join('')}"`;
  }
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new WgptError(`${file}: cannot read (${systemErrorReason(e) ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new WgptError(`${file}: invalid JSON (${(e as Error).message})`);
  }
}

interface RenderOpts {
  encoding: string;
  file: string;
  prompt?: boolean;
  json?: boolean;
}

function render(o: RenderOpts, io: ChatCliIo): void {
  const cf = resolveChatFormat(o.encoding);
  const doc = readJson(o.file) as { messages?: unknown } | null;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.messages)) {
    throw new WgptError(`${o.file}: expected {"messages": [{"role": ..., "content": ...}, ...]}`);
  }
  const messages = doc.messages as ChatMessage[];
  if (messages.length === 0 && !o.prompt) throw new WgptError(`${o.file}: "messages" is empty: nothing to render`);
  checkMessages(messages, o.file);
  const r = renderConversation(cf, messages, { prompt: o.prompt });
  if (o.json) {
    io.out(`${JSON.stringify({ encoding: cf.encoding.name, ids: [...r.ids], mask: [...r.mask] })}\n`);
    return;
  }
  let s = `${[...r.ids].join(' ')}\n`;
  // One line per message, each starting at its <|im_start|>.
  let line: string[] = [];
  for (const id of r.ids) {
    if (id === cf.imStart && line.length > 0) {
      s += `${line.join(' ')}\n`;
      line = [];
    }
    line.push(tokenLabel(cf, id));
  }
  if (line.length > 0) s += `${line.join(' ')}\n`;
  const trained = r.mask.reduce((a, b) => a + b, 0);
  s +=
    `${r.ids.length} tokens (${cf.encoding.name}, vocabulary ${cf.vocabSize}); ${trained} trained: ` +
    "the assistant's content and <|im_end|>\n";
  io.out(s);
}

interface SynthOpts {
  out: string;
  count: number;
  seed: number;
  overwrite?: boolean;
  kinds: SynthKind[];
  simple?: boolean;
}

function synth(o: SynthOpts, io: ChatCliIo): void {
  const r = writeSynthJsonl(o.out, o.count, o.seed, o.overwrite, { kinds: o.kinds, simple: o.simple });
  io.out(`wrote ${r.conversations} conversations (${r.messages} messages, ${r.bytes} bytes) to ${o.out}\n`);
}

interface StatsOpts {
  file: string;
  encoding: string;
  seq: number;
  format: ConversationFormat | 'auto';
  skipInvalid?: boolean;
  truncate?: boolean;
  seed: number;
  json?: boolean;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

async function stats(o: StatsOpts, io: ChatCliIo): Promise<void> {
  const cf = resolveChatFormat(o.encoding);
  const read = newReadStats();
  const items: RenderedConversation[] = [];
  const where: string[] = [];
  for await (const c of readConversations(o.file, { format: o.format, skipInvalid: o.skipInvalid, stats: read })) {
    items.push(renderConversation(cf, c.messages));
    where.push(c.path > 0 ? `${c.file}:${c.line} (path ${c.path + 1})` : `${c.file}:${c.line}`);
  }
  if (items.length === 0) throw new WgptError(`${o.file}: no conversations (${read.lines} lines)`);
  const opts = { T: o.seq, seed: o.seed, truncate: o.truncate, describe: (i: number) => where[i] };
  const packed: PackStats[] = (['pack', 'pad'] as const).map((mode) => planRows(items, { ...opts, mode }).stats);
  const lengths = items.map((r) => r.ids.length);
  const tokens = lengths.reduce((a, b) => a + b, 0);
  if (o.json) {
    io.out(`${JSON.stringify({ read, tokens, maxTokens: Math.max(...lengths), pack: packed[0], pad: packed[1] })}\n`);
    return;
  }
  const skipped = Object.entries(read.skipped).filter(([, n]) => n > 0);
  const formats = Object.entries(read.formats).filter(([, n]) => n > 0);
  let s =
    `${o.file}: ${read.lines} lines, ${read.conversations} conversations ` +
    `(${formats.map(([f, n]) => `${f} ${n}`).join(', ')})`;
  s += skipped.length > 0 ? `; skipped ${skipped.map(([r, n]) => `${r} ${n}`).join(', ')}` : '; none skipped';
  if (read.blankLines > 0) s += `; ${read.blankLines} blank lines`;
  if (read.unansweredDropped + read.deletedDropped > 0) {
    s += `; left out of trees: ${read.unansweredDropped} unanswered prompts, ${read.deletedDropped} deleted messages`;
  }
  s += `\ntokens (${cf.encoding.name}): ${tokens}, ${(tokens / items.length).toFixed(1)} per conversation, `;
  s += `at most ${Math.max(...lengths)}\n`;
  for (const p of packed) {
    s +=
      `T=${p.T} ${p.mode}: ${p.rows} rows, ${p.padding} padding tokens, wasted ${pct(p.wastedShare)}, ` +
      `loss on ${p.lossTokens} tokens (${pct(p.lossTokens / (p.rows * p.T))} of the rows)`;
    s += p.truncated > 0 ? `, ${p.truncated} truncated (${p.truncatedTokens} tokens cut)\n` : '\n';
  }
  io.out(s);
}

interface ChatOpts {
  checkpoint: string;
  tokenizer: string;
  system?: string;
  temperature: number;
  topK?: number;
  topP?: number;
  maxTokens?: number;
  seed: number;
  once?: string;
  json?: boolean;
}

/** Replies are at most this long unless --max-tokens says otherwise (and at most half the context). */
const DEFAULT_MAX_TOKENS = 256;

async function chatCommand(o: ChatOpts, adapter: string | undefined, io: ChatCliIo): Promise<void> {
  if (o.json && o.once === undefined) throw new UsageError('--json goes with --once (the chat itself prints text)');
  if (o.once !== undefined && o.once.trim() === '') throw new UsageError('--once: the question is empty');
  const cf = resolveChatFormat(o.tokenizer, '--tokenizer');
  const m = loadModelFile(o.checkpoint);
  checkModelForChat(o.checkpoint, m.config, cf, o.tokenizer);
  const { maxT, V } = m.config;
  const maxTokens = o.maxTokens ?? Math.max(1, Math.min(DEFAULT_MAX_TOKENS, Math.floor(maxT / 2)));
  if (maxTokens >= maxT) {
    throw new UsageError(`--max-tokens ${maxTokens} leaves no room for a prompt in the model's context of ${maxT}`);
  }
  const settings = { temperature: o.temperature, topK: o.topK, topP: o.topP, maxTokens, seed: o.seed };
  const gpu = await Gpu.open({ adapter });
  try {
    const model = new GPT2(gpu, m.config, m.params);
    const session = new ChatSession(model, cf, settings);
    try {
      try {
        if (o.system !== undefined) session.setSystem(o.system);
      } catch (e) {
        throw e instanceof ContextError ? new UsageError(`--system: ${e.message}`) : e;
      }
      if (o.once !== undefined) {
        await once(session, o.once, !!o.json, io);
        return;
      }
      const banner =
        `wgpt chat: ${o.checkpoint} (V=${V}, context ${maxT} tokens), ChatML in ${cf.encoding.name}; ` +
        `replies of up to ${maxTokens} tokens, temperature ${o.temperature}.\n` +
        '/help lists the commands; /quit or Ctrl-D leaves.';
      const terminal = !!process.stdin.isTTY && !!process.stdout.isTTY;
      const status = await runRepl(session, { input: process.stdin, output: process.stdout, terminal }, banner);
      if (status !== 0) process.exitCode = status;
    } finally {
      session.dispose();
      model.dispose();
    }
  } finally {
    gpu.destroy();
  }
}

/** --once: the reply on stdout (streamed; or --json at the end); a reply cut by --max-tokens is said on stderr. */
async function once(session: ChatSession, question: string, json: boolean, io: ChatCliIo): Promise<void> {
  let r: ChatReply;
  try {
    r = await session.ask(question, { onText: json ? undefined : (s) => io.out(printable(s)) });
  } catch (e) {
    throw e instanceof ContextError ? new UsageError(`--once: ${e.message}`) : e;
  }
  if (json) {
    io.out(`${JSON.stringify({ prompt_ids: r.promptIds, ids: r.ids, text: r.text, stopped: r.stopped })}\n`);
    return;
  }
  io.out('\n');
  if (r.stopped === 'max_tokens') {
    io.err(`wgpt chat: the reply stopped at --max-tokens ${r.ids.length}, before its <|im_end|>\n`);
  }
}

const SIMPLE_HELP =
  'one question and its answer per conversation (no system message, greeting or follow-ups; one phrasing per ' +
  'arithmetic operation)';

/** --kinds: a comma-separated list of the kinds of synthetic questions. */
export function synthKindsOption(flag = '--kinds'): Option {
  const parse = (v: string): SynthKind[] => {
    const kinds = v.split(',').map((k) => k.trim());
    const bad = kinds.find((k) => !(SYNTH_KINDS as readonly string[]).includes(k));
    if (bad !== undefined) throw new UsageError(`${flag}: unknown kind "${bad}" (${SYNTH_KINDS.join(', ')})`);
    return [...new Set(kinds)] as SynthKind[];
  };
  return new Option(`${flag} <list>`, `kinds of questions, comma-separated: ${SYNTH_KINDS.join(', ')}`)
    .argParser(parse)
    .default([...SYNTH_KINDS], SYNTH_KINDS.join(','));
}

export { SIMPLE_HELP };

/** Registers `chat talk` (also plain `chat`: the chat itself), `chat render`, `chat synth` and `chat stats`. */
export function register(program: Command, io: ChatCliIo = processIo): void {
  const chat = program
    .command('chat')
    .description(
      'chat with a GPT-2 fine-tuned on ChatML (`wgpt chat --checkpoint PATH`, see `chat talk --help`); ' +
        'render, synthesize or count conversations',
    );
  // The chat itself is the default subcommand, not options of `chat`: commander would give those options every
  // subcommand's flags of the same name (`chat stats --seed`), since wgpt's options may follow the command.
  chat
    .command('talk', { isDefault: true })
    .description('a terminal chat with a model (the default: `wgpt chat --checkpoint PATH` is this), or --once')
    .requiredOption('--checkpoint <path>', 'the model: llm.c .bin, checkpoint folder, or Hugging Face .safetensors')
    .option(
      '--tokenizer <name|dir>',
      "the model's encoding: r50k_base (GPT-2, markers appended), cl100k_base, o200k_base, or a tokenizer folder",
      'r50k_base',
    )
    .option('--system <text>', 'the system message')
    .option('--temperature <x>', 'softmax temperature (0: greedy)', numArg({ min: 0 }), 0.7)
    .option('--top-k <n>', 'sample from the k most likely tokens', intArg({ min: 1 }))
    .option('--top-p <x>', 'nucleus sampling threshold, in (0, 1]', numArg({ above: 0, max: 1 }))
    .option(
      '--max-tokens <n>',
      `the most tokens of a reply (default ${DEFAULT_MAX_TOKENS}, at most half the context); each prompt leaves ` +
        'room for it',
      intArg({ min: 1 }),
    )
    .option(
      '--seed <n>',
      'sampling seed (reply n of a conversation uses seed + n)',
      intArg({ min: 0, max: MAX_SEED }),
      1337,
    )
    .option('--once <question>', 'answer one question on stdout and exit')
    .option('--json', 'with --once: print {"prompt_ids", "ids", "text", "stopped"}')
    .action(async (o: ChatOpts, cmd: Command) => chatCommand(o, cmd.optsWithGlobals().adapter as string, io));
  const encoding = () =>
    new Option(
      '-e, --encoding <name|dir>',
      'o200k_base, cl100k_base, r50k_base (GPT-2; the ChatML markers get ids 50257-50259) or a tokenizer folder',
    ).makeOptionMandatory();
  chat
    .command('render')
    .description('print the token ids of a conversation in ChatML ({"messages": [{"role", "content"}, ...]})')
    .addOption(encoding())
    .requiredOption('-f, --file <path>', 'the conversation as JSON (- for stdin)')
    .option('--prompt', "end with the assistant's opener <|im_start|>assistant<|im_sep|>")
    .option('--json', 'print {"encoding", "ids", "mask"} (mask: 1 on the tokens the loss trains)')
    .action((opts: RenderOpts) => render(opts, io));
  chat
    .command('synth')
    .description('write synthetic conversations (arithmetic, country facts) as JSONL in the messages format')
    .requiredOption('-o, --out <file>', 'the JSONL file to write')
    .option('-n, --count <n>', 'number of conversations', intArg({ min: 1 }), 1000)
    .option('--seed <n>', 'random seed (the same seed writes the same bytes)', intArg({ min: 0, max: MAX_SEED }), 0)
    .option('--overwrite', 'replace --out if it exists')
    .addOption(synthKindsOption())
    .option('--simple', SIMPLE_HELP)
    .action((opts: SynthOpts) => synth(opts, io));
  chat
    .command('stats')
    .description('read a conversation JSONL file; print its counts and the wasted share of packing and padding')
    .requiredOption('-f, --file <path>', 'JSONL: openai messages, ShareGPT, or oasst message trees')
    .addOption(encoding())
    .option('-T, --seq <n>', 'tokens per row', intArg({ min: 2 }), 1024)
    .addOption(
      new Option('--format <name>', "the lines' format").choices(['auto', ...CONVERSATION_FORMATS]).default('auto'),
    )
    .option('--skip-invalid', 'skip and count unusable lines instead of stopping at the first')
    .option('--truncate', 'cut conversations longer than -T to their first T tokens (counted) instead of stopping')
    .option('--seed <n>', 'seed of the order of conversations', intArg({ min: 0, max: MAX_SEED }), 0)
    .option('--json', 'print the counts as JSON')
    .action(async (opts: StatsOpts) => stats(opts, io));
  registerSft(program, chat);
  registerProbe(program);
  registerEvalFactuality(program);
  registerBio(chat);
  registerRefusals(chat);
}

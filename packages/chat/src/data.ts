// Conversation data: JSONL files read line by line in three formats, each line checked.
//
// - openai:   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
// - sharegpt: {"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}, ...]} ("user" and "assistant"
//             are taken for "human" and "gpt")
// - oasst:    OpenAssistant's message-tree export (oasst1/oasst2 *.trees.jsonl): one tree per line,
//             {"message_tree_id", "prompt": {"role": "prompter", "text", "replies": [{"role": "assistant", "text",
//             "rank", "replies": [...]}, ...]}}; a bare root message is taken too. Every path from the prompt to a
//             leaf is one conversation, best-ranked replies first (rank 0 is the most preferred; replies without a
//             rank follow the ranked ones in file order). A prompt that nobody answered ends no conversation: it
//             is left out (counted as `unansweredDropped`) and the path ends at the reply before it. Messages
//             marked "deleted": true are left out with their replies (counted as `deletedDropped`).
//
// A line that cannot be used is an error naming the file, the line and the reason, or, with skipInvalid, skipped
// and counted per reason. Nothing is trimmed or shortened: content is kept byte for byte.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { systemErrorReason, WgptError } from '@wgpt/base/errors';
import type { ChatMessage, ChatRole } from './render.ts';

export type ConversationFormat = 'openai' | 'sharegpt' | 'oasst';
export const CONVERSATION_FORMATS: readonly ConversationFormat[] = ['openai', 'sharegpt', 'oasst'];

/** Why a line was refused. */
export type InvalidReason =
  | 'not-json'
  | 'unknown-format'
  | 'no-role'
  | 'unknown-role'
  | 'no-content'
  | 'empty-content'
  | 'special-token'
  | 'no-assistant';
export const INVALID_REASONS: readonly InvalidReason[] = [
  'not-json',
  'unknown-format',
  'no-role',
  'unknown-role',
  'no-content',
  'empty-content',
  'special-token',
  'no-assistant',
];

/** A line that cannot be used: `file:line: what is wrong`, with the reason for counting. */
export class ConversationDataError extends WgptError {
  override name = 'ConversationDataError';
  constructor(
    readonly reason: InvalidReason,
    readonly file: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${file}:${line}: ${detail}; fix the line, or skip such lines with --skip-invalid (skipInvalid)`);
  }
}

/** Text of a special token inside a message: almost always a formatting accident of the data. */
export const SPECIAL_TEXT = /<\|(?:im_start|im_end|im_sep|endoftext|endofprompt|fim_prefix|fim_middle|fim_suffix)\|>/;

export interface Conversation {
  messages: ChatMessage[];
  /** Where it comes from: the file, the line (1-based) and, for a tree, which path of the line (0-based). */
  file: string;
  line: number;
  path: number;
}

export interface ReadStats {
  lines: number;
  /** Empty or whitespace-only lines, passed over. */
  blankLines: number;
  conversations: number;
  /** Lines skipped with skipInvalid, per reason. */
  skipped: Record<InvalidReason, number>;
  /** oasst: unanswered prompts at the end of a path, left out. */
  unansweredDropped: number;
  /** oasst: messages marked deleted, left out with their replies. */
  deletedDropped: number;
  /** Lines per detected format. */
  formats: Record<ConversationFormat, number>;
}

export function newReadStats(): ReadStats {
  return {
    lines: 0,
    blankLines: 0,
    conversations: 0,
    skipped: Object.fromEntries(INVALID_REASONS.map((r) => [r, 0])) as Record<InvalidReason, number>,
    unansweredDropped: 0,
    deletedDropped: 0,
    formats: { openai: 0, sharegpt: 0, oasst: 0 },
  };
}

export interface ReadOptions {
  /** The lines' format; 'auto' (the default) detects it on each line. */
  format?: ConversationFormat | 'auto';
  /** Skip and count lines that cannot be used, instead of stopping at the first. */
  skipInvalid?: boolean;
  /** Counts are added here (the reader's own are returned by readConversationFile). */
  stats?: ReadStats;
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

/** The format a parsed line is in, or null. */
export function detectFormat(o: unknown): ConversationFormat | null {
  if (!isObj(o)) return null;
  if (Array.isArray(o.messages)) return 'openai';
  if (Array.isArray(o.conversations)) return 'sharegpt';
  if (isObj(o.prompt) || (typeof o.role === 'string' && 'text' in o)) return 'oasst';
  return null;
}

const SHAPES: Record<ConversationFormat, string> = {
  openai: '{"messages": [{"role", "content"}, ...]}',
  sharegpt: '{"conversations": [{"from", "value"}, ...]}',
  oasst: '{"prompt": {"role": "prompter", "text", "replies": [...]}}',
};

const ROLES: Record<ConversationFormat, Record<string, ChatRole>> = {
  openai: { system: 'system', user: 'user', assistant: 'assistant' },
  sharegpt: { system: 'system', human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant' },
  oasst: { prompter: 'user', assistant: 'assistant' },
};

const FIELDS: Record<ConversationFormat, { role: string; content: string }> = {
  openai: { role: 'role', content: 'content' },
  sharegpt: { role: 'from', content: 'value' },
  oasst: { role: 'role', content: 'text' },
};

/**
 * One message of a line, checked. `what` names it in errors ("message 3", "message <id>"). Throws a
 * ConversationDataError.
 */
function toMessage(m: unknown, format: ConversationFormat, what: string, fail: Fail): ChatMessage {
  const f = FIELDS[format];
  if (!isObj(m)) return fail('unknown-format', `${what} is not an object`);
  const role = m[f.role];
  if (role === undefined || role === null) return fail('no-role', `${what} has no "${f.role}"`);
  const mapped = typeof role === 'string' && Object.hasOwn(ROLES[format], role) ? ROLES[format][role] : undefined;
  if (mapped === undefined) {
    const known = Object.keys(ROLES[format]).join(', ');
    return fail('unknown-role', `${what} has the unknown ${f.role} ${JSON.stringify(role)} (${known})`);
  }
  const content = m[f.content];
  if (typeof content !== 'string') {
    return fail('no-content', `${what} (${role}) has no "${f.content}" string (${JSON.stringify(content) ?? 'none'})`);
  }
  if (content.trim() === '') return fail('empty-content', `${what} (${role}) is empty`);
  const special = SPECIAL_TEXT.exec(content);
  if (special) {
    return fail(
      'special-token',
      `${what} (${role}) holds the special-token text ${special[0]} at character ${special.index}`,
    );
  }
  return { role: mapped, content };
}

type Fail = (reason: InvalidReason, detail: string) => never;

function checkHasAssistant(messages: ChatMessage[], fail: Fail, what = 'the conversation'): void {
  if (!messages.some((m) => m.role === 'assistant')) fail('no-assistant', `${what} has no assistant message`);
}

function listMessages(o: Obj, format: 'openai' | 'sharegpt', fail: Fail): ChatMessage[][] {
  const list = o[format === 'openai' ? 'messages' : 'conversations'] as unknown[];
  const messages = list.map((m, i) => toMessage(m, format, `message ${i + 1}`, fail));
  checkHasAssistant(messages, fail);
  return [messages];
}

interface OasstCounts {
  unanswered: number;
  deleted: number;
}

function oasstPaths(o: Obj, fail: Fail, counts: OasstCounts): ChatMessage[][] {
  const root = isObj(o.prompt) ? o.prompt : o;
  const name = (node: Obj, depth: number) =>
    typeof node.message_id === 'string' ? `message ${node.message_id}` : `the message at depth ${depth}`;
  const deletedSeen = new Set<Obj>();
  /** A message's replies that are not marked deleted (the deleted ones are counted once). */
  const liveReplies = (node: Obj, depth: number): Obj[] => {
    const replies = node.replies;
    if (replies === undefined || replies === null) return [];
    if (!Array.isArray(replies)) fail('unknown-format', `${name(node, depth)}: "replies" is not a list`);
    const live: Obj[] = [];
    for (const r of replies as unknown[]) {
      if (!isObj(r)) fail('unknown-format', `${name(node, depth)}: a reply is not an object`);
      if (r.deleted !== true) live.push(r);
      else if (!deletedSeen.has(r)) {
        deletedSeen.add(r);
        counts.deleted++;
      }
    }
    return live;
  };
  const paths: ChatMessage[][] = [];
  // Depth-first with an explicit stack (trees can be deep); children pushed in reverse so the best comes first.
  const stack: { node: Obj; depth: number; path: ChatMessage[] }[] = [{ node: root, depth: 0, path: [] }];
  while (stack.length > 0) {
    const { node, depth, path } = stack.pop()!;
    const here = [...path, toMessage(node, 'oasst', name(node, depth), fail)];
    const kids: Obj[] = [];
    for (const r of liveReplies(node, depth)) {
      // A prompt nobody answered ends no conversation: checked, counted and left out, so that the path through
      // its parent is not emitted a second time as a shorter copy of its siblings' paths.
      if (ROLES.oasst[r.role as string] === 'user' && liveReplies(r, depth + 1).length === 0) {
        toMessage(r, 'oasst', name(r, depth + 1), fail);
        counts.unanswered++;
      } else kids.push(r);
    }
    if (kids.length === 0) {
      if (here.some((m) => m.role === 'assistant')) paths.push(here);
      continue;
    }
    const rank = (r: Obj) => (typeof r.rank === 'number' && Number.isFinite(r.rank) ? r.rank : Infinity);
    const order = kids.map((r, i) => ({ r, i })).sort((a, b) => rank(a.r) - rank(b.r) || a.i - b.i);
    for (let k = order.length - 1; k >= 0; k--) stack.push({ node: order[k].r, depth: depth + 1, path: here });
  }
  if (paths.length === 0) fail('no-assistant', 'the tree has no assistant reply');
  return paths;
}

/**
 * The conversations of one line of text (several for an oasst tree). Throws a ConversationDataError naming
 * `file:line`; `counts` receives what was left out of oasst trees.
 */
export function parseConversationLine(
  text: string,
  file: string,
  line: number,
  format: ConversationFormat | 'auto' = 'auto',
  counts: OasstCounts = { unanswered: 0, deleted: 0 },
): { format: ConversationFormat; conversations: ChatMessage[][] } {
  const fail: Fail = (reason, detail) => {
    throw new ConversationDataError(reason, file, line, detail);
  };
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    fail('not-json', `not JSON (${(e as Error).message})`);
  }
  const found = detectFormat(o);
  const want = format === 'auto' ? found : format;
  if (want === null) {
    const shapes = CONVERSATION_FORMATS.map((f) => SHAPES[f]).join(', ');
    return fail('unknown-format', `not a conversation in a known format (${shapes})`);
  }
  if (found !== want) return fail('unknown-format', `not in the ${want} format ${SHAPES[want]}`);
  const obj = o as Obj;
  const conversations = want === 'oasst' ? oasstPaths(obj, fail, counts) : listMessages(obj, want, fail);
  return { format: want, conversations };
}

/**
 * Reads a JSONL file of conversations line by line (streaming: memory holds one line). Stops at the first
 * unusable line with a ConversationDataError, or with skipInvalid skips it and counts it in `opts.stats`.
 */
export async function* readConversations(file: string, opts: ReadOptions = {}): AsyncGenerator<Conversation> {
  const stats = opts.stats ?? newReadStats();
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (e) {
    throw new WgptError(`${file}: cannot read (${systemErrorReason(e) ?? (e as Error).message})`);
  }
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      // A byte-order mark (some editors write one) is not part of the first line's JSON.
      const text = lineNo === 1 && line.startsWith('\uFEFF') ? line.slice(1) : line;
      stats.lines++;
      if (text.trim() === '') {
        stats.blankLines++;
        continue;
      }
      const counts = { unanswered: 0, deleted: 0 };
      let parsed: ReturnType<typeof parseConversationLine>;
      try {
        parsed = parseConversationLine(text, file, lineNo, opts.format ?? 'auto', counts);
      } catch (e) {
        if (opts.skipInvalid && e instanceof ConversationDataError) {
          stats.skipped[e.reason]++;
          continue;
        }
        throw e;
      }
      stats.formats[parsed.format]++;
      stats.unansweredDropped += counts.unanswered;
      stats.deletedDropped += counts.deleted;
      for (let p = 0; p < parsed.conversations.length; p++) {
        stats.conversations++;
        yield { messages: parsed.conversations[p], file, line: lineNo, path: p };
      }
    }
  } finally {
    lines.close();
    stream.destroy();
  }
}

/** Reads a whole file into memory (for data sets that fit), with its counts. */
export async function readConversationFile(
  file: string,
  opts: Omit<ReadOptions, 'stats'> = {},
): Promise<{ conversations: Conversation[]; stats: ReadStats }> {
  const stats = newReadStats();
  const conversations: Conversation[] = [];
  for await (const c of readConversations(file, { ...opts, stats })) conversations.push(c);
  return { conversations, stats };
}

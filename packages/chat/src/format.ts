// The chat format: ChatML's three markers as special tokens of an encoding, and what a model needs to hold them.
//
// A message is `<|im_start|>{role}<|im_sep|>{content}<|im_end|>`; the markers are one id each and the role and the
// content are always encoded as plain text, so text typed inside a message can never open or close one.
// o200k_base and cl100k_base have the markers already (200264-200266 and 100264-100266). r50k_base (GPT-2) and the
// vocabularies of `wgpt tokenizer train` get them appended after their last id: 50257-50259 for GPT-2, which lie
// inside GPT-2's padded vocabulary (Vp = 50304), so a GPT-2 checkpoint is fine-tuned without resizing wte.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError, WgptError, withPath } from '@wgpt/base/errors';
import {
  BpeEncoding,
  CONFIG_FILE,
  type Encoding,
  getEncoding,
  isOpenAiEncodingName,
  loadTokenizer,
  OPENAI_ENCODING_NAMES,
} from '@wgpt/tokenizer';

export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';
export const IM_SEP = '<|im_sep|>';
/** The markers in the order their ids are appended to a vocabulary that lacks them. */
export const CHATML_MARKERS = [IM_START, IM_END, IM_SEP] as const;

/** What a chat format is, as saved beside a checkpoint (chat_format.json) and checked when it is loaded. */
export interface ChatFormatInfo {
  format: 'wgpt-chatml';
  version: 1;
  /** The encoding's name: an OpenAI encoding, or the name in a tokenizer folder's tokenizer.json. */
  encoding: string;
  imStart: number;
  imEnd: number;
  imSep: number;
  /** Marker ids the encoding did not have, appended after its last id (their embedding rows need initialising). */
  added: number[];
  /** The vocabulary size V a model needs: one more than the largest token id, the markers included. */
  vocabSize: number;
  /** SHA-256 over every token's bytes and the special tokens: another vocabulary of the same size differs here. */
  vocabSha256: string;
}

export const CHAT_FORMAT_FILE = 'chat_format.json';

/** An encoding with the ChatML markers as special tokens. Build it with chatFormat() or resolveChatFormat(). */
export class ChatFormat {
  /** The encoding with the markers; decode() turns marker ids back into their text. */
  readonly encoding: Encoding;
  readonly imStart: number;
  readonly imEnd: number;
  readonly imSep: number;
  /** Marker ids appended to the base encoding (empty for o200k_base and cl100k_base). */
  readonly added: readonly number[];
  /** The vocabulary size V a model needs for this format. */
  readonly vocabSize: number;
  private hash?: string;

  constructor(encoding: Encoding, added: number[]) {
    this.encoding = encoding;
    const id = (name: string) => encoding.specialTokens[name];
    this.imStart = id(IM_START);
    this.imEnd = id(IM_END);
    this.imSep = id(IM_SEP);
    this.added = Object.freeze([...added]);
    this.vocabSize = encoding.nVocab;
  }

  /** The marker's name for a marker id, else null. */
  markerName(id: number): string | null {
    return id === this.imStart ? IM_START : id === this.imEnd ? IM_END : id === this.imSep ? IM_SEP : null;
  }

  get vocabSha256(): string {
    this.hash ??= vocabularyHash(this.encoding);
    return this.hash;
  }

  info(): ChatFormatInfo {
    return {
      format: 'wgpt-chatml',
      version: 1,
      encoding: this.encoding.name,
      imStart: this.imStart,
      imEnd: this.imEnd,
      imSep: this.imSep,
      added: [...this.added],
      vocabSize: this.vocabSize,
      vocabSha256: this.vocabSha256,
    };
  }
}

/** Hashes every id's bytes in order (absent ids marked as such) and whether it is special. */
function vocabularyHash(enc: Encoding): string {
  const h = createHash('sha256');
  const head = Buffer.alloc(5);
  for (let id = 0; id < enc.nVocab; id++) {
    let bytes: Uint8Array | null = null;
    try {
      bytes = enc.tokenBytes(id);
    } catch {
      bytes = null; // a gap between ids (cl100k_base and o200k_base have some)
    }
    head.writeUInt32LE(bytes === null ? 0xffffffff : bytes.length, 0);
    head[4] = enc.isSpecial(id) ? 1 : 0;
    h.update(head);
    if (bytes !== null) h.update(bytes);
  }
  return h.digest('hex');
}

const formats = new WeakMap<Encoding, ChatFormat>();

/** The chat format of an encoding: its own markers when it has all three, else the missing ones appended. */
export function chatFormat(base: Encoding): ChatFormat {
  const known = formats.get(base);
  if (known) return known;
  const missing = CHATML_MARKERS.filter((m) => !Object.hasOwn(base.specialTokens, m));
  let cf: ChatFormat;
  if (missing.length === 0) {
    cf = new ChatFormat(base, []);
  } else {
    if (!(base instanceof BpeEncoding)) {
      throw new Error(`${base.name}: markers can only be added to a BpeEncoding (its mergeable tokens are needed)`);
    }
    const specials = { ...base.specialTokens };
    const added: number[] = [];
    for (const m of missing) {
      const id = base.nVocab + added.length;
      specials[m] = id;
      added.push(id);
    }
    const eot = Object.keys(base.specialTokens).find((k) => base.specialTokens[k] === base.eotToken);
    // The same token array: BpeCore reuses the index it built for it, so this costs little.
    const enc = new BpeEncoding({
      name: base.name,
      pattern: base.pattern,
      tokens: base.core.tokens,
      specialTokens: specials,
      eot,
    });
    cf = new ChatFormat(enc, added);
  }
  formats.set(base, cf);
  return cf;
}

/**
 * The chat format for `--encoding`: an OpenAI encoding's name (o200k_base, cl100k_base, r50k_base) or a folder
 * written by `wgpt tokenizer train`. `flag` names the flag in the error for anything else.
 */
export function resolveChatFormat(spec: string, flag = '--encoding'): ChatFormat {
  if (isOpenAiEncodingName(spec)) return chatFormat(getEncoding(spec));
  let isDir = false;
  try {
    isDir = statSync(spec).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir || !existsSync(join(spec, CONFIG_FILE))) {
    throw new UsageError(
      `${flag}: ${JSON.stringify(spec)} is neither an encoding (${OPENAI_ENCODING_NAMES.join(', ')}) ` +
        `nor a tokenizer folder with a ${CONFIG_FILE} (from \`wgpt tokenizer train\`)`,
    );
  }
  return chatFormat(loadTokenizer(spec));
}

/** The JSON text of a chat format (what writeChatFormat writes). */
export function chatFormatJson(cf: ChatFormat): string {
  return `${JSON.stringify(cf.info(), null, 2)}\n`;
}

export function writeChatFormat(path: string, cf: ChatFormat): void {
  withPath(path, () => writeFileSync(path, chatFormatJson(cf)));
}

/** Reads a chat_format.json; anything missing or of the wrong type is an error naming the file. */
export function readChatFormatInfo(path: string): ChatFormatInfo {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WgptError(`${path}: cannot read the chat format (${(e as Error).message})`);
  }
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(raw) as Record<string, unknown>;
  } catch (e) {
    throw new WgptError(`${path}: invalid JSON (${(e as Error).message})`);
  }
  const bad = (what: string) => new WgptError(`${path}: ${what}; write it again with writeChatFormat`);
  if (typeof o !== 'object' || o === null || o.format !== 'wgpt-chatml') throw bad('not a wgpt-chatml chat format');
  if (o.version !== 1) throw bad(`version ${JSON.stringify(o.version)} is not supported (only 1)`);
  for (const k of ['imStart', 'imEnd', 'imSep', 'vocabSize'] as const) {
    if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) throw bad(`"${k}" must be a non-negative integer`);
  }
  if (typeof o.encoding !== 'string') throw bad('"encoding" must be a string');
  if (typeof o.vocabSha256 !== 'string') throw bad('"vocabSha256" must be a string');
  if (!Array.isArray(o.added) || !o.added.every((x) => Number.isSafeInteger(x))) {
    throw bad('"added" must be a list of token ids');
  }
  return o as unknown as ChatFormatInfo;
}

/**
 * Checks that the chat format saved at `path` (beside a checkpoint) is `cf`; a mismatch is one line naming the
 * file, both encodings and what differs.
 */
export function checkChatFormat(path: string, cf: ChatFormat): void {
  const saved = readChatFormatInfo(path);
  const now = cf.info();
  const diffs: string[] = [];
  for (const k of ['encoding', 'imStart', 'imEnd', 'imSep', 'vocabSize'] as const) {
    if (saved[k] !== now[k]) diffs.push(`${k} ${JSON.stringify(saved[k])} there, ${JSON.stringify(now[k])} here`);
  }
  if (diffs.length === 0 && saved.vocabSha256 !== now.vocabSha256) {
    diffs.push('the same size but other tokens (vocabSha256 differs)');
  }
  if (diffs.length > 0) {
    throw new WgptError(
      `${path}: the checkpoint's chat format is not this one (${diffs.join('; ')}); ` +
        `use the encoding or tokenizer folder it was made with`,
    );
  }
}

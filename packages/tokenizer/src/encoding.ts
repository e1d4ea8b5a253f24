// The Encoding type: pre-tokenization + byte-level BPE + special tokens, with tiktoken's semantics.
import { WgptError } from '@wgpt/base/errors';
import { BpeCore } from './bpe.ts';
import type { PatternName } from './patterns.ts';
import { makeScanner, type Scanner } from './scan.ts';
import { decodeUtf8Escaped } from './utf8.ts';

export type SpecialSet = 'all' | Iterable<string>;

export interface EncodeOptions {
  /** Special-token texts to encode as their special ids ('all' for every one). Default: none. */
  allowedSpecial?: SpecialSet;
  /** Special-token texts that make encode throw when they appear. Default 'all' (= every special not allowed). */
  disallowedSpecial?: SpecialSet;
}

export interface Encoding {
  name: string;
  /** One more than the largest token id (mergeable or special). */
  nVocab: number;
  eotToken: number;
  specialTokens: Record<string, number>;
  /** The pre-tokenization pattern's name. */
  pattern: PatternName;
  encode(text: string, opts?: EncodeOptions): number[];
  /** Special-token text is encoded as plain text. */
  encodeOrdinary(text: string): number[];
  /** Raw bytes: valid UTF-8 encodes as the decoded text would; invalid bytes are kept byte-exact. */
  encodeBytes(bytes: Uint8Array): number[];
  decode(ids: ArrayLike<number>): string;
  decodeBytes(ids: ArrayLike<number>): Uint8Array;
  /** Bytes of one token (mergeable or special). */
  tokenBytes(id: number): Uint8Array;
  /** True for ids of special tokens. */
  isSpecial(id: number): boolean;
}

export interface EncodingSpec {
  name: string;
  pattern: PatternName;
  /** Mergeable tokens' bytes, index = rank = id. */
  tokens: readonly Uint8Array[];
  specialTokens: Record<string, number>;
  /** Name of the end-of-text special token (default `<|endoftext|>`). */
  eot?: string;
  /** log2 of the chunk cache's slot count (default 18). */
  cacheBits?: number;
}

/** Input text that holds a special token's text while that special is disallowed (tiktoken's default). */
export class DisallowedSpecialError extends WgptError {
  override name = 'DisallowedSpecialError';
  constructor(
    readonly token: string,
    readonly index: number,
  ) {
    super(
      `encountered the special token ${JSON.stringify(token)} at character ${index} of the input, ` +
        `which is not allowed; pass allowedSpecial to encode it as a special token, ` +
        `or disallowedSpecial: [] (or encodeOrdinary) to encode it as text`,
    );
  }
}

const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** A well-formed string: lone surrogates become U+FFFD (what tiktoken does to unencodable input). */
// ES2024 string methods (Node 20 has them; the project's lib setting is ES2023).
type Es2024String = { isWellFormed(): boolean; toWellFormed(): string };
function wellFormed(s: string): string {
  const w = s as unknown as Es2024String;
  return w.isWellFormed() ? s : w.toWellFormed();
}

export class BpeEncoding implements Encoding {
  readonly name: string;
  readonly nVocab: number;
  readonly eotToken: number;
  readonly specialTokens: Record<string, number>;
  readonly pattern: PatternName;
  readonly core: BpeCore;
  private readonly scanner: Scanner;
  private readonly decoder: (Uint8Array | undefined)[];
  private readonly specialIds = new Set<number>();
  private readonly specialRegexCache = new Map<string, RegExp>();
  private readonly allSpecialNames: string[];

  constructor(spec: EncodingSpec) {
    this.name = spec.name;
    this.pattern = spec.pattern;
    this.core = new BpeCore(spec.tokens, { cacheBits: spec.cacheBits });
    this.scanner = makeScanner(spec.pattern);
    this.specialTokens = Object.freeze({ ...spec.specialTokens });
    this.allSpecialNames = Object.keys(this.specialTokens);
    let max = spec.tokens.length - 1;
    const enc = new TextEncoder();
    this.decoder = spec.tokens.slice();
    for (const [text, id] of Object.entries(this.specialTokens)) {
      if (!Number.isInteger(id) || id < 0)
        throw new Error(`special token ${JSON.stringify(text)} has invalid id ${id}`);
      if (id < spec.tokens.length) {
        throw new Error(
          `special token ${JSON.stringify(text)} id ${id} collides with a mergeable token ` +
            `(0..${spec.tokens.length - 1})`,
        );
      }
      if (this.specialIds.has(id)) throw new Error(`special token ${JSON.stringify(text)} reuses id ${id}`);
      if (text.length === 0) throw new Error('special token text must not be empty');
      this.specialIds.add(id);
      this.decoder[id] = enc.encode(text);
      if (id > max) max = id;
    }
    this.nVocab = max + 1;
    const eotName = spec.eot ?? '<|endoftext|>';
    this.eotToken = this.specialTokens[eotName] ?? -1;
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  tokenBytes(id: number): Uint8Array {
    const b = this.decoder[id];
    if (b === undefined) throw new RangeError(`${this.name}: unknown token id ${id}`);
    return b;
  }

  /** Encode well-formed or surrogate-escaped text with no special-token handling. */
  private ordinaryInto(text: string, out: number[]): void {
    const core = this.core;
    this.scanner(text, (a, b) => core.encodeRange(text, a, b, out));
  }

  encodeOrdinary(text: string): number[] {
    const out: number[] = [];
    this.ordinaryInto(wellFormed(text), out);
    return out;
  }

  /** Encode ordinary text into an existing array (for streaming). */
  encodeOrdinaryInto(text: string, out: number[]): void {
    this.ordinaryInto(wellFormed(text), out);
  }

  encodeBytes(bytes: Uint8Array): number[] {
    const out: number[] = [];
    this.ordinaryInto(decodeUtf8Escaped(bytes), out);
    return out;
  }

  /** Encode text in which U+DC80..U+DCFF stand for raw bytes (see utf8.ts), with no special handling. */
  encodeEscaped(text: string): number[] {
    const out: number[] = [];
    this.ordinaryInto(text, out);
    return out;
  }

  private specialRegex(names: string[]): RegExp {
    const key = names.join('\u0000');
    let re = this.specialRegexCache.get(key);
    if (!re) {
      // Longest first so that a special which is a prefix of another does not shadow it.
      const sorted = [...names].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
      re = new RegExp(sorted.map(escapeRegex).join('|'), 'gu');
      this.specialRegexCache.set(key, re);
    }
    return re;
  }

  /**
   * As tiktoken: allowed names that are not special tokens of this encoding are ignored; disallowed strings
   * are refused whatever they are.
   */
  private resolve(set: SpecialSet, kind: 'allowed' | 'disallowed'): Set<string> {
    if (set === 'all') return new Set(this.allSpecialNames);
    const s = new Set<string>();
    for (const t of set) {
      if (typeof t !== 'string' || t.length === 0)
        throw new TypeError(`${kind}Special: ${JSON.stringify(t)} is not a non-empty string`);
      if (kind === 'disallowed' || Object.hasOwn(this.specialTokens, t)) s.add(t);
    }
    return s;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    text = wellFormed(text);
    const allowed =
      opts.allowedSpecial === undefined ? new Set<string>() : this.resolve(opts.allowedSpecial, 'allowed');
    let disallowed: Set<string>;
    if (opts.disallowedSpecial === undefined || opts.disallowedSpecial === 'all') {
      disallowed = new Set(this.allSpecialNames.filter((t) => !allowed.has(t)));
    } else disallowed = this.resolve(opts.disallowedSpecial, 'disallowed');
    if (disallowed.size > 0) {
      const re = this.specialRegex([...disallowed].sort());
      re.lastIndex = 0;
      const m = re.exec(text);
      if (m) throw new DisallowedSpecialError(m[0], m.index);
    }
    const out: number[] = [];
    if (allowed.size === 0) {
      this.ordinaryInto(text, out);
      return out;
    }
    const re = this.specialRegex([...allowed].sort());
    re.lastIndex = 0;
    let pos = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      if (m.index > pos) this.ordinaryInto(text.slice(pos, m.index), out);
      out.push(this.specialTokens[m[0]]);
      pos = m.index + m[0].length;
    }
    if (pos < text.length) this.ordinaryInto(pos === 0 ? text : text.slice(pos), out);
    return out;
  }

  /** All token bytes back to back, with each id's start and length (start -1: no such id). */
  private flat?: { bytes: Uint8Array; start: Int32Array; len: Int32Array };

  private flatTable() {
    if (this.flat) return this.flat;
    const n = this.nVocab;
    const start = new Int32Array(n).fill(-1);
    const len = new Int32Array(n);
    let total = 0;
    for (let id = 0; id < n; id++) total += this.decoder[id]?.length ?? 0;
    const bytes = new Uint8Array(total);
    let o = 0;
    for (let id = 0; id < n; id++) {
      const b = this.decoder[id];
      if (b === undefined) continue;
      start[id] = o;
      len[id] = b.length;
      bytes.set(b, o);
      o += b.length;
    }
    this.flat = { bytes, start, len };
    return this.flat;
  }

  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    const { bytes, start, len } = this.flatTable();
    const n = start.length;
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < n) || start[id] < 0 || !Number.isInteger(id)) {
        throw new RangeError(`${this.name}: cannot decode unknown token id ${id} (at index ${i})`);
      }
      total += len[id];
    }
    const out = new Uint8Array(total);
    let o = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      let k = start[id];
      const e = k + len[id];
      while (k < e) out[o++] = bytes[k++];
    }
    return out;
  }

  /** Invalid UTF-8 in the bytes becomes U+FFFD (tiktoken's errors="replace"). */
  decode(ids: ArrayLike<number>): string {
    return utf8Decoder.decode(this.decodeBytes(ids));
  }
}

// Pre-tokenizers: split text into chunks with an encoding's pattern.
//
// The regexes in patterns.ts define the splits. The hand-written scanners below produce the same chunks
// (scan.test.ts checks them against the regexes on real and fuzzed text) about 3x faster: each character's
// classes come from a table, and every alternative of the pattern is resolved by looking at runs of classes,
// following the regex engine's leftmost-first, greedy-with-backtracking rules. The derivations are in the
// comments of each scanner.
import { type PatternName, patternRegex } from './patterns.ts';

/** Calls emit(start, end) for each chunk text.slice(start, end), in order; the chunks cover the text. */
export type Scanner = (text: string, emit: (start: number, end: number) => void) => void;

export function makeRegexScanner(name: PatternName): Scanner {
  const re = patternRegex(name);
  return (text, emit) => {
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) emit(m.index, m.index + m[0].length);
  };
}

// Character class bits. 0 means "past the end of the text".
const L = 1; // \p{L}
const N = 2; // \p{N}
const S = 4; // \p{White_Space}
const O = 8; // none of L, N, S
const UP = 16; // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
const LO = 32; // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
const NL = 64; // \r or \n
const WIDE = 128; // the code point takes two UTF-16 units
/** Qualifies for the optional prefix [^\r\n\p{L}\p{N}]. */
const PREFIX_OK = S | O;

const reL = /\p{L}/u;
const reN = /\p{N}/u;
const reS = /\p{White_Space}/u;
const reUP = /[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]/u;
const reLO = /[\p{Ll}\p{Lm}\p{Lo}\p{M}]/u;

function classify(cp: number): number {
  const ch = String.fromCodePoint(cp);
  let k = 0;
  if (reL.test(ch)) k |= L;
  else if (reN.test(ch)) k |= N;
  else if (reS.test(ch)) k |= S;
  else k |= O;
  if (reUP.test(ch)) k |= UP;
  if (reLO.test(ch)) k |= LO;
  if (cp === 10 || cp === 13) k |= NL;
  return k;
}

let BMP: Uint8Array | undefined;
const astralCache = new Map<number, number>();

function bmpTable(): Uint8Array {
  if (BMP) return BMP;
  const t = new Uint8Array(65536);
  for (let c = 0; c < 65536; c++) {
    if (c >= 0xd800 && c <= 0xdfff) t[c] = O; // lone surrogates (and escaped raw bytes) are "other"
    else t[c] = classify(c);
  }
  BMP = t;
  return t;
}

function astral(cp: number): number {
  let k = astralCache.get(cp);
  if (k === undefined) {
    k = classify(cp) | WIDE;
    astralCache.set(cp, k);
  }
  return k;
}

/** Classes of the code point at i (0 at or past the end). */
function makeCls(T: Uint8Array) {
  return (text: string, i: number): number => {
    if (i >= text.length) return 0;
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) return T[c];
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return astral(((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000);
    return T[c];
  };
}

const w = (k: number) => (k & WIDE ? 2 : 1);

/**
 * Case-insensitive contraction after an apostrophe at i ('s 't 're 've 'm 'll 'd; s also matches U+017F): its length
 * or 0.
 */
function contractionCI(text: string, i: number): number {
  const a = text.charCodeAt(i + 1) | 0x20;
  if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) {
    // s t m d (0x73|0x20 etc.); exclude chars that only alias after |0x20
    const r = text.charCodeAt(i + 1);
    if (r === 0x73 || r === 0x53 || r === 0x74 || r === 0x54 || r === 0x6d || r === 0x4d || r === 0x64 || r === 0x44)
      return 2;
    return 0;
  }
  const r = text.charCodeAt(i + 1);
  if (r === 0x17f) return 2;
  const b = text.charCodeAt(i + 2);
  if ((r === 0x72 || r === 0x52 || r === 0x76 || r === 0x56) && (b === 0x65 || b === 0x45)) return 3;
  if ((r === 0x6c || r === 0x4c) && (b === 0x6c || b === 0x4c)) return 3;
  return 0;
}

/** Case-sensitive contraction for the GPT-2 pattern: 's 't 're 've 'm 'll 'd. */
function contractionCS(text: string, i: number): number {
  const r = text.charCodeAt(i + 1);
  if (r === 0x73 || r === 0x74 || r === 0x6d || r === 0x64) return 2;
  const b = text.charCodeAt(i + 2);
  if ((r === 0x72 || r === 0x76) && b === 0x65) return 3;
  if (r === 0x6c && b === 0x6c) return 3;
  return 0;
}

/**
 * The whitespace alternatives shared by all patterns, for a run of whitespace [i, k):
 *   \s*[\r\n]+ (gpt4/gpt4o only): ends right after the last \r or \n of the run, if there is one;
 *   \s+(?!\S): the whole run at the end of the text, else the run minus its last character (if >= 2 long);
 *   \s+: the single character.
 */
function whitespaceEnd(text: string, i: number, k: number, newlines: boolean): number {
  if (newlines) {
    // Last \r or \n in [i, k). Whitespace is never astral, so units = code points here.
    for (let p = k - 1; p >= i; p--) {
      const c = text.charCodeAt(p);
      if (c === 10 || c === 13) return p + 1;
    }
  }
  if (k >= text.length) return k;
  // The run's last character is one unit (no astral whitespace).
  if (k - i >= 2) return k - 1;
  return k;
}

function runEnd(text: string, i: number, mask: number, cls: (t: string, i: number) => number): number {
  for (;;) {
    const k = cls(text, i);
    if (!(k & mask)) return i;
    i += w(k);
  }
}

/** gpt2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
function scanGpt2(text: string, emit: (start: number, end: number) => void): void {
  const cls = makeCls(bmpTable());
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    const k = cls(text, i);
    let j: number;
    if (c === 0x27 && (j = contractionCS(text, i)) > 0) j += i;
    else if (k & (L | N | O)) j = runEnd(text, i, k & (L | N | O), cls);
    else {
      // whitespace
      const k2 = c === 0x20 ? cls(text, i + 1) : 0;
      if (k2 & (L | N | O)) j = runEnd(text, i + 1, k2 & (L | N | O), cls);
      else j = whitespaceEnd(text, i, runEnd(text, i, S, cls), false);
    }
    emit(i, j);
    i = j;
  }
}

/**
 * gpt4:
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 */
function scanGpt4(text: string, emit: (start: number, end: number) => void): void {
  const cls = makeCls(bmpTable());
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    const k = cls(text, i);
    let j: number;
    if (c === 0x27 && (j = contractionCI(text, i)) > 0) j += i;
    else if (k & L) j = runEnd(text, i, L, cls);
    else if (k & PREFIX_OK && !(k & NL) && cls(text, i + w(k)) & L) j = runEnd(text, i + w(k), L, cls);
    else if (k & N) {
      j = i + w(k);
      for (let m = 1; m < 3; m++) {
        const k2 = cls(text, j);
        if (!(k2 & N)) break;
        j += w(k2);
      }
    } else if (k & O) j = runEnd(text, runEnd(text, i, O, cls), NL, cls);
    else if (c === 0x20 && cls(text, i + 1) & O) j = runEnd(text, runEnd(text, i + 1, O, cls), NL, cls);
    else j = whitespaceEnd(text, i, runEnd(text, i, S, cls), true);
    emit(i, j);
    i = j;
  }
}

/**
 * The letter alternatives of gpt4o, starting at s (after an optional prefix):
 *   A: [UP]*[LO]+ then an optional contraction. UP* is greedy to u; LO+ must start at the largest q <= u whose
 *      character is LO (backtracking), and runs greedily from q. Fails when there is no such q.
 *   B: [UP]+[LO]* then an optional contraction (only reached when A failed for every prefix choice).
 * Returns the end, or -1.
 */
function letterA(text: string, s: number, cls: (t: string, i: number) => number): number {
  let u = s;
  let q = -1; // last LO position within the UP run
  let qEnd = -1;
  for (;;) {
    const k = cls(text, u);
    if (!(k & UP)) break;
    if (k & LO) {
      q = u;
      qEnd = u + w(k);
    }
    u += w(k);
  }
  let end: number;
  if (cls(text, u) & LO) end = runEnd(text, u, LO, cls);
  else if (q >= 0) end = qEnd;
  else return -1;
  return withContraction(text, end);
}

function letterB(text: string, s: number, cls: (t: string, i: number) => number): number {
  const u = runEnd(text, s, UP, cls);
  if (u === s) return -1;
  return withContraction(text, runEnd(text, u, LO, cls));
}

function withContraction(text: string, end: number): number {
  if (text.charCodeAt(end) === 0x27) {
    const m = contractionCI(text, end);
    if (m > 0) return end + m;
  }
  return end;
}

/** gpt4o: see patterns.ts. */
function scanGpt4o(text: string, emit: (start: number, end: number) => void): void {
  const cls = makeCls(bmpTable());
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    const k = cls(text, i);
    let j = -1;
    const prefixOk = k & PREFIX_OK && !(k & NL);
    // A with the prefix, then A without it; then B likewise.
    if (prefixOk) j = letterA(text, i + w(k), cls);
    if (j < 0 && k & (UP | LO)) j = letterA(text, i, cls);
    if (j < 0 && prefixOk) j = letterB(text, i + w(k), cls);
    if (j < 0 && k & (UP | LO)) j = letterB(text, i, cls);
    if (j >= 0) {
      // matched a letter alternative
    } else if (k & N) {
      j = i + w(k);
      for (let m = 1; m < 3; m++) {
        const k2 = cls(text, j);
        if (!(k2 & N)) break;
        j += w(k2);
      }
    } else if (k & O) j = trailNlSlash(text, runEnd(text, i, O, cls));
    else if (c === 0x20 && cls(text, i + 1) & O) j = trailNlSlash(text, runEnd(text, i + 1, O, cls));
    else if (k & L) {
      // A letter that is neither UP nor LO cannot exist (every \p{L} is Lu, Ll, Lt, Lm or Lo).
      j = i + w(k);
    } else j = whitespaceEnd(text, i, runEnd(text, i, S, cls), true);
    emit(i, j);
    i = j;
  }
}

/** [\r\n/]* */
function trailNlSlash(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13 || c === 0x2f) i++;
    else return i;
  }
}

const FAST: Record<PatternName, Scanner> = { gpt2: scanGpt2, gpt4: scanGpt4, gpt4o: scanGpt4o };

export function makeScanner(name: PatternName): Scanner {
  return FAST[name];
}

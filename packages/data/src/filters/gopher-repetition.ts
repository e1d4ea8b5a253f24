// Gopher repetition filter (Rae et al. 2021, table A1), with the thresholds FineWeb uses by default.
import type { Doc, Verdict } from '../types.ts';
import { findDuplicates, splitWords } from './text.ts';

export interface GopherRepetitionOptions {
  dupLineFrac?: number;
  dupParaFrac?: number;
  dupLineCharFrac?: number;
  dupParaCharFrac?: number;
  /** [n, max fraction of characters in the most frequent n-gram] */
  topNGrams?: [number, number][];
  /** [n, max fraction of characters in duplicated n-grams] */
  dupNGrams?: [number, number][];
}

export const GOPHER_REPETITION_DEFAULTS: Required<GopherRepetitionOptions> = {
  dupLineFrac: 0.3,
  dupParaFrac: 0.3,
  dupLineCharFrac: 0.2,
  dupParaCharFrac: 0.2,
  topNGrams: [[2, 0.2], [3, 0.18], [4, 0.16]],
  dupNGrams: [[5, 0.15], [6, 0.14], [7, 0.13], [8, 0.12], [9, 0.11], [10, 0.1]],
};

/** Words as integer ids plus their lengths, so n-grams are hashed from numbers instead of joined strings. */
export interface WordIds { ids: Uint32Array; lens: Uint32Array }
export function wordIds(words: string[]): WordIds {
  const dict = new Map<string, number>();
  const ids = new Uint32Array(words.length);
  const lens = new Uint32Array(words.length);
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    let id = dict.get(w);
    if (id === undefined) { id = dict.size; dict.set(w, id); }
    ids[i] = id;
    lens[i] = w.length;
  }
  return { ids, lens };
}

/** 52-bit key of the n-gram starting at i (two independent 32-bit multiplicative hashes; collisions ~2^-52). */
function gramKey(ids: Uint32Array, i: number, n: number): number {
  let a = 0x9e3779b9 ^ n, b = 0x85ebca6b;
  for (let k = 0; k < n; k++) {
    const x = ids[i + k];
    a = Math.imul(a ^ x, 0x01000193) + 0x7f4a7c15;
    b = Math.imul(b + x, 0xc2b2ae35) ^ (b >>> 15);
  }
  return (a >>> 0) * 0x100000 + ((b >>> 0) & 0xfffff);
}

function gramChars(lens: Uint32Array, i: number, n: number): number {
  let c = 0;
  for (let k = 0; k < n; k++) c += lens[i + k];
  return c;
}

/**
 * Characters of the most frequent n-gram (words joined by spaces) times its count; ties go to the n-gram seen
 * first, as with Python's Counter.most_common in datatrove.
 */
export function topNGramChars(words: string[] | WordIds, n: number): number {
  const { ids, lens } = Array.isArray(words) ? wordIds(words) : words;
  if (ids.length < n) return 0;
  const counts = new Map<number, number>();
  const first = new Map<number, number>();
  let bestCount = 0;
  let bestFirst = 0;
  for (let i = 0; i + n <= ids.length; i++) {
    const g = gramKey(ids, i, n);
    const prev = counts.get(g);
    const c = (prev ?? 0) + 1;
    counts.set(g, c);
    if (prev === undefined) first.set(g, i);
    const f = first.get(g)!;
    if (c > bestCount || (c === bestCount && f < bestFirst)) { bestCount = c; bestFirst = f; }
  }
  return bestCount * (gramChars(lens, bestFirst, n) + n - 1);
}

/** Characters in n-grams that repeat an earlier one (greedy, skipping over each repeat). */
export function dupNGramChars(words: string[] | WordIds, n: number): number {
  const { ids, lens } = Array.isArray(words) ? wordIds(words) : words;
  const seen = new Set<number>();
  let chars = 0;
  let i = 0;
  while (i + n <= ids.length) {
    const g = gramKey(ids, i, n);
    if (seen.has(g)) { chars += gramChars(lens, i, n); i += n; } else { seen.add(g); i++; }
  }
  return chars;
}

export class GopherRepetitionFilter {
  readonly o: Required<GopherRepetitionOptions>;
  constructor(opts: GopherRepetitionOptions = {}) {
    this.o = { ...GOPHER_REPETITION_DEFAULTS, ...opts };
  }
  check(text: string): string | null {
    const o = this.o;
    const len = text.length || 1;
    const paras = text.trim().split(/\n{2,}/);
    const p = findDuplicates(paras);
    if (p.dupElements / paras.length > o.dupParaFrac) return 'gopher_rep_dup_para_frac';
    if (p.dupChars / len > o.dupParaCharFrac) return 'gopher_rep_dup_para_char_frac';
    const lines = text.split(/\n+/);
    const l = findDuplicates(lines);
    if (l.dupElements / lines.length > o.dupLineFrac) return 'gopher_rep_dup_line_frac';
    if (l.dupChars / len > o.dupLineCharFrac) return 'gopher_rep_dup_line_char_frac';
    const words = wordIds(splitWords(text));
    for (const [n, frac] of o.topNGrams) if (topNGramChars(words, n) / len > frac) return `gopher_rep_top_${n}_gram`;
    for (const [n, frac] of o.dupNGrams) if (dupNGramChars(words, n) / len > frac) return `gopher_rep_dup_${n}_grams`;
    return null;
  }
  apply(doc: Doc): Verdict {
    const r = this.check(doc.text);
    return r ? { keep: false, reason: r } : { keep: true, doc };
  }
}

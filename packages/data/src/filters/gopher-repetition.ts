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

/** Characters covered by the most frequent n-gram (its length times its count). */
export function topNGramChars(words: string[], n: number): number {
  const counts = new Map<string, number>();
  let best = 0;
  for (let i = 0; i + n <= words.length; i++) {
    const g = words.slice(i, i + n).join(' ');
    const c = (counts.get(g) ?? 0) + 1;
    counts.set(g, c);
    const chars = c * (g.length - (n - 1)); // characters of the words, not the joining spaces
    if (chars > best) best = chars;
  }
  return best;
}

/** Characters in n-grams that repeat an earlier one (greedy, skipping over each repeat). */
export function dupNGramChars(words: string[], n: number): number {
  const seen = new Set<string>();
  let chars = 0;
  let i = 0;
  while (i + n <= words.length) {
    const g = words.slice(i, i + n).join(' ');
    if (seen.has(g)) { chars += g.length - (n - 1); i += n; } else { seen.add(g); i++; }
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
    const words = splitWords(text);
    for (const [n, frac] of o.topNGrams) if (topNGramChars(words, n) / len > frac) return `gopher_rep_top_${n}_gram`;
    for (const [n, frac] of o.dupNGrams) if (dupNGramChars(words, n) / len > frac) return `gopher_rep_dup_${n}_grams`;
    return null;
  }
  apply(doc: Doc): Verdict {
    const r = this.check(doc.text);
    return r ? { keep: false, reason: r } : { keep: true, doc };
  }
}

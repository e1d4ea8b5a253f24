// Gopher quality filter (Rae et al. 2021), FineWeb's defaults.
import type { Doc, Verdict } from '../types.ts';
import { hasAlpha, isSymbolToken, splitWords } from './text.ts';

export interface GopherQualityOptions {
  minDocWords?: number;
  maxDocWords?: number;
  minAvgWordLength?: number;
  maxAvgWordLength?: number;
  /** Max ratio of '#' symbols and of ellipses to words. */
  maxSymbolWordRatio?: number;
  maxBulletLinesRatio?: number;
  maxEllipsisLinesRatio?: number;
  /** Min fraction of words that contain an alphabetic character. */
  minAlphaWordsRatio?: number;
  minStopWords?: number;
  stopWords?: string[];
}

export const GOPHER_QUALITY_DEFAULTS: Required<GopherQualityOptions> = {
  minDocWords: 50,
  maxDocWords: 100_000,
  minAvgWordLength: 3,
  maxAvgWordLength: 10,
  maxSymbolWordRatio: 0.1,
  maxBulletLinesRatio: 0.9,
  maxEllipsisLinesRatio: 0.3,
  minAlphaWordsRatio: 0.8,
  minStopWords: 2,
  stopWords: ['the', 'be', 'to', 'of', 'and', 'that', 'have', 'with'],
};

function count(hay: string, needle: string): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i !== -1; i = hay.indexOf(needle, i + needle.length)) n++;
  return n;
}

export class GopherQualityFilter {
  readonly o: Required<GopherQualityOptions>;
  private readonly stop: Set<string>;
  constructor(opts: GopherQualityOptions = {}) {
    this.o = { ...GOPHER_QUALITY_DEFAULTS, ...opts };
    this.stop = new Set(this.o.stopWords);
  }
  check(text: string): string | null {
    const o = this.o;
    const words = splitWords(text);
    const nWords = words.length || 1;
    const real = words.filter((w) => !isSymbolToken(w));
    if (real.length < o.minDocWords) return 'gopher_short_doc';
    if (real.length > o.maxDocWords) return 'gopher_long_doc';
    let sum = 0;
    for (const w of real) sum += w.length;
    const avg = sum / real.length;
    if (avg < o.minAvgWordLength) return 'gopher_below_avg_word_length';
    if (avg > o.maxAvgWordLength) return 'gopher_above_avg_word_length';
    if (count(text, '#') / nWords > o.maxSymbolWordRatio) return 'gopher_too_many_hashes';
    if ((count(text, '...') + count(text, '…')) / nWords > o.maxSymbolWordRatio) return 'gopher_too_many_ellipsis';
    const lines = text.split(/\r?\n/);
    const bullets = lines.filter((l) => /^\s*[•-]/.test(l)).length; // '•' or '-', as in datatrove
    if (bullets / lines.length > o.maxBulletLinesRatio) return 'gopher_too_many_bullets';
    const ell = lines.filter((l) => /(\.\.\.|…)\s*$/.test(l)).length;
    if (ell / lines.length > o.maxEllipsisLinesRatio) return 'gopher_too_many_end_ellipsis';
    const alpha = words.filter(hasAlpha).length;
    if (alpha / nWords < o.minAlphaWordsRatio) return 'gopher_below_alpha_threshold';
    let stops = 0;
    for (const w of words) if (this.stop.has(w.toLowerCase()) && ++stops >= o.minStopWords) break;
    if (stops < o.minStopWords) return 'gopher_not_enough_stop_words';
    return null;
  }
  apply(doc: Doc): Verdict {
    const r = this.check(doc.text);
    return r ? { keep: false, reason: r } : { keep: true, doc };
  }
}

// FineWeb's own quality filter (Penedo et al. 2024, section 3.5), with its published thresholds.
import type { Doc, Verdict } from '../types.ts';
import { endsWithAny, findDuplicates, splitWords, TERMINAL_PUNCT } from './text.ts';

export interface FineWebQualityOptions {
  /** Remove when the fraction of lines ending in terminal punctuation is ≤ this (default 0.12). */
  linePunctThr?: number;
  /** Do not apply the punctuation rule when no line ends in punctuation (default false). */
  linePunctExcludeZero?: boolean;
  /** Remove when the fraction of lines with ≤ shortLineLength chars is ≥ this (default 0.67). */
  shortLineThr?: number;
  shortLineLength?: number;
  /** Remove when the characters in duplicated lines are ≥ this fraction of all characters (default 0.01). */
  charDuplicatesRatio?: number;
  /** Remove when newlines per word exceed this (default 0.3). */
  newLineRatio?: number;
}

export const FINEWEB_DEFAULTS: Required<FineWebQualityOptions> = {
  linePunctThr: 0.12,
  linePunctExcludeZero: false,
  shortLineThr: 0.67,
  shortLineLength: 30,
  charDuplicatesRatio: 0.01,
  newLineRatio: 0.3,
};

export class FineWebQualityFilter {
  readonly o: Required<FineWebQualityOptions>;
  constructor(opts: FineWebQualityOptions = {}) {
    this.o = { ...FINEWEB_DEFAULTS, ...opts };
  }
  check(text: string): string | null {
    const o = this.o;
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0) return 'fineweb_empty';
    const punct = lines.filter((l) => endsWithAny(l, TERMINAL_PUNCT)).length / lines.length;
    if (punct <= o.linePunctThr && !(punct === 0 && o.linePunctExcludeZero)) return 'fineweb_line_punct_ratio';
    const short = lines.filter((l) => l.length <= o.shortLineLength).length / lines.length;
    if (short >= o.shortLineThr) return 'fineweb_short_line_ratio';
    const chars = text.replace(/\n/g, '').length || 1;
    if (findDuplicates(lines).dupChars / chars >= o.charDuplicatesRatio) return 'fineweb_char_dup_ratio';
    const words = splitWords(text).length || 1;
    const newlines = text.split('\n').length - 1;
    if (newlines / words > o.newLineRatio) return 'fineweb_list_ratio';
    return null;
  }
  apply(doc: Doc): Verdict {
    const r = this.check(doc.text);
    return r ? { keep: false, reason: r } : { keep: true, doc };
  }
}

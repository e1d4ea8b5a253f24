// C4 heuristics (Raffel et al. 2020) as FineWeb applies them: line-level removals rewrite the text,
// document-level rules remove the document. FineWeb turns the terminal-punctuation line rule off.
import type { Doc, Verdict } from '../types.ts';
import { splitSentences } from './text.ts';

export interface C4Options {
  /** Drop lines that do not end in terminal punctuation (C4: true; FineWeb: false, the default here). */
  filterNoTerminalPunct?: boolean;
  /** Remove citation markers like [1], [edit], [citation needed] (default true). */
  removeCitations?: boolean;
  minNumSentences?: number;
  minWordsPerLine?: number;
  maxWordLength?: number;
  filterLoremIpsum?: boolean;
  filterJavascript?: boolean;
  filterCurlyBracket?: boolean;
  filterPolicy?: boolean;
}

export const C4_DEFAULTS: Required<C4Options> = {
  filterNoTerminalPunct: false,
  removeCitations: true,
  minNumSentences: 5,
  minWordsPerLine: 3,
  maxWordLength: 1000,
  filterLoremIpsum: true,
  filterJavascript: true,
  filterCurlyBracket: true,
  filterPolicy: true,
};

const END_PUNCT = ['.', '?', '!', '"', "'"];
const POLICY = ['terms of use', 'privacy policy', 'cookie policy', 'uses cookies', 'use of cookies', 'use cookies'];
const CITATION = /\[\d*\]|\[edit\]|\[citation needed\]/gi;

export interface C4Result {
  reason: string | null;
  text: string;
  /** Lines removed, per rule. */
  linesRemoved: Record<string, number>;
}

export class C4QualityFilter {
  readonly o: Required<C4Options>;
  constructor(opts: C4Options = {}) {
    this.o = { ...C4_DEFAULTS, ...opts };
  }
  run(text: string): C4Result {
    const o = this.o;
    const kept: string[] = [];
    const linesRemoved: Record<string, number> = {};
    const drop = (r: string) => { linesRemoved[r] = (linesRemoved[r] ?? 0) + 1; };
    // Rule order as in datatrove's C4QualityFilter: the document-level rules only look at lines that survived the
    // line-level ones before them.
    for (const raw of text.split('\n')) {
      let line = raw.trim();
      const words = line.split(/\s+/).filter(Boolean);
      if (words.some((w) => w.length > o.maxWordLength)) { drop('too_long_word'); continue; }
      if (o.removeCitations) line = line.replace(CITATION, '');
      if (o.filterNoTerminalPunct && (!END_PUNCT.some((p) => line.endsWith(p)) || line.endsWith('...'))) {
        drop('no_terminal_punct');
        continue;
      }
      if (words.length < o.minWordsPerLine) { drop('too_few_words'); continue; }
      const lower = line.toLowerCase();
      if (o.filterLoremIpsum && lower.includes('lorem ipsum')) return { reason: 'c4_lorem_ipsum', text, linesRemoved };
      if (o.filterJavascript && lower.includes('javascript')) { drop('javascript'); continue; }
      if (o.filterCurlyBracket && line.includes('{')) return { reason: 'c4_curly_bracket', text, linesRemoved };
      if (o.filterPolicy && POLICY.some((p) => lower.includes(p))) { drop('policy'); continue; }
      kept.push(line);
    }
    const out = kept.join('\n');
    if (o.minNumSentences > 0 && splitSentences(out).length < o.minNumSentences) {
      return { reason: 'c4_too_few_sentences', text: out, linesRemoved };
    }
    return { reason: null, text: out, linesRemoved };
  }
  apply(doc: Doc): Verdict {
    const r = this.run(doc.text);
    if (r.reason) return { keep: false, reason: r.reason };
    doc.text = r.text;
    return { keep: true, doc };
  }
}

// Stage 4: language identification with fastText's lid.176 (fasttext.wasm.js ships the model; no network).
import type { Doc, Verdict } from './types.ts';

export interface LangIdOptions {
  /** ISO 639-1 codes to keep (default ['en']); empty array keeps every language (metadata only). */
  languages?: string[];
  /** Minimum score of the top language (default 0.65, FineWeb's value). */
  minScore?: number;
}

type LidModel = { identify(text: string): Promise<{ alpha2?: string; alpha3?: string; possibility: number }> };
let modelPromise: Promise<LidModel> | null = null;

export function loadLidModel(): Promise<LidModel> {
  modelPromise ??= (async () => {
    const { getLIDModel } = await import('fasttext.wasm.js');
    const m = await getLIDModel();
    await m.load();
    return m as unknown as LidModel;
  })();
  return modelPromise;
}

/** Top language (ISO 639-1 where one exists, else 639-3) and its score; newlines are folded like fastText expects. */
export async function identifyLanguage(text: string): Promise<{ language: string; score: number }> {
  const m = await loadLidModel();
  const r = await m.identify(text.replace(/\s+/g, ' ').slice(0, 100_000));
  return { language: r.alpha2 ?? r.alpha3 ?? 'unknown', score: r.possibility };
}

export class LanguageFilter {
  readonly languages: Set<string>;
  readonly minScore: number;
  constructor(opts: LangIdOptions = {}) {
    this.languages = new Set(opts.languages ?? ['en']);
    this.minScore = opts.minScore ?? 0.65;
  }
  async apply(doc: Doc): Promise<Verdict> {
    const { language, score } = await identifyLanguage(doc.text);
    doc.meta.language = language;
    doc.meta.language_score = Math.round(score * 10000) / 10000;
    if (this.languages.size > 0 && !this.languages.has(language)) return { keep: false, reason: 'language' };
    if (score < this.minScore) return { keep: false, reason: 'language_score' };
    return { keep: true, doc };
  }
}

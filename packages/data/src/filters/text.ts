// Shared text helpers for the quality filters.

/** Word tokens: runs of letters/digits (with inner apostrophes), and runs of other non-space characters. */
const WORD_RE = /[\p{L}\p{N}\p{M}]+(?:['’][\p{L}\p{M}]+)*|[^\s\p{L}\p{N}\p{M}]+/gu;
export function splitWords(text: string): string[] {
  return text.match(WORD_RE) ?? [];
}

const PUNCT_RE = /^[\p{P}\p{S}]+$/u;
/** True when every character of the token is punctuation or a symbol. */
export function isSymbolToken(w: string): boolean {
  return PUNCT_RE.test(w);
}

const ALPHA_RE = /\p{L}/u;
export function hasAlpha(w: string): boolean {
  return ALPHA_RE.test(w);
}

/** Count of elements seen before and the characters they hold (the first occurrence is not a duplicate). */
export function findDuplicates(items: string[]): { dupElements: number; dupChars: number } {
  const seen = new Set<string>();
  let dupElements = 0;
  let dupChars = 0;
  for (const x of items) {
    if (seen.has(x)) { dupElements++; dupChars += x.length; } else seen.add(x);
  }
  return { dupElements, dupChars };
}

/** Terminal punctuation used by FineWeb's line filters (a subset of Unicode sentence terminators). */
export const TERMINAL_PUNCT = [
  '.', '!', '?', '։', '؞', '؟', '۔', '܀', '܁', '܂', '߹', '।', '॥', '၊', '။', '።', '፧', '፨', '᙮', '᜵', '᜶', '᠃', '᠉',
  '᥄', '᥅', '᪨', '᪩', '᪪', '᪫', '᭚', '᭛', '᭞', '᭟', '᰻', '᰼', '᱾', '᱿', '‼', '‽', '⁇', '⁈', '⁉', '⸮', '⸼', '꓿', '꘎',
  '꘏', '꛳', '꛷', '꡶', '꡷', '꣎', '꣏', '꤯', '꧈', '꧉', '꩝', '꩞', '꩟', '꫰', '꫱', '꯫', '﹒', '﹖', '﹗', '！', '．', '？',
  '｡', '"', "'", '”', '’', '…',
];
export function endsWithAny(s: string, ends: readonly string[]): boolean {
  for (const e of ends) if (s.endsWith(e)) return true;
  return false;
}

/** Rough sentence splitter: terminal punctuation followed by whitespace, or a newline. */
export function splitSentences(text: string): string[] {
  return text.split(/(?<=[.!?。！？])\s+|\n+/u).map((s) => s.trim()).filter(Boolean);
}

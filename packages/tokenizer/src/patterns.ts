// Pre-tokenization patterns. tiktoken compiles its patterns with Rust's fancy-regex; these are the same
// patterns rewritten for JavaScript's `u`-flag regexes so that they split text identically:
//  - `\s` becomes `\p{White_Space}`: JS `\s` also matches U+FEFF and misses U+0085, Rust's does the opposite.
//  - `(?i:'s|...)` is expanded by hand: JS regexes in Node 20 have no inline flag groups, and a global `i`
//    flag would make `\p{Lu}` match lowercase letters. Under Unicode simple case folding `s` also matches
//    U+017F (long s), so it is spelled `[sSſ]`.
// The fast hand-written scanners in scan.ts implement these same patterns; tests check them against the regexes.

export type PatternName = 'gpt2' | 'gpt4' | 'gpt4o';

const S = '\\p{White_Space}';
const NS = '\\P{White_Space}';
const CONTRACTIONS_CI = "'(?:[sSſ]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])";

/** The pattern strings as tiktoken writes them (for documentation and the saved JSON). */
export const TIKTOKEN_PATTERNS: Record<PatternName, string> = {
  gpt2: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  gpt4:
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" +
    '\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+',
  gpt4o: [
    '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+' +
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*' +
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    '\\p{N}{1,3}',
    ' ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*',
    '\\s*[\\r\\n]+',
    '\\s+(?!\\S)',
    '\\s+',
  ].join('|'),
};

/** The same patterns as JavaScript regex sources (flags `gu`). */
export const JS_PATTERNS: Record<PatternName, string> = {
  gpt2: `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${S}\\p{L}\\p{N}]+|${S}+(?!${NS})|${S}+`,
  gpt4:
    `${CONTRACTIONS_CI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^${S}\\p{L}\\p{N}]+[\\r\\n]*|` +
    `${S}*[\\r\\n]+|${S}+(?!${NS})|${S}+`,
  gpt4o: [
    `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:${CONTRACTIONS_CI})?`,
    `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:${CONTRACTIONS_CI})?`,
    '\\p{N}{1,3}',
    ` ?[^${S}\\p{L}\\p{N}]+[\\r\\n/]*`,
    `${S}*[\\r\\n]+`,
    `${S}+(?!${NS})`,
    `${S}+`,
  ].join('|'),
};

export const PATTERN_NAMES: readonly PatternName[] = ['gpt2', 'gpt4', 'gpt4o'];

export function isPatternName(s: string): s is PatternName {
  return (PATTERN_NAMES as readonly string[]).includes(s);
}

export function patternRegex(name: PatternName): RegExp {
  return new RegExp(JS_PATTERNS[name], 'gu');
}

/** Split with the regex (the slow, obviously-correct path; the scanners must agree with it). */
export function regexSplit(name: PatternName, text: string): string[] {
  const re = patternRegex(name);
  const out: string[] = [];
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) out.push(m[0]);
  return out;
}

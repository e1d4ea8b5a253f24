import { describe, expect, it } from 'vitest';
import { PATTERN_NAMES, regexSplit } from './patterns.ts';
import { makeScanner } from './scan.ts';
import { codeText, fuzzText, generatedText, htmlText, proseText, rng } from './testing/corpus.ts';

function scan(name: (typeof PATTERN_NAMES)[number], text: string): string[] {
  const out: string[] = [];
  makeScanner(name)(text, (a, b) => out.push(text.slice(a, b)));
  return out;
}

function expectSameSplit(name: (typeof PATTERN_NAMES)[number], text: string, what: string): void {
  const got = scan(name, text);
  const want = regexSplit(name, text);
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) {
    if (got[i] !== want[i]) {
      throw new Error(
        `${name} ${what}: chunk ${i} is ${JSON.stringify(got[i])}, regex gives ${JSON.stringify(want[i])}; ` +
          `context ${JSON.stringify(want.slice(Math.max(0, i - 3), i + 3))}`,
      );
    }
  }
  expect(got.length, `${name} ${what}`).toBe(want.length);
}

// Characters that exercise every branch: letters of each case class, marks, digits of each kind, spaces
// incl. U+0085 / U+FEFF / U+3000, newlines, apostrophes and contraction letters (with U+017F), slash, astral.
const ALPHABET = [
  ...'aAzZsStTrReEvVmMlLdDſ\'\'\'/ \n\r\t\v\f0123456789.,!?-_()[]{}<>"#',
  'ǅ', 'ʰ', 'ª', '中', 'ん', '\u0301', '\u0308', '\u093f', '٣', 'Ⅻ', '½', '\u00a0', '\u0085', '\ufeff', '\u3000',
  '\u2028', '\u200b', '😀', '𝐀', '𝐚', '𝟏', '\ud800', '\udc80', 'İ', 'ß', 'Σ', 'ς',
];

describe.each(PATTERN_NAMES)('scanner %s agrees with the regex', (name) => {
  it('on real text', () => {
    expectSameSplit(name, proseText(300_000), 'prose');
    expectSameSplit(name, codeText(300_000), 'code');
    expectSameSplit(name, htmlText(300_000), 'html');
    expectSameSplit(name, generatedText(200_000, 5), 'generated');
  });
  it('on random strings over a tricky alphabet', () => {
    const r = rng(99);
    for (let t = 0; t < 20000; t++) {
      const len = 1 + Math.floor(r() * 40);
      let s = '';
      for (let i = 0; i < len; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
      expectSameSplit(name, s, `case ${t} ${JSON.stringify(s)}`);
    }
  });
  it('on random code points', () => {
    for (let seed = 1; seed <= 30; seed++) expectSameSplit(name, fuzzText(2000, seed, true), `fuzz ${seed}`);
  });
});

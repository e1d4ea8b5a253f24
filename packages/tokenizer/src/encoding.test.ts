import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BpeEncoding,
  DisallowedSpecialError,
  getEncoding,
  OPENAI_ENCODING_NAMES,
  rankFilePath,
  readRankFile,
  RankFileError,
} from './index.ts';
import { fuzzText, generatedText, mixedCorpus, proseText, rng } from './testing/corpus.ts';

const require = createRequire(import.meta.url);
// tiktoken (OpenAI's Rust core compiled to wasm) is the reference implementation.
const tiktoken = require('tiktoken') as typeof import('tiktoken');
const refs = new Map(OPENAI_ENCODING_NAMES.map((n) => [n, tiktoken.get_encoding(n)]));
afterAll(() => refs.forEach((e) => e.free()));

/** Split into pieces of about `size` chars without cutting a surrogate pair. */
function pieces(text: string, size: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    let j = Math.min(text.length, i + size);
    const c = text.charCodeAt(j - 1);
    if (j < text.length && c >= 0xd800 && c <= 0xdbff) j++;
    out.push(text.slice(i, j));
    i = j;
  }
  return out;
}

function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function expectSameIds(got: number[], want: Uint32Array, what: string, decode: (ids: number[]) => string): void {
  const at = firstMismatch(got, want);
  if (at >= 0) {
    const ctx = decode(got.slice(Math.max(0, at - 5), at + 5));
    throw new Error(
      `${what}: ids differ at index ${at}: got ${JSON.stringify(got.slice(at, at + 8))}, ` +
        `want ${JSON.stringify(Array.from(want.slice(at, at + 8)))} near ${JSON.stringify(ctx)}`,
    );
  }
}

const corpus = mixedCorpus(1);

describe.each(OPENAI_ENCODING_NAMES)('%s matches tiktoken', (name) => {
  const enc = getEncoding(name);
  const ref = refs.get(name)!;

  it.each(corpus.map((c) => [c.kind, c.text] as const))('encodeOrdinary on %s text', (kind, text) => {
    expect(text.length).toBeGreaterThan(100_000);
    for (const p of pieces(text, 200_000)) {
      const got = enc.encodeOrdinary(p);
      expectSameIds(got, ref.encode_ordinary(p), `${name} ${kind}`, (ids) => enc.decode(ids));
      expect(enc.decode(got)).toBe(p);
    }
  });

  it('fuzzed Unicode: same ids and decode(encode(x)) = x', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const s = fuzzText(500 + seed * 20, seed);
      const got = enc.encodeOrdinary(s);
      expectSameIds(got, ref.encode_ordinary(s), `${name} fuzz seed ${seed}`, (ids) => enc.decode(ids));
      expect(enc.decode(got)).toBe(s);
    }
  });

  it('lone surrogates are encoded as U+FFFD, like tiktoken', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const s = fuzzText(300, 1000 + seed, true);
      expectSameIds(enc.encodeOrdinary(s), ref.encode_ordinary(s), `${name} surrogates ${seed}`, (ids) =>
        enc.decode(ids),
      );
    }
  });

  it('long runs of one character (heap BPE path)', () => {
    for (const c of [' ', '\n', 'a', '0', '=', '日', '😀', 'ab', ' \t', '\u3000']) {
      for (const n of [1, 2, 3, 127, 128, 129, 1000, 5000]) {
        const s = c.repeat(n) + 'x';
        expectSameIds(enc.encodeOrdinary(s), ref.encode_ordinary(s), `${name} run ${JSON.stringify(c)}x${n}`, (ids) =>
          enc.decode(ids),
        );
      }
    }
  });

  it('special tokens follow tiktoken semantics', () => {
    const eot = '<|endoftext|>';
    expect(enc.specialTokens[eot]).toBe(enc.eotToken);
    const text = `hello ${eot} world <|endofprompt|>!`;
    const known = Object.keys(enc.specialTokens).filter(
      (t) => t === eot || t === '<|endofprompt|>' || t.startsWith('<|fim'),
    );
    const usable = known.filter((t) => text.includes(t));
    // Refused by default, naming the token.
    expect(() => enc.encode(text)).toThrow(DisallowedSpecialError);
    expect(() => enc.encode(text)).toThrow(/<\|endoftext\|>/);
    // Allowed: same as tiktoken.
    expectSameIds(enc.encode(text, { allowedSpecial: 'all' }), ref.encode(text, 'all'), `${name} allowed all`, (ids) =>
      enc.decode(ids),
    );
    if (usable.length === 2) {
      expectSameIds(
        enc.encode(text, { allowedSpecial: [eot], disallowedSpecial: [] }),
        ref.encode(text, [eot], []),
        `${name} eot only`,
        (ids) => enc.decode(ids),
      );
    }
    // Encoded as text when not disallowed, and by encodeOrdinary.
    expectSameIds(enc.encode(text, { disallowedSpecial: [] }), ref.encode(text, [], []), `${name} as text`, (ids) =>
      enc.decode(ids),
    );
    expect(enc.encode(text, { disallowedSpecial: [] })).toEqual(enc.encodeOrdinary(text));
    // Allowing one still refuses the others.
    if (name !== 'r50k_base') expect(() => enc.encode(text, { allowedSpecial: [eot] })).toThrow(/endofprompt/);
    // Decode round trip keeps the special text.
    expect(enc.decode(enc.encode(text, { allowedSpecial: 'all' }))).toBe(text);
    expect(enc.decode([enc.eotToken])).toBe(eot);
    // As tiktoken: unknown allowed names are ignored, any disallowed string is refused.
    expect(enc.encode('a <|im_start|>', { allowedSpecial: ['<|nope|>'], disallowedSpecial: [] })).toEqual(
      enc.encodeOrdinary('a <|im_start|>'),
    );
    expect(() => enc.encode('hello world', { disallowedSpecial: ['world'] })).toThrow(DisallowedSpecialError);
    expect(() => ref.encode('hello world', [], ['world'])).toThrow();
    expect(enc.encode('toString', { allowedSpecial: ['toString'] })).toEqual(enc.encodeOrdinary('toString'));
  });

  it('unknown ids are refused by decode', () => {
    expect(() => enc.decode([0, enc.nVocab + 5])).toThrow(/unknown token id/);
  });
});

describe('chat markers', () => {
  it('have the standard ids for cl100k_base and o200k_base', () => {
    const o = getEncoding('o200k_base');
    expect([o.specialTokens['<|im_start|>'], o.specialTokens['<|im_end|>'], o.specialTokens['<|im_sep|>']]).toEqual([
      200264, 200265, 200266,
    ]);
    const c = getEncoding('cl100k_base');
    expect([c.specialTokens['<|im_start|>'], c.specialTokens['<|im_end|>'], c.specialTokens['<|im_sep|>']]).toEqual([
      100264, 100265, 100266,
    ]);
    expect(o.eotToken).toBe(199999);
    expect(c.eotToken).toBe(100257);
    expect(getEncoding('r50k_base').eotToken).toBe(50256);
    expect(getEncoding('r50k_base').nVocab).toBe(50257);
    expect(o.nVocab).toBe(200267);
  });

  it('are encoded only when allowed', () => {
    const o = getEncoding('o200k_base');
    const msg = '<|im_start|>user<|im_sep|>Hi there<|im_end|>';
    expect(() => o.encode(msg)).toThrow(/im_start/);
    const ids = o.encode(msg, { allowedSpecial: ['<|im_start|>', '<|im_end|>', '<|im_sep|>'] });
    expect(ids[0]).toBe(200264);
    expect(ids.at(-1)).toBe(200265);
    expect(ids).toContain(200266);
    expect(o.decode(ids)).toBe(msg);
    // As plain text they are several ordinary tokens.
    const plain = o.encodeOrdinary('<|im_start|>');
    expect(plain.length).toBeGreaterThan(1);
    expect(plain.every((t) => t < 199998)).toBe(true);
  });
});

describe('chunk cache', () => {
  it('gives the same ids when it is tiny and keeps starting over', () => {
    const big = getEncoding('cl100k_base');
    const small = new BpeEncoding({
      name: 'small-cache',
      pattern: 'gpt4',
      tokens: readRankFile(rankFilePath('cl100k_base')),
      specialTokens: {},
      cacheBits: 4,
    });
    for (const text of [generatedText(100_000, 17), proseText(100_000)])
      expect(small.encodeOrdinary(text)).toEqual(big.encodeOrdinary(text));
  });
});

describe('bytes', () => {
  it('invalid UTF-8 is encoded byte-exactly and never dropped', () => {
    const r = rng(42);
    for (const name of OPENAI_ENCODING_NAMES) {
      const enc = getEncoding(name);
      for (let t = 0; t < 50; t++) {
        const len = 1 + Math.floor(r() * 400);
        const b = new Uint8Array(len);
        for (let i = 0; i < len; i++) {
          const k = r();
          b[i] = k < 0.5 ? 0x20 + Math.floor(r() * 95) : k < 0.6 ? 0x20 : Math.floor(r() * 256);
        }
        const ids = enc.encodeBytes(b);
        expect(enc.decodeBytes(ids)).toEqual(b);
      }
      // Valid UTF-8 gives the same ids as the string.
      const s = generatedText(5000, 3);
      expect(enc.encodeBytes(new TextEncoder().encode(s))).toEqual(enc.encodeOrdinary(s));
      // Truncated multi-byte sequences and overlong / surrogate encodings are kept.
      for (const bad of [
        [0xe6, 0x97],
        [0xc0, 0xaf],
        [0xed, 0xa0, 0x80],
        [0xf8, 0x88, 0x80, 0x80, 0x80],
        [0xff],
        [0x61, 0x80, 0x62],
      ]) {
        const u = new Uint8Array(bad);
        expect(enc.decodeBytes(enc.encodeBytes(u))).toEqual(u);
      }
      // decode() replaces invalid bytes with U+FFFD.
      expect(enc.decode(enc.encodeBytes(new Uint8Array([0x61, 0xff, 0x62])))).toBe('a\ufffdb');
    }
  });
});

describe('rank files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wgpt-ranks-'));
  it('a wrong hash is refused, naming the file', () => {
    const p = join(dir, 'r50k_copy.tiktoken');
    writeFileSync(p, readFileSync(rankFilePath('r50k_base')));
    expect(() => readRankFile(p, '0'.repeat(64))).toThrow(RankFileError);
    expect(() => readRankFile(p, '0'.repeat(64))).toThrow(p);
  });
  it('a malformed line is refused, naming file and line', () => {
    const p = join(dir, 'bad.tiktoken');
    writeFileSync(p, 'IQ== 0\nIg== 1\nnot-base64!! 2\n');
    expect(() => readRankFile(p)).toThrow(`${p}:3: malformed base64 in line "not-base64!! 2"`);
    writeFileSync(p, 'IQ== 0\nIg== one\n');
    expect(() => readRankFile(p)).toThrow(`${p}:2: malformed rank`);
    writeFileSync(p, 'IQ== 0\nIg== 5\n');
    expect(() => readRankFile(p)).toThrow(`${p}:2: rank 5 out of order`);
    writeFileSync(p, 'IQ== 0\nIQ== 1\n');
    expect(() => readRankFile(p)).toThrow(`${p}:2: duplicate token`);
    expect(() => readRankFile(join(dir, 'missing.tiktoken'))).toThrow(/missing\.tiktoken: cannot read/);
  });
});

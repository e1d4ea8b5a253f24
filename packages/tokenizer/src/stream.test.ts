import { describe, expect, it } from 'vitest';
import { encodeStream, getEncoding, lastSafeCut, OPENAI_ENCODING_NAMES } from './index.ts';
import { generatedText, localizedText, proseText, rng } from './testing/corpus.ts';

async function collect(gen: AsyncGenerator<number[]>): Promise<{ ids: number[]; batches: number }> {
  const ids: number[] = [];
  let batches = 0;
  for await (const b of gen) {
    batches++;
    for (const id of b) ids.push(id);
  }
  return { ids, batches };
}

/** Split into random pieces (strings may split surrogate pairs; bytes may split UTF-8 sequences). */
function randomPieces<T extends string | Uint8Array>(x: T, seed: number, max: number): T[] {
  const r = rng(seed);
  const out: T[] = [];
  for (let i = 0; i < x.length; ) {
    const n = 1 + Math.floor(r() * max);
    out.push(x.slice(i, i + n) as T);
    i += n;
  }
  return out;
}

describe('encodeStream', () => {
  // Text with few cut points, astral characters before newlines, CRLF, runs of spaces after newlines.
  const text = [
    proseText(30_000),
    '😀\nabc 𝐀\nb\r\nc \n  d\n\n\ne',
    generatedText(30_000, 4),
    localizedText(30_000),
    'x\n'.repeat(50) + ' '.repeat(3000) + '\nend',
  ].join('\n');

  it.each(OPENAI_ENCODING_NAMES)('gives the ids of the whole text, from string or byte pieces (%s)', async (name) => {
    const enc = getEncoding(name);
    const want = enc.encodeOrdinary(text);
    const s = await collect(encodeStream(enc, randomPieces(text, 1, 700), { minBatchChars: 500 }));
    expect(s.batches).toBeGreaterThan(20);
    expect(s.ids).toEqual(want);
    const bytes = new TextEncoder().encode(text);
    const b = await collect(encodeStream(enc, randomPieces(bytes, 2, 900), { minBatchChars: 500 }));
    expect(b.ids).toEqual(want);
  });

  it('keeps invalid UTF-8 byte-exact across pieces', async () => {
    const enc = getEncoding('o200k_base');
    const r = rng(5);
    const bytes = new Uint8Array(50_000);
    for (let i = 0; i < bytes.length; i++)
      bytes[i] = r() < 0.7 ? [0x61, 0x20, 0x0a, 0x62][Math.floor(r() * 4)] : Math.floor(r() * 256);
    const s = await collect(encodeStream(enc, randomPieces(bytes, 3, 333), { minBatchChars: 200 }));
    expect(s.ids).toEqual(enc.encodeBytes(bytes));
    expect(enc.decodeBytes(s.ids)).toEqual(bytes);
  });

  it('finds the last safe cut point', () => {
    expect(lastSafeCut('ab\ncd')).toBe(3);
    expect(lastSafeCut('ab \ncd')).toBe(-1); // the newline follows a space
    expect(lastSafeCut('ab\n cd')).toBe(-1); // and must precede a letter
    expect(lastSafeCut('😀\nx')).toBe(3);
    expect(lastSafeCut('a\nb a\nb', 4)).toBe(6);
  });
});

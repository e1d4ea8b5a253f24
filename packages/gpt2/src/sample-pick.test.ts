import { describe, expect, it } from 'vitest';
import { mulberry32 } from '@wgpt/runtime';
import { pickToken, printable } from './sample.ts';

describe('pickToken', () => {
  const logits = [0.1, 2.5, -1, 2.4, 0]; // V = 5; padded columns beyond V are never looked at
  it('temperature 0 is argmax; top-k 1 and a tiny top-p are too', () => {
    const r = mulberry32(1);
    expect(pickToken([...logits, 99], 5, { maxNewTokens: 1, temperature: 0 }, r)).toBe(1);
    for (let i = 0; i < 20; i++) {
      expect(pickToken(logits, 5, { maxNewTokens: 1, topK: 1 }, r)).toBe(1);
      expect(pickToken(logits, 5, { maxNewTokens: 1, topP: 1e-6 }, r)).toBe(1);
    }
  });
  it('top-k 2 only ever picks the two most likely, both of them, in proportion', () => {
    const r = mulberry32(2);
    const counts = [0, 0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[pickToken(logits, 5, { maxNewTokens: 1, topK: 2 }, r)]!++;
    expect(counts[0]! + counts[2]! + counts[4]!).toBe(0);
    // p(1) / (p(1) + p(3)) = 1 / (1 + e^-0.1) = 0.525; 4000 draws: standard error 0.008.
    expect(Math.abs(counts[1]! / 4000 - 0.525)).toBeLessThan(0.04);
  });
});

describe('printable', () => {
  it('replaces control characters (terminal escapes) but keeps newlines, tabs and text', () => {
    expect(printable('a\u001b[31mb\tc\nd\u0000\u007f é😀')).toBe('a\uFFFD[31mb\tc\nd\uFFFD\uFFFD é😀');
  });
});

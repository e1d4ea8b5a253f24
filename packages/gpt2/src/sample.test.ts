// generate()'s checks of the prompt run before any GPU work, so a stand-in model with only a config is enough.
import { describe, expect, it } from 'vitest';
import { WgptError } from '@wgpt/runtime';
import { makeConfig } from './config.ts';
import type { GPT2 } from './model.ts';
import { decodeForDisplay, generate } from './sample.ts';

const model = { config: makeConfig({ L: 1, NH: 1, C: 4, V: 61, maxT: 8 }) } as unknown as GPT2;

describe('generate() rejects a bad prompt with a user error (no stack trace in the CLI)', () => {
  for (const [prompt, message] of [
    [[], /the prompt needs at least one token/],
    [[5, 61], /prompt token 61 is outside the vocabulary \[0, 61\)/],
    [[-1], /prompt token -1 is outside/],
    [[1.5], /prompt token 1.5 is outside/],
  ] as const) {
    it(JSON.stringify(prompt), async () => {
      const err = await generate(model, [...prompt], { maxNewTokens: 1 }).next().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WgptError);
      expect((err as Error).message).toMatch(message);
    });
  }
});

describe('decodeForDisplay', () => {
  it('shows ids the tokenizer does not know as <|id N|> and decodes the rest around them', async () => {
    const { getEncoding } = await import('@wgpt/tokenizer');
    const enc = getEncoding('r50k_base');
    const hello = enc.encode('Hello');
    const world = enc.encode(' world');
    expect(() => enc.decode([...hello, 50259])).toThrow(RangeError);
    expect(decodeForDisplay(enc, [...hello, 50259, ...world, 50257])).toBe('Hello<|id 50259|> world<|id 50257|>');
    expect(decodeForDisplay(enc, [...hello, ...world])).toBe('Hello world');
    expect(decodeForDisplay(enc, [])).toBe('');
  });
});

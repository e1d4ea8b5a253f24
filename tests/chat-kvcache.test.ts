// generate() with a KV cache kept across calls (SampleOptions.reuse), as `wgpt chat` uses it: each call gives the
// tokens a full forward per token gives (kvCache: false, the independent path), and prefills only what the cache
// does not already hold: the calls to forwardCached (position and length) are checked one by one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu, Tensor } from '@wgpt/runtime';
import { randomF32, rng, testGpu } from '@wgpt/runtime/testing';
import { generate, GPT2, KVCache, makeConfig, paramOffsets, type SampleOptions } from '@wgpt/gpt2';

let gpu: Gpu;
let model: GPT2;
let cache: KVCache;
/** (pos, T) of every forwardCached call. */
let calls: [number, number][] = [];
const maxT = 24;

beforeAll(async () => {
  gpu = await testGpu();
  // Large weights: peaked logits, so greedy decoding does not hinge on rounding (as in kvcache.test.ts).
  const cfg = makeConfig({ L: 2, C: 64, NH: 2, V: 97, maxT });
  const n = Object.values(paramOffsets(cfg)).reduce((a, o) => a + o.size, 0);
  model = new GPT2(gpu, cfg, randomF32(n, 11, -0.15, 0.15));
  const forward = model.forwardCached.bind(model);
  model.forwardCached = (tokens: Tensor, c: KVCache, pos?: number, opts?: { lastOnly?: boolean }) => {
    if (c === cache) calls.push([pos ?? c.length, tokens.shape[1]!]);
    return forward(tokens, c, pos, opts);
  };
  cache = new KVCache(gpu, cfg, 1);
});
afterAll(() => {
  cache.dispose();
  model.dispose();
});

const tokens = (n: number, seed: number) => {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * 97));
};

async function run(prompt: number[], o: SampleOptions, take = Infinity): Promise<number[]> {
  const out: number[] = [];
  for await (const t of generate(model, prompt, o)) {
    out.push(t);
    if (out.length >= take) break;
  }
  return out;
}

describe('generate() reusing a KV cache across calls', () => {
  it('prefills only what is new, and gives the tokens of a full forward per token', async () => {
    const reuse = { cache, ids: [] as number[] };
    const o = { maxNewTokens: 4, temperature: 0 };
    /** One call: its tokens against the uncached path, its forwardCached calls against `want`. */
    const step = async (prompt: number[], want: [number, number][], take = Infinity) => {
      calls = [];
      const got = await run(prompt, { ...o, reuse }, take);
      expect(got).toEqual((await run(prompt, { ...o, kvCache: false })).slice(0, take));
      expect(calls).toEqual(want);
      return got;
    };

    const a = tokens(5, 1);
    const ga = await step(a, [
      [0, 5],
      [5, 1],
      [6, 1],
      [7, 1],
    ]);
    // The cache holds the prompt and every new token but the last, which was never fed.
    expect(reuse.ids).toEqual([...a, ...ga.slice(0, 3)]);

    // A prompt that continues the conversation: the last new token and what follows it are fed.
    const b = [...a, ...ga, 40, 41];
    const gb = await step(b, [
      [8, 3],
      [11, 1],
      [12, 1],
      [13, 1],
    ]);
    expect(reuse.ids).toEqual([...b, ...gb.slice(0, 3)]);

    // A prompt that differs from position 2 on: the cache is rewritten from there.
    const c = [...a.slice(0, 2), ...tokens(6, 2)];
    expect(c[2]).not.toBe(a[2]);
    await step(c, [
      [2, 6],
      [8, 1],
      [9, 1],
      [10, 1],
    ]);

    // A prompt the cache holds whole: its last token is fed again, for its logits.
    await step(c.slice(0, 5), [
      [4, 1],
      [5, 1],
      [6, 1],
      [7, 1],
    ]);

    // Stopped by its reader after two tokens: the cache's ids stay true, so the next call is still exact.
    const d = [...c.slice(0, 5), 7];
    const gd = await step(
      d,
      [
        [5, 1],
        [6, 1],
      ],
      2,
    );
    expect(reuse.ids).toEqual([...d, gd[0]]);
    await step(
      [...d, ...gd, 9],
      [
        [7, 2],
        [9, 1],
        [10, 1],
        [11, 1],
      ],
    );

    // Past maxT: a longer prompt, and a continuation that slides, re-prefill their last maxT tokens from position 0.
    const e = tokens(maxT + 3, 3);
    await step(e, [
      [0, maxT],
      [0, maxT],
      [0, maxT],
      [0, maxT],
    ]);
    expect(reuse.ids).toHaveLength(maxT);
    const f = tokens(maxT - 2, 4);
    await step(f, [
      [0, maxT - 2],
      [maxT - 2, 1],
      [maxT - 1, 1],
      [0, maxT],
    ]);
  });

  it('refuses a cache for another shape, or reuse without the cache', async () => {
    const small = new KVCache(gpu, model.config, 1, maxT - 1);
    try {
      await expect(run([1, 2], { maxNewTokens: 1, reuse: { cache: small, ids: [] } })).rejects.toThrow(
        /reuse needs the KV cache, built for one sequence of the model's maxT positions/,
      );
    } finally {
      small.dispose();
    }
    await expect(run([1, 2], { maxNewTokens: 1, kvCache: false, reuse: { cache, ids: [] } })).rejects.toThrow(
      /reuse needs the KV cache/,
    );
  });
});

// Sampling with a KV cache on the tiny fixture model (tests/fixtures/gpt2-tiny: L=2, C=16, NH=2, maxT=16, V=61) and
// on a random model with large weights and HS=64 (peakier attention, more than one decode chunk of 64 keys):
// prefill + single-token steps give the full forward's logits at every position, and generate() gives the same
// tokens with and without the cache, also past maxT.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { EPS32, randomF32, relErr, rng, testGpu } from '@wgpt/runtime/testing';
import {
  generate,
  generateBatch,
  GPT2,
  KVCache,
  makeConfig,
  paramOffsets,
  readLlmcModel,
  type SampleOptions,
} from '@wgpt/gpt2';

const DIR = new URL('./fixtures/gpt2-tiny/', import.meta.url).pathname;

let gpu: Gpu;
let tiny: GPT2;
let large: GPT2;
beforeAll(async () => {
  // NaN-poisoned buffers: the caches' unwritten positions are NaN, so attending to one would make the logits NaN.
  gpu = await testGpu();
  const { config, params } = readLlmcModel(join(DIR, 'model.bin'));
  tiny = new GPT2(gpu, config, params);
  const cfg = makeConfig({ L: 2, C: 128, NH: 2, V: 97, maxT: 80 });
  const n = Object.values(paramOffsets(cfg)).reduce((a, o) => a + o.size, 0);
  large = new GPT2(gpu, cfg, randomF32(n, 7, -0.15, 0.15));
});
afterAll(() => {
  tiny.dispose();
  large.dispose();
  gpu.destroy();
});

const tokensFor = (n: number, V: number, seed: number) => {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * V));
};

// Tolerance for cached vs full-forward logits (relative L2 per position, over the real vocabulary). Both paths
// run the same matmul, LayerNorm and GELU kernels on the same rows (the decode step's matmul tiles change no
// summation order along K); they differ only in attention (flash over the sequence vs decode over the cache).
// Each attention output carries ≲ (sqrt(HS) + 2·sqrt(T) + 2·T/64 + 8)·ε relative error per path
// (kernels/kvcache/kvcache.test.ts, kernels/attention/attention.ref.ts), so the two differ by ≲ twice that per
// layer, and the residual stream adds the L layers' contributions. The rest of the network maps a relative
// perturbation of its input to one of about the same size in the logits (LayerNorm renormalises; these weights are
// well conditioned), factor 1. So tol = 2·L·(sqrt(HS) + 2·sqrt(T) + 2·T/64 + 8)·ε: 4.6e-6 for the tiny model,
// 8.7e-6 for the HS=64 one; measured worst 1.8e-7 and 3.8e-7 (SwiftShader).
const logitTol = (L: number, T: number, HS: number) =>
  2 * L * (Math.sqrt(HS) + 2 * Math.sqrt(T) + (2 * T) / 64 + 8) * EPS32;

/** Rows of (rows, Vp) logits restricted to [0, V). */
const row = (lg: Float32Array, r: number, V: number, Vp: number) => lg.subarray(r * Vp, r * Vp + V);

async function fullLogits(model: GPT2, tokens: number[], B: number): Promise<Float32Array> {
  return tidyAsync(
    async () => (await model.forward(tensor(gpu, tokens, [B, tokens.length / B], 'i32')).logits.read()) as Float32Array,
  );
}

/**
 * Logits of every position via the cache: a prefill of `prefill` tokens, then `chunk`-token calls (B sequences).
 * Returns (B, T, Vp) in the full forward's row order.
 */
async function cachedLogits(
  model: GPT2,
  tokens: number[],
  B: number,
  prefill: number,
  chunk = 1,
): Promise<Float32Array> {
  const { Vp } = model.config;
  const T = tokens.length / B;
  const out = new Float32Array(B * T * Vp);
  const cache = new KVCache(gpu, model.config, B);
  try {
    for (let p = 0; p < T;) {
      const n = p === 0 ? prefill : Math.min(chunk, T - p);
      const part = Array.from({ length: B }, (_, b) => tokens.slice(b * T + p, b * T + p + n)).flat();
      const lg = await tidyAsync(
        async () => (await model.forwardCached(tensor(gpu, part, [B, n], 'i32'), cache, p).read()) as Float32Array,
      );
      expect(cache.length).toBe(p + n);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < n; t++) out.set(lg.subarray((b * n + t) * Vp, (b * n + t + 1) * Vp), (b * T + p + t) * Vp);
      p += n;
    }
  } finally {
    cache.dispose();
  }
  return out;
}

describe('KV cache: cached logits = full-forward logits', () => {
  const cases: [string, () => GPT2, number, number, number, number][] = [
    // name, model, B, T, prefill, chunk
    ['tiny, prompt of 1 then 15 single steps', () => tiny, 1, 16, 1, 1],
    ['tiny, prompt of 5 then single steps, B=2', () => tiny, 2, 16, 5, 1],
    ['tiny, prompt of 3 then chunks of 4', () => tiny, 1, 15, 3, 4],
    ['large HS=64, prompt of 7 then single steps to 70 (two decode chunks)', () => large, 1, 70, 7, 1],
    ['large HS=64, prompt of 65 then 15 single steps to maxT, B=2', () => large, 2, 80, 65, 1],
  ];
  for (const [name, m, B, T, prefill, chunk] of cases) {
    it(name, async () => {
      const model = m();
      const { V, Vp, L, C, NH } = model.config;
      const tokens = tokensFor(B * T, V, T + prefill);
      const full = await fullLogits(model, tokens, B);
      const cached = await cachedLogits(model, tokens, B, prefill, chunk);
      const tol = logitTol(L, T, C / NH);
      let worst = 0;
      for (let r = 0; r < B * T; r++) {
        const e = relErr(row(cached, r, V, Vp), row(full, r, V, Vp));
        worst = Math.max(worst, e);
        expect(e, `row ${r}`).toBeLessThanOrEqual(tol);
        // The bound tells right from wrong: the neighbouring position's logits (a cache off by one) are far outside.
        if (r % T > 0)
          expect(relErr(row(cached, r, V, Vp), row(full, r - 1, V, Vp)), `row ${r}`).toBeGreaterThan(100 * tol);
      }
      if (process.env.KV_DEBUG) console.log(`${name}: worst ${worst.toExponential(2)} tol ${tol.toExponential(2)}`);
    });
  }

  it('lastOnly gives the last row of each sequence', async () => {
    const { V, Vp } = tiny.config;
    const [B, T] = [2, 6];
    const tokens = tokensFor(B * T, V, 5);
    const full = await fullLogits(tiny, tokens, B);
    const cache = new KVCache(gpu, tiny.config, B);
    const last = await tidyAsync(
      async () =>
        (await tiny
          .forwardCached(tensor(gpu, tokens, [B, T], 'i32'), cache, 0, { lastOnly: true })
          .read()) as Float32Array,
    );
    cache.dispose();
    expect(last.length).toBe(B * Vp);
    for (let b = 0; b < B; b++)
      expect(relErr(row(last, b, V, Vp), row(full, b * T + T - 1, V, Vp))).toBeLessThanOrEqual(logitTol(2, T, 8));
  });

  it('rejects a gap after the cached positions and positions past maxT', async () => {
    const cache = new KVCache(gpu, tiny.config, 1);
    await tidyAsync(async () => {
      tiny.forwardCached(tensor(gpu, [1, 2, 3], [1, 3], 'i32'), cache);
      expect(() => tiny.forwardCached(tensor(gpu, [4], [1, 1], 'i32'), cache, 4)).toThrow(/gap/);
      expect(() => tiny.forwardCached(tensor(gpu, Array(14).fill(1), [1, 14], 'i32'), cache)).toThrow(
        /exceed the cache's 16/,
      );
      expect(() => tiny.forwardCached(tensor(gpu, [1, 2], [2, 1], 'i32'), cache)).toThrow(/batch 2/);
    });
    cache.dispose();
  });
});

async function ids(model: GPT2, prompt: number[], o: SampleOptions): Promise<number[]> {
  const out: number[] = [];
  for await (const t of generate(model, prompt, o)) out.push(t);
  return out;
}

describe('generate() with the KV cache', () => {
  it('greedy: the same tokens with and without the cache, through the maxT fallback', async () => {
    // Prompt 5 + 20 new tokens passes maxT = 16: the last 9 steps re-prefill the sliding window.
    const o = { maxNewTokens: 20, temperature: 0 };
    const a = await ids(tiny, [3, 1, 4, 1, 5], o);
    const b = await ids(tiny, [3, 1, 4, 1, 5], { ...o, kvCache: false });
    expect(a).toHaveLength(20);
    expect(a).toEqual(b);
    const s = await ids(large, tokensFor(9, 97, 2), { maxNewTokens: 12, temperature: 0 });
    expect(s).toEqual(await ids(large, tokensFor(9, 97, 2), { maxNewTokens: 12, temperature: 0, kvCache: false }));
    expect(new Set(s).size, 'a continuation that is not one repeated token').toBeGreaterThan(2);
  });

  const sameSeed = 'the same seed gives the same continuation (cached or not, through the maxT fallback)';
  it(`temperature 1: ${sameSeed}, different seeds differ`, async () => {
    const o = { maxNewTokens: 24, temperature: 1 }; // 1 + 24 tokens pass maxT = 16: the last 9 steps re-prefill
    const s1 = await ids(tiny, [7], { ...o, seed: 1 });
    expect(await ids(tiny, [7], { ...o, seed: 1 })).toEqual(s1);
    expect(await ids(tiny, [7], { ...o, seed: 1, kvCache: false })).toEqual(s1);
    const s2 = await ids(tiny, [7], { ...o, seed: 2 });
    expect(s2).not.toEqual(s1);
  });

  it('a prompt longer than maxT: the last maxT tokens are the context', async () => {
    const prompt = tokensFor(40, 61, 9);
    const o = { maxNewTokens: 4, temperature: 0 };
    const a = await ids(tiny, prompt, o);
    expect(a).toHaveLength(4);
    expect(a).toEqual(await ids(tiny, prompt, { ...o, kvCache: false }));
    expect(a).toEqual(await ids(tiny, prompt.slice(-16), o));
  });

  it('stop tokens end generation with the cache too', async () => {
    const first = (await ids(tiny, [2, 3], { maxNewTokens: 1, temperature: 0 }))[0]!;
    expect(await ids(tiny, [2, 3], { maxNewTokens: 10, temperature: 0, stopTokens: [first] })).toEqual([first]);
  });
});

describe('generateBatch(): several prompts of one length as the rows of one cache', () => {
  // Each row must be generate()'s continuation of its prompt with its seed: a shared generator, rows' logits read
  // from the wrong offset or a finished row's tokens leaking into the others would all change some row.
  it('greedy and temperature 1: row i = generate(prompt i, seed i); rows stop at a stop token', async () => {
    for (const m of [tiny, large]) {
      const V = m.config.V;
      const prompts = [1, 2, 3, 4, 5].map((s) => tokensFor(5, V, 20 + s));
      prompts.push(prompts[0]!.slice()); // the same prompt twice: different seeds must still differ below
      const seeds = prompts.map((_, i) => 100 + i);
      for (const temperature of [0, 1]) {
        const o = { maxNewTokens: 9, temperature };
        const got = await generateBatch(m, prompts, { ...o, seeds });
        const want = await Promise.all(prompts.map((p, i) => ids(m, p, { ...o, seed: seeds[i] })));
        expect(got).toEqual(want);
        if (temperature === 1) expect(got[5]).not.toEqual(got[0]);
      }
      // With a stop token, a row ends there (the token included) and the other rows go on.
      const full = await generateBatch(m, prompts, { maxNewTokens: 9, temperature: 1, seeds });
      const stopAt = full[2]![3]!;
      const cut = await generateBatch(m, prompts, { maxNewTokens: 9, temperature: 1, seeds, stopTokens: [stopAt] });
      for (const [i, r] of full.entries()) {
        const k = r.indexOf(stopAt);
        expect(cut[i]).toEqual(k < 0 ? r : r.slice(0, k + 1));
      }
    }
  });

  it('ends where the context ends, and rejects prompts of different lengths', async () => {
    const got = await generateBatch(tiny, [tokensFor(14, 61, 3)], { maxNewTokens: 10, temperature: 0 });
    expect(got[0]).toEqual(await ids(tiny, tokensFor(14, 61, 3), { maxNewTokens: 3, temperature: 0 }));
    await expect(generateBatch(tiny, [[1, 2], [3]], { maxNewTokens: 2 })).rejects.toThrow(/prompt 1 has 1 tokens/);
  });
});

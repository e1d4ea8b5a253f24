// Sampling from a GPT-2: temperature (0 = greedy), top-k, top-p, a seed, stop tokens. Only the last position's
// logits are read back per new token.
// With the KV cache (the default) the prompt's last maxT tokens are prefilled in one call and each new token then
// costs one position's forward plus attention over the cache. Once the context would pass maxT positions (the
// model has no positions beyond), every further token re-prefills the last maxT tokens from position 0: the same
// window, and so the same logits, as the uncached path, which is then as slow as it. { kvCache: false } runs a full
// forward over the last maxT tokens for every new token.
import { mulberry32, noGrad, tensor, tidyAsync, WgptError } from '@wgpt/runtime';
import { KVCache } from './kvcache.ts';
import type { GPT2 } from './model.ts';

export interface SampleOptions {
  maxNewTokens: number;
  /** 0: greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined: all). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (1 or undefined: all). */
  topP?: number;
  seed?: number;
  /** Generation ends after emitting one of these. */
  stopTokens?: number[];
  /** Reuse keys and values across steps (default true); false: a full forward over the context per token. */
  kvCache?: boolean;
  /**
   * A KV cache kept across calls (a chat, whose prompts grow): `ids` are the tokens whose keys and values the cache
   * holds at positions 0..ids.length-1. The prompt's longest common prefix with them is not prefilled again, and
   * generate() keeps `ids` in step with the cache. The caller owns the cache (one sequence, the model's maxT).
   */
  reuse?: { cache: KVCache; ids: number[] };
}

/**
 * Text safe to print on a terminal: control characters other than newline and tab (a model can emit any byte,
 * escape sequences included) become U+FFFD. For display only; --json output keeps the exact text.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '\uFFFD');
}

/**
 * The text of `ids` for people to read. A model's vocabulary can be larger than its tokenizer's (chat markers
 * appended for fine-tuning, a larger --vocab), and it can sample those ids: they show as `<|id N|>` instead of
 * failing the decode.
 */
export function decodeForDisplay(enc: { decode(ids: ArrayLike<number>): string }, ids: readonly number[]): string {
  const known = (id: number): boolean => {
    try {
      enc.decode([id]);
      return true;
    } catch (e) {
      if (e instanceof RangeError) return false;
      throw e;
    }
  };
  let out = '';
  let run: number[] = [];
  for (const id of ids) {
    if (known(id)) {
      run.push(id);
      continue;
    }
    out += enc.decode(run) + `<|id ${id}|>`;
    run = [];
  }
  return out + enc.decode(run);
}

/** Picks a token from logits (the real vocabulary only) per the options. Exported for tests. */
export function pickToken(logits: ArrayLike<number>, V: number, o: SampleOptions, rand: () => number): number {
  const temperature = o.temperature ?? 1;
  if (temperature === 0) {
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[v]! > logits[best]!) best = v;
    return best;
  }
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[v]!);
  const probs: { v: number; p: number }[] = [];
  let sum = 0;
  for (let v = 0; v < V; v++) {
    const p = Math.exp((logits[v]! - max) / temperature);
    probs.push({ v, p });
    sum += p;
  }
  for (const x of probs) x.p /= sum;
  let pool = probs;
  if ((o.topK && o.topK > 0 && o.topK < V) || (o.topP !== undefined && o.topP < 1)) {
    pool = [...probs].sort((a, b) => b.p - a.p || a.v - b.v);
    if (o.topK && o.topK > 0) pool = pool.slice(0, o.topK);
    if (o.topP !== undefined && o.topP < 1) {
      let acc = 0;
      let n = 0;
      while (n < pool.length && acc < o.topP) acc += pool[n++]!.p;
      pool = pool.slice(0, Math.max(1, n));
    }
  }
  const total = pool.reduce((a, x) => a + x.p, 0);
  let r = rand() * total;
  for (const x of pool) {
    r -= x.p;
    if (r <= 0) return x.v;
  }
  return pool[pool.length - 1]!.v;
}

/** Yields new token ids one at a time (stream them as they come). */
export async function* generate(model: GPT2, prompt: number[], o: SampleOptions): AsyncGenerator<number> {
  if (!prompt.length) throw new WgptError('generate: the prompt needs at least one token (e.g. <|endoftext|>)');
  const { V, Vp, maxT } = model.config;
  for (const t of prompt) {
    if (!Number.isInteger(t) || t < 0 || t >= V) {
      throw new WgptError(`generate: prompt token ${t} is outside the vocabulary [0, ${V})`);
    }
  }
  const rand = mulberry32(o.seed ?? 1337);
  const ids = prompt.slice();
  const stop = new Set(o.stopTokens ?? []);
  if (o.reuse && (o.kvCache === false || o.reuse.cache.B !== 1 || o.reuse.cache.maxT !== maxT)) {
    throw new WgptError("generate: reuse needs the KV cache, built for one sequence of the model's maxT positions");
  }
  if (o.kvCache !== false) {
    yield* generateCached(model, ids, o, rand, stop);
    return;
  }
  for (let i = 0; i < o.maxNewTokens; i++) {
    const ctx = ids.slice(-maxT);
    const T = ctx.length;
    const row = await tidyAsync(async () => {
      const { logits } = noGrad(() => model.forward(tensor(model.gpu, ctx, [1, T], 'i32')));
      return new Float32Array(await model.gpu.read(logits.buffer, Vp * 4, (T - 1) * Vp * 4));
    });
    const next = pickToken(row, V, o, rand);
    ids.push(next);
    yield next;
    if (stop.has(next)) return;
  }
}

async function* generateCached(
  model: GPT2,
  ids: number[],
  o: SampleOptions,
  rand: () => number,
  stop: Set<number>,
): AsyncGenerator<number> {
  const { V, Vp, maxT } = model.config;
  const gpu = model.gpu;
  const cache = o.reuse?.cache ?? new KVCache(gpu, model.config, 1);
  const held = o.reuse?.ids ?? []; // the tokens at the cache's positions 0..held.length-1
  try {
    let feed = ids.slice(-maxT); // prefill
    let pos = 0;
    // Positions whose tokens are unchanged keep their keys and values; at least one token is fed, for its logits.
    if (feed.length === ids.length) while (pos < feed.length - 1 && pos < held.length && held[pos] === feed[pos]) pos++;
    feed = feed.slice(pos);
    for (let i = 0; i < o.maxNewTokens; i++) {
      held.length = Math.min(held.length, pos); // from pos on, the cache is rewritten
      const row = await tidyAsync(async () => {
        const logits = model.forwardCached(tensor(gpu, feed, [1, feed.length], 'i32'), cache, pos, { lastOnly: true });
        return new Float32Array(await gpu.read(logits.buffer, Vp * 4));
      });
      held.push(...feed);
      const next = pickToken(row, V, o, rand);
      ids.push(next);
      yield next;
      if (stop.has(next)) return;
      if (cache.length < maxT) {
        feed = [next];
        pos = cache.length;
      } else {
        feed = ids.slice(-maxT); // the window slides: positions shift, so the cache is rebuilt from position 0
        pos = 0;
      }
    }
  } finally {
    if (!o.reuse) cache.dispose();
  }
}

export interface BatchSampleOptions extends Omit<SampleOptions, 'seed' | 'kvCache' | 'reuse'> {
  /** Row i draws from its own generator seeded seeds[i] (default 1337 for every row). */
  seeds?: readonly number[];
}

/**
 * Continues several prompts of one length at once, as the rows of one KV cache: each step is one decode call for
 * every row instead of one per row. Row i's tokens are the ones generate() gives for prompt i with seed seeds[i]
 * (each row reads its own logits and draws from its own generator; the decode matmuls sum in the same order for
 * any row count). A row ends after a stop token (which it includes); the call ends when every row has, or after
 * maxNewTokens, or when the context is full: unlike generate(), it does not slide the window past maxT.
 */
export async function generateBatch(
  model: GPT2,
  prompts: readonly (readonly number[])[],
  o: BatchSampleOptions,
): Promise<number[][]> {
  const n = prompts.length;
  if (n === 0) return [];
  const P = prompts[0]!.length;
  const { V, Vp, maxT } = model.config;
  if (P === 0) throw new WgptError('generateBatch: the prompts need at least one token');
  for (const [i, p] of prompts.entries()) {
    if (p.length !== P) throw new WgptError(`generateBatch: prompt ${i} has ${p.length} tokens, prompt 0 has ${P}`);
    for (const t of p) {
      if (!Number.isInteger(t) || t < 0 || t >= V) {
        throw new WgptError(`generateBatch: prompt ${i}'s token ${t} is outside the vocabulary [0, ${V})`);
      }
    }
  }
  if (P > maxT) throw new WgptError(`generateBatch: prompts of ${P} tokens exceed the model's context ${maxT}`);
  if (o.seeds && o.seeds.length !== n) {
    throw new WgptError(`generateBatch: ${o.seeds.length} seeds for ${n} prompts`);
  }
  const rands = prompts.map((_, i) => mulberry32(o.seeds?.[i] ?? 1337));
  const stop = new Set(o.stopTokens ?? []);
  const out: number[][] = prompts.map(() => []);
  const done: boolean[] = prompts.map(() => false);
  const gpu = model.gpu;
  const cache = new KVCache(gpu, model.config, n, Math.min(maxT, P + o.maxNewTokens));
  try {
    let feed = prompts.flat();
    let pos = 0;
    const steps = Math.min(o.maxNewTokens, maxT - P + 1);
    for (let s = 0; s < steps && !done.every(Boolean); s++) {
      const T = feed.length / n;
      const rows = await tidyAsync(async () => {
        const logits = model.forwardCached(tensor(gpu, feed, [n, T], 'i32'), cache, pos, { lastOnly: true });
        return new Float32Array(await gpu.read(logits.buffer, n * Vp * 4));
      });
      pos += T;
      const next: number[] = [];
      for (let i = 0; i < n; i++) {
        // A finished row keeps decoding (its token is thrown away) so that the batch stays one shape.
        if (done[i]) {
          next.push(out[i]!.at(-1)!);
          continue;
        }
        const id = pickToken(rows.subarray(i * Vp, (i + 1) * Vp), V, o, rands[i]!);
        out[i]!.push(id);
        if (stop.has(id)) done[i] = true;
        next.push(id);
      }
      if (pos >= cache.maxT) break;
      feed = next;
    }
    return out;
  } finally {
    cache.dispose();
  }
}

// Inputs of the collective tests, made the same way by the rank processes and by the test that checks them.
import { shardRange } from '../src/dist/collective.ts';
import { mulberry32 } from '../src/random.ts';

/** Rank r's input of n floats: signs and magnitudes from 1e-3 to 1e3, so sums round in every way. */
export function rankInput(rank: number, n: number, salt: number): Float32Array {
  const rnd = mulberry32(1000003 * (salt + 1) + 7919 * rank + n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rnd() - 0.5) * 10 ** (6 * rnd() - 3);
  return out;
}

/** The cases each rank runs, in order: [name, n]. */
export const CASES: [string, number][] = [
  ['one', 1],
  ['seven', 7],
  ['odd', 100_003],
];

/** broadcastSpans test: a buffer of BCAST_FLOATS, rank r sending spans (first float, count) BCAST_SPANS[r]. */
export const BCAST_FLOATS = 1000;
export const BCAST_SPANS: [number, number][][] = [
  [[0, 3], [10, 300], [700, 1]],
  [[3, 7], [400, 250]],
];

/** The ranks' inputs summed in f32 in rank order 0..W-1 (Math.fround): every rank's result, bit for bit. */
export function rankOrderSum(W: number, n: number, salt: number): Float32Array {
  const xs = [...Array(W).keys()].map((r) => rankInput(r, n, salt));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = xs[0]![i]!;
    for (let r = 1; r < W; r++) s = Math.fround(s + xs[r]![i]!);
    out[i] = s;
  }
  return out;
}

/**
 * The worst |got - exact| / bound over the elements, where exact is the f64 sum (or mean) of the W inputs `xs`: W
 * terms added one by one in f32 err by at most γ(W-1)·Σ|x| with γ(k) = k·u/(1-k·u), and the f64 reference adds its
 * own (W-1)·2^-53·Σ|x|; the mean rounds once more, by at most u·|result|. At most 1 when `got` is right.
 */
export function worstOverBound(xs: Float32Array[], got: Float32Array, op: 'sum' | 'mean'): number {
  const W = xs.length;
  const u = 2 ** -24;
  const gamma = ((W - 1) * u) / (1 - (W - 1) * u) + (W - 1) * 2 ** -53;
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    let s = 0;
    let abs = 0;
    for (const x of xs) {
      s += x[i]!;
      abs += Math.abs(x[i]!);
    }
    const want = op === 'sum' ? s : s / W;
    const tol = op === 'sum' ? gamma * abs : (gamma * abs) / W + u * ((Math.abs(s) + gamma * abs) / W);
    worst = Math.max(worst, Math.abs(got[i]! - want) / tol);
  }
  return worst;
}

/** What dist-rank.ts `ops` must write for rank r of W (the private-array results): file name → contents. */
export function expectedOps(W: number, r: number): Map<string, Float32Array> {
  const want = new Map<string, Float32Array>();
  for (const [name, n] of CASES) {
    const sum = rankOrderSum(W, n, 0);
    const s = shardRange(n, W, r);
    const gathered = new Float32Array(n);
    for (let q = 0; q < W; q++) {
      const t = shardRange(n, W, q);
      gathered.set(rankInput(q, n, 2).subarray(t.start, t.end), t.start);
    }
    want.set(`sum-${name}-rank${r}.f32`, sum);
    want.set(
      `mean-${name}-rank${r}.f32`,
      sum.map((v) => v / W),
    );
    want.set(`scatter-${name}-rank${r}.f32`, rankOrderSum(W, n, 1).subarray(s.start, s.end));
    want.set(`gather-${name}-rank${r}.f32`, gathered);
    want.set(`bcast-${name}-rank${r}.f32`, rankInput(W - 1, n, 3));
  }
  return want;
}

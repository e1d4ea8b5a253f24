// Inputs of the collective tests, made the same way by the rank processes and by the test that checks them.
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

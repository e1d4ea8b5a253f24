// The ranks' data of the summer test, shared by the rank program and the test that checks its output.
import { randomF32 } from '@wgpt/runtime/testing';

/** Rank r's data: values of mixed magnitude (2^-14..2^14), so that the order of the additions shows in the bits. */
export function summerInput(r: number, n: number, seed: number): Float32Array {
  const x = randomF32(n, 100 * seed + r);
  for (let i = 0; i < n; i++) x[i] = x[i]! * 2 ** (((i * 7 + r * 3) % 29) - 14);
  return x;
}

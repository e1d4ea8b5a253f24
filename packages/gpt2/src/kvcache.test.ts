// The decode step's few-row matmuls against the linear ops: the same kernel with other tiles, so the same bits
// (what lets forwardCached match the full forward's matmuls exactly).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { noGrad, tensor, tidyAsync, type Gpu, type Tensor } from '@wgpt/runtime';
import { randomF32, testGpu } from '@wgpt/runtime/testing';
import { linear, linearGelu } from '@wgpt/kernels';
import { decodeLinear, decodeLinearGelu } from './kvcache.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

// M = 1 (a decode step), 16 (the most rows that take the few-row tiles), 17 (falls back to the ops); odd K and N.
for (const [M, K, N] of [[1, 128, 384], [3, 24, 61], [16, 64, 100], [17, 32, 48]] as const) {
  it(`M=${M} K=${K} N=${N}: decodeLinear and decodeLinearGelu give the linear ops' bits`, async () => {
    await tidyAsync(async () => {
      const x = tensor(gpu, randomF32(M * K, 1, -1, 1), [M, K]);
      const w = tensor(gpu, randomF32(N * K, 2, -1, 1), [N, K]);
      const b = tensor(gpu, randomF32(N, 3, -1, 1), [N]);
      const pairs: [Tensor, Tensor][] = noGrad(() => [
        [decodeLinear(x, w, b), linear(x, w, b)],
        [decodeLinear(x, w), linear(x, w)],
        [decodeLinearGelu(x, w, b), linearGelu(x, w, b)],
      ]);
      for (const [got, want] of pairs) {
        const [g, e] = [new Uint32Array((await got.read()).buffer), new Uint32Array((await want.read()).buffer)];
        expect(g).toEqual(e);
      }
    });
  });
}

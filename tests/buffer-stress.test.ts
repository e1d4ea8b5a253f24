// Buffer churn stress: the access pattern after which dawn.node (webgpu 0.6.2) died on an H200, where a probe that
// ran matmuls at one size and then moved to the next crashed soon after in 18 of 19 runs: uploads with writeBuffer
// at mixed sizes, dispatches binding four buffers including a uniform, waits, mapped
// readbacks, and (in the second test) destroying and re-creating the buffers between rounds. On SwiftShader this
// checks the pool's bookkeeping and every result; tools/gpu/stress.ts runs the same cycles on a real GPU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { add } from '@wgpt/kernels';
import { tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { rng, testGpu } from '@wgpt/runtime/testing';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

// Floats per tensor: small, page-sized, and up to 1 MiB, so several size classes are in play at once.
const SIZES = [1, 3, 1000, 4096, 65_537, 250_000];
const PATTERN = new Map(SIZES.map((n) => [n, Float32Array.from({ length: n }, (_, i) => i % 7)]));

async function cycles(count: number, trimEvery: number): Promise<{ checked: number; allocations: number }> {
  const r = rng(count + trimEvery);
  const before = gpu.pool.stats.allocations;
  let checked = 0;
  for (let c = 0; c < count; c++) {
    const n = SIZES[Math.floor(r() * SIZES.length)]!;
    const a0 = (c % 97) - 48;
    await tidyAsync(async () => {
      const a = tensor(gpu, new Float32Array(n).fill(a0), [n]);
      const b = tensor(gpu, PATTERN.get(n)!, [n]);
      const s = add(a, b);
      // Read every cycle for small tensors, every 8th for large ones (readback dominates the time).
      if (n < 70_000 || c % 8 === 0) {
        const v = await s.read();
        const i = Math.floor(r() * n);
        expect(v[i]).toBe(a0 + (i % 7));
        expect(v[n - 1]).toBe(a0 + ((n - 1) % 7));
        checked++;
      }
    });
    if (trimEvery && c % trimEvery === trimEvery - 1) {
      await gpu.sync();
      gpu.pool.trim();
    }
  }
  await gpu.sync();
  return { checked, allocations: gpu.pool.stats.allocations - before };
}

describe('buffer pool under churn', () => {
  it('2000 cycles of alloc, upload, dispatch, readback, free: pooled buffers are reused', async () => {
    const live = gpu.pool.stats.live;
    const { checked, allocations } = await cycles(2000, 0);
    expect(checked).toBeGreaterThan(1000);
    // Each cycle holds 3 tensors + a staging buffer; with 6 sizes in a few classes the pool stops allocating early.
    expect(allocations).toBeLessThan(60);
    expect(gpu.pool.stats.live).toBe(live);
  });

  it('600 cycles with every free buffer destroyed every 10 cycles (create/destroy churn)', async () => {
    const { checked, allocations } = await cycles(600, 10);
    expect(checked).toBeGreaterThan(300);
    expect(allocations).toBeGreaterThan(60); // the churn really happened
  });
});

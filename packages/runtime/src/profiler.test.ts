// Kernel timing: every dispatch recorded while profiling is timed (timestamp queries past one query set's capacity,
// or wall time per dispatch), and the per-step table adds up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { empty, fill, PROFILER_CAPACITY, profileTable, type Gpu } from './index.ts';
import { testGpu } from './testing.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

describe('profiling', () => {
  it('times every dispatch with timestamps, also past the capacity of one query set', async (ctx) => {
    if (!gpu.profiler) ctx.skip('this adapter has no timestamp queries');
    const t = empty(gpu, [64], 'f32', { track: false });
    gpu.resetProfile();
    expect(gpu.setProfiling(true)).toBe('timestamps');
    const n = PROFILER_CAPACITY + 52;
    for (let i = 0; i < n; i++) fill(t, i);
    gpu.setProfiling(false);
    const times = await gpu.profileTimes();
    expect(times.map((x) => [x.label, x.count])).toEqual([['fill@v1', n]]);
    gpu.resetProfile();
    t.dispose();
  });

  it('without timestamps (or asked to), submits each dispatch alone at the next read and times it', async () => {
    const t = empty(gpu, [64], 'f32', { track: false });
    gpu.resetProfile();
    expect(gpu.setProfiling(true, { wall: true })).toBe('wall');
    const s0 = gpu.submitCount;
    for (let i = 0; i < 5; i++) fill(t, i);
    expect(gpu.submitCount).toBe(s0); // held until the read
    expect(Array.from(await t.read()).every((x) => x === 4)).toBe(true); // in order
    gpu.setProfiling(false);
    expect(gpu.submitCount - s0).toBeGreaterThanOrEqual(5);
    const times = await gpu.profileTimes();
    expect(times).toHaveLength(1);
    expect(times[0]!.label).toBe('fill@v1');
    expect(times[0]!.count).toBe(5);
    expect(times[0]!.totalMs).toBeGreaterThan(0);
    gpu.resetProfile();
    t.dispose();
  });

  it('the table gives calls and ms per step, shares, the total and the matmuls share', () => {
    const lines = profileTable(
      [
        { label: 'matmul@v2', count: 8, totalMs: 6 },
        { label: 'add@v1', count: 4, totalMs: 2 },
        { label: 'matmul@v3', count: 2, totalMs: 2 },
      ],
      2,
      'test',
    );
    expect(lines[0]).toBe('GPU time per kernel over a step (test, mean of 2 steps):');
    expect(lines[2]).toMatch(/^ {2}matmul@v2 +4 +3\.000 +60\.0% +750\.0$/);
    expect(lines.at(-1)).toMatch(/^ {2}total +7 +5\.000 +100% +\(matmuls 80\.0%\)$/);
  });
});

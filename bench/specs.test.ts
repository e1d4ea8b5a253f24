// The bench's own kernel, held to the same rules as kernels/specs.test.ts holds the kernels: its spec matches its
// WGSL by reflection, every .wgsl under bench/ belongs to a spec, and it does what the baseline claims (copies).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSpec, empty, tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { randomF32, testGpu } from '@wgpt/runtime/testing';
import { copyKernel, copySpec } from './index.ts';

const root = new URL('..', import.meta.url).pathname;
const specs = [copySpec];

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

describe('bench kernels', () => {
  for (const spec of specs) {
    it(`${spec.name}@${spec.version} matches ${spec.file} by reflection`, () => {
      expect(checkSpec(spec)).toEqual([]);
      expect(readFileSync(join(root, spec.file), 'utf8')).toBe(spec.source);
    });
  }

  it('every .wgsl file under bench/ belongs to a spec', () => {
    const files = readdirSync(join(root, 'bench'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.wgsl') && !f.includes('node_modules'))
      .map((f) => `bench/${f}`);
    expect(files.length).toBeGreaterThan(0);
    expect(files.filter((f) => !specs.some((s) => s.file === f))).toEqual([]);
  });

  it('the copy kernel copies every element, and only those', async () => {
    await tidyAsync(async () => {
      const n = 4 * 1031;
      const src = tensor(gpu, randomF32(n, 1), [n]);
      const out = empty(gpu, [n + 4]); // NaN-poisoned: the 4 past n must stay untouched
      copyKernel(gpu, src.buffer, out.buffer, n);
      const got = await out.read();
      expect(Array.from(got.subarray(0, n))).toEqual(Array.from(await src.read()));
      expect(Array.from(got.subarray(n)).every(Number.isNaN)).toBe(true);
      expect(() => copyKernel(gpu, src.buffer, out.buffer, n - 1)).toThrow(/not a multiple of 4/);
    });
  });
});

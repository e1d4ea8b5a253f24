// The host summation: every adder must give IEEE f32 addition bit for bit (the reference: Math.fround of the
// f64 sum, which is the correctly rounded f32 sum of two f32 values), including signed zeros, infinities and NaN.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../random.ts';
import { mapShared } from './mmap.ts';
import { blasAdder, jsAdder, pickAdder, sumInOrder, type Adder } from './sum.ts';

const blas = await blasAdder();
const adders: [string, Adder | null][] = [
  ['js', jsAdder],
  ['blas', blas.adder],
];

/** Values whose sums round in every way: magnitudes 1e-30..1e30, both signs, and the special values. */
function values(n: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  const special = [0, -0, Infinity, -Infinity, NaN, 3.4e38, -3.4e38, 1, -1, 2 ** -24];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = rnd() < 0.05 ? special[Math.floor(rnd() * special.length)]! : (rnd() - 0.5) * 10 ** (60 * rnd() - 30);
  }
  return out;
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
/** NaN payloads may differ between implementations; every other value must match in bits. */
function sameF32(got: Float32Array, want: Float32Array): number {
  const g = bits(got);
  const w = bits(want);
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]!) ? !Number.isNaN(got[i]!) : g[i] !== w[i]) return i;
  }
  return -1;
}

describe.each(adders)('%s adder', (name, adder) => {
  it.skipIf(!adder)(`adds in f32, in rank order, bit for bit${adder ? '' : `: skipped, ${blas.why}`}`, () => {
    for (const [n, W] of [
      [0, 2],
      [1, 2],
      [7, 3],
      [1000, 8],
      [100_003, 4],
    ] as const) {
      const xs = [...Array(W).keys()].map((r) => values(n + 5, 17 * n + r)); // terms longer than acc
      const want = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        let s = xs[0]![i]!;
        for (let r = 1; r < W; r++) s = Math.fround(s + xs[r]![i]!);
        want[i] = s;
      }
      const acc = new Float32Array(n + 3).fill(-7); // elements past acc's view must stay
      sumInOrder(adder!, acc.subarray(0, n), (r) => xs[r]!, W);
      expect(sameF32(acc.subarray(0, n), want), `${name}, n ${n}, W ${W}`).toBe(-1);
      expect([...acc.subarray(n)]).toEqual([-7, -7, -7]);
    }
  });

  it.skipIf(!adder)('rounds like f32, not f64: 1 + 2^-24 + 2^-24 stays 1', () => {
    const acc = new Float32Array([1]);
    adder!.add(acc, new Float32Array([2 ** -24]));
    adder!.add(acc, new Float32Array([2 ** -24]));
    expect(acc[0]).toBe(1);
  });

  it.skipIf(!adder)('sums straight out of mapped shared memory', async () => {
    const file = path.join(os.tmpdir(), `wgpt-sum-test-${process.pid}-${name}`);
    const fd = fs.openSync(file, 'w+');
    fs.ftruncateSync(fd, 64);
    const a = await mapShared(fd, 64, 'a test file');
    const b = await mapShared(fd, 64, 'a test file');
    fs.closeSync(fd);
    fs.rmSync(file);
    a.f32.set([1, 2, 3, 4], 0);
    a.f32.set([10, 20, 30, 40], 8);
    adder!.add(b.f32.subarray(0, 4), b.f32.subarray(8, 12)); // written through one mapping, added in the other
    expect([...a.f32.subarray(0, 4)]).toEqual([11, 22, 33, 44]);
    a.unmap();
    b.unmap();
    expect(() => a.f32).toThrow(/no longer mapped/);
  });
});

it('WGPT_DIST_SUM: js, blas or auto; anything else is refused naming it', async () => {
  expect((await pickAdder({ WGPT_DIST_SUM: 'js' })).name).toBe('js');
  expect((await pickAdder({})).name).toBe(blas.adder ? blas.adder.name : 'js');
  // gpu: the host adds as with auto until the rank attaches its GPU summer.
  expect((await pickAdder({ WGPT_DIST_SUM: 'gpu' })).name).toBe((await pickAdder({})).name);
  await expect(pickAdder({ WGPT_DIST_SUM: 'cpu' })).rejects.toThrow(/WGPT_DIST_SUM="cpu" is not one of auto, blas/);
  if (!blas.adder) await expect(pickAdder({ WGPT_DIST_SUM: 'blas' })).rejects.toThrow(/WGPT_DIST_SUM=blas: no BLAS/);
});

// OpenBLAS sizes its thread pool when loaded (one thread fewer than the cores); threads it never needs are a
// crash risk at exit and a hundred idle threads per rank on a big node.
it.skipIf(!blas.adder || !fs.existsSync('/proc/self/task'))(
  'loading BLAS starts no threads and leaves the environment',
  () => {
    const root = new URL('../../../../', import.meta.url).pathname;
    const out = execFileSync(process.execPath, ['scripts/run-ts.mjs', 'packages/runtime/test/blas-threads.ts'], {
      cwd: root,
      env: { ...process.env, OPENBLAS_NUM_THREADS: '' },
      encoding: 'utf8',
    });
    const got = JSON.parse(out.trim().split('\n').pop()!) as {
      before: number;
      after: number;
      adder: string;
      env: string;
    };
    expect(got.adder).toMatch(/^blas/);
    expect(got.after).toBe(got.before);
    expect(got.env).toBe('');
  },
);

import { EPS32, checkOp, dot, finiteDiff, randomF32, relErr, testGpu } from '@wgpt/runtime/testing';
import { backward, checkSpec, tensor, tidyAsync, type Gpu, type Tensor } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attention, attentionNaive } from '../index.ts';
import { subgroupsOf4 } from '../common.ts';
import { attentionSpecs, flashPlan, flashTiles, flashV2Tiles, type AttentionOptions } from './attention.ts';
import {
  attentionBackwardRef,
  attentionRef,
  bwdBound,
  bwdTol,
  fwdBound,
  fwdTol,
  type AttnShape,
} from './attention.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

type Op = (x: Tensor) => Tensor;
type Extra = Omit<AttentionOptions, 'NH'>;
// Every implementation: flash v2, v1 and v3 (each with its own forward and backward kernels), and the naive one.
// v3 takes head sizes that are multiples of 4 up to 64 (`takes`), and runs where subgroups have 4 invocations
// (`runs`, known once the device is open; the software test adapter has them, checked below).
const versions: {
  name: string;
  op: (NH: number, extra?: Extra) => Op;
  takes?: (HS: number) => boolean;
  runs?: () => boolean;
}[] = [
  { name: 'flash v2', op: (NH, extra) => (x) => attention(x, { NH, version: 'v2', ...extra }) },
  { name: 'flash v1', op: (NH, extra) => (x) => attention(x, { NH, version: 'v1', ...extra }) },
  { name: 'naive', op: (NH) => (x) => attentionNaive(x, { NH }) },
  {
    name: 'flash v3',
    op: (NH, extra) => (x) => attention(x, { NH, version: 'v3', ...extra }),
    takes: (HS) => HS % 4 === 0 && HS <= 64,
    runs: () => subgroupsOf4(gpu),
  },
];

function qkvData(s: AttnShape, seed: number): Float32Array {
  return randomF32(s.B * s.T * 3 * s.NH * s.HS, seed);
}

/** Forward and gradient (write, then accumulate) against the f64 forward and the analytic f64 backward. */
async function checkAnalytic(op: Op, s: AttnShape, seed: number) {
  const x = qkvData(s, seed);
  const C = s.NH * s.HS;
  const g = randomF32(s.B * s.T * C, seed + 7);
  return tidyAsync(async () => {
    const X = tensor(gpu, x, [s.B, s.T, 3 * C], 'f32', { requiresGrad: true });
    const out = op(X);
    const fwd = relErr(await out.read(), attentionRef(x, s));
    const G = tensor(gpu, g, [s.B, s.T, C]);
    const want = attentionBackwardRef(x, g, s);
    backward(out, G);
    const gradWrite = relErr((await X.grad!.read()) as Float32Array, want);
    backward(out, G);
    const gradAccumulate = relErr((await X.grad!.read()) as Float32Array, want.map((v) => 2 * v));
    return { fwd, gradWrite, gradAccumulate };
  });
}

describe('attention specs', () => {
  for (const s of attentionSpecs) it(`${s.name}@${s.version} matches its WGSL`, () => expect(checkSpec(s)).toEqual([]));
});

describe('attention f64 reference', () => {
  it('the analytic backward equals central differences of the forward', () => {
    const s = { B: 2, T: 5, NH: 2, HS: 3 };
    const x = Float64Array.from(qkvData(s, 5));
    const g = randomF32(s.B * s.T * s.NH * s.HS, 6);
    const fd = finiteDiff((xi) => dot(g, attentionRef(xi, s)), x);
    expect(relErr(attentionBackwardRef(x, g, s), fd)).toBeLessThan(1e-8); // f64 FD: h² and ε/h terms ≈ 1e-10
  });
});

for (const v of versions) {
  describe(`attention ${v.name}`, () => {
    // Against central differences of the f64 reference through checkOp (small: FD costs a reference per element).
    for (const s of [
      { B: 1, T: 1, NH: 1, HS: 4 },
      { B: 2, T: 7, NH: 2, HS: 4 },
      { B: 1, T: 18, NH: 3, HS: 2 },
      { B: 1, T: 6, NH: 2, HS: 20 },
    ] as AttnShape[]) {
      if (v.takes && !v.takes(s.HS)) continue;
      it(`finite differences B=${s.B} T=${s.T} NH=${s.NH} HS=${s.HS}`, async () => {
        if (v.runs && !v.runs()) return;
        const C = s.NH * s.HS;
        const r = await checkOp(gpu, v.op(s.NH), [{ data: qkvData(s, s.T), shape: [s.B, s.T, 3 * C] }], ([x]) =>
          attentionRef(x!, s),
        );
        expect(r.forward).toBeLessThanOrEqual(fwdTol(s.T, s.HS));
        // FD in f64 is exact to ~1e-10 here: the error is the GPU's.
        expect(r.gradWrite[0]).toBeLessThanOrEqual(bwdTol(s.T, s.HS));
        expect(r.gradAccumulate[0]).toBeLessThanOrEqual(bwdTol(s.T, s.HS));
      });
    }

    // Odd T (partial blocks, T = 1 block + 1, 2 blocks + 2), many heads, B up to 3, GPT-2's head sizes.
    const grid: AttnShape[] = [
      { B: 3, T: 1, NH: 12, HS: 8 },
      { B: 2, T: 7, NH: 5, HS: 64 },
      { B: 3, T: 17, NH: 12, HS: 4 },
      { B: 1, T: 65, NH: 2, HS: 64 },
      { B: 2, T: 130, NH: 1, HS: 8 },
      { B: 1, T: 33, NH: 1, HS: 128 },
      // v3's 16-dim chunks: the demo model's HS, and chunks that end inside (20, 52) or exactly at (32) the head.
      { B: 2, T: 37, NH: 3, HS: 16 },
      { B: 1, T: 9, NH: 2, HS: 20 },
      { B: 2, T: 6, NH: 1, HS: 52 },
      { B: 1, T: 11, NH: 2, HS: 32 },
    ];
    for (const s of grid) {
      if (v.takes && !v.takes(s.HS)) continue;
      it(`forward and gradients vs f64 B=${s.B} T=${s.T} NH=${s.NH} HS=${s.HS}`, async () => {
        if (v.runs && !v.runs()) return;
        const r = await checkAnalytic(v.op(s.NH), s, s.T + s.NH);
        expect(r.fwd).toBeLessThanOrEqual(fwdTol(s.T, s.HS));
        expect(r.gradWrite).toBeLessThanOrEqual(bwdTol(s.T, s.HS));
        expect(r.gradAccumulate).toBeLessThanOrEqual(bwdTol(s.T, s.HS));
      });
    }

    it('causal: changing (even to NaN) a future token never changes an earlier output, bit for bit', async () => {
      if (v.runs && !v.runs()) return;
      const s = { B: 2, T: 40, NH: 2, HS: 8 };
      const C = s.NH * s.HS;
      const x = qkvData(s, 9);
      const t0 = 21;
      const y = Float32Array.from(x);
      for (let b = 0; b < s.B; b++)
        for (let t = t0; t < s.T; t++)
          for (let c = 0; c < 3 * C; c++)
            y[(b * s.T + t) * 3 * C + c] = t === t0 ? NaN : 100 * y[(b * s.T + t) * 3 * C + c]!;
      await tidyAsync(async () => {
        const a = await v.op(s.NH)(tensor(gpu, x, [s.B, s.T, 3 * C])).read();
        const b2 = await v.op(s.NH)(tensor(gpu, y, [s.B, s.T, 3 * C])).read();
        const bitsA = new Uint32Array(a.buffer);
        const bitsB = new Uint32Array(b2.buffer);
        for (let b = 0; b < s.B; b++)
          for (let t = 0; t < t0; t++)
            for (let c = 0; c < C; c++) {
              const i = (b * s.T + t) * C + c;
              if (bitsA[i] !== bitsB[i]) throw new Error(`out[${b}, ${t}, ${c}] changed: ${a[i]} -> ${b2[i]}`);
            }
        expect(Number.isNaN(b2[(0 * s.T + t0) * C]!)).toBe(true); // the poisoned token itself does see the NaN
      });
    });
  });
}

describe('attention flash tilings', () => {
  // Blocks smaller and larger than T, BR != BC, TPR below and above HS: the edge logic in every kernel.
  const tilings: Extra[] = [
    { version: 'v1', tiles: { BR: 8, BC: 4, TPR: 4 } },
    { version: 'v1', tiles: { BR: 4, BC: 16, TPR: 8 } },
    { version: 'v1', tiles: { BR: 32, BC: 8, TPR: 2 } },
    {
      v2Tiles: {
        forward: { BR: 8, BC: 4, R: 2, TX: 2 },
        dq: { BR: 8, BC: 4, R: 2, TX: 2 },
        dkv: { BR: 4, BC: 8, R: 2, TX: 2 },
      },
    },
    {
      v2Tiles: {
        forward: { BR: 12, BC: 5, R: 3, TX: 4 },
        dq: { BR: 12, BC: 5, R: 3, TX: 4 },
        dkv: { BR: 5, BC: 12, R: 3, TX: 4 },
      },
    },
    {
      v2Tiles: {
        forward: { BR: 4, BC: 16, R: 1, TX: 16 },
        dq: { BR: 4, BC: 16, R: 1, TX: 16 },
        dkv: { BR: 16, BC: 4, R: 1, TX: 16 },
      },
    },
    {
      v2Tiles: {
        forward: { BR: 64, BC: 8, R: 4, TX: 4 },
        dq: { BR: 64, BC: 8, R: 4, TX: 4 },
        dkv: { BR: 8, BC: 64, R: 4, TX: 4 },
      },
    },
  ];
  for (const extra of tilings) {
    it(`${JSON.stringify(extra)}, B=2 T=37 NH=3 HS=16`, async () => {
      const s = { B: 2, T: 37, NH: 3, HS: 16 };
      const r = await checkAnalytic(versions[extra.version === 'v1' ? 1 : 0]!.op(s.NH, extra), s, 3);
      // Blocks of 4 keys: up to T/4 online rescalings instead of T/16.
      expect(r.fwd).toBeLessThanOrEqual(Math.min(1e-5, fwdBound(s.T, s.HS) + (s.T / 4) * 4 * EPS32));
      expect(r.gradWrite).toBeLessThanOrEqual(Math.min(1e-5, bwdBound(s.T, s.HS) + (s.T / 4) * 8 * EPS32));
      expect(r.gradAccumulate).toBeLessThanOrEqual(Math.min(1e-5, bwdBound(s.T, s.HS) + (s.T / 4) * 8 * EPS32));
    });
  }

  it('the default kernels follow the adapter: v3 (else v1) on software, v2 on hardware', () => {
    // The v3 cases run only where subgroups of 4 exist: make sure that is here, so they cannot pass vacuously.
    if (gpu.software) expect(subgroupsOf4(gpu)).toBe(true);
    expect(flashPlan(gpu, 64).version).toBe(gpu.software ? 'v3' : 'v2');
    expect(flashPlan(gpu, 16).version).toBe(gpu.software ? 'v3' : 'v2');
    expect(flashPlan(gpu, 128).version).toBe(gpu.software ? 'v1' : 'v2'); // past v3's 64
    expect(flashPlan(gpu, 6).version).toBe(gpu.software ? 'v1' : 'v2'); // not a multiple of 4
    expect(() => flashPlan(gpu, 66, { version: 'v3' })).toThrow(/attention v3: head size 66/);
  });

  it('default tiles fit the device for HS 64 and 128', () => {
    for (const HS of [64, 128]) {
      const t = flashTiles(gpu, HS);
      expect(t.TPR * 8).toBeGreaterThanOrEqual(HS);
      for (const k of ['forward', 'dq', 'dkv'] as const)
        expect(flashV2Tiles(gpu, k, HS).TX * 8).toBeGreaterThanOrEqual(HS);
    }
  });
});

describe('attention determinism and errors', () => {
  it('flash gradients are bit-identical from run to run (no atomics)', async () => {
    const s = { B: 1, T: 45, NH: 2, HS: 8 };
    const C = s.NH * s.HS;
    const x = qkvData(s, 4);
    const g = randomF32(s.T * C, 5);
    for (const version of ['v1', 'v2', 'v3'] as const) {
      if (version === 'v3' && !subgroupsOf4(gpu)) continue;
      const runs: Uint32Array[] = [];
      for (let k = 0; k < 2; k++) {
        runs.push(
          await tidyAsync(async () => {
            const X = tensor(gpu, x, [s.B, s.T, 3 * C], 'f32', { requiresGrad: true });
            backward(attention(X, { NH: s.NH, version }), tensor(gpu, g, [s.B, s.T, C]));
            return new Uint32Array(((await X.grad!.read()) as Float32Array).buffer);
          }),
        );
      }
      expect(runs[0]).toEqual(runs[1]);
    }
  });

  it('rejects a qkv whose channels are not 3·NH·HS, naming the tensor', async () => {
    await tidyAsync(async () => {
      const X = tensor(gpu, new Float32Array(2 * 3 * 10), [2, 3, 10]);
      expect(() => attention(X, { NH: 2 })).toThrow(/attention: .*\[2x3x10\].*3·NH·HS/);
      expect(() => attentionNaive(X, { NH: 0 })).toThrow(/NH=0/);
    });
  });
});

describe('attention memory', () => {
  it('flash allocates O(T), naive O(T²), measured from the pool', async () => {
    const s = { B: 1, T: 256, NH: 1, HS: 8 };
    const C = s.NH * s.HS;
    const x = qkvData(s, 2);
    const peak = async (op: Op) =>
      tidyAsync(async () => {
        const X = tensor(gpu, x, [s.B, s.T, 3 * C], 'f32', { requiresGrad: true });
        const G = tensor(gpu, randomF32(s.T * C, 3), [s.B, s.T, C]);
        await gpu.sync();
        const base = gpu.pool.stats.bytesInUse;
        gpu.pool.stats.peakBytesInUse = base;
        backward(op(X), G);
        await gpu.sync();
        return gpu.pool.stats.peakBytesInUse - base;
      });
    const flash = await peak(versions[0]!.op(s.NH));
    const naive = await peak(versions[2]!.op(s.NH));
    const tt = s.B * s.NH * s.T * s.T * 4;
    expect(naive).toBeGreaterThanOrEqual(2 * tt); // probabilities + score gradient
    expect(flash).toBeLessThan(tt / 4); // out, grads, lse, D: a few (B, T, 3C) buffers
  });
});

import { EPS32, checkOp, dot, finiteDiff, randomF32, relErr, rng, testGpu } from '@wgpt/runtime/testing';
import { backward, checkSpec, empty, tensor, tidyAsync, type Gpu, type Tensor } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attention, attentionNaive } from '../index.ts';
import { subgroupsOf4 } from '../common.ts';
import {
  attentionSpecs,
  checkSegments,
  flashForward,
  flashPlan,
  flashTiles,
  flashV2Tiles,
  segmentBounds,
  type AttentionOptions,
} from './attention.ts';
import {
  attentionBackwardRef,
  attentionLseRef,
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

type Op = (x: Tensor, segments?: Tensor) => Tensor;
type Extra = Omit<AttentionOptions, 'NH' | 'segments'>;
// Every implementation: flash v2, v1 and v3 (each with its own forward and backward kernels), and the naive one.
// v3 takes head sizes that are multiples of 4 up to 64 (`takes`), and runs where subgroups have 4 invocations
// (`runs`, known once the device is open; the software test adapter has them, checked below).
const versions: {
  name: string;
  /** The flash version (its plan gives the lse); none for naive. */
  flash?: 'v1' | 'v2' | 'v3';
  op: (NH: number, extra?: Extra) => Op;
  takes?: (HS: number) => boolean;
  runs?: () => boolean;
}[] = [
  {
    name: 'flash v2',
    flash: 'v2',
    op: (NH, extra) => (x, segments) => attention(x, { NH, version: 'v2', ...extra, segments }),
  },
  {
    name: 'flash v1',
    flash: 'v1',
    op: (NH, extra) => (x, segments) => attention(x, { NH, version: 'v1', ...extra, segments }),
  },
  { name: 'naive', op: (NH) => (x, segments) => attentionNaive(x, { NH, segments }) },
  {
    name: 'flash v3',
    flash: 'v3',
    op: (NH, extra) => (x, segments) => attention(x, { NH, version: 'v3', ...extra, segments }),
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
    const gradAccumulate = relErr(
      (await X.grad!.read()) as Float32Array,
      want.map((v) => 2 * v),
    );
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
        const a = await v
          .op(s.NH)(tensor(gpu, x, [s.B, s.T, 3 * C]))
          .read();
        const b2 = await v
          .op(s.NH)(tensor(gpu, y, [s.B, s.T, 3 * C]))
          .read();
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

// Packed rows: segment ids (shared.ts). Each case runs every version with tilings small enough that a row spans
// several query and key blocks (v3's blocks are 4 rows), so the skipped blocks before a segment's start (forward,
// dQ) and after its end (dK/dV) and the masks inside partly visible blocks are all exercised.

/**
 * Segment ids for B rows of T: runs of 1 to maxLen tokens (a third of them of length 1) numbered 0, 1, ... in each
 * row, then with `pad` a tail of padding (-1) of 1 to T/4 tokens.
 */
function randomSegments(B: number, T: number, seed: number, maxLen: number, pad: boolean): Int32Array {
  const r = rng(seed);
  const seg = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const end = pad ? T - 1 - Math.floor(r() * Math.floor(T / 4)) : T;
    let id = 0;
    for (let t = 0; t < end; id++) {
      const len = r() < 1 / 3 ? 1 : 1 + Math.floor(r() * maxLen);
      for (let k = 0; k < len && t < end; k++, t++) seg[b * T + t] = id;
    }
    seg.fill(-1, b * T + end, (b + 1) * T);
  }
  return seg;
}

/** Rows of runs given by their lengths (ids 0, 1, ...), the rest of each row padding (-1). */
function runs(T: number, ...rows: number[][]): Int32Array {
  const seg = new Int32Array(rows.length * T).fill(-1);
  rows.forEach((lens, b) => {
    let t = 0;
    lens.forEach((len, id) => seg.fill(id, b * T + t, b * T + (t += len)));
  });
  return seg;
}

// Row 0: single tokens, a run across the 4- and 8-token block edges (2..10), one across several blocks (12..24),
// then padding; row 1: two long runs, no padding.
const handLayout = runs(37, [1, 1, 9, 1, 13, 5, 1], [20, 17]);
const allPadding = (() => {
  const seg = randomSegments(3, 29, 1, 6, true);
  return seg.fill(-1, 2 * 29); // and a row of padding only
})();
const segCases: { name: string; s: AttnShape; seg: Int32Array }[] = [
  { name: 'hand layout', s: { B: 2, T: 37, NH: 2, HS: 16 }, seg: handLayout },
  { name: 'random, a padding-only row', s: { B: 3, T: 29, NH: 2, HS: 8 }, seg: allPadding },
  { name: 'random, no padding', s: { B: 2, T: 21, NH: 3, HS: 4 }, seg: randomSegments(2, 21, 3, 4, false) },
  { name: 'random, long runs', s: { B: 2, T: 70, NH: 1, HS: 64 }, seg: randomSegments(2, 70, 2, 30, true) },
];

/** Per version, tilings to run (undefined: the device's); the small ones need HS <= maxHS. */
const segTilings: Record<string, { extra?: Extra; maxHS: number; small: boolean }[]> = {
  'flash v1': [
    { maxHS: 128, small: false },
    { extra: { tiles: { BR: 8, BC: 4, TPR: 4 } }, maxHS: 32, small: true },
    { extra: { tiles: { BR: 4, BC: 16, TPR: 8 } }, maxHS: 64, small: true },
  ],
  'flash v2': [
    { maxHS: 128, small: false },
    {
      extra: {
        v2Tiles: {
          forward: { BR: 8, BC: 4, R: 2, TX: 2 },
          dq: { BR: 8, BC: 4, R: 2, TX: 2 },
          dkv: { BR: 4, BC: 8, R: 2, TX: 2 },
        },
      },
      maxHS: 16,
      small: true,
    },
    {
      extra: {
        v2Tiles: {
          forward: { BR: 12, BC: 5, R: 3, TX: 4 },
          dq: { BR: 12, BC: 5, R: 3, TX: 4 },
          dkv: { BR: 5, BC: 12, R: 3, TX: 4 },
        },
      },
      maxHS: 32,
      small: true,
    },
  ],
  'flash v3': [{ maxHS: 64, small: true }],
  naive: [{ maxHS: 128, small: false }],
};

// The bounds of attention.ref.ts with T the row length (a segment is shorter: the bound holds), plus with blocks of
// 4 keys up to T/4 online rescalings (as in the tilings above).
const segFwdTol = (s: AttnShape, small: boolean) =>
  Math.min(1e-5, fwdBound(s.T, s.HS) + (small ? (s.T / 4) * 4 * EPS32 : 0));
const segBwdTol = (s: AttnShape, small: boolean) =>
  Math.min(1e-5, bwdBound(s.T, s.HS) + (small ? (s.T / 4) * 8 * EPS32 : 0));

/**
 * Largest |lse − ref| / (1 + log T + |ref|) (Infinity for a non-finite value): lse = m + log l carries the scores'
 * error relative to |m| <= |lse| + log T (1 <= l <= T) and l's relative error as an absolute one, both within the
 * forward's bound.
 */
function lseErr(got: Float32Array, ref: Float64Array, T: number): number {
  if (got.length !== ref.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(got[i]!)) return Infinity;
    worst = Math.max(worst, Math.abs(got[i]! - ref[i]!) / (1 + Math.log(T) + Math.abs(ref[i]!)));
  }
  return worst;
}

/** Forward out (through the op) and lse (through flashForward, flash only), and dqkv written and accumulated. */
async function checkSegmented(op: Op, flash: Extra | null, s: AttnShape, seg: Int32Array, seed: number) {
  const x = qkvData(s, seed);
  const C = s.NH * s.HS;
  const g = randomF32(s.B * s.T * C, seed + 7);
  return tidyAsync(async () => {
    const S = tensor(gpu, seg, [s.B, s.T], 'i32');
    const X = tensor(gpu, x, [s.B, s.T, 3 * C], 'f32', { requiresGrad: true });
    const out = op(X, S);
    const fwd = relErr(await out.read(), attentionRef(x, s, seg));
    let lse = 0;
    if (flash) {
      const O = empty(gpu, [s.B, s.T, C]);
      const L = empty(gpu, [s.B, s.NH, s.T]);
      const bounds = segmentBounds(gpu, S.buffer, s.B, s.T);
      flashForward(gpu, X.buffer, O.buffer, L.buffer, { ...s, C }, flashPlan(gpu, s.HS, flash), bounds.buffer);
      lse = lseErr((await L.read()) as Float32Array, attentionLseRef(x, s, seg), s.T);
    }
    const G = tensor(gpu, g, [s.B, s.T, C]);
    const want = attentionBackwardRef(x, g, s, seg);
    backward(out, G);
    const gradWrite = relErr((await X.grad!.read()) as Float32Array, want);
    backward(out, G);
    const gradAccumulate = relErr(
      (await X.grad!.read()) as Float32Array,
      want.map((v) => 2 * v),
    );
    return { fwd, lse, gradWrite, gradAccumulate };
  });
}

describe('attention f64 reference with segments', () => {
  it('the analytic backward equals central differences of the forward', () => {
    const s = { B: 2, T: 7, NH: 2, HS: 3 };
    const seg = runs(7, [1, 3, 2], [2, 5]);
    const x = Float64Array.from(qkvData(s, 5));
    const g = randomF32(s.B * s.T * s.NH * s.HS, 6);
    const fd = finiteDiff((xi) => dot(g, attentionRef(xi, s, seg)), x);
    expect(relErr(attentionBackwardRef(x, g, s, seg), fd)).toBeLessThan(1e-8);
  });

  it('a packed row gives each segment what it gets alone', () => {
    // Segment [3, 7) of a row of 9 against a row holding only those 4 tokens: the mask's meaning, checked once.
    const s = { B: 1, T: 9, NH: 1, HS: 4 };
    const C = 4;
    const x = qkvData(s, 8);
    const packed = attentionRef(x, s, runs(9, [3, 4, 2]));
    const alone = attentionRef(x.subarray(3 * 3 * C, 7 * 3 * C), { ...s, T: 4 });
    expect(Array.from(packed.subarray(3 * C, 7 * C))).toEqual(Array.from(alone));
  });
});

for (const v of versions) {
  describe(`attention ${v.name} with segments`, () => {
    for (const { extra, maxHS, small } of segTilings[v.name]!) {
      const tiles = extra ? ` ${JSON.stringify(extra)}` : '';
      for (const c of segCases) {
        if (c.s.HS > maxHS || (v.takes && !v.takes(c.s.HS))) continue;
        const { B, T, NH, HS } = c.s;
        it(`${c.name} B=${B} T=${T} NH=${NH} HS=${HS}${tiles}: out, lse and dqkv vs f64`, async () => {
          if (v.runs && !v.runs()) return;
          const flash = v.flash ? { version: v.flash, ...extra } : null;
          const r = await checkSegmented(v.op(NH, extra), flash, c.s, c.seg, T + NH);
          expect(r.fwd).toBeLessThanOrEqual(segFwdTol(c.s, small));
          expect(r.lse).toBeLessThanOrEqual(fwdBound(T, HS) + (small ? (T / 4) * 4 * EPS32 : 0));
          expect(r.gradWrite).toBeLessThanOrEqual(segBwdTol(c.s, small));
          expect(r.gradAccumulate).toBeLessThanOrEqual(segBwdTol(c.s, small));
        });
      }

      it(`isolation${tiles}: other segments' tokens (even NaN) never change a segment's output bits`, async () => {
        if (v.runs && !v.runs()) return;
        const s = { B: 2, T: 37, NH: 2, HS: 16 };
        if (s.HS > maxHS) return;
        const C = s.NH * s.HS;
        const x = qkvData(s, 11);
        // Keep segment 4 of row 0 (tokens 12..24) and segment 1 of row 1 (20..36); poison every other token.
        const kept = (b: number, t: number) => handLayout[b * s.T + t] === (b === 0 ? 4 : 1);
        const y = Float32Array.from(x);
        for (let b = 0; b < s.B; b++)
          for (let t = 0; t < s.T; t++) if (!kept(b, t)) y.fill(NaN, (b * s.T + t) * 3 * C, (b * s.T + t + 1) * 3 * C);
        await tidyAsync(async () => {
          const S = tensor(gpu, handLayout, [s.B, s.T], 'i32');
          const run = async (data: Float32Array) =>
            new Uint32Array(
              (
                (await v
                  .op(s.NH, extra)(tensor(gpu, data, [s.B, s.T, 3 * C]), S)
                  .read()) as Float32Array
              ).buffer,
            );
          const a = await run(x);
          const p = await run(y);
          let checked = 0;
          for (let b = 0; b < s.B; b++)
            for (let t = 0; t < s.T; t++) {
              if (!kept(b, t)) continue;
              for (let ch = 0; ch < C; ch++) {
                const i = (b * s.T + t) * C + ch;
                if (a[i] !== p[i]) throw new Error(`out[${b}, ${t}, ${ch}] changed`);
                checked++;
              }
            }
          expect(checked).toBe((13 + 17) * C);
          expect(Number.isNaN(new Float32Array(p.buffer)[0])).toBe(true); // a poisoned token sees its own NaN
        });
      });

      it(`one segment per row${tiles} gives the bits of no segments, forward and backward`, async () => {
        if (v.runs && !v.runs()) return;
        const s = { B: 2, T: 37, NH: 2, HS: 16 };
        if (s.HS > maxHS) return;
        const C = s.NH * s.HS;
        const x = qkvData(s, 12);
        const g = randomF32(s.B * s.T * C, 13);
        const seg = runs(s.T, [s.T], []); // row 0: segment 0; row 1: padding (-1) only
        const run = (segments: boolean) =>
          tidyAsync(async () => {
            const X = tensor(gpu, x, [s.B, s.T, 3 * C], 'f32', { requiresGrad: true });
            const out = v.op(s.NH, extra)(X, segments ? tensor(gpu, seg, [s.B * s.T], 'i32') : undefined);
            backward(out, tensor(gpu, g, [s.B, s.T, C]));
            const o = (await out.read()) as Float32Array;
            const d = (await X.grad!.read()) as Float32Array;
            return [...new Uint32Array(o.buffer), ...new Uint32Array(d.buffer)];
          });
        expect(await run(true)).toEqual(await run(false));
      });
    }
  });
}

describe('attention segment bounds and checks', () => {
  /** [start, end) of the run holding each token, from the ids, on the CPU. */
  function boundsRef(seg: Int32Array, B: number, T: number): Uint32Array {
    const out = new Uint32Array(B * T * 2);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        let lo = t;
        while (lo > 0 && seg[b * T + lo - 1] === seg[b * T + t]) lo--;
        let hi = t + 1;
        while (hi < T && seg[b * T + hi] === seg[b * T + t]) hi++;
        out[2 * (b * T + t)] = lo;
        out[2 * (b * T + t) + 1] = hi;
      }
    return out;
  }

  // T = 1, T below the workgroup (empty chunks), T = 600 (3 tokens per thread, runs across chunks); an id that
  // repeats after another (a separate run) and ids equal across rows (rows stay apart).
  for (const [B, T, maxLen] of [
    [2, 1, 1],
    [3, 37, 5],
    [2, 600, 40],
    [1, 600, 1],
  ] as [number, number, number][]) {
    it(`segmentBounds B=${B} T=${T}: each token's run, exactly`, async () => {
      const seg = randomSegments(B, T, T + B, maxLen, T > 1);
      if (T > 4) seg[3] = seg[0]!; // an id again after others
      const got = await tidyAsync(async () => segmentBounds(gpu, tensor(gpu, seg, [B, T], 'i32').buffer, B, T).read());
      expect(Array.from(got)).toEqual(Array.from(boundsRef(seg, B, T)));
    });
  }

  it('checkSegments accepts contiguous runs and names the row and position of an id that starts again', () => {
    expect(() => checkSegments(handLayout, 2, 37)).not.toThrow();
    expect(() => checkSegments(Int32Array.from([0, 0, 1, 1, 7, 7, 0, 0, -1, -1]), 2, 5)).not.toThrow();
    expect(() => checkSegments([0, 1, 1, 0, 2, 0], 2, 3)).toThrow(/row 1 position 2: segment 0 starts again/);
    expect(() => checkSegments([0, 1, -1, 1], 1, 4)).toThrow(/row 0 position 3: segment 1 starts again/);
    expect(() => checkSegments([0, 0, 0], 2, 2)).toThrow(/3 ids for B·T = 2·2 tokens/);
  });

  it('rejects segments that are not i32 or not B·T long, naming them', async () => {
    await tidyAsync(async () => {
      const X = tensor(gpu, new Float32Array(2 * 3 * 12), [2, 3, 12]);
      const bad = tensor(gpu, new Float32Array(6), [2, 3]);
      const short = tensor(gpu, new Int32Array(5), [5], 'i32');
      expect(() => attention(X, { NH: 2, segments: bad })).toThrow(/attention: .*\[2x3\].* must be i32/);
      expect(() => attention(X, { NH: 2, segments: short })).toThrow(/B·T = 2·3 = 6 elements/);
      expect(() => attentionNaive(X, { NH: 2, segments: short })).toThrow(/attention_naive: .*B·T/);
    });
  });
});

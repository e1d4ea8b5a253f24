import { EPS32, checkOp, randomF32, relErr, rng, testGpu } from '@wgpt/runtime/testing';
import { backward, checkSpec, empty, tensor, tidyAsync, zeros, type Gpu } from '@wgpt/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPositions, encoder, encoderAt } from '../index.ts';
import { bucketCountSpec, bucketScanSpec, bucketSortSpec, encoderSpecs } from './encoder.ts';
import { encoderRef } from './encoder.ref.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

function tokensFor(N: number, V: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: N }, () => Math.floor(r() * V));
}

// Forward: one f32 addition of f32 inputs, ≤ ε relative per element. dwpe sums B terms, dwte sums as many terms as
// a token occurs (≤ N = B·T): a running f32 sum of k random-sign terms is off by ≲ sqrt(k)·ε relative (4× margin).
const tolGrad = (k: number) => 4 * (Math.sqrt(k) + 1) * EPS32;

async function check(B: number, T: number, C: number, V: number, maxT: number, tokens: Int32Array, seed: number) {
  const wte = randomF32(V * C, seed);
  const wpe = randomF32(maxT * C, seed + 1);
  return checkOp(
    gpu,
    (tt, a, b) => encoder(tt!, a!, b!),
    [{ data: tokens, shape: [B, T], dtype: 'i32' }, { data: wte, shape: [V, C] }, { data: wpe, shape: [maxT, C] }],
    ([tt, a, b]) => encoderRef(tt!, a!, b!, B, T, C, V),
    seed,
  );
}

describe('encoder', () => {
  for (const s of encoderSpecs) it(`${s.name} matches its WGSL`, () => expect(checkSpec(s)).toEqual([]));

  // (B, T, C, V, maxT): odd sizes, T < maxT (unused positions get gradient 0), V larger and smaller than N.
  for (const [B, T, C, V, maxT] of [
    [1, 1, 1, 1, 1],
    [2, 3, 5, 7, 4],
    [3, 17, 17, 65, 20],
    [1, 65, 3, 3, 65],
    [4, 5, 65, 70, 9],
    [3, 100, 3, 1000, 101],
  ] as [number, number, number, number, number][]) {
    it(`B=${B} T=${T} C=${C} V=${V} maxT=${maxT}: forward vs f64, dwte/dwpe vs finite differences`, async () => {
      const r = await check(B, T, C, V, maxT, tokensFor(B * T, V, B * T + V), V + C);
      expect(r.forward).toBeLessThanOrEqual(EPS32);
      for (const i of [1, 2]) {
        expect(r.gradWrite[i]).toBeLessThanOrEqual(tolGrad(B * T));
        expect(r.gradAccumulate[i]).toBeLessThanOrEqual(tolGrad(B * T));
      }
    });
  }

  it('one token repeated at every position (a bucket of N), and a few others', async () => {
    const [B, T, C, V] = [4, 50, 9, 11];
    const tokens = new Int32Array(B * T).fill(7);
    tokens[3] = 0;
    tokens[100] = 10;
    tokens[199] = 0;
    const r = await check(B, T, C, V, T, tokens, 3);
    expect(r.forward).toBeLessThanOrEqual(EPS32);
    expect(r.gradWrite[1]).toBeLessThanOrEqual(tolGrad(B * T));
    expect(r.gradAccumulate[1]).toBeLessThanOrEqual(tolGrad(B * T));
    expect(r.gradWrite[2]).toBeLessThanOrEqual(tolGrad(B));
  });

  it('backward gives the same bits on every run', async () => {
    const [B, T, C, V] = [8, 33, 13, 5]; // few tokens, long buckets: any change of summation order would show
    const tokens = tokensFor(B * T, V, 1);
    const wte = randomF32(V * C, 2);
    const wpe = randomF32(T * C, 3);
    const g = randomF32(B * T * C, 4, -1000, 1000);
    const run = () =>
      tidyAsync(async () => {
        const a = tensor(gpu, wte, [V, C], 'f32', { requiresGrad: true });
        const p = tensor(gpu, wpe, [T, C], 'f32', { requiresGrad: true });
        backward(encoder(tensor(gpu, tokens, [B, T], 'i32'), a, p), tensor(gpu, g, [B, T, C]));
        return [await a.grad!.read(), await p.grad!.read()].map((x) => Array.from(new Uint32Array(x.buffer)));
      });
    const first = await run();
    for (let i = 0; i < 3; i++) expect(await run()).toEqual(first);
  });

  it('the bucket sort orders every bucket by position whatever order the scatter left', async () => {
    // SwiftShader may run the scatter's atomics in order, so feed the sort a deliberately reversed bucket layout.
    const [N, V] = [40, 300]; // V > 256: several counts per scan thread
    const tokens = tokensFor(N, 6, 8).map((t) => t * 50 + 3);
    tokens[5] = -1; // skipped
    tokens[17] = V; // skipped
    const { sorted, offsets } = await tidyAsync(async () => {
      const tok = tensor(gpu, tokens, [N], 'i32');
      const counts = zeros(gpu, [V], 'u32');
      const offsets = empty(gpu, [V + 1], 'u32');
      const sorted = empty(gpu, [N], 'u32');
      const ctx = 'test';
      gpu.dispatch(bucketCountSpec, {
        buffers: { tokens: tok.buffer, counts: counts.buffer },
        uniforms: { N, V },
        workgroups: [1],
        context: ctx,
      });
      gpu.dispatch(bucketScanSpec, {
        buffers: { counts: counts.buffer, offsets: offsets.buffer },
        uniforms: { V },
        workgroups: [1],
        context: ctx,
      });
      const off = await offsets.read();
      // Each bucket's positions in decreasing order: the worst case for the sort.
      const unsorted = new Uint32Array(N);
      const fill = Uint32Array.from(off);
      for (let n = N - 1; n >= 0; n--) if (tokens[n]! >= 0 && tokens[n]! < V) unsorted[fill[tokens[n]!]!++] = n;
      const un = tensor(gpu, unsorted, [N], 'u32');
      gpu.dispatch(bucketSortSpec, {
        buffers: { tokens: tok.buffer, offsets: offsets.buffer, unsorted: un.buffer, sorted: sorted.buffer },
        uniforms: { N, V },
        workgroups: [1],
        context: ctx,
      });
      return { sorted: await sorted.read(), offsets: off };
    });
    const valid = [...tokens.keys()].filter((n) => tokens[n]! >= 0 && tokens[n]! < V);
    const want = valid.sort((a, b) => tokens[a]! - tokens[b]! || a - b);
    expect(offsets[V]).toBe(N - 2);
    expect(Array.from(sorted.subarray(0, N - 2))).toEqual(want);
    for (let v = 0; v < V; v++) expect(offsets[v + 1]! - offsets[v]!).toBe(tokens.filter((t) => t === v).length);
  });

  it('an out-of-range token gives a NaN row and never reads out of bounds', async () => {
    await tidyAsync(async () => {
      const [V, C] = [4, 3];
      const out = await encoder(
        tensor(gpu, [1, 4, -1, 3], [2, 2], 'i32'),
        tensor(gpu, randomF32(V * C, 1), [V, C]),
        tensor(gpu, randomF32(2 * C, 2), [2, C]),
      ).read();
      for (let n = 0; n < 4; n++) {
        for (let c = 0; c < C; c++) expect(Number.isNaN(out[n * C + c]!)).toBe(n === 1 || n === 2);
      }
    });
  });

  it('out-of-range tokens are skipped by backward', async () => {
    const [B, T, C, V] = [2, 3, 4, 5];
    const tokens = Int32Array.from([1, 5, 2, -7, 1, 4]);
    const g = randomF32(B * T * C, 9);
    const grad = await tidyAsync(async () => {
      const a = tensor(gpu, randomF32(V * C, 1), [V, C], 'f32', { requiresGrad: true });
      backward(
        encoder(tensor(gpu, tokens, [B, T], 'i32'), a, tensor(gpu, randomF32(T * C, 2), [T, C])),
        tensor(gpu, g, [B, T, C]),
      );
      return a.grad!.read();
    });
    const want = new Float64Array(V * C);
    tokens.forEach((tok, n) => {
      if (tok >= 0 && tok < V) for (let c = 0; c < C; c++) want[tok * C + c] += g[n * C + c]!;
    });
    expect(Array.from(grad)).toEqual(Array.from(want, Math.fround));
  });

  it('rejects T longer than wpe', async () => {
    await tidyAsync(async () => {
      expect(() =>
        encoder(tensor(gpu, [0, 0, 0], [1, 3], 'i32'), tensor(gpu, [1, 2], [1, 2]), tensor(gpu, [1, 2, 3, 4], [2, 2])),
      ).toThrow(/T=3/);
    });
  });
  // encoderAt (inference, positions from posOffset): one f32 addition per element, ≤ ε relative, as the forward.
  for (const [B, T, C, V, maxT, pos] of [
    [1, 1, 3, 5, 4, 3],
    [2, 5, 17, 65, 20, 9],
    [3, 65, 8, 7, 130, 64],
  ] as [number, number, number, number, number, number][]) {
    it(`encoderAt B=${B} T=${T} C=${C} V=${V} maxT=${maxT} posOffset=${pos} vs f64`, async () => {
      const tokens = tokensFor(B * T, V, T + pos);
      const wte = randomF32(V * C, 5);
      const wpe = randomF32(maxT * C, 6);
      const out = await tidyAsync(async () =>
        encoderAt(
          tensor(gpu, tokens, [B, T], 'i32'),
          tensor(gpu, wte, [V, C]),
          tensor(gpu, wpe, [maxT, C]),
          pos,
        ).read(),
      );
      expect(relErr(out, encoderRef(tokens, wte, wpe, B, T, C, V, pos))).toBeLessThanOrEqual(EPS32);
    });
  }

  it('encoderAt rejects positions past wpe', async () => {
    await tidyAsync(async () => {
      expect(() =>
        encoderAt(
          tensor(gpu, [0, 0], [1, 2], 'i32'),
          tensor(gpu, [1, 2], [1, 2]),
          tensor(gpu, [1, 2, 3, 4, 5, 6], [3, 2]),
          2,
        ),
      ).toThrow(/positions \[2, 4\)/);
    });
  });

  // Per-token positions (packed rows): runs restarting at 0, T above maxT, every token at one position.
  describe('with per-token positions', () => {
    /** Positions of packed rows: runs of 1 to maxLen tokens counting from 0. */
    function packedPositions(N: number, seed: number, maxLen: number): Int32Array {
      const r = rng(seed);
      const out = new Int32Array(N);
      for (let n = 0; n < N;) {
        const len = 1 + Math.floor(r() * maxLen);
        for (let k = 0; k < len && n < N; k++, n++) out[n] = k;
      }
      return out;
    }

    async function checkPositioned(B: number, T: number, C: number, V: number, maxT: number, pos: Int32Array) {
      const tokens = tokensFor(B * T, V, B * T + V);
      return checkOp(
        gpu,
        (tt, a, b, p) => encoder(tt!, a!, b!, { positions: p }),
        [
          { data: tokens, shape: [B, T], dtype: 'i32' },
          { data: randomF32(V * C, C), shape: [V, C] },
          { data: randomF32(maxT * C, C + 1), shape: [maxT, C] },
          { data: pos, shape: [B * T], dtype: 'i32' },
        ],
        ([tt, a, b, p]) => encoderRef(tt!, a!, b!, B, T, C, V, 0, p),
        V,
      );
    }

    // (B, T, C, V, maxT, longest run): runs shorter than maxT, T > maxT, maxT unused positions.
    for (const [B, T, C, V, maxT, maxLen] of [
      [1, 1, 3, 2, 1, 1],
      [2, 9, 5, 7, 6, 4],
      [3, 17, 17, 65, 20, 20],
      [2, 40, 3, 11, 8, 8],
      [1, 70, 65, 5, 70, 70],
    ] as [number, number, number, number, number, number][]) {
      it(`B=${B} T=${T} C=${C} V=${V} maxT=${maxT}: forward vs f64, dwte/dwpe vs finite differences`, async () => {
        const r = await checkPositioned(B, T, C, V, maxT, packedPositions(B * T, T + maxLen, maxLen));
        expect(r.forward).toBeLessThanOrEqual(EPS32);
        for (const i of [1, 2]) {
          expect(r.gradWrite[i]).toBeLessThanOrEqual(tolGrad(B * T));
          expect(r.gradAccumulate[i]).toBeLessThanOrEqual(tolGrad(B * T));
        }
      });
    }

    it('every token at position 0 (a bucket of N) and one at the last', async () => {
      const [B, T, C, V, maxT] = [4, 50, 9, 11, 7];
      const pos = new Int32Array(B * T);
      pos[77] = maxT - 1;
      const r = await checkPositioned(B, T, C, V, maxT, pos);
      expect(r.forward).toBeLessThanOrEqual(EPS32);
      expect(r.gradWrite[2]).toBeLessThanOrEqual(tolGrad(B * T));
      expect(r.gradAccumulate[2]).toBeLessThanOrEqual(tolGrad(B * T));
    });

    it('backward gives the same bits on every run', async () => {
      const [B, T, C, V, maxT] = [8, 33, 13, 5, 6]; // long buckets: any change of summation order would show
      const tokens = tokensFor(B * T, V, 1);
      const pos = packedPositions(B * T, 2, maxT);
      const g = randomF32(B * T * C, 4, -1000, 1000);
      const run = () =>
        tidyAsync(async () => {
          const a = tensor(gpu, randomF32(V * C, 2), [V, C], 'f32', { requiresGrad: true });
          const p = tensor(gpu, randomF32(maxT * C, 3), [maxT, C], 'f32', { requiresGrad: true });
          const P = tensor(gpu, pos, [B, T], 'i32');
          backward(encoder(tensor(gpu, tokens, [B, T], 'i32'), a, p, { positions: P }), tensor(gpu, g, [B, T, C]));
          return [await a.grad!.read(), await p.grad!.read()].map((x) => Array.from(new Uint32Array(x.buffer)));
        });
      const first = await run();
      for (let i = 0; i < 2; i++) expect(await run()).toEqual(first);
    });

    it('a position outside [0, maxT) gives a NaN row, and the backward skips it', async () => {
      const [B, T, C, V, maxT] = [1, 4, 3, 5, 3];
      const pos = Int32Array.from([0, 3, -1, 2]);
      const g = randomF32(B * T * C, 9);
      const [out, dwpe] = await tidyAsync(async () => {
        const p = tensor(gpu, randomF32(maxT * C, 2), [maxT, C], 'f32', { requiresGrad: true });
        const tok = tensor(gpu, [1, 2, 3, 4], [B, T], 'i32');
        const y = encoder(tok, tensor(gpu, randomF32(V * C, 1), [V, C]), p, {
          positions: tensor(gpu, pos, [4], 'i32'),
        });
        backward(y, tensor(gpu, g, [B, T, C]));
        return [await y.read(), await p.grad!.read()];
      });
      for (let n = 0; n < T; n++)
        for (let c = 0; c < C; c++) expect(Number.isNaN(out[n * C + c]!)).toBe(n === 1 || n === 2);
      const want = new Float32Array(maxT * C); // rows 0 and 2 from tokens 0 and 3; row 1 unused: 0
      for (let c = 0; c < C; c++) [want[c], want[2 * C + c]] = [g[c]!, g[3 * C + c]!];
      expect(Array.from(dwpe)).toEqual(Array.from(want));
    });

    it('checkPositions names the row and token of a position past maxT', () => {
      expect(() => checkPositions(Int32Array.from([0, 1, 2, 0, 1, 0]), 3, 3)).not.toThrow();
      expect(() => checkPositions([0, 1, 2, 0, 3, 0], 3, 3)).toThrow(/row 1 token 1 has position 3, outside \[0, 3\)/);
      expect(() => checkPositions([0, -1], 3)).toThrow(/row 0 token 1 has position -1/);
    });

    it('rejects positions that are not i32 or not B·T long, naming them', async () => {
      await tidyAsync(async () => {
        const tok = tensor(gpu, [0, 0, 0], [1, 3], 'i32');
        const [wte, wpe] = [tensor(gpu, [1, 2], [1, 2]), tensor(gpu, [1, 2, 3, 4], [2, 2])];
        const f32 = tensor(gpu, [0, 1, 0], [1, 3]);
        expect(() => encoder(tok, wte, wpe, { positions: f32 })).toThrow(/encoder: .*\[1x3\].* must be i32/);
        const short = tensor(gpu, [0, 1], [2], 'i32');
        expect(() => encoder(tok, wte, wpe, { positions: short })).toThrow(/B·T = 1·3 = 3 elements/);
        // T = 3 > maxT = 2 is fine with positions below maxT.
        const ok = tensor(gpu, [0, 1, 0], [1, 3], 'i32');
        expect(Array.from(await encoder(tok, wte, wpe, { positions: ok }).read())).toEqual([2, 4, 4, 6, 2, 4]);
      });
    });
  });
});

// Packed rows for supervised fine-tuning: a row of T tokens holding several conversations (segment ids, positions
// restarting at 0 per conversation, padding at the end) gives, for every conversation, the logits it gets alone at
// positions 0.., and the parameter gradients of the summed per-token losses equal the sum of the conversations'
// own. Tiny GPT-2s (L=2, maxT=16) on rows of T=20 > maxT, so only the positions make that possible: head size 8
// (flash v3 on SwiftShader, v2 on hardware) and 6 (v1 on SwiftShader, not a multiple of 4).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backward, tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { relErr, rng, testGpu } from '@wgpt/runtime/testing';
import { checkPositions, checkSegments } from '@wgpt/kernels';
import { GPT2, initParams, makeConfig, type GPT2Config } from '@wgpt/gpt2';

const EPS32 = 2 ** -24;
const CONFIGS = [
  makeConfig({ maxT: 16, V: 61, L: 2, NH: 2, C: 16 }),
  makeConfig({ maxT: 16, V: 61, L: 2, NH: 2, C: 12 }),
];
const T = 20;
// Row 0: conversations of 5, 1, 7 and 3 tokens, then 4 of padding; row 1: 12 and 8, no padding.
const ROWS = [
  [5, 1, 7, 3],
  [12, 8],
];
const PAD = 60;

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

interface Conversation {
  row: number;
  start: number;
  ids: number[];
}

/** The conversations (random ids) and the packed batch: inputs, targets, loss mask, segment ids, positions. */
function pack(config: GPT2Config) {
  const r = rng(5);
  const B = ROWS.length;
  const convs: Conversation[] = [];
  const inputs = new Int32Array(B * T).fill(PAD);
  const targets = new Int32Array(B * T).fill(-1);
  const mask = new Float32Array(B * T);
  const segments = new Int32Array(B * T).fill(-1);
  const positions = new Int32Array(B * T);
  ROWS.forEach((lens, b) => {
    let t = 0;
    lens.forEach((len, s) => {
      const ids = Array.from({ length: len }, () => Math.floor(r() * (config.V - 1)));
      convs.push({ row: b, start: t, ids });
      for (let k = 0; k < len; k++, t++) {
        inputs[b * T + t] = ids[k]!;
        segments[b * T + t] = s;
        positions[b * T + t] = k;
        if (k + 1 < len) [targets[b * T + t], mask[b * T + t]] = [ids[k + 1]!, 1];
      }
    });
    for (let k = 0; t < T; t++, k++) positions[b * T + t] = k; // padding counts on from 0
  });
  checkSegments(segments, B, T);
  checkPositions(positions, config.maxT, T);
  return { B, convs, inputs, targets, mask, segments, positions };
}

/**
 * Both sides run the same kernels on the same token rows; what differs is each kernel's summation order (attention's
 * blocks start elsewhere in a packed row; the weight gradients sum over all B·T rows at once instead of per
 * conversation). So they may differ as two independent f32 computations do, bounded as tests/gpt2-reference.test.ts
 * bounds wgpt against PyTorch: per op its kernel test's estimate without margin (matmul over K √K·ε, LayerNorm
 * (√C + 8)·ε and its parameters (√N + √C + 8)·ε, attention (√HS + 2√T + T/16 + 4)·ε and twice that backward,
 * GELU 16ε, the classifier (⌈V/256⌉ + 36)·ε, sums over the N = B·T rows √N·ε), added in quadrature over the ops a
 * logit or a gradient passes through, margin 4, and √2 for the two sides.
 */
function tolerances(config: GPT2Config, B: number) {
  const { L, C, NH, V, Vp } = config;
  const N = B * T;
  const mm = (K: number) => Math.sqrt(K);
  const ln = Math.sqrt(C) + 8;
  const lnParams = Math.sqrt(N) + Math.sqrt(C) + 8;
  const att = Math.sqrt(C / NH) + 2 * Math.sqrt(T) + T / 16 + 4;
  const layerForward = [ln, mm(C), att, mm(C), 1, ln, mm(C), 16, mm(4 * C), 1];
  const layerBackward = [
    ...[1, mm(C), mm(N), 16, mm(4 * C), mm(N), 2 * ln, lnParams], // residual, fcproj, GELU, fc, ln2
    ...[mm(C), mm(N), 2 * att, mm(3 * C), mm(N), 2 * ln, lnParams, 1], // attproj, attention, qkv, ln1, residual
  ];
  const layers = (xs: number[]) => Array.from({ length: L }, () => xs).flat();
  const forward = [...layers(layerForward), ln, mm(C)];
  const backward = [Math.ceil(V / 256) + 36, mm(Vp), mm(N), 2 * ln, lnParams, ...layers(layerBackward), mm(N)];
  const quad = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0));
  const scale = 4 * Math.SQRT2 * EPS32;
  return { logits: scale * quad(forward), grads: scale * quad([...forward, ...backward]) };
}

for (const config of CONFIGS)
  describe(`GPT-2 on packed rows, HS=${config.C / config.NH}`, () => {
    let model: GPT2;
    beforeAll(() => {
      model = new GPT2(gpu, config, initParams(config, 11));
    });
    afterAll(() => model.dispose());

    it('every conversation gets its own logits and the gradients sum over the conversations', async () => {
      const { B, convs, inputs, targets, mask, segments, positions } = pack(config);
      const { V, Vp } = config;
      const params = model.parameters();
      const readGrads = async () => Promise.all(params.map(async (p) => (await p.grad!.read()) as Float32Array));

      // Packed: logits, then backward of Σ (masked) per-token losses.
      model.pack.zeroGrads();
      const packed = await tidyAsync(async () => {
        const { logits, losses } = model.forward(
          tensor(gpu, inputs, [B, T], 'i32'),
          tensor(gpu, targets, [B, T], 'i32'),
          {
            mask: tensor(gpu, mask, [B * T]),
            segments: tensor(gpu, segments, [B, T], 'i32'),
            positions: tensor(gpu, positions, [B * T], 'i32'),
          },
        );
        const lg = (await logits.read()) as Float32Array;
        backward(losses!, tensor(gpu, new Float32Array(B * T).fill(1), [B * T]));
        return lg;
      });
      const packedGrads = await readGrads();

      // Each conversation alone (positions 0..len-1 by default), gradients accumulating over them.
      model.pack.zeroGrads();
      const tol = tolerances(config, B);
      const logitErrs: number[] = [];
      for (const c of convs) {
        const n = c.ids.length;
        const alone = await tidyAsync(async () => {
          const tgt = Int32Array.from(c.ids, (_, k) => (k + 1 < n ? c.ids[k + 1]! : -1));
          const m = Float32Array.from(c.ids, (_, k) => (k + 1 < n ? 1 : 0));
          const { logits, losses } = model.forward(tensor(gpu, c.ids, [1, n], 'i32'), tensor(gpu, tgt, [1, n], 'i32'), {
            mask: tensor(gpu, m, [n]),
          });
          const lg = (await logits.read()) as Float32Array;
          backward(losses!, tensor(gpu, new Float32Array(n).fill(1), [n]));
          return lg;
        });
        // Real vocabulary columns of the conversation's rows, in both.
        const rowsOf = (lg: Float32Array, first: number) =>
          Float32Array.from({ length: n * V }, (_, i) => lg[(first + Math.floor(i / V)) * Vp + (i % V)]!);
        logitErrs.push(relErr(rowsOf(packed, c.row * T + c.start), rowsOf(alone, 0)));
      }
      const aloneGrads = await readGrads();
      for (const e of logitErrs) expect(e).toBeLessThanOrEqual(tol.logits);
      params.forEach((p, i) => {
        expect(relErr(packedGrads[i]!, aloneGrads[i]!), p.name).toBeLessThanOrEqual(tol.grads);
      });
    });

    it('padding and single-token conversations give finite logits; masked rows a loss of exactly 0', async () => {
      const { B, inputs, targets, mask, segments, positions } = pack(config);
      const losses = await tidyAsync(async () => {
        const r = model.forward(tensor(gpu, inputs, [B, T], 'i32'), tensor(gpu, targets, [B, T], 'i32'), {
          mask: tensor(gpu, mask, [B * T]),
          segments: tensor(gpu, segments, [B, T], 'i32'),
          positions: tensor(gpu, positions, [B, T], 'i32'),
        });
        const lg = (await r.logits.read()) as Float32Array;
        expect(lg.every(Number.isFinite)).toBe(true);
        return (await r.losses!.read()) as Float32Array;
      });
      for (let i = 0; i < B * T; i++) expect(losses[i] === 0).toBe(mask[i] === 0);
    });
  });

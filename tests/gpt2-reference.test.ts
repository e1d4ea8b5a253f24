// GPT-2 on wgpt against the PyTorch reference (llm.c's test_gpt2): the same llm.c model file and batch give the
// same logits, loss and every parameter gradient, and 10 AdamW steps give the same losses, within tolerances derived
// below (tolerances()) from the f32 arithmetic of both sides.
// Measured on SwiftShader (relative L2 unless said): logits 1.3e-7, loss 0 (absolute), gradients 1.2e-7 to 3.0e-7
// (worst qkvw), the 10 training losses ≤ 4.8e-7 absolute; the tolerances are 1.4e-5, 3.3e-5 and 5.9e-5 (losses).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backward, tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { relErr, testGpu } from '@wgpt/runtime/testing';
import { AdamW } from '@wgpt/kernels';
import { GPT2, readLlmcModel, readSafetensors, type NamedTensor } from '@wgpt/gpt2';
import { FIXTURE, referenceState } from '@wgpt/tools/reference/make-fixture';

const DIR = new URL('./fixtures/gpt2-tiny/', import.meta.url).pathname;
const NAMES = [
  'wte',
  'wpe',
  'ln1w',
  'ln1b',
  'qkvw',
  'qkvb',
  'attprojw',
  'attprojb',
  'ln2w',
  'ln2b',
  'fcw',
  'fcb',
  'fcprojw',
  'fcprojb',
  'lnfw',
  'lnfb',
];

const EPS32 = 2 ** -24;

/**
 * Both sides compute in f32 (wgpt on the GPU, the reference with PyTorch on the CPU, in other summation orders), so
 * they may differ by the sum of two independent errors. Each op's relative error is estimated as its kernel test
 * derives it, without that test's margin (kernels/<family>/<family>.test.ts, attention.ref.ts):
 *   matmul over K: √K·ε (random-walk rounding of a dot product)
 *   LayerNorm over C: (√C + 8)·ε, its dx twice that, its dweight/dbias over N rows (√N + √C + 8)·ε
 *   attention: a = (√HS + 2√T + T/16 + 4)·ε, its backward 2a
 *   GELU and its derivative: 16ε (tanh/exp within a few ulps, ~6 roundings); add: ε
 *   fused classifier over V: (⌈V/256⌉ + 16 + 16 + 4)·ε, loss and dlogits alike.
 * Errors of different ops are independent and add in quadrature, as the roundings within a dot product do; the
 * network carries a relative perturbation of an op's output to the logits at about the same size (LayerNorm
 * renormalises; the init weights are well conditioned). The logits see the forward ops; a gradient sees all of
 * them, and the deepest (layer 0, wte, wpe) every backward op too. One margin of 4 (as the kernel tests use) and
 * √2 for the two sides. A loss is lse − logit: it moves by the classifier's error times the loss, plus twice a
 * logit's error (the logits' relative bound times their largest magnitude). AdamW steps of lr = 1e-3 move each
 * parameter by ≈ lr, so gradient errors of ~1e-5 shift the parameters by ~1e-8 over 10 steps: the training
 * losses get the first loss's tolerance.
 */
function tolerances(c: { L: number; C: number; NH: number; Vp: number; V: number }, B: number, T: number) {
  const { L, C, NH, Vp, V } = c;
  const N = B * T;
  const mm = (K: number) => Math.sqrt(K);
  const ln = Math.sqrt(C) + 8;
  const lnParams = Math.sqrt(N) + Math.sqrt(C) + 8;
  const att = Math.sqrt(C / NH) + 2 * Math.sqrt(T) + T / 16 + 4;
  const gelu = 16;
  const classifier = Math.ceil(V / 256) + 36;
  const layerForward = [ln, mm(C), att, mm(C), 1, ln, mm(C), gelu, mm(4 * C), 1];
  // Per linear: dx over its output width, dW over the N rows; LayerNorm: dx and its parameters.
  const layerBackward = [
    ...[1, mm(C), mm(N), gelu, mm(4 * C), mm(N), 2 * ln, lnParams], // residual, fcproj, GELU, fc, ln2
    ...[mm(C), mm(N), 2 * att, mm(3 * C), mm(N), 2 * ln, lnParams, 1], // attproj, attention, qkv, ln1, residual
  ];
  const layers = (xs: number[]) => Array.from({ length: L }, () => xs).flat();
  const forward = [...layers(layerForward), ln, mm(C)];
  // classifier, logits (dx over Vp, dwte over N), lnf, the layers, the embeddings' sums over N rows
  const backward = [classifier, mm(Vp), mm(N), 2 * ln, lnParams, ...layers(layerBackward), mm(N)];
  const quad = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0));
  const scale = 4 * Math.SQRT2 * EPS32;
  return {
    logits: scale * quad(forward),
    grads: scale * quad([...forward, ...backward]),
    loss: (loss: number, maxLogit: number) => scale * (classifier * loss + 2 * quad(forward) * maxLogit),
  };
}

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

function batch() {
  const { B, T, tokens } = FIXTURE;
  const inp: number[] = [];
  const tgt: number[] = [];
  for (let b = 0; b < B; b++) {
    const row = tokens.slice(b * (T + 1), (b + 1) * (T + 1));
    inp.push(...row.slice(0, T));
    tgt.push(...row.slice(1));
  }
  return { inp, tgt };
}

describe('GPT-2 vs PyTorch (tiny config from tests/fixtures/gpt2-tiny)', () => {
  const { config, params } = readLlmcModel(join(DIR, 'model.bin'));
  const state = readSafetensors(join(DIR, 'state.safetensors')).tensors;
  const ref = (n: string): NamedTensor => state.get(n)!;
  const { B, T } = FIXTURE;
  const { V, Vp, C } = config;
  const tol = tolerances(config, B, T);
  const maxLogit = Math.max(...Array.from(ref('logits').data, Math.abs));
  const lossTol = tol.loss(ref('loss').data[0]!, maxLogit);

  it('the fixture holds the batch it says', () => {
    const { inp, tgt } = batch();
    expect(Array.from(ref('tokens').data)).toEqual(inp);
    expect(Array.from(ref('targets').data)).toEqual(tgt);
    expect(JSON.parse(readFileSync(join(DIR, 'tokens.json'), 'utf8'))).toEqual(FIXTURE.tokens);
  });

  it('logits, loss and every gradient match', async () => {
    const model = new GPT2(gpu, config, params);
    await tidyAsync(async () => {
      const { inp, tgt } = batch();
      for (const p of model.parameters()) p.zeroGrad();
      const { logits, loss } = model.forward(tensor(gpu, inp, [B, T], 'i32'), tensor(gpu, tgt, [B, T], 'i32'));
      backward(loss!);
      const lg = await logits.read();
      const unpadded = new Float32Array(B * T * V);
      for (let r = 0; r < B * T; r++) unpadded.set(lg.subarray(r * Vp, r * Vp + V), r * V);
      const lossErr = Math.abs((await loss!.item()) - ref('loss').data[0]!);
      if (process.env.WGPT_SHOW)
        console.log('logits', relErr(unpadded, ref('logits').data), 'loss', lossErr, tol, lossTol);
      expect(relErr(unpadded, ref('logits').data)).toBeLessThanOrEqual(tol.logits);
      expect(lossErr).toBeLessThanOrEqual(lossTol);

      const flatGrad = new Map<string, Float32Array>();
      const ps = model.parameters();
      for (const name of NAMES) {
        const parts = ps.filter((p) => p.name === name || p.name!.startsWith(`${name}[`));
        const arrays = await Promise.all(parts.map(async (p) => p.grad!.read()));
        const all = new Float32Array(arrays.reduce((a, x) => a + x.length, 0));
        let off = 0;
        for (const a of arrays) {
          all.set(a, off);
          off += a.length;
        }
        flatGrad.set(name, all);
      }
      for (const name of NAMES) {
        const got = flatGrad.get(name)!;
        const want = ref(`grad.${name}`).data;
        expect(got.length, name).toBe(want.length);
        if (name === 'wte') {
          // Padded vocabulary rows are never predicted nor embedded: exactly zero gradient.
          expect(got.subarray(V * C).every((v) => v === 0), 'padded wte rows').toBe(true);
        }
        if (process.env.WGPT_SHOW) console.log(name, relErr(got, want));
        expect(relErr(got, want), `grad.${name}`).toBeLessThanOrEqual(tol.grads);
      }
    });
    model.dispose();
  });

  it(`${FIXTURE.steps} AdamW steps give the same losses`, async () => {
    const model = new GPT2(gpu, config, params);
    const opt = new AdamW(
      gpu,
      model.parameters(),
      { lr: FIXTURE.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxNorm: 1 },
      model.decayFlags(),
    );
    const { inp, tgt } = batch();
    const x = tensor(gpu, inp, [B, T], 'i32', { track: false });
    const y = tensor(gpu, tgt, [B, T], 'i32', { track: false });
    const losses: number[] = [];
    for (let s = 0; s < FIXTURE.steps; s++) {
      losses.push(
        await tidyAsync(async () => {
          opt.zeroGrad();
          const { loss } = model.forward(x, y);
          backward(loss!);
          opt.update();
          return loss!.item();
        }),
      );
    }
    const want = Array.from(ref("losses").data);
    if (process.env.WGPT_SHOW) console.log("losses", losses.map((l, i) => (l - want[i]!).toExponential(1)).join(" "));
    for (let i = 0; i < want.length; i++) {
      expect(Math.abs(losses[i]! - want[i]!), `step ${i}: ${losses[i]} vs ${want[i]}`).toBeLessThanOrEqual(lossTol);
    }
    expect(losses.at(-1)!).toBeLessThan(losses[0]!);
    opt.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  });

  // CI must regenerate (scripts/bootstrap.sh installs Debian's python3-torch); WGPT_SKIP_TORCH=1 opts out locally.
  it.skipIf(!!process.env.WGPT_SKIP_TORCH)(
    'the committed fixture is what PyTorch computes today (regenerated and compared)',
    () => {
      const out = join(mkdtempSync(join(tmpdir(), 'wgpt-ref-')), 'state.safetensors');
      try {
        referenceState(join(DIR, 'model.bin'), out);
      } catch (e) {
        throw new Error(
          "regenerating the reference needs Debian's python3-torch (apt-get install python3-torch): " +
            (e as Error).message,
        );
      }
      const fresh = readSafetensors(out).tensors;
      for (const [name, t] of state) {
        const f = fresh.get(name);
        expect(f, name).toBeDefined();
        expect(f!.shape).toEqual(t.shape);
        expect(relErr(f!.data, t.data), name).toBeLessThanOrEqual(1e-6);
      }
    },
  );
});

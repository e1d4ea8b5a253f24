// New embedding rows: the mean of the existing rows plus small seeded noise; a GPT-2 model grown for a chat format
// in place when Vp suffices, and with wte widened and every other parameter kept when it does not.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeConfig, paramCount, paramOffsets } from '@wgpt/gpt2';
import { saveTokenizer, trainBpe } from '@wgpt/tokenizer';
import { initNewEmbeddingRows, NEW_ROW_NOISE, prepareModelForChat, resolveChatFormat, Rng } from '../src/index.ts';

function randomParams(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal() * 0.5 + 0.1);
}

/** Per-channel mean and standard deviation of rows 0..V-1, in f64, written here independently. */
function meanStd(wte: Float32Array, C: number, V: number): { mean: number[]; std: number[] } {
  const mean = Array.from({ length: C }, (_, c) => {
    let s = 0;
    for (let v = 0; v < V; v++) s += wte[v * C + c];
    return s / V;
  });
  const std = mean.map((m, c) => {
    let s = 0;
    for (let v = 0; v < V; v++) s += (wte[v * C + c] - m) ** 2;
    return Math.sqrt(s / V);
  });
  return { mean, std };
}

describe('new embedding rows', () => {
  it('are the mean of the old rows plus noise of variance 1e-5 times theirs; other rows untouched; seeded', () => {
    const C = 48;
    const V = 500;
    const wte = randomParams(520 * C, 1);
    const before = wte.slice();
    const ids = [500, 505, 519];
    initNewEmbeddingRows(wte, C, V, ids, 3);
    const { mean, std } = meanStd(before, C, V);
    // Standardised noise: 3·48 draws of N(0, 1), so their mean square is 1 within a few times sqrt(2/144) = 0.12.
    let sq = 0;
    for (const id of ids) {
      for (let c = 0; c < C; c++) sq += ((wte[id * C + c] - mean[c]) / (Math.sqrt(NEW_ROW_NOISE) * std[c])) ** 2;
    }
    expect(sq / (ids.length * C)).toBeGreaterThan(0.6);
    expect(sq / (ids.length * C)).toBeLessThan(1.4);
    for (let i = 0; i < wte.length; i++) if (!ids.includes(Math.floor(i / C))) expect(wte[i]).toBe(before[i]);
    expect(wte.subarray(500 * C, 501 * C)).not.toEqual(wte.subarray(505 * C, 506 * C));
    const again = before.slice();
    initNewEmbeddingRows(again, C, V, ids, 3);
    expect(again).toEqual(wte);
    expect(() => initNewEmbeddingRows(wte, C, V, [499], 3)).toThrow(/token id 499 is not a new row: .* 500\.\.519/);
  });

  it('GPT-2 with r50k_base: V 50257 → 50260 inside Vp 50304, in place; rows 50257-50259 initialised', () => {
    const config = makeConfig({ V: 50257, L: 1, NH: 1, C: 4, maxT: 4 });
    const params = randomParams(paramCount(config), 2);
    const wteEnd = config.Vp * config.C;
    params.fill(0, config.V * config.C, wteEnd); // a checkpoint's padded rows are zero
    const before = params.slice();
    const cf = resolveChatFormat('r50k_base');
    const r = prepareModelForChat({ config, params }, cf, 1);
    expect(r.initialised).toEqual([50257, 50258, 50259]);
    expect(r.model.config).toEqual({ ...config, V: 50260 });
    expect(r.model.params).toBe(params);
    const { mean } = meanStd(before, config.C, config.V);
    for (const id of r.initialised) {
      const row = [...params.subarray(id * 4, id * 4 + 4)];
      row.forEach((x, c) => expect(Math.abs(x - mean[c])).toBeLessThan(0.01));
    }
    expect(params.subarray(50260 * 4, wteEnd).every((x) => x === 0)).toBe(true);
    expect(params.subarray(0, 50257 * 4)).toEqual(before.subarray(0, 50257 * 4));
    expect(params.subarray(wteEnd)).toEqual(before.subarray(wteEnd));
    // Prepared once, it needs nothing more.
    expect(prepareModelForChat(r.model, cf, 1).initialised).toEqual([]);
  });

  it('a vocabulary that fills its Vp: wte grows to the next multiple of 64, every other parameter kept', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'wgpt-chat-embed-')), 'tok');
    const rng = new Rng(6);
    const word = () => Array.from({ length: rng.int(2, 7) }, () => rng.pick([...'etaoinshrdlu'])).join('');
    const text = Array.from({ length: 5000 }, word).join(' ');
    saveTokenizer(out, trainBpe(text, { vocabSize: 320, pattern: 'gpt2', specialTokens: ['<|endoftext|>'] }));
    const cf = resolveChatFormat(out);
    const config = makeConfig({ V: 320, L: 2, NH: 2, C: 8, maxT: 16 });
    expect([config.Vp, cf.vocabSize]).toEqual([320, 323]);
    const params = randomParams(paramCount(config), 4);
    const r = prepareModelForChat({ config, params }, cf, 2);
    expect(r.model.config).toEqual({ ...config, V: 323, Vp: 384 });
    expect(r.initialised).toEqual([320, 321, 322]);
    const oldOff = paramOffsets(config);
    const newOff = paramOffsets(r.model.config);
    for (const [name, o] of Object.entries(oldOff)) {
      const n = newOff[name];
      const kept = name === 'wte' ? 320 * 8 : o.size;
      expect(r.model.params.subarray(n.offset, n.offset + kept), name).toEqual(
        params.subarray(o.offset, o.offset + kept),
      );
    }
    const wte = r.model.params.subarray(0, 384 * 8);
    expect(wte.subarray(323 * 8).every((x) => x === 0)).toBe(true);
    expect(wte.subarray(320 * 8, 323 * 8).every((x) => x !== 0)).toBe(true);
  });
});

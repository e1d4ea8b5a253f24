// Rows for training: a hand-made packing, every conversation's tokens, positions, targets and mask exactly once
// (checked by reading the rows back, not by the packer's own bookkeeping), the wasted share counted off the rows,
// truncation, and determinism.
import { describe, expect, it } from 'vitest';
import {
  newRowBatch,
  packRows,
  planRows,
  type RenderedConversation,
  renderConversation,
  resolveChatFormat,
  Rng,
  type RowBatch,
  writeRows,
} from '../src/index.ts';
import { randomConversation } from './helpers.ts';

const conv = (ids: number[], mask: number[]): RenderedConversation => ({
  ids: Int32Array.from(ids),
  mask: Uint8Array.from(mask),
});
const PAD = 7;

describe('packing', () => {
  it('a hand-made case: best fit, segments, positions, targets and mask', () => {
    const items = [
      conv([10, 11, 12, 13, 14], [0, 0, 1, 1, 1]),
      conv([20, 21, 22], [0, 1, 1]),
      conv([30, 31, 32, 33], [0, 0, 0, 1]),
      conv([40, 41], [0, 1]),
    ];
    const { plan, batch } = packRows(items, { T: 8, mode: 'pack', padId: PAD });
    // 5 opens row 0 (room 3); 3 fills it; 4 opens row 1 (room 4); 2 goes there (room 2 left).
    expect(plan.rows).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect([...batch.inputs]).toEqual([10, 11, 12, 13, 14, 20, 21, 22, 30, 31, 32, 33, 40, 41, PAD, PAD]);
    expect([...batch.targets]).toEqual([11, 12, 13, 14, -1, 21, 22, -1, 31, 32, 33, -1, 41, -1, -1, -1]);
    expect([...batch.mask]).toEqual([0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0]);
    expect([...batch.segments]).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, -1, -1]);
    expect([...batch.positions]).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 0, 1, 0, 1]);
    expect(plan.stats).toEqual({
      mode: 'pack',
      T: 8,
      rows: 2,
      conversations: 4,
      tokens: 14,
      padding: 2,
      wastedShare: 2 / 16,
      lossTokens: 3 + 2 + 1 + 1,
      truncated: 0,
      truncatedTokens: 0,
    });
    const padded = packRows(items, { T: 8, mode: 'pad', padId: PAD });
    expect(padded.plan.rows).toEqual([[0], [1], [2], [3]]);
    expect(padded.plan.stats.padding).toBe(32 - 14);
    expect([...padded.batch.inputs.subarray(8, 16)]).toEqual([20, 21, 22, PAD, PAD, PAD, PAD, PAD]);
    expect([...padded.batch.positions.subarray(8, 16)]).toEqual([0, 1, 2, 0, 1, 2, 3, 4]);
  });

  /** Reads the rows back: each maximal run of one segment id is one conversation, checked against its source. */
  function checkRows(batch: RowBatch, items: RenderedConversation[], T: number, truncated: Set<number>): number {
    const seen = new Map<number, number>();
    let padding = 0;
    for (let b = 0; b < batch.B; b++) {
      let t = 0;
      while (t < T) {
        const at = b * T + t;
        const seg = batch.segments[at];
        let end = t;
        while (end < T && batch.segments[b * T + end] === seg) end++;
        const len = end - t;
        if (seg === -1) {
          padding += len;
          for (let k = 0; k < len; k++) {
            expect([batch.targets[at + k], batch.mask[at + k], batch.inputs[at + k]]).toEqual([-1, 0, PAD]);
          }
          expect(end).toBe(T); // padding only at the end of a row
        } else {
          // Which conversation: the one whose first len tokens these are and that has not been seen yet.
          const ids = [...batch.inputs.subarray(at, at + len)];
          const i = items.findIndex(
            (it, j) =>
              !seen.has(j) &&
              (it.ids.length === len || (truncated.has(j) && len === T)) &&
              ids.every((id, k) => id === it.ids[k]),
          );
          expect(i, `row ${b} at ${t}`).toBeGreaterThanOrEqual(0);
          seen.set(i, b);
          const it = items[i];
          for (let k = 0; k < len; k++) {
            expect(batch.positions[at + k]).toBe(k);
            const last = k === len - 1;
            expect(batch.targets[at + k]).toBe(last ? -1 : it.ids[k + 1]);
            expect(batch.mask[at + k]).toBe(last ? 0 : it.mask[k + 1]);
          }
        }
        t = end;
      }
    }
    expect(seen.size).toBe(items.length);
    return padding;
  }

  it.each(['pack', 'pad'] as const)(
    '%s: every rendered conversation exactly once, padding counted off the rows',
    (mode) => {
      const cf = resolveChatFormat('r50k_base');
      const rng = new Rng(5);
      const items = Array.from({ length: 150 }, () => renderConversation(cf, randomConversation(rng)));
      const T = Math.max(...items.map((r) => r.ids.length)) + 3;
      const { plan, batch } = packRows(items, { T, mode, seed: 3, padId: PAD });
      const padding = checkRows(batch, items, T, new Set());
      const tokens = items.reduce((a, r) => a + r.ids.length, 0);
      expect(plan.stats.tokens).toBe(tokens);
      expect(plan.stats.padding).toBe(padding);
      expect(plan.stats.wastedShare).toBe(padding / (batch.B * T));
      expect(plan.stats.lossTokens).toBe(batch.mask.reduce((a, m) => a + m, 0));
      if (mode === 'pad') expect(plan.stats.rows).toBe(items.length);
      else expect(plan.stats.rows).toBeGreaterThanOrEqual(Math.ceil(tokens / T));
    },
  );

  it('packing wastes less than padding on the same conversations', () => {
    const cf = resolveChatFormat('r50k_base');
    const rng = new Rng(8);
    const items = Array.from({ length: 200 }, () => renderConversation(cf, randomConversation(rng)));
    const T = 512;
    const pack = planRows(items, { T, mode: 'pack', seed: 1 }).stats;
    const pad = planRows(items, { T, mode: 'pad', seed: 1 }).stats;
    expect(pack.wastedShare).toBeLessThan(0.1);
    expect(pad.wastedShare).toBeGreaterThan(0.5);
    expect(pack.lossTokens).toBe(pad.lossTokens);
  });

  it('a conversation longer than T is an error naming it, or with truncate its first T tokens, counted', () => {
    const items = [conv([1, 2, 3], [0, 1, 1]), conv([4, 5, 6, 7, 8, 9], [0, 0, 1, 1, 1, 1])];
    const opts = { T: 4, mode: 'pack' as const, padId: PAD, describe: (i: number) => `data.jsonl:${i + 10}` };
    expect(() => packRows(items, opts)).toThrow(
      /^data\.jsonl:11: 6 tokens do not fit in a row of T=4; raise T, or pass truncate \(--truncate\) to keep/,
    );
    const { plan, batch } = packRows(items, { ...opts, truncate: true });
    expect(plan.stats).toMatchObject({ truncated: 1, truncatedTokens: 2, tokens: 7, lossTokens: 2 + 2 });
    checkRows(batch, items, 4, new Set([1]));
    expect([...batch.targets.subarray(4, 8)]).toEqual([5, 6, 7, -1]);
  });

  it('the same seed gives the same rows, another seed another order; rows past the end are padding', () => {
    const items = Array.from({ length: 40 }, (_, i) => conv(Array(1 + (i % 7)).fill(i), Array(1 + (i % 7)).fill(1)));
    const p1 = planRows(items, { T: 16, mode: 'pack', seed: 9 });
    expect(planRows(items, { T: 16, mode: 'pack', seed: 9 }).rows).toEqual(p1.rows);
    expect(planRows(items, { T: 16, mode: 'pack', seed: 10 }).rows).not.toEqual(p1.rows);
    expect(planRows(items, { T: 16, mode: 'pad' }).rows.flat()).toEqual(items.map((_, i) => i));
    // A batch written row by row equals the whole; a batch that runs past the last row is padded.
    const whole = packRows(items, { T: 16, mode: 'pack', seed: 9, padId: PAD }).batch;
    const n = p1.rows.length;
    const part = newRowBatch(2, 16);
    writeRows(p1, items, n - 1, part, PAD);
    expect([...part.inputs.subarray(0, 16)]).toEqual([...whole.inputs.subarray((n - 1) * 16)]);
    expect([...part.segments.subarray(16)]).toEqual(Array(16).fill(-1));
  });
});

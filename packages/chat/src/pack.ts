// Rows of T tokens for supervised fine-tuning, from rendered conversations.
//
// - pack: several whole conversations per row (best fit: each goes to the open row with the least room that
//   holds it, else a new row), each token tagged with its segment (which conversation of the row) and a position
//   that restarts at 0 per conversation, so attention and position embeddings see each conversation alone. The
//   last token of a conversation predicts nothing (its target is -1, masked): no loss crosses a segment end.
// - pad: one conversation per row, the rest padding.
// Padding has segment -1, input padId, target -1 and mask 0. The order of conversations is shuffled by a seed
// first (the same seed gives the same rows). A conversation longer than T is an error unless `truncate`, which keeps
// its first T tokens and counts it.
//
// planRows decides which conversation goes where (cheap, per epoch); writeRows fills the arrays for some rows
// (per step), so a data set never needs to be materialised whole.
import { WgptError } from '@wgpt/base/errors';
import type { RenderedConversation } from './render.ts';
import { Rng } from './rng.ts';

export type PackMode = 'pack' | 'pad';

export interface PackOptions {
  /** Tokens per row. */
  T: number;
  mode: PackMode;
  /** Shuffles the conversations before placing them; without it they are taken in order. */
  seed?: number;
  /** Keep the first T tokens of a longer conversation (counted) instead of refusing it. */
  truncate?: boolean;
  /** Names conversation i in errors (e.g. `data.jsonl:12`); default `conversation i`. */
  describe?: (i: number) => string;
}

export interface PackStats {
  mode: PackMode;
  T: number;
  rows: number;
  conversations: number;
  /** Conversation tokens placed (after truncation). */
  tokens: number;
  /** Padding tokens: rows·T − tokens. */
  padding: number;
  /** padding / (rows·T): the share of every row's compute that is spent on nothing. */
  wastedShare: number;
  /** Positions whose loss counts. */
  lossTokens: number;
  /** Conversations cut to T tokens (only with truncate), and the tokens cut off them. */
  truncated: number;
  truncatedTokens: number;
}

export interface RowPlan {
  T: number;
  mode: PackMode;
  /** Per row, the conversations (indices into the list planned) it holds, in order. */
  rows: number[][];
  /** Per conversation, the number of its tokens placed (its length, or T when truncated). */
  placed: Int32Array;
  stats: PackStats;
}

/** Per-token arrays of B rows of T, row-major (row b's token t at b·T + t). */
export interface RowBatch {
  B: number;
  T: number;
  inputs: Int32Array;
  /** The next token of the same conversation, or -1 (segment end, padding): no loss there. */
  targets: Int32Array;
  /** 1 where the loss counts: the target is an assistant's content token or its <|im_end|>. */
  mask: Uint8Array;
  /** Which conversation of the row (0, 1, ...); -1 for padding. */
  segments: Int32Array;
  /** Position within the conversation (or within the run of padding), from 0. */
  positions: Int32Array;
}

export function newRowBatch(B: number, T: number): RowBatch {
  const n = B * T;
  return {
    B,
    T,
    inputs: new Int32Array(n),
    targets: new Int32Array(n),
    mask: new Uint8Array(n),
    segments: new Int32Array(n),
    positions: new Int32Array(n),
  };
}

/** Decides the rows for conversations of these lengths (and loss masks, for the counts). */
export function planRows(items: readonly RenderedConversation[], opts: PackOptions): RowPlan {
  const { T, mode } = opts;
  if (!Number.isSafeInteger(T) || T < 2) throw new WgptError(`T=${T}: a row needs at least 2 tokens`);
  const describe = opts.describe ?? ((i: number) => `conversation ${i}`);
  const n = items.length;
  const placed = new Int32Array(n);
  let truncated = 0;
  let truncatedTokens = 0;
  let tokens = 0;
  let lossTokens = 0;
  for (let i = 0; i < n; i++) {
    const len = items[i].ids.length;
    if (len === 0) throw new WgptError(`${describe(i)}: an empty conversation`);
    if (len > T) {
      if (!opts.truncate) {
        throw new WgptError(
          `${describe(i)}: ${len} tokens do not fit in a row of T=${T}; raise T, or pass truncate ` +
            `(--truncate) to keep the first ${T} tokens`,
        );
      }
      truncated++;
      truncatedTokens += len - T;
    }
    placed[i] = Math.min(len, T);
    tokens += placed[i];
    // The loss is on predicting tokens 1..placed-1 from the ones before them.
    const m = items[i].mask;
    for (let k = 1; k < placed[i]; k++) lossTokens += m[k];
  }
  const order = Array.from({ length: n }, (_, i) => i);
  if (opts.seed !== undefined) new Rng(opts.seed).shuffle(order);

  const rows: number[][] = [];
  if (mode === 'pad') {
    for (const i of order) rows.push([i]);
  } else {
    // Open rows by free room: free[r] lists the rows with r tokens of room left.
    const free: number[][] = Array.from({ length: T + 1 }, () => []);
    const room: number[] = [];
    for (const i of order) {
      const len = placed[i];
      let r = len;
      while (r <= T && free[r].length === 0) r++;
      let row: number;
      if (r > T) {
        row = rows.length;
        rows.push([]);
        room.push(T);
      } else {
        row = free[r].pop()!;
      }
      rows[row].push(i);
      room[row] -= len;
      free[room[row]].push(row);
    }
  }
  const padding = rows.length * T - tokens;
  return {
    T,
    mode,
    rows,
    placed,
    stats: {
      mode,
      T,
      rows: rows.length,
      conversations: n,
      tokens,
      padding,
      wastedShare: rows.length === 0 ? 0 : padding / (rows.length * T),
      lossTokens,
      truncated,
      truncatedTokens,
    },
  };
}

/**
 * Writes rows `first .. first+out.B-1` of the plan into `out` (rows past the plan's end become all padding).
 * `padId` is the input id of padding positions (any id the model has; its loss is masked).
 */
export function writeRows(
  plan: RowPlan,
  items: readonly RenderedConversation[],
  first: number,
  out: RowBatch,
  padId: number,
): void {
  const T = plan.T;
  if (out.T !== T) throw new WgptError(`a batch of T=${out.T} for a plan of T=${T}`);
  for (let b = 0; b < out.B; b++) {
    const base = b * T;
    let t = 0;
    const held = plan.rows[first + b] ?? [];
    for (let s = 0; s < held.length; s++) {
      const it = items[held[s]];
      const len = plan.placed[held[s]];
      for (let k = 0; k < len; k++, t++) {
        const at = base + t;
        out.inputs[at] = it.ids[k];
        const last = k === len - 1;
        out.targets[at] = last ? -1 : it.ids[k + 1];
        out.mask[at] = last ? 0 : it.mask[k + 1];
        out.segments[at] = s;
        out.positions[at] = k;
      }
    }
    for (let k = 0; t < T; t++, k++) {
      const at = base + t;
      out.inputs[at] = padId;
      out.targets[at] = -1;
      out.mask[at] = 0;
      out.segments[at] = -1;
      out.positions[at] = k;
    }
  }
}

/** Plans and writes every row at once (for data that fits in memory, and for tests). */
export function packRows(
  items: readonly RenderedConversation[],
  opts: PackOptions & { padId: number },
): { plan: RowPlan; batch: RowBatch } {
  const plan = planRows(items, opts);
  const batch = newRowBatch(plan.rows.length, plan.T);
  writeRows(plan, items, 0, batch, opts.padId);
  return { plan, batch };
}

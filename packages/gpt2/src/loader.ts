// llm.c's data loader over token shards, with per-epoch shuffling: each epoch visits the shards in a shuffled
// order and, within a shard, its B·T windows in a shuffled order (targets are the next tokens, so a window reads
// B·T + 1). The position is a small state object, so a resumed run continues with exactly the next batch.
// ShardLoader is one BatchSource of the trainer; rows of conversations for fine-tuning are another (@wgpt/chat).
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { readShard, readShardHeader, ShardFormatError, shardMaxTokenId } from '@wgpt/data';
import { mulberry32, WgptError } from '@wgpt/runtime';

/**
 * A batch source's position, as checkpoints record it (three counts). For shards: the epoch, the index into the
 * epoch's shard order and into the shard's window order; other sources say what their counts mean.
 */
export interface LoaderState {
  epoch: number;
  /** Index into the epoch's shard order. */
  shard: number;
  /** Index into the shard's window order. */
  window: number;
}

/** One micro-batch: B rows of T positions, row-major (row b's position t at b·T + t). */
export interface Batch {
  inputs: Int32Array;
  /** The token each position predicts; any value where `mask` is 0 (it is not read there). */
  targets: Int32Array;
  /**
   * 1 where the loss counts, 0 where it does not (padding, prompts). Without it every position counts. With it the
   * trainer's loss is the mean over the positions where it is 1, taken over all the micro-batches of a step.
   */
  mask?: Uint8Array;
  /**
   * Packed rows: which sequence of its row each position belongs to (contiguous runs; -1 for padding) and its
   * position within that sequence. Attention then stays within a sequence and position embeddings restart.
   */
  segments?: Int32Array;
  positions?: Int32Array;
}

/** What one part of a run's training data is (a shard: its name, size and a hash), for the resume check. */
export interface DataIdentity {
  name: string;
  tokens: number;
  sample: string;
}

/** Where the trainer's micro-batches come from: a source of B×T batches whose position can be saved and restored. */
export interface BatchSource {
  readonly B: number;
  readonly T: number;
  next(): Batch;
  /** The position: after restore(state), next() returns what it would have returned when state was read. */
  readonly state: LoaderState;
  restore(s: LoaderState): void;
  /** The data, part by part: a resumed run must read the same (RunSettings.data). */
  identity(): DataIdentity[];
}

/** Validation batches: the first `batchesPerEpoch` after reset(), the same every time. */
export interface ValidationSource {
  readonly B: number;
  readonly T: number;
  readonly batchesPerEpoch: number;
  reset(): void;
  next(): Batch;
}

function permutation(n: number, seed: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  const r = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

export class ShardLoader implements BatchSource, ValidationSource {
  private cache: { file: string; tokens: Uint16Array | Uint32Array } | null = null;
  private windowOrder: { key: string; order: number[] } | null = null;
  private readonly windows: number[];
  private st: LoaderState = { epoch: 0, shard: 0, window: 0 };

  /**
   * With shuffle false (validation) the shards and windows are read in order, and reset() starts over. With `vocab`
   * (the model's V) every shard is checked up front to hold only ids below it (from the shard header, cheaply).
   */
  constructor(
    readonly files: string[],
    readonly B: number,
    readonly T: number,
    readonly opts: { shuffle: boolean; seed: number; vocab?: number },
  ) {
    if (!files.length) throw new WgptError('ShardLoader: no shard files');
    this.windows = files.map((f) =>
      asWgptError(() => {
        const h = readShardHeader(f);
        const w = Math.floor((h.tokens - 1) / (B * T));
        if (w < 1) {
          const one = `one batch of B·T + 1 = ${B * T + 1}`;
          throw new WgptError(`${f}: ${h.tokens} tokens is less than ${one}; use a smaller batch (-B, -T)`);
        }
        const V = opts.vocab;
        if (V !== undefined) {
          const max = shardMaxTokenId(f);
          if (max >= V) {
            throw new WgptError(
              `${f}: token id ${max} is outside the model's vocabulary V=${V} (ids 0..${V - 1}); the shards were ` +
                `made with a larger tokenizer than this model's: use the model (or --vocab) of that tokenizer, or ` +
                `re-tokenize the data`,
            );
          }
        }
        return w;
      }),
    );
  }

  get state(): LoaderState {
    return { ...this.st };
  }

  restore(s: LoaderState): void {
    this.st = { ...s };
  }

  reset(): void {
    this.st = { epoch: 0, shard: 0, window: 0 };
  }

  identity(): DataIdentity[] {
    return this.files.map(shardFingerprint);
  }

  /** Batches in one pass over every shard. */
  get batchesPerEpoch(): number {
    return this.windows.reduce((a, b) => a + b, 0);
  }

  private shardOrder(epoch: number): number[] {
    return this.opts.shuffle
      ? permutation(this.files.length, this.opts.seed * 1000003 + epoch)
      : this.files.map((_, i) => i);
  }

  next(): { inputs: Int32Array; targets: Int32Array; epoch: number } {
    let order = this.shardOrder(this.st.epoch);
    let idx = order[this.st.shard]!;
    if (this.st.window >= this.windows[idx]!) {
      this.st.window = 0;
      this.st.shard++;
      if (this.st.shard >= this.files.length) {
        this.st.shard = 0;
        this.st.epoch++;
        order = this.shardOrder(this.st.epoch);
      }
      idx = order[this.st.shard]!;
    }
    const file = this.files[idx]!;
    if (this.cache?.file !== file) this.cache = { file, tokens: asWgptError(() => readShard(file)) };
    const nw = this.windows[idx]!;
    let w = this.st.window;
    if (this.opts.shuffle) {
      const key = `${this.st.epoch}:${idx}`;
      if (this.windowOrder?.key !== key)
        this.windowOrder = { key, order: permutation(nw, this.opts.seed * 7919 + this.st.epoch * 31 + idx) };
      w = this.windowOrder.order[this.st.window]!;
    }
    const n = this.B * this.T;
    const start = w * n;
    const tok = this.cache.tokens;
    const inputs = new Int32Array(n);
    const targets = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      inputs[i] = tok[start + i]!;
      targets[i] = tok[start + i + 1]!;
    }
    const epoch = this.st.epoch;
    this.st.window++;
    return { inputs, targets, epoch };
  }
}

/** A damaged shard is the user's to fix: its format error (which names the file) becomes a one-line WgptError. */
function asWgptError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ShardFormatError) throw new WgptError(e.message);
    throw e;
  }
}

/**
 * A shard's identity for checking that a resumed run reads the same data: its name, token count, and a SHA-256
 * of its first and last 64 KiB (cheap for any size, and catches data re-made under the same names).
 */
export function shardFingerprint(file: string): DataIdentity {
  const tokens = asWgptError(() => readShardHeader(file)).tokens;
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const h = createHash('sha256');
    const piece = 1 << 16;
    const ranges = size > 2 * piece ? [[0, piece], [size - piece, piece]] : [[0, size]];
    for (const [at, len] of ranges) {
      const b = Buffer.alloc(len!);
      for (let got = 0; got < len!; ) {
        const r = readSync(fd, b, got, len! - got, at! + got);
        if (r <= 0) throw new WgptError(`${file}: unexpected end of file at byte ${at! + got}`);
        got += r;
      }
      h.update(b);
    }
    return { name: basename(file), tokens, sample: h.digest('hex').slice(0, 16) };
  } finally {
    closeSync(fd);
  }
}

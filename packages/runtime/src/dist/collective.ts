// Collective operations between the ranks of a data-parallel job: the contract every backend keeps.
// All data is f32. Every rank calls the same operations in the same order with the same lengths (a backend that can
// see a mismatch reports it naming both ranks). Reductions sum in rank order 0, 1, ..., W-1, each element on one
// rank only, so every rank receives the same bits and a rerun gives the same bits again.
import { WgptError } from '@wgpt/base/errors';

export type ReduceOp = 'sum' | 'mean';

export interface Collective {
  readonly rank: number;
  readonly worldSize: number;
  /** In place: every element becomes its sum (or mean) over the ranks; the same bits on every rank. */
  allReduce(data: Float32Array, op?: ReduceOp): Promise<void>;
  /**
   * Reduces `input` (the same length n on every rank) and returns this rank's shard of the result:
   * elements shardRange(n, worldSize, rank).
   */
  reduceScatter(input: Float32Array, op?: ReduceOp): Promise<Float32Array>;
  /** Each rank gives its shard (shardRange(n, worldSize, rank)) of an n-element array; every rank gets all of it. */
  allGather(shard: Float32Array, n: number): Promise<Float32Array>;
  /** In place: `data` on every rank becomes root's `data`. */
  broadcast(data: Float32Array, root?: number): Promise<void>;
  /** Returns once every rank has called it. */
  barrier(): Promise<void>;
  /**
   * Ends the job on every rank: each pending and later operation on every rank throws DistError with `reason`.
   * For a rank that hit an error it cannot recover from, so the others stop at once instead of at a timeout.
   */
  abort(reason: string): void;
  /**
   * Rejects when the job ends by failure (a rank died, hung or aborted), even while this rank runs no operation:
   * race the rank's work against it so a rank busy elsewhere still stops.
   */
  readonly failed: Promise<never>;
  /** Waits for every rank to close, then frees what the backend holds. */
  close(): Promise<void>;
  /**
   * Where a backend sums on this host (the shared-memory one): sum this rank's pieces with `summer` from the next
   * operation on (every rank should give the same kind, e.g. a GPU summer where each rank has its GPU).
   */
  useSummer?(summer: PieceSummer): void;
  /**
   * n floats that the ranks share where the backend can (one node's shared memory), for allReduce without copies
   * in and out: a collective call (every rank, the same n). Backends without it leave it undefined.
   */
  sharedArray?(n: number): Promise<Float32Array>;
  /** How this rank sums its share of a reduction, for logs: 'js', 'blas (libopenblas.so.0)', 'gpu'... */
  readonly summation?: string;
}

/**
 * Sums one rank's piece of a reduction: given the W ranks' slices of it (slice r from rank r, all one length),
 * returns their elementwise f32 sum in rank order, fl(...fl(fl(x0 + x1) + x2)... + x(W-1)), divided by W for
 * 'mean' (the f32 quotient, correctly rounded). The result may be a view of the summer's own memory, valid until its
 * next call; the slices are not kept.
 */
export interface PieceSummer {
  /** For messages and bench rows: 'cpu', 'gpu'. */
  readonly name: string;
  sum(slices: readonly Float32Array[], op: ReduceOp): Float32Array | Promise<Float32Array>;
}

/** A collective failed on some rank (died, hung, disagreed): the message names the rank and the operation. */
export class DistError extends WgptError {
  override name = 'DistError';
}

/**
 * The elements [start, end) of an n-element array that rank r of W owns in reduceScatter and allGather: contiguous
 * shards in rank order whose lengths differ by at most one (the first n mod W ranks get one more).
 */
export function shardRange(n: number, W: number, r: number): { start: number; end: number } {
  const base = Math.floor(n / W);
  const extra = n % W;
  const start = r * base + Math.min(r, extra);
  return { start, end: start + base + (r < extra ? 1 : 0) };
}

/** Rank r's shard of an n-element allGather, checking that `shard` has its length (else a DistError naming both). */
export function ownShard(shard: Float32Array, n: number, W: number, r: number): { start: number; end: number } {
  const own = shardRange(n, W, r);
  if (shard.length !== own.end - own.start) {
    throw new DistError(
      `allGather of ${n} floats: rank ${r} gave ${shard.length} floats, its shard is ` +
        `${own.end - own.start} (elements ${own.start}..${own.end - 1}; see shardRange)`,
    );
  }
  return own;
}

/** Checks a broadcast's root rank against the world size (else a DistError naming both). */
export function checkRoot(root: number, W: number): void {
  if (!Number.isInteger(root) || root < 0 || root >= W) {
    throw new DistError(`broadcast from rank ${root}: there are ranks 0..${W - 1}`);
  }
}

/** Checks an op name from a caller that may not be typed (a CLI flag, JSON). */
export function checkReduceOp(op: string): ReduceOp {
  if (op !== 'sum' && op !== 'mean') throw new DistError(`reduce op "${op}" is not one of sum, mean`);
  return op;
}

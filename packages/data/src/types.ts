/** One document flowing through the pipeline. */
export interface Doc {
  /** Stable id: `<file basename>#<position>` (gzip member, record, line or row), or the id field of JSONL/parquet. */
  id: string;
  text: string;
  url?: string;
  /** Free-form metadata added by stages (language, language_score, content type, ...). */
  meta: Record<string, unknown>;
}

/** A stage's verdict on one document: keep it (possibly rewritten) or drop it with a named reason. */
export type Verdict = { keep: true; doc: Doc } | { keep: false; reason: string };

/** Per-stage counters: documents in, kept, and removed by each rule. */
export interface StageStats {
  name: string;
  in: number;
  kept: number;
  removed: Record<string, number>;
  /** Seconds spent inside this stage (summed over workers). */
  seconds: number;
  /** Bytes of text that entered the stage. */
  bytes: number;
}

export function newStats(name: string): StageStats {
  return { name, in: 0, kept: 0, removed: {}, seconds: 0, bytes: 0 };
}

export function countRemoved(stats: StageStats, reason: string, n = 1): void {
  stats.removed[reason] = (stats.removed[reason] ?? 0) + n;
}

export function mergeStats(into: StageStats, from: StageStats): void {
  into.in += from.in;
  into.kept += from.kept;
  into.seconds += from.seconds;
  into.bytes += from.bytes;
  for (const [k, v] of Object.entries(from.removed)) countRemoved(into, k, v);
}

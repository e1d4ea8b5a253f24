// What a resumed run must share with its checkpoint, and the messages naming what changed.
import { type BatchSource, type DataIdentity, shardFingerprint } from './loader.ts';

/** The numeric settings a resumed run must keep (TrainOptions extends them). */
export interface SettingNumbers {
  /** Rows per micro-batch (per rank). */
  B: number;
  T: number;
  /** Tokens per optimizer step; a multiple of B·T (the rest is gradient accumulation). */
  totalBatchTokens: number;
  steps: number;
  lr: number;
  warmupSteps: number;
  /** The cosine schedule ends at lr · finalLrFrac. */
  finalLrFrac: number;
  weightDecay: number;
  maxNorm: number;
  seed: number;
}

/**
 * The settings a resumed run must share with its checkpoint to continue exactly (the same numbers as a run that
 * was never stopped): the training data, batch shape, schedule, optimizer and seed. The model's shape is checked
 * from model.bin. Everything else may change on resume: validation and sample frequency and size, checkpoint
 * frequency, output folder, validation data, tokenizer (only used to print samples).
 */
export type RunSettings = { data: DataIdentity[] } & SettingNumbers;

/** The command-line flag of each setting, for messages. */
const SETTING_FLAGS: Record<Exclude<keyof RunSettings, 'data'>, string> = {
  B: '-B',
  T: '-T',
  totalBatchTokens: '--total-batch',
  steps: '--steps',
  lr: '--lr',
  warmupSteps: '--warmup',
  finalLrFrac: '--final-lr-frac',
  weightDecay: '--weight-decay',
  maxNorm: '--grad-clip',
  seed: '--seed',
};

/** The settings of a run; `source` is its training batch source when it is built already (else from the options). */
export function runSettings(
  o: SettingNumbers & { trainSource?: BatchSource; trainFiles?: string[] },
  source?: BatchSource,
): RunSettings {
  return {
    data: (source ?? o.trainSource)?.identity() ?? (o.trainFiles ?? []).map(shardFingerprint),
    B: o.B,
    T: o.T,
    totalBatchTokens: o.totalBatchTokens,
    steps: o.steps,
    lr: o.lr,
    warmupSteps: o.warmupSteps,
    finalLrFrac: o.finalLrFrac,
    weightDecay: o.weightDecay,
    maxNorm: o.maxNorm,
    seed: o.seed,
  };
}

/** What differs between a checkpoint's settings and this run's, one `flag old → new` per change. */
export function settingsChanges(old: Record<string, unknown>, now: RunSettings): string[] {
  const out: string[] = [];
  for (const [k, flag] of Object.entries(SETTING_FLAGS)) {
    const a = old[k];
    const b = now[k as keyof typeof SETTING_FLAGS];
    if (a !== b) out.push(`${flag} ${a === undefined ? '(not recorded)' : JSON.stringify(a)} → ${b}`);
  }
  const was = Array.isArray(old.data) ? (old.data as RunSettings['data']) : [];
  // Shards are named by file (*.bin); other sources name their data themselves.
  const shards = [...was, ...now.data].every((s) => typeof s?.name === 'string' && s.name.endsWith('.bin'));
  const what = shards ? 'training shards' : 'training data';
  const desc = (d: RunSettings['data']) => {
    const tokens = d.reduce((a, s) => a + (Number(s?.tokens) || 0), 0);
    const names = `${d[0]?.name ?? 'none'}${d.length > 1 ? ', …' : ''}`;
    return `${d.length} ${shards ? 'shard' : 'part'}${d.length === 1 ? '' : 's'} of ${tokens} tokens (${names})`;
  };
  if (was.length !== now.data.length || was.some((s, i) => s?.name !== now.data[i]!.name)) {
    out.push(`--data: ${what} ${desc(was)} → ${desc(now.data)}`);
  } else {
    for (let i = 0; i < was.length; i++) {
      const a = was[i]!;
      const b = now.data[i]!;
      if (a.tokens !== b.tokens) out.push(`--data: ${b.name} holds ${a.tokens} → ${b.tokens} tokens`);
      else if (a.sample !== b.sample) out.push(`--data: ${b.name} has the same size but different tokens`);
    }
  }
  return out;
}

// The FineWeb recipe as resumable steps over work units:
//   process (read → URL filter → extraction → language → Gopher repetition → Gopher quality → C4 → FineWeb,
//            + MinHash/exact signatures)  per unit
//   dedup-buckets (per bucket) → dedup-cluster (once) → tokenize (dedup filter → PII → shards) per unit → manifest.
// Every output is written to a temp name and renamed; a step's unit is done when its marker exists, so a re-run
// skips finished units and redoes unfinished ones from scratch (never duplicating or losing a document).
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { UsageError, WgptError } from '@wgpt/base';
import { validateConfig, type PipelineConfig } from './config.ts';
import { readRemoveList, runClusterStep, writeBucketPairs } from './dedup/minhash.ts';
import { OutputLock } from './lock.ts';
import { createExclusive, isDone, makeDirs, markDone, pad, RemovedLog, writeAtomic } from './outputs.ts';
import { PiiFormatter } from './pii.ts';
import { loadOrCreatePlan, STEPS, type Plan, type Step } from './plan.ts';
import { processUnit } from './process-step.ts';
import { collectStats, formatStatsTable } from './report.ts';
import type { ShardInfo } from './shards.ts';
import { ShardSink, type TokenEncoder } from './tokenize.ts';
import { countRemoved, newStats, type Doc, type StageStats } from './types.ts';

export interface RunOptions {
  workers?: number;
  taskIndex?: number;
  taskCount?: number;
  /** Steps to run (default: all of them that this task can run). */
  steps?: Step[];
  /** Needed by the tokenize step. */
  tokenizer?: TokenEncoder;
  /** Progress lines (default: stderr). Pass () => {} to silence. */
  log?: (line: string) => void;
}

async function* readDocs(file: string): AsyncGenerator<Doc> {
  const rl = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of rl) if (line) yield JSON.parse(line) as Doc;
}

/** The tokenize step for one unit: drop dedup removals, PII, shards. */
export async function tokenizeUnit(plan: Plan, out: string, unit: number, enc: TokenEncoder):
  Promise<{ stats: StageStats[]; shards: ShardInfo[] }> {
  const c = plan.config;
  const shardDir = path.join(out, 'shards');
  const prefix = c.tokenize?.prefix ?? 'wgpt';
  // An interrupted earlier attempt may have left complete shards of this unit: remove them before rewriting.
  const mine = [`${prefix}_train_${pad(unit)}_`, `${prefix}_val_${pad(unit)}_`];
  if (fs.existsSync(shardDir)) {
    for (const f of fs.readdirSync(shardDir)) if (mine.some((m) => f.startsWith(m))) fs.rmSync(path.join(shardDir, f));
  }
  const remove = c.dedup === false
    ? new Map<number, string>()
    : readRemoveList(path.join(out, 'dedup', 'remove'), unit);
  const dedupSt = newStats('dedup');
  const piiSt = newStats('pii');
  const tokSt = newStats('tokenize');
  const pii = c.pii === false ? null : new PiiFormatter(c.pii || {});
  const sink = new ShardSink(enc, {
    dir: shardDir, prefix, part: unit, valFraction: c.tokenize?.valFraction, shardTokens: c.tokenize?.shardTokens,
  });
  let i = 0;
  const now = () => performance.now() / 1000;
  const removed = new RemovedLog(path.join(out, 'removed', `dedup.${pad(unit)}.jsonl`));
  try {
    for await (const doc of readDocs(path.join(out, 'filtered', `${pad(unit)}.jsonl`))) {
      const idx = i++;
      dedupSt.in++;
      const why = remove.get(idx);
      if (why) { countRemoved(dedupSt, why); removed.add(doc.id, doc.url, 'dedup', why); continue; }
      dedupSt.kept++;
      if (pii) {
        const t = now();
        piiSt.in++; piiSt.bytes += doc.text.length;
        pii.apply(doc);
        piiSt.kept++;
        piiSt.seconds += now() - t;
      }
      const t = now();
      tokSt.in++; tokSt.bytes += doc.text.length;
      sink.add(doc);
      tokSt.kept++;
      tokSt.seconds += now() - t;
    }
  } catch (e) {
    sink.abort();
    throw e;
  }
  const shards = sink.close();
  removed.finish();
  const stats = [
    ...(c.dedup === false ? [] : [dedupSt]),
    ...(pii ? [{ ...piiSt, replaced: { ...pii.counts } }] : []),
    { ...tokSt, tokens: sink.counts },
  ];
  const statsFile = path.join(out, 'stats', 'tokenize', `${pad(unit)}.json`);
  writeAtomic(statsFile, JSON.stringify({ unit, stats, shards }, null, 1));
  markDone(out, 'tokenize', unit);
  return { stats, shards };
}

export interface SplitTotals { docs: number; tokens: number; shards: number }

export interface Manifest {
  tokenizer: { name: string; nVocab: number; eotToken: number };
  format: { magic: number; version: number; dtype: 'uint16' | 'uint32'; headerBytes: 1024 };
  units: number;
  inputs: string[];
  totals: { train: SplitTotals; val: SplitTotals };
  shards: ShardInfo[];
  stages: StageStats[];
  dedup?: { clusters: number; removed: number; exact: number };
  createdAt: string;
}

/** Why the train split is empty, for the error that ends such a run. */
function emptyTrainReason(plan: Plan, stages: StageStats[], val: SplitTotals): string {
  const read = stages.find((st) => st.name === 'read');
  const files = `${plan.files.length} input file(s)`;
  if (!read || read.in === 0) return `no documents were read from the ${files}`;
  if (val.docs === 0) return `the filters removed all ${read.in} documents read (see the "removed by" column)`;
  return `the ${val.docs} document(s) kept all went to the validation split (a work unit gives validation its ` +
    'first document when none of its documents hashes into it); give more documents (in a text file, separate ' +
    'them with lines holding <|endoftext|>), or set --val-fraction 0';
}

function writeManifest(plan: Plan, out: string, enc: TokenEncoder): Manifest {
  const shards: ShardInfo[] = [];
  for (let u = 0; u < plan.units; u++) {
    const f = path.join(out, 'stats', 'tokenize', `${pad(u)}.json`);
    shards.push(...(JSON.parse(fs.readFileSync(f, 'utf8')) as { shards: ShardInfo[] }).shards);
  }
  const stages = collectStats(out, plan.units);
  const tot = (split: string): SplitTotals => {
    const s = shards.filter((x) => x.split === split);
    return { docs: s.reduce((a, x) => a + x.docs, 0), tokens: s.reduce((a, x) => a + x.tokens, 0), shards: s.length };
  };
  // The stats first: they say where the documents went, also when the run fails below.
  writeAtomic(path.join(out, 'stats.json'), JSON.stringify(stages, null, 2));
  writeAtomic(path.join(out, 'stats.txt'), formatStatsTable(stages) + '\n');
  const totals = { train: tot('train'), val: tot('val') };
  // Nothing can train on an empty train split: no manifest, and an error that says why.
  if (totals.train.tokens === 0) {
    throw new WgptError(`${out}: the train split is empty: ${emptyTrainReason(plan, stages, totals.val)}. ` +
      `The per-stage counts: wgpt data stats ${out}`);
  }
  const clusterFile = path.join(out, 'dedup', 'cluster.json');
  const u16 = enc.nVocab <= 65536;
  const m: Manifest = {
    tokenizer: { name: enc.name, nVocab: enc.nVocab, eotToken: enc.eotToken },
    format: { magic: 20240520, version: u16 ? 1 : 2, dtype: u16 ? 'uint16' : 'uint32', headerBytes: 1024 },
    units: plan.units,
    inputs: plan.files,
    totals,
    shards,
    stages,
    dedup: fs.existsSync(clusterFile) ? JSON.parse(fs.readFileSync(clusterFile, 'utf8')) : undefined,
    createdAt: new Date().toISOString(),
  };
  writeAtomic(path.join(out, 'manifest.json'), JSON.stringify(m, null, 2));
  return m;
}

class Progress {
  private docs = 0;
  private bytes = 0;
  private readonly t0 = performance.now();
  /** Lines every second, the first after one second (a short step prints only its final line). */
  private last = this.t0;
  constructor(readonly step: string, readonly log: (l: string) => void) {}
  tick(bytes: number, n = 1): void {
    this.docs += n;
    this.bytes += bytes;
    const t = performance.now();
    if (t - this.last > 1000) { this.last = t; this.print(); }
  }
  seconds(): number { return (performance.now() - this.t0) / 1000; }
  print(final = false): void {
    const s = (performance.now() - this.t0) / 1000;
    const rate = `${(this.docs / s).toFixed(1)} docs/s, ${(this.bytes / 1e6 / s).toFixed(2)} MB/s`;
    this.log(`[data] ${this.step}: ${this.docs} docs, ${rate}${final ? `, ${s.toFixed(1)} s` : ''}`);
  }
}

export interface RunResult {
  plan: Plan;
  manifest?: Manifest;
  ran: Record<string, number[]>;
  skipped: Record<string, number[]>;
  /** Documents of the process step that ran on worker threads (0 with one worker). */
  threadDocs: number;
}

/** Every output of one tokenizer: tokenizer.json is written by the first task to tokenize and checked by the rest. */
function checkTokenizer(out: string, enc: TokenEncoder): void {
  const tokFile = path.join(out, 'tokenizer.json');
  const desc = JSON.stringify({ name: enc.name, nVocab: enc.nVocab, eotToken: enc.eotToken });
  if (createExclusive(tokFile, desc)) return;
  const prev = fs.readFileSync(tokFile, 'utf8');
  if (prev !== desc) {
    throw new WgptError(`${out} was tokenized with ${prev}; this run has ${desc}. ` +
      'Use the same --tokenizer, or a new --output');
  }
}

/**
 * Runs the pipeline steps this task owns, skipping work whose completion marker exists. Throws a WgptError for a
 * bad configuration, an output that cannot be written, a run of this task already going on there, and an empty
 * train split.
 */
export async function runPipeline(config: PipelineConfig, opts: RunOptions = {}): Promise<RunResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const workers = opts.workers ?? 1;
  const taskCount = opts.taskCount ?? 1;
  const taskIndex = opts.taskIndex ?? 0;
  if (!Number.isSafeInteger(workers) || workers < 1) throw new UsageError(`--workers ${workers}: must be at least 1`);
  if (!Number.isSafeInteger(taskCount) || taskCount < 1) {
    throw new UsageError(`--task-count ${taskCount}: must be at least 1`);
  }
  if (!Number.isSafeInteger(taskIndex) || taskIndex < 0 || taskIndex >= taskCount) {
    throw new UsageError(`--task-index ${taskIndex} is outside 0..${taskCount - 1} (--task-count ${taskCount})`);
  }
  validateConfig(config);
  makeDirs(config.output);
  const plan = loadOrCreatePlan(config, taskCount, log);
  const lock = OutputLock.acquire(config.output, taskIndex, taskCount, plan.units, log);
  try {
    return await runSteps(plan, config.output, opts, { workers, taskIndex, taskCount, log });
  } finally {
    lock.release();
  }
}

async function runSteps(plan: Plan, out: string, opts: RunOptions,
  o: { workers: number; taskIndex: number; taskCount: number; log: (line: string) => void }): Promise<RunResult> {
  const { workers, taskIndex, taskCount, log } = o;
  const steps = new Set(opts.steps ?? STEPS);
  const units = Array.from({ length: plan.units }, (_, u) => u);
  const mine = units.filter((u) => u % taskCount === taskIndex);
  const ran: Record<string, number[]> = {};
  const skipped: Record<string, number[]> = {};
  const note = (rec: Record<string, number[]>, step: string, u: number) => (rec[step] ??= []).push(u);
  let threadDocs = 0;
  const allDone = (step: string) => units.every((u) => isDone(out, step, u));

  if (steps.has('process')) {
    const todo = mine.filter((u) => {
      if (isDone(out, 'process', u)) { note(skipped, 'process', u); return false; }
      return true;
    });
    if (todo.length) {
      const prog = new Progress('process', log);
      const threads = workers > 1
        ? await (await import('./workers.ts')).DocThreads.acquire(workers - 1, plan.config)
        : undefined;
      try {
        for (const u of todo) await processUnit(plan, out, u, (b) => prog.tick(b), threads, log);
      } finally {
        await threads?.release();
      }
      prog.print(true);
      if (threads) {
        threadDocs = threads.sent - threads.stolen;
        const busy = threads.busySeconds / threads.size / prog.seconds();
        log(`[data] process: ${threadDocs} document(s) ran on ${threads.size} worker thread(s), ` +
          `busy ${(100 * busy).toFixed(0)}% of the step (${threads.stolen} more were queued there and taken back ` +
          'at the end); the rest ran on this thread');
      }
      for (const u of todo) note(ran, 'process', u);
    }
  }
  const dedup = plan.config.dedup !== false;
  if (dedup && steps.has('dedup-buckets') && allDone('process')) {
    const sigDir = path.join(out, 'dedup', 'sigs');
    const buckets = fs.readdirSync(sigDir).filter((d) => d.startsWith('bucket_')).sort();
    buckets.forEach((b, i) => {
      if (i % taskCount !== taskIndex) return;
      const pairsFile = path.join(out, 'dedup', 'pairs', `${b}.pairs`);
      if (fs.existsSync(pairsFile)) { note(skipped, 'dedup-buckets', i); return; }
      writeBucketPairs(path.join(sigDir, b), pairsFile);
      note(ran, 'dedup-buckets', i);
    });
  }
  const bucketsDone = () => {
    const sigDir = path.join(out, 'dedup', 'sigs');
    if (!fs.existsSync(sigDir)) return false;
    const buckets = fs.readdirSync(sigDir).filter((d) => d.startsWith('bucket_'));
    return buckets.length > 0 && buckets.every((b) => fs.existsSync(path.join(out, 'dedup', 'pairs', `${b}.pairs`)));
  };
  if (dedup && steps.has('dedup-cluster') && taskIndex === 0 && allDone('process') && bucketsDone()) {
    if (isDone(out, 'dedup-cluster')) note(skipped, 'dedup-cluster', 0);
    else {
      const r = runClusterStep(path.join(out, 'dedup', 'pairs'), path.join(out, 'dedup', 'remove'), plan.units);
      writeAtomic(path.join(out, 'dedup', 'cluster.json'), JSON.stringify(r));
      markDone(out, 'dedup-cluster');
      log(`[data] dedup: ${r.clusters} clusters, ${r.removed} duplicates removed (${r.exact} exact)`);
      note(ran, 'dedup-cluster', 0);
    }
  }
  const clusterReady = !dedup || isDone(out, 'dedup-cluster');
  if (steps.has('tokenize') && clusterReady) {
    const todo = mine.filter((u) => isDone(out, 'process', u) && !isDone(out, 'tokenize', u));
    mine.filter((u) => isDone(out, 'tokenize', u)).forEach((u) => note(skipped, 'tokenize', u));
    if (todo.length) {
      if (!opts.tokenizer) throw new WgptError('the tokenize step needs a tokenizer (RunOptions.tokenizer)');
      checkTokenizer(out, opts.tokenizer);
      const prog = new Progress('tokenize', log);
      for (const u of todo) {
        const r = await tokenizeUnit(plan, out, u, opts.tokenizer);
        const last = r.stats[r.stats.length - 1];
        prog.tick(last.bytes, last.in);
        note(ran, 'tokenize', u);
      }
      prog.print(true);
    }
  }
  // Say why a step that was asked for did not run.
  const missing = (step: string) => units.filter((u) => !isDone(out, step, u)).length;
  if (opts.steps) {
    const dedupAsked = steps.has('dedup-buckets') || steps.has('dedup-cluster');
    if (dedup && dedupAsked && !allDone('process')) {
      log(`[data] dedup waits for ${missing('process')} unit(s) of the process step`);
    } else if (dedup && steps.has('dedup-cluster') && taskIndex === 0 && !bucketsDone()) {
      log('[data] dedup-cluster waits for the dedup-buckets step of every bucket');
    }
    if (steps.has('tokenize') && !clusterReady) log('[data] tokenize waits for the dedup-cluster step');
    if (steps.has('manifest') && !allDone('tokenize')) {
      log(`[data] manifest waits for ${missing('tokenize')} unit(s) of the tokenize step`);
    }
  }
  let manifest: Manifest | undefined;
  if (steps.has('manifest') && allDone('tokenize')) {
    if (!opts.tokenizer) throw new WgptError('the manifest step needs the tokenizer (RunOptions.tokenizer)');
    manifest = writeManifest(plan, out, opts.tokenizer);
  }
  return { plan, manifest, ran, skipped, threadDocs };
}

// The FineWeb recipe as resumable steps over work units:
//   process (read → URL filter → extraction → language → Gopher repetition → Gopher quality → C4 → FineWeb,
//            + MinHash/exact signatures)  per unit
//   dedup-buckets (per bucket) → dedup-cluster (once) → tokenize (dedup filter → PII → shards) per unit → manifest.
// Every output is written to a temp name and renamed; a step's unit is done when its marker exists, so a re-run
// skips finished units and redoes unfinished ones from scratch (never duplicating or losing a document).
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { C4Options } from './filters/c4.ts';
import type { FineWebQualityOptions } from './filters/fineweb.ts';
import type { GopherQualityOptions } from './filters/gopher-quality.ts';
import type { GopherRepetitionOptions } from './filters/gopher-repetition.ts';
import { readRemoveList, runBucketStep, runClusterStep, type MinHashOptions, EXACT_BUCKET, writeBucketPairs } from './dedup/minhash.ts';
import type { ExtractOptions } from './extract.ts';
import type { LangIdOptions } from './langid.ts';
import { isDone, markDone, pad, RemovedLog, writeAtomic } from './outputs.ts';
import { PiiFormatter, type PiiOptions } from './pii.ts';
import { processUnit } from './process-step.ts';
import type { ReadOptions } from './read.ts';
import { collectStats, formatStatsTable } from './report.ts';
import type { ShardInfo } from './shards.ts';
import { ShardSink, type TokenEncoder } from './tokenize.ts';
import { countRemoved, newStats, type Doc, type StageStats } from './types.ts';
import type { UrlFilterOptions } from './urlfilter.ts';

export interface PipelineConfig {
  /** Input files or directories (.warc.gz, .warc, .jsonl, .parquet, anything else read as text). */
  inputs: string[];
  /** Output directory. */
  output: string;
  /** Number of work units the input is split into; fixed at the first run (plan.json). Default: taskCount (worker threads share the documents of a unit). */
  units?: number;
  read?: ReadOptions;
  urlFilter?: UrlFilterOptions | false;
  extract?: ExtractOptions;
  language?: LangIdOptions | false;
  gopherRepetition?: GopherRepetitionOptions | false;
  gopherQuality?: GopherQualityOptions | false;
  c4?: C4Options | false;
  fineweb?: FineWebQualityOptions | false;
  dedup?: MinHashOptions | false;
  pii?: PiiOptions | false;
  tokenize?: { prefix?: string; valFraction?: number; shardTokens?: number };
}

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

export const STEPS = ['process', 'dedup-buckets', 'dedup-cluster', 'tokenize', 'manifest'] as const;
export type Step = (typeof STEPS)[number];

export interface Plan {
  units: number;
  files: string[];
  config: PipelineConfig;
  /**
   * How the items of a file shared by several units are divided: 'bytes' (plans made by this version) gives each
   * item to the unit with the fewest bytes so far, balancing the units' work; 'position' (older plans, kept so that
   * they resume the same way) gives item p of file f to unit (f + p) mod units.
   */
  split?: 'bytes' | 'position';
}

export function expandInputs(inputs: string[]): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = fs.statSync(p);
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
    else out.push(path.resolve(p));
  };
  for (const i of inputs) walk(i);
  return out;
}

/** Loads plan.json or creates it; a resumed run must use the same units and inputs. */
export function loadOrCreatePlan(config: PipelineConfig, units: number): Plan {
  const file = path.join(config.output, 'plan.json');
  const files = expandInputs(config.inputs);
  if (fs.existsSync(file)) {
    const plan = JSON.parse(fs.readFileSync(file, 'utf8')) as Plan;
    if (JSON.stringify(plan.files) !== JSON.stringify(files)) throw new Error(`${file}: the inputs differ from the ones this output was started with; use a new --output`);
    return plan;
  }
  const plan: Plan = { units, files, config, split: 'bytes' };
  writeAtomic(file, JSON.stringify(plan, null, 2));
  return plan;
}

async function* readDocs(file: string): AsyncGenerator<Doc> {
  const rl = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of rl) if (line) yield JSON.parse(line) as Doc;
}

/** The tokenize step for one unit: drop dedup removals, PII, shards. */
export async function tokenizeUnit(plan: Plan, out: string, unit: number, enc: TokenEncoder): Promise<{ stats: StageStats[]; shards: ShardInfo[] }> {
  const c = plan.config;
  const shardDir = path.join(out, 'shards');
  const prefix = c.tokenize?.prefix ?? 'wgpt';
  // An interrupted earlier attempt may have left complete shards of this unit: remove them before rewriting.
  if (fs.existsSync(shardDir)) for (const f of fs.readdirSync(shardDir)) if (new RegExp(`^${prefix}_(train|val)_${pad(unit)}_`).test(f)) fs.rmSync(path.join(shardDir, f));
  const remove = c.dedup === false ? new Map<number, string>() : readRemoveList(path.join(out, 'dedup', 'remove'), unit);
  const dedupSt = newStats('dedup');
  const piiSt = newStats('pii');
  const tokSt = newStats('tokenize');
  const pii = c.pii === false ? null : new PiiFormatter(c.pii || {});
  const sink = new ShardSink(enc, { dir: shardDir, prefix, part: unit, valFraction: c.tokenize?.valFraction, shardTokens: c.tokenize?.shardTokens });
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
  const stats = [...(c.dedup === false ? [] : [dedupSt]), ...(pii ? [{ ...piiSt, replaced: { ...pii.counts } }] : []), { ...tokSt, tokens: sink.counts }];
  writeAtomic(path.join(out, 'stats', 'tokenize', `${pad(unit)}.json`), JSON.stringify({ unit, stats, shards }, null, 1));
  markDone(out, 'tokenize', unit);
  return { stats, shards };
}

export interface Manifest {
  tokenizer: { name: string; nVocab: number; eotToken: number };
  format: { magic: number; version: number; dtype: 'uint16' | 'uint32'; headerBytes: 1024 };
  units: number;
  inputs: string[];
  totals: { train: { docs: number; tokens: number; shards: number }; val: { docs: number; tokens: number; shards: number } };
  shards: ShardInfo[];
  stages: StageStats[];
  dedup?: { clusters: number; removed: number; exact: number };
  createdAt: string;
}

function writeManifest(plan: Plan, out: string, enc: TokenEncoder): Manifest {
  const shards: ShardInfo[] = [];
  for (let u = 0; u < plan.units; u++) {
    const f = path.join(out, 'stats', 'tokenize', `${pad(u)}.json`);
    shards.push(...(JSON.parse(fs.readFileSync(f, 'utf8')) as { shards: ShardInfo[] }).shards);
  }
  const stages = collectStats(out, plan.units);
  const tot = (split: string) => {
    const s = shards.filter((x) => x.split === split);
    return { docs: s.reduce((a, x) => a + x.docs, 0), tokens: s.reduce((a, x) => a + x.tokens, 0), shards: s.length };
  };
  const clusterFile = path.join(out, 'dedup', 'cluster.json');
  const u16 = enc.nVocab <= 65536;
  const m: Manifest = {
    tokenizer: { name: enc.name, nVocab: enc.nVocab, eotToken: enc.eotToken },
    format: { magic: 20240520, version: u16 ? 1 : 2, dtype: u16 ? 'uint16' : 'uint32', headerBytes: 1024 },
    units: plan.units,
    inputs: plan.files,
    totals: { train: tot('train'), val: tot('val') },
    shards,
    stages,
    dedup: fs.existsSync(clusterFile) ? JSON.parse(fs.readFileSync(clusterFile, 'utf8')) : undefined,
    createdAt: new Date().toISOString(),
  };
  writeAtomic(path.join(out, 'manifest.json'), JSON.stringify(m, null, 2));
  writeAtomic(path.join(out, 'stats.json'), JSON.stringify(stages, null, 2));
  writeAtomic(path.join(out, 'stats.txt'), formatStatsTable(stages) + '\n');
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
    this.log(`[data] ${this.step}: ${this.docs} docs, ${(this.docs / s).toFixed(1)} docs/s, ${(this.bytes / 1e6 / s).toFixed(2)} MB/s${final ? `, ${s.toFixed(1)} s` : ''}`);
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

/** Runs the pipeline steps this task owns, skipping work whose completion marker exists. */
export async function runPipeline(config: PipelineConfig, opts: RunOptions = {}): Promise<RunResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const workers = Math.max(1, opts.workers ?? 1);
  const taskCount = Math.max(1, opts.taskCount ?? 1);
  const taskIndex = opts.taskIndex ?? 0;
  if (taskIndex < 0 || taskIndex >= taskCount) throw new Error(`task index ${taskIndex} is outside 0..${taskCount - 1}`);
  fs.mkdirSync(config.output, { recursive: true });
  const plan = loadOrCreatePlan(config, config.units ?? taskCount);
  const out = config.output;
  const steps = new Set(opts.steps ?? STEPS);
  const mine = Array.from({ length: plan.units }, (_, u) => u).filter((u) => u % taskCount === taskIndex);
  const ran: Record<string, number[]> = {};
  const skipped: Record<string, number[]> = {};
  const note = (rec: Record<string, number[]>, step: string, u: number) => (rec[step] ??= []).push(u);
  let threadDocs = 0;
  const allDone = (step: string) => Array.from({ length: plan.units }, (_, u) => u).every((u) => isDone(out, step, u));

  if (steps.has('process')) {
    const todo = mine.filter((u) => { if (isDone(out, 'process', u)) { note(skipped, 'process', u); return false; } return true; });
    if (todo.length) {
      const prog = new Progress('process', log);
      const threads = workers > 1 ? await (await import('./workers.ts')).DocThreads.acquire(workers - 1, plan.config) : undefined;
      try {
        for (const u of todo) await processUnit(plan, out, u, (b) => prog.tick(b), threads);
      } finally {
        await threads?.release();
      }
      prog.print(true);
      if (threads) {
        threadDocs = threads.sent - threads.stolen;
        const busy = threads.busySeconds / threads.size / prog.seconds();
        log(`[data] process: ${threadDocs} document(s) ran on ${threads.size} worker thread(s), busy ${(100 * busy).toFixed(0)}% of the step (${threads.stolen} more were queued there and taken back at the end); the rest ran on this thread`);
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
      if (!opts.tokenizer) throw new Error('the tokenize step needs a tokenizer');
      // Every unit of one output must use the same tokenizer.
      const tokFile = path.join(out, 'tokenizer.json');
      const desc = { name: opts.tokenizer.name, nVocab: opts.tokenizer.nVocab, eotToken: opts.tokenizer.eotToken };
      if (fs.existsSync(tokFile)) {
        const prev = JSON.parse(fs.readFileSync(tokFile, 'utf8'));
        if (JSON.stringify(prev) !== JSON.stringify(desc)) throw new Error(`${out} was tokenized with ${JSON.stringify(prev)}; got ${JSON.stringify(desc)}. Use a new --output or the same tokenizer`);
      } else writeAtomic(tokFile, JSON.stringify(desc));
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
  const missing = (step: string) => Array.from({ length: plan.units }, (_, u) => u).filter((u) => !isDone(out, step, u)).length;
  if (opts.steps) {
    if (dedup && (steps.has('dedup-buckets') || steps.has('dedup-cluster')) && !allDone('process')) log(`[data] dedup waits for ${missing('process')} unit(s) of the process step`);
    else if (dedup && steps.has('dedup-cluster') && taskIndex === 0 && !bucketsDone()) log('[data] dedup-cluster waits for the dedup-buckets step of every bucket');
    if (steps.has('tokenize') && !clusterReady) log('[data] tokenize waits for the dedup-cluster step');
    if (steps.has('manifest') && !allDone('tokenize')) log(`[data] manifest waits for ${missing('tokenize')} unit(s) of the tokenize step`);
  }
  let manifest: Manifest | undefined;
  if (steps.has('manifest') && allDone('tokenize')) {
    if (!opts.tokenizer) throw new Error('the manifest step needs the tokenizer description');
    manifest = writeManifest(plan, out, opts.tokenizer);
  }
  return { plan, manifest, ran, skipped, threadDocs };
}

export { runBucketStep, EXACT_BUCKET };
export { ByteSplitter, processUnit, type UnitResult } from './process-step.ts';
export { collectStats, formatStatsTable } from './report.ts';
export { isDone } from './outputs.ts';

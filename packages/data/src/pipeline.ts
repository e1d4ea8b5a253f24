// The FineWeb recipe as resumable steps over work units:
//   process (read → URL filter → extraction → language → Gopher repetition → Gopher quality → C4 → FineWeb,
//            + MinHash/exact signatures)  per unit
//   dedup-buckets (per bucket) → dedup-cluster (once) → tokenize (dedup filter → PII → shards) per unit → manifest.
// Every output is written to a temp name and renamed; a step's unit is done when its marker exists, so a re-run
// skips finished units and redoes unfinished ones from scratch (never duplicating or losing a document).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { C4Options } from './filters/c4.ts';
import type { FineWebQualityOptions } from './filters/fineweb.ts';
import type { GopherQualityOptions } from './filters/gopher-quality.ts';
import type { GopherRepetitionOptions } from './filters/gopher-repetition.ts';
import { MinHasher, readRemoveList, runBucketStep, runClusterStep, SignatureWriter, type MinHashOptions, EXACT_BUCKET, writeBucketPairs } from './dedup/minhash.ts';
import type { ExtractOptions } from './extract.ts';
import type { LangIdOptions } from './langid.ts';
import { PiiFormatter, type PiiOptions } from './pii.ts';
import { DocProcessor, type DocResult } from './process.ts';
import { readFile, type RawRecord, type ReadOptions } from './read.ts';
import type { ShardInfo } from './shards.ts';
import { ShardSink, type TokenEncoder } from './tokenize.ts';
import { countRemoved, mergeStats, newStats, type Doc, type StageStats } from './types.ts';
import type { UrlFilterOptions } from './urlfilter.ts';
import type { DocThreads } from './workers.ts';

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

/**
 * Divides a sequence of items between `units` work units by size: each item goes to the unit with the fewest bytes
 * so far (ties to the lowest index). Every unit runs its own copy over the same sequence and so reaches the same
 * division without talking to the others. Each item also counts PER_ITEM bytes for its fixed cost (fitted on the
 * embedded pages: extraction takes about 3 ms + 134 ms per MB of HTML, i.e. about 22 kB's worth per page).
 */
export class ByteSplitter {
  static readonly PER_ITEM = 16384;
  private readonly load: number[];
  constructor(units: number) { this.load = new Array<number>(units).fill(0); }
  /** The unit that gets an item of `bytes` bytes. */
  take(bytes: number): number {
    let best = 0;
    for (let u = 1; u < this.load.length; u++) if (this.load[u] < this.load[best]) best = u;
    this.load[best] += bytes + ByteSplitter.PER_ITEM;
    return best;
  }
}

const pad = (n: number) => String(n).padStart(5, '0');

function writeAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
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

const markerPath = (out: string, step: string, unit?: number) => path.join(out, 'done', unit === undefined ? step : `${step}.${pad(unit)}`);
export const isDone = (out: string, step: string, unit?: number) => fs.existsSync(markerPath(out, step, unit));
const markDone = (out: string, step: string, unit?: number) => writeAtomic(markerPath(out, step, unit), new Date().toISOString() + '\n');

export const PROCESS_STAGES = ['read', 'url_filter', 'extract', 'language', 'gopher_repetition', 'gopher_quality', 'c4', 'fineweb_quality'] as const;

/** Per-document removal log: one JSON line {id, url, stage, reason[, detail]} per removed document, streamed to a temp file and renamed. */
class RemovedLog {
  private lines: string[] = [];
  private readonly tmp: string;
  private readonly fd: number;
  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const dir = path.dirname(file), base = path.basename(file);
    for (const f of fs.readdirSync(dir)) if (f.startsWith(`${base}.tmp-`)) fs.rmSync(path.join(dir, f), { force: true }); // interrupted attempt
    this.tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
    this.fd = fs.openSync(this.tmp, 'w');
  }
  add(id: string, url: string | undefined, stage: string, reason: string, detail?: string): void {
    this.lines.push(JSON.stringify({ id, url, stage, reason, ...(detail ? { detail } : {}) }) + '\n');
    if (this.lines.length >= 1000) this.flush();
  }
  private flush(): void {
    if (this.lines.length) fs.writeSync(this.fd, this.lines.join(''));
    this.lines = [];
  }
  finish(): void {
    this.flush();
    fs.closeSync(this.fd);
    fs.renameSync(this.tmp, this.file);
  }
}

export interface UnitResult { unit: number; stats: StageStats[]; docsOut: number }

/**
 * The process step for one unit. `onDoc` is called after each input record (progress). With `threads`, documents
 * are shared between this thread and the worker threads; results are applied in input order either way, so the
 * outputs do not depend on the number of threads.
 */
export async function processUnit(plan: Plan, out: string, unit: number, onDoc?: (bytes: number) => void, threads?: DocThreads): Promise<UnitResult> {
  const c = plan.config;
  const byFile = plan.files.length >= plan.units;
  const readSt = newStats('read');
  const proc = new DocProcessor(c);
  const stats = new Map(proc.stageNames.map((name) => [name, newStats(name)]));
  // Time spent on MinHash signatures; merged into the 'dedup' row, whose counts come from the tokenize step.
  const sigSt = newStats('dedup');
  const sigs = c.dedup === false ? null : new SignatureWriter(path.join(out, 'dedup', 'sigs'), unit, new MinHasher(c.dedup || {}));
  const docsFile = path.join(out, 'filtered', `${pad(unit)}.jsonl`);
  fs.mkdirSync(path.dirname(docsFile), { recursive: true });
  // Leftovers of an interrupted attempt at this unit.
  for (const f of fs.readdirSync(path.dirname(docsFile))) if (f.startsWith(`${pad(unit)}.jsonl.tmp-`)) fs.rmSync(path.join(path.dirname(docsFile), f), { force: true });
  const tmp = `${docsFile}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  let pending: string[] = [];
  let pendingBytes = 0;
  const flush = () => { if (pending.length) { fs.writeSync(fd, pending.join('')); pending = []; pendingBytes = 0; } };
  let outIndex = 0;
  const now = () => performance.now() / 1000;
  const removed = new RemovedLog(path.join(out, 'removed', `process.${pad(unit)}.jsonl`));
  const startedAt = Date.now();

  // Results by input sequence number, applied strictly in order.
  type Outcome = { error: string; id: string; detail?: string } | { size: number; result: DocResult };
  const outcomes = new Map<number, Outcome>();
  let nextSeq = 0;
  let nextApply = 0;
  const apply = (o: Outcome): void => {
    if ('error' in o) { removed.add(o.id, undefined, 'read', o.error, o.detail); onDoc?.(0); return; }
    const r = o.result;
    r.trace.forEach((t, i) => {
      const st = stats.get(t.stage)!;
      st.in++; st.bytes += t.bytes; st.seconds += t.seconds;
      if (r.removed && i === r.trace.length - 1) countRemoved(st, r.removed.reason);
      else st.kept++;
    });
    if (r.removed) removed.add(r.removed.id, r.removed.url, r.trace[r.trace.length - 1].stage, r.removed.reason);
    else if (r.doc) {
      const doc = r.doc;
      if (sigs && r.sig) { const t = now(); sigs.addSignature(outIndex, r.sig.minhash, r.sig.exact); sigSt.seconds += now() - t + r.sig.seconds; sigSt.bytes += r.sig.bytes; }
      pending.push(JSON.stringify({ id: doc.id, url: doc.url, text: doc.text, meta: doc.meta }) + '\n');
      pendingBytes += doc.text.length;
      if (pendingBytes > 1 << 20) flush();
      outIndex++;
    }
    onDoc?.(o.size);
  };
  const applyReady = (arrived: Array<[number, DocResult]>, sizes: Map<number, number>): void => {
    for (const [seq, result] of arrived) { outcomes.set(seq, { size: sizes.get(seq)!, result }); sizes.delete(seq); }
    for (let o = outcomes.get(nextApply); o; o = outcomes.get(nextApply)) { outcomes.delete(nextApply++); apply(o); }
  };
  // Sizes of the documents handed to threads, for progress once their results are applied.
  const sentSizes = new Map<number, number>();
  let lastYield = now();
  // Files shared by several units: one splitter over all of them (every unit reads every file in the same order).
  const splitter = byFile || plan.split !== 'bytes' ? null : new ByteSplitter(plan.units);
  try {
    for (let fi = 0; fi < plan.files.length; fi++) {
      if (byFile && fi % plan.units !== unit) continue;
      const select = byFile ? undefined
        : splitter ? (_p: number, bytes: number) => splitter.take(bytes) === unit
        : (p: number) => (fi + p) % plan.units === unit;
      let t0 = now();
      for await (const item of readFile(plan.files[fi], { ...c.read, select })) {
        readSt.in++;
        readSt.seconds += now() - t0;
        const seq = nextSeq++;
        if ('error' in item) {
          countRemoved(readSt, item.error);
          outcomes.set(seq, item);
        } else {
          readSt.kept++;
          const size = typeof item.body === 'string' ? item.body.length : item.body.length;
          readSt.bytes += size;
          if (threads?.trySubmit(seq, item as RawRecord)) sentSizes.set(seq, size);
          else outcomes.set(seq, { size, result: await proc.process(item) });
        }
        applyReady(threads ? threads.poll() : [], sentSizes);
        // Let the event loop run now and then (progress, a worker thread's death).
        if (now() - lastYield > 0.1) { await new Promise((r) => setImmediate(r)); lastYield = now(); }
        t0 = now();
      }
    }
    // The input has run out: take back documents the threads have not started, one at a time from the back of their
    // queues, and wait only when every queued document is being processed.
    while (nextApply < nextSeq) {
      const back = threads?.steal();
      if (back) {
        const [seq, item] = back;
        outcomes.set(seq, { size: sentSizes.get(seq)!, result: await proc.process(item) });
        sentSizes.delete(seq);
        applyReady(threads!.poll(), sentSizes);
      } else applyReady(threads ? await threads.wait() : [], sentSizes);
    }
    flush();
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  if (sigs) sigs.finish();
  removed.finish();
  fs.renameSync(tmp, docsFile);
  const allStats = [readSt, ...stats.values(), ...(sigs ? [sigSt] : [])];
  writeAtomic(path.join(out, 'stats', 'process', `${pad(unit)}.json`), JSON.stringify({ unit, docsOut: outIndex, startedAt, finishedAt: Date.now(), stats: allStats }, null, 1));
  markDone(out, 'process', unit);
  return { unit, stats: allStats, docsOut: outIndex };
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

/** Merges per-unit stats into one list, stage by stage, in pipeline order. */
export function collectStats(out: string, units: number): StageStats[] {
  const merged = new Map<string, StageStats>();
  for (const step of ['process', 'tokenize']) {
    for (let u = 0; u < units; u++) {
      const f = path.join(out, 'stats', step, `${pad(u)}.json`);
      if (!fs.existsSync(f)) continue;
      const { stats } = JSON.parse(fs.readFileSync(f, 'utf8')) as { stats: (StageStats & Record<string, unknown>)[] };
      for (const s of stats) {
        const m = merged.get(s.name);
        if (!m) { merged.set(s.name, JSON.parse(JSON.stringify(s))); continue; }
        mergeStats(m, s);
        for (const extra of ['replaced', 'tokens'] as const) {
          const a = (m as unknown as Record<string, unknown>)[extra], b = s[extra];
          if (a && b && typeof a === 'object') sumInto(a as Record<string, unknown>, b as Record<string, unknown>);
        }
      }
    }
  }
  return [...merged.values()];
}

function sumInto(a: Record<string, unknown>, b: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(b)) {
    if (typeof v === 'number') a[k] = ((a[k] as number) ?? 0) + v;
    else if (v && typeof v === 'object') { a[k] ??= {}; sumInto(a[k] as Record<string, unknown>, v as Record<string, unknown>); }
  }
}

/** The readable stats table: one row per stage, then removal reasons. */
export function formatStatsTable(stages: StageStats[]): string {
  const rows: string[][] = [['stage', 'in', 'kept', 'removed', 'docs/s', 'MB/s', 'removed by']];
  for (const s of stages) {
    const rem = Object.entries(s.removed).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
    const rate = s.seconds > 0 ? (s.in / s.seconds).toFixed(0) : '-';
    const mbs = s.seconds > 0 ? (s.bytes / 1e6 / s.seconds).toFixed(1) : '-';
    rows.push([s.name, String(s.in), String(s.kept), String(s.in - s.kept), rate, mbs, rem]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r, ri) => {
    const line = r.map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ').trimEnd();
    return ri === 0 ? `${line}\n${'-'.repeat(Math.min(line.length, 100))}` : line;
  }).join('\n');
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

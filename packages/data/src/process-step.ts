// The process step for one unit: read its share of the input, run every document through the DocProcessor (here
// or on worker threads), and write the filtered documents, MinHash signatures, removal log and stats.
import fs from 'node:fs';
import path from 'node:path';
import { MinHasher, SignatureWriter } from './dedup/minhash.ts';
import { markDone, pad, RemovedLog, writeAtomic } from './outputs.ts';
import type { Plan } from './plan.ts';
import { DocProcessor, type DocResult } from './process.ts';
import { readFile, type RawRecord, type ReadError } from './read.ts';
import { countRemoved, newStats, type StageStats } from './types.ts';
import type { DocThreads } from './workers.ts';

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

export interface UnitResult { unit: number; stats: StageStats[]; docsOut: number }

/**
 * The process step for one unit. `onDoc` is called after each input record (progress). With `threads`, documents
 * are shared between this thread and the worker threads; results are applied in input order either way, so the
 * outputs do not depend on the number of threads. Input that cannot be read is counted in the read stage by
 * reason and logged in removed/; a failure that skips a whole file or a block of it is also reported to `log`.
 */
export async function processUnit(plan: Plan, out: string, unit: number, onDoc?: (bytes: number) => void,
  threads?: DocThreads, log: (line: string) => void = () => {}): Promise<UnitResult> {
  const c = plan.config;
  const byFile = plan.files.length >= plan.units;
  const readSt = newStats('read');
  const proc = new DocProcessor(c);
  const stats = new Map(proc.stageNames.map((name) => [name, newStats(name)]));
  // Time spent on MinHash signatures; merged into the 'dedup' row, whose counts come from the tokenize step.
  const sigSt = newStats('dedup');
  const sigs = c.dedup === false
    ? null
    : new SignatureWriter(path.join(out, 'dedup', 'sigs'), unit, new MinHasher(c.dedup || {}));
  const docsFile = path.join(out, 'filtered', `${pad(unit)}.jsonl`);
  fs.mkdirSync(path.dirname(docsFile), { recursive: true });
  // Leftovers of an interrupted attempt at this unit (the output lock keeps two runs of one unit apart).
  for (const f of fs.readdirSync(path.dirname(docsFile))) {
    if (f.startsWith(`${pad(unit)}.jsonl.tmp-`)) fs.rmSync(path.join(path.dirname(docsFile), f), { force: true });
  }
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
  type Outcome = ReadError | { size: number; result: DocResult };
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
      if (sigs && r.sig) {
        const t = now();
        sigs.addSignature(outIndex, r.sig.minhash, r.sig.exact);
        sigSt.seconds += now() - t + r.sig.seconds;
        sigSt.bytes += r.sig.bytes;
      }
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
          if (item.warn) log(`[data] warning: ${item.detail} (counted as ${item.error})`);
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
  const unitStats = { unit, docsOut: outIndex, startedAt, finishedAt: Date.now(), stats: allStats };
  writeAtomic(path.join(out, 'stats', 'process', `${pad(unit)}.json`), JSON.stringify(unitStats, null, 1));
  markDone(out, 'process', unit);
  return { unit, stats: allStats, docsOut: outIndex };
}

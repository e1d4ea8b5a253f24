// Data pipeline throughput on the embedded htmlparser-benchmark pages: each stage alone, then end to end
// (process + dedup + tokenize with GPT-2's r50k_base) with 1 and 2 worker threads.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchContext, BenchRow, BenchSuite } from '@wgpt/bench';
import { ensureCorpus } from './corpus.ts';
import { MinHasher } from './dedup/minhash.ts';
import { extractRecord } from './extract.ts';
import { C4QualityFilter } from './filters/c4.ts';
import { FineWebQualityFilter } from './filters/fineweb.ts';
import { GopherQualityFilter } from './filters/gopher-quality.ts';
import { GopherRepetitionFilter } from './filters/gopher-repetition.ts';
import { LanguageFilter } from './langid.ts';
import { PiiFormatter } from './pii.ts';
import { readFile, type RawRecord } from './read.ts';
import { runPipeline } from './pipeline.ts';
import { closeWorkerPool } from './workers.ts';
import { tokenizeDocument } from './tokenize.ts';
import { getEncoding } from '@wgpt/tokenizer';
import type { Doc } from './types.ts';
import { packWarc, htmlBenchmarkFiles } from './corpus.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeIt(iters: number, fn: () => Promise<void> | void): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) { const t = performance.now(); await fn(); ts.push(performance.now() - t); }
  return median(ts);
}

const suite: BenchSuite = {
  name: 'data pipeline (FineWeb recipe, CPU)',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const rows: BenchRow[] = [];
    const iters = ctx.quick ? 1 : 3;
    const nPages = ctx.quick ? 40 : 258;
    let warc = await ensureCorpus('htmlpages');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wgpt-data-bench-'));
    if (ctx.quick) {
      warc = path.join(tmp, 'quick.warc.gz');
      await packWarc(htmlBenchmarkFiles().slice(0, nPages), warc);
    }
    const warcBytes = fs.statSync(warc).size;
    const shape = `${nPages} pages, ${(warcBytes / 1e6).toFixed(1)} MB WARC.gz`;
    const stage = (name: string, ms: number, docs: number, bytes: number, note?: string): BenchRow => ({
      name, shape, medianMs: ms, check: 'n/a',
      rate: { value: Math.round((docs / ms) * 1000 * 10) / 10, unit: 'docs/s' },
      note: `${(bytes / 1e6 / (ms / 1000)).toFixed(2)} MB/s over ${docs} docs${note ? '; ' + note : ''}`,
    });

    // read
    let raws: RawRecord[] = [];
    const readMs = await timeIt(iters, async () => {
      raws = [];
      for await (const r of readFile(warc)) if (!('error' in r)) raws.push(r);
    });
    const rawBytes = raws.reduce((s, r) => s + r.body.length, 0);
    rows.push(stage('read WARC.gz (warcio, per-member inflate)', readMs, raws.length, warcBytes,
      'MB/s of compressed input'));
    // extraction
    let docs: Doc[] = [];
    const extMs = await timeIt(iters, () => {
      docs = [];
      for (const r of raws) { const v = extractRecord(r); if (v.keep) docs.push(v.doc); }
    });
    rows.push(stage('extract (readability + linkedom)', extMs, raws.length, rawBytes, 'MB/s of HTML'));
    const textBytes = (ds: Doc[]) => ds.reduce((s, d) => s + d.text.length, 0);
    // language id
    const lang = new LanguageFilter();
    await lang.apply({ id: 'warm', text: 'warm up the model', meta: {} });
    let en: Doc[] = [];
    const langMs = await timeIt(iters, async () => {
      en = [];
      for (const d of docs) if ((await lang.apply({ ...d, meta: {} })).keep) en.push(d);
    });
    rows.push(stage('language id (fastText lid.176)', langMs, docs.length, textBytes(docs)));
    // filters, each on the docs reaching it
    let cur = en;
    for (const [name, f] of [
      ['Gopher repetition', new GopherRepetitionFilter()],
      ['Gopher quality', new GopherQualityFilter()],
      ['C4 quality', new C4QualityFilter()],
      ['FineWeb quality', new FineWebQualityFilter()],
    ] as const) {
      let kept: Doc[] = [];
      const ms = await timeIt(iters, () => {
        kept = [];
        for (const d of cur) { const v = f.apply({ ...d }); if (v.keep) kept.push(v.doc); }
      });
      rows.push(stage(`filter: ${name}`, ms, cur.length, textBytes(cur), `${cur.length - kept.length} removed`));
      cur = kept;
    }
    const hasher = new MinHasher();
    const mhMs = await timeIt(iters, () => { for (const d of cur) hasher.signature(d.text); });
    rows.push(stage('MinHash signatures (5-grams, 14×8)', mhMs, cur.length, textBytes(cur)));
    const pii = new PiiFormatter();
    const piiMs = await timeIt(iters, () => { for (const d of cur) pii.format(d.text); });
    rows.push(stage('PII (e-mail, IPv4)', piiMs, cur.length, textBytes(cur)));
    const gpt2 = getEncoding('r50k_base');
    const tokMs = await timeIt(iters, () => { for (const d of cur) tokenizeDocument(gpt2, d.text); });
    rows.push(stage('tokenize (r50k_base, GPT-2)', tokMs, cur.length, textBytes(cur)));

    // End to end, 1 and 2 workers, both warm: this thread was warmed by the stage rows above, the worker thread (kept
    // in the pool between runs) by one untimed run. The timed runs alternate 1, 2, 1, 2, ... so that a change in the
    // machine's load hits both alike. Cold starts of the CLI are measured separately (bench/RESULTS.md): each thread
    // compiles linkedom and Readability again. The stage rows' documents are dropped first: kept alive they would
    // slow this thread's garbage collections, which costs the 1-worker run (every document here) the most.
    const nRecords = raws.length;
    raws = []; docs = []; en = []; cur = [];
    const e2eIters = ctx.quick ? 1 : 5;
    const times: Record<number, number[]> = { 1: [], 2: [] };
    const keptBy: Record<number, number> = {};
    const runOnce = async (workers: number, tag: string): Promise<number> => {
      const out = path.join(tmp, `e2e-${workers}-${tag}`);
      const t = performance.now();
      const r = await runPipeline({ inputs: [warc], output: out }, { workers, tokenizer: gpt2, log: () => {} });
      const ms = performance.now() - t;
      keptBy[workers] = r.manifest!.totals.train.docs + r.manifest!.totals.val.docs;
      fs.rmSync(out, { recursive: true, force: true });
      return ms;
    };
    await runOnce(2, 'warm-up');
    for (let i = 0; i < e2eIters; i++) for (const w of [1, 2]) times[w].push(await runOnce(w, String(i)));
    await closeWorkerPool();
    const e2e: Record<number, { ms: number; kept: number }> = {};
    for (const w of [1, 2]) {
      e2e[w] = { ms: median(times[w]), kept: keptBy[w] };
      const each = times[w].map((x) => x.toFixed(0)).join(', ');
      ctx.log(`end to end, ${w} worker(s): ${each} ms (median ${e2e[w].ms.toFixed(0)}), ${keptBy[w]} docs kept`);
    }
    for (const w of [1, 2]) {
      const { ms, kept } = e2e[w];
      rows.push({
        name: `end to end, ${w} worker${w > 1 ? 's' : ''} (read→filters→dedup→shards)`,
        shape,
        medianMs: ms,
        rate: { value: Math.round((nRecords / ms) * 1000 * 10) / 10, unit: 'docs/s' },
        ofBaseline: w === 2 ? { fraction: e2e[1].ms / ms, baseline: 'speed-up over 1 worker' } : undefined,
        check: kept === e2e[1].kept ? 'pass' : 'fail',
        note: `${(warcBytes / 1e6 / (ms / 1000)).toFixed(2)} MB/s of WARC.gz; ${kept} docs kept ` +
          `(same for 1 and 2 workers: ${kept === e2e[1].kept})`,
      });
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    return rows;
  },
};
export default suite;

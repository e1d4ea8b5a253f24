import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { beforeAll, describe, expect, it, vi } from 'vitest';

vi.mock('linkedom', async (orig) => {
  const real = (await orig()) as typeof import('linkedom');
  return {
    ...real,
    parseHTML: (html: string) => {
      if (html.includes('__THROW_IN_PARSER__')) throw new Error('parser exploded');
      return real.parseHTML(html);
    },
  };
});

const { htmlBenchmarkFiles } = await import('../src/corpus.ts');
const { runPipeline } = await import('../src/pipeline.ts');
const { readShard } = await import('../src/shards.ts');
const { prestartWorkers } = await import('../src/workers.ts');
const { articleHtml, tmpDir, warcMember } = await import('./helpers.ts');
const { byteEncoder } = await import('./toy-encoder.ts');

const quiet = { log: () => {}, tokenizer: byteEncoder };
let dir: string;
let clean: string;
let bad: string;
/** bad.warc.gz without the page that throws in the (mocked, this thread only) parser. */
let badNoThrow: string;
const N = 14;

beforeAll(async () => {
  dir = tmpDir();
  const pages = htmlBenchmarkFiles().slice(0, N);
  const good: Uint8Array[] = [];
  for (const f of pages) good.push(await warcMember(`https://pages.example/${path.basename(f)}`, fs.readFileSync(f)));
  for (let i = 0; i < 3; i++) good.push(await warcMember(`https://synthetic.example/${i}`, articleHtml(i, 8)));
  clean = path.join(dir, 'clean.warc.gz');
  fs.writeFileSync(clean, Buffer.concat(good));
  const corrupt = Buffer.from(await warcMember('https://x.example/corrupt', articleHtml(50)));
  for (let k = 40; k < 90; k++) corrupt[k] = 0x41;
  const truncated = Buffer.from(await warcMember('https://x.example/trunc', articleHtml(51))).subarray(0, 200);
  const badItems = [
    corrupt,
    zlib.gzipSync('WARC/1.1\r\nnot a header line\r\n\r\n'),
    await warcMember('https://x.example/latin1', Buffer.from(articleHtml(52).replace(/was/g, 'wäs'), 'latin1'),
      'text/html'),
    await warcMember('https://x.example/throws', articleHtml(53).replace('<body>', '<body>__THROW_IN_PARSER__')),
    await warcMember('https://x.example/huge', new Uint8Array(50 * 1024 * 1024).fill(0x20)),
    await warcMember('https://www.pornhub.com/x', articleHtml(54)),
  ];
  // interleave bad records between good ones; truncated member at the very end
  const mixed: Uint8Array[] = [];
  good.forEach((g, i) => { mixed.push(g); if (i < badItems.length) mixed.push(badItems[i]); });
  mixed.push(truncated);
  bad = path.join(dir, 'bad.warc.gz');
  fs.writeFileSync(bad, Buffer.concat(mixed));
  badNoThrow = path.join(dir, 'bad-no-throw.warc.gz');
  fs.writeFileSync(badNoThrow, Buffer.concat(mixed.filter((m) => m !== badItems[3])));
});

function keptUrls(out: string): string[] {
  const urls: string[] = [];
  for (const f of fs.readdirSync(path.join(out, 'filtered')).filter((x) => x.endsWith('.jsonl')).sort()) {
    for (const l of fs.readFileSync(path.join(out, 'filtered', f), 'utf8').split('\n')) {
      if (l) urls.push(JSON.parse(l).url);
    }
  }
  return urls.sort();
}
function allTokens(out: string): number[] {
  const d = path.join(out, 'shards');
  return fs.readdirSync(d).sort().flatMap((f) => [...readShard(path.join(d, f))]);
}
/** Per-stage counts without the timings. */
type Stages = { stages: { name: string; in: number; kept: number; removed: Record<string, number> }[] };
const counts = (m: Stages) => m.stages.map(({ name, in: n, kept, removed }) => ({ name, n, kept, removed }));
const stage = (m: Stages, n: string) => m.stages.find((s) => s.name === n)!;
const READ_ERRORS = { corrupt_gzip_member: 1, malformed_warc_header: 1, too_large: 1, truncated_gzip_member: 1 };

describe('pipeline end to end', () => {
  it('turns a WARC.gz into shards and stats; bad input is counted per reason and every good document kept',
    async () => {
    const outClean = path.join(dir, 'o-clean');
    const outBad = path.join(dir, 'o-bad');
    const rc = await runPipeline({ inputs: [clean], output: outClean }, quiet);
    const rb = await runPipeline({ inputs: [bad], output: outBad }, quiet);
    const mc = rc.manifest!, mb = rb.manifest!;
    expect(mc.totals.train.docs + mc.totals.val.docs).toBeGreaterThan(8);
    expect(keptUrls(outBad)).toEqual(keptUrls(outClean));
    expect(mb.totals).toEqual(mc.totals);
    expect(stage(mb, 'read').removed).toMatchObject(READ_ERRORS);
    expect(stage(mb, 'extract').removed).toMatchObject({ not_utf8: 1, parse_error: 1 });
    expect(stage(mb, 'url_filter').removed).toEqual({ url_blocked_domain: 1 });
    // per-document reasons
    const log = fs.readFileSync(path.join(outBad, 'removed', 'process.00000.jsonl'), 'utf8').trim().split('\n')
      .map((l) => JSON.parse(l));
    expect(log).toEqual(expect.arrayContaining([
      expect.objectContaining({ url: 'https://x.example/latin1', stage: 'extract', reason: 'not_utf8' }),
      expect.objectContaining({ url: 'https://x.example/throws', stage: 'extract', reason: 'parse_error' }),
      expect.objectContaining({ url: 'https://www.pornhub.com/x', stage: 'url_filter', reason: 'url_blocked_domain' }),
      expect.objectContaining({ stage: 'read', reason: 'too_large' }),
    ]));
    const processStages = Object.values(mb.stages).filter((s) => !['dedup', 'pii', 'tokenize'].includes(s.name));
    const removedInProcess = processStages.reduce((n, s) => n + Object.values(s.removed).reduce((a, b) => a + b, 0), 0);
    expect(log.length).toBe(removedInProcess);
    // the synthetic template articles repeat their own phrasing: the Gopher repetition filter removes them
    expect(keptUrls(outClean).filter((u) => u.includes('synthetic'))).toEqual([]);
    expect(Object.keys(stage(mc, 'gopher_repetition').removed).length).toBeGreaterThan(0);
    // shards: <|endoftext|> before every document, manifest describes them
    const toks = allTokens(outBad);
    expect(toks[0]).toBe(256);
    expect(toks.filter((t) => t === 256).length).toBe(mb.totals.train.docs + mb.totals.val.docs);
    expect(mb.tokenizer).toEqual({ name: 'toy-bytes', nVocab: 257, eotToken: 256 });
    expect(mb.format).toMatchObject({ magic: 20240520, version: 1, dtype: 'uint16' });
    expect(fs.readFileSync(path.join(outBad, 'stats.txt'), 'utf8')).toMatch(/^stage\s+in\s+kept\s+removed/);
  });

  it('resumes: finished units are skipped, interrupted ones redone, nothing duplicated or lost', async () => {
    const ref = path.join(dir, 'o-ref');
    await runPipeline({ inputs: [clean], output: ref, units: 3 }, quiet);
    const refTokens = allTokens(ref);
    const out = path.join(dir, 'o-resume');
    // "crash" after the process step of units 0 and 1
    await runPipeline({ inputs: [clean], output: out, units: 3 }, { ...quiet, steps: ['process'] });
    fs.rmSync(path.join(out, 'done', 'process.00002'));
    fs.writeFileSync(path.join(out, 'filtered', '00002.jsonl.tmp-999'), 'partial garbage');
    const r2 = await runPipeline({ inputs: [clean], output: out, units: 3 }, quiet);
    expect(r2.skipped.process).toEqual([0, 1]);
    expect(r2.ran.process).toEqual([2]);
    expect(fs.readdirSync(path.join(out, 'filtered')).filter((f) => f.includes('.tmp'))).toEqual([]);
    expect(allTokens(out)).toEqual(refTokens);
    // "crash" in tokenize of unit 1 after it wrote a shard but before its marker
    fs.rmSync(path.join(out, 'done', 'tokenize.00001'));
    const r3 = await runPipeline({ inputs: [clean], output: out, units: 3 }, quiet);
    expect(r3.ran.tokenize).toEqual([1]);
    expect(r3.ran.process).toBeUndefined();
    expect(allTokens(out)).toEqual(refTokens);
    expect(r3.manifest!.totals).toEqual(JSON.parse(fs.readFileSync(path.join(ref, 'manifest.json'), 'utf8')).totals);
  });

  it('bad input with worker threads: the same counts, removal log and outputs as one thread', async () => {
    const one = path.join(dir, 'o-bad-one'), two = path.join(dir, 'o-bad-two');
    const r1 = await runPipeline({ inputs: [badNoThrow], output: one }, quiet);
    // A thread that is still loading when the input runs out gets every document taken back (threadDocs 0, and the
    // comparison below would not involve it): start it and let it load first.
    await prestartWorkers(1);
    const r2 = await runPipeline({ inputs: [badNoThrow], output: two }, { ...quiet, workers: 2 });
    expect(r2.threadDocs).toBeGreaterThan(0);
    expect(stage(r1.manifest!, 'read').removed).toMatchObject(READ_ERRORS);
    expect(stage(r1.manifest!, 'extract').removed).toMatchObject({ not_utf8: 1 });
    expect(counts(r2.manifest!)).toEqual(counts(r1.manifest!));
    for (const f of ['filtered/00000.jsonl', 'removed/process.00000.jsonl', 'removed/dedup.00000.jsonl']) {
      expect(fs.readFileSync(path.join(two, f), 'utf8'), f).toBe(fs.readFileSync(path.join(one, f), 'utf8'));
    }
    expect(allTokens(two)).toEqual(allTokens(one));
  });

  it('task sharding: two tasks then the shared steps give the same result as one task', async () => {
    const ref = path.join(dir, 'o-ref');
    const out = path.join(dir, 'o-tasks');
    const cfg = { inputs: [clean], output: out, units: 3 };
    const a = await runPipeline(cfg, { ...quiet, taskIndex: 0, taskCount: 2 });
    expect(a.manifest).toBeUndefined(); // task 1 has not run yet
    await runPipeline(cfg, { ...quiet, taskIndex: 1, taskCount: 2 }); // process unit 1, odd buckets
    // even buckets, cluster, tokenize 0 and 2
    const c = await runPipeline(cfg, { ...quiet, taskIndex: 0, taskCount: 2 });
    expect(c.ran['dedup-cluster']).toEqual([0]);
    expect(c.manifest).toBeUndefined();
    const d = await runPipeline(cfg, { ...quiet, taskIndex: 1, taskCount: 2 }); // tokenize 1, manifest
    expect(d.ran.tokenize).toEqual([1]);
    expect(d.manifest!.totals).toEqual(JSON.parse(fs.readFileSync(path.join(ref, 'manifest.json'), 'utf8')).totals);
  });

  it('worker threads give byte-identical outputs to one thread, and really take documents', async () => {
    const ref = path.join(dir, 'o-ref');
    for (const [workers, units] of [[2, 3], [3, 1]]) {
      const out = path.join(dir, `o-workers-${workers}-${units}`);
      const one = path.join(dir, `o-one-${units}`);
      const r1 = await runPipeline({ inputs: [clean], output: one, units }, quiet);
      expect(r1.threadDocs).toBe(0);
      const r = await runPipeline({ inputs: [clean], output: out, units }, { ...quiet, workers });
      expect(r.ran.process).toEqual(Array.from({ length: units }, (_, u) => u));
      // Documents went to the threads (not all processed here), and results came back in input order.
      expect(r.threadDocs).toBeGreaterThan(0);
      expect(r.threadDocs).toBeLessThanOrEqual(N + 3);
      const sigs = [path.join('dedup', 'sigs', 'bucket_00'), path.join('dedup', 'sigs', 'bucket_exact')];
      for (const sub of ['filtered', 'removed', ...sigs, 'shards']) {
        const files = fs.readdirSync(path.join(one, sub)).sort();
        expect(fs.readdirSync(path.join(out, sub)).sort()).toEqual(files);
        for (const f of files) {
          const same = fs.readFileSync(path.join(out, sub, f)).equals(fs.readFileSync(path.join(one, sub, f)));
          expect(same, `${sub}/${f}`).toBe(true);
        }
      }
      if (units === 3) expect(allTokens(out)).toEqual(allTokens(ref)); // the resume test's reference has 3 units
      expect(counts(r.manifest!)).toEqual(counts(r1.manifest!));
      expect(r.manifest!.stages)
        .toEqual(expect.arrayContaining([expect.objectContaining({ name: 'extract', in: N + 3 })]));
    }
  });

  it('refuses to resume with different inputs or a different tokenizer', async () => {
    const out = path.join(dir, 'o-clean');
    await expect(runPipeline({ inputs: [bad], output: out }, quiet)).rejects
      .toThrow(/plan.json: this output was started with other settings: inputs: new .*bad.warc.gz; missing .*clean/);
    fs.rmSync(path.join(out, 'done', 'tokenize.00000'));
    const other = { ...quiet, tokenizer: { ...byteEncoder, name: 'other' } };
    await expect(runPipeline({ inputs: [clean], output: out }, other)).rejects.toThrow(/was tokenized with/);
  });
});

describe('ByteSplitter', () => {
  it('gives each item to exactly one unit, the same way in every unit, with loads within one item of each other',
    async () => {
    const { ByteSplitter } = await import('../src/process-step.ts');
    let s = 12345;
    const sizes = Array.from({ length: 500 }, () => { s = (s * 1103515245 + 12345) >>> 0; return s % 200_000; });
    const units = 3;
    const owner = sizes.map(() => -1);
    for (let u = 0; u < units; u++) {
      const sp = new ByteSplitter(units);
      sizes.forEach((b, i) => { if (sp.take(b) === u) { expect(owner[i]).toBe(-1); owner[i] = u; } });
    }
    expect(owner.every((o) => o >= 0)).toBe(true);
    const load = [0, 1, 2]
      .map((u) => sizes.reduce((a, b, i) => a + (owner[i] === u ? b + ByteSplitter.PER_ITEM : 0), 0));
    expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(Math.max(...sizes) + ByteSplitter.PER_ITEM);
  });
});

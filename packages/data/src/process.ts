// The per-document part of the process step: URL filter → extraction → language → quality filters → MinHash
// signature. A DocProcessor has no I/O and no shared state, so the same code runs on the main thread and in worker
// threads; the caller turns each DocResult into stats, logs and output lines in input order.
import { C4QualityFilter } from './filters/c4.ts';
import { FineWebQualityFilter } from './filters/fineweb.ts';
import { GopherQualityFilter } from './filters/gopher-quality.ts';
import { GopherRepetitionFilter } from './filters/gopher-repetition.ts';
import { exactKey, MinHasher } from './dedup/minhash.ts';
import { extractRecord } from './extract.ts';
import { LanguageFilter } from './langid.ts';
import type { PipelineConfig } from './config.ts';
import type { RawRecord } from './read.ts';
import type { Doc, Verdict } from './types.ts';
import { UrlFilter } from './urlfilter.ts';

/** One stage a document went through: its name, the seconds it took and the bytes that entered it. */
export interface StageTrace { stage: string; seconds: number; bytes: number }

export interface DocResult {
  /** Every stage the document entered, in order. When `removed` is set, the last entry is the stage that removed it. */
  trace: StageTrace[];
  removed?: { reason: string; id: string; url?: string };
  /** The kept document. */
  doc?: Doc;
  /** Its MinHash signature and exact-duplicate key (when dedup is on). */
  sig?: { minhash: Uint32Array; exact: Uint32Array; seconds: number; bytes: number };
}

type DocStage = { name: string; apply: (d: Doc) => Verdict | Promise<Verdict> };

function buildStages(c: PipelineConfig): DocStage[] {
  const s: DocStage[] = [];
  const add = (name: string, f: { apply: DocStage['apply'] }) => s.push({ name, apply: (d) => f.apply(d) });
  if (c.language !== false) add('language', new LanguageFilter(c.language || {}));
  if (c.gopherRepetition !== false) add('gopher_repetition', new GopherRepetitionFilter(c.gopherRepetition || {}));
  if (c.gopherQuality !== false) add('gopher_quality', new GopherQualityFilter(c.gopherQuality || {}));
  if (c.c4 !== false) add('c4', new C4QualityFilter(c.c4 || {}));
  if (c.fineweb !== false) add('fineweb_quality', new FineWebQualityFilter(c.fineweb || {}));
  return s;
}

const now = () => performance.now() / 1000;

export class DocProcessor {
  private readonly urlFilter: UrlFilter | null;
  private readonly stages: DocStage[];
  private readonly hasher: MinHasher | null;
  /** Every stage a document can enter, in order: the names its traces use. */
  readonly stageNames: string[];
  constructor(readonly config: PipelineConfig) {
    this.urlFilter = config.urlFilter === false ? null : new UrlFilter(config.urlFilter || {});
    this.stages = buildStages(config);
    this.hasher = config.dedup === false ? null : new MinHasher(config.dedup || {});
    this.stageNames = [...(this.urlFilter ? ['url_filter'] : []), 'extract', ...this.stages.map((st) => st.name)];
  }

  async process(item: RawRecord): Promise<DocResult> {
    const trace: StageTrace[] = [];
    const size = typeof item.body === 'string' ? item.body.length : item.body.length;
    const removed = (reason: string, id = item.id, url = item.url): DocResult =>
      ({ trace, removed: { reason, id, url } });
    // URL filter (before extraction: it needs only the URL)
    if (this.urlFilter) {
      const t = now();
      const r = this.urlFilter.check(item.url);
      trace.push({ stage: 'url_filter', seconds: now() - t, bytes: size });
      if (r) return removed(r);
    }
    let t = now();
    const v = extractRecord(item, this.config.extract);
    trace.push({ stage: 'extract', seconds: now() - t, bytes: size });
    if (!v.keep) return removed(v.reason);
    let doc = v.doc;
    for (const s of this.stages) {
      t = now();
      const bytes = doc.text.length;
      const r = await s.apply(doc);
      trace.push({ stage: s.name, seconds: now() - t, bytes });
      if (!r.keep) return removed(r.reason, doc.id, doc.url);
      doc = r.doc;
    }
    if (!this.hasher) return { trace, doc };
    t = now();
    const minhash = this.hasher.signature(doc.text);
    const exact = exactKey(doc.text);
    return { trace, doc, sig: { minhash, exact, seconds: now() - t, bytes: doc.text.length } };
  }
}

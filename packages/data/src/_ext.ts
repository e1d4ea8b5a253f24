import { readFile, type RawRecord } from './read.ts';
import { extractRecord } from './extract.ts';
import { ensureCorpus } from './corpus.ts';
const warc = await ensureCorpus('htmlpages');
const raws: RawRecord[] = [];
for await (const r of readFile(warc)) if (!('error' in r)) raws.push(r);
for (let i = 0; i < 3; i++) { const t = performance.now(); for (const r of raws) extractRecord(r); console.log((performance.now() - t).toFixed(0), 'ms'); }

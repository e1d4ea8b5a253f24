import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readFile, type ReadItem } from '../src/read.ts';
import { packWarc, htmlBenchmarkFiles } from '../src/corpus.ts';
import { articleHtml, tmpDir, warcMember } from './helpers.ts';

async function collect(file: string, opts = {}): Promise<ReadItem[]> {
  const out: ReadItem[] = [];
  for await (const r of readFile(file, opts)) out.push(r);
  return out;
}
const good = (xs: ReadItem[]) => xs.filter((x) => !('error' in x)) as Extract<ReadItem, { kind: string }>[];
const errors = (xs: ReadItem[]) => xs.filter((x) => 'error' in x).map((x) => (x as { error: string }).error);

describe('WARC.gz reader', () => {
  it('reads every record of a packed WARC with URLs and bodies', async () => {
    const d = tmpDir();
    const files = htmlBenchmarkFiles().slice(0, 5);
    const out = path.join(d, 'x.warc.gz');
    const r = await packWarc(files, out);
    expect(r.records).toBe(5);
    const items = await collect(out);
    expect(errors(items)).toEqual([]);
    const g = good(items);
    expect(g).toHaveLength(5);
    expect(g[0].url).toContain(path.basename(files[0]));
    expect(Buffer.from(g[2].body as Uint8Array).equals(fs.readFileSync(files[2]))).toBe(true);
  });

  it('skips a truncated member, a corrupt member and a malformed header, and keeps every good record', async () => {
    const d = tmpDir();
    const m = await Promise.all([0, 1, 2, 3, 4].map((i) => warcMember(`http://a.example/${i}`, articleHtml(i))));
    const corrupt = Buffer.from(m[1]);
    for (let k = 30; k < 80; k++) corrupt[k] = 0x41; // damage the deflate stream
    const badHeader = zlib.gzipSync('WARC/1.1\r\nthis line is not a header\r\nnor: is\r\n\r\nbody');
    const notWarc = zlib.gzipSync('HTTP/1.1 200 OK\r\n\r\nnot a warc record');
    const truncated = Buffer.from(m[4]).subarray(0, m[4].length - 60);
    const file = path.join(d, 'bad.warc.gz');
    fs.writeFileSync(file, Buffer.concat([m[0], corrupt, m[2], notWarc, badHeader, m[3], truncated]));
    const items = await collect(file);
    expect(good(items).map((x) => x.url)).toEqual(['http://a.example/0', 'http://a.example/2', 'http://a.example/3']);
    const errs = errors(items);
    expect(errs).toContain('corrupt_gzip_member');
    expect(errs).toContain('truncated_gzip_member');
    expect(errs.filter((e) => e === 'malformed_warc_header').length).toBeGreaterThanOrEqual(1);
  });

  it('checks the gzip trailer: a member whose CRC does not match is corrupt', async () => {
    const d = tmpDir();
    const m = await Promise.all([0, 1, 2].map((i) => warcMember(`http://c.example/${i}`, articleHtml(i))));
    const bad = Buffer.from(m[1]);
    bad[bad.length - 8] ^= 0xff; // CRC-32 in the trailer
    const f = path.join(d, 'crc.warc.gz');
    fs.writeFileSync(f, Buffer.concat([m[0], bad, m[2]]));
    const items = await collect(f);
    expect(good(items).map((x) => x.url)).toEqual(['http://c.example/0', 'http://c.example/2']);
    expect(errors(items)).toEqual(['corrupt_gzip_member']);
  });

  it('select splits a file between units without overlap or loss', async () => {
    const d = tmpDir();
    const out = path.join(d, 'x.warc.gz');
    await packWarc(htmlBenchmarkFiles().slice(0, 9), out);
    const all = good(await collect(out)).map((x) => x.url);
    const even = good(await collect(out, { select: (p: number) => p % 2 === 0 })).map((x) => x.url);
    const odd = good(await collect(out, { select: (p: number) => p % 2 === 1 })).map((x) => x.url);
    expect(even.length).toBeGreaterThan(3);
    expect(odd.length).toBeGreaterThan(3);
    expect([...even, ...odd].sort()).toEqual([...all].sort());
  });

  it('skips a 50 MB page as too_large without losing its neighbours', async () => {
    const d = tmpDir();
    const big = new Uint8Array(50 * 1024 * 1024).fill(0x61);
    const file = path.join(d, 'big.warc.gz');
    fs.writeFileSync(file, Buffer.concat([
      await warcMember('http://a.example/0', articleHtml(0)),
      await warcMember('http://a.example/big', big),
      await warcMember('http://a.example/2', articleHtml(2)),
    ]));
    const items = await collect(file);
    expect(good(items).map((x) => x.url)).toEqual(['http://a.example/0', 'http://a.example/2']);
    expect(errors(items)).toEqual(['too_large']);
  });
});

describe('text, JSONL readers', () => {
  it('reads JSONL and counts bad lines', async () => {
    const d = tmpDir();
    const f = path.join(d, 'x.jsonl');
    fs.writeFileSync(f,
      '{"id":"a","text":"hello"}\nnot json\n{"text":"second","url":"http://x.example/"}\n{"id":"c"}\n');
    const items = await collect(f);
    expect(good(items).map((x) => x.id)).toEqual(['a', 'x.jsonl#2']);
    expect(errors(items)).toEqual(['bad_json', 'no_text_field']);
  });
  it('splits plain text on <|endoftext|> lines', async () => {
    const d = tmpDir();
    const f = path.join(d, 'x.txt');
    fs.writeFileSync(f, 'one\nmore\n<|endoftext|>\ntwo\n');
    const items = good(await collect(f));
    expect(items.map((x) => x.body)).toEqual(['one\nmore', 'two']);
  });
});

describe('parquet reader (FineWeb layout)', () => {
  it('reads text, id, url and metadata columns across row groups', async () => {
    const { parquetWriteBuffer } = await import('hyparquet-writer');
    const n = 25;
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'text', data: Array.from({ length: n }, (_, i) => `document number ${i}`), type: 'STRING' },
        { name: 'id', data: Array.from({ length: n }, (_, i) => `<urn:uuid:${i}>`), type: 'STRING' },
        { name: 'url', data: Array.from({ length: n }, (_, i) => `https://site${i}.example/`), type: 'STRING' },
        { name: 'language_score', data: Array.from({ length: n }, () => 0.9), type: 'DOUBLE' },
      ],
      rowGroupSize: 10,
    });
    const f = path.join(tmpDir(), 'x.parquet');
    fs.writeFileSync(f, Buffer.from(buf));
    const items = good(await collect(f));
    expect(items).toHaveLength(n);
    expect(items[24]).toMatchObject({
      id: '<urn:uuid:24>', url: 'https://site24.example/', kind: 'text', body: 'document number 24',
      meta: { language_score: 0.9 },
    });
  });
});

describe('uncompressed WARC reader', () => {
  it('frames records by Content-Length and resynchronises after a malformed header', async () => {
    const d = tmpDir();
    const recs = await Promise.all([0, 1, 2].map((i) => warcMember(`http://u.example/${i}`, articleHtml(i))));
    const plain = recs.map((r) => zlib.gunzipSync(r));
    const garbage = Buffer.from('WARC/1.1\r\nWARC-Type: response\r\nno length here\r\n\r\nsome body bytes\r\n\r\n');
    const f = path.join(d, 'x.warc');
    const junk = Buffer.from('junk between records\n');
    fs.writeFileSync(f, Buffer.concat([plain[0], garbage, plain[1], junk, plain[2], plain[0].subarray(0, 900)]));
    const items = await collect(f);
    expect(good(items).map((x) => x.url)).toEqual(['http://u.example/0', 'http://u.example/1', 'http://u.example/2']);
    expect(errors(items)).toEqual(['malformed_warc_header', 'malformed_warc_header', 'truncated_record']);
  });
});

describe('broken JSONL(.gz) and parquet files: skipped, counted and named; the rest is read', () => {
  const lines = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ id: `d${i}`, text: `text ${i}` }));
  const ids = (xs: ReadItem[]) => good(xs).map((x) => x.id);
  const errs = (xs: ReadItem[]) => xs.filter((x) => 'error' in x) as Extract<ReadItem, { error: string }>[];
  /** Every item exactly once over `units` units that split by position (as the pipeline's units do). */
  async function overUnits(f: string, units: number): Promise<ReadItem[]> {
    const all: ReadItem[] = [];
    for (let u = 0; u < units; u++) all.push(...(await collect(f, { select: (p: number) => p % units === u })));
    return all;
  }

  it('a truncated .jsonl.gz keeps the lines before the cut and counts one truncated_gzip_member', async () => {
    const f = path.join(tmpDir(), 'cut.jsonl.gz');
    const gz = zlib.gzipSync(lines(200).join('\n') + '\n');
    fs.writeFileSync(f, gz.subarray(0, Math.floor(gz.length / 2)));
    // the reference: the complete lines in what a streaming gunzip gets out of the first half
    const half = gz.subarray(0, Math.floor(gz.length / 2));
    const partial = zlib.gunzipSync(half, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const complete = partial.toString('utf8').split('\n').slice(0, -1).length;
    expect(complete).toBeGreaterThan(10);
    const items = await collect(f);
    expect(ids(items)).toEqual(Array.from({ length: complete }, (_, i) => `d${i}`));
    expect(errs(items)).toEqual([{ error: 'truncated_gzip_member', id: `cut.jsonl.gz#${complete}`, warn: true,
      detail: `${f}: unexpected end of file at line ${complete + 1}; the rest of the file is skipped` }]);
    // split between 3 units: every line and the error exactly once
    const split = await overUnits(f, 3);
    expect(ids(split).sort()).toEqual(ids(items).sort());
    expect(errs(split)).toHaveLength(1);
  });

  it('a .jsonl.gz that is not gzip, and an empty one', async () => {
    const d = tmpDir();
    const f = path.join(d, 'plain.jsonl.gz');
    fs.writeFileSync(f, lines(3).join('\n'));
    expect(await collect(f)).toEqual([{ error: 'bad_gzip_header', id: 'plain.jsonl.gz#0', warn: true,
      detail: `${f}: incorrect header check at line 1; the file is skipped` }]);
    const e = path.join(d, 'empty.jsonl.gz');
    fs.writeFileSync(e, '');
    expect(await collect(e)).toEqual([]);
  });

  it('bad JSON lines are counted one by one, naming the line, between good ones', async () => {
    const f = path.join(tmpDir(), 'x.jsonl');
    fs.writeFileSync(f, [lines(1)[0], '{"text": "cut', 'null', '[1]', '{"id": 5}', lines(3)[2]].join('\n'));
    const items = await collect(f);
    expect(ids(items)).toEqual(['d0', 'd2']);
    expect(errs(items).map((e) => [e.error, e.id, e.detail])).toEqual([
      ['bad_json', 'x.jsonl#1', expect.stringMatching(/^line 2: Unterminated string in JSON/)],
      ['bad_json', 'x.jsonl#2', 'line 3: not a JSON object'],
      ['bad_json', 'x.jsonl#3', 'line 4: not a JSON object'],
      ['no_text_field', 'x.jsonl#4', 'line 5: no string "text" field'],
    ]);
  });

  it('a parquet file that is not one (or lost its footer), and a damaged row group', async () => {
    const { parquetWriteBuffer } = await import('hyparquet-writer');
    const { parquetMetadata } = await import('hyparquet');
    const n = 25;
    const buf = Buffer.from(parquetWriteBuffer({
      columnData: [
        { name: 'text', data: Array.from({ length: n }, (_, i) => `document number ${i}`), type: 'STRING' },
        { name: 'id', data: Array.from({ length: n }, (_, i) => `d${i}`), type: 'STRING' },
      ],
      rowGroupSize: 10,
    }));
    const d = tmpDir();
    const cut = path.join(d, 'cut.parquet');
    fs.writeFileSync(cut, buf.subarray(0, buf.length - 30));
    expect(await collect(cut)).toEqual([{ error: 'bad_parquet', id: 'cut.parquet#0', warn: true,
      detail: `${cut}: not a readable parquet file (parquet file invalid (footer != PAR1)); the file is skipped` }]);
    // the page header of the second row group's text column overwritten: that group (rows 10..19) is lost
    const md = parquetMetadata(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    const at = Number(md.row_groups[1].columns[0].meta_data!.data_page_offset);
    const bad = Buffer.from(buf);
    bad.fill(0xff, at, at + 12);
    const mid = path.join(d, 'mid.parquet');
    fs.writeFileSync(mid, bad);
    const items = await collect(mid);
    const kept = [...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: 5 }, (_, i) => 20 + i)];
    expect(ids(items)).toEqual(kept.map((i) => `d${i}`));
    expect(errs(items).map((e) => [e.error, e.id, e.warn])).toEqual([['bad_parquet', 'mid.parquet#10', true]]);
    expect(errs(items)[0].detail).toMatch(new RegExp(`^${mid}: row group 1 \\(rows 10\\.\\.19\\): .*; skipped$`));
    const split = await overUnits(mid, 2);
    expect(ids(split).sort()).toEqual(ids(items).sort());
    expect(errs(split)).toHaveLength(1);
  });
});

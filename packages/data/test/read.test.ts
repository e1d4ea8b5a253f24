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
    fs.writeFileSync(file, Buffer.concat([await warcMember('http://a.example/0', articleHtml(0)), await warcMember('http://a.example/big', big), await warcMember('http://a.example/2', articleHtml(2))]));
    const items = await collect(file);
    expect(good(items).map((x) => x.url)).toEqual(['http://a.example/0', 'http://a.example/2']);
    expect(errors(items)).toEqual(['too_large']);
  });
});

describe('text, JSONL readers', () => {
  it('reads JSONL and counts bad lines', async () => {
    const d = tmpDir();
    const f = path.join(d, 'x.jsonl');
    fs.writeFileSync(f, '{"id":"a","text":"hello"}\nnot json\n{"text":"second","url":"http://x.example/"}\n{"id":"c"}\n');
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
    expect(items[24]).toMatchObject({ id: '<urn:uuid:24>', url: 'https://site24.example/', kind: 'text', body: 'document number 24', meta: { language_score: 0.9 } });
  });
});

describe('uncompressed WARC reader', () => {
  it('frames records by Content-Length and resynchronises after a malformed header', async () => {
    const d = tmpDir();
    const recs = await Promise.all([0, 1, 2].map((i) => warcMember(`http://u.example/${i}`, articleHtml(i))));
    const plain = recs.map((r) => zlib.gunzipSync(r));
    const garbage = Buffer.from('WARC/1.1\r\nWARC-Type: response\r\nno length here\r\n\r\nsome body bytes\r\n\r\n');
    const f = path.join(d, 'x.warc');
    fs.writeFileSync(f, Buffer.concat([plain[0], garbage, plain[1], Buffer.from('junk between records\n'), plain[2], plain[0].subarray(0, 900)]));
    const items = await collect(f);
    expect(good(items).map((x) => x.url)).toEqual(['http://u.example/0', 'http://u.example/1', 'http://u.example/2']);
    expect(errors(items)).toEqual(['malformed_warc_header', 'malformed_warc_header', 'truncated_record']);
  });
});

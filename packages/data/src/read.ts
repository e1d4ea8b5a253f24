// Stage 1: readers. Each yields raw records lazily (constant memory in the number of records) and reports
// unreadable input as `{ error }` items so the caller can count them per reason and carry on.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import stream from 'node:stream';
import zlib from 'node:zlib';
import { WARCParser } from 'warcio';

/** A raw record before extraction: HTML (from WARC) or text (from txt/jsonl/parquet). */
export interface RawRecord {
  id: string;
  url?: string;
  /** 'html' needs extraction; 'text' is already plain text. */
  kind: 'html' | 'text';
  /** Undecoded body for HTML (charset is resolved by the extractor); string for text. */
  body: Uint8Array | string;
  contentType?: string;
  meta?: Record<string, unknown>;
}
/**
 * Input that could not be read: a reason (counted in the read stage's stats), the position's id and what went wrong.
 * `warn` marks a failure that skipped a whole file or a block of it, which the caller also reports on stderr.
 */
export interface ReadError { error: string; id: string; detail?: string; warn?: boolean }
export type ReadItem = RawRecord | ReadError;

export interface ReadOptions {
  /** Records whose body is larger than this are skipped with reason `too_large` (default 10 MB). */
  maxRecordBytes?: number;
  /**
   * Reads only the items that pass this test (gzip member in a WARC.gz, record in a WARC, line in JSONL or text
   * documents, row in parquet); the others are skipped without being parsed. Called exactly once per item, in file
   * order, with the item's position and its size in bytes (decompressed; 0 for an item that could not be read), so
   * that a stateful splitter sees the same sequence in every work unit. Used to split one file between work units.
   */
  select?: (position: number, bytes: number) => boolean;
}
const DEFAULT_MAX = 10 * 1024 * 1024;

export function inputFormat(file: string): 'warc.gz' | 'warc' | 'jsonl' | 'parquet' | 'txt' {
  const f = file.toLowerCase();
  if (f.endsWith('.warc.gz') || f.endsWith('.arc.gz')) return 'warc.gz';
  if (f.endsWith('.warc')) return 'warc';
  if (f.endsWith('.jsonl') || f.endsWith('.jsonl.gz') || f.endsWith('.ndjson')) return 'jsonl';
  if (f.endsWith('.parquet')) return 'parquet';
  return 'txt';
}

export async function* readFile(file: string, opts: ReadOptions = {}): AsyncGenerator<ReadItem> {
  switch (inputFormat(file)) {
    case 'warc.gz': yield* readWarcGz(file, opts); break;
    case 'warc': yield* readWarc(file, opts); break;
    case 'jsonl': yield* readJsonl(file, opts); break;
    case 'parquet': yield* readParquet(file, opts); break;
    default: yield* readText(file, opts);
  }
}

const GZ_MAGIC0 = 0x1f, GZ_MAGIC1 = 0x8b;
/** zlib.crc32 exists from Node 20.15 / 22.2; without it only the length in the gzip trailer is checked. */
const crc32 = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;

/** Length of a gzip member header at buf[0..], or -1 if not a header, or 0 if more bytes are needed. */
function gzipHeaderLength(buf: Uint8Array): number {
  if (buf.length < 10) return 0;
  if (buf[0] !== GZ_MAGIC0 || buf[1] !== GZ_MAGIC1 || buf[2] !== 8 || (buf[3] & 0xe0) !== 0) return -1;
  const flg = buf[3];
  let p = 10;
  if (flg & 4) { if (buf.length < p + 2) return 0; p += 2 + (buf[p] | (buf[p + 1] << 8)); }
  if (flg & 8) { while (p < buf.length && buf[p] !== 0) p++; p++; }
  if (flg & 16) { while (p < buf.length && buf[p] !== 0) p++; p++; }
  if (flg & 2) p += 2;
  return p > buf.length ? 0 : p;
}

/** Positional reads with a 4 MB read-ahead cache (records are small; one read serves many). */
function openWindow(file: string): { size: number; read: (at: number, len: number) => Buffer; close: () => void } {
  const fd = fs.openSync(file, 'r');
  const size = fs.fstatSync(fd).size;
  const readRaw = (at: number, len: number): Buffer => {
    const n = Math.max(0, Math.min(len, size - at));
    const b = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) { const r = fs.readSync(fd, b, got, n - got, at + got); if (r === 0) break; got += r; }
    return b.subarray(0, got);
  };
  let cacheStart = 0;
  let cache: Buffer = Buffer.alloc(0);
  const read = (at: number, len: number): Buffer => {
    const want = Math.max(0, Math.min(len, size - at));
    if (at >= cacheStart && at + want <= cacheStart + cache.length) {
      return cache.subarray(at - cacheStart, at - cacheStart + want);
    }
    cache = readRaw(at, Math.max(len, 4 << 20));
    cacheStart = at;
    return cache.subarray(0, want);
  };
  return { size, read, close: () => fs.closeSync(fd) };
}

/**
 * WARC.gz reader. A WARC.gz is a series of gzip members, one per record (WARC 1.1, annex D). Each member is
 * inflated on its own, so a corrupt or truncated member costs one record: the reader resynchronises on the
 * next gzip header and keeps going. Memory is bounded by the largest record read (window ≤ maxRecordBytes·2).
 */
export async function* readWarcGz(file: string, opts: ReadOptions = {}): AsyncGenerator<ReadItem> {
  const maxBytes = opts.maxRecordBytes ?? DEFAULT_MAX;
  const base = path.basename(file);
  const win = yield* openOrFail(file, opts);
  if (!win) return;
  const { size, read, close } = win;
  const maxWindow = Math.max(2 * maxBytes, 1 << 20);
  let pos = 0;
  let member0 = 0;
  // After a bad member, failures at candidate offsets found by resync belong to the same damage: not recounted.
  let resyncing = false;
  /** Next offset ≥ from where a plausible gzip header starts, or size. */
  const resync = (from: number): number => {
    const chunk = 1 << 16;
    for (let at = from; at < size; at += chunk - 3) {
      const b = read(at, chunk);
      for (let i = 0; i + 3 < b.length; i++) {
        if (b[i] === GZ_MAGIC0 && b[i + 1] === GZ_MAGIC1 && b[i + 2] === 8 && (b[i + 3] & 0xe0) === 0) return at + i;
      }
    }
    return size;
  };
  try {
    while (pos < size) {
      let window = 1 << 18;
      let member: Buffer | null = null;
      let consumed = 0;
      let err: string | null = null;
      let detail = '';
      const m = member0;
      for (;;) {
        const buf = read(pos, window);
        const hl = gzipHeaderLength(buf);
        if (hl <= 0) { err = 'bad_gzip_header'; break; }
        try {
          const r = zlib.inflateRawSync(buf.subarray(hl), { info: true, maxOutputLength: maxBytes + 65536 }) as
            unknown as { buffer: Buffer; engine: { bytesWritten: number } };
          member = r.buffer;
          consumed = hl + r.engine.bytesWritten + 8;
          // gzip trailer: CRC-32 and length of the uncompressed data
          const tail = hl + r.engine.bytesWritten;
          if (tail + 8 > buf.length) {
            if (pos + buf.length < size && window < maxWindow) { window *= 4; member = null; continue; }
            err = 'truncated_gzip_member'; detail = 'missing gzip trailer'; member = null; break;
          }
          const crc = buf.readUInt32LE(tail), isize = buf.readUInt32LE(tail + 4);
          if (isize !== (member.length >>> 0) || (crc32 && crc !== crc32(member))) {
            err = 'corrupt_gzip_member'; detail = 'gzip CRC or length mismatch'; member = null;
          }
          break;
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code === 'Z_BUF_ERROR' && pos + buf.length < size && window < maxWindow) { window *= 4; continue; }
          if (code === 'ERR_BUFFER_TOO_LARGE') err = 'too_large';
          else if (code === 'Z_BUF_ERROR') err = 'truncated_gzip_member';
          else err = 'corrupt_gzip_member';
          detail = (e as Error).message;
          break;
        }
      }
      if (err !== null || member === null) {
        if (!resyncing) {
          member0++;
          if (!opts.select || opts.select(m, 0)) {
            yield { error: err ?? 'corrupt_gzip_member', id: `${base}#${m}`, detail: `${detail} at byte ${pos}` };
          }
        }
        resyncing = true;
        pos = resync(pos + 1);
        continue;
      }
      resyncing = false;
      pos += consumed;
      member0++;
      if (opts.select && !opts.select(m, member.length)) continue;
      let k = 0;
      yield* parseWarcBytes(member, base, () => (k++ === 0 ? `${m}` : `${m}.${k - 1}`), maxBytes);
    }
  } finally {
    close();
  }
}

/** Parses the records in one decompressed chunk (normally one record) with warcio. */
async function* parseWarcBytes(bytes: Uint8Array, base: string, nextIndex: () => string, maxBytes: number):
  AsyncGenerator<ReadItem> {
  if (!startsWithWarc(bytes)) {
    yield { error: 'malformed_warc_header', id: `${base}#${nextIndex()}`, detail: 'record does not start with WARC/' };
    return;
  }
  const parser = new WARCParser([bytes]);
  for (;;) {
    let rec;
    const id = `${base}#${nextIndex()}`;
    try {
      rec = await parser.parse();
    } catch (e) {
      yield { error: 'malformed_warc_header', id, detail: (e as Error).message };
      return;
    }
    if (!rec) return;
    if (!rec.warcType || !rec.warcHeaders.headers.get('warc-record-id')) {
      yield { error: 'malformed_warc_header', id, detail: 'record without WARC-Type or WARC-Record-ID' };
      return;
    }
    const item = await toRaw(rec, id, maxBytes);
    if (item) yield item;
  }
}

function startsWithWarc(b: Uint8Array): boolean {
  return b.length > 5 && b[0] === 0x57 && b[1] === 0x41 && b[2] === 0x52 && b[3] === 0x43 && b[4] === 0x2f; // "WARC/"
}

type WarcRec = Awaited<ReturnType<WARCParser['parse']>> & object;

/**
 * Only HTTP responses with an HTML content type become documents; other records (warcinfo, request) are skipped
 * silently.
 */
async function toRaw(rec: WarcRec, id: string, maxBytes: number): Promise<ReadItem | null> {
  if (rec.warcType !== 'response' && rec.warcType !== 'resource' && rec.warcType !== 'conversion') return null;
  const url = rec.warcTargetURI ?? undefined;
  const ct = rec.httpHeaders?.headers.get('content-type') ?? rec.warcContentType ?? '';
  const len = Number(rec.warcHeaders.headers.get('content-length') ?? 0);
  if (len > maxBytes) return { error: 'too_large', id, detail: `${len} bytes` };
  if (rec.warcType === 'conversion' || /text\/plain/i.test(ct)) {
    const body = await rec.readFully(false);
    return { id, url, kind: 'text', body, contentType: ct };
  }
  if (ct && !/html|xml/i.test(ct)) return { error: 'not_html', id, detail: ct };
  const body = await rec.readFully(false);
  if (body.length > maxBytes) return { error: 'too_large', id, detail: `${body.length} bytes` };
  return { id, url, kind: 'html', body, contentType: ct };
}

/**
 * Uncompressed WARC: records are framed by their WARC header's Content-Length and parsed one at a time with warcio.
 * A malformed header costs that record: the reader resynchronises on the next line starting with "WARC/1.".
 */
export async function* readWarc(file: string, opts: ReadOptions = {}): AsyncGenerator<ReadItem> {
  const maxBytes = opts.maxRecordBytes ?? DEFAULT_MAX;
  const base = path.basename(file);
  const win = yield* openOrFail(file, opts);
  if (!win) return;
  const { size, read, close } = win;
  const resync = (from: number): number => {
    const chunk = 1 << 16;
    for (let at = from; at < size; at += chunk - 8) {
      const i = read(at, chunk).indexOf('\nWARC/1.');
      if (i >= 0) return at + i + 1;
    }
    return size;
  };
  let pos = 0;
  let index = 0;
  let resyncing = false;
  try {
    while (pos < size) {
      // skip blank lines between records
      const head = read(pos, 1 << 16);
      let skip = 0;
      while (skip < head.length && (head[skip] === 0x0d || head[skip] === 0x0a)) skip++;
      if (skip === head.length) break;
      pos += skip;
      const h = skip ? head.subarray(skip) : head;
      const end = h.indexOf('\r\n\r\n');
      const text = h.subarray(0, end < 0 ? Math.min(h.length, 200) : end).toString('latin1');
      const len = /\r\ncontent-length:\s*(\d+)/i.exec(text);
      const i = index;
      if (!text.startsWith('WARC/') || end < 0 || !len) {
        if (!resyncing) {
          index++;
          const detail = `no valid WARC header at byte ${pos}`;
          if (!opts.select || opts.select(i, 0)) yield { error: 'malformed_warc_header', id: `${base}#${i}`, detail };
        }
        resyncing = true;
        pos = resync(pos + 1);
        continue;
      }
      resyncing = false;
      index++;
      const total = end + 4 + Number(len[1]);
      const selected = !opts.select || opts.select(i, total);
      if (selected && Number(len[1]) > maxBytes) {
        yield { error: 'too_large', id: `${base}#${i}`, detail: `${len[1]} bytes` };
      } else if (selected) {
        if (pos + total > size) {
          const detail = `record at byte ${pos} needs ${total} bytes, file ends first`;
          yield { error: 'truncated_record', id: `${base}#${i}`, detail };
        } else yield* parseWarcBytes(read(pos, total + 4), base, () => String(i), maxBytes);
      }
      pos += total;
    }
  } finally {
    close();
  }
}

/** The reason a gzip stream failed, from zlib's error. */
function gzipReason(e: NodeJS.ErrnoException): string {
  if (e.code === 'Z_BUF_ERROR') return 'truncated_gzip_member';
  if (e.code === 'Z_DATA_ERROR' && /header/i.test(e.message)) return 'bad_gzip_header';
  if (e.code?.startsWith('Z_')) return 'corrupt_gzip_member';
  return 'unreadable_file';
}

/** Opens `file` for positioned reads; a file that cannot be opened is yielded as a read error and gives null. */
function* openOrFail(file: string, opts: ReadOptions): Generator<ReadError, ReturnType<typeof openWindow> | null> {
  try {
    return openWindow(file);
  } catch (e) {
    yield* fileFailure(file, 0, 'unreadable_file', `cannot open it (${(e as Error).message})`, opts);
    return null;
  }
}

/**
 * A file that stopped being readable at item `position` (nothing before it is lost): one error item, given to the
 * unit that `select` picks for that position, like any other item.
 */
function fileFailure(file: string, position: number, reason: string, what: string, opts: ReadOptions): ReadError[] {
  if (opts.select && !opts.select(position, 0)) return [];
  const detail = `${file}: ${what}; ${position === 0 ? 'the file' : 'the rest of the file'} is skipped`;
  return [{ error: reason, id: `${path.basename(file)}#${position}`, detail, warn: true }];
}

/**
 * Lines of a text file, gunzipped when the name ends in .gz; a read or decompression error ends the lines and is
 * returned as `failure` (with the lines read before it).
 */
async function* readLines(file: string, failure: { error?: NodeJS.ErrnoException }): AsyncGenerator<string> {
  // An empty file has no lines (gunzip would call it truncated; the plan already warned that it is empty).
  try {
    if (fs.statSync(file).size === 0) return;
  } catch (e) {
    failure.error = e as NodeJS.ErrnoException;
    return;
  }
  const src = fs.createReadStream(file);
  // pipeline() passes an error of the file stream on to gunzip, and so to readline.
  const input = file.toLowerCase().endsWith('.gz') ? stream.pipeline(src, zlib.createGunzip(), () => {}) : src;
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } catch (e) {
    failure.error = e as NodeJS.ErrnoException;
  } finally {
    rl.close();
    src.destroy();
  }
}

/** JSONL: one object per line with a `text` field (and optional `id`, `url`). Positions are line numbers − 1. */
export async function* readJsonl(file: string, opts: ReadOptions = {}): AsyncGenerator<ReadItem> {
  const base = path.basename(file);
  const failure: { error?: NodeJS.ErrnoException } = {};
  let n = 0;
  for await (const line of readLines(file, failure)) {
    const i = n++;
    if (!line.trim() || (opts.select && !opts.select(i, Buffer.byteLength(line)))) continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      yield { error: 'bad_json', id: `${base}#${i}`, detail: `line ${i + 1}: ${(e as Error).message}` };
      continue;
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) {
      yield { error: 'bad_json', id: `${base}#${i}`, detail: `line ${i + 1}: not a JSON object` };
      continue;
    }
    const { text, id, url, ...rest } = o as Record<string, unknown>;
    if (typeof text !== 'string') {
      yield { error: 'no_text_field', id: `${base}#${i}`, detail: `line ${i + 1}: no string "text" field` };
      continue;
    }
    const docId = typeof id === 'string' || typeof id === 'number' ? String(id) : `${base}#${i}`;
    yield { id: docId, url: typeof url === 'string' ? url : undefined, kind: 'text', body: text, meta: rest };
  }
  if (failure.error) {
    const reason = gzipReason(failure.error);
    yield* fileFailure(file, n, reason, `${failure.error.message} at line ${n + 1}`, opts);
  }
}

/** Plain text: documents separated by a line holding only `<|endoftext|>` or by form feeds; else the whole file. */
export async function* readText(file: string, opts: ReadOptions = {}): AsyncGenerator<ReadItem> {
  const base = path.basename(file);
  const failure: { error?: NodeJS.ErrnoException } = {};
  let cur: string[] = [];
  let n = 0;
  let line0 = 0;
  const emit = (): ReadItem | null => {
    if (!cur.join('').trim()) return null;
    const i = n++;
    const body = cur.join('\n');
    return opts.select && !opts.select(i, Buffer.byteLength(body)) ? null : { id: `${base}#${i}`, kind: 'text', body };
  };
  for await (const line of readLines(file, failure)) {
    line0++;
    if (line.trim() === '<|endoftext|>' || line === '\f') {
      const d = emit();
      if (d) yield d;
      cur = [];
    } else cur.push(line);
  }
  // After a read error the last document may be cut short: it is dropped with the error.
  if (failure.error) {
    yield* fileFailure(file, n, 'unreadable_file', `${failure.error.message} at line ${line0 + 1}`, opts);
    return;
  }
  const d = emit();
  if (d) yield d;
}

/** FineWeb-style parquet (columns text, id, url, ...), one row group at a time. A damaged row group is skipped. */
export async function* readParquet(file: string, opts: ReadOptions = {}): AsyncGenerator<ReadItem> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } = await import('hyparquet');
  const base = path.basename(file);
  let buf: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    buf = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buf);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ? 'unreadable_file' : 'bad_parquet';
    yield* fileFailure(file, 0, reason, `not a readable parquet file (${(e as Error).message})`, opts);
    return;
  }
  const names = new Set(metadata.schema.map((s) => s.name));
  const columns = ['text', 'id', 'url', 'language', 'language_score', 'dump'].filter((c) => names.has(c));
  let start = 0;
  for (const [g, rg] of metadata.row_groups.entries()) {
    const end = start + Number(rg.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: buf, metadata, rowStart: start, rowEnd: end, columns });
    } catch (e) {
      // Rows of a group that cannot be decoded: one error for the group, at its first row's position.
      if (!opts.select || opts.select(start, 0)) {
        const detail = `${file}: row group ${g} (rows ${start}..${end - 1}): ${(e as Error).message}; skipped`;
        yield { error: 'bad_parquet', id: `${base}#${start}`, detail, warn: true };
      }
      start = end;
      continue;
    }
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (opts.select && !opts.select(start + i, typeof r.text === 'string' ? Buffer.byteLength(r.text) : 0)) continue;
      const id = r.id != null ? String(r.id) : `${base}#${start + i}`;
      if (typeof r.text !== 'string') { yield { error: 'no_text_field', id }; continue; }
      const { text, id: _id, url, ...rest } = r;
      yield { id, url: typeof url === 'string' ? url : undefined, kind: 'text', body: text, meta: rest };
    }
    start = end;
  }
}

// Token shards in llm.c's format, and their reader (used by the GPT-2 trainer).
//
// Layout: a 1024-byte header of 256 little-endian int32, then the tokens.
//   header[0] = magic, header[1] = version, header[2] = number of tokens, the rest 0, except (ours, since llm.c's
//   readers look at header[0..2] only) header[3] = MAX_ID_TAG and header[4] = the largest token id in the shard, so
//   a reader can check the shard against a model's vocabulary without reading the tokens. Shards without the tag
//   are scanned once; the result is remembered in SHARD_MAX_IDS_FILE beside them (when the folder is writable).
//   magic 20240520, version 1: uint16 tokens (llm.c's GPT-2 shards; vocabularies of ≤ 65,536 tokens).
//   magic 20240520, version 2: uint32 tokens (wgpt's own, for larger vocabularies such as cl100k/o200k).
//   magic 20240801, version 7: uint32 tokens (llm.c's Llama-3 shards; read, never written).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WgptError } from '@wgpt/base';

export const SHARD_MAGIC = 20240520;
export const SHARD_VERSION_U16 = 1;
export const SHARD_VERSION_U32 = 2;
export const LLAMA3_MAGIC = 20240801;
export const LLAMA3_VERSION = 7;
export const HEADER_INTS = 256;
export const HEADER_BYTES = HEADER_INTS * 4;
/** header[3] holds this when header[4] is the largest token id (0x57475054, "WGPT"). */
export const MAX_ID_TAG = 0x57475054;
/** Per folder: the largest token id of shards written without it in their header (name, size, mtime, max id). */
export const SHARD_MAX_IDS_FILE = '.wgpt-shard-max-ids.json';

export class ShardFormatError extends WgptError {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'ShardFormatError';
  }
}

export interface ShardHeader {
  magic: number;
  version: number;
  tokens: number;
  bytesPerToken: 2 | 4;
}

/**
 * Reads and validates a shard header against the file size. Throws ShardFormatError naming the file and the
 * problem.
 */
export function readShardHeader(file: string): ShardHeader {
  return readHeader(file).header;
}

function readHeader(file: string): { header: ShardHeader; ints: Int32Array; size: number; mtimeMs: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new ShardFormatError(file, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const { size, mtimeMs } = fs.fstatSync(fd);
    if (size < HEADER_BYTES)
      throw new ShardFormatError(file, `file is ${size} bytes, shorter than the ${HEADER_BYTES}-byte header`);
    const b = Buffer.alloc(HEADER_BYTES);
    fs.readSync(fd, b, 0, HEADER_BYTES, 0);
    const magic = b.readInt32LE(0), version = b.readInt32LE(4), tokens = b.readInt32LE(8);
    let bytesPerToken: 2 | 4;
    if (magic === SHARD_MAGIC) {
      if (version === SHARD_VERSION_U16) bytesPerToken = 2;
      else if (version === SHARD_VERSION_U32) bytesPerToken = 4;
      else
        throw new ShardFormatError(
          file,
          `unsupported version ${version} ` +
            `(expected ${SHARD_VERSION_U16} for uint16 or ${SHARD_VERSION_U32} for uint32 tokens)`,
        );
    } else if (magic === LLAMA3_MAGIC) {
      if (version !== LLAMA3_VERSION)
        throw new ShardFormatError(
          file,
          `unsupported version ${version} for magic ${LLAMA3_MAGIC} (expected ${LLAMA3_VERSION})`,
        );
      bytesPerToken = 4;
    } else {
      throw new ShardFormatError(
        file,
        `bad magic number ${magic} in header[0] (expected ${SHARD_MAGIC}); not an llm.c token shard`,
      );
    }
    if (tokens < 0) throw new ShardFormatError(file, `negative token count ${tokens} in header[2]`);
    const expected = HEADER_BYTES + tokens * bytesPerToken;
    if (size !== expected) {
      throw new ShardFormatError(
        file,
        `header[2] says ${tokens} tokens (${expected} bytes with the header) ` +
          `but the file is ${size} bytes${size < expected ? ' (truncated?)' : ''}`,
      );
    }
    const ints = new Int32Array(b.buffer, b.byteOffset, HEADER_INTS).slice();
    return { header: { magic, version, tokens, bytesPerToken }, ints, size, mtimeMs };
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a whole shard's tokens (validated). */
export function readShard(file: string): Uint16Array | Uint32Array {
  const h = readShardHeader(file);
  const b = fs.readFileSync(file);
  const ab = b.buffer.slice(b.byteOffset + HEADER_BYTES, b.byteOffset + b.length);
  return h.bytesPerToken === 2 ? new Uint16Array(ab) : new Uint32Array(ab);
}

const maxIdMemo = new Map<string, { size: number; mtimeMs: number; maxTokenId: number }>();

/**
 * The largest token id in a shard (-1 when it has no tokens): from the header when the shard carries it, else
 * from one scan of the tokens, remembered in memory and in the folder's SHARD_MAX_IDS_FILE.
 */
export function shardMaxTokenId(file: string): number {
  const { header, ints, size, mtimeMs } = readHeader(file);
  if (ints[3] === MAX_ID_TAG) {
    const max = ints[4]!;
    if (max < -1 || (header.bytesPerToken === 2 && max > 0xffff)) {
      throw new ShardFormatError(file, `header[4] holds an impossible largest token id ${max}`);
    }
    return max;
  }
  const abs = path.resolve(file);
  const known = (e: { size: number; mtimeMs: number } | undefined) => e && e.size === size && e.mtimeMs === mtimeMs;
  const memo = maxIdMemo.get(abs);
  if (known(memo)) return memo!.maxTokenId;
  const manifestFile = path.join(path.dirname(abs), SHARD_MAX_IDS_FILE);
  let manifest: Record<string, { size: number; mtimeMs: number; maxTokenId: number }> = {};
  try {
    const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as unknown;
    if (typeof m === 'object' && m !== null && !Array.isArray(m)) manifest = m as typeof manifest;
  } catch {
    /* none yet, or unreadable: scan */
  }
  const entry = manifest[path.basename(abs)];
  if (known(entry) && Number.isInteger(entry!.maxTokenId)) {
    maxIdMemo.set(abs, entry!);
    return entry!.maxTokenId;
  }
  const maxTokenId = scanMaxTokenId(file, header);
  const rec = { size, mtimeMs, maxTokenId };
  maxIdMemo.set(abs, rec);
  manifest[path.basename(abs)] = rec;
  const tmp = `${manifestFile}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, JSON.stringify(manifest, null, 1) + '\n');
    fs.renameSync(tmp, manifestFile);
  } catch {
    fs.rmSync(tmp, { force: true }); // a read-only data folder: the scan is remembered for this process only
  }
  return maxTokenId;
}

function scanMaxTokenId(file: string, h: ShardHeader): number {
  const fd = fs.openSync(file, 'r');
  try {
    let max = -1;
    const perRead = 1 << 22; // tokens per read: a bounded buffer, whatever the shard's size
    const buf = Buffer.alloc(perRead * h.bytesPerToken);
    for (let done = 0; done < h.tokens; ) {
      const n = Math.min(perRead, h.tokens - done);
      const want = n * h.bytesPerToken;
      let got = 0;
      while (got < want) {
        const r = fs.readSync(fd, buf, got, want - got, HEADER_BYTES + done * h.bytesPerToken + got);
        if (r <= 0) throw new ShardFormatError(file, `unexpected end of file at token ${done + got / h.bytesPerToken}`);
        got += r;
      }
      const Ids = h.bytesPerToken === 2 ? Uint16Array : Uint32Array;
      const t = new Ids(buf.buffer, buf.byteOffset, n);
      for (let i = 0; i < n; i++) if (t[i]! > max) max = t[i]!;
      done += n;
    }
    return max;
  } finally {
    fs.closeSync(fd);
  }
}

export interface ShardInfo { file: string; split: string; tokens: number; docs: number }

export interface ShardWriterOptions {
  dir: string;
  /** File names: `<prefix>_<split>_<part>_<index>.bin`. */
  prefix: string;
  split: string;
  /** Part of the name that keeps tasks apart (e.g. the work unit), zero-padded. */
  part: number;
  nVocab: number;
  /** Tokens per shard (default 100M, llm.c's). A document may straddle two shards, as in llm.c. */
  shardTokens?: number;
}

/** Streams tokens into shards; each shard is written to a temp file and renamed into place when complete. */
export class ShardWriter {
  readonly bytesPerToken: 2 | 4;
  readonly shards: ShardInfo[] = [];
  private fd: number | null = null;
  private tmp = '';
  private count = 0;
  private docs = 0;
  private maxId = -1;
  private index = 0;
  private readonly shardTokens: number;
  constructor(readonly o: ShardWriterOptions) {
    this.bytesPerToken = o.nVocab <= 65536 ? 2 : 4;
    this.shardTokens = o.shardTokens ?? 100_000_000;
    // A shard holds at least one token (else a document would open empty shards for ever) and at most what the
    // header's int32 count can say.
    if (!Number.isSafeInteger(this.shardTokens) || this.shardTokens < 1 || this.shardTokens > 2 ** 31 - 1) {
      throw new WgptError(`shard size ${this.shardTokens} tokens: it must be an integer from 1 to ${2 ** 31 - 1}`);
    }
    fs.mkdirSync(o.dir, { recursive: true });
  }
  private fileName(i: number): string {
    return path.join(
      this.o.dir,
      `${this.o.prefix}_${this.o.split}_${String(this.o.part).padStart(5, '0')}_${String(i).padStart(4, '0')}.bin`,
    );
  }
  private open(): void {
    this.tmp = `${this.fileName(this.index)}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
    this.fd = fs.openSync(this.tmp, 'w');
    fs.writeSync(this.fd, Buffer.alloc(HEADER_BYTES));
    this.count = 0;
    this.docs = 0;
    this.maxId = -1;
  }
  /** Appends one document's tokens (the caller puts the end-of-text token first). */
  addDocument(tokens: ArrayLike<number>): void {
    let off = 0;
    let first = true;
    while (off < tokens.length) {
      if (this.fd === null) this.open();
      const n = Math.min(tokens.length - off, this.shardTokens - this.count);
      const arr = this.bytesPerToken === 2 ? new Uint16Array(n) : new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        const t = tokens[off + i];
        if (t < 0 || t >= this.o.nVocab || !Number.isInteger(t))
          throw new Error(`token ${t} out of range for vocabulary of ${this.o.nVocab}`);
        arr[i] = t;
        if (t > this.maxId) this.maxId = t;
      }
      fs.writeSync(this.fd!, new Uint8Array(arr.buffer));
      this.count += n;
      if (first) { this.docs++; first = false; }
      off += n;
      if (this.count === this.shardTokens) this.closeShard();
    }
  }
  private closeShard(): void {
    if (this.fd === null) return;
    const h = Buffer.alloc(HEADER_BYTES);
    h.writeInt32LE(SHARD_MAGIC, 0);
    h.writeInt32LE(this.bytesPerToken === 2 ? SHARD_VERSION_U16 : SHARD_VERSION_U32, 4);
    h.writeInt32LE(this.count, 8);
    h.writeInt32LE(MAX_ID_TAG, 12);
    h.writeInt32LE(this.maxId, 16);
    fs.writeSync(this.fd, h, 0, HEADER_BYTES, 0);
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = null;
    const final = this.fileName(this.index++);
    fs.renameSync(this.tmp, final);
    this.shards.push({ file: path.basename(final), split: this.o.split, tokens: this.count, docs: this.docs });
  }
  /** Closes the last shard; returns every shard written. */
  close(): ShardInfo[] {
    if (this.fd !== null && this.count > 0) this.closeShard();
    else if (this.fd !== null) { fs.closeSync(this.fd); fs.rmSync(this.tmp, { force: true }); this.fd = null; }
    return this.shards;
  }
  /** Removes the temp file of an unfinished shard. */
  abort(): void {
    if (this.fd !== null) { fs.closeSync(this.fd); fs.rmSync(this.tmp, { force: true }); this.fd = null; }
  }
}

/**
 * Sequential batches of B×T inputs and next-token targets over a list of shards (llm.c's DataLoader without
 * shuffling): the trainer's reader. Wraps around to the first shard at the end.
 */
export class TokenDataLoader {
  private shard = 0;
  private pos = 0;
  private tokens: Uint16Array | Uint32Array;
  constructor(readonly files: string[], readonly B: number, readonly T: number) {
    if (files.length === 0) throw new Error('TokenDataLoader: no shard files');
    for (const f of files) {
      const h = readShardHeader(f);
      if (h.tokens < B * T + 1)
        throw new ShardFormatError(f, `has ${h.tokens} tokens, fewer than one batch of B*T+1 = ${B * T + 1}`);
    }
    this.tokens = readShard(files[0]);
  }
  nextBatch(): { inputs: Int32Array; targets: Int32Array } {
    const n = this.B * this.T;
    if (this.pos + n + 1 > this.tokens.length) {
      this.shard = (this.shard + 1) % this.files.length;
      this.tokens = readShard(this.files[this.shard]);
      this.pos = 0;
    }
    const inputs = new Int32Array(n), targets = new Int32Array(n);
    for (let i = 0; i < n; i++) { inputs[i] = this.tokens[this.pos + i]; targets[i] = this.tokens[this.pos + i + 1]; }
    this.pos += n;
    return { inputs, targets };
  }
}

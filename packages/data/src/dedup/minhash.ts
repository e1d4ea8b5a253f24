// MinHash near-duplicate detection in the datatrove layout (FineWeb: word 5-grams, 14 buckets × 8 hashes):
//   1. signatures: per task, one sorted signature file per bucket (+ one for exact-text hashes);
//   2. buckets:    per bucket, merge every task's file; equal signatures give duplicate pairs;
//   3. clusters:   union-find over all pairs; every doc but the first (lowest task, index) of a cluster is removed,
//                  written as one sorted `<task>.remove` file per task;
//   4. filter:     each task drops the indices in its remove file (done by the pipeline's final step).
// Hashes are 32-bit: shingles hashed with FNV-1a, then 112 independent hash functions from a seeded
// murmur3 finaliser; a bucket matches when all 8 of its minima are equal.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WgptError } from '@wgpt/base';
import { writeAtomic } from '../outputs.ts';

export interface MinHashOptions {
  ngram?: number;
  buckets?: number;
  hashesPerBucket?: number;
  seed?: number;
}
export const MINHASH_DEFAULTS: Required<MinHashOptions> = { ngram: 5, buckets: 14, hashesPerBucket: 8, seed: 1 };

/** Lowercase, punctuation stripped, whitespace collapsed (as datatrove's simplify_text does). */
export function normalizeForDedup(text: string): string {
  return text.toLowerCase().replace(/[\p{P}\p{S}]+/gu, ' ').replace(/\s+/g, ' ').trim();
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function mix(x: number, seed: number): number {
  let h = (x ^ seed) >>> 0;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class MinHasher {
  readonly o: Required<MinHashOptions>;
  readonly nHashes: number;
  private readonly seeds: Uint32Array;
  constructor(opts: MinHashOptions = {}) {
    this.o = { ...MINHASH_DEFAULTS, ...opts };
    if (this.o.hashesPerBucket < 1 || this.o.hashesPerBucket > 8) {
      throw new WgptError(`dedup.hashesPerBucket must be 1..8 (signature files hold 8 words per bucket), ` +
        `got ${this.o.hashesPerBucket}`);
    }
    this.nHashes = this.o.buckets * this.o.hashesPerBucket;
    this.seeds = new Uint32Array(this.nHashes);
    let s = (this.o.seed * 0x9e3779b9) >>> 0 || 1;
    for (let i = 0; i < this.nHashes; i++) { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; this.seeds[i] = s >>> 0; }
  }
  /** Distinct shingle hashes of the word n-grams of the normalised text (a short text is one shingle). */
  shingles(text: string): Uint32Array {
    const words = normalizeForDedup(text).split(' ').filter(Boolean);
    const n = this.o.ngram;
    const set = new Set<number>();
    if (words.length <= n) set.add(fnv1a(words.join(' ')));
    else for (let i = 0; i + n <= words.length; i++) set.add(fnv1a(words.slice(i, i + n).join(' ')));
    return Uint32Array.from(set);
  }
  /** buckets × hashesPerBucket minima. */
  signature(text: string): Uint32Array {
    const sh = this.shingles(text);
    const sig = new Uint32Array(this.nHashes).fill(0xffffffff);
    for (let k = 0; k < this.nHashes; k++) {
      const seed = this.seeds[k];
      let m = 0xffffffff;
      for (let i = 0; i < sh.length; i++) { const v = mix(sh[i], seed); if (v < m) m = v; }
      sig[k] = m;
    }
    return sig;
  }
}

/** Estimated Jaccard similarity of two signatures (fraction of equal minima). */
export function estimateJaccard(a: Uint32Array, b: Uint32Array): number {
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
  return eq / a.length;
}

/** Exact-duplicate key: first 8 words of the SHA-256 of the whitespace-normalised text. */
export function exactKey(text: string): Uint32Array {
  const d = crypto.createHash('sha256').update(text.replace(/\s+/g, ' ').trim()).digest();
  const out = new Uint32Array(8);
  for (let i = 0; i < 8; i++) out[i] = d.readUInt32BE(i * 4);
  return out;
}

// ---- signature files ----
// A record: 8 × uint32 key, uint32 task, uint32 doc index (little-endian), 40 bytes; records sorted by key.
const KEY = 8;
const REC = (KEY + 2) * 4;
export const EXACT_BUCKET = 'exact';

export interface SigEntry { key: Uint32Array; task: number; doc: number }

function cmpKey(a: Uint32Array, ao: number, b: Uint32Array, bo: number): number {
  for (let i = 0; i < KEY; i++) { const d = a[ao + i] - b[bo + i]; if (d !== 0) return d; }
  return 0;
}


/** A growable Uint32Array. */
class U32Vec {
  data = new Uint32Array(1024);
  length = 0;
  push(x: number): void {
    if (this.length === this.data.length) {
      const d = new Uint32Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = x;
  }
  view(): Uint32Array { return this.data.subarray(0, this.length); }
}

/** Collects one task's signatures (4 bytes per number) and writes them sorted, one file per bucket, atomically. */
export class SignatureWriter {
  private readonly rows: U32Vec[];
  constructor(readonly dir: string, readonly task: number, readonly hasher: MinHasher) {
    this.rows = Array.from({ length: hasher.o.buckets + 1 }, () => new U32Vec());
  }
  add(docIndex: number, text: string): void {
    this.addSignature(docIndex, this.hasher.signature(text), exactKey(text));
  }
  /** Adds a signature computed elsewhere (another thread) with this writer's hasher settings. */
  addSignature(docIndex: number, sig: Uint32Array, exact: Uint32Array): void {
    if (sig.length !== this.hasher.nHashes) {
      throw new Error(`signature of ${sig.length} hashes, expected ${this.hasher.nHashes}`);
    }
    const h = this.hasher.o.hashesPerBucket;
    for (let b = 0; b < this.hasher.o.buckets; b++) {
      const r = this.rows[b];
      for (let i = 0; i < KEY; i++) r.push(i < h ? sig[b * h + i] : 0);
      r.push(this.task);
      r.push(docIndex);
    }
    const e = this.rows[this.hasher.o.buckets];
    for (const x of exact) e.push(x);
    e.push(this.task);
    e.push(docIndex);
  }
  /** Files: <dir>/bucket_<b>/<task>.sig and <dir>/bucket_exact/<task>.sig. */
  finish(): void {
    for (let b = 0; b < this.rows.length; b++) {
      const name = b === this.hasher.o.buckets ? EXACT_BUCKET : String(b).padStart(2, '0');
      const file = path.join(this.dir, `bucket_${name}`, `${String(this.task).padStart(5, '0')}.sig`);
      writeAtomic(file, sortRecords(this.rows[b].view()));
    }
  }
}

function sortRecords(flat: Uint32Array): Uint8Array {
  const n = flat.length / (KEY + 2);
  const order = Array.from({ length: n }, (_, i) => i);
  const at = (i: number) => i * (KEY + 2);
  order.sort((x, y) => cmpKey(flat, at(x), flat, at(y)) || flat[at(x) + KEY] - flat[at(y) + KEY] ||
    flat[at(x) + KEY + 1] - flat[at(y) + KEY + 1]);
  const out = new Uint32Array(flat.length);
  order.forEach((src, dst) => out.set(flat.subarray(src * (KEY + 2), (src + 1) * (KEY + 2)), dst * (KEY + 2)));
  return new Uint8Array(out.buffer);
}

/** Reads one sorted signature file a chunk at a time. */
class SigCursor {
  private buf = new Uint32Array(0);
  private i = 0;
  private off = 0;
  private readonly fd: number;
  private readonly size: number;
  constructor(readonly file: string, private readonly chunkRecords = 4096) {
    this.fd = fs.openSync(file, 'r');
    this.size = fs.fstatSync(this.fd).size;
    if (this.size % REC !== 0) {
      this.close();
      throw new WgptError(`${file}: size ${this.size} is not a multiple of ${REC}-byte records (damaged output?)`);
    }
    this.fill();
  }
  private fill(): void {
    const n = Math.min(this.chunkRecords * REC, this.size - this.off);
    const b = Buffer.alloc(n);
    let got = 0;
    while (got < n) got += fs.readSync(this.fd, b, got, n - got, this.off + got);
    this.off += n;
    this.buf = new Uint32Array(b.buffer, b.byteOffset, n / 4);
    this.i = 0;
  }
  get done(): boolean { return this.i >= this.buf.length; }
  /** The current record's words are buf[at .. at+10). */
  get arr(): Uint32Array { return this.buf; }
  get at(): number { return this.i; }
  next(): void {
    this.i += KEY + 2;
    if (this.i >= this.buf.length && this.off < this.size) this.fill();
  }
  private closed = false;
  close(): void { if (!this.closed) { this.closed = true; fs.closeSync(this.fd); } }
}

function cmpRec(a: SigCursor, b: SigCursor): number {
  const x = a.arr, y = b.arr, i = a.at, j = b.at;
  for (let k = 0; k < KEY + 2; k++) { const d = x[i + k] - y[j + k]; if (d !== 0) return d; }
  return 0;
}

/**
 * K-way merge of every task's sorted file of one bucket (memory: one chunk per file); equal keys give duplicate
 * pairs [first task, first doc, other task, other doc], the first being the smallest (task, doc) with that key.
 */
export function findBucketDuplicates(bucketDir: string, onPair?: (p: [number, number, number, number]) => void,
  chunkRecords = 4096): Array<[number, number, number, number]> {
  const files = fs.readdirSync(bucketDir).filter((f) => f.endsWith('.sig')).sort();
  const cursors: SigCursor[] = [];
  try {
    for (const f of files) { const c = new SigCursor(path.join(bucketDir, f), chunkRecords); cursors.push(c); }
    const live = cursors.filter((c) => !c.done);
    // binary heap of cursors
    const heap = live;
    const down = (i: number) => {
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < heap.length && cmpRec(heap[l], heap[m]) < 0) m = l;
        if (r < heap.length && cmpRec(heap[r], heap[m]) < 0) m = r;
        if (m === i) return;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    };
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
    const pairs: Array<[number, number, number, number]> = [];
    const firstKey = new Uint32Array(KEY);
    let firstTask = -1, firstDoc = -1;
    while (heap.length) {
      const c = heap[0];
      const a = c.arr, at = c.at;
      let same = firstTask >= 0;
      for (let k = 0; k < KEY && same; k++) if (a[at + k] !== firstKey[k]) same = false;
      const task = a[at + KEY], doc = a[at + KEY + 1];
      if (same) {
        const p: [number, number, number, number] = [firstTask, firstDoc, task, doc];
        if (onPair) onPair(p); else pairs.push(p);
      } else {
        for (let k = 0; k < KEY; k++) firstKey[k] = a[at + k];
        firstTask = task; firstDoc = doc;
      }
      c.next();
      if (c.done) { c.close(); heap[0] = heap[heap.length - 1]; heap.pop(); }
      if (heap.length) down(0);
    }
    return pairs;
  } finally {
    for (const c of cursors) c.close();
  }
}

/**
 * Merges one bucket and streams its pairs (uint32 quadruples) to `outFile`, written atomically. Returns the pair
 * count.
 */
export function writeBucketPairs(bucketDir: string, outFile: string): number {
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const tmp = `${outFile}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const fd = fs.openSync(tmp, 'w');
  const buf = new Uint32Array(4 * 4096);
  let n = 0, total = 0;
  const flush = () => { if (n) fs.writeSync(fd, new Uint8Array(buf.buffer, 0, n * 16)); n = 0; };
  try {
    findBucketDuplicates(bucketDir, (p) => {
      buf.set(p, n * 4);
      total++;
      if (++n === 4096) flush();
    });
    flush();
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, outFile);
  return total;
}

/** Writes `<outDir>/<bucket>.pairs` for every bucket; skips buckets already done. */
export function runBucketStep(sigDir: string, outDir: string): { buckets: number; pairs: number } {
  let total = 0;
  const buckets = fs.readdirSync(sigDir).filter((d) => d.startsWith('bucket_')).sort();
  for (const b of buckets) {
    const out = path.join(outDir, `${b}.pairs`);
    if (fs.existsSync(out)) { total += fs.statSync(out).size / 16; continue; }
    total += writeBucketPairs(path.join(sigDir, b), out);
  }
  return { buckets: buckets.length, pairs: total };
}

class UnionFind {
  private readonly parent = new Map<number, number>();
  find(x: number): number {
    let r = x;
    for (let p = this.parent.get(r); p !== undefined && p !== r; p = this.parent.get(r)) r = p;
    // path compression
    let c = x;
    while (c !== r) { const p = this.parent.get(c)!; this.parent.set(c, r); c = p; }
    if (!this.parent.has(r)) this.parent.set(r, r);
    return r;
  }
  /** The smaller id becomes the root, so the kept document is the first in (task, index) order. */
  union(a: number, b: number): void {
    const ra = this.find(a), rb = this.find(b);
    if (ra === rb) return;
    if (ra < rb) this.parent.set(rb, ra); else this.parent.set(ra, rb);
  }
  members(): number[] { return [...this.parent.keys()]; }
}

const ID = (task: number, doc: number) => task * 2 ** 32 + doc;

export interface RemoveEntry { doc: number; reason: 'exact_duplicate' | 'minhash_duplicate' }

/**
 * Union-find over every pair file; writes `<outDir>/<task>.remove` (JSON: sorted doc indices with reasons)
 * for each task in 0..taskCount-1, and returns cluster statistics.
 */
export function runClusterStep(pairsDir: string, outDir: string, taskCount: number):
  { clusters: number; removed: number; exact: number } {
  const all = new UnionFind();
  const exact = new UnionFind();
  for (const f of fs.readdirSync(pairsDir).filter((x) => x.endsWith('.pairs')).sort()) {
    const b = fs.readFileSync(path.join(pairsDir, f));
    const q = new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
    const isExact = f === `bucket_${EXACT_BUCKET}.pairs`;
    for (let i = 0; i < q.length; i += 4) {
      const a = ID(q[i], q[i + 1]), c = ID(q[i + 2], q[i + 3]);
      all.union(a, c);
      if (isExact) exact.union(a, c);
    }
  }
  const perTask: RemoveEntry[][] = Array.from({ length: taskCount }, () => []);
  const roots = new Set<number>();
  let removed = 0, nExact = 0;
  for (const id of all.members()) {
    const r = all.find(id);
    roots.add(r);
    if (r === id) continue;
    const task = Math.floor(id / 2 ** 32), doc = id % 2 ** 32;
    const isExact = exact.find(id) !== id;
    if (task >= taskCount) {
      throw new WgptError(`${pairsDir}: a pair names unit ${task} but there are ${taskCount} units (damaged output?)`);
    }
    perTask[task].push({ doc, reason: isExact ? 'exact_duplicate' : 'minhash_duplicate' });
    removed++;
    if (isExact) nExact++;
  }
  for (let t = 0; t < taskCount; t++) {
    perTask[t].sort((a, b) => a.doc - b.doc);
    writeAtomic(path.join(outDir, `${String(t).padStart(5, '0')}.remove`), JSON.stringify(perTask[t]));
  }
  return { clusters: roots.size, removed, exact: nExact };
}

export function readRemoveList(outDir: string, task: number): Map<number, RemoveEntry['reason']> {
  const f = path.join(outDir, `${String(task).padStart(5, '0')}.remove`);
  if (!fs.existsSync(f)) throw new WgptError(`${f}: missing; run the dedup-cluster step first`);
  const entries = JSON.parse(fs.readFileSync(f, 'utf8')) as RemoveEntry[];
  return new Map(entries.map((e) => [e.doc, e.reason]));
}

// Byte-level BPE over a rank table (rank = token id), with tiktoken's merge rule: repeatedly merge the
// adjacent pair whose concatenated bytes have the lowest rank (leftmost first on ties) until none is a token.
// Adjacent parts are always tokens, so the rank of a pair is memoized in a hash table keyed on
// (left id, right id): the byte-string map is consulted once per distinct pair.

import { latin1Keys, latin1Of } from './latin1.ts';

const NONE = 0x7fffffff;

export class BpeCore {
  /** Bytes of each mergeable token, index = rank. */
  readonly tokens: readonly Uint8Array[];
  /** The token's bytes as a latin1 string (one char per byte). */
  private readonly latin1: string[];
  private readonly byBytes: Map<string, number>;
  private readonly byteRank = new Int32Array(256);
  // Pair memo: open addressing, keys packed as two int32 arrays, value = merged rank or NONE.
  private pairA: Int32Array;
  private pairB: Int32Array;
  private pairV: Int32Array;
  private pairCount = 0;
  // Chunk cache, keyed on the chunk's UTF-16 units so that no substring is made on a hit. Open addressing:
  // per slot the key's hash, length (0 = empty), start in keyPool, and value: a token id (>= 0), or ~p where
  // idPool[p] is the count and idPool[p+1..] the ids. When a pool or the table fills up, it starts over.
  private readonly cacheBits: number;
  private cHash: Int32Array;
  private cLen: Int32Array;
  private cKey: Int32Array;
  private cVal: Int32Array;
  private cCount = 0;
  private keyPool: Uint16Array;
  private keyUsed = 0;
  private idPool: Int32Array;
  private idUsed = 0;
  // Scratch for the UTF-8 bytes of one chunk.
  private buf = new Uint8Array(256);
  private ids = new Int32Array(256);
  private ranks = new Int32Array(256);

  constructor(tokens: readonly Uint8Array[], opts: { cacheBits?: number } = {}) {
    this.tokens = tokens;
    this.cacheBits = opts.cacheBits ?? 18;
    const slots = 1 << this.cacheBits;
    this.cHash = new Int32Array(slots);
    this.cLen = new Int32Array(slots);
    this.cKey = new Int32Array(slots);
    this.cVal = new Int32Array(slots);
    this.keyPool = new Uint16Array(slots * 8);
    this.idPool = new Int32Array(slots * 2);
    this.byteRank.fill(-1);
    const known = latin1Keys.get(tokens);
    if (known) {
      // Parsed from a rank file: keys and index were built (and checked for duplicates) while parsing.
      this.latin1 = known.keys;
      this.byBytes = known.index;
      for (let r = 0; r < tokens.length; r++) if (tokens[r].length === 1) this.byteRank[tokens[r][0]] = r;
    } else {
      this.latin1 = new Array(tokens.length);
      this.byBytes = new Map();
      for (let r = 0; r < tokens.length; r++) {
        const t = tokens[r];
        const s = latin1Of(t, 0, t.length);
        this.latin1[r] = s;
        if (this.byBytes.has(s))
          throw new Error(`duplicate token: ranks ${this.byBytes.get(s)} and ${r} have the same bytes`);
        this.byBytes.set(s, r);
        if (t.length === 1) this.byteRank[t[0]] = r;
      }
    }
    for (let b = 0; b < 256; b++) {
      if (this.byteRank[b] < 0) throw new Error(`rank table has no token for the single byte 0x${b.toString(16)}`);
    }
    const cap = 1 << 16;
    this.pairA = new Int32Array(cap).fill(-1);
    this.pairB = new Int32Array(cap);
    this.pairV = new Int32Array(cap);
  }

  /** Rank of the byte string, or undefined. */
  rankOf(bytes: Uint8Array): number | undefined {
    return this.byBytes.get(latin1Of(bytes, 0, bytes.length));
  }

  /** Merged rank of two adjacent tokens, or NONE. */
  private pair(a: number, b: number): number {
    const mask = this.pairA.length - 1;
    let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77)) >>> 0;
    h = (h ^ (h >>> 15)) & mask;
    const pa = this.pairA;
    for (;;) {
      const k = pa[h];
      if (k === a && this.pairB[h] === b) return this.pairV[h];
      if (k === -1) break;
      h = (h + 1) & mask;
    }
    const r = this.byBytes.get(this.latin1[a] + this.latin1[b]);
    const v = r === undefined ? NONE : r;
    if ((this.pairCount + 1) * 2 > pa.length) {
      this.growPairs();
      return this.insertPair(a, b, v);
    }
    pa[h] = a;
    this.pairB[h] = b;
    this.pairV[h] = v;
    this.pairCount++;
    return v;
  }

  private insertPair(a: number, b: number, v: number): number {
    const mask = this.pairA.length - 1;
    let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77)) >>> 0;
    h = (h ^ (h >>> 15)) & mask;
    while (this.pairA[h] !== -1) h = (h + 1) & mask;
    this.pairA[h] = a;
    this.pairB[h] = b;
    this.pairV[h] = v;
    this.pairCount++;
    return v;
  }

  private growPairs(): void {
    const oa = this.pairA;
    const ob = this.pairB;
    const ov = this.pairV;
    // Cap memory: past 8M slots, start over instead of growing.
    const cap = oa.length >= 1 << 23 ? 1 << 16 : oa.length * 2;
    this.pairA = new Int32Array(cap).fill(-1);
    this.pairB = new Int32Array(cap);
    this.pairV = new Int32Array(cap);
    this.pairCount = 0;
    if (cap > oa.length) for (let i = 0; i < oa.length; i++) if (oa[i] !== -1) this.insertPair(oa[i], ob[i], ov[i]);
  }

  /** Longest chunk (in UTF-16 units) that is cached. */
  static readonly MAX_CACHED = 64;

  /**
   * Append the tokens of the chunk text[start, end) to `out`. Lone surrogates U+DC80..U+DCFF in the text
   * stand for raw bytes 0x80..0xFF (how encodeBytes carries invalid UTF-8).
   */
  encodeRange(text: string, start: number, end: number, out: number[]): void {
    const len = end - start;
    if (len > BpeCore.MAX_CACHED) {
      this.bpe(this.toBytes(text, start, end), out);
      return;
    }
    let h = 0x811c9dc5 ^ len;
    for (let k = start; k < end; k++) h = Math.imul(h ^ text.charCodeAt(k), 0x01000193);
    h ^= h >>> 15;
    const mask = this.cLen.length - 1;
    const cLen = this.cLen;
    const pool = this.keyPool;
    let slot = h & mask;
    for (;;) {
      const kl = cLen[slot];
      if (kl === 0) break;
      if (kl === len && this.cHash[slot] === h) {
        const ks = this.cKey[slot] - start;
        let k = start;
        while (k < end && pool[ks + k] === text.charCodeAt(k)) k++;
        if (k === end) {
          const v = this.cVal[slot];
          if (v >= 0) out.push(v);
          else {
            const ids = this.idPool;
            const p = ~v;
            const e = p + 1 + ids[p];
            for (let q = p + 1; q < e; q++) out.push(ids[q]);
          }
          return;
        }
      }
      slot = (slot + 1) & mask;
    }
    const before = out.length;
    this.bpe(this.toBytes(text, start, end), out);
    const nIds = out.length - before;
    // Insert (start over when the table is half full or a pool has no room).
    const idNeed = nIds > 1 ? nIds + 1 : 0;
    if (len > pool.length || idNeed > this.idPool.length) return; // never fits (only with a tiny cache)
    if (
      (this.cCount + 1) * 2 > cLen.length ||
      this.keyUsed + len > pool.length ||
      this.idUsed + idNeed > this.idPool.length
    ) {
      this.clearCache();
      slot = h & mask;
    }
    const ks = this.keyUsed;
    for (let k = 0; k < len; k++) pool[ks + k] = text.charCodeAt(start + k);
    this.keyUsed += len;
    this.cHash[slot] = h;
    this.cLen[slot] = len;
    this.cKey[slot] = ks;
    if (nIds === 1) this.cVal[slot] = out[before];
    else {
      const p = this.idUsed;
      const ids = this.idPool;
      ids[p] = nIds;
      for (let q = 0; q < nIds; q++) ids[p + 1 + q] = out[before + q];
      this.idUsed += nIds + 1;
      this.cVal[slot] = ~p;
    }
    this.cCount++;
  }

  /** UTF-8 bytes of s[from, to) into this.buf (escaped raw bytes restored); returns the count. */
  private toBytes(s: string, from: number, to: number): number {
    const len = to;
    if (this.buf.length < (to - from) * 3) this.buf = new Uint8Array((to - from) * 3 + 16);
    const buf = this.buf;
    let n = 0;
    for (let i = from; i < len; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) buf[n++] = c;
      else if (c < 0x800) {
        buf[n++] = 0xc0 | (c >> 6);
        buf[n++] = 0x80 | (c & 63);
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          buf[n++] = 0xf0 | (c >> 18);
          buf[n++] = 0x80 | ((c >> 12) & 63);
          buf[n++] = 0x80 | ((c >> 6) & 63);
          buf[n++] = 0x80 | (c & 63);
        } else if (c >= 0xdc80 && c <= 0xdcff) {
          buf[n++] = c - 0xdc00; // an escaped raw byte
        } else {
          buf[n++] = 0xef; // any other lone surrogate: U+FFFD, as TextEncoder does
          buf[n++] = 0xbf;
          buf[n++] = 0xbd;
        }
      } else {
        buf[n++] = 0xe0 | (c >> 12);
        buf[n++] = 0x80 | ((c >> 6) & 63);
        buf[n++] = 0x80 | (c & 63);
      }
    }
    return n;
  }

  /** BPE over this.buf[0..n), appending ids to out. */
  private bpe(n: number, out: number[]): void {
    const buf = this.buf;
    if (n === 1) {
      out.push(this.byteRank[buf[0]]);
      return;
    }
    const whole = this.byBytes.get(latin1Of(buf, 0, n));
    if (whole !== undefined) {
      out.push(whole);
      return;
    }
    if (n > 128) {
      this.bpeLong(n, out);
      return;
    }
    if (this.ids.length < n) {
      this.ids = new Int32Array(n * 2);
      this.ranks = new Int32Array(n * 2);
    }
    const ids = this.ids;
    const ranks = this.ranks;
    for (let i = 0; i < n; i++) ids[i] = this.byteRank[buf[i]];
    let m = n;
    for (let i = 0; i < m - 1; i++) ranks[i] = this.pair(ids[i], ids[i + 1]);
    for (;;) {
      let best = NONE;
      let at = -1;
      for (let i = 0; i < m - 1; i++) {
        if (ranks[i] < best) {
          best = ranks[i];
          at = i;
        }
      }
      if (at < 0) break;
      ids[at] = best;
      for (let i = at + 1; i < m - 1; i++) {
        ids[i] = ids[i + 1];
        ranks[i] = ranks[i + 1];
      }
      m--;
      if (at < m - 1) ranks[at] = this.pair(best, ids[at + 1]);
      else ranks[at] = NONE;
      if (at > 0) ranks[at - 1] = this.pair(ids[at - 1], best);
    }
    for (let i = 0; i < m; i++) out.push(ids[i]);
  }

  /** O(n log n) BPE for long chunks: a doubly linked list of parts and a binary heap of (rank, position). */
  private bpeLong(n: number, out: number[]): void {
    const buf = this.buf;
    const id = new Int32Array(n);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const pr = new Int32Array(n); // rank of the pair starting at part i (NONE if none)
    for (let i = 0; i < n; i++) {
      id[i] = this.byteRank[buf[i]];
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // Heap of keys rank * 2^21... positions can exceed 2^21, so keep two parallel arrays.
    let hr = new Int32Array(n);
    let hp = new Int32Array(n);
    let size = 0;
    const less = (i: number, j: number) => hr[i] < hr[j] || (hr[i] === hr[j] && hp[i] < hp[j]);
    const swap = (i: number, j: number) => {
      const r = hr[i];
      hr[i] = hr[j];
      hr[j] = r;
      const p = hp[i];
      hp[i] = hp[j];
      hp[j] = p;
    };
    const push = (r: number, p: number) => {
      if (size === hr.length) {
        const nr = new Int32Array(size * 2);
        nr.set(hr);
        hr = nr;
        const np = new Int32Array(size * 2);
        np.set(hp);
        hp = np;
      }
      let i = size++;
      hr[i] = r;
      hp[i] = p;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!less(i, parent)) break;
        swap(i, parent);
        i = parent;
      }
    };
    const pop = () => {
      size--;
      hr[0] = hr[size];
      hp[0] = hp[size];
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let s = i;
        if (l < size && less(l, s)) s = l;
        if (r < size && less(r, s)) s = r;
        if (s === i) break;
        swap(i, s);
        i = s;
      }
    };
    const alive = new Uint8Array(n).fill(1);
    for (let i = 0; i < n - 1; i++) {
      pr[i] = this.pair(id[i], id[i + 1]);
      if (pr[i] !== NONE) push(pr[i], i);
    }
    pr[n - 1] = NONE;
    while (size > 0) {
      const r = hr[0];
      const p = hp[0];
      pop();
      if (!alive[p] || pr[p] !== r) continue; // stale entry
      const q = next[p];
      id[p] = r;
      alive[q] = 0;
      const qn = next[q];
      next[p] = qn;
      if (qn >= 0) prev[qn] = p;
      pr[p] = qn >= 0 ? this.pair(r, id[qn]) : NONE;
      if (pr[p] !== NONE) push(pr[p], p);
      const pp = prev[p];
      if (pp >= 0) {
        pr[pp] = this.pair(id[pp], r);
        if (pr[pp] !== NONE) push(pr[pp], pp);
      }
    }
    for (let i = 0; i >= 0; i = next[i]) out.push(id[i]);
  }

  clearCache(): void {
    this.cLen.fill(0);
    this.cCount = 0;
    this.keyUsed = 0;
    this.idUsed = 0;
  }
}

// Training a byte-level BPE vocabulary.
//
// Algorithm: the corpus is pre-tokenized with the chosen pattern and reduced to its unique chunks with counts
// ("words"). Every word is a sequence of token ids, starting from its UTF-8 bytes (ids 0..255 = byte values).
// The count of a pair is the sum, over words, of (occurrences of the adjacent pair in the word) x (word count);
// overlapping occurrences count ("aaa" holds (a,a) twice). Each step merges the pair with the highest count
// in every word, left to right, and appends its bytes to the vocabulary.
//
// Tie-breaking (deterministic): among pairs with equal count, the one with the smallest left id wins, then the
// smallest right id. If the merged bytes are already a token (possible when two different splits make the same
// bytes), the existing id is reused and no new token is added, so the rank file never has duplicate bytes.
//
// Speed: pair counts are kept up to date incrementally. Each pair has a list of the words that contain it; a
// merge only revisits those words, subtracting their old pairs and adding their new ones. A binary max-heap
// holds (count, pair) snapshots; an entry whose count no longer matches the pair's current count is stale
// and skipped when popped (a fresh entry is pushed whenever a count changes).
import { WgptError } from '@wgpt/base/errors';
import { BpeEncoding, type Encoding } from './encoding.ts';
import { latin1Of } from './latin1.ts';
import type { PatternName } from './patterns.ts';
import { makeScanner } from './scan.ts';
import { encodeUtf8Escaped, lastSafeCut, Utf8EscapeDecoder } from './utf8.ts';

export interface TrainOptions {
  /** Total vocabulary size: 256 byte tokens + merges + special tokens. */
  vocabSize: number;
  pattern: PatternName;
  /** Special tokens appended after the merges, in this order. Default: ['<|endoftext|>']. */
  specialTokens?: string[];
  /** Called every few hundred merges and at the end. */
  onProgress?: (merges: number, target: number) => void;
}

export interface TrainedBpe {
  pattern: PatternName;
  /** Bytes of each mergeable token (index = rank = id); the first 256 are the single bytes 0..255. */
  tokens: Uint8Array[];
  /** The merges in order: [left id, right id, resulting id]. */
  merges: [number, number, number][];
  specialTokens: Record<string, number>;
  /** The vocabulary size actually reached (smaller than asked when the corpus ran out of pairs). */
  vocabSize: number;
}

/** A vocabulary size the trainer cannot reach (too small for the bytes and specials, or too large). */
export class VocabSizeError extends WgptError {
  override name = 'VocabSizeError';
}

/** The largest vocabulary the trainer handles (token ids are packed below 2^21 in pair keys). */
export const MAX_VOCAB_SIZE = 2 ** 21;

export function checkVocabSize(vocabSize: number, nSpecials: number): void {
  if (!Number.isInteger(vocabSize) || vocabSize < 256 + nSpecials) {
    throw new VocabSizeError(
      `vocab size ${vocabSize} is too small: it must be an integer of at least ` +
        `256 (the byte tokens) + ${nSpecials} (special tokens) = ${256 + nSpecials}`,
    );
  }
  if (vocabSize > MAX_VOCAB_SIZE) {
    throw new VocabSizeError(`vocab size ${vocabSize} is too large (max ${MAX_VOCAB_SIZE})`);
  }
}

/** Counts pre-tokenized chunks of a corpus fed in pieces (strings or bytes) of any size. */
export class ChunkCounter {
  readonly counts = new Map<string, number>();
  private carry = '';
  private searched = 0;
  private readonly scan;
  private readonly bytes = new Utf8EscapeDecoder();
  /** Characters consumed so far. */
  chars = 0;

  constructor(pattern: PatternName) {
    this.scan = makeScanner(pattern);
  }

  private count(text: string): void {
    const counts = this.counts;
    this.chars += text.length;
    this.scan(text, (a, b) => {
      const c = text.slice(a, b);
      counts.set(c, (counts.get(c) ?? 0) + 1);
    });
  }

  /** Add text. Pieces are joined (documents that should not be joined go through `addDocument`). */
  push(text: string): void {
    this.carry += text;
    if (this.carry.length < 1 << 20) return;
    // Only text not searched before (and the 4 code units before it) can hold a new cut point.
    const cut = lastSafeCut(this.carry, Math.max(0, this.searched - 4));
    if (cut <= 0) {
      this.searched = this.carry.length; // keep accumulating until a safe cut point appears
      return;
    }
    this.count(this.carry.slice(0, cut));
    this.carry = this.carry.slice(cut);
    this.searched = this.carry.length;
  }

  /** Add raw bytes (invalid UTF-8 is kept byte-exact). */
  pushBytes(bytes: Uint8Array): void {
    this.push(this.bytes.decode(bytes));
  }

  /** Finish the current stream (the next push starts a new document). */
  end(): void {
    const rest = this.carry + this.bytes.end();
    this.carry = '';
    this.searched = 0;
    if (rest) this.count(rest);
  }

  /** A whole document at once. */
  addDocument(text: string): void {
    this.end();
    this.count(text);
  }
}

const PAIR_SHIFT = MAX_VOCAB_SIZE; // ids below 2^21

/** Train from chunk counts (see ChunkCounter). */
export function trainFromCounts(counts: Map<string, number>, opts: TrainOptions): TrainedBpe {
  const specials = opts.specialTokens ?? ['<|endoftext|>'];
  checkVocabSize(opts.vocabSize, specials.length);
  if (new Set(specials).size !== specials.length) {
    throw new WgptError(`duplicate special tokens in ${JSON.stringify(specials)}`);
  }
  const target = opts.vocabSize - 256 - specials.length;

  // Words, sorted by chunk text so that the result does not depend on insertion order.
  const chunks = [...counts.keys()].sort();
  const nWords = chunks.length;
  const words: Int32Array[] = new Array(nWords);
  const wlen = new Int32Array(nWords);
  const freq = new Float64Array(nWords);
  for (let w = 0; w < nWords; w++) {
    const b = encodeUtf8Escaped(chunks[w]);
    words[w] = Int32Array.from(b);
    wlen[w] = b.length;
    freq[w] = counts.get(chunks[w])!;
  }

  // Pair table: index per distinct pair.
  const pairIndex = new Map<number, number>();
  let pa = new Int32Array(1 << 16);
  let pb = new Int32Array(1 << 16);
  let pcount = new Float64Array(1 << 16);
  let pwords: number[][] = [];
  let nPairs = 0;
  const pairOf = (a: number, b: number): number => {
    const key = a * PAIR_SHIFT + b;
    let i = pairIndex.get(key);
    if (i === undefined) {
      i = nPairs++;
      if (i === pa.length) {
        const grow = <T extends Int32Array | Float64Array>(x: T): T => {
          const y = new (x.constructor as new (n: number) => T)(x.length * 2);
          y.set(x);
          return y;
        };
        pa = grow(pa);
        pb = grow(pb);
        pcount = grow(pcount);
      }
      pa[i] = a;
      pb[i] = b;
      pcount[i] = 0;
      pwords.push([]);
      pairIndex.set(key, i);
    }
    return i;
  };

  for (let w = 0; w < nWords; w++) {
    const s = words[w];
    const f = freq[w];
    for (let i = 0; i + 1 < wlen[w]; i++) {
      const p = pairOf(s[i], s[i + 1]);
      pcount[p] += f;
      const lst = pwords[p];
      if (lst.length === 0 || lst[lst.length - 1] !== w) lst.push(w);
    }
  }

  // Max-heap of (count snapshot, pair index); order: count desc, left id asc, right id asc.
  let hc = new Float64Array(Math.max(16, nPairs * 2));
  let hp = new Int32Array(hc.length);
  let hsize = 0;
  const better = (i: number, j: number) => {
    if (hc[i] !== hc[j]) return hc[i] > hc[j];
    const x = hp[i];
    const y = hp[j];
    if (pa[x] !== pa[y]) return pa[x] < pa[y];
    return pb[x] < pb[y];
  };
  const hswap = (i: number, j: number) => {
    const c = hc[i];
    hc[i] = hc[j];
    hc[j] = c;
    const p = hp[i];
    hp[i] = hp[j];
    hp[j] = p;
  };
  const hpush = (c: number, p: number) => {
    if (hsize === hc.length) {
      const nc = new Float64Array(hsize * 2);
      nc.set(hc);
      hc = nc;
      const np = new Int32Array(hsize * 2);
      np.set(hp);
      hp = np;
    }
    let i = hsize++;
    hc[i] = c;
    hp[i] = p;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!better(i, parent)) break;
      hswap(i, parent);
      i = parent;
    }
  };
  const hpop = () => {
    hsize--;
    hc[0] = hc[hsize];
    hp[0] = hp[hsize];
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let s = i;
      if (l < hsize && better(l, s)) s = l;
      if (r < hsize && better(r, s)) s = r;
      if (s === i) break;
      hswap(i, s);
      i = s;
    }
  };
  for (let p = 0; p < nPairs; p++) if (pcount[p] > 0) hpush(pcount[p], p);
  opts.onProgress?.(0, target);

  const tokens: Uint8Array[] = [];
  for (let b = 0; b < 256; b++) tokens.push(Uint8Array.of(b));
  const byBytes = new Map<string, number>();
  const keyOf = (t: Uint8Array) => latin1Of(t, 0, t.length);
  for (let b = 0; b < 256; b++) byBytes.set(keyOf(tokens[b]), b);
  const merges: [number, number, number][] = [];

  let wordStamp = new Int32Array(nWords).fill(-1);
  let dirtyStamp = new Int32Array(nPairs * 2).fill(-1);
  const dirty: number[] = [];
  const markDirty = (p: number) => {
    if (p >= dirtyStamp.length) {
      const d = new Int32Array(Math.max(p + 1, dirtyStamp.length * 2)).fill(-1);
      d.set(dirtyStamp);
      dirtyStamp = d;
    }
    if (dirtyStamp[p] !== step) {
      dirtyStamp[p] = step;
      dirty.push(p);
    }
  };

  let step = 0;
  let added = 0;
  while (added < target && hsize > 0) {
    const c = hc[0];
    const best = hp[0];
    hpop();
    if (c !== pcount[best] || c <= 0) continue; // stale snapshot
    const a = pa[best];
    const b = pb[best];
    const bytes = new Uint8Array(tokens[a].length + tokens[b].length);
    bytes.set(tokens[a]);
    bytes.set(tokens[b], tokens[a].length);
    const key = keyOf(bytes);
    let t = byBytes.get(key);
    if (t === undefined) {
      t = tokens.length;
      tokens.push(bytes);
      byBytes.set(key, t);
      added++;
    }
    merges.push([a, b, t]);

    const list = pwords[best];
    pwords[best] = [];
    for (let k = 0; k < list.length; k++) {
      const w = list[k];
      if (wordStamp[w] === step) continue;
      wordStamp[w] = step;
      const s = words[w];
      const n = wlen[w];
      let has = false;
      for (let i = 0; i + 1 < n; i++) {
        if (s[i] === a && s[i + 1] === b) {
          has = true;
          break;
        }
      }
      if (!has) continue;
      const f = freq[w];
      for (let i = 0; i + 1 < n; i++) {
        const p = pairIndex.get(s[i] * PAIR_SHIFT + s[i + 1])!;
        pcount[p] -= f;
        markDirty(p);
      }
      let m = 0;
      for (let i = 0; i < n; i++) {
        if (i + 1 < n && s[i] === a && s[i + 1] === b) {
          s[m++] = t;
          i++;
        } else s[m++] = s[i];
      }
      wlen[w] = m;
      for (let i = 0; i + 1 < m; i++) {
        const p = pairOf(s[i], s[i + 1]);
        pcount[p] += f;
        markDirty(p);
        // Only pairs that contain the new token are new to this word; the word is already listed for the rest.
        if (s[i] === t || s[i + 1] === t) {
          const lst = pwords[p];
          if (lst.length === 0 || lst[lst.length - 1] !== w) lst.push(w);
        }
      }
    }
    for (let i = 0; i < dirty.length; i++) {
      const p = dirty[i];
      if (pcount[p] > 0) hpush(pcount[p], p);
    }
    dirty.length = 0;
    step++;
    if (opts.onProgress && step % 500 === 0) opts.onProgress(added, target);
  }
  opts.onProgress?.(added, target);

  const specialTokens: Record<string, number> = {};
  for (const s of specials) specialTokens[s] = tokens.length + Object.keys(specialTokens).length;
  return { pattern: opts.pattern, tokens, merges, specialTokens, vocabSize: tokens.length + specials.length };
}

/** Train on texts (each a separate document) or one string. */
export function trainBpe(input: string | Iterable<string>, opts: TrainOptions): TrainedBpe {
  checkVocabSize(opts.vocabSize, (opts.specialTokens ?? ['<|endoftext|>']).length);
  const counter = new ChunkCounter(opts.pattern);
  if (typeof input === 'string') counter.addDocument(input);
  else for (const t of input) counter.addDocument(t);
  return trainFromCounts(counter.counts, opts);
}

/** Train on a stream of text or byte pieces (e.g. a file read stream); pieces are joined. */
export async function trainBpeStream(
  input: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
  opts: TrainOptions,
): Promise<TrainedBpe> {
  checkVocabSize(opts.vocabSize, (opts.specialTokens ?? ['<|endoftext|>']).length);
  const counter = new ChunkCounter(opts.pattern);
  for await (const piece of input) {
    if (typeof piece === 'string') counter.push(piece);
    else counter.pushBytes(piece);
  }
  counter.end();
  return trainFromCounts(counter.counts, opts);
}

/** An Encoding for a trained vocabulary. */
export function trainedEncoding(t: TrainedBpe, name = 'trained'): Encoding {
  return new BpeEncoding({ name, pattern: t.pattern, tokens: t.tokens, specialTokens: t.specialTokens });
}

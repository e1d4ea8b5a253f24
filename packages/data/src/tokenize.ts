// Stage 8: tokenization into shards. The tokenizer is injected (any object of this shape; the CLI passes
// @wgpt/tokenizer's encodings), so this stage does not depend on a particular implementation.
import { WgptError } from '@wgpt/base';
import type { Doc } from './types.ts';
import { ShardWriter, type ShardInfo } from './shards.ts';

export interface TokenEncoder {
  name: string;
  nVocab: number;
  eotToken: number;
  encodeOrdinary(text: string): number[];
}

/** Byte-level tokenizer (256 bytes + end-of-text = 256): always available, for tests and smoke runs. */
export const BYTE_TOKENIZER: TokenEncoder = {
  name: 'bytes',
  nVocab: 257,
  eotToken: 256,
  encodeOrdinary: (text: string) => Array.from(Buffer.from(text, 'utf8')),
};

/** `<|endoftext|>` then the document's tokens, as llm.c's fineweb.py does. */
export function tokenizeDocument(enc: TokenEncoder, text: string): number[] {
  const t = enc.encodeOrdinary(text);
  t.unshift(enc.eotToken);
  return t;
}

/**
 * Deterministic split: a document goes to validation when a hash of its id falls below the fraction (so the split does
 * not depend on workers or tasks). ShardSink also makes sure every unit gives validation at least one document.
 */
export function isValidation(id: string, fraction: number): boolean {
  if (fraction <= 0) return false;
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) { h ^= id.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  h ^= h >>> 15; h = Math.imul(h, 0x2c1b3c6d); h ^= h >>> 12;
  return (h >>> 0) / 2 ** 32 < fraction;
}

export interface TokenizeOptions {
  dir: string;
  prefix: string;
  part: number;
  valFraction?: number;
  shardTokens?: number;
}

export class ShardSink {
  private readonly train: ShardWriter;
  private readonly val: ShardWriter;
  readonly counts = { train: { docs: 0, tokens: 0 }, val: { docs: 0, tokens: 0 } };
  constructor(readonly enc: TokenEncoder, readonly o: TokenizeOptions) {
    // A shard of no tokens never fills up: the writer would open empty shards for ever.
    const st = o.shardTokens;
    if (st !== undefined && !(Number.isSafeInteger(st) && st >= 1 && st < 2 ** 31)) {
      throw new WgptError(`tokenize.shardTokens: must be a whole number in 1 … 2^31 − 1 (got ${st})`);
    }
    const vf = o.valFraction;
    if (vf !== undefined && !(vf >= 0 && vf < 1)) {
      throw new WgptError(`tokenize.valFraction: must be in [0, 1) (got ${vf})`);
    }
    const base = { dir: o.dir, prefix: o.prefix, part: o.part, nVocab: enc.nVocab, shardTokens: o.shardTokens };
    this.train = new ShardWriter({ ...base, split: 'train' });
    this.val = new ShardWriter({ ...base, split: 'val' });
  }
  /** The first training document is held back: if no document of this unit hashes into validation, it goes there. */
  private heldBack: number[] | null = null;
  private seen = false;
  add(doc: Doc): void {
    const toks = tokenizeDocument(this.enc, doc.text);
    const fraction = this.o.valFraction ?? 0.01;
    const split = isValidation(doc.id, fraction) ? 'val' : 'train';
    if (split === 'train' && !this.seen && fraction > 0) { this.heldBack = toks; this.seen = true; return; }
    this.seen = true;
    this.write(split, toks);
  }
  private write(split: 'train' | 'val', toks: number[]): void {
    (split === 'val' ? this.val : this.train).addDocument(toks);
    this.counts[split].docs++;
    this.counts[split].tokens += toks.length;
  }
  close(): ShardInfo[] {
    if (this.heldBack) {
      this.write(this.counts.val.docs === 0 ? 'val' : 'train', this.heldBack);
      this.heldBack = null;
    }
    return [...this.train.close(), ...this.val.close()];
  }
  abort(): void {
    this.train.abort();
    this.val.abort();
  }
}

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { htmlBenchmarkFiles } from '../src/corpus.ts';
import {
  estimateJaccard, findBucketDuplicates, MinHasher, readRemoveList, runBucketStep, runClusterStep, SignatureWriter,
} from '../src/dedup/minhash.ts';
import { extractRecord } from '../src/extract.ts';
import { tmpDir } from './helpers.ts';

/** Real, distinct page texts from htmlparser-benchmark. */
function realTexts(n: number): string[] {
  const out: string[] = [];
  for (const f of htmlBenchmarkFiles()) {
    const v = extractRecord({ id: f, kind: 'html', body: fs.readFileSync(f) });
    if (v.keep && v.doc.text.split(/\s+/).length > 300) out.push(v.doc.text);
    if (out.length === n) break;
  }
  return out;
}

/** Changes every 60th word: Jaccard of word 5-grams stays around 0.85-0.9. */
function perturb(text: string): string {
  return text.split(/(\s+)/).map((w, i) => (i % 120 === 0 && /\w/.test(w) ? w + 'x' : w)).join('');
}

describe('MinHash', () => {
  const h = new MinHasher();
  it('signatures estimate Jaccard similarity', () => {
    const [a, b] = realTexts(2);
    expect(estimateJaccard(h.signature(a), h.signature(a))).toBe(1);
    expect(estimateJaccard(h.signature(a), h.signature(perturb(a)))).toBeGreaterThan(0.6);
    expect(estimateJaccard(h.signature(a), h.signature(b))).toBeLessThan(0.2);
  });

  it('finds planted near-duplicates and exact duplicates across tasks and keeps distinct pages', () => {
    const texts = realTexts(24);
    expect(texts.length).toBe(24);
    // task 0: texts 0..11; task 1: texts 12..23 + near-dups of 0, 5, 13 + exact copy of 7 + exact copy within
    // task 1 of 20
    const task0 = texts.slice(0, 12);
    const task1 = [...texts.slice(12), perturb(texts[0]), perturb(texts[5]), perturb(texts[13]), texts[7], texts[20]];
    const d = tmpDir();
    for (const [t, docs] of [task0, task1].entries()) {
      const w = new SignatureWriter(path.join(d, 'sigs'), t, h);
      docs.forEach((x, i) => w.add(i, x));
      w.finish();
    }
    const b = runBucketStep(path.join(d, 'sigs'), path.join(d, 'pairs'));
    expect(b.buckets).toBe(15);
    const c = runClusterStep(path.join(d, 'pairs'), path.join(d, 'remove'), 2);
    expect(readRemoveList(path.join(d, 'remove'), 0).size).toBe(0); // originals come first and are kept
    const r1 = readRemoveList(path.join(d, 'remove'), 1);
    expect([...r1.entries()].sort((x, y) => x[0] - y[0])).toEqual([
      [12, 'minhash_duplicate'], [13, 'minhash_duplicate'], [14, 'minhash_duplicate'], [15, 'exact_duplicate'],
      [16, 'exact_duplicate'],
    ]);
    expect(c.removed).toBe(5);
    expect(c.exact).toBe(2);
  });

  it('the k-way merge reads files in chunks and finds every pair', () => {
    const d = tmpDir();
    const hh = new MinHasher({ buckets: 2, hashesPerBucket: 2 });
    const texts = realTexts(10);
    for (let t = 0; t < 3; t++) {
      const w = new SignatureWriter(path.join(d, 'sigs'), t, hh);
      texts.forEach((x, i) => w.add(i, t === 2 && i % 2 ? x + ' different ending words here for this one' : x));
      w.finish();
    }
    const small = findBucketDuplicates(path.join(d, 'sigs', 'bucket_exact'), undefined, 3);
    const big = findBucketDuplicates(path.join(d, 'sigs', 'bucket_exact'));
    expect(small).toEqual(big);
    // task 1 copies all 10 of task 0; task 2 copies the 5 even ones
    expect(small.length).toBe(15);
    expect(small.every(([t0, d0, , d1]) => t0 === 0 && d0 === d1)).toBe(true);
  });

  it('rejects a corrupt signature file with its name', () => {
    const d = tmpDir();
    fs.mkdirSync(path.join(d, 'sigs', 'bucket_00'), { recursive: true });
    fs.writeFileSync(path.join(d, 'sigs', 'bucket_00', '00000.sig'), Buffer.alloc(41));
    expect(() => runBucketStep(path.join(d, 'sigs'), path.join(d, 'pairs'))).toThrow(/00000\.sig.*41/);
  });
});

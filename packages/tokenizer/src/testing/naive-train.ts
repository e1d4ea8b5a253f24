// A deliberately naive BPE trainer, the reference for train.ts: every step recounts every pair in every word
// and rewrites every word. Same rules: counts weighted by word frequency, overlapping occurrences counted, ties
// to the smallest (left id, right id), merges applied left to right, existing bytes reuse their id.
import { regexSplit, type PatternName } from '../patterns.ts';

export function naiveTrain(
  text: string,
  pattern: PatternName,
  nMerges: number,
): { tokens: number[][]; merges: [number, number, number][] } {
  const freq = new Map<string, number>();
  for (const c of regexSplit(pattern, text)) freq.set(c, (freq.get(c) ?? 0) + 1);
  const words: { ids: number[]; f: number }[] = [];
  for (const [c, f] of freq) words.push({ ids: Array.from(Buffer.from(c, 'utf8')), f });
  const tokens: number[][] = [];
  for (let b = 0; b < 256; b++) tokens.push([b]);
  const merges: [number, number, number][] = [];
  let added = 0;
  while (added < nMerges) {
    const counts = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.ids.length; i++) {
        const k = `${w.ids[i]},${w.ids[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + w.f);
      }
    }
    let best: [number, number] | null = null;
    let bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number);
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best) break;
    const [a, b] = best;
    const bytes = [...tokens[a], ...tokens[b]];
    let t = tokens.findIndex((x) => x.length === bytes.length && x.every((v, i) => v === bytes[i]));
    if (t < 0) {
      t = tokens.length;
      tokens.push(bytes);
      added++;
    }
    merges.push([a, b, t]);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.ids.length; i++) {
        if (i + 1 < w.ids.length && w.ids[i] === a && w.ids[i + 1] === b) {
          out.push(t);
          i++;
        } else out.push(w.ids[i]);
      }
      w.ids = out;
    }
  }
  return { tokens, merges };
}

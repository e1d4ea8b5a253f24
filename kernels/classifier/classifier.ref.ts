// f64 references for the fused classifier: per-row losses over the first V of Vp columns, weighted by an optional mask
// (0/1, or any weights), and the intended scalar loss scale · Σ losses / Σ mask (the mean over unmasked rows).

export function classifierLossesRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  mask: ArrayLike<number> | null,
  R: number,
  V: number,
  Vp: number,
): Float64Array {
  const out = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    if (mask && mask[r] === 0) continue;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[r * Vp + v]!);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * Vp + v]! - max);
    const t = targets[r]!;
    out[r] = (mask ? mask[r]! : 1) * (t >= 0 && t < V ? Math.log(s) + max - logits[r * Vp + t]! : NaN);
  }
  return out;
}

export function classifierMeanLossRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  mask: ArrayLike<number> | null,
  R: number,
  V: number,
  Vp: number,
  scale = 1,
): number {
  const l = classifierLossesRef(logits, targets, mask, R, V, Vp);
  let count = 0;
  let s = 0;
  for (let r = 0; r < R; r++) {
    count += mask ? mask[r]! : 1;
    s += l[r]!;
  }
  return (scale * s) / Math.max(count, 1);
}

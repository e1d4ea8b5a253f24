// f64 reference: per-row cross-entropy of softmax(logits) against an integer target.

export function crossEntropyRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  R: number,
  V: number,
): Float64Array {
  const out = new Float64Array(R);
  for (let r = 0; r < R; r++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[r * V + v]!);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v]! - max);
    const t = targets[r]!;
    out[r] = t >= 0 && t < V ? Math.log(s) + max - logits[r * V + t]! : NaN;
  }
  return out;
}

// f64 reference: LayerNorm over the last dimension (biased variance, eps inside the square root), as in GPT-2.

export function layernormRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  N: number,
  C: number,
  eps = 1e-5,
): Float64Array {
  const out = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += x[n * C + c]!;
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[n * C + c]! - m) ** 2;
    v /= C;
    const s = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < C; c++) out[n * C + c] = (x[n * C + c]! - m) * s * w[c]! + b[c]!;
  }
  return out;
}

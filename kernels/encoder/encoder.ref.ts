// f64 reference: GPT-2's token + position embedding.

export function encoderRef(
  tokens: ArrayLike<number>,
  wte: ArrayLike<number>,
  wpe: ArrayLike<number>,
  B: number,
  T: number,
  C: number,
  V: number,
  posOffset = 0,
): Float64Array {
  const out = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      const tok = tokens[n]!;
      for (let c = 0; c < C; c++)
        out[n * C + c] = tok >= 0 && tok < V ? wte[tok * C + c]! + wpe[(posOffset + t) * C + c]! : NaN;
    }
  }
  return out;
}

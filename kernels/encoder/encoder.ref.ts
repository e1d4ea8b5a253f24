// f64 reference: GPT-2's token + position embedding. The position of token (b, t) is posOffset + t, or positions[n]
// (n = b·T + t) when given; a token outside [0, V) or a position outside [0, maxT) gives a NaN row.

export function encoderRef(
  tokens: ArrayLike<number>,
  wte: ArrayLike<number>,
  wpe: ArrayLike<number>,
  B: number,
  T: number,
  C: number,
  V: number,
  posOffset = 0,
  positions?: ArrayLike<number>,
): Float64Array {
  const maxT = wpe.length / C;
  const out = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const n = b * T + t;
      const tok = tokens[n]!;
      const pos = positions ? positions[n]! : posOffset + t;
      const ok = tok >= 0 && tok < V && pos >= 0 && pos < maxT;
      for (let c = 0; c < C; c++) out[n * C + c] = ok ? wte[tok * C + c]! + wpe[pos * C + c]! : NaN;
    }
  }
  return out;
}

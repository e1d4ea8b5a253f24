// f64 references for the KV-cache kernels, plain loops from the definitions.
// Caches are (B, NH, maxT, HS); qkv is (B, T, 3C) with q at [0, C), k at [C, 2C), v at [2C, 3C), head h at h·HS.

/** The caches after appending qkv's k and v at positions [pos, pos + T) (other positions kept). */
export function kvAppendRef(
  kOld: ArrayLike<number>,
  vOld: ArrayLike<number>,
  qkv: ArrayLike<number>,
  s: { B: number; T: number; NH: number; HS: number; maxT: number; pos: number },
): { k: Float64Array; v: Float64Array } {
  const { B, T, NH, HS, maxT, pos } = s;
  const C = NH * HS;
  const k = Float64Array.from(kOld);
  const v = Float64Array.from(vOld);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < NH; h++)
        for (let d = 0; d < HS; d++) {
          const dst = ((b * NH + h) * maxT + pos + t) * HS + d;
          k[dst] = qkv[(b * T + t) * 3 * C + C + h * HS + d]!;
          v[dst] = qkv[(b * T + t) * 3 * C + 2 * C + h * HS + d]!;
        }
  return { k, v };
}

/** out (B, T, C): softmax(q·k / sqrt(HS)) over keys 0..pos + t, times v, per head. */
export function decodeAttentionRef(
  qkv: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  s: { B: number; T: number; NH: number; HS: number; maxT: number; pos: number },
): Float64Array {
  const { B, T, NH, HS, maxT, pos } = s;
  const C = NH * HS;
  const scale = 1 / Math.sqrt(HS);
  const out = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < NH; h++) {
        const n = pos + t + 1;
        const base = (b * NH + h) * maxT * HS;
        const sc = new Float64Array(n);
        let max = -Infinity;
        for (let j = 0; j < n; j++) {
          let dot = 0;
          for (let d = 0; d < HS; d++) dot += qkv[(b * T + t) * 3 * C + h * HS + d]! * k[base + j * HS + d]!;
          sc[j] = dot * scale;
          max = Math.max(max, sc[j]!);
        }
        let sum = 0;
        for (let j = 0; j < n; j++) sum += sc[j] = Math.exp(sc[j]! - max);
        for (let d = 0; d < HS; d++) {
          let o = 0;
          for (let j = 0; j < n; j++) o += sc[j]! * v[base + j * HS + d]!;
          out[(b * T + t) * C + h * HS + d] = o / sum;
        }
      }
  return out;
}

// f64 references for the matmul family, plain loops written from the definitions (not from the WGSL).

/** (M, K) · (K, N) → (M, N), row-major. */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, M: number, K: number, N: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[m * K + k]! * b[k * N + n]!;
      out[m * N + n] = s;
    }
  return out;
}

/** x (M, C) · Wᵀ with W (OC, C), plus bias (OC) when given. */
export function linearRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  M: number,
  C: number,
  OC: number,
): Float64Array {
  const out = new Float64Array(M * OC);
  for (let m = 0; m < M; m++)
    for (let o = 0; o < OC; o++) {
      let s = bias ? bias[o]! : 0;
      for (let c = 0; c < C; c++) s += x[m * C + c]! * w[o * C + c]!;
      out[m * OC + o] = s;
    }
  return out;
}

/** The transpose of x (R, C) → (C, R). */
export function transposeRef(x: ArrayLike<number>, R: number, C: number): Float32Array {
  const out = new Float32Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) out[c * R + r] = x[r * C + c]!;
  return out;
}

// f64 references for reductions.

export function sumRef(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]!;
  return s;
}

export function sumAbsRef(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.abs(x[i]!);
  return s;
}

/** Column sums of x (M, N). */
export function sumRowsRef(x: ArrayLike<number>, M: number, N: number): Float64Array {
  const out = new Float64Array(N);
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) out[n]! += x[m * N + n]!;
  return out;
}

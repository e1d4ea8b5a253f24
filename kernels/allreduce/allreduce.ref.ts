// References for the slice sum: the plain host loop in f32 (what the kernel must equal bit for bit) and the exact
// sum in f64 (what both approximate).

/** fl(...fl(fl(x0 + x1) + x2)... + x(W-1)), then fl(· / W) for a mean: a Float32Array store rounds each step. */
export function rankOrderSumRef(slices: readonly ArrayLike<number>[], mean = false): Float32Array {
  const n = slices[0]!.length;
  const acc = new Float32Array(n);
  for (let i = 0; i < n; i++) acc[i] = slices[0]![i]!;
  for (let r = 1; r < slices.length; r++) for (let i = 0; i < n; i++) acc[i] = acc[i]! + slices[r]![i]!;
  if (mean) for (let i = 0; i < n; i++) acc[i] = acc[i]! / slices.length;
  return acc;
}

/** Σ_r x_r[i] in f64 (off by at most (W-1)·2^-53·Σ|x|, far inside f32's bound) and Σ_r |x_r[i]|. */
export function sumF64Ref(slices: readonly ArrayLike<number>[]): { sum: Float64Array; abs: Float64Array } {
  const n = slices[0]!.length;
  const sum = new Float64Array(n);
  const abs = new Float64Array(n);
  for (const s of slices)
    for (let i = 0; i < n; i++) {
      sum[i] += s[i]!;
      abs[i] += Math.abs(s[i]!);
    }
  return { sum, abs };
}

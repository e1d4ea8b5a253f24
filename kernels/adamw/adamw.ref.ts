// f64 reference for AdamW (decoupled weight decay), written from the paper's algorithm with PyTorch's ordering:
// decay and the Adam step both use the parameter value from before the step.

export interface AdamWRefState {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
  t: number;
}

export function adamwRefStep(
  s: AdamWRefState,
  grads: ArrayLike<number>,
  h: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; clipScale: number },
): void {
  s.t++;
  for (let i = 0; i < s.p.length; i++) {
    const g = grads[i]! * h.clipScale;
    s.m[i] = h.beta1 * s.m[i]! + (1 - h.beta1) * g;
    s.v[i] = h.beta2 * s.v[i]! + (1 - h.beta2) * g * g;
    const mhat = s.m[i]! / (1 - h.beta1 ** s.t);
    const vhat = s.v[i]! / (1 - h.beta2 ** s.t);
    const p = s.p[i]!;
    s.p[i] = p - h.lr * (mhat / (Math.sqrt(vhat) + h.eps)) - h.lr * h.weightDecay * p;
  }
}

/** min(1, maxNorm / ‖g‖) over every gradient array together (1 when maxNorm ≤ 0). */
export function clipScaleRef(grads: ArrayLike<number>[], maxNorm: number): number {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  const norm = Math.sqrt(ss);
  return maxNorm > 0 && norm > maxNorm ? maxNorm / norm : 1;
}

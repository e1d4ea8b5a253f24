// f64 references for the elementwise ops, from the textbook formulas.

export function addRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from(a, (v, i) => v + b[i]!);
}

/**
 * GELU, tanh approximation (Hendrycks & Gimpel), as GPT-2 uses it: 0.5 v (1 + tanh(u)), u = sqrt(2/π)(v + 0.044715 v³).
 * Evaluated through the identity 1 + tanh(u) = 2 / (1 + e^(−2u)): written literally, 1 + tanh(u) cancels for
 * negative u even in f64 (at v = −5.9 only 6 digits survive, enough to spoil finite differences).
 */
export function geluRef(x: ArrayLike<number>): Float64Array {
  const c = Math.sqrt(2 / Math.PI);
  return Float64Array.from(x, (v) => v / (1 + Math.exp(-2 * c * (v + 0.044715 * v ** 3))));
}

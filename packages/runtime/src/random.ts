// Seeded pseudo-random numbers (mulberry32): deterministic across runs and machines, for initialisation, data
// order, sampling and tests. Not for anything that needs cryptographic randomness.

/** Uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal numbers: Box-Muller over mulberry32, with uniforms moved to (0, 1) so log never sees 0. */
export function gaussianRng(seed: number): () => number {
  const r = mulberry32(seed);
  const u = () => r() + 2 ** -33;
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

// GPT-2's shape: presets of the paper, any shape from flags, and the parameter layout of llm.c's model file.
import { WgptError } from '@wgpt/runtime';

export interface GPT2Config {
  /** Context length (number of learned positions). GPT-2: 1024. */
  maxT: number;
  /** Vocabulary size. GPT-2: 50257. */
  V: number;
  /** Vocabulary padded up to a multiple of 64 (50257 → 50304): faster kernels, padded rows never predicted. */
  Vp: number;
  /** Number of transformer blocks. */
  L: number;
  /** Number of attention heads. */
  NH: number;
  /** Channels (embedding width). */
  C: number;
}

export const padVocab = (V: number): number => Math.ceil(V / 64) * 64;

export function makeConfig(c: {
  maxT?: number;
  V?: number;
  L: number;
  NH: number;
  C: number;
  Vp?: number;
}): GPT2Config {
  const V = c.V ?? 50257;
  const cfg: GPT2Config = { maxT: c.maxT ?? 1024, V, Vp: c.Vp ?? padVocab(V), L: c.L, NH: c.NH, C: c.C };
  validateConfig(cfg);
  return cfg;
}

/** The GPT-2 paper's four sizes, named by depth as llm.c does. */
export const PRESETS: Record<string, GPT2Config> = {
  d12: makeConfig({ L: 12, NH: 12, C: 768 }), // 124M
  d24: makeConfig({ L: 24, NH: 16, C: 1024 }), // 350M
  d36: makeConfig({ L: 36, NH: 20, C: 1280 }), // 774M
  d48: makeConfig({ L: 48, NH: 25, C: 1600 }), // 1558M
};

export function validateConfig(c: GPT2Config): void {
  for (const k of ['maxT', 'V', 'Vp', 'L', 'NH', 'C'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0)
      throw new WgptError(`GPT-2 config: ${k}=${c[k]} must be a positive integer`);
  }
  if (c.C % c.NH) throw new WgptError(`GPT-2 config: channels C=${c.C} must be divisible by heads NH=${c.NH}`);
  if (c.Vp < c.V) throw new WgptError(`GPT-2 config: padded vocabulary Vp=${c.Vp} is smaller than V=${c.V}`);
}

/** Parameter tensors in llm.c's order (train_gpt2.c), with their shapes. Weights are (out, in) like nn.Linear. */
export function paramShapes(c: GPT2Config): { name: string; shape: number[] }[] {
  const { maxT, Vp, L, C } = c;
  return [
    { name: 'wte', shape: [Vp, C] },
    { name: 'wpe', shape: [maxT, C] },
    { name: 'ln1w', shape: [L, C] },
    { name: 'ln1b', shape: [L, C] },
    { name: 'qkvw', shape: [L, 3 * C, C] },
    { name: 'qkvb', shape: [L, 3 * C] },
    { name: 'attprojw', shape: [L, C, C] },
    { name: 'attprojb', shape: [L, C] },
    { name: 'ln2w', shape: [L, C] },
    { name: 'ln2b', shape: [L, C] },
    { name: 'fcw', shape: [L, 4 * C, C] },
    { name: 'fcb', shape: [L, 4 * C] },
    { name: 'fcprojw', shape: [L, C, 4 * C] },
    { name: 'fcprojb', shape: [L, C] },
    { name: 'lnfw', shape: [C] },
    { name: 'lnfb', shape: [C] },
  ];
}

export const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

export function paramCount(c: GPT2Config): number {
  return paramShapes(c).reduce((a, p) => a + numel(p.shape), 0);
}

/** Offsets (in floats) of each parameter tensor within the one flat allocation, in llm.c's order. */
export function paramOffsets(c: GPT2Config): Record<string, { offset: number; shape: number[]; size: number }> {
  const out: Record<string, { offset: number; shape: number[]; size: number }> = {};
  let off = 0;
  for (const p of paramShapes(c)) {
    const size = numel(p.shape);
    out[p.name] = { offset: off, shape: p.shape, size };
    off += size;
  }
  return out;
}

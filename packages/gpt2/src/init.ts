// GPT-2's initialisation (as in the paper's code, nanoGPT and llm.c): weights N(0, 0.02), the two residual
// projections N(0, 0.02/sqrt(2L)), biases 0, LayerNorm weights 1 and biases 0. The padded vocabulary rows of wte
// are zero (they are never predicted). Deterministic for a seed.
import { gaussianRng } from '@wgpt/runtime';
import { paramOffsets, type GPT2Config } from './config.ts';

export function initParams(c: GPT2Config, seed = 42): Float32Array {
  const offs = paramOffsets(c);
  const total = Object.values(offs).reduce((a, o) => a + o.size, 0);
  const p = new Float32Array(total);
  const randn = gaussianRng(seed);
  const normal = (name: string, std: number, count = offs[name]!.size) => {
    const o = offs[name]!;
    for (let i = 0; i < count; i++) p[o.offset + i] = std * randn();
  };
  normal('wte', 0.02, c.V * c.C);
  normal('wpe', 0.02);
  normal('qkvw', 0.02);
  normal('attprojw', 0.02 / Math.sqrt(2 * c.L));
  normal('fcw', 0.02);
  normal('fcprojw', 0.02 / Math.sqrt(2 * c.L));
  for (const ln of ['ln1w', 'ln2w', 'lnfw']) p.fill(1, offs[ln]!.offset, offs[ln]!.offset + offs[ln]!.size);
  return p;
}

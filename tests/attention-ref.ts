// f64 references for the model view: a GPT-2 forward up to a layer's q, k, v, composed of the kernels' own f64
// references (plain loops written from the definitions), and the attention probabilities from them.
import { type GPT2Config, paramOffsets } from '@wgpt/gpt2';
import { encoderRef } from '@wgpt/kernels/encoder/encoder.ref.ts';
import { addRef, geluRef } from '@wgpt/kernels/elementwise/elementwise.ref.ts';
import { layernormRef } from '@wgpt/kernels/layernorm/layernorm.ref.ts';
import { linearRef } from '@wgpt/kernels/matmul/matmul.ref.ts';
import { attentionRef } from '@wgpt/kernels/attention/attention.ref.ts';

/** q, k, v of `layer` for one sequence (T, 3C), by an f64 forward through the layers before it (kernels' refs). */
export function qkvRef(c: GPT2Config, params: Float32Array, ids: number[], layer: number): Float64Array {
  const { C, NH } = c;
  const T = ids.length;
  const offs = paramOffsets(c);
  const p = (name: string, l?: number) => {
    const o = offs[name]!;
    const per = l === undefined ? o.size : o.size / c.L;
    const at = o.offset + (l ?? 0) * per;
    return params.subarray(at, at + per);
  };
  let x: Float64Array = encoderRef(ids, p('wte'), p('wpe'), 1, T, C, c.V);
  for (let l = 0; ; l++) {
    const qkv = linearRef(layernormRef(x, p('ln1w', l), p('ln1b', l), T, C), p('qkvw', l), p('qkvb', l), T, C, 3 * C);
    if (l === layer) return qkv;
    const y = attentionRef(qkv, { B: 1, T, NH, HS: C / NH });
    x = addRef(x, linearRef(y, p('attprojw', l), p('attprojb', l), T, C, C));
    const h = geluRef(
      linearRef(layernormRef(x, p('ln2w', l), p('ln2b', l), T, C), p('fcw', l), p('fcb', l), T, C, 4 * C),
    );
    x = addRef(x, linearRef(h, p('fcprojw', l), p('fcprojb', l), T, 4 * C, C));
  }
}

/** softmax over keys j ≤ i of q_i·k_j / √HS, per head, in f64: written here from the definition. */
export function attentionProbsRef(qkv: Float64Array, T: number, C: number, NH: number): number[][][] {
  const HS = C / NH;
  return Array.from({ length: NH }, (_, h) =>
    Array.from({ length: T }, (_, i) => {
      const s = Array.from({ length: T }, (_, j) => {
        if (j > i) return -Infinity;
        let d = 0;
        for (let e = 0; e < HS; e++) d += qkv[i * 3 * C + h * HS + e]! * qkv[j * 3 * C + C + h * HS + e]!;
        return d / Math.sqrt(HS);
      });
      const m = Math.max(...s);
      const e = s.map((v) => Math.exp(v - m));
      const z = e.reduce((a, v) => a + v, 0);
      return e.map((v) => v / z);
    }),
  );
}

// What the model view shows, computed from the model as it runs (no kernel of its own): the attention
// probabilities of a layer, from the q and k that the layer's attention gets (read back through GPT2.forward's
// onQkv hook), and the next-token probabilities after a prompt, from its logits.
import { empty, type Gpu, noGrad, tensor, tidyAsync } from '@wgpt/runtime';
import { type GPT2, type GPT2Config, paramShapes } from '@wgpt/gpt2';

export interface Inspection {
  /** Per head, row i of the T×T matrix: query i's probabilities over keys 0..T-1 (0 after i: causal). */
  attention: number[][][];
  /** The logits after the last token, over the vocabulary (V, not the padded Vp). */
  lastLogits: Float32Array;
}

/** One forward of `ids`; the attention probabilities of `layer` (every head) and the last position's logits. */
export async function inspect(model: GPT2, ids: number[], layer: number): Promise<Inspection> {
  const { C, NH, L, V, Vp } = model.config;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L) throw new Error(`layer ${layer}: the model has 0..${L - 1}`);
  const T = ids.length;
  const gpu: Gpu = model.gpu;
  const { qkv, logits } = await tidyAsync(async () => {
    // A copy made as the layer gets it: the forward may reuse the buffer of its q, k and v afterwards.
    const kept = empty(gpu, [T, 3 * C]);
    const { logits } = noGrad(() =>
      model.forward(tensor(gpu, ids, [1, T], 'i32'), undefined, {
        onQkv: (l, t) => {
          if (l === layer) gpu.copy(t.buffer, 0, kept.buffer, 0, T * 3 * C * 4);
        },
      }),
    );
    return { qkv: (await kept.read()) as Float32Array, logits: (await logits.read()) as Float32Array };
  });
  return { attention: attentionProbs(qkv, T, C, NH), lastLogits: logits.slice((T - 1) * Vp, (T - 1) * Vp + V) };
}

/**
 * softmax over keys j ≤ i of q_i·k_j / sqrt(HS), per head, from one sequence's q, k, v rows (T, 3C) laid out as
 * GPT-2's qkv projection writes them: q, k, v of C each, heads of HS = C/NH inside each. In f64.
 */
export function attentionProbs(qkv: ArrayLike<number>, T: number, C: number, NH: number): number[][][] {
  const HS = C / NH;
  const scale = 1 / Math.sqrt(HS);
  return Array.from({ length: NH }, (_, h) =>
    Array.from({ length: T }, (_, i) => {
      const s = new Array<number>(T).fill(-Infinity);
      for (let j = 0; j <= i; j++) {
        let d = 0;
        for (let e = 0; e < HS; e++) d += qkv[i * 3 * C + h * HS + e]! * qkv[j * 3 * C + C + h * HS + e]!;
        s[j] = d * scale;
      }
      return softmax(s);
    }),
  );
}

export function softmax(x: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
  const e = Array.from(x, (v) => Math.exp(v - max));
  const sum = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / sum);
}

/** The k most probable next tokens (softmax of the logits), most probable first; ties by id. */
export function topK(logits: ArrayLike<number>, k: number): { id: number; p: number }[] {
  return softmax(logits)
    .map((p, id) => ({ id, p }))
    .sort((a, b) => b.p - a.p || a.id - b.id)
    .slice(0, k);
}

export interface ParamRow {
  name: string;
  shape: number[];
  count: number;
}

/** The model's parameter tensors (llm.c's layout: the per-layer ones stacked over L) with their sizes. */
export function architecture(c: GPT2Config): { rows: ParamRow[]; total: number } {
  const rows = paramShapes(c).map(({ name, shape }) => ({ name, shape, count: shape.reduce((a, n) => a * n, 1) }));
  return { rows, total: rows.reduce((a, r) => a + r.count, 0) };
}

// Embedding rows for tokens a pre-trained model never had (ChatML's markers in GPT-2's vocabulary).
//
// GPT-2 ties its input embedding and its output layer, so a new token's row is both what the model reads for it
// and the weight of its logit. The rows past a checkpoint's V are zero (padding, never predicted). Left at zero a
// new marker would read as nothing and get logit 0 everywhere; drawn like a fresh N(0, 0.02) row it would be noise
// unrelated to the learned rows, with a logit of no particular size. The mean of the existing rows plus a little
// noise (Hewitt, "Initializing New Word Embeddings for Pretrained Language Models", 2021) keeps the model's output
// distribution close to the pre-trained one: each new token's logit starts at the average logit, so it neither
// takes over nor is unreachable, and the noise, N(0, 1e-5 · the rows' variance) per channel, makes the three
// markers differ so that they can learn different roles. (Hewitt draws from the rows' full covariance scaled by
// 1e-5; the per-channel variance is its diagonal, enough for that purpose.)
import { WgptError } from '@wgpt/base/errors';
import { padVocab, paramCount, type ModelFile } from '@wgpt/gpt2';
import type { ChatFormat } from './format.ts';
import { Rng } from './rng.ts';

/** Scale of the noise's variance relative to the existing rows' variance, per channel. */
export const NEW_ROW_NOISE = 1e-5;

/**
 * Sets rows `ids` of an embedding matrix (row-major, C floats a row) to the mean of rows 0..oldV-1 plus noise of
 * variance NEW_ROW_NOISE times those rows' per-channel variance, drawn from `seed`.
 */
export function initNewEmbeddingRows(
  wte: Float32Array,
  C: number,
  oldV: number,
  ids: readonly number[],
  seed = 0,
): void {
  if (oldV < 1) throw new WgptError(`no existing embedding rows to average (V=${oldV})`);
  const rows = wte.length / C;
  for (const id of ids) {
    if (!Number.isInteger(id) || id < oldV || id >= rows) {
      throw new WgptError(`token id ${id} is not a new row: new rows lie in ${oldV}..${rows - 1}`);
    }
  }
  const mean = new Float64Array(C);
  const sq = new Float64Array(C);
  for (let v = 0; v < oldV; v++) {
    const o = v * C;
    for (let c = 0; c < C; c++) {
      const x = wte[o + c];
      mean[c] += x;
      sq[c] += x * x;
    }
  }
  const std = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    mean[c] /= oldV;
    const variance = Math.max(0, sq[c] / oldV - mean[c] * mean[c]);
    std[c] = Math.sqrt(NEW_ROW_NOISE * variance);
  }
  const rng = new Rng(seed);
  for (const id of ids) {
    const o = id * C;
    for (let c = 0; c < C; c++) wte[o + c] = mean[c] + std[c] * rng.normal();
  }
}

/**
 * Makes a pre-trained GPT-2 ready for a chat format: V grows to cover every id of the format, Vp too when
 * needed (wte gets the new rows; the other parameters follow unchanged), and the rows of ids at or past the old V
 * that the format uses (its markers) are initialised by initNewEmbeddingRows. When Vp need not grow (GPT-2 with
 * r50k_base: 50260 ≤ 50304) the parameters are changed in place and the same array is returned. A model whose V
 * already covers the format is returned as it is, with nothing initialised.
 */
export function prepareModelForChat(
  model: ModelFile,
  cf: ChatFormat,
  seed = 0,
): { model: ModelFile; initialised: number[] } {
  const old = model.config;
  const newIds = [cf.imStart, cf.imEnd, cf.imSep].filter((id) => id >= old.V).sort((a, b) => a - b);
  if (newIds.length === 0) return { model, initialised: [] };
  const V = Math.max(old.V, cf.vocabSize);
  const Vp = Math.max(old.Vp, padVocab(V));
  const config = { ...old, V, Vp };
  let params = model.params;
  if (Vp !== old.Vp) {
    // wte (Vp, C) comes first in llm.c's order: copy its rows, leave the new ones zero, then the rest.
    params = new Float32Array(paramCount(config));
    const oldWte = old.Vp * old.C;
    params.set(model.params.subarray(0, oldWte), 0);
    params.set(model.params.subarray(oldWte), Vp * old.C);
  }
  initNewEmbeddingRows(params.subarray(0, Vp * old.C), old.C, old.V, newIds, seed);
  return { model: { config, params }, initialised: newIds };
}

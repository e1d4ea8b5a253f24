// f64 references for causal multi-head attention on GPT-2's packed layout, plain loops from the definition:
//   S = scale · Q Kᵀ (per batch and head), P = softmax over keys k <= q, out = P V, scale = 1/sqrt(HS).
// qkv is (B, T, 3C): q at channels [0, C), k at [C, 2C), v at [2C, 3C), head h at h·HS; out is (B, T, C).
// With segment ids (B·T, packed rows) the keys are those with k <= q and seg[b, k] === seg[b, q]: the mask's
// definition, id by id, with no use of runs or bounds.

/** f32 unit roundoff, 2^-24. */
const EPS32 = 2 ** -24;

// Error bound (norm-wise, relative), from the f32 arithmetic of either version:
//  - a score s = scale·q·k is a length-HS dot product: absolute error ≲ sqrt(HS)·ε·|s|-scale terms; with inputs in
//    [-1, 1) the scaled scores are O(1), and exp turns an absolute score error δ into a relative error δ in p;
//  - the softmax sum over ≤ T terms (and the online rescaling, one exp and one multiply per key block) adds
//    ≲ (sqrt(T) + T/BC + 4)·ε relative to the row;
//  - out = Σ p v / l is another ≤ T-term sum: sqrt(T)·ε.
// So ‖err‖/‖ref‖ ≲ (sqrt(HS) + 2·sqrt(T) + T/BC + 4)·ε (BC = 16 here; T/BC is the worst case of what adds like
// sqrt(T/BC)); the factor 4 is margin for the constant in each term. The backward chains one more product of each
// kind (dP = dO·V, dS = P∘(dP−D), dQ = dS·K over ≤ T keys), and D's cancellation (dP − D, D = rowsum(P∘dP)) can
// lose a factor of |dP|/|dP − D|, a few on random data: 8 instead of 4. The tests hold every version to this bound and
// never above 1e-5, the accuracy asked of attention (fwdTol, bwdTol); the bound alone serves longer rows (the
// bench's T ≥ 1024).
export const fwdBound = (T: number, HS: number): number => 4 * (Math.sqrt(HS) + 2 * Math.sqrt(T) + T / 16 + 4) * EPS32;
export const bwdBound = (T: number, HS: number): number => 8 * (Math.sqrt(HS) + 2 * Math.sqrt(T) + T / 16 + 4) * EPS32;
export const fwdTol = (T: number, HS: number): number => Math.min(1e-5, fwdBound(T, HS));
export const bwdTol = (T: number, HS: number): number => Math.min(1e-5, bwdBound(T, HS));

export interface AttnShape {
  B: number;
  T: number;
  NH: number;
  HS: number;
}

/** Whether query q of row b sees key k: causal, and (given segments) of one segment. */
function sees(seg: ArrayLike<number> | undefined, T: number, b: number, q: number, k: number): boolean {
  return k <= q && (!seg || seg[b * T + k] === seg[b * T + q]);
}

/** Row q of P for (b, h): entries k <= q, 0 where the query does not see the key. */
function probs(qkv: ArrayLike<number>, s: AttnShape, b: number, h: number, seg?: ArrayLike<number>): Float64Array[] {
  const { T, NH, HS } = s;
  const C = NH * HS;
  const scale = 1 / Math.sqrt(HS);
  const rows: Float64Array[] = [];
  for (let q = 0; q < T; q++) {
    const p = new Float64Array(q + 1);
    let max = -Infinity;
    for (let k = 0; k <= q; k++) {
      if (!sees(seg, T, b, q, k)) continue;
      let dot = 0;
      for (let d = 0; d < HS; d++)
        dot += qkv[(b * T + q) * 3 * C + h * HS + d]! * qkv[(b * T + k) * 3 * C + C + h * HS + d]!;
      p[k] = dot * scale;
      max = Math.max(max, p[k]!);
    }
    let sum = 0;
    for (let k = 0; k <= q; k++) if (sees(seg, T, b, q, k)) sum += p[k] = Math.exp(p[k]! - max);
    for (let k = 0; k <= q; k++) p[k]! /= sum;
    rows.push(p);
  }
  return rows;
}

/** out (B, T, C). */
export function attentionRef(qkv: ArrayLike<number>, s: AttnShape, seg?: ArrayLike<number>): Float64Array {
  const { B, T, NH, HS } = s;
  const C = NH * HS;
  const out = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < NH; h++) {
      const P = probs(qkv, s, b, h, seg);
      for (let q = 0; q < T; q++)
        for (let d = 0; d < HS; d++) {
          let acc = 0;
          for (let k = 0; k <= q; k++)
            if (sees(seg, T, b, q, k)) acc += P[q]![k]! * qkv[(b * T + k) * 3 * C + 2 * C + h * HS + d]!;
          out[(b * T + q) * C + h * HS + d] = acc;
        }
    }
  return out;
}

/** Log-sum-exp of each row's scaled scores, (B, NH, T). */
export function attentionLseRef(qkv: ArrayLike<number>, s: AttnShape, seg?: ArrayLike<number>): Float64Array {
  const { B, T, NH, HS } = s;
  const C = NH * HS;
  const scale = 1 / Math.sqrt(HS);
  const out = new Float64Array(B * NH * T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < NH; h++)
      for (let q = 0; q < T; q++) {
        const sc: number[] = [];
        for (let k = 0; k <= q; k++) {
          if (!sees(seg, T, b, q, k)) continue;
          let dot = 0;
          for (let d = 0; d < HS; d++)
            dot += qkv[(b * T + q) * 3 * C + h * HS + d]! * qkv[(b * T + k) * 3 * C + C + h * HS + d]!;
          sc.push(dot * scale);
        }
        const max = Math.max(...sc);
        out[(b * NH + h) * T + q] = max + Math.log(sc.reduce((a, x) => a + Math.exp(x - max), 0));
      }
  return out;
}

/**
 * The vector-Jacobian product: dqkv (B, T, 3C) for upstream gradient dout (B, T, C), from the chain rule
 *   dV = Pᵀ dO,  dP = dO Vᵀ,  dS = P ∘ (dP − rowsum(P ∘ dP)),  dQ = scale · dS K,  dK = scale · dSᵀ Q.
 */
export function attentionBackwardRef(
  qkv: ArrayLike<number>,
  dout: ArrayLike<number>,
  s: AttnShape,
  seg?: ArrayLike<number>,
): Float64Array {
  const { B, T, NH, HS } = s;
  const C = NH * HS;
  const scale = 1 / Math.sqrt(HS);
  const dqkv = new Float64Array(B * T * 3 * C);
  const at = (t: number, part: number, b: number, h: number, d: number) => (b * T + t) * 3 * C + part * C + h * HS + d;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < NH; h++) {
      const P = probs(qkv, s, b, h, seg);
      for (let q = 0; q < T; q++) {
        const dp = new Float64Array(q + 1);
        let rowdot = 0;
        for (let k = 0; k <= q; k++) {
          if (!sees(seg, T, b, q, k)) continue;
          for (let d = 0; d < HS; d++) dp[k]! += dout[(b * T + q) * C + h * HS + d]! * qkv[at(k, 2, b, h, d)]!;
          rowdot += P[q]![k]! * dp[k]!;
        }
        for (let k = 0; k <= q; k++) {
          if (!sees(seg, T, b, q, k)) continue;
          const p = P[q]![k]!;
          const ds = p * (dp[k]! - rowdot);
          for (let d = 0; d < HS; d++) {
            dqkv[at(k, 2, b, h, d)]! += p * dout[(b * T + q) * C + h * HS + d]!;
            dqkv[at(q, 0, b, h, d)]! += scale * ds * qkv[at(k, 1, b, h, d)]!;
            dqkv[at(k, 1, b, h, d)]! += scale * ds * qkv[at(q, 0, b, h, d)]!;
          }
        }
      }
    }
  return dqkv;
}

// Flash attention backward, dK and dV: one workgroup per (block of BC keys, head, batch) streams the blocks of BR
// queries at or below the diagonal (query blocks that see none of these keys are skipped), recomputes
// P = exp(scale * Q K^T - lse) and dS = P ∘ (dO V^T - D), and accumulates dV = P^T dO and dK = scale * dS^T Q in
// registers. Thread (j, c) of key row j owns dims c, c + TPR, ... No T×T buffer, no atomics. dqkv is (B, T, 3C);
// this writes channels [C, 3C).
// SEG (shared.ts): a key is also seen only by the queries before the end of its segment, and the query blocks past
// the segment end of the block's last key are never loaded.
struct Params {
  B: u32,
  T: u32,
  NH: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read> D: array<f32>;
@group(0) @binding(4) var<storage, read> bounds: array<u32>;
@group(0) @binding(5) var<storage, read_write> dqkv: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

override HS: u32 = 64;
override BR: u32 = 16; // queries per streamed block
override BC: u32 = 16; // keys per workgroup
override TPR: u32 = 16; // threads per key row
override SEG: bool = false;
const MAXD: u32 = 8u;

var<workgroup> Ks: array<f32, BC * HS>;
var<workgroup> Vs: array<f32, BC * HS>;
var<workgroup> Qs: array<f32, BR * HS>;
var<workgroup> dOs: array<f32, BR * HS>;
var<workgroup> Ps: array<f32, BR * BC>; // [query][key]
var<workgroup> dS: array<f32, BR * BC>;
var<workgroup> Ls: array<f32, BR>;
var<workgroup> Ds: array<f32, BR>;

@compute @workgroup_size(TPR, BC)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let T = params.T;
  let NH = params.NH;
  let C = NH * HS;
  let C3 = 3u * C;
  let h = wg.y;
  let b = wg.z;
  let k0 = wg.x * BC;
  let j = lid.y;
  let c = lid.x;
  let k = k0 + j;
  let NT = BC * TPR;
  let scale = 1.0 / sqrt(f32(HS));
  let base = b * T * C3 + h * HS;
  let obase = b * T * C + h * HS;
  let rbase = (b * NH + h) * T;

  for (var i = li; i < BC * HS; i += NT) {
    let jj = i / HS;
    let d = i % HS;
    var kv = 0.0;
    var vv = 0.0;
    if (k0 + jj < T) {
      let off = base + (k0 + jj) * C3 + d;
      kv = qkv[off + C];
      vv = qkv[off + 2u * C];
    }
    Ks[i] = kv;
    Vs[i] = vv;
  }
  var dk: array<f32, MAXD>;
  var dv: array<f32, MAXD>;
  for (var e = 0u; e < MAXD; e++) {
    dk[e] = 0.0;
    dv[e] = 0.0;
  }
  let ND = (HS + TPR - 1u) / TPR;

  // Queries that see at least one key of this block: [k0, qEnd); key k is seen by the queries before kEnd.
  var qEnd = T;
  var kEnd = T;
  if (SEG) {
    qEnd = bounds[2u * (b * T + min(k0 + BC, T) - 1u) + 1u];
    kEnd = bounds[2u * (b * T + min(k, T - 1u)) + 1u];
  }
  let nqb = (qEnd + BR - 1u) / BR;
  for (var qb = k0 / BR; qb < nqb; qb++) {
    let q0 = qb * BR;
    workgroupBarrier(); // the previous block's tiles are no longer read
    for (var i = li; i < BR * HS; i += NT) {
      let rr = i / HS;
      let d = i % HS;
      var qv = 0.0;
      var gv = 0.0;
      if (q0 + rr < T) {
        qv = qkv[base + (q0 + rr) * C3 + d];
        gv = dout[obase + (q0 + rr) * C + d];
      }
      Qs[i] = qv;
      dOs[i] = gv;
    }
    for (var i = li; i < BR; i += NT) {
      var lv = 0.0;
      var dd = 0.0;
      if (q0 + i < T) {
        lv = lse[rbase + q0 + i];
        dd = D[rbase + q0 + i];
      }
      Ls[i] = lv;
      Ds[i] = dd;
    }
    workgroupBarrier();
    // Entry (query i, key j) is live when k <= q0 + i < kEnd (<= T; k < T follows).
    for (var i = c; i < BR; i += TPR) {
      var p = 0.0;
      var ds = 0.0;
      if (k <= q0 + i && q0 + i < kEnd) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HS; d++) {
          s += Qs[i * HS + d] * Ks[j * HS + d];
          dp += dOs[i * HS + d] * Vs[j * HS + d];
        }
        p = exp(s * scale - Ls[i]);
        ds = p * (dp - Ds[i]);
      }
      Ps[i * BC + j] = p;
      dS[i * BC + j] = ds;
    }
    workgroupBarrier();
    // Rows before k contribute nothing; rows from kEnd (T without segments) were written as zeros above.
    var i0 = 0u;
    if (k > q0) {
      i0 = min(k - q0, BR);
    }
    for (var i = i0; i < BR; i++) {
      let p = Ps[i * BC + j];
      let ds = dS[i * BC + j];
      for (var e = 0u; e < ND; e++) {
        let d = c + e * TPR;
        if (d < HS) {
          dv[e] += p * dOs[i * HS + d];
          dk[e] += ds * Qs[i * HS + d];
        }
      }
    }
  }

  if (k < T) {
    let o = base + k * C3;
    for (var e = 0u; e < ND; e++) {
      let d = c + e * TPR;
      if (d < HS) {
        var kv = dk[e] * scale;
        var vv = dv[e];
        if (params.accumulate != 0u) {
          kv += dqkv[o + C + d];
          vv += dqkv[o + 2u * C + d];
        }
        dqkv[o + C + d] = kv;
        dqkv[o + 2u * C + d] = vv;
      }
    }
  }
}

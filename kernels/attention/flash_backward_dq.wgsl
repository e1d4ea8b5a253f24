// Flash attention backward, dQ: one workgroup per (block of BR queries, head, batch) streams the K/V blocks at or
// below the diagonal (as the forward does), recomputes P = exp(scale * Q K^T - lse) from the saved log-sum-exp,
// dP = dO V^T, dS = P ∘ (dP - D), and accumulates dQ = scale * dS K in registers. No T×T buffer, no atomics:
// each dQ element is written by exactly one thread. dqkv is (B, T, 3C); this writes channels [0, C).
// SEG: the forward's segment mask and skipped key blocks (flash_forward.wgsl).
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
override BR: u32 = 16;
override BC: u32 = 16;
override TPR: u32 = 16;
override SEG: bool = false;
const MAXD: u32 = 8u;

var<workgroup> Qs: array<f32, BR * HS>;
var<workgroup> dOs: array<f32, BR * HS>;
var<workgroup> Ks: array<f32, BC * HS>;
var<workgroup> Vs: array<f32, BC * HS>;
var<workgroup> dS: array<f32, BR * BC>;

@compute @workgroup_size(TPR, BR)
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
  let q0 = wg.x * BR;
  let r = lid.y;
  let c = lid.x;
  let q = q0 + r;
  let NT = BR * TPR;
  let scale = 1.0 / sqrt(f32(HS));
  let base = b * T * C3 + h * HS;
  let obase = b * T * C + h * HS;

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
  var lrow = 0.0;
  var Drow = 0.0;
  if (q < T) {
    lrow = lse[(b * NH + h) * T + q];
    Drow = D[(b * NH + h) * T + q];
  }
  var acc: array<f32, MAXD>;
  for (var e = 0u; e < MAXD; e++) {
    acc[e] = 0.0;
  }
  let ND = (HS + TPR - 1u) / TPR;

  var kStart = 0u;
  var qStart = 0u;
  if (SEG) {
    kStart = bounds[2u * (b * T + q0)];
    qStart = bounds[2u * (b * T + min(q, T - 1u))];
  }
  let kEnd = min(T, q0 + BR);
  let nkb = (kEnd + BC - 1u) / BC;
  for (var kb = kStart / BC; kb < nkb; kb++) {
    let k0 = kb * BC;
    workgroupBarrier();
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
    workgroupBarrier();
    var nvis = 0u;
    if (q < T && q >= k0) {
      nvis = min(min(BC, q - k0 + 1u), T - k0);
    }
    var j0 = 0u;
    if (SEG && qStart > k0) {
      j0 = min(qStart - k0, BC);
    }
    for (var j = j0 + c; j < nvis; j += TPR) {
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < HS; d++) {
        s += Qs[r * HS + d] * Ks[j * HS + d];
        dp += dOs[r * HS + d] * Vs[j * HS + d];
      }
      let p = exp(s * scale - lrow);
      dS[r * BC + j] = p * (dp - Drow);
    }
    workgroupBarrier();
    for (var j = j0; j < nvis; j++) {
      let ds = dS[r * BC + j];
      for (var e = 0u; e < ND; e++) {
        let d = c + e * TPR;
        if (d < HS) {
          acc[e] += ds * Ks[j * HS + d];
        }
      }
    }
  }

  if (q < T) {
    let o = base + q * C3;
    for (var e = 0u; e < ND; e++) {
      let d = c + e * TPR;
      if (d < HS) {
        var v = acc[e] * scale;
        if (params.accumulate != 0u) {
          v += dqkv[o + d];
        }
        dqkv[o + d] = v;
      }
    }
  }
}

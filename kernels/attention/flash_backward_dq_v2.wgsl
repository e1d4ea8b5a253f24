// Flash attention backward, dQ, v2: register tiles. Same contract as v1 (flash_backward_dq.wgsl): writes channels
// [0, C) of dqkv (B, T, 3C) from qkv, dout, lse and D.
//
// One workgroup per (block of BR queries, head, batch), TX x NY threads, NY = BR / R. Thread (tx, ty) owns query rows
// r = ty + a·NY (a < R); per streamed block of BC keys it computes the R x NE tiles of S = Q Kᵀ and dP = dO Vᵀ
// for keys j = tx + e·TX (R + NE workgroup loads per R·NE multiply-adds each), dS = P ∘ (dP − D) with
// P = exp(scale·S − lse), shares dS, then accumulates dQ += dS K for dims d = tx + e·TX as an R x ND tile.
// SEG: the forward's segment mask and skipped key blocks (flash_forward_v2.wgsl).
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

override HS: u32 = 64; // <= TX * MAXD
override BR: u32 = 32; // queries per workgroup (NY thread rows of R each)
override R: u32 = 4; // query rows per thread, <= MAXQ
override BC: u32 = 16; // keys per streamed block, <= TX * MAXE
override TX: u32 = 16;
override NY: u32 = BR / R; // thread rows (derived: not set by the host)
override SEG: bool = false;
const MAXQ: u32 = 4u;
const MAXE: u32 = 4u;
const MAXD: u32 = 8u;

var<workgroup> Qs: array<f32, BR * HS>;
var<workgroup> dOs: array<f32, BR * HS>;
var<workgroup> Ks: array<f32, BC * (HS + 1u)>; // padded: threads of a row read different keys at one d
var<workgroup> Vs: array<f32, BC * (HS + 1u)>;
var<workgroup> dS: array<f32, BR * BC>;

@compute @workgroup_size(TX, NY)
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
  let tx = lid.x;
  let ty = lid.y;
  let NT = TX * NY;
  let KST = HS + 1u;
  let NE = (BC + TX - 1u) / TX;
  let ND = (HS + TX - 1u) / TX;
  let scale = 1.0 / sqrt(f32(HS));
  let base = b * T * C3 + h * HS;
  let obase = b * T * C + h * HS;
  let rbase = (b * NH + h) * T;

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
  var lrow: array<f32, MAXQ>;
  var drow: array<f32, MAXQ>;
  var acc: array<f32, MAXQ * MAXD>;
  var qs: array<u32, MAXQ>; // with SEG: the first key each row may see
  for (var a = 0u; a < MAXQ; a++) {
    lrow[a] = 0.0;
    drow[a] = 0.0;
    let q = q0 + ty + a * NY;
    qs[a] = 0u;
    if (SEG) {
      qs[a] = bounds[2u * (b * T + min(q, T - 1u))];
    }
    if (a < R && q < T) {
      lrow[a] = lse[rbase + q];
      drow[a] = D[rbase + q];
    }
  }
  for (var i = 0u; i < MAXQ * MAXD; i++) {
    acc[i] = 0.0;
  }

  var kStart = 0u;
  if (SEG) {
    kStart = bounds[2u * (b * T + q0)];
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
      Ks[jj * KST + d] = kv;
      Vs[jj * KST + d] = vv;
    }
    workgroupBarrier();
    var s: array<f32, MAXQ * MAXE>;
    var dp: array<f32, MAXQ * MAXE>;
    for (var i = 0u; i < MAXQ * MAXE; i++) {
      s[i] = 0.0;
      dp[i] = 0.0;
    }
    for (var d = 0u; d < HS; d++) {
      var kr: array<f32, MAXE>;
      var vr: array<f32, MAXE>;
      for (var e = 0u; e < NE; e++) {
        let j = min(tx + e * TX, BC - 1u);
        kr[e] = Ks[j * KST + d];
        vr[e] = Vs[j * KST + d];
      }
      for (var a = 0u; a < R; a++) {
        let qv = Qs[(ty + a * NY) * HS + d];
        let gv = dOs[(ty + a * NY) * HS + d];
        for (var e = 0u; e < NE; e++) {
          s[a * MAXE + e] += qv * kr[e];
          dp[a * MAXE + e] += gv * vr[e];
        }
      }
    }
    for (var a = 0u; a < R; a++) {
      let r = ty + a * NY;
      let q = q0 + r;
      for (var e = 0u; e < NE; e++) {
        let j = tx + e * TX;
        let k = k0 + j;
        if (j < BC) {
          var ds = 0.0;
          if (k <= q && q < T && (!SEG || k >= qs[a])) {
            let p = exp(s[a * MAXE + e] * scale - lrow[a]);
            ds = p * (dp[a * MAXE + e] - drow[a]);
          }
          dS[r * BC + j] = ds;
        }
      }
    }
    workgroupBarrier();
    let nj = min(BC, kEnd - k0);
    for (var j = 0u; j < nj; j++) {
      var kr: array<f32, MAXD>;
      for (var e = 0u; e < ND; e++) {
        kr[e] = Ks[j * KST + min(tx + e * TX, HS - 1u)];
      }
      for (var a = 0u; a < R; a++) {
        let ds = dS[(ty + a * NY) * BC + j];
        for (var e = 0u; e < ND; e++) {
          acc[a * MAXD + e] += ds * kr[e];
        }
      }
    }
  }

  for (var a = 0u; a < R; a++) {
    let q = q0 + ty + a * NY;
    if (q < T) {
      let o = base + q * C3;
      for (var e = 0u; e < ND; e++) {
        let d = tx + e * TX;
        if (d < HS) {
          var v = acc[a * MAXD + e] * scale;
          if (params.accumulate != 0u) {
            v += dqkv[o + d];
          }
          dqkv[o + d] = v;
        }
      }
    }
  }
}

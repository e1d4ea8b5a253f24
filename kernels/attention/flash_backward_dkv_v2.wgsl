// Flash attention backward, dK and dV, v2: register tiles. Same contract as v1 (flash_backward_dkv.wgsl): writes
// channels [C, 3C) of dqkv (B, T, 3C) from qkv, dout, lse and D.
//
// One workgroup per (block of BC keys, head, batch), TX x NY threads, NY = BC / R. Thread (tx, ty) owns key rows
// j = ty + a·NY (a < R); per streamed block of BR queries (only those at or below the diagonal) it computes the
// R x NE tiles of Sᵀ = K Qᵀ and dPᵀ = V dOᵀ for queries i = tx + e·TX, P = exp(scale·S − lse) and
// dS = P ∘ (dP − D), shares both, then accumulates dV += Pᵀ dO and dK += dSᵀ Q for dims d = tx + e·TX as
// R x ND tiles.
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

override HS: u32 = 64; // <= TX * MAXD
override BC: u32 = 32; // keys per workgroup (NY thread rows of R each)
override R: u32 = 4; // key rows per thread, <= MAXK
override BR: u32 = 16; // queries per streamed block, <= TX * MAXE
override TX: u32 = 16;
override NY: u32 = BC / R; // thread rows (derived: not set by the host)
override SEG: bool = false;
const MAXK: u32 = 4u;
const MAXE: u32 = 4u;
const MAXD: u32 = 8u;

var<workgroup> Ks: array<f32, BC * HS>;
var<workgroup> Vs: array<f32, BC * HS>;
var<workgroup> Qs: array<f32, BR * (HS + 1u)>; // padded: threads of a row read different queries at one d
var<workgroup> dOs: array<f32, BR * (HS + 1u)>;
var<workgroup> Ps: array<f32, BR * BC>; // [query][key]
var<workgroup> dS: array<f32, BR * BC>;
var<workgroup> Ls: array<f32, BR>;
var<workgroup> Ds: array<f32, BR>;

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
  let k0 = wg.x * BC;
  let tx = lid.x;
  let ty = lid.y;
  let NT = TX * NY;
  let QST = HS + 1u;
  let NE = (BR + TX - 1u) / TX;
  let ND = (HS + TX - 1u) / TX;
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
  var dk: array<f32, MAXK * MAXD>;
  var dv: array<f32, MAXK * MAXD>;
  for (var i = 0u; i < MAXK * MAXD; i++) {
    dk[i] = 0.0;
    dv[i] = 0.0;
  }
  // Queries that see a key of this block: [k0, qEnd); with SEG, key row a is seen by the queries before ke[a].
  var qEnd = T;
  var ke: array<u32, MAXK>;
  for (var a = 0u; a < MAXK; a++) {
    ke[a] = T;
    if (SEG) {
      ke[a] = bounds[2u * (b * T + min(k0 + ty + a * NY, T - 1u)) + 1u];
    }
  }
  if (SEG) {
    qEnd = bounds[2u * (b * T + min(k0 + BC, T) - 1u) + 1u];
  }

  let nqb = (qEnd + BR - 1u) / BR;
  for (var qb = k0 / BR; qb < nqb; qb++) {
    let q0 = qb * BR;
    workgroupBarrier();
    for (var i = li; i < BR * HS; i += NT) {
      let rr = i / HS;
      let d = i % HS;
      var qv = 0.0;
      var gv = 0.0;
      if (q0 + rr < T) {
        qv = qkv[base + (q0 + rr) * C3 + d];
        gv = dout[obase + (q0 + rr) * C + d];
      }
      Qs[rr * QST + d] = qv;
      dOs[rr * QST + d] = gv;
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
    var s: array<f32, MAXK * MAXE>;
    var dp: array<f32, MAXK * MAXE>;
    for (var i = 0u; i < MAXK * MAXE; i++) {
      s[i] = 0.0;
      dp[i] = 0.0;
    }
    for (var d = 0u; d < HS; d++) {
      var qr: array<f32, MAXE>;
      var gr: array<f32, MAXE>;
      for (var e = 0u; e < NE; e++) {
        let i = min(tx + e * TX, BR - 1u);
        qr[e] = Qs[i * QST + d];
        gr[e] = dOs[i * QST + d];
      }
      for (var a = 0u; a < R; a++) {
        let kv = Ks[(ty + a * NY) * HS + d];
        let vv = Vs[(ty + a * NY) * HS + d];
        for (var e = 0u; e < NE; e++) {
          s[a * MAXE + e] += kv * qr[e];
          dp[a * MAXE + e] += vv * gr[e];
        }
      }
    }
    for (var a = 0u; a < R; a++) {
      let j = ty + a * NY;
      let k = k0 + j;
      for (var e = 0u; e < NE; e++) {
        let i = tx + e * TX;
        let q = q0 + i;
        if (i < BR) {
          var p = 0.0;
          var ds = 0.0;
          if (k <= q && q < T && (!SEG || q < ke[a])) {
            p = exp(s[a * MAXE + e] * scale - Ls[i]);
            ds = p * (dp[a * MAXE + e] - Ds[i]);
          }
          Ps[i * BC + j] = p;
          dS[i * BC + j] = ds;
        }
      }
    }
    workgroupBarrier();
    // Queries before this workgroup's first key contribute nothing; rows past T (or past a key's segment) hold
    // zeros.
    var i0 = 0u;
    if (k0 > q0) {
      i0 = min(k0 - q0, BR);
    }
    for (var i = i0; i < BR; i++) {
      var qr: array<f32, MAXD>;
      var gr: array<f32, MAXD>;
      for (var e = 0u; e < ND; e++) {
        let d = min(tx + e * TX, HS - 1u);
        qr[e] = Qs[i * QST + d];
        gr[e] = dOs[i * QST + d];
      }
      for (var a = 0u; a < R; a++) {
        let j = ty + a * NY;
        let p = Ps[i * BC + j];
        let ds = dS[i * BC + j];
        for (var e = 0u; e < ND; e++) {
          dv[a * MAXD + e] += p * gr[e];
          dk[a * MAXD + e] += ds * qr[e];
        }
      }
    }
  }

  for (var a = 0u; a < R; a++) {
    let k = k0 + ty + a * NY;
    if (k < T) {
      let o = base + k * C3;
      for (var e = 0u; e < ND; e++) {
        let d = tx + e * TX;
        if (d < HS) {
          var kv = dk[a * MAXD + e] * scale;
          var vv = dv[a * MAXD + e];
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
}

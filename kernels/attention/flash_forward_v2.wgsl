// Causal multi-head flash attention, forward, v2: register tiles. Same contract as v1 (flash_forward.wgsl): qkv
// (B, T, 3C) packed, out (B, T, C), lse (B, NH, T).
//
// One workgroup per (block of BR queries, head, batch), TX x NY threads, NY = BR / R. Thread (tx, ty) owns query rows
// r = ty + a·NY (a < R), and for those rows the scores of keys j = tx + e·TX of each BC-key block
// and the output dims d = tx + e·TX. Per key block: S = scale·Q Kᵀ as R x NE register tiles (R + NE
// workgroup loads per R·NE multiply-adds), the row max merged from TX partial maxima, P = exp(S − m) computed
// once per element and shared, then O += P V as R x ND register tiles. Key blocks above the diagonal are never
// loaded; within the diagonal block a key after the query contributes an exact 0 (its score is never used).
// SEG (packed rows, shared.ts): keys before the start of a query's segment are masked like keys after it, and key
// blocks before the segment start of the block's first query are never loaded; compiled out when SEG is false.
struct Params {
  B: u32,
  T: u32,
  NH: u32,
}

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read> bounds: array<u32>;
@group(0) @binding(4) var<uniform> params: Params;

override HS: u32 = 64; // head size, <= TX * MAXD
override BR: u32 = 32; // queries per workgroup (NY thread rows of R each)
override BC: u32 = 32; // keys per streamed block, <= TX * MAXE
override R: u32 = 4; // query rows per thread, <= MAXQ
override TX: u32 = 16; // threads sharing a row
override NY: u32 = BR / R; // thread rows (derived: not set by the host)
override SEG: bool = false; // segments given: bounds holds each token's segment [start, end)
const MAXQ: u32 = 4u;
const MAXE: u32 = 4u;
const MAXD: u32 = 8u;
const NEG: f32 = -3.0e38;

var<workgroup> Qs: array<f32, BR * HS>;
var<workgroup> Ks: array<f32, BC * (HS + 1u)>; // padded rows: threads of a row read different keys at one d
var<workgroup> Vs: array<f32, BC * HS>;
var<workgroup> Ps: array<f32, BR * BC>;
var<workgroup> Part: array<f32, BR * TX>; // partial row maxima, then partial row sums

@compute @workgroup_size(TX, NY)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let T = params.T;
  let C = params.NH * HS;
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

  for (var i = li; i < BR * HS; i += NT) {
    let rr = i / HS;
    var v = 0.0;
    if (q0 + rr < T) {
      v = qkv[base + (q0 + rr) * C3 + i % HS];
    }
    Qs[i] = v;
  }

  var m: array<f32, MAXQ>;
  var l: array<f32, MAXQ>;
  var acc: array<f32, MAXQ * MAXD>;
  var s: array<f32, MAXQ * MAXE>;
  var qs: array<u32, MAXQ>; // with SEG: the first key each row may see
  for (var a = 0u; a < MAXQ; a++) {
    m[a] = NEG;
    l[a] = 0.0;
    qs[a] = 0u;
    if (SEG) {
      qs[a] = bounds[2u * (b * T + min(q0 + ty + a * NY, T - 1u))];
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
    workgroupBarrier(); // Ks, Vs, Ps and Part of the previous block are no longer read
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
      Vs[i] = vv;
    }
    workgroupBarrier();

    // Scores as an R x NE register tile.
    for (var i = 0u; i < MAXQ * MAXE; i++) {
      s[i] = 0.0;
    }
    for (var d = 0u; d < HS; d++) {
      var kr: array<f32, MAXE>;
      for (var e = 0u; e < NE; e++) {
        kr[e] = Ks[min(tx + e * TX, BC - 1u) * KST + d];
      }
      for (var a = 0u; a < R; a++) {
        let qv = Qs[(ty + a * NY) * HS + d];
        for (var e = 0u; e < NE; e++) {
          s[a * MAXE + e] += qv * kr[e];
        }
      }
    }
    // Mask (keys after the query, past T, past the block, or before the query's segment) and the partial row maxima.
    for (var a = 0u; a < R; a++) {
      let q = q0 + ty + a * NY;
      var pm = NEG;
      for (var e = 0u; e < NE; e++) {
        let j = tx + e * TX;
        let k = k0 + j;
        var v = NEG;
        if (j < BC && k <= q && k < T && (!SEG || k >= qs[a])) {
          v = s[a * MAXE + e] * scale;
          pm = max(pm, v);
        }
        s[a * MAXE + e] = v;
      }
      Part[(ty + a * NY) * TX + tx] = pm;
    }
    workgroupBarrier();
    var corr: array<f32, MAXQ>;
    for (var a = 0u; a < R; a++) {
      let r = ty + a * NY;
      var mb = m[a];
      for (var t = 0u; t < TX; t++) {
        mb = max(mb, Part[r * TX + t]);
      }
      corr[a] = exp(m[a] - mb);
      m[a] = mb;
    }
    workgroupBarrier(); // every thread has read the maxima before Part is reused for sums
    for (var a = 0u; a < R; a++) {
      let r = ty + a * NY;
      var ps = 0.0;
      for (var e = 0u; e < NE; e++) {
        let j = tx + e * TX;
        var p = 0.0;
        if (s[a * MAXE + e] > NEG) {
          p = exp(s[a * MAXE + e] - m[a]);
        }
        ps += p;
        if (j < BC) {
          Ps[r * BC + j] = p;
        }
      }
      Part[r * TX + tx] = ps;
    }
    workgroupBarrier();
    // O = O·corr + P V as an R x ND register tile; l = l·corr + Σ P.
    for (var a = 0u; a < R; a++) {
      let r = ty + a * NY;
      var ls = 0.0;
      for (var t = 0u; t < TX; t++) {
        ls += Part[r * TX + t];
      }
      l[a] = l[a] * corr[a] + ls;
      for (var e = 0u; e < ND; e++) {
        acc[a * MAXD + e] *= corr[a];
      }
    }
    let nj = min(BC, kEnd - k0);
    for (var j = 0u; j < nj; j++) {
      var vr: array<f32, MAXD>;
      for (var e = 0u; e < ND; e++) {
        vr[e] = Vs[j * HS + min(tx + e * TX, HS - 1u)];
      }
      for (var a = 0u; a < R; a++) {
        // A key after the query (or of another segment) is skipped, not multiplied by 0: its V may be anything,
        // even NaN.
        if (k0 + j <= q0 + ty + a * NY && (!SEG || k0 + j >= qs[a])) {
          let p = Ps[(ty + a * NY) * BC + j];
          for (var e = 0u; e < ND; e++) {
            acc[a * MAXD + e] += p * vr[e];
          }
        }
      }
    }
  }

  for (var a = 0u; a < R; a++) {
    let q = q0 + ty + a * NY;
    if (q < T) {
      let inv = 1.0 / l[a];
      let ob = (b * T + q) * C + h * HS;
      for (var e = 0u; e < ND; e++) {
        let d = tx + e * TX;
        if (d < HS) {
          out[ob + d] = acc[a * MAXD + e] * inv;
        }
      }
      if (tx == 0u) {
        lse[(b * params.NH + h) * T + q] = m[a] + log(l[a]);
      }
    }
  }
}

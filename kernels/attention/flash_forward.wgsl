// Causal multi-head flash attention, forward. qkv is packed (B, T, 3C) as GPT-2's qkv matmul writes it (q at
// channels [0, C), k at [C, 2C), v at [2C, 3C); head h at h*HS within each); out is (B, T, C) with head h at
// channels [h*HS, (h+1)*HS); lse is (B, NH, T): the log-sum-exp of each row's scaled scores, for the backward.
//
// One workgroup per (block of BR queries, head, batch): Q tile in workgroup memory, then K/V blocks of BC keys
// streamed through workgroup memory with the online softmax (running max m and sum l per row). Key blocks
// entirely above the diagonal are never loaded. Thread (r, c), c < TPR, of row r computes the scores of keys
// c, c + TPR, ... of the block and owns output dims c, c + TPR, ... (at most MAXD of them) of row r.
//
// SEG (packed rows, shared.ts): bounds (B, T, 2) holds each token's segment [start, end); a query also needs
// key >= its start, and the key blocks before the start of the block's first query are never loaded. With SEG false
// (bounds then a placeholder) that code folds away.
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

override HS: u32 = 64; // head size
override BR: u32 = 16; // queries per workgroup
override BC: u32 = 16; // keys per streamed block
override TPR: u32 = 16; // threads per query row; HS <= TPR * MAXD
override SEG: bool = false; // segments given: bounds holds each token's segment [start, end)
const MAXD: u32 = 8u;

var<workgroup> Qs: array<f32, BR * HS>;
var<workgroup> Ks: array<f32, BC * HS>;
var<workgroup> Vs: array<f32, BC * HS>;
var<workgroup> S: array<f32, BR * BC>;

@compute @workgroup_size(TPR, BR)
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
  let r = lid.y;
  let c = lid.x;
  let q = q0 + r;
  let NT = BR * TPR;
  let scale = 1.0 / sqrt(f32(HS));
  let base = b * T * C3 + h * HS; // element (t, part, d) at base + t * C3 + part * C + d

  // Q tile, coalesced along d; rows past T are zeros (their results are never written).
  for (var i = li; i < BR * HS; i += NT) {
    let rr = i / HS;
    let d = i % HS;
    var v = 0.0;
    if (q0 + rr < T) {
      v = qkv[base + (q0 + rr) * C3 + d];
    }
    Qs[i] = v;
  }

  var m = -3.0e38; // running max of this row's scaled scores
  var l = 0.0; // running sum of exp(score - m)
  var acc: array<f32, MAXD>;
  for (var j = 0u; j < MAXD; j++) {
    acc[j] = 0.0;
  }
  let ND = (HS + TPR - 1u) / TPR;

  // Keys [kStart, kEnd) are the only ones any row of this block may see; this row sees keys from qStart.
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
    workgroupBarrier(); // the previous block's Ks, Vs and S are no longer read
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
    // Keys of this block that row q may see: j0 <= j < nvis (k0 + j <= q, k0 + j < T, k0 + j >= qStart).
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
      for (var d = 0u; d < HS; d++) {
        s += Qs[r * HS + d] * Ks[j * HS + d];
      }
      S[r * BC + j] = s * scale;
    }
    workgroupBarrier();
    if (nvis > j0) {
      var mb = m;
      for (var j = j0; j < nvis; j++) {
        mb = max(mb, S[r * BC + j]);
      }
      let corr = exp(m - mb);
      l *= corr;
      for (var e = 0u; e < ND; e++) {
        acc[e] *= corr;
      }
      for (var j = j0; j < nvis; j++) {
        let p = exp(S[r * BC + j] - mb);
        l += p;
        for (var e = 0u; e < ND; e++) {
          let d = c + e * TPR;
          if (d < HS) {
            acc[e] += p * Vs[j * HS + d];
          }
        }
      }
      m = mb;
    }
  }

  if (q < T) {
    let inv = 1.0 / l;
    let ob = (b * T + q) * C + h * HS;
    for (var e = 0u; e < ND; e++) {
      let d = c + e * TPR;
      if (d < HS) {
        out[ob + d] = acc[e] * inv;
      }
    }
    if (c == 0u) {
      lse[(b * params.NH + h) * T + q] = m + log(l);
    }
  }
}

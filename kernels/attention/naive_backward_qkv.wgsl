// Naive causal attention, backward step 2: one thread per element of dqkv (B, T, 3C).
//   dq[q, d] = scale * sum_{k <= q} dpre[q, k] k[k, d]
//   dk[k, d] = scale * sum_{q >= k} dpre[q, k] q[q, d]
//   dv[k, d] =         sum_{q >= k} att[q, k] dout[q, d]
// (per batch and head; all matrices (B, NH, T, T)). accumulate = 1 adds into dqkv instead of overwriting.
// SEG: the sums run over the pairs of one segment only (segments[b·T + q] == segments[b·T + k]).
struct Params {
  B: u32,
  T: u32,
  NH: u32,
  HS: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> att: array<f32>;
@group(0) @binding(2) var<storage, read> dpre: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dqkv: array<f32>;
@group(0) @binding(5) var<storage, read> segments: array<i32>;
@group(0) @binding(6) var<uniform> params: Params;

override WG: u32 = 64;
override SEG: bool = false;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let T = params.T;
  let NH = params.NH;
  let HS = params.HS;
  let C = NH * HS;
  let C3 = 3u * C;
  if (i >= params.B * T * C3) {
    return;
  }
  let ch3 = i % C3;
  let t = (i / C3) % T;
  let b = i / (C3 * T);
  let part = ch3 / C;
  let ch = ch3 % C;
  let h = ch / HS;
  let scale = 1.0 / sqrt(f32(HS));
  let m = (b * NH + h) * T * T; // matrix of this (b, h)
  var st = 0;
  if (SEG) {
    st = segments[b * T + t];
  }
  var s = 0.0;
  if (part == 0u) {
    let ko = b * T * C3 + C + ch;
    for (var k = 0u; k <= t; k++) {
      if (SEG && segments[b * T + k] != st) {
        continue;
      }
      s += dpre[m + t * T + k] * qkv[ko + k * C3];
    }
    s *= scale;
  } else if (part == 1u) {
    let qo = b * T * C3 + ch;
    for (var q = t; q < T; q++) {
      if (SEG && segments[b * T + q] != st) {
        continue;
      }
      s += dpre[m + q * T + t] * qkv[qo + q * C3];
    }
    s *= scale;
  } else {
    let go = b * T * C + ch;
    for (var q = t; q < T; q++) {
      if (SEG && segments[b * T + q] != st) {
        continue;
      }
      s += att[m + q * T + t] * dout[go + q * C];
    }
  }
  if (params.accumulate != 0u) {
    s += dqkv[i];
  }
  dqkv[i] = s;
}

// Naive causal attention, forward step 1: the full probability matrix att (B, NH, T, T), one thread per row
// (b, h, q): scores scale * q·k for k <= q, softmax over them, zeros above the diagonal. qkv is (B, T, 3C).
// SEG (packed rows): also only keys with the query's segment id, segments[b·T + k] == segments[b·T + q] (the
// definition, compared id by id); the others get probability 0.
struct Params {
  B: u32,
  T: u32,
  NH: u32,
  HS: u32,
}

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> att: array<f32>;
@group(0) @binding(2) var<storage, read> segments: array<i32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 64;
override SEG: bool = false;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = gid.x + gid.y * nwg.x * WG;
  let T = params.T;
  let NH = params.NH;
  let HS = params.HS;
  if (row >= params.B * NH * T) {
    return;
  }
  let q = row % T;
  let h = (row / T) % NH;
  let b = row / (T * NH);
  let C = NH * HS;
  let C3 = 3u * C;
  let qo = (b * T + q) * C3 + h * HS;
  let scale = 1.0 / sqrt(f32(HS));
  let a = row * T;
  var sq = 0;
  if (SEG) {
    sq = segments[b * T + q];
  }
  var m = -3.0e38;
  for (var k = 0u; k <= q; k++) {
    if (SEG && segments[b * T + k] != sq) {
      continue;
    }
    let ko = (b * T + k) * C3 + C + h * HS;
    var s = 0.0;
    for (var d = 0u; d < HS; d++) {
      s += qkv[qo + d] * qkv[ko + d];
    }
    s *= scale;
    att[a + k] = s;
    m = max(m, s);
  }
  var sum = 0.0;
  for (var k = 0u; k <= q; k++) {
    if (SEG && segments[b * T + k] != sq) {
      continue;
    }
    let e = exp(att[a + k] - m);
    att[a + k] = e;
    sum += e;
  }
  let inv = 1.0 / sum;
  for (var k = 0u; k < T; k++) {
    var p = 0.0;
    if (k <= q && (!SEG || segments[b * T + k] == sq)) {
      p = att[a + k] * inv;
    }
    att[a + k] = p;
  }
}

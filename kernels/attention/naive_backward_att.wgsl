// Naive causal attention, backward step 1: the score gradient dpre (B, NH, T, T), one thread per row (b, h, q):
// datt[k] = dout_q · v_k, then through the softmax dpre[k] = att[k] * (datt[k] - sum_j att[j] datt[j]) for
// k <= q; zeros above the diagonal. (The 1/sqrt(HS) scale is applied in step 2.) SEG: zeros for keys of another
// segment too.
struct Params {
  B: u32,
  T: u32,
  NH: u32,
  HS: u32,
}

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> att: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dpre: array<f32>;
@group(0) @binding(4) var<storage, read> segments: array<i32>;
@group(0) @binding(5) var<uniform> params: Params;

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
  let go = (b * T + q) * C + h * HS;
  let a = row * T;
  var sq = 0;
  if (SEG) {
    sq = segments[b * T + q];
  }
  var dot = 0.0;
  for (var k = 0u; k <= q; k++) {
    if (SEG && segments[b * T + k] != sq) {
      continue;
    }
    let vo = (b * T + k) * C3 + 2u * C + h * HS;
    var s = 0.0;
    for (var d = 0u; d < HS; d++) {
      s += dout[go + d] * qkv[vo + d];
    }
    dpre[a + k] = s;
    dot += att[a + k] * s;
  }
  for (var k = 0u; k < T; k++) {
    var g = 0.0;
    if (k <= q && (!SEG || segments[b * T + k] == sq)) {
      g = att[a + k] * (dpre[a + k] - dot);
    }
    dpre[a + k] = g;
  }
}

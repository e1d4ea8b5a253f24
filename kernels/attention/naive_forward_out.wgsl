// Naive causal attention, forward step 2: out[b, q, h*HS + d] = sum_{k <= q} att[b, h, q, k] * v[b, k, h, d],
// one thread per output element. out is (B, T, C). SEG: keys of another segment are skipped (their att is 0, and
// their v may be anything).
struct Params {
  B: u32,
  T: u32,
  NH: u32,
  HS: u32,
}

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> att: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> segments: array<i32>;
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 64;
override SEG: bool = false;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let T = params.T;
  let NH = params.NH;
  let HS = params.HS;
  let C = NH * HS;
  if (i >= params.B * T * C) {
    return;
  }
  let ch = i % C;
  let q = (i / C) % T;
  let b = i / (C * T);
  let h = ch / HS;
  let a = ((b * NH + h) * T + q) * T;
  let vo = b * T * 3u * C + 2u * C + ch;
  var sq = 0;
  if (SEG) {
    sq = segments[b * T + q];
  }
  var s = 0.0;
  for (var k = 0u; k <= q; k++) {
    if (SEG && segments[b * T + k] != sq) {
      continue;
    }
    s += att[a + k] * qkv[vo + k * 3u * C];
  }
  out[i] = s;
}

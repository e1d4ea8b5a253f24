// Flash attention backward, step 1: D[b, h, t] = sum_d dout[b, t, h*HS + d] * out[b, t, h*HS + d] (= rowsum of
// P ∘ dP, FlashAttention-2's D), one thread per (b, h, t). dout and out are (B, T, C); D is (B, NH, T).
struct Params {
  B: u32,
  T: u32,
  NH: u32,
  HS: u32,
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> D: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let T = params.T;
  if (i >= params.B * params.NH * T) {
    return;
  }
  let t = i % T;
  let h = (i / T) % params.NH;
  let b = i / (T * params.NH);
  let C = params.NH * params.HS;
  let o = (b * T + t) * C + h * params.HS;
  var s = 0.0;
  for (var d = 0u; d < params.HS; d++) {
    s += dout[o + d] * out[o + d];
  }
  D[i] = s;
}

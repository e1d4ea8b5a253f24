// LayerNorm forward for CPU (SwiftShader) adapters: the same outputs as layernorm_forward.wgsl (mean, centred
// two-pass variance, rstd, out), one invocation per row instead of one workgroup per row. On SwiftShader a workgroup
// barrier switches coroutines and every load with a computed address is a gather (a scalar load per lane), so a
// row's three passes run in one invocation without barriers or workgroup memory, reading vec4s; the 4 lanes of a
// vec4 accumulator are added pairwise at the end. Needs C % 4 == 0.
struct Params {
  N: u32,
  C: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

override WG: u32 = 64;

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= params.N) {
    return;
  }
  let C4 = params.C / 4u;
  let base = r * C4;
  var s = vec4<f32>(0.0);
  for (var j = 0u; j < C4; j++) {
    s += x[base + j];
  }
  let m = hsum(s) / f32(params.C);
  var q = vec4<f32>(0.0);
  for (var j = 0u; j < C4; j++) {
    let d = x[base + j] - m;
    q += d * d;
  }
  let rs = inverseSqrt(hsum(q) / f32(params.C) + params.eps);
  for (var j = 0u; j < C4; j++) {
    out[base + j] = (x[base + j] - m) * rs * weight[j] + bias[j];
  }
  mean[r] = m;
  rstd[r] = rs;
}

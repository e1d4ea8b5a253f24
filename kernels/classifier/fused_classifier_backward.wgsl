// Backward of the fused classifier's per-row losses: the forward already wrote G = dL/dlogits for
// L = scale · Σ_r mask[r]·loss[r] / count. For an upstream gradient g (R) of the losses the exact VJP is
//   dlogits[r, v] = G[r, v] · g[r] · count / scale,
// which is G itself when g is the intended g[r] = scale · mask[r] / count. One thread per vec4 of (R, Vp).
struct Params {
  R: u32,
  Vp: u32,
  inv_scale: f32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> saved: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> dlosses: array<f32>;
@group(0) @binding(2) var<storage, read> count: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * WG;
  let Vp4 = params.Vp / 4u;
  if (idx >= params.R * Vp4) {
    return;
  }
  let r = idx / Vp4;
  var d = saved[idx] * (dlosses[r] * max(count[0], 1.0) * params.inv_scale);
  if (params.accumulate != 0u) {
    d += dlogits[idx];
  }
  dlogits[idx] = d;
}

// out (+)= src: passes a gradient through unchanged (the backward of add and of the residual stream).
struct Params {
  n: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  var v = src[i];
  if (params.accumulate != 0u) {
    v += out[i];
  }
  out[i] = v;
}

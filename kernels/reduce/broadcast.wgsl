// out[i] (+)= scale * g[0] for every i: the backward of sum and mean.
struct Params {
  n: u32,
  scale: f32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  var v = params.scale * g[0];
  if (params.accumulate != 0u) {
    v += out[i];
  }
  out[i] = v;
}

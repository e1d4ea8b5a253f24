// out (+)= src, as accumulate.wgsl, for CPU (SwiftShader) adapters: vec4s, a grid-stride loop over them with about
// 16 per invocation (the host sizes the grid), because there one element per invocation costs more in the
// invocation than in the element. n % 4 == 0.
struct Params {
  n: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n4 = params.n / 4u;
  for (var i = gid.x; i < n4; i += nwg.x * WG) {
    var v = src[i];
    if (params.accumulate != 0u) {
      v += out[i];
    }
    out[i] = v;
  }
}

// out = a + b, as add.wgsl, for CPU (SwiftShader) adapters: vec4s, a grid-stride loop with about 16 per invocation
// (the host sizes the grid). n % 4 == 0.
struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n4 = params.n / 4u;
  for (var i = gid.x; i < n4; i += nwg.x * WG) {
    out[i] = a[i] + b[i];
  }
}

// out0 (+)= src and out1 (+)= src in one pass, for CPU (SwiftShader) adapters: the backward of add, which hands its
// output's gradient to both inputs, in one dispatch instead of two (there a dispatch has a cost of its own). The
// accumulate flags are per output; the outputs are different buffers. Layout as accumulate_v2.wgsl; n % 4 == 0.
struct Params {
  n: u32,
  accumulate0: u32,
  accumulate1: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> out0: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out1: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n4 = params.n / 4u;
  for (var i = gid.x; i < n4; i += nwg.x * WG) {
    let s = src[i];
    var v0 = s;
    if (params.accumulate0 != 0u) {
      v0 += out0[i];
    }
    out0[i] = v0;
    var v1 = s;
    if (params.accumulate1 != 0u) {
      v1 += out1[i];
    }
    out1[i] = v1;
  }
}

// LayerNorm backward, second stage for CPU adapters: dweight[c] (+)= Σ_k pw[k, c] and dbias[c] (+)= Σ_k pb[k, c]
// over the K row chunks, one invocation per 4 columns of one tensor (even: weight, odd: bias) adding the chunks in
// order with vec4 loads: no workgroup memory, no barriers, the same bits on every run. Needs C % 4 == 0.
struct Params {
  K: u32,
  C: u32,
  accumulate_w: u32,
  accumulate_b: u32,
}

@group(0) @binding(0) var<storage, read> pw: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> pb: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dweight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dbias: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 32;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let C4 = params.C / 4u;
  let c4 = gid.x / 2u;
  if (c4 >= C4) {
    return;
  }
  var s = vec4<f32>(0.0);
  if (gid.x % 2u == 0u) {
    for (var k = 0u; k < params.K; k++) {
      s += pw[k * C4 + c4];
    }
    if (params.accumulate_w != 0u) {
      s += dweight[c4];
    }
    dweight[c4] = s;
  } else {
    for (var k = 0u; k < params.K; k++) {
      s += pb[k * C4 + c4];
    }
    if (params.accumulate_b != 0u) {
      s += dbias[c4];
    }
    dbias[c4] = s;
  }
}

// dx (+)= dout * d/dx gelu(x), as gelu_backward.wgsl (the same formula, per component), for CPU (SwiftShader)
// adapters: vec4s, a grid-stride loop with about 16 per invocation (the host sizes the grid). n % 4 == 0.
struct Params {
  n: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dx: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 64;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n4 = params.n / 4u;
  for (var i = gid.x; i < n4; i += nwg.x * WG) {
    let v = x[i];
    let u = SQRT_2_OVER_PI * (v + 0.044715 * v * v * v);
    let a = exp(-2.0 * abs(u));
    let pos = u >= vec4<f32>(0.0);
    let s = select(a / (1.0 + a), 1.0 / (1.0 + a), pos);
    let one_minus_s = select(1.0 / (1.0 + a), a / (1.0 + a), pos);
    let local_grad = s + 2.0 * v * s * one_minus_s * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * v * v);
    var g = local_grad * dout[i];
    if (params.accumulate != 0u) {
      g += dx[i];
    }
    dx[i] = g;
  }
}

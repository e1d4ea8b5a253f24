// GPT-2's GELU, tanh approximation: out = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
// Computed as x * sigmoid(2u) (the same function): 1 + tanh(u) cancels catastrophically for negative u.
struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

// sigmoid(2u) from exp(-2|u|), which never overflows.
fn sigmoid2(u: f32) -> f32 {
  let a = exp(-2.0 * abs(u));
  return select(a / (1.0 + a), 1.0 / (1.0 + a), u >= 0.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  let v = x[i];
  let u = SQRT_2_OVER_PI * (v + 0.044715 * v * v * v);
  out[i] = v * sigmoid2(u);
}

// Fused AdamW (Loshchilov & Hutter), one thread per parameter, as PyTorch's AdamW computes it:
//   g  = grad * clip_scale                       (clip_scale = min(1, max_norm / ‖grads‖) when norm_sq is given)
//   m  = β1 m + (1 − β1) g;   v = β2 v + (1 − β2) g²
//   p  = p − lr (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + eps) − lr · weight_decay · p
// Weight decay is decoupled and applies only where weight_decay ≠ 0 (the caller passes 0 for biases and norms).
struct Params {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  bias_correction1: f32, // 1 − β1^t
  bias_correction2: f32, // 1 − β2^t
  max_norm: f32,         // ≤ 0: no clipping
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> norm_sq: array<f32>; // [0] = Σ grad² over all parameters
@group(0) @binding(5) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  var scale = 1.0;
  if (params.max_norm > 0.0) {
    let norm = sqrt(norm_sq[0]);
    if (norm > params.max_norm) {
      scale = params.max_norm / norm;
    }
  }
  let g = grad[i] * scale;
  let mi = params.beta1 * m[i] + (1.0 - params.beta1) * g;
  let vi = params.beta2 * v[i] + (1.0 - params.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  let mhat = mi / params.bias_correction1;
  let vhat = vi / params.bias_correction2;
  let p = param[i];
  param[i] = p - params.lr * (mhat / (sqrt(vhat) + params.eps) + params.weight_decay * p);
}

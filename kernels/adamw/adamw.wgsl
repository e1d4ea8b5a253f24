// Fused AdamW (Loshchilov & Hutter) over a span of parameters packed in one buffer (their gradients and moments
// packed alike), one thread per element, as PyTorch's AdamW computes it:
//   g  = grad * clip_scale                       (clip_scale = min(1, max_norm / ‖grads‖), from adamw_status)
//   m  = β1 m + (1 − β1) g;   v = β2 v + (1 − β2) g²
//   p  = p − lr (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + eps) − lr · weight_decay · p
// Which tensor an element belongs to comes from `runs`: (first element, flags) pairs sorted by first element,
// flags bit 0 = weight decay (2-D weights, not biases and norms), bit 1 = padding between tensors (left alone).
// When adamw_status decided to skip the step (a non-finite loss or norm), nothing is written.
struct Params {
  n: u32,
  n_runs: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  bias_correction1: f32, // 1 − β1^t
  bias_correction2: f32, // 1 − β2^t
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> runs: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read> status: array<f32>; // [norm², clip scale, apply (1) or skip (0), ...]
@group(0) @binding(6) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n || status[2] == 0.0) {
    return;
  }
  // The last run starting at or before i (runs[0].x is 0): [lo, hi) holds it.
  var lo = 0u;
  var hi = params.n_runs;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (runs[mid].x <= i) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  let flags = runs[lo].y;
  if ((flags & 2u) != 0u) {
    return;
  }
  let weight_decay = select(0.0, params.weight_decay, (flags & 1u) != 0u);
  let g = grad[i] * status[1];
  let mi = params.beta1 * m[i] + (1.0 - params.beta1) * g;
  let vi = params.beta2 * v[i] + (1.0 - params.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  let mhat = mi / params.bias_correction1;
  let vhat = vi / params.bias_correction2;
  let p = param[i];
  param[i] = p - params.lr * (mhat / (sqrt(vhat) + params.eps) + weight_decay * p);
}

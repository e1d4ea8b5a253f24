// Fused AdamW for CPU (SwiftShader) adapters: per element exactly the arithmetic of adamw.wgsl (the same bits for
// the same status), with 64 elements per 4 invocations instead of one per invocation. There, one element per
// invocation spent most of its time on the invocation itself and on a binary search of the runs for every element;
// here lane j of group c (4 consecutive invocations) takes elements 64c + j, +4, ..., +60: one binary search for
// the first, then the run's flags and the start of the next run stay in registers until an element reaches it.
// Padding runs (flags bit 1) are left alone; nothing is written when adamw_status decided to skip the step.
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

override WG: u32 = 64; // a multiple of 4: 16·WG elements per workgroup
const PER: u32 = 16u; // elements per invocation

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let c = (wg.y * nwg.x + wg.x) * (WG / 4u) + li / 4u;
  let first = 4u * PER * c + li % 4u;
  if (first >= params.n || status[2] == 0.0) {
    return;
  }
  // The last run starting at or before `first` (runs[0].x is 0): [lo, hi) holds it.
  var lo = 0u;
  var hi = params.n_runs;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (runs[mid].x <= first) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  let scale = status[1];
  // The run's flags and where the next run starts (n past the last run), kept in registers between elements.
  var flags = runs[lo].y;
  var next = select(params.n, runs[min(lo + 1u, params.n_runs - 1u)].x, lo + 1u < params.n_runs);
  for (var k = 0u; k < PER; k++) {
    let i = first + 4u * k;
    if (i >= params.n) {
      break;
    }
    while (i >= next) {
      lo++;
      flags = runs[lo].y;
      next = select(params.n, runs[min(lo + 1u, params.n_runs - 1u)].x, lo + 1u < params.n_runs);
    }
    if ((flags & 2u) != 0u) {
      continue;
    }
    let weight_decay = select(0.0, params.weight_decay, (flags & 1u) != 0u);
    let g = grad[i] * scale;
    let mi = params.beta1 * m[i] + (1.0 - params.beta1) * g;
    let vi = params.beta2 * v[i] + (1.0 - params.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    let mhat = mi / params.bias_correction1;
    let vhat = vi / params.bias_correction2;
    let p = param[i];
    param[i] = p - params.lr * (mhat / (sqrt(vhat) + params.eps) + weight_decay * p);
  }
}

// Second pass of the global gradient norm, and the decision to apply the step, in one workgroup:
//   status[0] = norm² = Σ partials (in a fixed order)
//   status[1] = clip scale = max_norm / norm where norm > max_norm > 0, else 1
//   status[2] = 1 to apply the step, 0 to skip it: with guard set, skip when norm² or any of the losses is not
//               finite (NaN or ±Inf), so that one bad batch leaves parameters and moments as they were
//   status[3 + j] = losses[j], so that one read after the step returns the losses with the norm
// Finiteness is tested on the bits (exponent all ones), which no compiler optimisation can assume away.
struct Params {
  n_partials: u32,
  n_losses: u32,
  max_norm: f32,
  guard: u32,
}

@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read> losses: array<f32>;
@group(0) @binding(2) var<storage, read_write> status: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 256;
var<workgroup> partial: array<f32, WG>;

fn is_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  var s = 0.0;
  for (var i = lid.x; i < params.n_partials; i += WG) {
    s += partials[i];
  }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (lid.x < half) {
      partial[lid.x] += partial[lid.x + half];
    }
    workgroupBarrier();
  }
  if (lid.x != 0u) {
    return;
  }
  let norm_sq = partial[0];
  var ok = is_finite(norm_sq);
  for (var j = 0u; j < params.n_losses; j++) {
    let l = losses[j];
    status[3u + j] = l;
    ok = ok && is_finite(l);
  }
  var scale = 1.0;
  if (params.max_norm > 0.0) {
    let norm = sqrt(norm_sq);
    if (norm > params.max_norm) {
      scale = params.max_norm / norm;
    }
  }
  status[0] = norm_sq;
  status[1] = scale;
  status[2] = select(0.0, 1.0, ok || params.guard == 0u);
}

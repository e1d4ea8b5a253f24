// dlogits[r, v] (+)= (softmax(logits[r, :])[v] - [v == targets[r]]) * dlosses[r]. Recomputes the row's max and
// sum of exp (one workgroup per row, as in the forward) instead of storing the probabilities.
struct Params {
  R: u32,
  V: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read> dlosses: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 64;
var<workgroup> wmax: array<f32, WG>;
var<workgroup> wsum: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= params.R) {
    return;
  }
  let base = r * params.V;
  var m = -3.0e38;
  var s = 0.0;
  for (var v = lid.x; v < params.V; v += WG) {
    let l = logits[base + v];
    if (l > m) {
      s = s * exp(m - l) + 1.0;
      m = l;
    } else {
      s += exp(l - m);
    }
  }
  wmax[lid.x] = m;
  wsum[lid.x] = s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (lid.x < half) {
      let m1 = wmax[lid.x];
      let m2 = wmax[lid.x + half];
      let mm = max(m1, m2);
      wsum[lid.x] = wsum[lid.x] * exp(m1 - mm) + wsum[lid.x + half] * exp(m2 - mm);
      wmax[lid.x] = mm;
    }
    workgroupBarrier();
  }
  let rowmax = wmax[0];
  let inv = 1.0 / wsum[0];
  let t = targets[r];
  let g = dlosses[r];
  for (var v = lid.x; v < params.V; v += WG) {
    let p = exp(logits[base + v] - rowmax) * inv;
    var indicator = 0.0;
    if (i32(v) == t) {
      indicator = 1.0;
    }
    var d = (p - indicator) * g;
    if (params.accumulate != 0u) {
      d += dlogits[base + v];
    }
    dlogits[base + v] = d;
  }
}

// losses[r] = logsumexp(logits[r, :]) - logits[r, targets[r]] for logits of shape (R, V). One workgroup per row:
// each thread keeps a running (max, sum of exp) over a strided slice (online softmax), then the pairs are merged.
// A target outside [0, V) gives NaN, so a bad label can never pass unnoticed.
struct Params {
  R: u32,
  V: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read_write> losses: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

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
    return; // uniform per workgroup: all threads of this group leave together
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
  if (lid.x == 0u) {
    let t = targets[r];
    var nan_bits = 0x7fc00000u; // a var, so the NaN is made at run time (a constant NaN is a WGSL error)
    var loss = bitcast<f32>(nan_bits);
    if (t >= 0 && u32(t) < params.V) {
      // (max − target logit) first: both are large for large logits, their difference is exact or nearly so.
      loss = (wmax[0] - logits[base + u32(t)]) + log(wsum[0]);
    }
    losses[r] = loss;
  }
}

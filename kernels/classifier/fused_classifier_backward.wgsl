// Backward of the fused classifier's per-row losses (fused_classifier.wgsl), for an upstream gradient dlosses (R):
//   dlogits[r, v] = dlosses[r] · mask[r] · (p[v] − [v == t])   for v < V, and 0 for V ≤ v < Vp,
// with p = softmax(logits[r, :V]) computed again here as the forward does (llm.c's fused classifier), so nothing of
// size (R, Vp) is kept between forward and backward. Masked rows (mask[r] = 0) get 0 whatever their target; an
// unmasked row with a target outside [0, V) gets NaN. With in_place, the gradient is written over the logits (each
// thread reads an element before it writes it, and every read of the statistics pass ends at a barrier before the
// first write); otherwise into dlogits, overwriting or (accumulate) adding.
struct Params {
  R: u32,
  V: u32,
  Vp: u32,
  has_mask: u32,
  in_place: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read_write> logits: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> dlosses: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> params: Params;

override WG: u32 = 256; // a multiple of 16
const FAN: u32 = 16u;
var<workgroup> wmax: array<f32, WG>;
var<workgroup> wsum: array<f32, WG>;
var<workgroup> wmax2: array<f32, WG / FAN>;
var<workgroup> wsum2: array<f32, WG / FAN>;

// Merges two (max, Σ exp(x − max)) pairs.
fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= params.R) {
    return; // uniform per workgroup
  }
  let i = lid.x;
  // The row's statistics exactly as the forward computes them.
  let Vp4 = params.Vp / 4u;
  let V4 = (params.V + 3u) / 4u;
  let base = r * Vp4;
  let lane = vec4<u32>(0u, 1u, 2u, 3u);
  let low = vec4<f32>(-3.0e38);
  var m = -3.0e38;
  var s = 0.0;
  for (var q = i; q < V4; q += WG) {
    let l = select(low, logits[base + q], lane + 4u * q < vec4<u32>(params.V));
    let mn = max(m, max(max(l.x, l.y), max(l.z, l.w)));
    let e = exp(l - vec4<f32>(mn));
    s = s * exp(m - mn) + ((e.x + e.y) + (e.z + e.w));
    m = mn;
  }
  wmax[i] = m;
  wsum[i] = s;
  workgroupBarrier();
  if (i < WG / FAN) {
    var p = vec2<f32>(wmax[i], wsum[i]);
    for (var k = 1u; k < FAN; k++) {
      p = merge(p, vec2<f32>(wmax[i + k * (WG / FAN)], wsum[i + k * (WG / FAN)]));
    }
    wmax2[i] = p.x;
    wsum2[i] = p.y;
  }
  workgroupBarrier();
  var row = vec2<f32>(wmax2[0], wsum2[0]);
  for (var k = 1u; k < WG / FAN; k++) {
    row = merge(row, vec2<f32>(wmax2[k], wsum2[k]));
  }
  let rowmax = row.x;
  let inv = 1.0 / row.y;
  var m_r = 1.0;
  if (params.has_mask != 0u) {
    m_r = mask[r];
  }
  let t = targets[r];
  let valid = t >= 0 && u32(t) < params.V;
  let counted = m_r != 0.0;
  let k = dlosses[r] * m_r;
  var nan_bits = 0x7fc00000u; // a var, so the NaN is made at run time (a constant NaN is a WGSL error)
  let nan4 = vec4<f32>(bitcast<f32>(nan_bits));
  let zero = vec4<f32>(0.0);
  for (var q = i; q < Vp4; q += WG) {
    let v = lane + 4u * q;
    let real = v < vec4<u32>(params.V);
    let p = exp(logits[base + q] - vec4<f32>(rowmax)) * inv;
    let onehot = select(zero, vec4<f32>(1.0), vec4<i32>(v) == vec4<i32>(t));
    var d = select(zero, (p - onehot) * k, real);
    if (!counted) {
      d = zero;
    } else if (!valid) {
      d = select(zero, nan4, real);
    }
    if (params.in_place != 0u) {
      logits[base + q] = d;
    } else {
      if (params.accumulate != 0u) {
        d += dlogits[base + q];
      }
      dlogits[base + q] = d;
    }
  }
}

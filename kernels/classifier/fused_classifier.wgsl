// llm.c's fused classifier, forward: per row r of logits (R, Vp), of which only the first V columns are real (Vp is V
// padded, e.g. 50257 -> 50304), with p = softmax(logits[r, :V]) and t = targets[r]:
//   losses[r] = mask[r] · (−log p[t])       (exactly 0 where mask[r] = 0; a target outside [0, V) gives NaN)
// The probabilities are never stored: one workgroup per row keeps a running (max, sum of exp) per thread over a strided
// slice (online softmax) and merges the pairs in two 16-way levels. Padded columns never enter the softmax (they are
// read as part of a vec4 and discarded). The backward (fused_classifier_backward.wgsl) computes the same statistics
// again and writes the gradient, over the logits when asked: the logits are read once here and kept intact.
struct Params {
  R: u32,
  V: u32,
  Vp: u32,
  has_mask: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

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
  // Rows are read as vec4 (Vp is a multiple of 4): per vec4, one rescale of the running sum and four exps. Lanes at
  // or past V become -3e38 (exp gives 0), so whatever the padding holds never enters.
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
  // Merge the pairs in two levels (WG/16 threads merge 16 each, then thread 0 merges those): two barriers.
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
  if (i != 0u) {
    return;
  }
  var row = vec2<f32>(wmax2[0], wsum2[0]);
  for (var k = 1u; k < WG / FAN; k++) {
    row = merge(row, vec2<f32>(wmax2[k], wsum2[k]));
  }
  var m_r = 1.0;
  if (params.has_mask != 0u) {
    m_r = mask[r];
  }
  let t = targets[r];
  var nan_bits = 0x7fc00000u; // a var, so the NaN is made at run time (a constant NaN is a WGSL error)
  var loss = 0.0;
  if (m_r != 0.0) {
    loss = bitcast<f32>(nan_bits);
    if (t >= 0 && u32(t) < params.V) {
      // (max − target logit) first: both are large for large logits, their difference is exact or nearly so.
      loss = m_r * ((row.x - logits[base + u32(t) / 4u][u32(t) % 4u]) + log(row.y));
    }
  }
  losses[r] = loss;
}

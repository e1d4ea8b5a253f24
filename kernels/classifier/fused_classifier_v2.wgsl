// The fused classifier's forward for CPU (SwiftShader) adapters: the same losses as fused_classifier.wgsl,
//   losses[r] = mask[r] · (−log softmax(logits[r, :V])[targets[r]])   (exactly 0 where mask[r] = 0, NaN for a bad
//   target on a counted row),
// with one subgroup of 4 invocations per row instead of one workgroup of 256. On SwiftShader a workgroup barrier
// switches coroutines and workgroup memory is plain memory behind them, so the row's statistics are merged by
// subgroup operations (4 SIMD lanes, a register shuffle) with no barrier at all. Lane j reads vec4s j, j + 4, j + 8,
// ... of the row into four vec4 accumulators indexed by constants (16 columns per lane per step), in two passes:
// the exact row max, then Σ exp(x − max) (no rescaling: one exp per element). Columns at or past V read as -3e38
// (exp gives 0), so the padding never enters. fused_classifier_backward_v2.wgsl computes the same statistics.
// Needs subgroups of exactly 4 invocations made of consecutive local invocation indices (SwiftShader's).
enable subgroups;

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

override WG: u32 = 64; // a multiple of 4: WG / 4 rows per workgroup

const LOW: f32 = -3.0e38;

// Vec4 q of the row at vec4 `base`, LOW in the columns at or past V (the address clamped into the real columns).
fn ld(base: u32, q: u32) -> vec4<f32> {
  let V = params.V;
  let v = vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u);
  return select(vec4<f32>(LOW), logits[base + min(q, (V - 1u) / 4u)], v < vec4<u32>(V));
}

// (max, Σ exp(x − max)) of the row's first V columns, the same in all four lanes.
fn row_stats(base: u32, lane: u32) -> vec2<f32> {
  let steps = (params.V + 63u) / 64u; // 16 vec4s (64 columns) per subgroup per step
  var m0 = vec4<f32>(LOW);
  var m1 = vec4<f32>(LOW);
  var m2 = vec4<f32>(LOW);
  var m3 = vec4<f32>(LOW);
  for (var k = 0u; k < steps; k++) {
    let q = 16u * k + lane;
    m0 = max(m0, ld(base, q));
    m1 = max(m1, ld(base, q + 4u));
    m2 = max(m2, ld(base, q + 8u));
    m3 = max(m3, ld(base, q + 12u));
  }
  let mm = max(max(m0, m1), max(m2, m3));
  let mx = subgroupMax(max(max(mm.x, mm.y), max(mm.z, mm.w)));
  let m4 = vec4<f32>(mx);
  var s0 = vec4<f32>(0.0);
  var s1 = vec4<f32>(0.0);
  var s2 = vec4<f32>(0.0);
  var s3 = vec4<f32>(0.0);
  for (var k = 0u; k < steps; k++) {
    let q = 16u * k + lane;
    s0 += exp(ld(base, q) - m4);
    s1 += exp(ld(base, q + 4u) - m4);
    s2 += exp(ld(base, q + 8u) - m4);
    s3 += exp(ld(base, q + 12u) - m4);
  }
  let s = (s0 + s1) + (s2 + s3);
  return vec2<f32>(mx, subgroupAdd((s.x + s.y) + (s.z + s.w)));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  // No early return (the subgroup operations need all four lanes): rows past R (the grid is rounded up) read row
  // R − 1 and store nothing.
  let r = (wg.y * nwg.x + wg.x) * (WG / 4u) + li / 4u;
  let base = min(r, params.R - 1u) * (params.Vp / 4u);
  let row = row_stats(base, lane);
  if (lane != 0u || r >= params.R) {
    return;
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

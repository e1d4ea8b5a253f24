// Backward of the fused classifier's losses for CPU (SwiftShader) adapters: the same gradient as
// fused_classifier_backward.wgsl,
//   dlogits[r, v] = dlosses[r] · mask[r] · (p[v] − [v == t])   for v < V, and 0 for V ≤ v < Vp,
// with p = softmax(logits[r, :V]) from the statistics that fused_classifier_v2.wgsl computes, computed again here
// the same way: one subgroup of 4 invocations per row, vec4 accumulators, subgroup max and sum, no workgroup memory
// and no barriers. Masked rows get 0 whatever their target, an unmasked row with a target outside [0, V) NaN. With
// in_place the gradient goes over the logits: each lane writes only the vec4s it reads in the gradient pass, and the
// statistics of the whole row are complete (the subgroup sum takes all four lanes' reads) before any write;
// otherwise into dlogits, overwriting or (accumulate) adding.
// Needs subgroups of exactly 4 invocations made of consecutive local invocation indices (SwiftShader's).
enable subgroups;

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

// The gradient of vec4 q of the row (q < Vp / 4), written over the logits or into dlogits.
fn put(base: u32, q: u32, rowmax: f32, inv: f32, k: f32, t: i32, counted: bool, valid: bool) {
  let zero = vec4<f32>(0.0);
  let v = vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u);
  let real = v < vec4<u32>(params.V);
  let p = exp(logits[base + q] - vec4<f32>(rowmax)) * inv;
  let onehot = select(zero, vec4<f32>(1.0), vec4<i32>(v) == vec4<i32>(t));
  var d = select(zero, (p - onehot) * k, real);
  if (!counted) {
    d = zero;
  } else if (!valid) {
    var nan_bits = 0x7fc00000u; // a var, so the NaN is made at run time (a constant NaN is a WGSL error)
    d = select(zero, vec4<f32>(bitcast<f32>(nan_bits)), real);
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

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  // No early return before the subgroup operations: rows past R (the grid is rounded up) read row R − 1 and write
  // nothing.
  let r = (wg.y * nwg.x + wg.x) * (WG / 4u) + li / 4u;
  let rr = min(r, params.R - 1u);
  let Vp4 = params.Vp / 4u;
  let base = rr * Vp4;
  let row = row_stats(base, lane);
  if (r >= params.R) {
    return;
  }
  let inv = 1.0 / row.y;
  var m_r = 1.0;
  if (params.has_mask != 0u) {
    m_r = mask[r];
  }
  let t = targets[r];
  let valid = t >= 0 && u32(t) < params.V;
  let counted = m_r != 0.0;
  let k = dlosses[r] * m_r;
  // Every vec4 of the row, padding included (it gets 0): lane j takes j, j + 4, ..., four per step.
  for (var q = lane; q < Vp4; q += 16u) {
    put(base, q, row.x, inv, k, t, counted, valid);
    if (q + 4u < Vp4) {
      put(base, q + 4u, row.x, inv, k, t, counted, valid);
    }
    if (q + 8u < Vp4) {
      put(base, q + 8u, row.x, inv, k, t, counted, valid);
    }
    if (q + 12u < Vp4) {
      put(base, q + 12u, row.x, inv, k, t, counted, valid);
    }
  }
}

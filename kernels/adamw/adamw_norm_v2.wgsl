// First pass of the global gradient norm for CPU (SwiftShader) adapters: the same partial sums of squares as
// adamw_norm.wgsl, partials[base + p] = Σ grad[i]² over partial p's share of a span, with one subgroup of 4
// invocations per partial instead of a workgroup, so no workgroup memory and no barriers (on SwiftShader a barrier
// switches coroutines, and adamw_norm's tree of eight of them cost more than the sums). The span is cut into blocks
// of 16 elements; partial p takes blocks p, p + P, p + 2P, ... (P = params.partials), lane j of the subgroup the
// elements 16b + j, +4, +8, +12 into a vec4 of sums, whose 4 components are added in pairs and the 4 lanes' by a
// subgroup sum. adamw_status adds the partials of every span in a fixed order: the same norm on every run.
// Needs subgroups of exactly 4 invocations made of consecutive local invocation indices (SwiftShader's).
enable subgroups;

struct Params {
  n: u32,
  base: u32,
  partials: u32,
}

@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 64; // a multiple of 4: WG / 4 partials per workgroup

// grad[i]², 0 past the span's end (the address clamped into it).
fn sq(i: u32) -> f32 {
  let g = grad[min(i, params.n - 1u)];
  return select(0.0, g * g, i < params.n);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let P = params.partials;
  let p = wg.x * (WG / 4u) + li / 4u;
  let blocks = (params.n + 15u) / 16u;
  // The same number of steps for every subgroup (uniform, for the subgroup sum after the loop); blocks past the end
  // add zeros.
  let steps = (blocks + P - 1u) / P;
  var s = vec4<f32>(0.0);
  for (var k = 0u; k < steps; k++) {
    let i = 16u * (p + k * P) + lane;
    s += vec4<f32>(sq(i), sq(i + 4u), sq(i + 8u), sq(i + 12u));
  }
  let t = subgroupAdd((s.x + s.y) + (s.z + s.w));
  if (lane == 0u && p < P) {
    partials[params.base + p] = t;
  }
}

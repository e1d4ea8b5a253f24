// GPT-2 LayerNorm over the last dimension: for each row r of x (N, C),
//   mean = Σ x / C,  var = Σ (x − mean)² / C,  rstd = 1 / sqrt(var + eps),
//   out[r, c] = (x[r, c] − mean) · rstd · weight[c] + bias[c];  mean[r] and rstd[r] are saved for backward.
// One workgroup per row; each thread takes a strided slice (consecutive threads read consecutive addresses), and the
// partial sums meet in workgroup memory (two levels of 16-way sums). The variance is a second pass over the row
// (centred, so no cancellation from E[x²] − mean²); the row is read three times, from cache after the first.
struct Params {
  N: u32,
  C: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

override WG: u32 = 256; // a multiple of 16
const FAN: u32 = 16u;
var<workgroup> partial: array<f32, WG>;
var<workgroup> partial2: array<f32, WG / FAN>;

// Sum of every thread's v over the workgroup, in a fixed order; every thread gets the result. Two levels, three
// barriers (a binary tree would take log2(WG) + 1): WG/16 threads each add 16 values (consecutive threads,
// consecutive addresses), then every thread adds the WG/16 results. Call in uniform control flow.
fn workgroup_sum(v: f32, i: u32) -> f32 {
  partial[i] = v;
  workgroupBarrier();
  let groups = WG / FAN;
  if (i < groups) {
    var s = 0.0;
    for (var k = 0u; k < FAN; k++) {
      s += partial[i + k * groups];
    }
    partial2[i] = s;
  }
  workgroupBarrier();
  var total = 0.0;
  for (var k = 0u; k < groups; k++) {
    total += partial2[k];
  }
  workgroupBarrier(); // everyone has read partial2 before the next call overwrites it
  return total;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= params.N) {
    return; // uniform per workgroup
  }
  let C = params.C;
  let base = r * C;
  let i = lid.x;
  var s = 0.0;
  for (var c = i; c < C; c += WG) {
    s += x[base + c];
  }
  let m = workgroup_sum(s, i) / f32(C);
  var q = 0.0;
  for (var c = i; c < C; c += WG) {
    let d = x[base + c] - m;
    q += d * d;
  }
  let rs = inverseSqrt(workgroup_sum(q, i) / f32(C) + params.eps);
  for (var c = i; c < C; c += WG) {
    out[base + c] = (x[base + c] - m) * rs * weight[c] + bias[c];
  }
  if (i == 0u) {
    mean[r] = m;
    rstd[r] = rs;
  }
}

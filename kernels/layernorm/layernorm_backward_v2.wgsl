// LayerNorm backward for CPU (SwiftShader) adapters, fused as layernorm_backward.wgsl (dx, and per-chunk partials of
// dweight and dbias summed afterwards by layernorm_backward_reduce v2), with one invocation per row: no workgroup
// memory, no barriers, vec4 loads. With xhat = (x − mean)·rstd and g = dout · weight,
//   dx[r, c]  (+)= rstd · (g − mean_c(g) − xhat · mean_c(g · xhat))     (per accumulate; skipped if !write_dx)
//   pw[k, c]   = Σ_{r in chunk k} dout[r, c] · xhat[r, c],   pb[k, c] = Σ_{r in chunk k} dout[r, c],
// where chunk k is the 4 rows of subgroup k, rows [4k, 4k + 4): the 4 lanes' terms meet in a subgroup sum, so each
// partial is written once, by lane 0. Rows past N add zeros. Needs C % 4 == 0 and subgroups of exactly 4
// invocations made of consecutive local invocation indices (SwiftShader's).
enable subgroups;

struct Params {
  N: u32,
  C: u32,
  accumulate: u32,
  write_dx: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dx: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> pw: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> pb: array<vec4<f32>>;
@group(0) @binding(8) var<uniform> params: Params;

override WG: u32 = 64; // a multiple of 4

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let N = params.N;
  let C4 = params.C / 4u;
  // No early return: the subgroup sums need all four lanes. Rows past N (and whole chunks past the end of the
  // rounded-up grid) read row N − 1, write no dx and add zeros.
  let k = (wg.y * nwg.x + wg.x) * (WG / 4u) + li / 4u;
  let r = 4u * k + lane;
  let live = r < N;
  let rr = min(r, N - 1u);
  let base = rr * C4;
  let m = mean[rr];
  let rs = rstd[rr];
  var sg = vec4<f32>(0.0);
  var sgx = vec4<f32>(0.0);
  for (var j = 0u; j < C4; j++) {
    let g = dout[base + j] * weight[j];
    sg += g;
    sgx += g * ((x[base + j] - m) * rs);
  }
  let mg = hsum(sg) / f32(params.C);
  let mgx = hsum(sgx) / f32(params.C);
  let write_dx = live && params.write_dx != 0u;
  let store = lane == 0u && 4u * k < N;
  for (var j = 0u; j < C4; j++) {
    let d = dout[base + j];
    let xhat = (x[base + j] - m) * rs;
    if (write_dx) {
      var v = rs * (d * weight[j] - mg - xhat * mgx);
      if (params.accumulate != 0u) {
        v += dx[base + j];
      }
      dx[base + j] = v;
    }
    let zero = vec4<f32>(0.0);
    let w = subgroupAdd(select(zero, d * xhat, live));
    let b = subgroupAdd(select(zero, d, live));
    if (store) {
      pw[k * C4 + j] = w;
      pb[k * C4 + j] = b;
    }
  }
}

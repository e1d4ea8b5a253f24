// LayerNorm backward, the input gradient. With xhat = (x − mean)·rstd and g = dout · weight (per element),
//   dx = rstd · (g − mean_c(g) − xhat · mean_c(g · xhat)),
// which follows from differentiating xhat through mean and rstd. One workgroup per row, the two row means by a
// tree in workgroup memory; dx (+)= per the accumulate uniform.
struct Params {
  N: u32,
  C: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

override WG: u32 = 256; // a power of two
var<workgroup> part_g: array<f32, WG>;
var<workgroup> part_gx: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= params.N) {
    return; // uniform per workgroup
  }
  let C = params.C;
  let base = r * C;
  let i = lid.x;
  let m = mean[r];
  let rs = rstd[r];
  var sg = 0.0;
  var sgx = 0.0;
  for (var c = i; c < C; c += WG) {
    let g = dout[base + c] * weight[c];
    sg += g;
    sgx += g * (x[base + c] - m) * rs;
  }
  part_g[i] = sg;
  part_gx[i] = sgx;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (i < half) {
      part_g[i] += part_g[i + half];
      part_gx[i] += part_gx[i + half];
    }
    workgroupBarrier();
  }
  let mg = part_g[0] / f32(C);
  let mgx = part_gx[0] / f32(C);
  for (var c = i; c < C; c += WG) {
    let xhat = (x[base + c] - m) * rs;
    var v = rs * (dout[base + c] * weight[c] - mg - xhat * mgx);
    if (params.accumulate != 0u) {
      v += dx[base + c];
    }
    dx[base + c] = v;
  }
}

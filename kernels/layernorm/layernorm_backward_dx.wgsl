// LayerNorm backward, the input gradient. With xhat = (x − mean)·rstd and g = dout · weight (per element),
//   dx = rstd · (g − mean_c(g) − xhat · mean_c(g · xhat)),
// which follows from differentiating xhat through mean and rstd. One workgroup per row, the two row means in
// workgroup memory; dx (+)= per the accumulate uniform.
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

override WG: u32 = 256; // a multiple of 16
const FAN: u32 = 16u;
var<workgroup> part_g: array<f32, WG>;
var<workgroup> part_gx: array<f32, WG>;
var<workgroup> part2_g: array<f32, WG / FAN>;
var<workgroup> part2_gx: array<f32, WG / FAN>;

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
  // Both sums in two levels (WG/16 threads add 16 values each, then every thread adds those): three barriers.
  part_g[i] = sg;
  part_gx[i] = sgx;
  workgroupBarrier();
  let groups = WG / FAN;
  if (i < groups) {
    var a = 0.0;
    var b = 0.0;
    for (var k = 0u; k < FAN; k++) {
      a += part_g[i + k * groups];
      b += part_gx[i + k * groups];
    }
    part2_g[i] = a;
    part2_gx[i] = b;
  }
  workgroupBarrier();
  var tg = 0.0;
  var tgx = 0.0;
  for (var k = 0u; k < groups; k++) {
    tg += part2_g[k];
    tgx += part2_gx[k];
  }
  let mg = tg / f32(C);
  let mgx = tgx / f32(C);
  for (var c = i; c < C; c += WG) {
    let xhat = (x[base + c] - m) * rs;
    var v = rs * (dout[base + c] * weight[c] - mg - xhat * mgx);
    if (params.accumulate != 0u) {
      v += dx[base + c];
    }
    dx[base + c] = v;
  }
}

// LayerNorm backward, fused: dx for every row, and per-chunk partials of dweight and dbias. With
// xhat = (x − mean)·rstd and g = dout · weight,
//   dx[r, c]  (+)= rstd · (g − mean_c(g) − xhat · mean_c(g · xhat))     (per accumulate; skipped if !write_dx)
//   pw[k, c]   = Σ_{r in chunk k} dout[r, c] · xhat[r, c],   pb[k, c] = Σ_{r in chunk k} dout[r, c],
// where chunk k is rows [k·rows, (k+1)·rows). One workgroup per chunk walks its rows in order; per row the two
// means are summed in two 16-way levels in workgroup memory. Thread i owns columns i, i + WG, ..., i + (PER−1)·WG
// and keeps their partials in registers, so x and dout are read from memory once (the second read of the row
// hits cache). The partials are summed over k by layernorm_backward_reduce, in a fixed order: no float atomics,
// the same bits on every run. Needs C ≤ PER·WG.
struct Params {
  N: u32,
  C: u32,
  rows: u32,
  accumulate: u32,
  write_dx: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<storage, read_write> pw: array<f32>;
@group(0) @binding(7) var<storage, read_write> pb: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

override WG: u32 = 256; // a multiple of 16
const FAN: u32 = 16u;
const PER: u32 = 8u; // columns per thread at most
var<workgroup> part_g: array<f32, WG>;
var<workgroup> part_gx: array<f32, WG>;
var<workgroup> part2_g: array<f32, WG / FAN>;
var<workgroup> part2_gx: array<f32, WG / FAN>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let k = wg.x + wg.y * nwg.x;
  let r0 = k * params.rows;
  if (r0 >= params.N) {
    return; // uniform per workgroup
  }
  let r1 = min(r0 + params.rows, params.N);
  let C = params.C;
  let i = lid.x;
  let groups = WG / FAN;
  var acc_w: array<f32, PER>;
  var acc_b: array<f32, PER>;
  for (var j = 0u; j < PER; j++) {
    acc_w[j] = 0.0;
    acc_b[j] = 0.0;
  }
  for (var r = r0; r < r1; r++) {
    let base = r * C;
    let m = mean[r];
    let rs = rstd[r];
    var sg = 0.0;
    var sgx = 0.0;
    for (var j = 0u; j < PER; j++) {
      let c = i + j * WG;
      if (c < C) {
        let g = dout[base + c] * weight[c];
        sg += g;
        sgx += g * (x[base + c] - m) * rs;
      }
    }
    part_g[i] = sg;
    part_gx[i] = sgx;
    workgroupBarrier();
    if (i < groups) {
      var a = 0.0;
      var b = 0.0;
      for (var q = 0u; q < FAN; q++) {
        a += part_g[i + q * groups];
        b += part_gx[i + q * groups];
      }
      part2_g[i] = a;
      part2_gx[i] = b;
    }
    workgroupBarrier();
    var tg = 0.0;
    var tgx = 0.0;
    for (var q = 0u; q < groups; q++) {
      tg += part2_g[q];
      tgx += part2_gx[q];
    }
    workgroupBarrier(); // every thread has read part2_* before the next row writes them
    let mg = tg / f32(C);
    let mgx = tgx / f32(C);
    for (var j = 0u; j < PER; j++) {
      let c = i + j * WG;
      if (c < C) {
        let d = dout[base + c];
        let xhat = (x[base + c] - m) * rs;
        if (params.write_dx != 0u) {
          var v = rs * (d * weight[c] - mg - xhat * mgx);
          if (params.accumulate != 0u) {
            v += dx[base + c];
          }
          dx[base + c] = v;
        }
        acc_w[j] += d * xhat;
        acc_b[j] += d;
      }
    }
  }
  for (var j = 0u; j < PER; j++) {
    let c = i + j * WG;
    if (c < C) {
      pw[k * C + c] = acc_w[j];
      pb[k * C + c] = acc_b[j];
    }
  }
}

// LayerNorm backward, first stage of the weight and bias gradients: per chunk of `rows` consecutive rows,
//   pw[k, c] = Σ_{r in chunk k} dout[r, c] · (x[r, c] − mean[r]) · rstd[r],   pb[k, c] = Σ_{r in chunk k} dout[r, c].
// One thread per (chunk, column): consecutive threads read consecutive columns of the same row. The partials
// (K, C) are then summed over k by sum_rows, in a fixed order: the result has the same bits on every run.
struct Params {
  N: u32,
  C: u32,
  rows: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> mean: array<f32>;
@group(0) @binding(2) var<storage, read> rstd: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> pw: array<f32>;
@group(0) @binding(5) var<storage, read_write> pb: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = gid.x;
  let k = wg.y;
  let C = params.C;
  if (c >= C) {
    return;
  }
  let r0 = k * params.rows;
  let r1 = min(r0 + params.rows, params.N);
  var sw = 0.0;
  var sb = 0.0;
  for (var r = r0; r < r1; r++) {
    let d = dout[r * C + c];
    sw += d * (x[r * C + c] - mean[r]) * rstd[r];
    sb += d;
  }
  pw[k * C + c] = sw;
  pb[k * C + c] = sb;
}

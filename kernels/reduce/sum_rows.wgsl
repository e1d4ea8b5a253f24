// out[n] (+)= sum over m of x[m, n] for x of shape (M, N): the bias gradient. One thread per column; neighbouring
// threads read neighbouring addresses of each row.
struct Params {
  M: u32,
  N: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n >= params.N) {
    return;
  }
  var s = 0.0;
  for (var m = 0u; m < params.M; m++) {
    s += x[m * params.N + n];
  }
  if (params.accumulate != 0u) {
    s += out[n];
  }
  out[n] = s;
}

// out[0] (+)= Σ x²: one workgroup per call; the caller accumulates every parameter's gradient into one buffer
// to get the global gradient norm squared.
struct Params {
  n: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  var s = 0.0;
  for (var i = lid.x; i < params.n; i += WG) {
    let xi = x[i];
    s += xi * xi;
  }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (lid.x < half) {
      partial[lid.x] += partial[lid.x + half];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    var total = partial[0];
    if (params.accumulate != 0u) {
      total += out[0];
    }
    out[0] = total;
  }
}

// First pass of the global gradient norm: partials[base + w] = Σ grad[i]² over the elements of workgroup w's
// grid-strided share of a span (elements w·WG + lane, then every nwg·WG). adamw_status adds the partials of every
// span in a fixed order, so the norm is the same on every run.
struct Params {
  n: u32,
  base: u32,
}

@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let stride = nwg.x * WG;
  var s = 0.0;
  for (var i = wg.x * WG + lid.x; i < params.n; i += stride) {
    let g = grad[i];
    s += g * g;
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
    partials[params.base + wg.x] = partial[0];
  }
}

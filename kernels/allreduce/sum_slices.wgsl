// out[i] = (x[i] + x[stride + i] + ... + x[(W-1)·stride + i]) · scale: the sum of W slices of one buffer, added
// left to right (slice 0 first, as the ranks are numbered), so each f32 addition is the one a host loop does.
// `scale` is 1 (sum) or 1/W for a power-of-two W (mean: then exactly the quotient); the host divides otherwise.
struct Params {
  n: u32,
  W: u32,
  stride: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  var acc = x[i];
  for (var r = 1u; r < params.W; r++) {
    acc = acc + x[r * params.stride + i];
  }
  out[i] = acc * params.scale;
}

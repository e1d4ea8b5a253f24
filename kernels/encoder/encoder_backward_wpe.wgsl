// dwpe[t, c] (+)= Σ_b dout[b, t, c] for t < T, and 0 for T ≤ t < maxT (positions the batch never used).
// One thread per (t, c), summing over b in order: deterministic; consecutive threads read consecutive channels.
struct Params {
  B: u32,
  T: u32,
  C: u32,
  maxT: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> dout: array<f32>;
@group(0) @binding(1) var<storage, read_write> dwpe: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * WG;
  let C = params.C;
  if (idx >= params.maxT * C) {
    return;
  }
  let t = idx / C;
  var s = 0.0;
  if (t < params.T) {
    let stride = params.T * C;
    for (var b = 0u; b < params.B; b++) {
      s += dout[b * stride + idx];
    }
  }
  if (params.accumulate != 0u) {
    s += dwpe[idx];
  }
  dwpe[idx] = s;
}

// Fills a buffer of 32-bit words with one bit pattern (a value, or a NaN sentinel for poisoning).
struct Params {
  n: u32,
  bits: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  // 2-D grid so more than 65535 workgroups' worth of elements can be filled.
  let i = gid.x + gid.y * nwg.x * WG;
  if (i < params.n) {
    out[i] = params.bits;
  }
}

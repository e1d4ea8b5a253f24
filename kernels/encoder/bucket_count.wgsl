// Step 1 of grouping positions by token (for the deterministic dwte): counts[tok] += 1 for every position whose
// token is in [0, V). Integer atomics: the counts are exact whatever the order. counts must be zero beforehand.
struct Params {
  N: u32,
  V: u32,
}

@group(0) @binding(0) var<storage, read> tokens: array<i32>;
@group(0) @binding(1) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * WG;
  if (n >= params.N) {
    return;
  }
  let tok = tokens[n];
  if (tok >= 0 && u32(tok) < params.V) {
    atomicAdd(&counts[u32(tok)], 1u);
  }
}

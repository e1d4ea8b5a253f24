// Step 3: every valid position n claims a slot in its token's bucket, unsorted[offsets[tok] + k]. The slot order
// depends on scheduling (an integer atomic), so step 4 reorders each bucket by position. cursor must be zero.
struct Params {
  N: u32,
  V: u32,
}

@group(0) @binding(0) var<storage, read> tokens: array<i32>;
@group(0) @binding(1) var<storage, read> offsets: array<u32>;
@group(0) @binding(2) var<storage, read_write> cursor: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> unsorted: array<u32>;
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * WG;
  if (n >= params.N) {
    return;
  }
  let tok = tokens[n];
  if (tok >= 0 && u32(tok) < params.V) {
    let k = atomicAdd(&cursor[u32(tok)], 1u);
    unsorted[offsets[u32(tok)] + k] = n;
  }
}

// Step 4: sorted[offsets[tok] + rank] = n, where rank = the number of positions in n's bucket smaller than n. The
// buckets then list their positions in increasing order whatever order step 3 produced: deterministic. Each thread
// scans its own bucket (work Σ bucket², spread over the bucket's threads).
struct Params {
  N: u32,
  V: u32,
}

@group(0) @binding(0) var<storage, read> tokens: array<i32>;
@group(0) @binding(1) var<storage, read> offsets: array<u32>;
@group(0) @binding(2) var<storage, read> unsorted: array<u32>;
@group(0) @binding(3) var<storage, read_write> sorted: array<u32>;
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = gid.x + gid.y * nwg.x * WG;
  if (n >= params.N) {
    return;
  }
  let tok = tokens[n];
  if (tok < 0 || u32(tok) >= params.V) {
    return;
  }
  let lo = offsets[u32(tok)];
  let hi = offsets[u32(tok) + 1u];
  var rank = 0u;
  for (var j = lo; j < hi; j++) {
    rank += select(0u, 1u, unsorted[j] < n);
  }
  sorted[lo + rank] = n;
}

// Step 2: offsets[v] = Σ_{u < v} counts[u] for v in [0, V], so offsets[V] is the number of valid positions.
// One workgroup: each thread sums a contiguous chunk of counts, the chunk totals are scanned in workgroup memory
// (Hillis–Steele, a barrier between each read and write), then each thread writes its chunk's running offsets.
struct Params {
  V: u32,
}

@group(0) @binding(0) var<storage, read> counts: array<u32>;
@group(0) @binding(1) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;
var<workgroup> sums: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let i = lid.x;
  let chunk = (params.V + WG - 1u) / WG;
  let lo = min(i * chunk, params.V);
  let hi = min(lo + chunk, params.V);
  var s = 0u;
  for (var v = lo; v < hi; v++) {
    s += counts[v];
  }
  sums[i] = s;
  workgroupBarrier();
  for (var d = 1u; d < WG; d *= 2u) {
    var prev = 0u;
    if (i >= d) {
      prev = sums[i - d];
    }
    workgroupBarrier();
    sums[i] += prev;
    workgroupBarrier();
  }
  // sums[i] is now inclusive: the chunk starts at the total of the chunks before it.
  var run = sums[i] - s;
  for (var v = lo; v < hi; v++) {
    offsets[v] = run;
    run += counts[v];
  }
  if (i == WG - 1u) {
    offsets[params.V] = sums[i];
  }
}

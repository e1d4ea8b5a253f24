// Segment bounds for attention over packed rows: for token t of row b (segments is (B, T) i32), the run of equal
// segment ids holding t spans [start, end) of the row; bounds[2·(b·T + t)] = start, bounds[2·(b·T + t) + 1] = end
// (indices within the row). The flash kernels mask with them (a query sees the keys from its start, a key is seen
// by the queries before its end) and skip the blocks outside them: start and end never decrease along a row.
//
// One workgroup per row. Thread i takes a contiguous chunk of the row and finds the last segment start and the
// first segment end inside it; a max-scan of the starts (forward) and a min-scan of the ends (backward) over the
// threads, Hillis–Steele in workgroup memory, give each chunk the bounds that enter it from outside; then each
// thread walks its chunk. O(T) work, log2(WG) barrier steps.
struct Params {
  B: u32,
  T: u32,
}

@group(0) @binding(0) var<storage, read> segments: array<i32>;
@group(0) @binding(1) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;

override WG: u32 = 256;
var<workgroup> starts: array<u32, WG>;
var<workgroup> ends: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let b = wg.x + wg.y * nwg.x;
  if (b >= params.B) {
    return; // uniform per workgroup
  }
  let T = params.T;
  let row = b * T;
  let i = lid.x;
  let chunk = (T + WG - 1u) / WG;
  let lo = min(i * chunk, T);
  let hi = min(lo + chunk, T);
  // A segment starts at t when t is the row's first token or its id differs from the previous token's, and ends
  // after t when t is the row's last token or the next id differs. 0 and T are the identities of max and min.
  var st = 0u;
  for (var t = lo; t < hi; t++) {
    if (t == 0u || segments[row + t] != segments[row + t - 1u]) {
      st = t;
    }
  }
  var en = T;
  for (var t = hi; t > lo; t--) {
    if (t == T || segments[row + t - 1u] != segments[row + t]) {
      en = t;
    }
  }
  starts[i] = st;
  ends[i] = en;
  workgroupBarrier();
  for (var d = 1u; d < WG; d *= 2u) {
    var s = 0u;
    var e = T;
    if (i >= d) {
      s = starts[i - d];
    }
    if (i + d < WG) {
      e = ends[i + d];
    }
    workgroupBarrier();
    starts[i] = max(starts[i], s);
    ends[i] = min(ends[i], e);
    workgroupBarrier();
  }
  // starts[i] is now the last start in chunks 0..i, ends[i] the first end in chunks i..WG-1: a chunk begins with
  // the bounds of the chunks before and after it.
  var cur = 0u;
  if (i > 0u) {
    cur = starts[i - 1u];
  }
  for (var t = lo; t < hi; t++) {
    if (t == 0u || segments[row + t] != segments[row + t - 1u]) {
      cur = t;
    }
    bounds[2u * (row + t)] = cur;
  }
  cur = T;
  if (i + 1u < WG) {
    cur = ends[i + 1u];
  }
  for (var t = hi; t > lo; t--) {
    if (t == T || segments[row + t - 1u] != segments[row + t]) {
      cur = t;
    }
    bounds[2u * (row + t - 1u) + 1u] = cur;
  }
}

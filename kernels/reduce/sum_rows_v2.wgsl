// out[n] (+)= sum over m of x[m, n] for x of shape (M, N), in two passes for adapters with many cores (v1 gives each
// column one thread that walks all M rows: N threads in all, 768 for a GPT-2 bias, far too few to fill a GPU).
// Pass 1 (partial): workgroup (c, k) sums rows [k·CHUNK, (k+1)·CHUNK) of columns [c·COLS, (c+1)·COLS): LANES
// threads per column, each over every LANES-th row of the chunk (neighbouring threads read neighbouring columns of
// a row), then the lanes' sums are added in workgroup memory in a fixed order. partials[k, n] holds the result.
// Pass 2 (finish): one thread per column adds its chunks' partials in order (and out[n] when accumulating).
// Both orders are fixed, so the result does not depend on scheduling.
struct Params {
  M: u32,
  N: u32,
  chunks: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override COLS: u32 = 64;
// Threads per workgroup of pass 1, a multiple of COLS and at most 256 (lane_sums): WG / COLS lanes per column.
override WG: u32 = 256;
override CHUNK: u32 = 256;

var<workgroup> lane_sums: array<f32, 256>;

@compute @workgroup_size(WG)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let LANES = WG / COLS;
  let col = li % COLS;
  let lane = li / COLS;
  let n = wg.x * COLS + col;
  let m0 = wg.y * CHUNK;
  let m1 = min(m0 + CHUNK, params.M);
  var s = 0.0;
  if (n < params.N) {
    for (var m = m0 + lane; m < m1; m += LANES) {
      s += x[m * params.N + n];
    }
  }
  lane_sums[li] = s;
  workgroupBarrier();
  if (lane == 0u && n < params.N) {
    var t = lane_sums[col];
    for (var l = 1u; l < LANES; l++) {
      t += lane_sums[l * COLS + col];
    }
    partials[wg.y * params.N + n] = t;
  }
}

@compute @workgroup_size(COLS)
fn finish(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  if (n >= params.N) {
    return;
  }
  var s = 0.0;
  for (var k = 0u; k < params.chunks; k++) {
    s += partials[k * params.N + n];
  }
  if (params.accumulate != 0u) {
    s += out[n];
  }
  out[n] = s;
}

// Step 5: dwte[tok, c] += Σ over the positions n of tok's bucket, in increasing n, of dout[n, c]. One workgroup per
// slot of `sorted`; only the first slot of each bucket does the work (so every used token row is summed once, in
// a fixed order: the same bits on every run). Threads take consecutive channels. dwte holds its old value or zeros
// (rows of tokens absent from the batch are not touched).
struct Params {
  N: u32,
  C: u32,
  V: u32,
}

@group(0) @binding(0) var<storage, read> tokens: array<i32>;
@group(0) @binding(1) var<storage, read> offsets: array<u32>;
@group(0) @binding(2) var<storage, read> sorted: array<u32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dwte: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let i = wg.x + wg.y * nwg.x;
  if (i >= params.N || i >= offsets[params.V]) {
    return; // past the valid positions: uniform per workgroup
  }
  let tok = u32(tokens[sorted[i]]);
  let lo = offsets[tok];
  if (i != lo) {
    return; // not the head of its bucket
  }
  let hi = offsets[tok + 1u];
  let C = params.C;
  for (var c = lid.x; c < C; c += WG) {
    var s = 0.0;
    for (var j = lo; j < hi; j++) {
      s += dout[sorted[j] * C + c];
    }
    dwte[tok * C + c] += s;
  }
}

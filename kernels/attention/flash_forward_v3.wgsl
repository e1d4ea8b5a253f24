// Causal multi-head flash attention, forward, for CPU (SwiftShader) adapters: the same outputs as v1 (out and the
// logsumexp per row) and the same layout (shared.ts), with no workgroup memory and no barriers. On SwiftShader an
// invocation is a lane of a 4-wide SIMD subgroup, a load with a computed address is a gather (a scalar load per
// lane), a barrier switches coroutines, and a subgroup broadcast is a register shuffle. So a subgroup takes 4
// consecutive queries of one (batch, head), one per lane, and walks the keys up to its last query: each lane loads
// a quarter of the key row and of the value row and the broadcasts give every lane the whole rows. A lane keeps its
// query row, the running max and sum and its output row in registers, as mat4x4 chunks of 16 dims indexed only by
// constants; keys after the lane's query add nothing. HS: a multiple of 4 up to 64 (chunks past HS are never read
// or written). SEG (packed rows, shared.ts): a key before the start of the lane's query's segment adds nothing
// either, and the walk starts at the segment start of the subgroup's first query; compiled out when SEG is false.
// Needs subgroups of exactly 4 invocations made of consecutive local invocation indices (SwiftShader's).
enable subgroups;
// The loops run to the block's end, the same for the 4 lanes of a subgroup (all of one block), which the uniformity
// analysis cannot see: it would reject the broadcasts inside.
diagnostic(off, subgroup_uniformity);

struct Params {
  B: u32,
  T: u32,
  NH: u32,
}

@group(0) @binding(0) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read> bounds: array<u32>;
@group(0) @binding(4) var<uniform> params: Params;

override HS: u32 = 64; // head size: a multiple of 4, at most 64
override WG: u32 = 64; // a multiple of 4: WG / 4 blocks of 4 queries per workgroup
override HS4: u32 = HS / 4u; // derived: vec4s per head row
override SEG: bool = false; // segments given: bounds holds each token's segment [start, end)

// Vec4 i of the row starting at vec4 `row` of qkv, zero past the head (its address clamped to the head's last).
fn at(row: u32, i: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), qkv[row + min(i, HS4 - 1u)], i < HS4);
}

// Dims 16c .. 16c + 15 of a row, read by this lane alone (column q: dims 16c + 4q .. +3).
fn own(row: u32, c: u32) -> mat4x4<f32> {
  return mat4x4<f32>(at(row, 4u * c), at(row, 4u * c + 1u), at(row, 4u * c + 2u), at(row, 4u * c + 3u));
}

// The same 16 dims, lane q loading column q and the broadcasts handing every lane all four.
fn shared_row(row: u32, c: u32, lane: u32) -> mat4x4<f32> {
  let v = at(row, 4u * c + lane);
  return mat4x4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                     subgroupBroadcast(v, 3u));
}

// Writes vec4 i of an output row, unless it is past the head.
fn put4(row: u32, i: u32, v: vec4<f32>) {
  if (i < HS4) {
    out[row + i] = v;
  }
}

// Writes chunk c of an output row.
fn put(row: u32, c: u32, o: mat4x4<f32>) {
  put4(row, 4u * c, o[0]);
  put4(row, 4u * c + 1u, o[1]);
  put4(row, 4u * c + 2u, o[2]);
  put4(row, 4u * c + 3u, o[3]);
}

fn dot16(a: mat4x4<f32>, b: mat4x4<f32>) -> f32 {
  return (dot(a[0], b[0]) + dot(a[1], b[1])) + (dot(a[2], b[2]) + dot(a[3], b[3]));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let T = params.T;
  let NH = params.NH;
  let C4 = NH * HS4;
  let C34 = 3u * C4;
  // This subgroup's block: queries 4·blk .. +3 of head h of batch b. No early return (the broadcasts need all four
  // lanes): blocks past the end of the rounded-up grid and queries past T read clamped rows and store nothing.
  let sg = (wg.y * nwg.x + wg.x) * (WG / 4u) + li / 4u;
  let nblk = (T + 3u) / 4u;
  let blk = sg % nblk;
  let h = (sg / nblk) % NH;
  let b = sg / (nblk * NH);
  let q = 4u * blk + lane;
  let live = b < params.B && q < T;
  let base = min(b, params.B - 1u) * T * C34 + h * HS4; // vec4 (t, part, d4) at base + t·C34 + part·C4 + d4
  let qrow = base + min(q, T - 1u) * C34;
  let scale = 1.0 / sqrt(f32(HS));

  let q0 = own(qrow, 0u);
  var q1 = mat4x4<f32>();
  var q2 = mat4x4<f32>();
  var q3 = mat4x4<f32>();
  if (HS > 16u) {
    q1 = own(qrow, 1u);
  }
  if (HS > 32u) {
    q2 = own(qrow, 2u);
  }
  if (HS > 48u) {
    q3 = own(qrow, 3u);
  }
  var m = -3.0e38; // running max of this row's scaled scores
  var l = 0.0; // running sum of exp(score − m)
  var o0 = mat4x4<f32>();
  var o1 = mat4x4<f32>();
  var o2 = mat4x4<f32>();
  var o3 = mat4x4<f32>();
  // Keys kstart .. the block's last query. A lane sees no key before its segment's start qstart: until then m stays
  // -3e38, l and o 0, and the first visible key sets them (corr = exp(-3e38 − s) = 0). Without segments every lane
  // sees key 0.
  var kstart = 0u;
  var qstart = 0u;
  if (SEG) {
    let rb = min(b, params.B - 1u) * T;
    kstart = bounds[2u * (rb + min(4u * blk, T - 1u))];
    qstart = bounds[2u * (rb + min(q, T - 1u))];
  }
  let kend = min(4u * blk + 4u, T);
  for (var j = kstart; j < kend; j++) {
    let krow = base + j * C34 + C4;
    let vrow = krow + C4;
    var s = dot16(q0, shared_row(krow, 0u, lane));
    if (HS > 16u) {
      s += dot16(q1, shared_row(krow, 1u, lane));
    }
    if (HS > 32u) {
      s += dot16(q2, shared_row(krow, 2u, lane));
    }
    if (HS > 48u) {
      s += dot16(q3, shared_row(krow, 3u, lane));
    }
    let visible = j <= q && (!SEG || j >= qstart);
    let mn = select(m, max(m, s * scale), visible);
    let corr = exp(m - mn);
    let p = select(0.0, exp(s * scale - mn), visible);
    l = l * corr + p;
    m = mn;
    // The value rows are shared by all four lanes; a lane past its query (or before its segment) adds nothing (not
    // even 0 · a NaN).
    let v0 = shared_row(vrow, 0u, lane);
    var v1 = mat4x4<f32>();
    var v2 = mat4x4<f32>();
    var v3 = mat4x4<f32>();
    if (HS > 16u) {
      v1 = shared_row(vrow, 1u, lane);
    }
    if (HS > 32u) {
      v2 = shared_row(vrow, 2u, lane);
    }
    if (HS > 48u) {
      v3 = shared_row(vrow, 3u, lane);
    }
    if (visible) {
      o0 = o0 * corr + v0 * p;
      if (HS > 16u) {
        o1 = o1 * corr + v1 * p;
      }
      if (HS > 32u) {
        o2 = o2 * corr + v2 * p;
      }
      if (HS > 48u) {
        o3 = o3 * corr + v3 * p;
      }
    }
  }

  if (live) {
    let inv = 1.0 / l;
    let ob = (b * T + q) * C4 + h * HS4;
    put(ob, 0u, o0 * inv);
    put(ob, 1u, o1 * inv);
    put(ob, 2u, o2 * inv);
    put(ob, 3u, o3 * inv);
    lse[(b * NH + h) * T + q] = m + log(l);
  }
}

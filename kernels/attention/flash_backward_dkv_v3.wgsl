// Flash attention backward, dK and dV, for CPU (SwiftShader) adapters: v1's arithmetic (P = exp(scale · q·k − lse),
// dS = P ∘ (dO·v − D), dV = Σ P dO, dK = scale · Σ dS q) with one key per lane: a subgroup takes 4 consecutive keys
// of one (batch, head) and walks the queries from its first key to T, each query row and dO row loaded a quarter
// per lane and shared by subgroup broadcasts; the lane's k, v, dK and dV rows stay in registers as mat4x4 chunks of
// 16 dims. No workgroup memory, no barriers, no atomics. dqkv is (B, T, 3C); this writes channels [C, 3C). HS: a
// multiple of 4 up to 64. Needs subgroups of exactly 4 invocations made of consecutive local invocation indices
// (SwiftShader's). SEG (packed rows, shared.ts): a query at or past the end of the lane's key's segment adds
// nothing either, and the walk ends at the segment end of the subgroup's last key.
enable subgroups;
// The loops run to the block's end, the same for the 4 lanes of a subgroup (all of one block), which the uniformity
// analysis cannot see: it would reject the broadcasts inside.
diagnostic(off, subgroup_uniformity);

struct Params {
  B: u32,
  T: u32,
  NH: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read> D: array<f32>;
@group(0) @binding(4) var<storage, read> bounds: array<u32>;
@group(0) @binding(5) var<storage, read_write> dqkv: array<vec4<f32>>;
@group(0) @binding(6) var<uniform> params: Params;

override HS: u32 = 64;
override WG: u32 = 64;
override HS4: u32 = HS / 4u; // derived: vec4s per head row
override SEG: bool = false;

fn at(row: u32, i: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), qkv[row + min(i, HS4 - 1u)], i < HS4);
}

fn at_dout(row: u32, i: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), dout[row + min(i, HS4 - 1u)], i < HS4);
}

fn own(row: u32, c: u32) -> mat4x4<f32> {
  return mat4x4<f32>(at(row, 4u * c), at(row, 4u * c + 1u), at(row, 4u * c + 2u), at(row, 4u * c + 3u));
}

fn shared_row(row: u32, c: u32, lane: u32) -> mat4x4<f32> {
  let v = at(row, 4u * c + lane);
  return mat4x4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                     subgroupBroadcast(v, 3u));
}

fn shared_dout(row: u32, c: u32, lane: u32) -> mat4x4<f32> {
  let v = at_dout(row, 4u * c + lane);
  return mat4x4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                     subgroupBroadcast(v, 3u));
}

fn dot16(a: mat4x4<f32>, b: mat4x4<f32>) -> f32 {
  return (dot(a[0], b[0]) + dot(a[1], b[1])) + (dot(a[2], b[2]) + dot(a[3], b[3]));
}

fn put4(row: u32, i: u32, v: vec4<f32>) {
  if (i < HS4) {
    var w = v;
    if (params.accumulate != 0u) {
      w += dqkv[row + i];
    }
    dqkv[row + i] = w;
  }
}

fn put(row: u32, c: u32, o: mat4x4<f32>) {
  put4(row, 4u * c, o[0]);
  put4(row, 4u * c + 1u, o[1]);
  put4(row, 4u * c + 2u, o[2]);
  put4(row, 4u * c + 3u, o[3]);
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
  // This subgroup's block: keys 4·blk .. +3 of head h of batch b (no early return, as in the forward).
  let sg = (wg.y * nwg.x + wg.x) * (WG / 4u) + li / 4u;
  let nblk = (T + 3u) / 4u;
  let blk = sg % nblk;
  let h = (sg / nblk) % NH;
  let b = sg / (nblk * NH);
  let k = 4u * blk + lane;
  let live = b < params.B && k < T;
  let bb = min(b, params.B - 1u);
  let base = bb * T * C34 + h * HS4;
  let obase = bb * T * C4 + h * HS4;
  let rbase = (bb * NH + h) * T;
  let krow = base + min(k, T - 1u) * C34 + C4;
  let vrow = krow + C4;
  let scale = 1.0 / sqrt(f32(HS));

  let k0 = own(krow, 0u);
  let v0 = own(vrow, 0u);
  var k1 = mat4x4<f32>();
  var v1 = mat4x4<f32>();
  var k2 = mat4x4<f32>();
  var v2 = mat4x4<f32>();
  var k3 = mat4x4<f32>();
  var v3 = mat4x4<f32>();
  if (HS > 16u) {
    k1 = own(krow, 1u);
    v1 = own(vrow, 1u);
  }
  if (HS > 32u) {
    k2 = own(krow, 2u);
    v2 = own(vrow, 2u);
  }
  if (HS > 48u) {
    k3 = own(krow, 3u);
    v3 = own(vrow, 3u);
  }
  var dk0 = mat4x4<f32>();
  var dk1 = mat4x4<f32>();
  var dk2 = mat4x4<f32>();
  var dk3 = mat4x4<f32>();
  var dv0 = mat4x4<f32>();
  var dv1 = mat4x4<f32>();
  var dv2 = mat4x4<f32>();
  var dv3 = mat4x4<f32>();
  // Queries that see at least one key of this block: [4·blk, qend); with SEG the lane's key is seen by the queries
  // before kend.
  var qend = T;
  var kend = T;
  if (SEG) {
    qend = bounds[2u * (bb * T + min(4u * blk + 3u, T - 1u)) + 1u];
    kend = bounds[2u * (bb * T + min(k, T - 1u)) + 1u];
  }
  for (var i = 4u * blk; i < qend; i++) {
    let qrow = base + i * C34;
    let orow = obase + i * C4;
    let q0 = shared_row(qrow, 0u, lane);
    let g0 = shared_dout(orow, 0u, lane);
    var s = dot16(q0, k0);
    var dp = dot16(g0, v0);
    var q1 = mat4x4<f32>();
    var g1 = mat4x4<f32>();
    var q2 = mat4x4<f32>();
    var g2 = mat4x4<f32>();
    var q3 = mat4x4<f32>();
    var g3 = mat4x4<f32>();
    if (HS > 16u) {
      q1 = shared_row(qrow, 1u, lane);
      g1 = shared_dout(orow, 1u, lane);
      s += dot16(q1, k1);
      dp += dot16(g1, v1);
    }
    if (HS > 32u) {
      q2 = shared_row(qrow, 2u, lane);
      g2 = shared_dout(orow, 2u, lane);
      s += dot16(q2, k2);
      dp += dot16(g2, v2);
    }
    if (HS > 48u) {
      q3 = shared_row(qrow, 3u, lane);
      g3 = shared_dout(orow, 3u, lane);
      s += dot16(q3, k3);
      dp += dot16(g3, v3);
    }
    // Queries before this lane's key (or past its segment) add nothing (not even 0 · a NaN).
    if (k <= i && (!SEG || i < kend)) {
      let p = exp(s * scale - lse[rbase + i]);
      let ds = p * (dp - D[rbase + i]);
      dv0 += g0 * p;
      dk0 += q0 * ds;
      if (HS > 16u) {
        dv1 += g1 * p;
        dk1 += q1 * ds;
      }
      if (HS > 32u) {
        dv2 += g2 * p;
        dk2 += q2 * ds;
      }
      if (HS > 48u) {
        dv3 += g3 * p;
        dk3 += q3 * ds;
      }
    }
  }

  if (live) {
    let o = base + k * C34 + C4;
    put(o, 0u, dk0 * scale);
    put(o, 1u, dk1 * scale);
    put(o, 2u, dk2 * scale);
    put(o, 3u, dk3 * scale);
    put(o + C4, 0u, dv0);
    put(o + C4, 1u, dv1);
    put(o + C4, 2u, dv2);
    put(o + C4, 3u, dv3);
  }
}

// Flash attention backward, dQ, for CPU (SwiftShader) adapters: v1's arithmetic (P = exp(scale · q·k − lse),
// dP = dO·v, dS = P ∘ (dP − D), dQ = scale · Σ dS k) with flash_forward_v3's schedule: a subgroup takes 4
// consecutive queries of one (batch, head), one per lane, and walks the keys up to its last query, each key and
// value row loaded a quarter per lane and shared by subgroup broadcasts; the lane's q, dO and dQ rows stay in
// registers as mat4x4 chunks of 16 dims. No workgroup memory, no barriers, no atomics: each dQ element is written
// by one lane. dqkv is (B, T, 3C); this writes channels [0, C). HS: a multiple of 4 up to 64. Needs subgroups of
// exactly 4 invocations made of consecutive local invocation indices (SwiftShader's). SEG: the forward's segment
// mask and walk start (flash_forward_v3.wgsl).
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

fn own_dout(row: u32, c: u32) -> mat4x4<f32> {
  return mat4x4<f32>(at_dout(row, 4u * c), at_dout(row, 4u * c + 1u), at_dout(row, 4u * c + 2u),
                     at_dout(row, 4u * c + 3u));
}

fn shared_row(row: u32, c: u32, lane: u32) -> mat4x4<f32> {
  let v = at(row, 4u * c + lane);
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
  let sg = (wg.y * nwg.x + wg.x) * (WG / 4u) + li / 4u;
  let nblk = (T + 3u) / 4u;
  let blk = sg % nblk;
  let h = (sg / nblk) % NH;
  let b = sg / (nblk * NH);
  let q = 4u * blk + lane;
  let live = b < params.B && q < T;
  let bb = min(b, params.B - 1u);
  let qq = min(q, T - 1u);
  let base = bb * T * C34 + h * HS4;
  let qrow = base + qq * C34;
  let orow = (bb * T + qq) * C4 + h * HS4;
  let lrow = lse[(bb * NH + h) * T + qq];
  let Drow = D[(bb * NH + h) * T + qq];
  let scale = 1.0 / sqrt(f32(HS));

  let q0 = own(qrow, 0u);
  let g0 = own_dout(orow, 0u);
  var q1 = mat4x4<f32>();
  var g1 = mat4x4<f32>();
  var q2 = mat4x4<f32>();
  var g2 = mat4x4<f32>();
  var q3 = mat4x4<f32>();
  var g3 = mat4x4<f32>();
  if (HS > 16u) {
    q1 = own(qrow, 1u);
    g1 = own_dout(orow, 1u);
  }
  if (HS > 32u) {
    q2 = own(qrow, 2u);
    g2 = own_dout(orow, 2u);
  }
  if (HS > 48u) {
    q3 = own(qrow, 3u);
    g3 = own_dout(orow, 3u);
  }
  var a0 = mat4x4<f32>();
  var a1 = mat4x4<f32>();
  var a2 = mat4x4<f32>();
  var a3 = mat4x4<f32>();
  var kstart = 0u;
  var qstart = 0u;
  if (SEG) {
    kstart = bounds[2u * (bb * T + min(4u * blk, T - 1u))];
    qstart = bounds[2u * (bb * T + qq)];
  }
  let kend = min(4u * blk + 4u, T);
  for (var j = kstart; j < kend; j++) {
    let krow = base + j * C34 + C4;
    let vrow = krow + C4;
    let k0 = shared_row(krow, 0u, lane);
    var s = dot16(q0, k0);
    var dp = dot16(g0, shared_row(vrow, 0u, lane));
    var k1 = mat4x4<f32>();
    var k2 = mat4x4<f32>();
    var k3 = mat4x4<f32>();
    if (HS > 16u) {
      k1 = shared_row(krow, 1u, lane);
      s += dot16(q1, k1);
      dp += dot16(g1, shared_row(vrow, 1u, lane));
    }
    if (HS > 32u) {
      k2 = shared_row(krow, 2u, lane);
      s += dot16(q2, k2);
      dp += dot16(g2, shared_row(vrow, 2u, lane));
    }
    if (HS > 48u) {
      k3 = shared_row(krow, 3u, lane);
      s += dot16(q3, k3);
      dp += dot16(g3, shared_row(vrow, 3u, lane));
    }
    // Keys after this lane's query (or before its segment) add nothing (not even 0 · a NaN).
    if (j <= q && (!SEG || j >= qstart)) {
      let p = exp(s * scale - lrow);
      let ds = p * (dp - Drow);
      a0 += k0 * ds;
      if (HS > 16u) {
        a1 += k1 * ds;
      }
      if (HS > 32u) {
        a2 += k2 * ds;
      }
      if (HS > 48u) {
        a3 += k3 * ds;
      }
    }
  }

  if (live) {
    let o = base + q * C34;
    put(o, 0u, a0 * scale);
    put(o, 1u, a1 * scale);
    put(o, 2u, a2 * scale);
    put(o, 3u, a3 * scale);
  }
}

// C = alpha * op(A) · op(B) (+ bias[n]), any M, N, K, with the layouts given by strides, so one pipeline serves
// A·B, A·Bᵀ and Aᵀ·B (forward and both backward products). accumulate = 1 adds into C instead of overwriting.
// v1: 16x16 tiles through workgroup memory, one output per thread. Edge tiles load zeros.
struct Params {
  M: u32,
  N: u32,
  K: u32,
  sAm: u32, // element (m, k) of op(A) is a[m * sAm + k * sAk]
  sAk: u32,
  sBk: u32, // element (k, n) of op(B) is b[k * sBk + n * sBn]
  sBn: u32,
  accumulate: u32,
  has_bias: u32,
  alpha: f32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

const TILE: u32 = 16u;
var<workgroup> As: array<f32, 256>; // [TILE][TILE], row = m, col = k
var<workgroup> Bs: array<f32, 256>; // [TILE][TILE], row = k, col = n

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let m = wg.y * TILE + lid.y;
  let n = wg.x * TILE + lid.x;
  var acc = 0.0;
  let tiles = (params.K + TILE - 1u) / TILE;
  for (var t = 0u; t < tiles; t++) {
    let ka = t * TILE + lid.x;
    var av = 0.0;
    if (m < params.M && ka < params.K) {
      av = a[m * params.sAm + ka * params.sAk];
    }
    As[lid.y * TILE + lid.x] = av;
    let kb = t * TILE + lid.y;
    var bv = 0.0;
    if (kb < params.K && n < params.N) {
      bv = b[kb * params.sBk + n * params.sBn];
    }
    Bs[lid.y * TILE + lid.x] = bv;
    workgroupBarrier();
    for (var k = 0u; k < TILE; k++) {
      acc += As[lid.y * TILE + k] * Bs[k * TILE + lid.x];
    }
    workgroupBarrier();
  }
  if (m < params.M && n < params.N) {
    var v = params.alpha * acc;
    if (params.has_bias != 0u) {
      v += bias[n];
    }
    let i = m * params.N + n;
    if (params.accumulate != 0u) {
      v += c[i];
    }
    c[i] = v;
  }
}

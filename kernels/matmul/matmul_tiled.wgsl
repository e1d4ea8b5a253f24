// C = alpha · op(A) · op(B) (+ bias) (then GELU), register-tiled.
// v2: each workgroup computes a BM×BN tile of C; each thread a TM×TN block of it held in registers. Per step of BK
// along K, the workgroup stages op(A)'s BM×BK and op(B)'s BK×BN slices in workgroup memory (k-major, so a thread
// reads its TM rows / TN columns contiguously), then every thread does TM·TN·BK multiply-adds from registers.
// Layouts are overrides (one pipeline each): A is (M, K) row-major, or (K, M) when TRANS_A; B is (K, N) row-major,
// or (N, K) when TRANS_B: the three products of a linear layer (x·Wᵀ, g·W, gᵀ·x) need no transposed copies.
// Global loads run along each operand's contiguous dimension, so neighbouring threads read neighbouring floats.
// Edge tiles load zeros and skip out-of-range stores: any M, N, K.
struct Params {
  M: u32,
  N: u32,
  K: u32,
  accumulate: u32, // 1: C += result
  epilogue: u32,   // 0: none, 1: + bias[n], 2: + bias[n] then GELU (tanh approximation)
  store_pre: u32,  // with epilogue 2: also write the pre-GELU value to `pre` (GELU's backward needs it)
  alpha: f32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> pre: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

override BM: u32 = 64;
override BN: u32 = 64;
override BK: u32 = 16;
override TRANS_A: bool = false;
override TRANS_B: bool = false;
const TM: u32 = 4u;
const TN: u32 = 4u;
// Threads per workgroup: (BM / TM) · (BN / TN). Given as its own override because @workgroup_size must be one.
override WG: u32 = 256;

var<workgroup> As: array<f32, BK * BM>; // As[k * BM + m]
var<workgroup> Bs: array<f32, BK * BN>; // Bs[k * BN + n]

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

fn gelu(x: f32) -> f32 {
  // x · sigmoid(2u) equals 0.5 x (1 + tanh u) without its cancellation for negative u (see
  // elementwise/gelu_forward.wgsl).
  let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
  let e = exp(-2.0 * abs(u));
  return x * select(e / (1.0 + e), 1.0 / (1.0 + e), u >= 0.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let M = params.M;
  let N = params.N;
  let K = params.K;
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let threads_n = BN / TN;
  let tm = (tid / threads_n) * TM; // this thread's first row within the tile
  let tn = (tid % threads_n) * TN; // and first column

  var acc: array<f32, 16>; // TM · TN
  for (var i = 0u; i < TM * TN; i++) {
    acc[i] = 0.0;
  }
  var a_reg: array<f32, 4>;
  var b_reg: array<f32, 4>;

  let tiles = (K + BK - 1u) / BK;
  for (var t = 0u; t < tiles; t++) {
    let k0 = t * BK;
    // Stage op(A)[m0.., k0..] into As, BK·BM elements, WG at a time.
    for (var i = tid; i < BK * BM; i += WG) {
      var m: u32;
      var k: u32;
      if (TRANS_A) {
        m = i % BM; // A stored (K, M): consecutive threads, consecutive m
        k = i / BM;
      } else {
        k = i % BK; // A stored (M, K): consecutive threads, consecutive k
        m = i / BK;
      }
      let gm = m0 + m;
      let gk = k0 + k;
      var v = 0.0;
      if (gm < M && gk < K) {
        if (TRANS_A) {
          v = a[gk * M + gm];
        } else {
          v = a[gm * K + gk];
        }
      }
      As[k * BM + m] = v;
    }
    // Stage op(B)[k0.., n0..] into Bs.
    for (var i = tid; i < BK * BN; i += WG) {
      var n: u32;
      var k: u32;
      if (TRANS_B) {
        k = i % BK; // B stored (N, K): consecutive k
        n = i / BK;
      } else {
        n = i % BN; // B stored (K, N): consecutive n
        k = i / BN;
      }
      let gn = n0 + n;
      let gk = k0 + k;
      var v = 0.0;
      if (gn < N && gk < K) {
        if (TRANS_B) {
          v = b[gn * K + gk];
        } else {
          v = b[gk * N + gn];
        }
      }
      Bs[k * BN + n] = v;
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      for (var i = 0u; i < TM; i++) {
        a_reg[i] = As[k * BM + tm + i];
      }
      for (var j = 0u; j < TN; j++) {
        b_reg[j] = Bs[k * BN + tn + j];
      }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) {
          acc[i * TN + j] = fma(a_reg[i], b_reg[j], acc[i * TN + j]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < TM; i++) {
    let gm = m0 + tm + i;
    if (gm >= M) {
      break;
    }
    for (var j = 0u; j < TN; j++) {
      let gn = n0 + tn + j;
      if (gn >= N) {
        break;
      }
      var v = params.alpha * acc[i * TN + j];
      if (params.epilogue >= 1u) {
        v += bias[gn];
      }
      let idx = gm * N + gn;
      if (params.epilogue == 2u) {
        if (params.store_pre != 0u) {
          pre[idx] = v;
        }
        v = gelu(v);
      }
      if (params.accumulate != 0u) {
        v += c[idx];
      }
      c[idx] = v;
    }
  }
}

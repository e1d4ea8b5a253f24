// C = alpha · op(A) · op(B) (+ bias) (then GELU), register-tiled with 16-byte loads.
// v3: v2's tiling (a BM×BN tile per workgroup, 4×4 outputs per thread, BK-deep slices staged in workgroup memory,
// layouts as overrides) with every global load a vec4 along the operand's contiguous dimension, workgroup memory
// read as vec4 (a thread's 4 rows of op(A) and 4 columns of op(B) at one k are one vec4 each), and the 4×4
// accumulator as four vec4 rows. Needs the contiguous dimension of each operand to be a multiple of 4 (A: K, or M
// when TRANS_A; B: N, or K when TRANS_B) and BM, BN, BK multiples of 4; gemm() falls back to v2 otherwise.
struct Params {
  M: u32,
  N: u32,
  K: u32,
  accumulate: u32, // 1: C += result
  epilogue: u32,   // 0: none, 1: + bias[n], 2: + bias[n] then GELU (tanh approximation)
  store_pre: u32,  // with epilogue 2: also write the pre-GELU value to `pre`
  alpha: f32,
}

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> pre: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

override BM: u32 = 64;
override BN: u32 = 64;
override BK: u32 = 16;
override TRANS_A: bool = false;
override TRANS_B: bool = false;
// Threads per workgroup: (BM / 4) · (BN / 4).
override WG: u32 = 256;

var<workgroup> As: array<vec4<f32>, BK * BM / 4>; // As[k * BM/4 + m/4][m % 4] = op(A)[m0 + m, k0 + k]
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4>; // Bs[k * BN/4 + n/4][n % 4] = op(B)[k0 + k, n0 + n]

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

fn gelu(x: f32) -> f32 {
  // x · sigmoid(2u) equals 0.5 x (1 + tanh u) without its cancellation for negative u.
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
  let threads_n = BN / 4u;
  let tm4 = tid / threads_n; // this thread's rows: m0 + 4·tm4 .. +3
  let tn4 = tid % threads_n; // and columns: n0 + 4·tn4 .. +3

  var acc: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) {
    acc[i] = vec4<f32>(0.0);
  }

  let tiles = (K + BK - 1u) / BK;
  for (var t = 0u; t < tiles; t++) {
    let k0 = t * BK;
    // Stage op(A)[m0.., k0..]: BK·BM/4 vec4s, WG at a time. A vec4 is wholly inside or outside the matrix.
    for (var i = tid; i < BK * BM / 4u; i += WG) {
      if (TRANS_A) {
        // A stored (K, M): a vec4 holds 4 consecutive m at one k.
        let m4 = i % (BM / 4u);
        let k = i / (BM / 4u);
        let gk = k0 + k;
        let gm = m0 + 4u * m4;
        var v = vec4<f32>(0.0);
        if (gk < K && gm < M) {
          v = a[(gk * M + gm) / 4u];
        }
        As[k * (BM / 4u) + m4] = v;
      } else {
        // A stored (M, K): a vec4 holds 4 consecutive k at one m; each lands in another k row of As.
        let k4 = i % (BK / 4u);
        let m = i / (BK / 4u);
        let gk = k0 + 4u * k4;
        let gm = m0 + m;
        var v = vec4<f32>(0.0);
        if (gk < K && gm < M) {
          v = a[(gm * K + gk) / 4u];
        }
        for (var j = 0u; j < 4u; j++) {
          As[(4u * k4 + j) * (BM / 4u) + m / 4u][m % 4u] = v[j];
        }
      }
    }
    // Stage op(B)[k0.., n0..].
    for (var i = tid; i < BK * BN / 4u; i += WG) {
      if (TRANS_B) {
        // B stored (N, K): a vec4 holds 4 consecutive k at one n.
        let k4 = i % (BK / 4u);
        let n = i / (BK / 4u);
        let gk = k0 + 4u * k4;
        let gn = n0 + n;
        var v = vec4<f32>(0.0);
        if (gk < K && gn < N) {
          v = b[(gn * K + gk) / 4u];
        }
        for (var j = 0u; j < 4u; j++) {
          Bs[(4u * k4 + j) * (BN / 4u) + n / 4u][n % 4u] = v[j];
        }
      } else {
        // B stored (K, N): a vec4 holds 4 consecutive n at one k.
        let n4 = i % (BN / 4u);
        let k = i / (BN / 4u);
        let gk = k0 + k;
        let gn = n0 + 4u * n4;
        var v = vec4<f32>(0.0);
        if (gk < K && gn < N) {
          v = b[(gk * N + gn) / 4u];
        }
        Bs[k * (BN / 4u) + n4] = v;
      }
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let av = As[k * (BM / 4u) + tm4];
      let bv = Bs[k * (BN / 4u) + tn4];
      acc[0] = fma(vec4<f32>(av.x), bv, acc[0]);
      acc[1] = fma(vec4<f32>(av.y), bv, acc[1]);
      acc[2] = fma(vec4<f32>(av.z), bv, acc[2]);
      acc[3] = fma(vec4<f32>(av.w), bv, acc[3]);
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let gm = m0 + 4u * tm4 + i;
    if (gm >= M) {
      break;
    }
    for (var j = 0u; j < 4u; j++) {
      let gn = n0 + 4u * tn4 + j;
      if (gn >= N) {
        break;
      }
      var v = params.alpha * acc[i][j];
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

// C = alpha · op(A) · op(B) (+ bias) (then GELU), for CPU (SwiftShader) adapters: no workgroup memory, no barriers,
// and global loads shared through subgroup broadcasts.
// v4: on SwiftShader each invocation is a lane of a 4-wide SIMD subgroup and every load with a computed address is a
// gather, one scalar load per lane (in a test kernel with 8x8 outputs per invocation, taking the loads out made it
// 4x faster, taking the FMAs out 2x), while a subgroup broadcast is a register shuffle. So loads are what to save:
// a subgroup of 4 lanes owns an 8 x 16 tile of C, lane q its columns n0 + 4q .. +3 for all 8 rows. Per 4 steps of
// k, each lane loads a quarter of the 8 x 4 slice of op(A) (one vec4 of each 4-row group) and broadcasts it to the
// others, and loads its own 4 x 4 slice of op(B). The accumulators are two mat4x4 per lane (column r: row r of the
// group, over the lane's 4 columns), only ever indexed by constants; the products are the same fma chain in k
// order as v3's, so the results are bit-identical to v3's.
// Needs subgroups of exactly 4 invocations made of consecutive local invocation indices (SwiftShader's), the
// contiguous dimension of each operand, K and N multiples of 4; gemm() uses v3 otherwise.
enable subgroups;

struct Params {
  M: u32,
  N: u32,
  K: u32,
  alpha: f32,
}

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> pre: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> params: Params;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override WG: u32 = 64; // a multiple of 4: WG / 4 tiles per workgroup
// The epilogue's switches are overrides here, not uniforms as in v2 and v3: branches on uniforms around every store
// measured 5-25% of the kernel's time on SwiftShader, and the pipeline variants are few.
override ACCUMULATE: bool = false; // C += result
override EPILOGUE: u32 = 0;        // 0: none, 1: + bias[n], 2: + bias[n] then GELU (tanh approximation)
override STORE_PRE: bool = false;  // with EPILOGUE 2: also write the pre-GELU value to `pre`

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

fn gelu(x: vec4<f32>) -> vec4<f32> {
  // x · sigmoid(2u) equals 0.5 x (1 + tanh u) without its cancellation for negative u (as v3, per component).
  let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
  let e = exp(-2.0 * abs(u));
  return x * select(e / (1.0 + e), 1.0 / (1.0 + e), u >= vec4<f32>(0.0));
}

// The four lanes' v as the columns of one matrix (lane q's in column q), in every lane.
fn share(v: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
                     subgroupBroadcast(v, 3u));
}

// One output row over 4 steps of k: acc + Σ_j a[j] · bk[j], accumulated in k order.
fn row_mac(acc: vec4<f32>, a: vec4<f32>, bk: mat4x4<f32>) -> vec4<f32> {
  let r0 = fma(vec4<f32>(a.x), bk[0], acc);
  let r1 = fma(vec4<f32>(a.y), bk[1], r0);
  let r2 = fma(vec4<f32>(a.z), bk[2], r1);
  return fma(vec4<f32>(a.w), bk[3], r2);
}

// Four rows: column r of at holds row r's op(A) at the 4 values of k, column j of bk the lane's op(B) at k + j.
fn mac(acc: mat4x4<f32>, at: mat4x4<f32>, bk: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(row_mac(acc[0], at[0], bk), row_mac(acc[1], at[1], bk), row_mac(acc[2], at[2], bk),
                     row_mac(acc[3], at[3], bk));
}

// Writes row m, columns n..n+3 of C through the epilogue, as v3 does per element.
fn store(m: u32, n: u32, acc: vec4<f32>) {
  if (m >= params.M || n >= params.N) {
    return;
  }
  var v = params.alpha * acc;
  if (EPILOGUE >= 1u) {
    v += bias[n / 4u];
  }
  let idx = (m * params.N + n) / 4u;
  if (EPILOGUE == 2u) {
    if (STORE_PRE) {
      pre[idx] = v;
    }
    v = gelu(v);
  }
  if (ACCUMULATE) {
    v += c[idx];
  }
  c[idx] = v;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  let M = params.M;
  let N = params.N;
  let K4 = params.K / 4u;
  let M4 = M / 4u;
  let N4 = N / 4u;
  // This subgroup's tile. Tiles past the end (the grid is rounded up) load clamped addresses and store nothing;
  // there is no early return, as the broadcasts need all four lanes.
  let tile = (wg.y * nwg.x + wg.x) * (WG / 4u) + li / 4u;
  let tiles_n = (N + 15u) / 16u;
  let m0 = (tile / tiles_n) * 8u;
  let n = (tile % tiles_n) * 16u + 4u * lane; // this lane's first column

  // Where this lane's loads start; rows and columns past the matrix are clamped (their results are not stored).
  // op(A) stored (M, K): this lane loads rows m0 + lane and m0 + 4 + lane, a vec4 along k per 4 steps.
  // Stored (K, M) (TRANS_A): it loads k = 4·k4 + lane, a vec4 over rows m0.. and one over m0 + 4...
  var ia0: u32;
  var ia1: u32;
  if (TRANS_A) {
    ia0 = min(m0 / 4u, M4 - 1u);
    ia1 = min(m0 / 4u + 1u, M4 - 1u);
  } else {
    ia0 = min(m0 + lane, M - 1u) * K4;
    ia1 = min(m0 + 4u + lane, M - 1u) * K4;
  }
  // op(B) stored (K, N): the vec4 of columns n..n+3 at each k. Stored (N, K) (TRANS_B): a vec4 along k per column.
  let cb = min(n / 4u, N4 - 1u);
  let ib0 = min(n, N - 1u) * K4;
  let ib1 = min(n + 1u, N - 1u) * K4;
  let ib2 = min(n + 2u, N - 1u) * K4;
  let ib3 = min(n + 3u, N - 1u) * K4;

  var acc0 = mat4x4<f32>(); // rows m0 .. m0 + 3 (column r: row m0 + r)
  var acc1 = mat4x4<f32>(); // rows m0 + 4 .. m0 + 7
  for (var k4 = 0u; k4 < K4; k4++) {
    var at0: mat4x4<f32>;
    var at1: mat4x4<f32>;
    if (TRANS_A) {
      // Lane q holds op(A) at k = 4·k4 + q over 4 rows: shared, column q is that k; transposed, column r is row r.
      let r = (4u * k4 + lane) * M4;
      at0 = transpose(share(a[r + ia0]));
      at1 = transpose(share(a[r + ia1]));
    } else {
      // Lane q holds row q of the group at the 4 values of k: shared, that is already column r = row r.
      at0 = share(a[ia0 + k4]);
      at1 = share(a[ia1 + k4]);
    }
    var bk: mat4x4<f32>;
    if (TRANS_B) {
      bk = transpose(mat4x4<f32>(b[ib0 + k4], b[ib1 + k4], b[ib2 + k4], b[ib3 + k4]));
    } else {
      let r = 4u * k4 * N4 + cb;
      bk = mat4x4<f32>(b[r], b[r + N4], b[r + 2u * N4], b[r + 3u * N4]);
    }
    acc0 = mac(acc0, at0, bk);
    acc1 = mac(acc1, at1, bk);
  }

  store(m0, n, acc0[0]);
  store(m0 + 1u, n, acc0[1]);
  store(m0 + 2u, n, acc0[2]);
  store(m0 + 3u, n, acc0[3]);
  store(m0 + 4u, n, acc1[0]);
  store(m0 + 5u, n, acc1[1]);
  store(m0 + 6u, n, acc1[2]);
  store(m0 + 7u, n, acc1[3]);
}

// GPT-2's embedding: out[n, c] = wte[tokens[n], c] + wpe[posOffset + n mod T, c] for the N = B·T positions of
// tokens (B, T) (posOffset > 0 when sampling with a KV cache: the new tokens sit after the cached ones).
// With POS (packed rows, positions restarting per conversation) the position is positions[n] instead.
// One thread per output element: consecutive threads read and write consecutive channels. A token outside [0, V)
// or a position outside [0, maxT) makes its row NaN (and is never used as an address), so a bad id cannot pass
// unnoticed.
struct Params {
  N: u32,
  T: u32,
  C: u32,
  V: u32,
  posOffset: u32,
  maxT: u32,
}

@group(0) @binding(0) var<storage, read> tokens: array<i32>;
@group(0) @binding(1) var<storage, read> wte: array<f32>;
@group(0) @binding(2) var<storage, read> wpe: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> positions: array<i32>;
@group(0) @binding(5) var<uniform> params: Params;

override WG: u32 = 256;
override POS: bool = false; // positions given (else a placeholder never read)

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * WG;
  let C = params.C;
  if (idx >= params.N * C) {
    return;
  }
  let n = idx / C;
  let c = idx - n * C;
  var t = n % params.T + params.posOffset;
  var posOk = true;
  if (POS) {
    let p = positions[n];
    posOk = p >= 0 && u32(p) < params.maxT;
    t = select(0u, u32(p), posOk);
  }
  let tok = tokens[n];
  var nan_bits = 0x7fc00000u; // a var, so the NaN is made at run time (a constant NaN is a WGSL error)
  var v = bitcast<f32>(nan_bits);
  if (tok >= 0 && u32(tok) < params.V && posOk) {
    v = wte[u32(tok) * C + c] + wpe[t * C + c];
  }
  out[idx] = v;
}

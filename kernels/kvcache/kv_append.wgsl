// KV cache append: copies the k and v parts of a packed qkv (B, T, 3C) (q at channels [0, C), k at [C, 2C), v at
// [2C, 3C), head h at h·HS) into the per-layer caches kcache, vcache (B, NH, maxT, HS) at positions
// [pos, pos + T). One thread per (b, t, c); it writes one k and one v element. Positions outside [pos, pos + T)
// are left as they are.
struct Params {
  B: u32,
  T: u32,
  NH: u32,
  HS: u32,
  maxT: u32,
  pos: u32,
}

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read_write> kcache: array<f32>;
@group(0) @binding(2) var<storage, read_write> vcache: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WG: u32 = 256;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = gid.x + gid.y * nwg.x * WG;
  let HS = params.HS;
  let NH = params.NH;
  let C = NH * HS;
  if (idx >= params.B * params.T * C) {
    return;
  }
  let c = idx % C;
  let n = idx / C; // b * T + t
  let t = n % params.T;
  let b = n / params.T;
  let h = c / HS;
  let d = c - h * HS;
  let src = n * 3u * C + C + c;
  let dst = ((b * NH + h) * params.maxT + params.pos + t) * HS + d;
  kcache[dst] = qkv[src];
  vcache[dst] = qkv[src + C];
}

// LayerNorm backward, second stage of the weight and bias gradients: dweight[c] (+)= Σ_k pw[k, c] and
// dbias[c] (+)= Σ_k pb[k, c] over the K row chunks. workgroup_id.y picks the tensor (0: weight, 1: bias). Each
// workgroup takes 64 columns with LANES lanes each: lane l adds rows l, l + LANES, ... in order (consecutive
// threads, consecutive columns), then lane 0 adds the lanes in order. Fixed order: the same bits on every run, and
// K/LANES dependent additions per thread instead of K.
struct Params {
  K: u32,
  C: u32,
  accumulate_w: u32,
  accumulate_b: u32,
}

@group(0) @binding(0) var<storage, read> pw: array<f32>;
@group(0) @binding(1) var<storage, read> pb: array<f32>;
@group(0) @binding(2) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(3) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

override LANES: u32 = 4; // 64·LANES ≤ 256, the WebGPU default limit
var<workgroup> lanes: array<f32, 64 * LANES>;

@compute @workgroup_size(64, LANES)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let C = params.C;
  let c = wg.x * 64u + lid.x;
  let which = wg.y;
  var s = 0.0;
  if (c < C) {
    if (which == 0u) {
      for (var k = lid.y; k < params.K; k += LANES) {
        s += pw[k * C + c];
      }
    } else {
      for (var k = lid.y; k < params.K; k += LANES) {
        s += pb[k * C + c];
      }
    }
  }
  lanes[lid.y * 64u + lid.x] = s;
  workgroupBarrier();
  if (lid.y != 0u || c >= C) {
    return;
  }
  var total = 0.0;
  for (var l = 0u; l < LANES; l++) {
    total += lanes[l * 64u + lid.x];
  }
  if (which == 0u) {
    if (params.accumulate_w != 0u) {
      total += dweight[c];
    }
    dweight[c] = total;
  } else {
    if (params.accumulate_b != 0u) {
      total += dbias[c];
    }
    dbias[c] = total;
  }
}

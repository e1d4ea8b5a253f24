// Attention of T new queries against a KV cache. The queries come from a packed qkv (B, T, 3C) (q at channels
// [0, C), head h at h·HS); query t sits at absolute position pos + t and attends causally over the cached keys and
// values 0..pos + t of kcache, vcache (B, NH, maxT, HS) (kv_append.wgsl has written positions [pos, pos + T)
// already). Output (B, T, C), head h at channels [h·HS, (h+1)·HS), as the attention op writes it.
//
// One workgroup per (t, h, b). Keys are streamed in chunks of WG: thread i scores key k0 + i (scale 1/sqrt(HS)),
// a tree reduction gives the chunk's max, and an online softmax rescales the running sum and output; thread d < HS
// owns output dimension d and sums p·v over the chunk's keys in key order (so the result does not depend on
// scheduling). Requires HS <= WG and WG a power of two. Cache positions past pos + t are never read.
struct Params {
  B: u32,
  T: u32,
  NH: u32,
  HS: u32,
  maxT: u32,
  pos: u32,
}

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> kcache: array<f32>;
@group(0) @binding(2) var<storage, read> vcache: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

override WG: u32 = 64;

var<workgroup> red: array<f32, WG>;
var<workgroup> pw: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = wid.x;
  let h = wid.y;
  let b = wid.z;
  let tid = lid.x;
  let T = params.T;
  let NH = params.NH;
  let HS = params.HS;
  let C = NH * HS;
  let n = params.pos + t + 1u; // keys 0..pos + t
  let qo = (b * T + t) * 3u * C + h * HS;
  let kvo = (b * NH + h) * params.maxT * HS;
  let scale = 1.0 / sqrt(f32(HS));
  var m = -3.0e38; // running max of the scores
  var l = 0.0; // running sum of exp(s - m)
  var acc = 0.0; // running sum of exp(s - m) * v[., tid]
  for (var k0 = 0u; k0 < n; k0 += WG) {
    let k = k0 + tid;
    var s = -3.0e38;
    if (k < n) {
      var dot = 0.0;
      for (var d = 0u; d < HS; d++) {
        dot += qkv[qo + d] * kcache[kvo + k * HS + d];
      }
      s = dot * scale;
    }
    red[tid] = s;
    workgroupBarrier();
    for (var w = WG / 2u; w > 0u; w >>= 1u) {
      if (tid < w) {
        red[tid] = max(red[tid], red[tid + w]);
      }
      workgroupBarrier();
    }
    let mNew = max(m, red[0]);
    var e = 0.0;
    if (k < n) {
      e = exp(s - mNew);
    }
    pw[tid] = e;
    workgroupBarrier();
    let alpha = exp(m - mNew);
    let cnt = min(WG, n - k0);
    var lc = 0.0;
    var ac = 0.0;
    for (var j = 0u; j < cnt; j++) {
      let pj = pw[j];
      lc += pj;
      if (tid < HS) {
        ac += pj * vcache[kvo + (k0 + j) * HS + tid];
      }
    }
    l = l * alpha + lc;
    acc = acc * alpha + ac;
    m = mNew;
    workgroupBarrier(); // red and pw are rewritten by the next chunk
  }
  if (tid < HS) {
    out[(b * T + t) * C + h * HS + tid] = acc / l;
  }
}

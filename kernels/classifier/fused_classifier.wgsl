// llm.c's fused classifier: per row r of logits (R, Vp), of which only the first V columns are real (Vp is V padded,
// e.g. 50257 -> 50304), with p = softmax(logits[r, :V]) and t = targets[r]:
//   losses[r]     = −log p[t]                                   (0 where mask[r] = 0)
//   dlogits[r, v] = (p[v] − [v == t]) · scale · mask[r] / count  for v < V, and 0 for V ≤ v < Vp,
// where count = Σ mask (R without a mask): the gradient of scale · (mean of the losses over unmasked rows).
// The probabilities are never stored: one workgroup per row keeps a running (max, sum of exp) per thread over a
// strided slice (online softmax), merges the pairs in two 16-way levels, then streams the row again to write the gradient.
// Padded columns are never read. A target outside [0, V) on an unmasked row gives a NaN loss and NaN gradient.
struct Params {
  R: u32,
  V: u32,
  Vp: u32,
  has_mask: u32,
  write_grad: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(5) var<storage, read_write> count_out: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

override WG: u32 = 256; // a multiple of 16
const FAN: u32 = 16u;
var<workgroup> wmax: array<f32, WG>;
var<workgroup> wsum: array<f32, WG>;
var<workgroup> wmax2: array<f32, WG / FAN>;
var<workgroup> wsum2: array<f32, WG / FAN>;

// Merges two (max, Σ exp(x − max)) pairs.
fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = wg.x + wg.y * nwg.x;
  if (r >= params.R) {
    return; // uniform per workgroup
  }
  let i = lid.x;
  // The number of unmasked rows, summed by every workgroup in the same order (R is small next to R·V).
  var count = f32(params.R);
  var m_r = 1.0;
  if (params.has_mask != 0u) {
    var c = 0.0;
    for (var j = i; j < params.R; j += WG) {
      c += mask[j];
    }
    wsum[i] = c;
    workgroupBarrier();
    if (i < WG / FAN) {
      var c2 = 0.0;
      for (var k = 0u; k < FAN; k++) {
        c2 += wsum[i + k * (WG / FAN)];
      }
      wsum2[i] = c2;
    }
    workgroupBarrier();
    count = 0.0;
    for (var k = 0u; k < WG / FAN; k++) {
      count += wsum2[k];
    }
    m_r = mask[r];
    workgroupBarrier(); // all have read wsum2 before it is reused below
  }
  let base = r * params.Vp;
  var m = -3.0e38;
  var s = 0.0;
  for (var v = i; v < params.V; v += WG) {
    let l = logits[base + v];
    if (l > m) {
      s = s * exp(m - l) + 1.0;
      m = l;
    } else {
      s += exp(l - m);
    }
  }
  // Merge the pairs in two levels (WG/16 threads merge 16 each, then every thread merges those): two barriers.
  wmax[i] = m;
  wsum[i] = s;
  workgroupBarrier();
  if (i < WG / FAN) {
    var p = vec2<f32>(wmax[i], wsum[i]);
    for (var k = 1u; k < FAN; k++) {
      p = merge(p, vec2<f32>(wmax[i + k * (WG / FAN)], wsum[i + k * (WG / FAN)]));
    }
    wmax2[i] = p.x;
    wsum2[i] = p.y;
  }
  workgroupBarrier();
  var row = vec2<f32>(wmax2[0], wsum2[0]);
  for (var k = 1u; k < WG / FAN; k++) {
    row = merge(row, vec2<f32>(wmax2[k], wsum2[k]));
  }
  let rowmax = row.x;
  let rowsum = row.y;
  let t = targets[r];
  let valid = t >= 0 && u32(t) < params.V;
  let counted = m_r != 0.0;
  var nan_bits = 0x7fc00000u; // a var, so the NaN is made at run time (a constant NaN is a WGSL error)
  let nan = bitcast<f32>(nan_bits);
  if (i == 0u) {
    var loss = 0.0;
    if (counted) {
      loss = nan;
      if (valid) {
        // (max − target logit) first: both are large for large logits, their difference is exact or nearly so.
        loss = (rowmax - logits[base + u32(t)]) + log(rowsum);
      }
    }
    losses[r] = loss;
    if (r == 0u) {
      count_out[0] = count;
    }
  }
  if (params.write_grad == 0u) {
    return;
  }
  let inv = 1.0 / rowsum;
  let k = params.scale * m_r / max(count, 1.0);
  for (var v = i; v < params.Vp; v += WG) {
    var d = 0.0;
    if (counted && v < params.V) {
      let p = exp(logits[base + v] - rowmax) * inv;
      d = select(p, p - 1.0, i32(v) == t) * k;
      if (!valid) {
        d = nan;
      }
    }
    dlogits[base + v] = d;
  }
}

// GPU regression for a dawn.node crash seen on an H200 (18 of 19 runs): a probe ran matmuls at one size with
// large writeBuffer uploads, read back and checked, then moved to the next size, and died soon after. This runs the
// same pattern through wgpt's runtime (pooled buffers), then again with the pool trimmed between sizes so buffers
// are destroyed and re-created as in the probe. It prints one line per round and exits non-zero on a wrong result.
import { Gpu, tensor, empty, tidyAsync } from '@wgpt/runtime';
import { gemm } from '@wgpt/kernels';

const sizes = (process.env.SIZES ?? '2048,4096,1024,4096,2048').split(',').map(Number);
const gpu = await Gpu.open({ adapter: process.env.WGPT_ADAPTER });
console.log(`stress on ${gpu.describe()}`);
let bad = 0;
for (const trim of [false, true]) {
  for (const n of sizes) {
    const t0 = performance.now();
    await tidyAsync(async () => {
      const a = new Float32Array(n * n);
      const b = new Float32Array(n * n);
      for (let i = 0; i < n * n; i++) {
        a[i] = ((i * 7) % 13) / 13 - 0.5;
        b[i] = ((i * 5) % 11) / 11 - 0.5;
      }
      const A = tensor(gpu, a, [n, n]);
      const B = tensor(gpu, b, [n, n]);
      const C = empty(gpu, [n, n]);
      for (let r = 0; r < 3; r++) gemm(gpu, { M: n, N: n, K: n, a: A.buffer, b: B.buffer, c: C.buffer });
      const c = await C.read();
      for (let s = 0; s < 16; s++) {
        const m = (s * 7919) % n;
        const j = (s * 104729) % n;
        let ref = 0;
        for (let k = 0; k < n; k++) ref += a[m * n + k]! * b[k * n + j]!;
        if (!(Math.abs(c[m * n + j]! - ref) <= 1e-3 * (1 + Math.abs(ref)))) bad++;
      }
    });
    if (trim) {
      await gpu.sync();
      gpu.pool.trim();
    }
    const s = gpu.pool.stats;
    console.log(
      `n=${n} trim=${trim} ok=${bad === 0} ${(performance.now() - t0).toFixed(0)} ms, ` +
        `pool: ${s.allocations} allocations, ${(s.bytesReserved / 2 ** 20).toFixed(0)} MiB reserved`,
    );
  }
}
gpu.destroy();
console.log(bad ? `FAIL: ${bad} wrong samples` : 'PASS: no crash, all samples right');
process.exit(bad ? 1 : 0);

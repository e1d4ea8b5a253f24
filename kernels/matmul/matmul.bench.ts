// matmul: GFLOP/s at square sizes (and GPT-2 124M's shapes on hardware adapters), each output spot-checked
// against f64 dot products of the same inputs.
import { empty, tensor, type Gpu } from '@wgpt/runtime';
import { EPS32, randomF32 } from '@wgpt/runtime/testing';
import { timeGpu, type BenchRow, type BenchSuite } from '@wgpt/bench';
import { subgroupsOf4 } from '../common.ts';
import { gemm, gemmStrided, subgroupEligible, tileConfig, vec4Eligible } from './matmul.ts';

interface Shape {
  M: number;
  K: number;
  N: number;
  label: string;
}

function shapesFor(gpu: Gpu, quick: boolean): Shape[] {
  const sq = (n: number): Shape => ({ M: n, K: n, N: n, label: `${n}³` });
  if (quick) return [sq(64)];
  if (gpu.software) return [sq(128), sq(256), { M: 256, K: 64, N: 192, label: 'GPT-2 qkv shape / 32' }];
  // GPT-2 124M at B·T = 8192 rows: qkv, fc, proj, classifier.
  return [
    sq(1024),
    sq(2048),
    sq(4096),
    { M: 8192, K: 768, N: 2304, label: 'qkv' },
    { M: 8192, K: 768, N: 3072, label: 'fc' },
    { M: 8192, K: 3072, N: 768, label: 'fcproj' },
    { M: 8192, K: 768, N: 50304, label: 'lm head' },
  ];
}

const suite: BenchSuite = {
  name: 'matmul',
  gpu: true,
  async run({ gpu: g, quick, log }) {
    const gpu = g as Gpu;
    const rows: BenchRow[] = [];
    for (const s of shapesFor(gpu, quick)) {
      const { M, K, N } = s;
      const a = randomF32(M * K, 1);
      const b = randomF32(K * N, 2);
      const A = tensor(gpu, a, [M, K], 'f32', { track: false });
      const B = tensor(gpu, b, [K, N], 'f32', { track: false });
      const C = empty(gpu, [M, N], 'f32', { track: false });
      const versions: [string, () => void][] = [
        [
          'matmul v1 (16x16, 1 output/thread)',
          () => gemmStrided(gpu, { M, N, K, a: A.buffer, sAm: K, sAk: 1, b: B.buffer, sBk: N, sBn: 1, c: C.buffer }),
        ],
        [
          `matmul v2 (${tileConfig(gpu).BM}x${tileConfig(gpu).BN} tiles, 4x4/thread)`,
          () => gemm(gpu, { M, N, K, a: A.buffer, b: B.buffer, c: C.buffer, version: 'v2' }),
        ],
      ];
      if (vec4Eligible({ M, N, K }, tileConfig(gpu)))
        versions.push([
          `matmul v3 (v2 + vec4 loads)`,
          () => gemm(gpu, { M, N, K, a: A.buffer, b: B.buffer, c: C.buffer, version: 'v3' }),
        ]);
      if (subgroupsOf4(gpu) && subgroupEligible({ M, N, K }))
        versions.push([
          `matmul v4 (subgroup-shared loads, for CPU adapters)`,
          () => gemm(gpu, { M, N, K, a: A.buffer, b: B.buffer, c: C.buffer, version: 'v4' }),
        ]);
      for (const [name, rec] of versions) {
        // v1 is the simple reference version: skip it where it would take minutes.
        if (name.includes('v1') && !gpu.software && M * N * K > 2 ** 33) continue;
        gpu.clear(C.buffer);
        const t = await timeGpu(gpu, rec, { quick });
        // Spot check 64 outputs against f64 dot products: |err| ≤ 4·sqrt(K)·ε·sqrt(Σ (a b)²)-style bound, taken
        // loosely as 8·sqrt(K)·ε·Σ|a b| per element (a wrong element is off by O(1) of that).
        const c = await C.read();
        let ok = true;
        for (let i = 0; i < 64; i++) {
          const m = (i * 7919) % M;
          const n = (i * 104729) % N;
          let ref = 0;
          let abs = 0;
          for (let k = 0; k < K; k++) {
            ref += a[m * K + k]! * b[k * N + n]!;
            abs += Math.abs(a[m * K + k]! * b[k * N + n]!);
          }
          if (!(Math.abs(c[m * N + n]! - ref) <= 8 * Math.sqrt(K) * EPS32 * abs)) ok = false;
        }
        const gflops = (2 * M * N * K) / (t.ms * 1e6);
        log(`${name} ${s.label}: ${t.ms.toFixed(3)} ms, ${gflops.toFixed(1)} GFLOP/s (${t.timer} timer)`);
        rows.push({
          name,
          shape: `${s.label} M=${M} K=${K} N=${N}`,
          medianMs: t.ms,
          rate: { value: gflops, unit: 'GFLOP/s' },
          check: ok ? 'pass' : 'fail',
          note: `${t.timer} timer`,
        });
      }
      for (const x of [A, B, C]) x.dispose();
    }
    return rows;
  },
};
export default suite;

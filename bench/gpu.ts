// Timing GPU work for bench suites: tinybench drives the iterations (record, submit, wait); when the adapter has
// timestamp queries the kernel time comes from them, otherwise from the wall clock around submit + wait.
import { Bench } from 'tinybench';
import { empty, type Gpu } from '@wgpt/runtime';
import type { BenchRow } from './types.ts';
import { copyKernel } from './copy.ts';

export interface GpuTiming {
  /** Time of one call of `record`'s work, in ms: GPU timestamps when available, else wall-clock median. */
  ms: number;
  timer: 'gpu' | 'wall';
  wallMedianMs: number;
}

/**
 * Times `record` (which records dispatches into the pending encoder). `reps` calls are recorded per submit to
 * amortise submit and wait latency; the result is per call.
 */
export async function timeGpu(
  gpu: Gpu,
  record: () => void,
  opts: { quick: boolean; reps?: number },
): Promise<GpuTiming> {
  const reps = opts.reps ?? 1;
  let calls = 0;
  const run = async () => {
    for (let i = 0; i < reps; i++) record();
    calls += reps;
    await gpu.sync();
  };
  await run(); // compile pipelines outside the timing
  const wasChecking = gpu.checkDispatches;
  gpu.checkDispatches = false; // validated by the run above; error scopes would add CPU time
  const bench = new Bench({ time: opts.quick ? 20 : 300, iterations: opts.quick ? 2 : 5, warmupIterations: 1 });
  bench.add('x', run);
  const prof = gpu.profiler;
  if (prof) {
    await prof.collect();
    prof.reset();
    prof.enabled = true;
  }
  calls = 0;
  try {
    await bench.run();
  } finally {
    gpu.checkDispatches = wasChecking;
    if (prof) prof.enabled = false;
  }
  const r = bench.tasks[0]!.result as { latency?: { p50: number; samplesCount: number }; state: string; error?: Error };
  if (!r.latency) throw r.error ?? new Error(`benchmark did not complete (${r.state})`);
  const wallMedianMs = r.latency.p50 / reps;
  if (prof) {
    const times = await prof.collect();
    prof.reset();
    // Every pass recorded while profiling is timed (tinybench's warm-up included): total kernel time per call.
    const total = times.reduce((a, t) => a + t.totalMs, 0);
    if (total > 0 && calls > 0) return { ms: total / calls, timer: 'gpu', wallMedianMs };
  }
  return { ms: wallMedianMs, timer: 'wall', wallMedianMs };
}

const bandwidthCache = new WeakMap<Gpu, Promise<number>>();

/** Copy-kernel bandwidth in GB/s (bytes read + written), measured once per device on a buffer of `bytes`. */
export function copyBandwidth(gpu: Gpu, quick: boolean): Promise<number> {
  let p = bandwidthCache.get(gpu);
  if (!p) {
    p = (async () => {
      const n = (gpu.software ? (quick ? 1 << 18 : 1 << 22) : 1 << 26) / 4; // floats
      const a = empty(gpu, [n], 'f32', { track: false });
      const b = empty(gpu, [n], 'f32', { track: false });
      const t = await timeGpu(gpu, () => copyKernel(gpu, a.buffer, b.buffer, n), { quick });
      a.dispose();
      b.dispose();
      return (8 * n) / (t.ms * 1e6);
    })();
    bandwidthCache.set(gpu, p);
  }
  return p;
}

/**
 * The row of a memory-bound kernel: `bytes` moved per call at `t`, as GB/s and as a fraction of the copy kernel's
 * `copyGBs` measured in the same run; the line is logged too.
 */
export function bandwidthRow(
  o: { name: string; shape: string; t: GpuTiming; bytes: number; copyGBs: number; check: BenchRow['check'] },
  log: (message: string) => void,
): BenchRow {
  const gbs = o.bytes / (o.t.ms * 1e6);
  log(`${o.name}: ${o.t.ms.toFixed(3)} ms, ${gbs.toFixed(1)} GB/s`);
  return {
    name: o.name,
    shape: o.shape,
    medianMs: o.t.ms,
    rate: { value: gbs, unit: 'GB/s' },
    ofBaseline: { fraction: gbs / o.copyGBs, baseline: 'copy' },
    check: o.check,
    note: `${o.t.timer} timer`,
  };
}

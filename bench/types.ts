// The contract between `pnpm bench` (bench/runner.ts) and the `*.bench.ts` files it discovers anywhere in the tree.
// A bench file default-exports a BenchSuite. Suites that need WebGPU set `gpu: true` and receive a device.

export interface BenchRow {
  /** What ran, e.g. "matmul v2 (tiled 64x64)" or "encode o200k_base (wgpt)". */
  name: string;
  /** The problem size in the field's words, e.g. "M=8192 K=768 N=2304" or "4.2 MB prose". */
  shape: string;
  /** Median time of one iteration in milliseconds. */
  medianMs: number;
  /** Throughput, e.g. { value: 31.2, unit: 'GFLOP/s' } or { value: 12.5, unit: 'MB/s' }. */
  rate?: { value: number; unit: string };
  /** Fraction of a baseline measured in the same run (e.g. of the copy kernel's bandwidth), when there is one. */
  ofBaseline?: { fraction: number; baseline: string };
  /** Did the output match its reference in this run? 'n/a' when the suite has no check. */
  check: 'pass' | 'fail' | 'n/a';
  note?: string;
}

export interface BenchContext {
  /** Set for suites with gpu: true. Typed loosely here so CPU-only suites need no WebGPU types. */
  gpu?: unknown;
  /** True for `pnpm bench --quick`: small sizes, few iterations (used by the bench smoke test). */
  quick: boolean;
  log(message: string): void;
}

export interface BenchSuite {
  name: string;
  gpu?: boolean;
  run(ctx: BenchContext): Promise<BenchRow[]>;
}

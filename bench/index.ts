// The bench harness: the runner behind `wgpt bench`, GPU timing with the copy-kernel baseline, the suite contract.
export { findBenchFiles, markdownTable, runBenches, runSuites, type BenchOptions } from './runner.ts';
export { bandwidthRow, copyBandwidth, timeGpu, type GpuTiming } from './gpu.ts';
export { copyKernel, copySpec } from './copy.ts';
export type { BenchContext, BenchRow, BenchSuite } from './types.ts';

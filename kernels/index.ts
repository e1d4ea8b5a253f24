// Every kernel family's ops and specs. `allSpecs` feeds the reflection test and the bench.
import { fillSpec, type KernelSpec } from '@wgpt/runtime';
import { adamwSpec, sumsqSpec } from './adamw/adamw.ts';
import { attentionSpecs } from './attention/attention.ts';
import { copySpec } from './copy/copy.ts';
import { crossEntropyBackwardSpec, crossEntropyForwardSpec } from './crossentropy/crossentropy.ts';
import { accumulateSpec, addSpec, geluBackwardSpec, geluForwardSpec } from './elementwise/elementwise.ts';
import { matmulSpec } from './matmul/matmul.ts';
import { broadcastSpec, sumAllSpec, sumRowsSpec } from './reduce/reduce.ts';

export { AdamW, ADAMW_DEFAULTS, globalNormSq, type AdamWConfig } from './adamw/adamw.ts';
export { attention, attentionNaive, flashPlan, flashTiles, flashV2Tiles, type AttentionOptions, type FlashPlan, type FlashTiles, type V2Tiles } from './attention/attention.ts';
export { copyKernel, copySpec } from './copy/copy.ts';
export { crossEntropy } from './crossentropy/crossentropy.ts';
export { accumulateInto, add, gelu } from './elementwise/elementwise.ts';
export { gemm, linear, matmul, type GemmArgs } from './matmul/matmul.ts';
export { mean, sum, sumRowsInto } from './reduce/reduce.ts';

export const allSpecs: KernelSpec[] = [
  fillSpec,
  matmulSpec,
  sumAllSpec,
  sumRowsSpec,
  broadcastSpec,
  addSpec,
  accumulateSpec,
  geluForwardSpec,
  geluBackwardSpec,
  crossEntropyForwardSpec,
  crossEntropyBackwardSpec,
  adamwSpec,
  sumsqSpec,
  copySpec,
  ...attentionSpecs,
];

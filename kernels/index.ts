// Every kernel family's ops and specs. `allSpecs` feeds the reflection test and the bench.
import { fillSpec, type KernelSpec } from '@wgpt/runtime';
import { adamwNormSpec, adamwNormV2Spec, adamwSpec, adamwStatusSpec, adamwV2Spec } from './adamw/adamw.ts';
import { sumSlicesSpec } from './allreduce/allreduce.ts';
import { attentionSpecs } from './attention/attention.ts';
import {
  fusedClassifierBackwardSpec,
  fusedClassifierBackwardV2Spec,
  fusedClassifierSpec,
  fusedClassifierV2Spec,
} from './classifier/classifier.ts';
import { crossEntropyBackwardSpec, crossEntropyForwardSpec } from './crossentropy/crossentropy.ts';
import { encoderSpecs } from './encoder/encoder.ts';
import { kvcacheSpecs } from './kvcache/kvcache.ts';
import {
  accumulatePairV2Spec,
  accumulateSpec,
  accumulateV2Spec,
  addSpec,
  addV2Spec,
  geluBackwardSpec,
  geluBackwardV2Spec,
  geluForwardSpec,
} from './elementwise/elementwise.ts';
import {
  layernormBackwardReduceSpec,
  layernormBackwardReduceV2Spec,
  layernormBackwardSpec,
  layernormBackwardV2Spec,
  layernormForwardSpec,
  layernormForwardV2Spec,
} from './layernorm/layernorm.ts';
import { matmulSpec, matmulSubgroupSpec, matmulTiledSpec, matmulVec4Spec } from './matmul/matmul.ts';
import { broadcastSpec, sumAllSpec, sumRowsFinishSpec, sumRowsPartialSpec, sumRowsSpec } from './reduce/reduce.ts';

export {
  AdamW,
  ADAMW_DEFAULTS,
  adamwVersion,
  loadAdamW,
  saveAdamW,
  type AdamWConfig,
  type AdamWState,
  type AdamWStep,
  type AdamWVersion,
} from './adamw/adamw.ts';
export {
  exactReciprocal,
  gpuPieceSummer,
  sumSlicesInto,
  sumSlicesSpec,
  type SumSlicesArgs,
} from './allreduce/allreduce.ts';
export {
  attention,
  attentionNaive,
  checkSegments,
  describePlan,
  segmentBounds,
  flashBackward,
  flashForward,
  flashPlan,
  flashTiles,
  flashV2Tiles,
  type AttentionOptions,
  type FlashPlan,
  type FlashTiles,
  type V2Tiles,
} from './attention/attention.ts';
export {
  classifierVersion,
  classifierWorkgroupSize,
  fusedClassifier,
  fusedClassifierBackwardInto,
  fusedClassifierInto,
  type FusedClassifierArgs,
  type FusedClassifierBackwardArgs,
  type ClassifierVersion,
  type FusedClassifierOptions,
} from './classifier/classifier.ts';
export { crossEntropy } from './crossentropy/crossentropy.ts';
export { checkPositions, encoder, encoderAt, encoderBackwardWte, type EncoderOptions } from './encoder/encoder.ts';
export { decodeAttention, kvAppend } from './kvcache/kvcache.ts';
export {
  accumulateInto,
  accumulatePairInto,
  add,
  addInto,
  elementwiseVersion,
  gelu,
  geluBackwardInto,
  reshape,
  type ElementwiseVersion,
} from './elementwise/elementwise.ts';
export {
  layernorm,
  layernormBackwardInto,
  layernormForwardInto,
  layernormVersion,
  LAYERNORM_EPS,
  type LayerNormVersion,
} from './layernorm/layernorm.ts';
export {
  gemm,
  gemmStrided,
  gemmVersion,
  subgroupEligible,
  linear,
  linearGelu,
  matmul,
  tileConfig,
  vec4Eligible,
  type GemmArgs,
  type StridedGemmArgs,
  type TileConfig,
} from './matmul/matmul.ts';
export { mean, sum, sumRowsInto, sumRowsVersion } from './reduce/reduce.ts';

export const allSpecs: KernelSpec[] = [
  fillSpec,
  matmulSpec,
  matmulTiledSpec,
  matmulVec4Spec,
  matmulSubgroupSpec,
  sumAllSpec,
  sumRowsSpec,
  sumRowsPartialSpec,
  sumRowsFinishSpec,
  broadcastSpec,
  addSpec,
  accumulateSpec,
  geluForwardSpec,
  geluBackwardSpec,
  addV2Spec,
  accumulateV2Spec,
  accumulatePairV2Spec,
  geluBackwardV2Spec,
  crossEntropyForwardSpec,
  crossEntropyBackwardSpec,
  adamwSpec,
  adamwNormSpec,
  adamwStatusSpec,
  adamwV2Spec,
  adamwNormV2Spec,
  layernormForwardSpec,
  layernormBackwardSpec,
  layernormBackwardReduceSpec,
  layernormForwardV2Spec,
  layernormBackwardV2Spec,
  layernormBackwardReduceV2Spec,
  fusedClassifierSpec,
  fusedClassifierBackwardSpec,
  fusedClassifierV2Spec,
  fusedClassifierBackwardV2Spec,
  ...encoderSpecs,
  ...attentionSpecs,
  ...kvcacheSpecs,
  sumSlicesSpec,
];

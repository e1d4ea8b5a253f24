export { bundlePage, type BundleOptions } from './bundle.ts';
export { isLoopback, PAGES, startServer, type PageName, type ServeOptions, type WgptServer } from './serve.ts';
export { register } from './cli.ts';
export type { CheckpointInfo, EncodingInfo, ServerInfo } from './pages/api.ts';
export { textCounts, tokenPieces, type TokenPiece } from './pages/tokens.ts';
export { TRAIN_TEXT } from './pages/corpus.ts';
export { architecture, attentionProbs, inspect, softmax, topK, type Inspection } from './pages/inspect.ts';
export { checkModelFits } from './pages/model.ts';

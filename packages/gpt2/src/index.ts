export * from './config.ts';
export * from './llmc.ts';
export * from './safetensors.ts';
export * from './hf.ts';
export { writeFileAtomic } from './atomic.ts';
export * from './init.ts';
export * from './model.ts';

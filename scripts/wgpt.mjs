#!/usr/bin/env node
// Runs the `wgpt` CLI from the TypeScript sources: tsx compiles .ts on the fly, scripts/wgsl-loader.mjs inlines .wgsl.
import { register } from 'node:module';

register('./wgsl-loader.mjs', import.meta.url);
await import('tsx/esm');
await import('../packages/cli/src/main.ts');

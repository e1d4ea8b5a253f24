#!/usr/bin/env node
// Runs a TypeScript file with the project's loaders (tsx for .ts, scripts/wgsl-loader.mjs for .wgsl):
//   node scripts/run-ts.mjs tools/some-script.ts [args...]
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  console.error('usage: node scripts/run-ts.mjs FILE.ts [args...]');
  process.exit(2);
}
register('./wgsl-loader.mjs', import.meta.url);
await import('tsx/esm');
process.argv = [process.argv[0], resolve(file), ...rest];
await import(pathToFileURL(resolve(file)).href);

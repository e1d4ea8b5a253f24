// Node module hook: `import source from './x.wgsl'` gives the file's text, as esbuild's text loader and the vitest
// plugin in vitest.config.ts do. Registered by scripts/wgpt.mjs before the TypeScript loader.
import { readFile } from 'node:fs/promises';

export async function load(url, context, nextLoad) {
  if (url.endsWith('.wgsl')) {
    const text = await readFile(new URL(url), 'utf8');
    return { format: 'module', source: `export default ${JSON.stringify(text)};`, shortCircuit: true };
  }
  return nextLoad(url, context);
}

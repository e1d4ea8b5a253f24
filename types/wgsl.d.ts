// WGSL sources are imported as text: vitest (vitest.config.ts), esbuild (packages/web, tools/gpu) and the Node
// loader (scripts/wgsl-loader.mjs) all inline them.
declare module '*.wgsl' {
  const source: string;
  export default source;
}

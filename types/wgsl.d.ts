// WGSL sources are imported as text: vitest (vitest.config.ts) and esbuild (scripts/build.mjs) both inline them.
declare module '*.wgsl' {
  const source: string;
  export default source;
}

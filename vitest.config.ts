import { defineConfig } from 'vitest/config';

// WGSL files are imported as text, the same way esbuild's `.wgsl: text` loader does for bundles.
const wgslAsText = {
  name: 'wgsl-as-text',
  transform(code: string, id: string) {
    if (id.endsWith('.wgsl')) return { code: `export default ${JSON.stringify(code)};`, map: null };
    return null;
  },
};

export default defineConfig({
  plugins: [wgslAsText],
  test: {
    include: [
      'packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'kernels/**/*.test.ts', 'bench/**/*.test.ts',
      'tests/**/*.test.ts',
    ],
    // One Dawn instance per process: forks, not threads (dawn.node is not safe across worker threads).
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', './tests/summary-reporter.ts'],
  },
});

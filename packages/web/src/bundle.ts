// Bundles a page entry (TypeScript importing @wgpt/* and .wgsl files) into one browser script with esbuild.
import { build } from 'esbuild';

export interface BundleOptions {
  entry: string;
  /** Minify (default false: readable stack traces in tests). */
  minify?: boolean;
}

export async function bundlePage(opts: BundleOptions): Promise<string> {
  const r = await build({
    entryPoints: [opts.entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: !!opts.minify,
    loader: { '.wgsl': 'text' },
    // The Node-only branch of the device layer imports these; it never runs in a page.
    external: ['webgpu'],
    logLevel: 'silent',
  });
  return r.outputFiles[0]!.text;
}

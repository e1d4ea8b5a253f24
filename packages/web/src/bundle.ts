// Bundles a page entry (TypeScript importing @wgpt/* and .wgsl files) into one browser script with esbuild.
//
// Pages run the packages' own code. Their indexes also export the Node side (file formats on disk, trainers, CLIs,
// data pipelines with Node-only libraries), so in a bundle @wgpt/gpt2, @wgpt/tokenizer and @wgpt/chat are the
// browser subsets listed below, made of the packages' own modules, and Node's built-in modules are a stub whose
// functions throw when called: modules that import them still load, and a page never calls those functions.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { build, type Plugin } from 'esbuild';

export interface BundleOptions {
  entry: string;
  /** Minify (default false: readable stack traces in tests). */
  minify?: boolean;
}

/** Per package, its modules a page may use: `*` for all of a module's exports, else the names. */
const BROWSER_SUBSETS: Record<string, Record<string, '*' | string[]>> = {
  '@wgpt/gpt2': {
    'config.ts': '*',
    'init.ts': '*',
    'model.ts': '*',
    'sample.ts': '*',
    'kvcache.ts': ['KVCache'],
    // Named by @wgpt/chat's session for checkpoints on disk; never called in a page.
    'checkpoint.ts': ['checkpointModelPath'],
  },
  '@wgpt/tokenizer': {
    'core.ts': '*',
    // What @wgpt/chat's format module imports; only the table of encodings is used in a page.
    'registry.ts': ['getEncoding', 'isOpenAiEncodingName', 'OPENAI_ENCODING_NAMES', 'OPENAI_ENCODINGS'],
    'io.ts': ['CONFIG_FILE', 'loadTokenizer'],
  },
  '@wgpt/chat': { 'format.ts': '*', 'render.ts': '*', 'chat.ts': '*' },
};

const require = createRequire(import.meta.url);

/** The module text of a package's browser subset: re-exports of its own source files. */
function subsetModule(pkg: string): { contents: string; resolveDir: string } {
  const src = dirname(require.resolve(pkg));
  const lines = Object.entries(BROWSER_SUBSETS[pkg]!).map(([file, names]) => {
    const from = JSON.stringify(join(src, file));
    return names === '*' ? `export * from ${from};` : `export { ${names.join(', ')} } from ${from};`;
  });
  return { contents: lines.join('\n'), resolveDir: src };
}

const NODE_BUILTINS = /^(node:.*|fs|fs\/promises|path|os|crypto|module|url|util|stream|events|worker_threads|zlib)$/;

const browserPlugin: Plugin = {
  name: 'wgpt-browser',
  setup(b) {
    b.onResolve({ filter: /^@wgpt\/(gpt2|tokenizer|chat)$/ }, (a) => ({ path: a.path, namespace: 'wgpt-subset' }));
    b.onLoad({ filter: /.*/, namespace: 'wgpt-subset' }, (a) => ({ loader: 'ts', ...subsetModule(a.path) }));
    b.onResolve({ filter: NODE_BUILTINS }, (a) => ({ path: a.path, namespace: 'node-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'node-stub' }, (a) => ({
      loader: 'js',
      contents:
        `const fail = (k) => () => { throw new Error(${JSON.stringify(a.path)} + '.' + String(k) + ` +
        `' is not available in a browser'); };\n` +
        'module.exports = new Proxy({}, { get: (_, k) => (k === "__esModule" ? false : fail(k)) });\n',
    }));
  },
};

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
    // Node-side modules in the bundle read settings from the environment when they load (e.g. gpt2's crash-test
    // hook); a page has none.
    define: { 'process.env': '{}' },
    plugins: [browserPlugin],
    logLevel: 'silent',
  });
  return r.outputFiles[0]!.text;
}

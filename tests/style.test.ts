// Source lines are at most 120 characters (prettier's printWidth in .prettierrc.json; comments and long strings,
// which prettier leaves alone, are wrapped by hand). A line that cannot be wrapped sensibly (a URL, a hash, a test
// title prettier keeps on its it( line) may stay long if the line directly before it is a comment with
// `long-line: <why>`; a marker with no long line after it fails too, so markers do not outlive their reason.
// The files are those git tracks plus untracked ones it does not ignore, so a new file is checked before its commit.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAX = 120;
const EXTENSIONS = ['ts', 'mts', 'cts', 'js', 'mjs', 'cjs', 'wgsl', 'py', 'sh'];
// Skipped when walking a tree that is not a git checkout: the folders .gitignore leaves out, by name at any depth
// or by path from the root.
const SKIP_NAMES = new Set(['.git', 'node_modules', 'dist', '.cache', '.gpu']);
const SKIP_PATHS = new Set(['out', join('bench', 'results')]);
const MARKER = /^\s*(\/\/|#)\s*long-line:\s*\S/;

/** Repository-relative paths of the source files under root. */
function sourceFiles(root: string): string[] {
  const isSource = (f: string) => EXTENSIONS.some((e) => f.endsWith(`.${e}`));
  let inGit = true;
  try {
    execFileSync('git', ['rev-parse', '--is-inside-work-tree'], { cwd: root, stdio: 'ignore' });
  } catch {
    inGit = false;
  }
  if (inGit) {
    const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    // A file deleted in the working tree but not yet in the index is still listed by --cached.
    const listed = out.split('\0').filter((f) => f && isSource(f));
    return listed.filter((f) => statSync(join(root, f), { throwIfNoEntry: false })?.isFile());
  }
  const files: string[] = [];
  const walk = (rel: string) => {
    for (const d of readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel ? join(rel, d.name) : d.name;
      if (d.isDirectory() && !SKIP_NAMES.has(d.name) && !SKIP_PATHS.has(p)) walk(p);
      else if (d.isFile() && isSource(p)) files.push(p);
    }
  };
  walk('');
  return files.sort();
}

/**
 * `file:line (length)` for each line over MAX characters (code points, so `·` or `≤` count once) not directly after
 * a long-line marker, and `file:line: long-line marker with no long line after it` for each unused marker.
 */
function longLines(file: string, text: string): string[] {
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const found: string[] = [];
  lines.forEach((line, i) => {
    const length = [...line].length;
    const excused = i > 0 && MARKER.test(lines[i - 1]!);
    if (length > MAX && !excused) found.push(`${file}:${i + 1} (${length})`);
    if (MARKER.test(line) && [...(lines[i + 1] ?? '')].length <= MAX) {
      found.push(`${file}:${i + 1}: long-line marker with no long line after it`);
    }
  });
  return found;
}

function checkTree(root: string): string[] {
  return sourceFiles(root).flatMap((f) => longLines(f, readFileSync(join(root, f), 'utf8')));
}

describe('source line length', () => {
  it(`no source line is over ${MAX} characters`, () => {
    const files = sourceFiles(ROOT);
    // The check must see the tree: these exist in every checkout.
    expect(files).toEqual(expect.arrayContaining(['tests/style.test.ts', 'scripts/bootstrap.sh']));
    expect(files.some((f) => f.endsWith('.wgsl'))).toBe(true);
    expect(checkTree(ROOT), `wrap these lines, or put a "// long-line: why" comment on the line before`).toEqual([]);
  });

  it('reports a long line with its file, line and length, and counts characters, not bytes', () => {
    const ok = 'x'.repeat(MAX);
    expect(longLines('a.ts', `${ok}\n${ok}x\n${'·'.repeat(MAX)}\r\n${'≤'.repeat(MAX + 1)}\r\n`)).toEqual([
      'a.ts:2 (121)',
      'a.ts:4 (121)',
    ]);
  });

  it('a long-line marker excuses only the line directly after it, and an unused marker is reported', () => {
    const long = 'y'.repeat(MAX + 5);
    expect(longLines('b.ts', `  // long-line: a URL\n${long}\n${long}`)).toEqual(['b.ts:3 (125)']);
    expect(longLines('c.sh', `# long-line: a hash\n${long}`)).toEqual([]);
    expect(longLines('d.ts', `// long-line: a URL\n\n${long}`)).toEqual([
      'd.ts:1: long-line marker with no long line after it',
      'd.ts:3 (125)',
    ]);
    // A marker needs a reason.
    expect(longLines('e.ts', `// long-line:\n${long}`)).toEqual(['e.ts:2 (125)']);
  });

  it.each([
    ['a git checkout (untracked files included, ignored ones skipped)', true],
    ['a plain folder', false],
  ])('finds a synthetic long line in %s', (_, git) => {
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-style-'));
    const put = (rel: string, text: string) => {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), text);
    };
    put('src/ok.ts', 'export const a = 1;\n');
    put('src/kernel.wgsl', `// ${'w'.repeat(MAX)}\n`);
    put('README.md', `${'m'.repeat(MAX * 2)}\n`); // not a source file
    put('node_modules/dep/index.js', `${'n'.repeat(MAX * 2)}\n`);
    put('out/gen.ts', `${'o'.repeat(MAX * 2)}\n`);
    if (git) {
      put('.gitignore', 'node_modules/\n/out/\n');
      execFileSync('git', ['init', '-q'], { cwd: dir });
    }
    expect(checkTree(dir)).toEqual(['src/kernel.wgsl:1 (123)']);
  });
});

// The workspace's dependency rules, checked on every import of every file the typecheck covers (tsconfig.json):
// imports between packages go one way (RULES below is the one statement of which way), only through dependencies
// the importer's package.json declares, and there are no import cycles between files except the type-only ones
// listed with their reason. The graph comes from tests/import-graph.ts (the TypeScript parser, so a commented-out
// import or a string is not an import). The second half runs the same checks on small synthetic workspaces, one
// violation each, so each check is seen to fail.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cycleViolations,
  importViolations,
  packageViolations,
  scanWorkspace,
  typeOnlyCycleEdges,
  type Rules,
  type Violation,
  type Workspace,
} from './import-graph.ts';

const ROOT = new URL('..', import.meta.url).pathname;

/** The libraries, bottom up: base ← runtime ← kernels ← gpt2; base ← tokenizer ← data ← gpt2; gpt2, runtime ← chat. */
const LIBRARIES = [
  '@wgpt/base', '@wgpt/runtime', '@wgpt/kernels', '@wgpt/tokenizer', '@wgpt/data', '@wgpt/gpt2', '@wgpt/chat',
];

/**
 * Which workspace packages each package may import (type-only imports included). Nothing but tests may import tools
 * or cli; nothing imports tests. A new package needs an entry here, and package.json may declare only these.
 */
const RULES: Rules = {
  '@wgpt/base': [],
  '@wgpt/runtime': ['@wgpt/base'],
  '@wgpt/bench': ['@wgpt/base', '@wgpt/runtime'],
  // A library's *.bench.ts files (and only they, as devDependencies) use the bench harness, which needs only the
  // runtime: bench/runner.ts finds them by name, so the harness never imports a library above the runtime.
  '@wgpt/kernels': ['@wgpt/base', '@wgpt/runtime', '@wgpt/bench'],
  '@wgpt/tokenizer': ['@wgpt/base', '@wgpt/bench'],
  '@wgpt/data': ['@wgpt/base', '@wgpt/tokenizer', '@wgpt/bench'],
  '@wgpt/gpt2': ['@wgpt/base', '@wgpt/runtime', '@wgpt/kernels', '@wgpt/tokenizer', '@wgpt/data', '@wgpt/bench'],
  '@wgpt/chat': ['@wgpt/base', '@wgpt/runtime', '@wgpt/gpt2', '@wgpt/tokenizer'],
  '@wgpt/web': LIBRARIES,
  '@wgpt/cli': [...LIBRARIES, '@wgpt/web', '@wgpt/bench'],
  '@wgpt/tools': [...LIBRARIES, '@wgpt/web', '@wgpt/bench'],
  // tools/reference holds the PyTorch reference that the GPT-2 cross-check regenerates its fixture with.
  '@wgpt/tests': [...LIBRARIES, '@wgpt/web', '@wgpt/bench', '@wgpt/cli', '@wgpt/tools'],
  wgpt: [], // the root: vitest.config.ts and types/
};

/**
 * Temporary exceptions, for a violation that a branch in progress removes (none today). An entry excuses every
 * violation whose importer matches `from` and whose target (file, package, or cycle) matches `to`; an entry that
 * excuses nothing fails the test.
 */
const KNOWN: { from: RegExp; to: RegExp }[] = [];

/** Type-only imports that close a cycle between files, each with why it is there. Any other one fails the test. */
const TYPE_CYCLES: { from: string; to: string; why: string }[] = [
  {
    from: 'packages/runtime/src/tensor.ts',
    to: 'packages/runtime/src/autograd.ts',
    why: 'a Tensor holds the tape node that made it; autograd creates Tensors',
  },
  {
    from: 'packages/runtime/src/builtin/fill.ts',
    to: 'packages/runtime/src/tensor.ts',
    why: 'fill() takes a Tensor; a new Tensor is filled with NaN by the fill kernel',
  },
  {
    from: 'packages/runtime/src/scope.ts',
    to: 'packages/runtime/src/tensor.ts',
    why: 'a tidy scope is a set of Tensors; a new Tensor joins the current scope',
  },
];

/** Files with import()/require() calls whose specifier is computed, so the checks cannot see where they go. */
const COMPUTED: { file: string; why: string }[] = [
  { file: 'bench/runner.ts', why: 'loads the *.bench.ts files it finds in the tree' },
  { file: 'packages/tokenizer/src/tokenizer.bench.ts', why: "gpt-tokenizer's encoding modules, by name" },
];

const excused = (v: Violation) => KNOWN.findIndex((k) => k.from.test(v.from) && k.to.test(v.to));

describe('the workspace keeps its dependency rules', () => {
  const ws = scanWorkspace(ROOT);
  const all = [...packageViolations(ws, RULES), ...importViolations(ws, RULES), ...cycleViolations(ws)];

  it('reads the whole workspace', () => {
    // Guards against a scan that silently finds nothing (a moved tsconfig.json, a parser that sees no imports);
    // the rules test below also fails when a package in RULES has no file in the scan.
    expect(ws.files).toContain('packages/gpt2/src/model.ts');
    expect(ws.files).toContain('tests/imports.test.ts');
    expect(ws.edges.filter((e) => e.from === 'packages/gpt2/src/model.ts').map((e) => e.specifier)).toContain(
      './kvcache.ts',
    );
  });

  it('every package has a rule; imports go in an allowed direction, through declared dependencies; no cycles', () => {
    expect(all.filter((v) => excused(v) < 0).map((v) => v.message)).toEqual([]);
  });

  it('every known exception still excuses something (delete the ones that do not)', () => {
    const used = new Set(all.map(excused));
    expect(KNOWN.filter((_, i) => !used.has(i)).map((k) => `${k.from} → ${k.to}`)).toEqual([]);
  });

  it('type-only imports that close a cycle are exactly the listed ones', () => {
    const found = typeOnlyCycleEdges(ws).map((e) => `${e.from} → ${e.to}`);
    const why = 'a type-only import closes a cycle: break the cycle, or list the import in TYPE_CYCLES with why';
    expect(found.sort(), why).toEqual(TYPE_CYCLES.map((c) => `${c.from} → ${c.to}`).sort());
  });

  it('imports with a computed specifier are in the listed files only', () => {
    const files = COMPUTED.map((c) => c.file);
    expect(ws.computed.filter((at) => !files.includes(at.replace(/:\d+$/, '')))).toEqual([]);
    expect(files.filter((f) => !ws.computed.some((at) => at.startsWith(`${f}:`)))).toEqual([]);
  });
});

/** Writes a workspace (path → content; objects become JSON) into a temporary folder, scans it, removes it. */
function workspace(files: Record<string, string | object>): Workspace {
  const root = mkdtempSync(join(tmpdir(), 'wgpt-imports-'));
  try {
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), typeof content === 'string' ? content : JSON.stringify(content));
    }
    return scanWorkspace(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const lines = (...l: string[]) => l.join('\n');
const pkg = (name: string, dependencies: Record<string, string> = {}) => ({
  name,
  exports: { '.': './src/index.ts' },
  dependencies,
});

// Two packages, @s/high → @s/low, with a commented-out import, an import in a string, and a type-only cycle.
const BASE: Record<string, string | object> = {
  'package.json': { name: 'root', devDependencies: { vitest: '1' } },
  'tsconfig.json': { compilerOptions: { allowImportingTsExtensions: true }, include: ['packages/*/src/**/*.ts'] },
  'packages/low/package.json': pkg('@s/low'),
  'packages/low/src/index.ts': lines(
    "// import { high } from '@s/high';",
    "/* import('@s/high') */ export const s = \"import { high } from '@s/high'\";",
    'export const low = 1;',
  ),
  'packages/high/package.json': pkg('@s/high', { '@s/low': '1' }),
  'packages/high/src/index.ts': lines(
    "import { low } from '@s/low';",
    "import { a } from './a.ts';",
    'export const high = low + a;',
  ),
  'packages/high/src/a.ts': lines("import type { high } from './index.ts';", 'export const a: typeof high = 1;'),
};
const SYNTHETIC_RULES: Rules = { root: [], '@s/low': [], '@s/high': ['@s/low'] };
const check = (ws: Workspace) => {
  const found = [...packageViolations(ws, SYNTHETIC_RULES), ...importViolations(ws, SYNTHETIC_RULES)];
  return [...found, ...cycleViolations(ws)].map((v) => `${v.rule}: ${v.message}`);
};

describe('the checks catch each kind of violation (synthetic workspaces)', () => {
  it('a clean workspace: no violations; comments and strings are not imports; the type-only cycle is found', () => {
    const ws = workspace(BASE);
    expect(check(ws)).toEqual([]);
    expect(ws.edges.filter((e) => e.from.startsWith('packages/low/'))).toEqual([]);
    const high = 'packages/high/src';
    expect(typeOnlyCycleEdges(ws)).toEqual([{ from: `${high}/a.ts`, to: `${high}/index.ts`, line: 1 }]);
  });

  const cases: { name: string; change: Record<string, string | object>; expected: string[] }[] = [
    {
      name: 'an import against the direction, undeclared',
      change: { 'packages/low/src/up.ts': lines("import { high } from '@s/high';", 'export const up = high;') },
      expected: [
        "direction: packages/low/src/up.ts:1: '@s/high': @s/low may not import @s/high (it may use: none)",
        "declared: packages/low/src/up.ts:1: '@s/high': @s/high is not a dependency in packages/low/package.json",
      ],
    },
    {
      name: 'a type-only import against the direction',
      change: {
        'packages/low/src/up.ts': lines("import type { high } from '@s/high';", 'export type Up = typeof high;'),
      },
      expected: [
        "direction: packages/low/src/up.ts:1: '@s/high': @s/low may not import @s/high (it may use: none)",
        "declared: packages/low/src/up.ts:1: '@s/high': @s/high is not a dependency in packages/low/package.json",
      ],
    },
    {
      name: 'a relative path into another package',
      change: {
        'packages/high/src/b.ts': lines("import { low } from '../../low/src/index.ts';", 'export const b = low;'),
      },
      expected: [
        "declared: packages/high/src/b.ts:1: '../../low/src/index.ts' reaches into @s/low by a relative path: " +
          'import it by package name, declared in packages/high/package.json',
      ],
    },
    {
      name: 'an npm package that no package.json declares (the root one counts)',
      change: {
        'packages/high/src/b.ts': lines(
          "import { x } from 'left-pad';",
          "import { it } from 'vitest';",
          'export const b = [x, it];',
        ),
      },
      expected: [
        "declared: packages/high/src/b.ts:1: 'left-pad': left-pad is not a dependency in packages/high/package.json",
      ],
    },
    {
      name: 'import { type T } is a value import under verbatimModuleSyntax: a cycle',
      change: {
        'packages/high/src/a.ts': lines("import { type high } from './index.ts';", 'export const a: typeof high = 1;'),
      },
      expected: ['cycle: import cycle: packages/high/src/a.ts → packages/high/src/index.ts → packages/high/src/a.ts'],
    },
    {
      name: 'a dynamic import closing a cycle',
      change: {
        'packages/high/src/a.ts': lines('export const a = 1;', "export const later = () => import('./index.ts');"),
      },
      expected: ['cycle: import cycle: packages/high/src/a.ts → packages/high/src/index.ts → packages/high/src/a.ts'],
    },
    {
      name: 'package.json declaring a package against the direction',
      change: { 'packages/low/package.json': pkg('@s/low', { '@s/high': '1' }) },
      expected: [
        'package.json: packages/low/package.json: @s/low depends on @s/high, which it may not use (it may use: none)',
      ],
    },
    {
      name: 'a subpath the package does not export',
      change: {
        'packages/high/src/b.ts': lines("import { low } from '@s/low/src/index.ts';", 'export const b = low;'),
      },
      expected: [
        "unresolved: packages/high/src/b.ts:1: '@s/low/src/index.ts' does not resolve: " +
          "@s/low's package.json exports no './src/index.ts'",
      ],
    },
    {
      name: 'a package without a rule',
      change: { 'packages/new/package.json': pkg('@s/new'), 'packages/new/src/index.ts': 'export const n = 1;' },
      expected: ['rules: packages/new/package.json: @s/new has no entry in the rules'],
    },
  ];
  for (const { name, change, expected } of cases) {
    it(name, () => expect(check(workspace({ ...BASE, ...change }))).toEqual(expected));
  }
});

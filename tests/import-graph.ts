// The workspace's import graph, read with the TypeScript compiler's parser (comments and strings are not imports),
// and the checks tests/imports.test.ts applies to it: the direction between packages, imports through declared
// dependencies only, and no cycles between files. The rules themselves live in that test.
//
// An import is type-only when the whole declaration is (`import type …`, `export type … from`) or it is a type
// position (`import('x').T`). `import { type T } from 'x'` is not: with verbatimModuleSyntax (tsconfig.json) it is
// emitted as `import {} from 'x'`, so x still loads first. import() and require() calls are 'dynamic'.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

export type ImportKind = 'value' | 'type' | 'dynamic';

export interface ImportRef {
  specifier: string;
  kind: ImportKind;
  line: number;
}

/** The imports of one source file, and the lines of import()/require() calls whose specifier is computed. */
export function readImports(fileName: string, text: string): { imports: ImportRef[]; computed: number[] } {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const imports: ImportRef[] = [];
  const computed: number[] = [];
  const lineOf = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const literal = (e: ts.Expression | undefined): string | undefined => {
    while (e && (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e))) {
      e = e.expression;
    }
    return e && (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) ? e.text : undefined;
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const typeOnly = n.importClause?.phaseModifier === ts.SyntaxKind.TypeKeyword;
      imports.push({ specifier: n.moduleSpecifier.text, kind: typeOnly ? 'type' : 'value', line: lineOf(n) });
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      imports.push({ specifier: n.moduleSpecifier.text, kind: n.isTypeOnly ? 'type' : 'value', line: lineOf(n) });
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) {
      const spec = literal(n.moduleReference.expression);
      if (spec !== undefined) imports.push({ specifier: spec, kind: n.isTypeOnly ? 'type' : 'value', line: lineOf(n) });
    } else if (ts.isImportTypeNode(n)) {
      const arg = n.argument;
      if (ts.isLiteralTypeNode(arg) && ts.isStringLiteral(arg.literal)) {
        imports.push({ specifier: arg.literal.text, kind: 'type', line: lineOf(n) });
      }
    } else if (ts.isCallExpression(n)) {
      const isImport = n.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(n.expression) && n.expression.text === 'require';
      if (isImport || isRequire) {
        const spec = literal(n.arguments[0]);
        if (spec === undefined) computed.push(lineOf(n));
        else imports.push({ specifier: spec, kind: 'dynamic', line: lineOf(n) });
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return { imports, computed };
}

export interface Package {
  name: string;
  /** Folder relative to the workspace root, '' for the root. */
  dir: string;
  /** Every dependency its package.json declares (dependencies, devDependencies, peer and optional ones). */
  deps: Set<string>;
  exports: Record<string, unknown> | undefined;
}

export interface Edge {
  /** Importing file, relative to the workspace root. */
  from: string;
  line: number;
  specifier: string;
  kind: ImportKind;
  fromPkg: string;
  /** The workspace package or npm package imported; undefined for Node's built-in modules. */
  toPkg?: string;
  /** The workspace file imported; undefined for npm packages and built-ins. */
  to?: string;
  /** Why it could not be resolved, when it could not. */
  unresolved?: string;
}

export interface Workspace {
  root: string;
  /** By package name. */
  packages: Map<string, Package>;
  /** The files the typecheck covers (tsconfig.json), relative to the root. */
  files: string[];
  edges: Edge[];
  /** import()/require() calls with a computed specifier: where they are, as file:line. */
  computed: string[];
}

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
const posix = (p: string) => p.split('\\').join('/');

/** Reads every file of `root`/tsconfig.json and resolves its imports against the workspace's packages. */
export function scanWorkspace(root: string): Workspace {
  root = resolve(root);
  const parsed = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(`tsconfig.json: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    },
  });
  if (!parsed) throw new Error(`cannot read ${join(root, 'tsconfig.json')}`);
  const files = parsed.fileNames.map((f) => posix(relative(root, f))).sort();

  const byDir = new Map<string, Package>();
  const ownerOf = (file: string): Package => {
    for (let dir = dirname(file); ; dir = dirname(dir)) {
      const key = dir === '.' ? '' : dir;
      const known = byDir.get(key);
      if (known) return known;
      const pj = join(root, key, 'package.json');
      if (existsSync(pj)) {
        const j = readJson(pj);
        const deps = new Set<string>();
        for (const field of ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies']) {
          for (const d of Object.keys((j[field] as object | undefined) ?? {})) deps.add(d);
        }
        const exp = j.exports;
        const exports = typeof exp === 'string' ? { '.': exp } : (exp as Record<string, unknown> | undefined);
        const pkg: Package = { name: String(j.name ?? (key || 'root')), dir: key, deps, exports };
        byDir.set(key, pkg);
        return pkg;
      }
      if (key === '') throw new Error(`${file}: no package.json above it in ${root}`);
    }
  };
  ownerOf('package.json'); // the root's, whose dependencies (the shared toolchain) every package can resolve
  for (const f of files) ownerOf(f);
  const packages = new Map([...byDir.values()].map((p) => [p.name, p]));

  const resolveFile = (abs: string): string | undefined => {
    const candidates = [abs, abs.replace(/\.(m?js)$/, '.ts'), `${abs}.ts`, join(abs, 'index.ts')];
    return candidates.find((c) => existsSync(c) && statSync(c).isFile());
  };

  const edges: Edge[] = [];
  const computed: string[] = [];
  for (const from of files) {
    const fromPkg = ownerOf(from).name;
    const { imports, computed: lines } = readImports(from, readFileSync(join(root, from), 'utf8'));
    for (const l of lines) computed.push(`${from}:${l}`);
    for (const { specifier, kind, line } of imports) {
      const edge: Edge = { from, line, specifier, kind, fromPkg };
      edges.push(edge);
      if (specifier.startsWith('.') || specifier.startsWith('/')) {
        const abs = resolveFile(resolve(root, dirname(from), specifier));
        if (!abs) {
          edge.unresolved = 'no such file';
          continue;
        }
        edge.to = posix(relative(root, abs));
        edge.toPkg = edge.to.startsWith('..') ? '(outside the workspace)' : ownerOf(edge.to).name;
        continue;
      }
      if (isBuiltin(specifier)) continue;
      const parts = specifier.split('/');
      const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
      edge.toPkg = name;
      const pkg = packages.get(name);
      if (!pkg) continue; // an npm package
      const sub = `.${specifier.slice(name.length)}`;
      let target: unknown = pkg.exports ? exportTarget(pkg.exports, sub) : sub;
      while (target && typeof target === 'object') {
        const t = target as Record<string, unknown>;
        target = t.import ?? t.default ?? t.types;
      }
      const abs = typeof target === 'string' ? resolveFile(join(root, pkg.dir, target)) : undefined;
      if (abs) edge.to = posix(relative(root, abs));
      else edge.unresolved = `${name}'s package.json exports no '${sub}'`;
    }
  }
  return { root, packages, files, edges, computed: computed.sort() };
}

/**
 * The target of subpath `sub` in a package.json `exports` map: an exact key, else a pattern key with one `*`
 * (Node's subpath patterns: the text the `*` matched replaces every `*` of the target).
 */
function exportTarget(exports: Record<string, unknown>, sub: string): unknown {
  if (sub in exports) return exports[sub];
  for (const [key, target] of Object.entries(exports)) {
    const star = key.indexOf('*');
    if (star < 0) continue;
    const [pre, post] = [key.slice(0, star), key.slice(star + 1)];
    if (sub.length < pre.length + post.length || !sub.startsWith(pre) || !sub.endsWith(post)) continue;
    const matched = sub.slice(pre.length, sub.length - post.length);
    return typeof target === 'string' ? target.replaceAll('*', matched) : target;
  }
  return undefined;
}

/** Which workspace packages each package may import, by package name. */
export type Rules = Record<string, readonly string[]>;

export interface Violation {
  rule: 'rules' | 'package.json' | 'direction' | 'declared' | 'unresolved' | 'cycle';
  /** The importing file (or package.json, or the first file of a cycle). */
  from: string;
  /** What it imports: a specifier, a package, or the cycle. */
  to: string;
  message: string;
}

/** Package-level checks: every package has a rule, and package.json declares only workspace packages it may use. */
export function packageViolations(ws: Workspace, rules: Rules): Violation[] {
  const out: Violation[] = [];
  for (const name of Object.keys(rules)) {
    if (!ws.packages.has(name)) {
      out.push({ rule: 'rules', from: name, to: name, message: `the rules name ${name}, which no package is called` });
    }
  }
  for (const p of ws.packages.values()) {
    const pj = posix(join(p.dir, 'package.json'));
    const allowed = rules[p.name];
    if (!allowed) {
      out.push({ rule: 'rules', from: pj, to: p.name, message: `${pj}: ${p.name} has no entry in the rules` });
      continue;
    }
    for (const d of p.deps) {
      if (ws.packages.has(d) && d !== p.name && !allowed.includes(d)) {
        const may = allowed.join(', ') || 'none';
        const message = `${pj}: ${p.name} depends on ${d}, which it may not use (it may use: ${may})`;
        out.push({ rule: 'package.json', from: pj, to: d, message });
      }
    }
  }
  return out;
}

/**
 * Per-import checks: the importer's package may use the imported one (every kind of import, type-only too), and
 * the import goes through a dependency its package.json declares (npm packages may also come from the root's
 * package.json: the shared toolchain). A relative path into another package is never right.
 */
export function importViolations(ws: Workspace, rules: Rules): Violation[] {
  const out: Violation[] = [];
  const rootPkg = [...ws.packages.values()].find((p) => p.dir === '');
  for (const e of ws.edges) {
    const at = `${e.from}:${e.line}: '${e.specifier}'`;
    if (e.unresolved) {
      const message = `${at} does not resolve: ${e.unresolved}`;
      out.push({ rule: 'unresolved', from: e.from, to: e.specifier, message });
      continue;
    }
    if (!e.toPkg || e.toPkg === e.fromPkg) continue;
    const own = ws.packages.get(e.fromPkg)!;
    const ownJson = `${own.dir || '.'}/package.json`;
    const workspace = ws.packages.has(e.toPkg);
    if (workspace && !(rules[e.fromPkg] ?? []).includes(e.toPkg)) {
      const allowed = (rules[e.fromPkg] ?? []).join(', ') || 'none';
      const message = `${at}: ${e.fromPkg} may not import ${e.toPkg} (it may use: ${allowed})`;
      out.push({ rule: 'direction', from: e.from, to: e.to ?? e.toPkg, message });
    }
    if (e.specifier.startsWith('.') || e.specifier.startsWith('/')) {
      const fix = `import it by package name, declared in ${ownJson}`;
      const message = `${at} reaches into ${e.toPkg} by a relative path: ${fix}`;
      out.push({ rule: 'declared', from: e.from, to: e.to ?? e.specifier, message });
    } else if (!own.deps.has(e.toPkg) && (workspace || !rootPkg?.deps.has(e.toPkg))) {
      const message = `${at}: ${e.toPkg} is not a dependency in ${ownJson}`;
      out.push({ rule: 'declared', from: e.from, to: e.toPkg, message });
    }
  }
  return out;
}

/** Strongly connected components of a directed graph with more than one node or a self-loop (Tarjan). */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const strong = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)?.has(v)) out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) strong(v);
  return out.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** One concrete cycle through `start` inside `members` (shortest by breadth-first search), as a → b → … → a. */
function cycleThrough(graph: Map<string, Set<string>>, members: Set<string>, start: string): string[] {
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = prev.get(u)!) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

const graphOf = (edges: Edge[]) => {
  const g = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!e.to) continue;
    if (!g.has(e.from)) g.set(e.from, new Set());
    g.get(e.from)!.add(e.to);
  }
  return g;
};

/** Cycles between files through value and dynamic imports: each is one violation, shown as one concrete loop. */
export function cycleViolations(ws: Workspace): Violation[] {
  const g = graphOf(ws.edges.filter((e) => e.kind !== 'type'));
  return cycles(g).map((scc) => {
    const loop = cycleThrough(g, new Set(scc), scc[0]!).join(' → ');
    const shown = loop.split(' → ').length - 1;
    const more = scc.length > shown ? ` (${scc.length} files in the cycle: ${scc.join(', ')})` : '';
    return { rule: 'cycle', from: scc[0]!, to: loop, message: `import cycle: ${loop}${more}` };
  });
}

/** Type-only imports that close a cycle: from → to where `to` reaches `from` again through any imports. */
export function typeOnlyCycleEdges(ws: Workspace): { from: string; to: string; line: number }[] {
  const g = graphOf(ws.edges);
  const reaches = (a: string, b: string) => {
    const seen = new Set([a]);
    const queue = [a];
    while (queue.length) {
      for (const w of g.get(queue.shift()!) ?? []) {
        if (w === b) return true;
        if (!seen.has(w)) {
          seen.add(w);
          queue.push(w);
        }
      }
    }
    return false;
  };
  const out = new Map<string, { from: string; to: string; line: number }>();
  for (const e of ws.edges) {
    if (e.kind === 'type' && e.to && !out.has(`${e.from} ${e.to}`) && (e.to === e.from || reaches(e.to, e.from))) {
      out.set(`${e.from} ${e.to}`, { from: e.from, to: e.to, line: e.line });
    }
  }
  return [...out.values()];
}

import { checkSpec, kernelId, opRegistry, type Op } from '@wgpt/runtime';
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import * as kernels from './index.ts';

const { allSpecs } = kernels;

const root = new URL('..', import.meta.url).pathname;

describe('kernel specs', () => {
  for (const spec of allSpecs) {
    it(`${kernelId(spec)} matches ${spec.file} by reflection`, () => {
      expect(checkSpec(spec)).toEqual([]);
      // The spec's file is the one its source came from.
      expect(readFileSync(join(root, spec.file), 'utf8')).toBe(spec.source);
    });
  }

  it('every .wgsl file under kernels/ belongs to a registered spec', () => {
    const files = filesUnder(join(root, 'kernels'), '.wgsl').map((p) => p.slice(root.length));
    const known = new Set(allSpecs.map((s) => s.file));
    expect(files.filter((f) => !known.has(f))).toEqual([]);
  });

  it('each spec is one (name, version): pipeline keys and kernel ids are unique', () => {
    const pairs = allSpecs.map((s) => `${s.name}@${s.version}`);
    expect(new Set(pairs).size).toBe(pairs.length);
    const ids = allSpecs.map(kernelId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('every registered op has a finite-difference test: an op called inside what checkOp runs', () => {
    const ops = [...opRegistry.keys()];
    expect(ops.length).toBeGreaterThan(0);
    const exported = new Map<string, string>(); // export name → op name, for the ops kernels/index.ts exports
    for (const [name, value] of Object.entries(kernels)) {
      const opName = (value as Partial<Op<never[]>>)?.opName;
      if (typeof value === 'function' && typeof opName === 'string') exported.set(name, opName);
    }
    for (const op of ops)
      expect([...exported.values()], `op ${op} is not exported from kernels/index.ts`).toContain(op);
    const tested = new Set<string>();
    for (const file of filesUnder(join(root, 'kernels'), '.test.ts')) {
      for (const op of opsCheckedIn(readFileSync(file, 'utf8'), exported)) tested.add(op);
    }
    for (const op of ops) expect(tested.has(op), `op ${op} has no checkOp test`).toBe(true);
  });

  it('the checkOp scan follows the code, not comments or strings', () => {
    const exported = new Map([['add', 'add'], ['gelu', 'gelu'], ['linear', 'linear']]);
    const src = `
      import { checkOp } from '@wgpt/runtime/testing';
      import { add, gelu as g, linear } from '../index.ts';
      // checkOp(gpu, (x) => linear(x, w), ...)
      const variants = [{ op: () => (x) => g(x) }];
      for (const v of variants) await checkOp(gpu, v.op(), [], () => []);
      await checkOp(gpu, (a, b) => { const s = 'linear(a, b)'; return add(a, b); }, [], () => []);
      linear(x, w);`;
    expect([...opsCheckedIn(src, exported)].sort()).toEqual(['add', 'gelu']);
  });
});

function filesUnder(dir: string, suffix: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (f === 'node_modules') continue;
    if (statSync(p).isDirectory()) out.push(...filesUnder(p, suffix));
    else if (p.endsWith(suffix)) out.push(p);
  }
  return out;
}

/**
 * The ops a test file runs through checkOp, read from its syntax tree (TypeScript's parser): every call of an
 * imported op inside checkOp's op argument, following names declared in the file (a variable, a loop over a table
 * of variants, a helper function) to their definitions. Comments and strings are not code, so they count for nothing.
 */
function opsCheckedIn(source: string, exported: ReadonlyMap<string, string>): Set<string> {
  const sf = ts.createSourceFile('test.ts', source, ts.ScriptTarget.Latest, true);
  const imported = new Map<string, string>(); // local name → imported name
  const declared = new Map<string, ts.Node[]>(); // local name → what defines it
  const declare = (name: ts.Node, def: ts.Node | undefined) => {
    if (!def || !ts.isIdentifier(name)) return;
    declared.set(name.text, [...(declared.get(name.text) ?? []), def]);
  };
  const index = (n: ts.Node): void => {
    if (ts.isImportSpecifier(n)) imported.set(n.name.text, (n.propertyName ?? n.name).text);
    else if (ts.isVariableDeclaration(n)) {
      const loop = n.parent.parent;
      declare(
        n.name,
        n.initializer ?? (ts.isForOfStatement(loop) || ts.isForInStatement(loop) ? loop.expression : undefined),
      );
    } else if (ts.isFunctionDeclaration(n) && n.name) declare(n.name, n.body);
    ts.forEachChild(n, index);
  };
  index(sf);
  const found = new Set<string>();
  const seen = new Set<ts.Node>();
  const visit = (n: ts.Node): void => {
    if (seen.has(n)) return;
    seen.add(n);
    if (ts.isCallExpression(n) && ts.isIdentifier(n.expression)) {
      const op = exported.get(imported.get(n.expression.text) ?? '');
      if (op) found.add(op);
    }
    if (ts.isIdentifier(n) && !imported.has(n.text)) for (const def of declared.get(n.text) ?? []) visit(def);
    ts.forEachChild(n, visit);
  };
  const checkOpNames = new Set([...imported].filter(([, from]) => from === 'checkOp').map(([local]) => local));
  const scan = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && ts.isIdentifier(n.expression) && checkOpNames.has(n.expression.text)) {
      const op = n.arguments[1];
      if (op) visit(op);
    }
    ts.forEachChild(n, scan);
  };
  scan(sf);
  return found;
}

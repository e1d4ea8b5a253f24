// plan.json: what an output directory was started with (its input files, its number of work units and its
// configuration). A re-run resumes that plan: settings it gives again must be the same, settings it leaves out are
// taken from the plan, and anything that differs is refused with what differs.
import fs from 'node:fs';
import path from 'node:path';
import { WgptError } from '@wgpt/base';
import type { PipelineConfig } from './config.ts';
import { createExclusive } from './outputs.ts';

export const STEPS = ['process', 'dedup-buckets', 'dedup-cluster', 'tokenize', 'manifest'] as const;
export type Step = (typeof STEPS)[number];

export interface Plan {
  units: number;
  files: string[];
  config: PipelineConfig;
  /**
   * How the items of a file shared by several units are divided: 'bytes' (plans made by this version) gives each
   * item to the unit with the fewest bytes so far, balancing the units' work; 'position' (older plans, kept so that
   * they resume the same way) gives item p of file f to unit (f + p) mod units.
   */
  split?: 'bytes' | 'position';
}

/**
 * The files of the inputs (folders are walked, in sorted order). A missing input or a folder without files is an
 * error; an empty file is reported through `warn` (it adds no documents).
 */
export function expandInputs(inputs: string[], warn: (line: string) => void = () => {}): string[] {
  const out: string[] = [];
  const walk = (p: string, given: boolean): number => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file or directory' : `cannot read it (${code})`;
      throw new WgptError(`input ${p}: ${why}`);
    }
    if (!st.isDirectory()) {
      if (st.size === 0) warn(`[data] warning: input ${p} is empty (0 bytes); it adds no documents`);
      out.push(path.resolve(p));
      return 1;
    }
    let n = 0;
    for (const e of fs.readdirSync(p).sort()) n += walk(path.join(p, e), false);
    if (given && n === 0) throw new WgptError(`input folder ${p} holds no files; give files or a folder with some`);
    return n;
  };
  for (const i of inputs) walk(i, true);
  return out;
}

function readPlan(file: string): Plan | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new WgptError(`${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text) as Plan;
  } catch (e) {
    throw new WgptError(`${file}: not valid JSON (${(e as Error).message}); restore it, or use a new --output`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  if (v === undefined) return 'unset (the default)';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/**
 * The settings of `given` that differ from `planned`: only the keys `given` sets are compared (leaving a key out
 * means "as planned"), leaf by leaf.
 */
export function configDifferences(given: unknown, planned: unknown, at = ''): string[] {
  if (!isObject(given)) {
    if (JSON.stringify(given) === JSON.stringify(planned)) return [];
    return [`${at}: ${show(planned)} there, ${show(given)} here`];
  }
  if (planned !== undefined && !isObject(planned)) return [`${at}: ${show(planned)} there, ${show(given)} here`];
  const out: string[] = [];
  for (const [k, v] of Object.entries(given)) {
    if (v === undefined) continue;
    out.push(...configDifferences(v, (planned as Record<string, unknown> | undefined)?.[k], at ? `${at}.${k}` : k));
  }
  return out;
}

/** Refuses a run whose settings differ from the plan's, saying what differs. */
function checkSame(plan: Plan, config: PipelineConfig, file: string): void {
  const { inputs, output: _o, units, ...rest } = config;
  const { inputs: _pi, output: _po, units: _pu, ...planned } = plan.config;
  const diffs = configDifferences(rest, planned);
  if (units !== undefined && units !== plan.units) diffs.unshift(`units: ${plan.units} there, ${units} here`);
  if (inputs?.length) {
    const files = expandInputs(inputs);
    if (JSON.stringify(files) !== JSON.stringify(plan.files)) {
      const added = files.filter((f) => !plan.files.includes(f));
      const gone = plan.files.filter((f) => !files.includes(f));
      const list = (a: string[]) => a.slice(0, 3).join(', ') + (a.length > 3 ? ` and ${a.length - 3} more` : '');
      diffs.unshift(`inputs: ${[
        added.length ? `new ${list(added)}` : '',
        gone.length ? `missing ${list(gone)}` : '',
        !added.length && !gone.length ? 'the same files in another order' : '',
      ].filter(Boolean).join('; ')}`);
    }
  }
  if (diffs.length) {
    throw new WgptError(`${file}: this output was started with other settings: ${diffs.join('; ')}. ` +
      'Give the same settings (or leave them out to resume with the saved ones), or use a new --output');
  }
}

/**
 * Loads plan.json, or creates it from `config` (with `defaultUnits` work units unless the config sets `units`).
 * Several tasks may start on one output at once: the first to write plan.json wins and the others resume it.
 */
export function loadOrCreatePlan(config: PipelineConfig, defaultUnits: number, warn?: (line: string) => void): Plan {
  const file = path.join(config.output, 'plan.json');
  const existing = readPlan(file);
  if (existing) {
    checkSame(existing, config, file);
    return existing;
  }
  if (!config.inputs?.length) throw new WgptError(`${config.output}: no inputs given and no plan.json to resume`);
  const files = expandInputs(config.inputs, warn);
  const plan: Plan = { units: config.units ?? defaultUnits, files, config, split: 'bytes' };
  if (createExclusive(file, JSON.stringify(plan, null, 2))) return plan;
  const other = readPlan(file)!;
  checkSame(other, config, file);
  return other;
}

// The pipeline's configuration (pipeline.json, or the object given to runPipeline) and its validation. The schema
// is strict: an unknown or misspelled key is an error naming it, as is a value of the wrong type or out of range,
// so that a typo cannot quietly leave a stage on its defaults. The option types stay with their stages; the checks
// at the end of this file keep the schema and those types in step.
import fs from 'node:fs';
import { WgptError } from '@wgpt/base';
import { z } from 'zod';
import type { C4Options } from './filters/c4.ts';
import type { FineWebQualityOptions } from './filters/fineweb.ts';
import type { GopherQualityOptions } from './filters/gopher-quality.ts';
import type { GopherRepetitionOptions } from './filters/gopher-repetition.ts';
import type { MinHashOptions } from './dedup/minhash.ts';
import type { ExtractOptions } from './extract.ts';
import type { LangIdOptions } from './langid.ts';
import type { PiiOptions } from './pii.ts';
import type { ReadOptions } from './read.ts';
import type { UrlFilterOptions } from './urlfilter.ts';

export interface TokenizeConfig {
  /** Shard file names: `<prefix>_{train,val}_<unit>_<index>.bin` (letters, digits, '.', '_', '-'; default 'wgpt'). */
  prefix?: string;
  /** Fraction of the documents in the validation split, in [0, 1) (default 0.01). */
  valFraction?: number;
  /** Tokens per shard, 1 … 2^31 − 1 (header[2] is an int32; default 100 M). */
  shardTokens?: number;
}

export interface PipelineConfig {
  /**
   * Input files or directories (.warc.gz, .warc, .jsonl, .parquet, anything else read as text). May be left out
   * when resuming an output that has a plan.json.
   */
  inputs?: string[];
  /** Output directory. */
  output: string;
  /**
   * Number of work units the input is split into; fixed at the first run (plan.json). Default: the task count
   * (worker threads share the documents of a unit).
   */
  units?: number;
  read?: Omit<ReadOptions, 'select'>;
  urlFilter?: UrlFilterOptions | false;
  extract?: ExtractOptions;
  language?: LangIdOptions | false;
  gopherRepetition?: GopherRepetitionOptions | false;
  gopherQuality?: GopherQualityOptions | false;
  c4?: C4Options | false;
  fineweb?: FineWebQualityOptions | false;
  dedup?: MinHashOptions | false;
  pii?: PiiOptions | false;
  tokenize?: TokenizeConfig;
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.int().min(min).max(max);
const fraction = () => z.number().min(0).max(1);
const nonNegative = () => z.number().min(0);
/** A stage's options, or `false` to turn the stage off. */
const stage = <T extends z.ZodType>(options: T) =>
  z.union([z.literal(false), options], { error: 'expected false (stage off) or an object of options' }).optional();

const readSchema = z.strictObject({ maxRecordBytes: int(1).optional() });
const urlListSchema = z.array(z.string());
const urlFilterSchema = z.strictObject({
  listsDir: z.string().refine((d) => fs.existsSync(d) && fs.statSync(d).isDirectory(), 'not a directory').optional(),
  softBannedThreshold: int(1).optional(),
  extra: z.strictObject({
    domains: urlListSchema.optional(),
    urls: urlListSchema.optional(),
    bannedWords: urlListSchema.optional(),
    softBannedWords: urlListSchema.optional(),
    bannedSubwords: urlListSchema.optional(),
  }).optional(),
});
const extractSchema = z.strictObject({ charThreshold: int(0).optional(), maxHtmlChars: int(1).optional() });
const languageSchema = z.strictObject({
  languages: z.array(z.string().regex(/^[a-z]{2,3}$/, 'expected an ISO 639 code such as "en"')).optional(),
  minScore: fraction().optional(),
});
const nGramRule = z.tuple([int(1), fraction()]);
const gopherRepetitionSchema = z.strictObject({
  dupLineFrac: fraction().optional(),
  dupParaFrac: fraction().optional(),
  dupLineCharFrac: fraction().optional(),
  dupParaCharFrac: fraction().optional(),
  topNGrams: z.array(nGramRule).optional(),
  dupNGrams: z.array(nGramRule).optional(),
});
const gopherQualitySchema = z.strictObject({
  minDocWords: int(0).optional(),
  maxDocWords: int(0).optional(),
  minAvgWordLength: nonNegative().optional(),
  maxAvgWordLength: nonNegative().optional(),
  maxSymbolWordRatio: nonNegative().optional(),
  maxBulletLinesRatio: fraction().optional(),
  maxEllipsisLinesRatio: fraction().optional(),
  minAlphaWordsRatio: fraction().optional(),
  minStopWords: int(0).optional(),
  stopWords: z.array(z.string()).optional(),
});
const c4Schema = z.strictObject({
  filterNoTerminalPunct: z.boolean().optional(),
  removeCitations: z.boolean().optional(),
  minNumSentences: int(0).optional(),
  minWordsPerLine: int(0).optional(),
  maxWordLength: int(1).optional(),
  filterLoremIpsum: z.boolean().optional(),
  filterJavascript: z.boolean().optional(),
  filterCurlyBracket: z.boolean().optional(),
  filterPolicy: z.boolean().optional(),
});
const finewebSchema = z.strictObject({
  linePunctThr: fraction().optional(),
  linePunctExcludeZero: z.boolean().optional(),
  shortLineThr: fraction().optional(),
  shortLineLength: int(0).optional(),
  charDuplicatesRatio: fraction().optional(),
  newLineRatio: nonNegative().optional(),
});
const dedupSchema = z.strictObject({
  ngram: int(1).optional(),
  buckets: int(1).optional(),
  // Signature files hold 8 words per bucket.
  hashesPerBucket: int(1, 8).optional(),
  seed: z.int().optional(),
});
const piiSchema = z.strictObject({
  emailReplacement: z.string().optional(),
  ipReplacement: z.string().optional(),
  emails: z.boolean().optional(),
  ips: z.boolean().optional(),
});
const tokenizeSchema = z.strictObject({
  prefix: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, ".", "_" or "-" (it starts file names)')
    .optional(),
  valFraction: z.number().min(0).lt(1).optional(),
  shardTokens: int(1, 2 ** 31 - 1).optional(),
});

/** The schema of a pipeline configuration; `output` may be left out of a config file (the CLI has a default). */
export const pipelineConfigSchema = z.strictObject({
  inputs: z.array(z.string().min(1)).optional(),
  output: z.string().min(1),
  units: int(1).optional(),
  read: readSchema.optional(),
  urlFilter: stage(urlFilterSchema),
  extract: extractSchema.optional(),
  language: stage(languageSchema),
  gopherRepetition: stage(gopherRepetitionSchema),
  gopherQuality: stage(gopherQualitySchema),
  c4: stage(c4Schema),
  fineweb: stage(finewebSchema),
  dedup: stage(dedupSchema),
  pii: stage(piiSchema),
  tokenize: tokenizeSchema.optional(),
});
const configFileSchema = pipelineConfigSchema.extend({ output: z.string().min(1).optional() });
export type PipelineConfigFile = z.infer<typeof configFileSchema>;

/** `a.b[2]` for an issue path. */
export function keyPath(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('');
}

/** The object schema at `p` (through optional and stage unions), for suggesting a key. */
function shapeAt(schema: z.ZodType, p: readonly PropertyKey[]): Record<string, z.ZodType> | null {
  let s: z.ZodType | undefined = schema;
  const unwrap = (x: z.ZodType): z.ZodType => {
    if (x instanceof z.ZodOptional) return unwrap(x.unwrap() as z.ZodType);
    if (x instanceof z.ZodUnion) {
      const obj = (x.options as z.ZodType[]).find((o) => o instanceof z.ZodObject);
      if (obj) return obj;
    }
    return x;
  };
  for (const k of p) {
    s = unwrap(s);
    if (!(s instanceof z.ZodObject) || typeof k !== 'string') return null;
    s = (s.shape as Record<string, z.ZodType>)[k];
    if (!s) return null;
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? (s.shape as Record<string, z.ZodType>) : null;
}

/** The known key closest to `key` (edit distance ≤ 2, or differing only in case), if any. */
function suggest(key: string, known: string[]): string | undefined {
  const dist = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) {
        d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      }
    }
    return d[a.length][b.length];
  };
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const dk = k.toLowerCase() === key.toLowerCase() ? 0 : dist(key, k);
    if (dk < bestD) { best = k; bestD = dk; }
  }
  return best;
}

function describeIssue(schema: z.ZodType, issue: z.core.$ZodIssue): string[] {
  const at = keyPath(issue.path);
  const got = 'input' in issue && issue.input !== undefined ? ` (got ${JSON.stringify(issue.input)})` : '';
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = Object.keys(shapeAt(schema, issue.path) ?? {});
      return issue.keys.map((k) => {
        const s = suggest(k, known);
        const hint = s ? `did you mean "${s}"?` : `known keys: ${known.join(', ')}`;
        return `${keyPath([...issue.path, k])}: unknown key (${hint})`;
      });
    }
    case 'too_small':
      return [`${at}: must be ${issue.inclusive ? 'at least' : 'greater than'} ${issue.minimum}${got}`];
    case 'too_big':
      return [`${at}: must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum}${got}`];
    case 'invalid_union': {
      // A stage given an object of options: report what is wrong inside it, not just "not false or an object".
      const inner = issue.errors.find((errs) => errs.length > 0 && errs.every((e) => e.path.length > 0));
      if (inner) return inner.flatMap((e) => describeIssue(schema, { ...e, path: [...issue.path, ...e.path] }));
      return [`${at}: ${issue.message}${got}`];
    }
    case 'invalid_type':
      return [`${at}: expected ${issue.expected === 'int' ? 'an integer' : issue.expected}${got}`];
    default:
      return [`${at}: ${issue.message}${got}`];
  }
}

function check<T>(schema: z.ZodType<T>, value: unknown, source: string): T {
  const r = schema.safeParse(value, { reportInput: true });
  if (r.success) return r.data;
  const problems = r.error.issues.flatMap((i) => describeIssue(schema, i));
  throw new WgptError(`${source}: ${problems.join('; ')}`);
}

/** Checks a configuration object (keys, types, ranges); throws a WgptError naming `source` and every bad key. */
export function validateConfig(config: unknown, source = 'pipeline config'): PipelineConfig {
  return check(pipelineConfigSchema, config, source) as PipelineConfig;
}

/** Reads and checks a pipeline.json; errors name the file and the key. */
export function readConfigFile(file: string): PipelineConfigFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new WgptError(`${file}: cannot read the config file (${why})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WgptError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return check(configFileSchema, json, file);
}

// The schema and the stages' option types must describe the same objects: each line fails to compile when a key
// is added to one side only or its type differs.
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
type Parsed = z.infer<typeof pipelineConfigSchema>;
const inStep: [
  Same<Parsed['read'], PipelineConfig['read']>,
  Same<Parsed['urlFilter'], PipelineConfig['urlFilter']>,
  Same<Parsed['extract'], PipelineConfig['extract']>,
  Same<Parsed['language'], PipelineConfig['language']>,
  Same<Parsed['gopherRepetition'], PipelineConfig['gopherRepetition']>,
  Same<Parsed['gopherQuality'], PipelineConfig['gopherQuality']>,
  Same<Parsed['c4'], PipelineConfig['c4']>,
  Same<Parsed['fineweb'], PipelineConfig['fineweb']>,
  Same<Parsed['dedup'], PipelineConfig['dedup']>,
  Same<Parsed['pii'], PipelineConfig['pii']>,
  Same<Parsed['tokenize'], PipelineConfig['tokenize']>,
  Same<Parsed, PipelineConfig>,
] = [true, true, true, true, true, true, true, true, true, true, true, true];
void inStep;

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WgptError } from '@wgpt/base';
import { describe, expect, it } from 'vitest';
import { readConfigFile, validateConfig } from '../src/config.ts';
import { configDifferences } from '../src/plan.ts';
import { tmpDir } from './helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const base = { output: 'out/x' };
const fails = (cfg: unknown) => {
  try {
    validateConfig(cfg, 'p.json');
  } catch (e) {
    expect(e).toBeInstanceOf(WgptError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(cfg)}`);
};

describe('pipeline config validation', () => {
  it('accepts the example config and the smallest one', () => {
    const file = path.join(here, '..', 'pipeline.example.json');
    expect(readConfigFile(file).tokenize?.shardTokens).toBe(100_000_000);
    expect(validateConfig(base)).toEqual(base);
    expect(validateConfig({ ...base, dedup: false, language: false, pii: { emails: false } }).dedup).toBe(false);
  });

  it('names an unknown or misspelled key with its path, and suggests the known one', () => {
    expect(fails({ ...base, tokenize: { shardToken: 5 } }))
      .toBe('p.json: tokenize.shardToken: unknown key (did you mean "shardTokens"?)');
    expect(fails({ ...base, dedupe: false })).toBe('p.json: dedupe: unknown key (did you mean "dedup"?)');
    expect(fails({ ...base, c4: { filterLorem: true } }))
      .toMatch(/^p\.json: c4\.filterLorem: unknown key \(known keys: /);
    expect(fails({ ...base, urlFilter: { extra: { domain: ['a.example'] } } }))
      .toBe('p.json: urlFilter.extra.domain: unknown key (did you mean "domains"?)');
  });

  it('names the key of a wrong type or a value out of range, with the value', () => {
    expect(fails({ ...base, tokenize: { shardTokens: 0 } }))
      .toBe('p.json: tokenize.shardTokens: must be at least 1 (got 0)');
    expect(fails({ ...base, tokenize: { valFraction: 1 } }))
      .toBe('p.json: tokenize.valFraction: must be less than 1 (got 1)');
    expect(fails({ ...base, tokenize: { shardTokens: 2 ** 31 } }))
      .toMatch(/tokenize\.shardTokens: must be at most 2147483647/);
    expect(fails({ ...base, units: '4' })).toBe('p.json: units: expected number (got "4")');
    expect(fails({ ...base, units: 1.5 })).toBe('p.json: units: expected an integer (got 1.5)');
    expect(fails({ ...base, language: true }))
      .toBe('p.json: language: expected false (stage off) or an object of options (got true)');
    expect(fails({ ...base, dedup: { hashesPerBucket: 9 } }))
      .toBe('p.json: dedup.hashesPerBucket: must be at most 8 (got 9)');
    expect(fails({ ...base, gopherRepetition: { topNGrams: [[2, 'x']] } }))
      .toBe('p.json: gopherRepetition.topNGrams[0][1]: expected number (got "x")');
    expect(fails({ ...base, tokenize: { prefix: '../x' } }))
      .toMatch(/^p\.json: tokenize\.prefix: expected letters, digits/);
    expect(fails({ ...base, urlFilter: { listsDir: '/no/such/dir' } }))
      .toBe('p.json: urlFilter.listsDir: not a directory (got "/no/such/dir")');
    expect(fails({ inputs: ['a'] })).toMatch(/^p\.json: output: expected string/);
    // every problem at once, in one line
    expect(fails({ ...base, units: 0, tokenize: { valFraction: -1 } }).split('; ')).toHaveLength(2);
  });

  it('a config file: unreadable, not JSON, or bad content names the file', () => {
    const d = tmpDir();
    const f = path.join(d, 'p.json');
    expect(() => readConfigFile(f)).toThrow(`${f}: cannot read the config file (ENOENT)`);
    fs.writeFileSync(f, '{ "units": 2, }');
    expect(() => readConfigFile(f)).toThrow(new RegExp(`^${f}: not valid JSON \\(`));
    fs.writeFileSync(f, JSON.stringify({ units: 2, tokenize: { shardTokens: -5 } }));
    expect(() => readConfigFile(f)).toThrow(`${f}: tokenize.shardTokens: must be at least 1 (got -5)`);
    // output may be left out of a file (the CLI has a default)
    fs.writeFileSync(f, JSON.stringify({ units: 2 }));
    expect(readConfigFile(f)).toEqual({ units: 2 });
  });
});

describe('re-run settings against the plan', () => {
  it('compares only the keys a run gives, leaf by leaf', () => {
    const planned = { tokenize: { valFraction: 0.2, shardTokens: 1000 }, dedup: false, c4: { minNumSentences: 3 } };
    expect(configDifferences({}, planned)).toEqual([]);
    expect(configDifferences({ tokenize: { valFraction: 0.2 }, dedup: false }, planned)).toEqual([]);
    expect(configDifferences({ tokenize: { shardTokens: 5 } }, planned))
      .toEqual(['tokenize.shardTokens: 1000 there, 5 here']);
    expect(configDifferences({ dedup: { buckets: 4 } }, planned)).toEqual(['dedup: false there, {"buckets":4} here']);
    expect(configDifferences({ pii: false }, planned)).toEqual(['pii: unset (the default) there, false here']);
    expect(configDifferences({ language: { languages: ['fr'] } }, planned))
      .toEqual(['language.languages: unset (the default) there, ["fr"] here']);
  });
});

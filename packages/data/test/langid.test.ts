import { describe, expect, it } from 'vitest';
import { identifyLanguage, LanguageFilter } from '../src/langid.ts';
import { GOOD } from './texts.ts';

describe('language id (fastText lid.176, offline)', () => {
  it('identifies English and French with scores', async () => {
    const en = await identifyLanguage(GOOD);
    expect(en.language).toBe('en');
    expect(en.score).toBeGreaterThan(0.65);
    const fr = await identifyLanguage("La ville portuaire s'est développée lentement au cours du dix-neuvième " +
      'siècle, et la plupart des familles vivaient de la pêche.');
    expect(fr.language).toBe('fr');
  });
  it('keeps English ≥ 0.65 by default, records metadata, other languages selectable', async () => {
    const f = new LanguageFilter();
    const doc = { id: 'a', text: GOOD, meta: {} as Record<string, unknown> };
    const v = await f.apply(doc);
    expect(v.keep).toBe(true);
    expect(doc.meta.language).toBe('en');
    const text = 'Bonjour, je voudrais réserver une table pour deux personnes ce soir, s’il vous plaît.';
    const fr = { id: 'b', text, meta: {} };
    expect(await f.apply(fr)).toEqual({ keep: false, reason: 'language' });
    expect((await new LanguageFilter({ languages: ['fr', 'en'] }).apply(fr)).keep).toBe(true);
    const strict = new LanguageFilter({ minScore: 0.9999 });
    expect(await strict.apply({ id: 'c', text: 'ok ok', meta: {} })).toMatchObject({ keep: false });
  });
});

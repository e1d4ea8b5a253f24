import { describe, expect, it } from 'vitest';
import { C4QualityFilter } from '../src/filters/c4.ts';
import { FineWebQualityFilter } from '../src/filters/fineweb.ts';
import { GopherQualityFilter } from '../src/filters/gopher-quality.ts';
import { dupNGramChars, GopherRepetitionFilter, topNGramChars } from '../src/filters/gopher-repetition.ts';
import { splitWords } from '../src/filters/text.ts';
import { GOOD } from './texts.ts';

const gr = new GopherRepetitionFilter();
const gq = new GopherQualityFilter();
const c4 = new C4QualityFilter();
const fw = new FineWebQualityFilter();

describe('the good document passes every filter', () => {
  it('passes', () => {
    expect(gr.check(GOOD)).toBeNull();
    expect(gq.check(GOOD)).toBeNull();
    expect(c4.run(GOOD).reason).toBeNull();
    expect(fw.check(GOOD)).toBeNull();
  });
});

describe('Gopher repetition (FineWeb thresholds)', () => {
  it('duplicate lines > 30% of lines', () => {
    const lines = GOOD.split('\n');
    const t = [...lines, lines[0], lines[1], lines[2]].join('\n'); // 3 of 9 lines = 33% duplicates
    expect(gr.check(t)).toBe('gopher_rep_dup_line_frac');
    const ok = [...lines, 'Read more.', 'Read more.'].join('\n'); // 1 of 8 lines, few characters
    expect(gr.check(ok)).toBeNull();
  });
  it('duplicate paragraphs > 30%', () => {
    const p = GOOD.split('\n');
    expect(gr.check([p[0], p[1], p[0], p[1]].join('\n\n'))).toBe('gopher_rep_dup_para_frac');
  });
  it('duplicate-line characters > 20% even when few lines repeat', () => {
    const p = GOOD.split('\n');
    const long = p.join(' ');
    const t = [long, ...p.map((x) => x.slice(0, 20) + ' unique ' + x.length), ...p.slice(1), long].join('\n');
    expect(['gopher_rep_dup_line_char_frac', 'gopher_rep_dup_para_char_frac']).toContain(gr.check(t));
  });
  it('top 2-gram covering > 20% of characters', () => {
    const t = GOOD + '\n' + Array.from({ length: 90 }, (_, i) => `buy now ${'x'.repeat(i % 5 + 1)}${i}`).join(' ');
    expect(gr.check(t)).toBe('gopher_rep_top_2_gram');
  });
  it('duplicated 5..10-grams', () => {
    const words = splitWords(GOOD);
    // repeating a 10-word phrase inside one long line avoids the line rules
    const phrase = words.slice(0, 10).join(' ');
    const t = GOOD + '\n' + Array.from({ length: 12 }, (_, i) => `${phrase} ${i}`).join(' ');
    expect(gr.check(t)).toMatch(/^gopher_rep_(top_\d_gram|dup_\d+_grams)$/);
    const only = new GopherRepetitionFilter({ topNGrams: [] });
    expect(only.check(t)).toMatch(/^gopher_rep_dup_\d+_grams$/);
  });
  it('n-gram helpers count characters', () => {
    expect(topNGramChars(['a', 'b', 'a', 'b', 'a', 'b'], 2)).toBe(9); // "a b" ×3
    expect(topNGramChars(['x', 'y', 'long', 'words', 'long', 'words', 'x', 'y'], 2)).toBe(6); // tie: "x y" seen first
    expect(topNGramChars(['alpha', 'beta', 'gamma'], 2)).toBe(10); // all unique: the first n-gram
    expect(dupNGramChars(['a', 'b', 'c', 'a', 'b', 'c'], 3)).toBe(3);
  });
});

describe('Gopher quality (FineWeb thresholds)', () => {
  it('word count 50..100,000', () => {
    expect(gq.check('The cat sat on the mat and that was the end of it.')).toBe('gopher_short_doc');
    expect(new GopherQualityFilter({ maxDocWords: 100 }).check(GOOD + '\n' + GOOD)).toBe('gopher_long_doc');
  });
  it('mean word length 3..10', () => {
    const short = Array.from({ length: 60 }, () => 'a to be of an is it').join(' ');
    expect(gq.check(short)).toBe('gopher_below_avg_word_length');
    const long = Array.from({ length: 60 }, (_, i) => `internationalization${i} characteristically the`).join(' ');
    expect(gq.check(long)).toBe('gopher_above_avg_word_length');
  });
  it('hash and ellipsis ratios', () => {
    expect(gq.check(GOOD + ' ' + '#tag '.repeat(40))).toBe('gopher_too_many_hashes');
    expect(gq.check(GOOD + ' ' + 'and so on... '.repeat(40))).toBe('gopher_too_many_ellipsis');
  });
  it('bullet lines > 90%', () => {
    const t = GOOD.split('\n').map((l) => `- ${l}`).join('\n');
    expect(gq.check(t)).toBe('gopher_too_many_bullets');
  });
  it('lines ending in an ellipsis > 30%', () => {
    const t = GOOD.split('\n').map((l, i) => (i % 2 ? l + '…' : l)).join('\n');
    expect(gq.check(t)).toBe('gopher_too_many_end_ellipsis');
  });
  it('alphabetic words < 80%', () => {
    const t = GOOD + ' ' + Array.from({ length: 200 }, (_, i) => String(i * 7919)).join(' ');
    expect(gq.check(t)).toBe('gopher_below_alpha_threshold');
  });
  it('fewer than 2 stop words', () => {
    const t = Array.from({ length: 70 }, (_, i) => `harbor${i % 9} merchants arrived`).join(' ');
    expect(gq.check(t)).toBe('gopher_not_enough_stop_words');
  });
});

describe('C4 (FineWeb settings)', () => {
  it('lorem ipsum and curly braces remove the document', () => {
    expect(c4.run(GOOD + '\nLorem ipsum dolor sit amet, consectetur adipiscing elit.').reason).toBe('c4_lorem_ipsum');
    expect(c4.run(GOOD + '\nfunction f() { return 1; }').reason).toBe('c4_curly_bracket');
  });
  it('removes javascript, policy and short lines but keeps the document', () => {
    const t = GOOD + '\nPlease enable JavaScript in your browser to continue.\n' +
      'This site uses cookies to improve your visit.\nMenu\nShare';
    const r = c4.run(t);
    expect(r.reason).toBeNull();
    expect(r.text).toBe(GOOD);
    expect(r.linesRemoved).toEqual({ javascript: 1, policy: 1, too_few_words: 2 });
  });
  it('fewer than 5 sentences after line removal', () => {
    expect(c4.run(GOOD.split('\n').slice(0, 4).join('\n')).reason).toBe('c4_too_few_sentences');
  });
  it('terminal punctuation rule is off by default and available', () => {
    const t = GOOD + '\nA line that has no final punctuation at all';
    expect(c4.run(t).text).toContain('no final punctuation');
    expect(new C4QualityFilter({ filterNoTerminalPunct: true }).run(t).text).not.toContain('no final punctuation');
  });
  it('removes citation markers', () => {
    expect(c4.run(GOOD.replace('stone.', 'stone.[12]')).text).not.toContain('[12]');
  });
});

describe('FineWeb quality', () => {
  it('lines ending in punctuation ≤ 12%', () => {
    const t = GOOD.split('\n').map((l) => l.replace(/\.$/, '')).join('\n');
    expect(fw.check(t)).toBe('fineweb_line_punct_ratio');
    expect(new FineWebQualityFilter({ linePunctExcludeZero: true }).check(t)).toBeNull();
  });
  it('short lines ≥ 67%', () => {
    const t = GOOD + '\n' + Array.from({ length: 14 }, (_, i) => `Item ${i} costs little.`).join('\n');
    expect(fw.check(t)).toBe('fineweb_short_line_ratio');
  });
  it('duplicate-line characters ≥ 1%', () => {
    const l = GOOD.split('\n');
    expect(fw.check([...l, l[3]].join('\n'))).toBe('fineweb_char_dup_ratio');
  });
  it('newlines per word > 0.3', () => {
    const items = Array.from({ length: 30 },
      (_, i) => `This is the longer item number ${i} in the list of many items.`);
    const t = items.join('\n\n\n\n\n\n');
    expect(fw.check(t)).toBe('fineweb_list_ratio');
  });
});

describe('C4 rule order (as datatrove)', () => {
  it('a brace on a line already dropped for having < 3 words does not remove the document', () => {
    expect(c4.run(GOOD + '\n{ }').reason).toBeNull();
    expect(c4.run(GOOD + '\nvar x = { a: 1 };').reason).toBe('c4_curly_bracket');
  });
});

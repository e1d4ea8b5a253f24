import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UrlFilter } from '../src/urlfilter.ts';
import { tmpDir } from './helpers.ts';

describe('URL filter', () => {
  const f = new UrlFilter();
  it('passes ordinary URLs', () => {
    for (const u of ['https://en.wikipedia.org/wiki/Harbor', 'http://example.com/essex/sussex-news', undefined]) {
      expect(f.check(u)).toBeNull();
    }
  });
  it('blocks listed domains and their subdomains', () => {
    expect(f.check('https://www.pornhub.com/x')).toBe('url_blocked_domain');
    expect(f.check('https://cdn.spam-casino.example/a')).toBe('url_blocked_domain');
    expect(f.check('https://notpornhub.company.org/a')).not.toBe('url_blocked_domain');
  });
  it('blocks listed URLs', () => {
    expect(f.check('https://www.example.com/blocked-page.html')).toBe('url_blocked_url');
  });
  it('banned words are whole tokens; soft words need two', () => {
    expect(f.check('https://site.example/free-porn-videos')).toBe('url_banned_word');
    expect(f.check('https://site.example/dating-tips')).toBeNull();
    expect(f.check('https://site.example/adult-dating/tips')).toBe('url_soft_banned_words');
  });
  it('banned sub-words match inside tokens', () => {
    expect(f.check('https://mirror.example/best_of_LiveJasminCams')).toBe('url_banned_subword');
  });
  it('reads lists from a directory and extra entries', () => {
    const d = tmpDir();
    fs.writeFileSync(path.join(d, 'blocked_domains.txt'), '# comment\nbad.example\n');
    const g = new UrlFilter({ listsDir: d, extra: { bannedWords: ['forbidden'] } });
    expect(g.check('http://x.bad.example/')).toBe('url_blocked_domain');
    expect(g.check('http://ok.example/forbidden/page')).toBe('url_banned_word');
    expect(g.check('https://www.pornhub.com/x')).toBeNull();
  });
});

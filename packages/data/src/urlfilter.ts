// Stage 2: URL filter — blocklisted domains and URLs, banned words, soft-banned words, banned sub-words.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Doc, Verdict } from './types.ts';

export interface UrlLists {
  domains: Set<string>;
  urls: Set<string>;
  bannedWords: Set<string>;
  softBannedWords: Set<string>;
  bannedSubwords: string[];
}

export interface UrlFilterOptions {
  /** Directory with the list files (see lists/README.md); default: the lists shipped with this package. */
  listsDir?: string;
  /** Soft-banned words needed in one URL to remove it (default 2). */
  softBannedThreshold?: number;
  /** Extra entries on top of the files. */
  extra?: Partial<Record<'domains' | 'urls' | 'bannedWords' | 'softBannedWords' | 'bannedSubwords', string[]>>;
}

export const defaultListsDir = (): string => path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lists');

function readList(dir: string, name: string): string[] {
  const f = path.join(dir, name);
  if (!fs.existsSync(f)) return [];
  return fs.readFileSync(f, 'utf8').split('\n').map((l) => l.replace(/#.*$/, '').trim().toLowerCase()).filter(Boolean);
}

export function loadUrlLists(opts: UrlFilterOptions = {}): UrlLists {
  const dir = opts.listsDir ?? defaultListsDir();
  const x = opts.extra ?? {};
  const lower = (a?: string[]) => (a ?? []).map((s) => s.toLowerCase());
  return {
    domains: new Set([...readList(dir, 'blocked_domains.txt'), ...lower(x.domains)]),
    urls: new Set([...readList(dir, 'blocked_urls.txt'), ...lower(x.urls)].map(normUrl)),
    bannedWords: new Set([...readList(dir, 'banned_words.txt'), ...lower(x.bannedWords)]),
    softBannedWords: new Set([...readList(dir, 'soft_banned_words.txt'), ...lower(x.softBannedWords)]),
    bannedSubwords: [...readList(dir, 'banned_subwords.txt'), ...lower(x.bannedSubwords)],
  };
}

function normUrl(u: string): string {
  return u.toLowerCase().replace(/^[a-z]+:\/\//, '').replace(/^www\./, '').replace(/\/$/, '');
}

export class UrlFilter {
  readonly lists: UrlLists;
  readonly softThreshold: number;
  constructor(opts: UrlFilterOptions = {}) {
    this.lists = loadUrlLists(opts);
    this.softThreshold = opts.softBannedThreshold ?? 2;
  }

  /** Null when the URL passes, else the reason it is removed. */
  check(url: string | undefined): string | null {
    if (!url) return null;
    let host = '';
    try { host = new URL(url).hostname.toLowerCase(); } catch { host = normUrl(url).split('/')[0]; }
    host = host.replace(/^www\./, '');
    const parts = host.split('.');
    for (let i = 0; i < parts.length - 1; i++) {
      if (this.lists.domains.has(parts.slice(i).join('.'))) return 'url_blocked_domain';
    }
    if (this.lists.urls.has(normUrl(url))) return 'url_blocked_url';
    const lower = url.toLowerCase();
    const tokens = lower.split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    let soft = 0;
    for (const t of tokens) {
      if (this.lists.bannedWords.has(t)) return 'url_banned_word';
      if (this.lists.softBannedWords.has(t)) soft++;
    }
    if (soft >= this.softThreshold) return 'url_soft_banned_words';
    const squashed = lower.replace(/[^\p{L}\p{N}]+/gu, '');
    for (const s of this.lists.bannedSubwords) if (squashed.includes(s)) return 'url_banned_subword';
    return null;
  }

  apply(doc: Doc): Verdict {
    const r = this.check(doc.url);
    return r ? { keep: false, reason: r } : { keep: true, doc };
  }
}

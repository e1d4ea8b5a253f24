// Stage 7: PII — e-mail addresses and public IPv4 addresses replaced (FineWeb's PII formatter, configurable).
import type { Doc, Verdict } from './types.ts';

export interface PiiOptions {
  emailReplacement?: string;
  ipReplacement?: string;
  /** Set false to leave that kind alone. */
  emails?: boolean;
  ips?: boolean;
}

const EMAIL_LOCAL = /[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*/.source;
const EMAIL_DOMAIN = /(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}/.source;
const EMAIL = new RegExp(`\\b${EMAIL_LOCAL}@${EMAIL_DOMAIN}\\b`, 'g');
const IPV4 = /(?<![\d.])(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(?![\d]|\.\d)/g;

/**
 * True for addresses routable on the public internet (not private, loopback, link-local, CGNAT, multicast,
 * reserved).
 */
export function isPublicIPv4(ip: string): boolean {
  const [a, b] = ip.split('.').map(Number);
  if (a === 0 || a === 10 || a === 127 || a >= 224) return false;
  if (a === 169 && b === 254) return false;
  if (a === 172 && b >= 16 && b <= 31) return false;
  if (a === 192 && b === 168) return false;
  if (a === 100 && b >= 64 && b <= 127) return false;
  if (a === 192 && b === 0) return false;
  if (a === 198 && (b === 18 || b === 19)) return false;
  return true;
}

export class PiiFormatter {
  readonly emailReplacement: string;
  readonly ipReplacement: string;
  readonly emails: boolean;
  readonly ips: boolean;
  /** Replacements done so far, by kind. */
  readonly counts = { emails: 0, ips: 0 };
  constructor(opts: PiiOptions = {}) {
    this.emailReplacement = opts.emailReplacement ?? 'email@example.com';
    this.ipReplacement = opts.ipReplacement ?? '0.0.0.0';
    this.emails = opts.emails ?? true;
    this.ips = opts.ips ?? true;
  }
  format(text: string): string {
    let t = text;
    if (this.emails) t = t.replace(EMAIL, () => { this.counts.emails++; return this.emailReplacement; });
    if (this.ips) {
      t = t.replace(IPV4, (m) => {
        if (!isPublicIPv4(m)) return m;
        this.counts.ips++;
        return this.ipReplacement;
      });
    }
    return t;
  }
  apply(doc: Doc): Verdict {
    doc.text = this.format(doc.text);
    return { keep: true, doc };
  }
}

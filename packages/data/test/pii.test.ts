import { describe, expect, it } from 'vitest';
import { isPublicIPv4, PiiFormatter } from '../src/pii.ts';

describe('PII', () => {
  it('replaces e-mail addresses and public IPs, keeps private IPs and version numbers', () => {
    const p = new PiiFormatter();
    const t = 'Write to jane.doe+news@mail.example.org or admin@host.co.uk. Server 8.8.8.8 and 203.0.113.9, ' +
      'LAN 192.168.1.20, local 127.0.0.1, version 1.2.3.4.5, not 999.1.1.1.';
    const out = p.format(t);
    expect(out).toBe('Write to email@example.com or email@example.com. Server 0.0.0.0 and 0.0.0.0, ' +
      'LAN 192.168.1.20, local 127.0.0.1, version 1.2.3.4.5, not 999.1.1.1.');
    expect(p.counts).toEqual({ emails: 2, ips: 2 });
  });
  it('replacements are configurable', () => {
    const p = new PiiFormatter({ emailReplacement: '<EMAIL>', ipReplacement: '<IP>', ips: true });
    expect(p.format('a@b.com at 1.1.1.1')).toBe('<EMAIL> at <IP>');
    expect(new PiiFormatter({ emails: false }).format('a@b.com')).toBe('a@b.com');
  });
  it('classifies addresses', () => {
    expect(isPublicIPv4('8.8.8.8')).toBe(true);
    const notPublic = ['10.0.0.1', '172.16.5.4', '192.168.0.1', '127.0.0.1', '169.254.1.1', '100.64.0.1', '224.0.0.1',
      '0.1.2.3'];
    for (const ip of notPublic) expect(isPublicIPv4(ip)).toBe(false);
  });
});

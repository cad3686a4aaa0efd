import { expect } from 'chai';
import { LocalDomains } from '../../src/core/local-domains.js';

describe('core/local-domains', () => {
  const d = new LocalDomains('Example.COM', ['127.0.0.1', '::1'], 'sip.example.net');

  it('knows the domain, localhost, the advertised name and the listen addresses, case-insensitively', () => {
    for (const h of ['example.com', 'EXAMPLE.com', 'localhost', 'LocalHost', 'sip.example.net', '127.0.0.1', '::1']) expect(d.has(h), h).to.equal(true);
  });

  it('takes an IPv6 reference with or without its brackets (RFC 3261 §19.1.4)', () => {
    expect(d.has('[::1]')).to.equal(true);
    expect(d.has('[::2]')).to.equal(false);
  });

  it('knows no other host', () => {
    for (const h of ['example.org', 'evil.example.com', '127.0.0.2', '']) expect(d.has(h), h).to.equal(false);
  });
});

import { expect } from 'chai';
import { authorizationValue, chooseChallenge, digestResponse, DigestSession, parseChallenge, parseDigestParams } from '../../src/ua/digest-client.js';

describe('ua/digest-client (RFC 3261 §22, RFC 8760)', () => {
  it('computes the RFC 2617 §3.5 example (MD5, qop=auth)', () => {
    const c = parseChallenge('Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"', 'Authorization')!;
    expect(c.algorithm).to.equal('MD5');
    expect(c.qop).to.deep.equal(['auth', 'auth-int']);
    const r = digestResponse(c, { username: 'Mufasa', password: 'Circle Of Life' }, { method: 'GET', uri: '/dir/index.html', nc: 1, cnonce: '0a4f113b' });
    expect(r).to.equal('6629fae49393a05397450978507c4ef1');
  });

  it('computes the RFC 7616 §3.9.1 examples (MD5 and SHA-256)', () => {
    const base = 'realm="http-auth@example.org", qop="auth, auth-int", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"';
    const input = { method: 'GET', uri: '/dir/index.html', nc: 1, cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ' };
    const creds = { username: 'Mufasa', password: 'Circle of Life' };
    const md5 = parseChallenge(`Digest ${base}, algorithm=MD5`, 'Authorization')!;
    expect(digestResponse(md5, creds, input)).to.equal('8ca523f5e9506fed4657c9700eebdbec');
    const sha = parseChallenge(`Digest ${base}, algorithm=SHA-256`, 'Authorization')!;
    expect(digestResponse(sha, creds, input)).to.equal('753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
  });

  it('takes the first challenge with an algorithm it supports (RFC 8760 §2.4)', () => {
    const c = chooseChallenge(['Digest realm="a", nonce="n1", algorithm=SHA-512-256, qop="auth"', 'Digest realm="a", nonce="n2", algorithm=SHA-256, qop="auth"', 'Digest realm="a", nonce="n3", qop="auth"'], 'Authorization');
    expect(c?.nonce).to.equal('n2');
    expect(c?.algorithm).to.equal('SHA-256');
    expect(chooseChallenge(['Basic realm="x"', 'Digest realm="a"'], 'Authorization')).to.equal(undefined);
    expect(chooseChallenge(['Digest realm="a", nonce="n", qop="auth-int"'], 'Authorization')).to.equal(undefined);
  });

  it('writes an Authorization header a server can check, with qop, nc, cnonce and opaque', () => {
    const c = parseChallenge('Digest realm="example.com", nonce="abc", opaque="op", algorithm=SHA-256, qop="auth"', 'Authorization')!;
    const v = authorizationValue(c, { username: 'alice', password: 'pw' }, { method: 'REGISTER', uri: 'sip:example.com', nc: 1, cnonce: 'cn' });
    const p = parseDigestParams(v)!;
    expect(p.get('username')).to.equal('alice');
    expect(p.get('uri')).to.equal('sip:example.com');
    expect(p.get('nc')).to.equal('00000001');
    expect(p.get('qop')).to.equal('auth');
    expect(p.get('opaque')).to.equal('op');
    expect(p.get('algorithm')).to.equal('SHA-256');
    expect(p.get('response')).to.equal(digestResponse(c, { username: 'alice', password: 'pw' }, { method: 'REGISTER', uri: 'sip:example.com', nc: 1, cnonce: 'cn' }));
  });

  it('answers a challenge once; the same nonce again is a wrong password, a stale one is answered', () => {
    const s = new DigestSession({ username: 'a', password: 'p' });
    const c = parseChallenge('Digest realm="r", nonce="n1", qop="auth"', 'Proxy-Authorization')!;
    expect(s.accept(c)).to.equal(true);
    const first = s.authorize('MESSAGE', 'sip:b@r')!;
    expect(first.header).to.equal('Proxy-Authorization');
    expect(parseDigestParams(first.value)!.get('nc')).to.equal('00000001');
    expect(parseDigestParams(s.authorize('MESSAGE', 'sip:b@r')!.value)!.get('nc')).to.equal('00000002');
    expect(s.accept(c)).to.equal(false);
    expect(s.accept({ ...c, stale: true })).to.equal(true);
    expect(s.accept({ ...c, nonce: 'n2' })).to.equal(true);
  });

  it('refuses broken challenge text without throwing', () => {
    const huge = `Digest realm="r", nonce="${'n'.repeat(5000)}"`;
    const repeated = 'Digest realm="a", realm="b", nonce="n"';
    for (const bad of ['Digest', 'Digest realm="unterminated', 'Digest =x', 'Digest realm="r"', 'digest nonce="n"', huge, repeated]) {
      expect(parseChallenge(bad, 'Authorization')).to.equal(undefined);
    }
  });
});

import { expect } from 'chai';
import { pino } from 'pino';
import { DigestAuthenticator } from '../../src/auth/digest-authenticator.js';
import { digestUriMatches } from '../../src/auth/digest-uri.js';
import { buildChallenge, parseDigestCredentials } from '../../src/auth/digest-header.js';
import { FailureTracker } from '../../src/auth/failure-tracker.js';
import { computeHa1s } from '../../src/auth/ha1.js';
import { AuthLockout } from '../../src/auth/lockout.js';
import { checkRequestCaps, DEFAULT_MESSAGE_CAPS } from '../../src/auth/message-caps.js';
import { NonceManager } from '../../src/auth/nonces.js';
import { SipRequest } from '../../src/sip/message.js';
import { SourceRateLimiter } from '../../src/transport/limits.js';
import type { Flow } from '../../src/transport/types.js';
import { authorization, parseChallenge } from './digest-client.js';

const log = pino({ level: 'silent' });
const flow: Flow = { protocol: 'udp', remoteAddress: '127.0.0.9', remotePort: 5060, localAddress: '127.0.0.1', localPort: 5060 };

function clock(start = 1_700_000_000_000) {
  const c = { t: start, nowMs: () => c.t };
  return c;
}

function register(auth?: string): SipRequest {
  const req = new SipRequest('REGISTER', 'sip:example.com');
  req.addHeader('Via', 'SIP/2.0/UDP 127.0.0.9;branch=z9hG4bK1');
  req.addHeader('From', '<sip:alice@example.com>;tag=1');
  req.addHeader('To', '<sip:alice@example.com>');
  req.addHeader('Call-ID', 'c1');
  req.addHeader('CSeq', '1 REGISTER');
  if (auth) req.addHeader('Authorization', auth);
  return req;
}

describe('auth units', () => {
  describe('digest header', () => {
    it('parses quoted and token parameters, escapes included', () => {
      const c = parseDigestCredentials('Digest username="al\\"ice", realm="example.com",nonce="n1", uri="sip:example.com", response="abc", algorithm=SHA-256, cnonce="cn", qop=auth, nc=00000001');
      expect(c).to.include({ username: 'al"ice', realm: 'example.com', nonce: 'n1', algorithm: 'SHA-256', qop: 'auth', nc: '00000001', cnonce: 'cn' });
    });

    it('refuses another scheme, a missing parameter, a repeated one, an unclosed quote', () => {
      expect(parseDigestCredentials('Basic YWxpY2U6eA==')).to.equal(undefined);
      expect(parseDigestCredentials('Digest username="a", realm="r", nonce="n", uri="u"')).to.equal(undefined);
      expect(parseDigestCredentials('Digest username="a", username="b", realm="r", nonce="n", uri="u", response="x"')).to.equal(undefined);
      expect(parseDigestCredentials('Digest username="a, realm=r')).to.equal(undefined);
      expect(parseDigestCredentials(`Digest username="${'a'.repeat(5000)}"`)).to.equal(undefined);
    });

    it('builds a challenge a client reads back', () => {
      const c = parseChallenge(buildChallenge({ realm: 'example.com', nonce: 'abc', algorithm: 'SHA-256', stale: true }));
      expect(c).to.deep.equal({ realm: 'example.com', nonce: 'abc', algorithm: 'SHA-256', qop: 'auth', stale: true });
    });

    it('computes HA1 per RFC 2617 (MD5 of user:realm:password)', () => {
      // RFC 2617 §3.5's example user and realm.
      expect(computeHa1s('Mufasa', 'testrealm@host.com', 'Circle Of Life').ha1Md5).to.equal('939e7578ed9e3c518a452acee763bce9');
    });
  });

  describe('nonces', () => {
    it('accepts its own nonce once per count, refuses a forged one, goes stale after the lifetime', () => {
      const c = clock();
      const m = new NonceManager({ secret: Buffer.alloc(32, 1), lifetimeMs: 1000, wallClock: c });
      const n = m.issue();
      expect(m.use(n, '00000001').kind).to.equal('fresh');
      expect(m.use(n, '00000001').kind).to.equal('replayed');
      expect(m.use(n, '00000003').kind).to.equal('fresh');
      expect(m.use(n, '00000003').kind).to.equal('replayed');
      // One character of the MAC changed.
      const forged = `${n.slice(0, 30)}${n[30] === 'A' ? 'B' : 'A'}${n.slice(31)}`;
      expect(m.use(forged, '00000001').kind).to.equal('invalid');
      const other = new NonceManager({ secret: Buffer.alloc(32, 2), lifetimeMs: 1000, wallClock: c });
      expect(other.use(n, '00000009').kind).to.equal('invalid');
      c.t += 1001;
      expect(m.use(n, '00000009').kind).to.equal('stale');
    });

    it('accepts counts out of order once each within the window, refuses older ones', () => {
      const m = new NonceManager({ secret: Buffer.alloc(32, 1), lifetimeMs: 60_000, wallClock: clock() });
      const n = m.issue();
      const use = (nc: number) => m.use(n, nc.toString(16).padStart(8, '0')).kind;
      // nc=2 lost on the way and retransmitted after nc=3 and nc=5 went through.
      expect([use(1), use(3), use(5), use(2), use(4)]).to.deep.equal(['fresh', 'fresh', 'fresh', 'fresh', 'fresh']);
      expect([use(1), use(2), use(3), use(4), use(5)]).to.deep.equal(['replayed', 'replayed', 'replayed', 'replayed', 'replayed']);
      // A jump past the window forgets the bits below it: those counts are refused, not reopened.
      expect(use(100)).to.equal('fresh');
      expect(use(68)).to.equal('replayed');
      expect(use(69)).to.equal('fresh');
      expect(use(69)).to.equal('replayed');
      expect(use(99)).to.equal('fresh');
      expect(use(101)).to.equal('fresh');
      expect(use(69)).to.equal('replayed');
    });

    it('stays bounded, and never lets a forgotten nonce be replayed', () => {
      const c = clock();
      const m = new NonceManager({ secret: Buffer.alloc(32, 1), lifetimeMs: 60_000, maxTracked: 10, wallClock: c });
      const first = m.issue();
      expect(m.use(first, '00000001').kind).to.equal('fresh');
      for (let i = 0; i < 50; i++) {
        c.t += 1;
        expect(m.use(m.issue(), '00000001').kind).to.equal('fresh');
      }
      expect(m.size).to.be.at.most(10);
      expect(m.use(first, '00000001').kind).to.equal('stale');
    });
  });

  describe('failure tracker and rate limiter', () => {
    it('blocks at the threshold for blockMs, then forgives', () => {
      const c = clock();
      const f = new FailureTracker({ windowMs: 1000, threshold: 3, blockMs: 5000 }, c);
      expect([f.fail('a'), f.fail('a'), f.fail('a')]).to.deep.equal([false, false, true]);
      expect(f.blockedFor('a')).to.equal(5000);
      expect(f.blockedFor('b')).to.equal(0);
      c.t += 5001;
      expect(f.blockedFor('a')).to.equal(0);
    });

    it('gives a burst, then one request per 1/rate seconds, with the wait to announce', () => {
      let t = 0;
      const r = new SourceRateLimiter({ requestsPerSecond: 2, burst: 3, maxSources: 5 }, () => t);
      expect([r.take('x'), r.take('x'), r.take('x')]).to.deep.equal([0, 0, 0]);
      expect(r.take('x')).to.equal(500);
      t += 500;
      expect(r.take('x')).to.equal(0);
      expect(r.take('y')).to.equal(0);
      for (let i = 0; i < 20; i++) r.take(`s${i}`);
      expect(r.size).to.be.at.most(5);
    });
  });

  describe('message caps', () => {
    it('passes an ordinary request', () => {
      expect(checkRequestCaps(register(), DEFAULT_MESSAGE_CAPS)).to.equal(undefined);
    });
  });

  describe('DigestAuthenticator', () => {
    const ha1s = computeHa1s('alice', 'example.com', 'pw');
    function authenticator(c = clock()) {
      const nonces = new NonceManager({ secret: Buffer.alloc(32, 7), lifetimeMs: 60_000, wallClock: c });
      return new DigestAuthenticator({
        realm: 'example.com',
        domain: 'example.com',
        credentials: { get: async (_d, u) => (u === 'alice' ? ha1s : undefined) },
        nonces,
        lockout: new AuthLockout({ windowMs: 60_000, blockMs: 60_000, perSourceUser: 100, usersPerSource: 100, perUser: 2 }, c),
      });
    }

    it('lets methods it does not guard through, challenges the others', async () => {
      const a = authenticator();
      const opts = new SipRequest('OPTIONS', 'sip:example.com');
      expect(await a.authenticate(opts, flow, log)).to.deep.equal({ ok: true });
      const d = await a.authenticate(register(), flow, log);
      expect(d.ok).to.equal(false);
      if (!d.ok) expect(d.status).to.equal(401);
    });

    it('answers 400 to credentials that do not parse and to digest without qop', async () => {
      const a = authenticator();
      const bad = await a.authenticate(register('Digest garbage'), flow, log);
      expect(bad.ok ? 0 : bad.status).to.equal(400);
      const noQop = await a.authenticate(register('Digest username="alice", realm="example.com", nonce="x", uri="sip:example.com", response="y"'), flow, log);
      expect(noQop.ok ? 0 : noQop.status).to.equal(400);
    });

    it('answers 400 to right credentials whose uri is not the Request-URI (RFC 2617 §3.2.2.5), without counting a failure', async () => {
      const a = authenticator();
      const d0 = await a.authenticate(register(), flow, log);
      if (d0.ok) throw new Error('no challenge');
      const c = parseChallenge(String(d0.headers![0]![1]));
      // A response computed right, but for another resource than the one the request names.
      const other = authorization(c, { username: 'alice', password: 'pw', method: 'REGISTER', uri: 'sip:other.example.net' });
      const d = await a.authenticate(register(other), flow, log);
      expect(d.ok ? 0 : d.status).to.equal(400);
      if (!d.ok) expect(d.reason).to.equal('Digest URI Does Not Match Request-URI');
      // The same nonce answered for the right resource is still good: nothing was consumed.
      const right = authorization(c, { username: 'alice', password: 'pw', method: 'REGISTER', uri: 'sip:EXAMPLE.com' });
      const ok = await a.authenticate(register(right), flow, log);
      expect(ok.ok).to.equal(true);
    });

    it('refuses, past the per-user threshold, a source that failed for that user, but not a clean one', async () => {
      const a = authenticator();
      const challenge = async (): Promise<ReturnType<typeof parseChallenge>> => {
        const d = await a.authenticate(register(), flow, log);
        if (d.ok) throw new Error('no challenge');
        return parseChallenge(String(d.headers![0]![1]));
      };
      for (let i = 0; i < 2; i++) {
        const c = await challenge();
        const d = await a.authenticate(register(authorization(c, { username: 'alice', password: 'bad', method: 'REGISTER', uri: 'sip:example.com' })), flow, log);
        expect(d.ok ? 0 : d.status).to.equal(401);
      }
      const c = await challenge();
      const right = authorization(c, { username: 'alice', password: 'pw', method: 'REGISTER', uri: 'sip:example.com' });
      const refused = await a.authenticate(register(right), flow, log);
      expect(refused.ok ? 0 : refused.status).to.equal(403);
      const clean = await a.authenticate(register(right), { ...flow, remoteAddress: '127.0.0.10' }, log);
      expect(clean.ok && clean.identity).to.deep.equal({ aor: 'sip:alice@example.com', username: 'alice', by: 'digest' });
    });
  });

  describe('digest uri against the Request-URI (RFC 3261 §19.1.4 equality)', () => {
    it('matches the same text and equivalent URIs', () => {
      expect(digestUriMatches('sip:example.com', 'sip:example.com')).to.equal(true);
      expect(digestUriMatches('sip:bob@EXAMPLE.com', 'sip:bob@example.com')).to.equal(true);
      expect(digestUriMatches('sip:bob@example.com;transport=TCP', 'sip:bob@example.com;transport=tcp')).to.equal(true);
      expect(digestUriMatches('sip:bob@example.com;lr;foo=1', 'sip:bob@example.com;lr')).to.equal(true);
      expect(digestUriMatches('sip:b%6fb@example.com', 'sip:bob@example.com')).to.equal(true);
    });

    it('refuses another resource', () => {
      expect(digestUriMatches('sip:other.net', 'sip:example.com')).to.equal(false);
      expect(digestUriMatches('sip:Bob@example.com', 'sip:bob@example.com')).to.equal(false);
      expect(digestUriMatches('sips:bob@example.com', 'sip:bob@example.com')).to.equal(false);
      expect(digestUriMatches('sip:bob@example.com:5060', 'sip:bob@example.com')).to.equal(false);
      expect(digestUriMatches('sip:bob@example.com;transport=tcp', 'sip:bob@example.com')).to.equal(false);
      expect(digestUriMatches('sip:bob@example.com;foo=1', 'sip:bob@example.com;foo=2')).to.equal(false);
      expect(digestUriMatches('*', 'sip:example.com')).to.equal(false);
      expect(digestUriMatches('', 'sip:example.com')).to.equal(false);
    });

    it("accepts a uri naming the server itself, SIPp's default (remote_ip:remote_port), and nothing more", () => {
      const server = { domain: 'example.com', host: '127.0.0.1', port: 5070 };
      expect(digestUriMatches('sip:127.0.0.1:5070', 'sip:bob@example.com', server)).to.equal(true);
      expect(digestUriMatches('sip:127.0.0.1', 'sip:bob@example.com', server)).to.equal(true);
      expect(digestUriMatches('sip:example.com', 'sip:bob@example.com', server)).to.equal(true);
      expect(digestUriMatches('sip:127.0.0.1:5071', 'sip:bob@example.com', server)).to.equal(false);
      expect(digestUriMatches('sip:carol@127.0.0.1:5070', 'sip:bob@example.com', server)).to.equal(false);
      expect(digestUriMatches('sip:127.0.0.1:5070;maddr=192.0.2.1', 'sip:bob@example.com', server)).to.equal(false);
      expect(digestUriMatches('sip:other.net', 'sip:bob@example.com', server)).to.equal(false);
      expect(digestUriMatches('sip:[::1]:5070', 'sip:bob@example.com', { ...server, host: '::1' })).to.equal(true);
    });
  });
});

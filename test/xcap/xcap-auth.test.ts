import { expect } from 'chai';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { computeHa1s } from '../../src/auth/ha1.js';
import { XcapAuthenticator, type XcapAuthResult } from '../../src/xcap/xcap-auth.js';
import { authorization, parseChallenge, type Challenge } from '../auth/digest-client.js';

/** What the authenticator reads of a request: method, target, Authorization, peer address. */
function request(method: string, url: string, auth?: string, peer = '192.0.2.1'): IncomingMessage {
  return { method, url, headers: auth ? { authorization: auth } : {}, socket: { remoteAddress: peer } } as unknown as IncomingMessage;
}

function challenges(r: XcapAuthResult): Challenge[] {
  if (r.ok) throw new Error('not a challenge');
  return r.headers.filter(([k]) => k === 'WWW-Authenticate').map(([, v]) => parseChallenge(v));
}

describe('xcap: HTTP digest with the SIP credentials (RFC 7616)', () => {
  let now = 1_000_000;
  const ha1s = computeHa1s('alice', 'example.com', 'secret');
  const auth = (): XcapAuthenticator =>
    new XcapAuthenticator({
      realm: () => 'example.com',
      domain: () => 'example.com',
      credentials: async (u) => (u === 'alice' ? ha1s : undefined),
      adminTokenDigest: createHash('sha256').update('admin-token-0123456789').digest(),
      wallClock: { nowMs: () => now },
      nonceLifetimeMs: 60_000,
    });

  it('challenges with SHA-256 then MD5, and accepts either answer as the user of the domain', async () => {
    const a = auth();
    const cs = challenges(await a.authenticate(request('GET', '/xcap-root/x')));
    expect(cs.map((c) => c.algorithm)).to.deep.equal(['SHA-256', 'MD5']);
    for (const c of cs) {
      const r = await a.authenticate(request('GET', '/xcap-root/x', authorization(c, { username: 'alice', password: 'secret', method: 'GET', uri: '/xcap-root/x' })));
      expect(r, c.algorithm).to.deep.equal({ ok: true, identity: { kind: 'user', aor: 'sip:alice@example.com', username: 'alice' } });
    }
  });

  it('refuses a replayed nonce-count, credentials for another target, and no qop', async () => {
    const a = auth();
    const [c] = challenges(await a.authenticate(request('GET', '/xcap-root/x')));
    const creds = authorization(c!, { username: 'alice', password: 'secret', method: 'GET', uri: '/xcap-root/x', nc: 1, cnonce: 'abc' });
    expect((await a.authenticate(request('GET', '/xcap-root/x', creds))).ok).to.equal(true);
    const again = await a.authenticate(request('GET', '/xcap-root/x', creds));
    expect(again.ok).to.equal(false);
    expect(!again.ok && again.status).to.equal(401);
    const other = await a.authenticate(request('GET', '/xcap-root/y', authorization(c!, { username: 'alice', password: 'secret', method: 'GET', uri: '/xcap-root/x', nc: 2 })));
    expect(!other.ok && [other.status, other.reason]).to.deep.equal([400, 'digest uri is not the request-target']);
    const noQop = `Digest username="alice", realm="example.com", nonce="${c!.nonce}", uri="/xcap-root/x", response="00", algorithm=SHA-256`;
    expect(await a.authenticate(request('GET', '/xcap-root/x', noQop))).to.deep.include({ ok: false, status: 400 });
  });

  it('a nonce past its lifetime is stale: the right password is asked again without a failure', async () => {
    const a = auth();
    const [c] = challenges(await a.authenticate(request('GET', '/xcap-root/x')));
    now += 61_000;
    const r = await a.authenticate(request('GET', '/xcap-root/x', authorization(c!, { username: 'alice', password: 'secret', method: 'GET', uri: '/xcap-root/x' })));
    expect(challenges(r).every((x) => x.stale)).to.equal(true);
  });

  it('blocks an address after 20 failures in a minute (429), and takes the admin token', async () => {
    const a = auth();
    const [c] = challenges(await a.authenticate(request('GET', '/xcap-root/x')));
    let last: XcapAuthResult | undefined;
    for (let i = 0; i < 21; i++) {
      last = await a.authenticate(request('GET', '/xcap-root/x', authorization(c!, { username: 'alice', password: `wrong${i}`, method: 'GET', uri: '/xcap-root/x', nc: i + 1 }), '198.51.100.7'));
    }
    expect(!last!.ok && last!.status).to.equal(429);
    expect(await a.authenticate(request('GET', '/xcap-root/x', 'Bearer admin-token-0123456789'))).to.deep.equal({ ok: true, identity: { kind: 'admin' } });
    const wrong = await a.authenticate(request('GET', '/xcap-root/x', 'Bearer nope-nope-nope-nope'));
    expect(!wrong.ok && wrong.status).to.equal(401);
  });
});

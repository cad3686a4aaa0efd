import { expect } from 'chai';
import { SipRequest } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { parseSubscriptionState, resubscribePolicy } from '../../src/ua/client-subscription.js';
import { SipRequestError } from '../../src/ua/errors.js';
import { Pager } from '../../src/ua/pager.js';
import { PresenceUserAgent } from '../../src/ua/presence-user-agent.js';
import { Registration } from '../../src/ua/registration.js';
import { UserAgent } from '../../src/ua/user-agent.js';
import { WatcherUserAgent } from '../../src/ua/watcher-user-agent.js';
import { ManualTimers } from '../../src/util/timers.js';
import { checkDigest, FakeServer } from './fake-server.js';

const CHALLENGE = 'Digest realm="example.com", nonce="n0nce1", algorithm=SHA-256, qop="auth", opaque="xyz"';

/** A server that asks for credentials (401) until the request carries a good Authorization. */
function challenging(password: string, onAccept: (req: SipRequest) => ReturnType<typeof createResponse> = (req) => createResponse(req, 200)) {
  return (req: SipRequest) => {
    if (req.method === 'ACK') return undefined;
    if (!checkDigest(req, password)) return createResponse(req, 401, undefined, { headers: [['WWW-Authenticate', 'Digest realm="example.com", nonce="n0nce1", algorithm=SHA-512-256, qop="auth"'], ['WWW-Authenticate', CHALLENGE]] });
    return onAccept(req);
  };
}

describe('ua: digest authentication and subscription endings (scripted server)', () => {
  let server: FakeServer;
  let ua: UserAgent | undefined;

  beforeEach(async () => {
    server = await FakeServer.start();
  });
  afterEach(async () => {
    await ua?.close();
    ua = undefined;
    await server.close();
  });

  async function agent(password?: string, timers?: ManualTimers): Promise<UserAgent> {
    ua = new UserAgent({ aor: 'sip:alice@example.com', server: { host: '127.0.0.1', port: server.port }, password, timers });
    await ua.start();
    return ua;
  }

  it('answers a 401 with SHA-256 credentials, CSeq one higher, and sends them at once afterwards', async () => {
    server.answer = challenging('secret', (req) => createResponse(req, 200, undefined, { headers: [['Expires', 600], ['SIP-ETag', 'e1']] }));
    const a = await agent('secret');
    await new Registration(a).register();
    const [first, second] = server.requests;
    expect(first!.hasHeader('Authorization')).to.equal(false);
    expect(second!.cseq.seq).to.equal(first!.cseq.seq + 1);
    expect(second!.callId).to.equal(first!.callId);
    expect(second!.getHeader('Authorization')).to.match(/algorithm=SHA-256/);
    // RFC 3261 §22.3: the next request carries credentials without waiting for a challenge.
    await new PresenceUserAgent(a).publish({ basic: 'open' });
    expect(server.requests).to.have.length(3);
    expect(checkDigest(server.requests[2]!, 'secret')).to.equal(true);
    expect(server.requests[2]!.getHeader('Authorization')).to.match(/nc=00000002/);
  });

  it('fails with a wrong-password hint instead of retrying the same nonce forever', async () => {
    server.answer = challenging('right');
    const a = await agent('wrong');
    const err = await new Pager(a).send('bob', 'hi').then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(SipRequestError);
    expect((err as SipRequestError).status).to.equal(401);
    expect((err as SipRequestError).message).to.match(/MESSAGE to udp:127\.0\.0\.1:\d+ failed: 401 .*wrong user name or password/);
    expect(server.requests).to.have.length(2);
  });

  it('without a password, a 401 says to give one (not that it was wrong)', async () => {
    server.answer = challenging('secret');
    const err = await new Pager(await agent()).send('bob', 'hi').then(() => undefined, (e: unknown) => e);
    expect((err as SipRequestError).status).to.equal(401);
    expect((err as SipRequestError).message).to.match(/401 Unauthorized \(the server asks for a password: give --password or set SIP_PASSWORD\)$/);
    expect(server.requests).to.have.length(1);
  });

  it('keeps refreshing a publication after a refresh answer it cannot use (2xx without SIP-ETag)', async () => {
    let n = 0;
    server.answer = (req) => createResponse(req, 200, undefined, { headers: [['Expires', 60], ...(++n === 2 ? [] : [['SIP-ETag', `e${n}`] as [string, string]])] });
    const timers = new ManualTimers();
    const pua = new PresenceUserAgent(await agent(undefined, timers), { expires: 60, retrySeconds: 10 });
    const errors: Error[] = [];
    pua.on('error', (e) => errors.push(e));
    await pua.publish({ basic: 'open' });
    timers.advance(30_000);
    const end = Date.now() + 2000;
    while (errors.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    expect(errors[0]!.message).to.match(/without SIP-ETag/);
    const republished = new Promise((r) => pua.once('published', r));
    timers.advance(10_000);
    await republished;
    expect(server.requests.filter((r) => r.method === 'PUBLISH')).to.have.length(3);
  });

  it('answers a 407 with Proxy-Authorization', async () => {
    server.answer = (req) =>
      checkDigest(req, 'pw', 'Proxy-Authorization') ? createResponse(req, 200) : createResponse(req, 407, undefined, { headers: [['Proxy-Authenticate', 'Digest realm="example.com", nonce="p1", qop="auth"']] });
    const res = await new Pager(await agent('pw')).send('bob', 'hi');
    expect(res.status).to.equal(200);
    expect(server.requests[1]!.getHeader('Proxy-Authorization')).to.match(/algorithm=MD5/);
  });

  /** Accepts SUBSCRIBE with 200 (To tag t1) and remembers the last one. */
  function subscribeAccepting(): void {
    server.answer = (req) => createResponse(req, 200, undefined, { toTag: 't1', headers: [['Expires', 600], ['Contact', `<sip:srv@127.0.0.1:${server.port}>`]] });
  }

  function notify(sub: SipRequest, state: string, cseq: number): SipRequest {
    const n = new SipRequest('NOTIFY', sub.contacts[0]!.uri.raw);
    n.addHeader('Via', `SIP/2.0/UDP 127.0.0.1:${server.port};branch=z9hG4bK${cseq}x${Math.random().toString(36).slice(2)}`);
    n.addHeader('From', `<${sub.to.uri.raw}>;tag=t1`);
    n.addHeader('To', `${sub.getHeader('from')}`);
    n.addHeader('Call-ID', sub.callId);
    n.addHeader('CSeq', `${cseq} NOTIFY`);
    n.addHeader('Event', 'presence');
    n.addHeader('Subscription-State', state);
    n.addHeader('Contact', `<sip:srv@127.0.0.1:${server.port}>`);
    return n;
  }

  it('re-subscribes with a new dialog after terminated;reason=deactivated (RFC 6665 §4.1.3)', async () => {
    subscribeAccepting();
    const timers = new ManualTimers();
    const wua = new WatcherUserAgent(await agent(undefined, timers));
    await wua.watch('bob');
    const first = server.requests[0]!;
    expect((await server.request(notify(first, 'active;expires=600', 1))).status).to.equal(200);
    const again = server.waitRequest((r) => r.method === 'SUBSCRIBE' && r.callId !== first.callId);
    expect((await server.request(notify(first, 'terminated;reason=deactivated', 2))).status).to.equal(200);
    timers.advance(0);
    const second = await again;
    expect(second.to.tag).to.equal(undefined);
  });

  it('refreshes the subscription in its dialog before it expires (RFC 6665 §4.1.2.2)', async () => {
    subscribeAccepting();
    const timers = new ManualTimers();
    const wua = new WatcherUserAgent(await agent(undefined, timers));
    await wua.watch('bob');
    const first = server.requests[0]!;
    await server.request(notify(first, 'active;expires=600', 1));
    const refresh = server.waitRequest((r) => r.method === 'SUBSCRIBE' && r.callId === first.callId);
    timers.advance(559_000);
    await new Promise((r) => setTimeout(r, 20));
    expect(server.requests.filter((r) => r.method === 'SUBSCRIBE')).to.have.length(1);
    timers.advance(1_000);
    const second = await refresh;
    expect(second.to.tag).to.equal('t1');
    expect(second.from.tag).to.equal(first.from.tag);
    expect(second.cseq.seq).to.be.greaterThan(first.cseq.seq);
    // §12.2.1.1: in the dialog, to the notifier's Contact.
    expect(second.uriText).to.equal(`sip:srv@127.0.0.1:${server.port}`);
    expect(second.getHeader('expires')).to.equal('3600');
  });

  it('publishes a whole PIDF document as given, and refuses one that is not PIDF', async () => {
    server.answer = (req) => createResponse(req, 200, undefined, { headers: [['Expires', 600], ['SIP-ETag', 'x1']] });
    const pua = new PresenceUserAgent(await agent());
    const doc = '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><tuple id="mine"><status><basic>closed</basic></status></tuple></presence>';
    await pua.publish({ basic: 'open', pidf: doc });
    expect(server.requests[0]!.body.toString()).to.equal(doc);
    expect(server.requests[0]!.getHeader('content-type')).to.equal('application/pidf+xml');
    const err = await pua.publish({ basic: 'open', pidf: '<html/>' }).then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).to.match(/not a valid PIDF document/);
    expect(server.requests).to.have.length(1);
  });

  it('reports pending, then active with the document, from the NOTIFYs', async () => {
    subscribeAccepting();
    const wua = new WatcherUserAgent(await agent());
    const seen: Array<[string, string | undefined]> = [];
    wua.on('presence', (u) => seen.push([u.status, u.summary?.basic]));
    const sub = await wua.watch('bob');
    const first = server.requests[0]!;
    await server.request(notify(first, 'pending;expires=600', 1));
    expect(sub.status).to.equal('pending');
    const active = notify(first, 'active;expires=600', 2);
    active.setHeader('Content-Type', 'application/pidf+xml');
    active.body = Buffer.from('<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@example.com"><tuple id="t"><status><basic>open</basic></status></tuple></presence>');
    expect((await server.request(active)).status).to.equal(200);
    expect(sub.status).to.equal('active');
    expect(seen).to.deep.equal([['pending', undefined], ['active', 'open']]);
    // An old CSeq is out of order (RFC 3261 §12.2.2).
    expect((await server.request(notify(first, 'active', 2))).status).to.equal(500);
  });

  it('stops after terminated;reason=rejected and reports it', async () => {
    subscribeAccepting();
    const timers = new ManualTimers();
    const wua = new WatcherUserAgent(await agent(undefined, timers));
    const sub = await wua.watch('bob');
    const ended = new Promise<string | undefined>((r) => sub.on('terminated', r));
    const first = server.requests[0]!;
    await server.request(notify(first, 'terminated;reason=rejected', 1));
    expect(await ended).to.equal('rejected');
    timers.advance(3_600_000);
    await new Promise((r) => setTimeout(r, 20));
    expect(server.requests.filter((r) => r.method === 'SUBSCRIBE')).to.have.length(1);
    // The dialog is gone: a NOTIFY in it now gets 481.
    expect((await server.request(notify(first, 'active', 5))).status).to.equal(481);
  });

  it('reads Subscription-State and follows §4.1.3 for each reason', () => {
    expect(parseSubscriptionState('active;expires=599')).to.deep.equal({ state: 'active', expires: 599 });
    expect(parseSubscriptionState('terminated;reason=giveup;retry-after=60')).to.deep.equal({ state: 'terminated', reason: 'giveup', retryAfter: 60 });
    expect(parseSubscriptionState('bogus')).to.equal(undefined);
    expect(parseSubscriptionState('active;;')).to.equal(undefined);
    expect(resubscribePolicy('timeout', undefined, 30)).to.deep.equal({ retry: true, afterSeconds: 0 });
    expect(resubscribePolicy('probation', 90, 30)).to.deep.equal({ retry: true, afterSeconds: 90 });
    expect(resubscribePolicy('giveup', undefined, 30)).to.deep.equal({ retry: true, afterSeconds: 30 });
    for (const r of ['rejected', 'noresource', 'invariant']) expect(resubscribePolicy(r, undefined, 30)).to.deep.equal({ retry: false });
  });
});

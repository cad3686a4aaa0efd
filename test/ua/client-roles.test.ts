import { expect } from 'chai';
import { Pager } from '../../src/ua/pager.js';
import { PresenceUserAgent } from '../../src/ua/presence-user-agent.js';
import { Registration } from '../../src/ua/registration.js';
import { UserAgent, type ClientTransport } from '../../src/ua/user-agent.js';
import { WatcherUserAgent } from '../../src/ua/watcher-user-agent.js';
import type { PresenceUpdate } from '../../src/ua/client-subscription.js';
import { SipRequestError } from '../../src/ua/errors.js';
import { ManualTimers } from '../../src/util/timers.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { next } from '../support/wait.js';
import type { LocationService } from '../../src/registrar/location-service.js';

const settle = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('ua: client roles against the real server', function () {
  let srv: TestServer;
  const agents: UserAgent[] = [];
  let n = 0;
  const name = (base: string): string => `${base}${++n}`;

  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.stop();
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.close();
  });

  async function agent(user: string, transport: ClientTransport = 'udp', timers?: ManualTimers, port = srv.port): Promise<UserAgent> {
    const ua = new UserAgent({ aor: `sip:${user}@example.com`, server: { host: '127.0.0.1', port, transport }, timers });
    agents.push(ua);
    await ua.start();
    return ua;
  }

  for (const transport of ['udp', 'tcp'] as const) {
    it(`registers and receives a MESSAGE over ${transport}; sends one back`, async () => {
      const bobName = name('bob');
      const bob = await agent(bobName, transport);
      const reg = new Registration(bob, { expires: 300 });
      expect(await reg.register()).to.equal(300);
      expect((srv.server.location as LocationService).lookup(`sip:${bobName}@example.com`)).to.have.length(1);
      const bobPager = new Pager(bob);
      const alice = await agent(name('alice'));
      const alicePager = new Pager(alice);
      const got = next<{ text: string; from: string }>((fn) => bobPager.on('message', fn));
      const result = await alicePager.send(`${bobName}`, 'hello bob');
      expect(result.status).to.equal(200);
      const m = await got;
      expect(m.text).to.equal('hello bob');
      expect(m.from).to.equal(alice.aor);
      await reg.unregister();
      expect((srv.server.location as LocationService).lookup(`sip:${bobName}@example.com`)).to.have.length(0);
    });
  }

  it('reports 202 for a message stored for an offline user', async () => {
    const alice = new Pager(await agent(name('alice')));
    const res = await alice.send(`sip:${name('offline')}@example.com`, 'later');
    expect(res).to.deep.include({ status: 202, stored: true });
  });

  it('refreshes its registration before expiry and raises Expires on 423', async () => {
    const timers = new ManualTimers();
    const user = name('carol');
    const ua = await agent(user, 'udp', timers);
    const reg = new Registration(ua, { expires: 10 });
    // registrar.minExpires is 60: the 423 is followed by a REGISTER with 60.
    expect(await reg.register()).to.equal(60);
    const again = next<number>((fn) => reg.on('registered', fn));
    timers.advance(30_000);
    expect(await again).to.equal(60);
    expect((srv.server.location as LocationService).lookup(`sip:${user}@example.com`)).to.have.length(1);
  });

  it('fails with the server, the status and a hint when nobody answers', async () => {
    const timers = new ManualTimers();
    // A port nobody listens on: the request times out (Timer F, driven here).
    const ua = await agent(name('lost'), 'udp', timers, 9);
    const reg = new Registration(ua);
    const outcome = reg.register().then(() => undefined, (e: unknown) => e);
    for (let i = 0; i < 40; i++) {
      await settle(1);
      timers.advance(1000);
    }
    const err = await outcome;
    expect(err).to.be.instanceOf(SipRequestError);
    expect((err as SipRequestError).status).to.equal(408);
    expect((err as SipRequestError).message).to.match(/REGISTER to udp:127\.0\.0\.1:9 failed: 408 .*server running/);
  });

  it('publishes, modifies and unpublishes; a watcher sees each state', async () => {
    const bobName = name('bob');
    const pua = new PresenceUserAgent(await agent(bobName));
    const watcherUa = await agent(name('watcher'), 'tcp');
    const wua = new WatcherUserAgent(watcherUa);
    const updates: PresenceUpdate[] = [];
    wua.on('presence', (u) => updates.push(u));
    const pub = await pua.publish({ basic: 'open', note: 'at my desk', activities: ['working'] });
    expect(pub.etag).to.be.a('string').and.not.equal('');
    const opened = next<PresenceUpdate>((fn) => wua.on('presence', fn), (u) => u.summary?.basic === 'open');
    const sub = await wua.watch(bobName);
    const first = await opened;
    expect(first.summary).to.deep.include({ basic: 'open', note: 'at my desk' });
    expect(first.summary!.activities).to.deep.equal(['working']);
    expect(sub.status).to.equal('active');

    const changed = next<PresenceUpdate>((fn) => wua.on('presence', fn), (u) => u.summary?.note === 'in a meeting');
    const pub2 = await pua.publish({ basic: 'open', note: 'in a meeting', activities: ['meeting'] });
    expect(pub2.etag).to.not.equal(pub.etag);
    expect((await changed).summary!.activities).to.deep.equal(['meeting']);

    const gone = next<PresenceUpdate>((fn) => wua.on('presence', fn), (u) => u.summary?.basic === undefined);
    await pua.close();
    await gone;
    expect(updates.map((u) => u.summary?.basic)).to.deep.equal(['open', 'open', undefined]);
    const ended = next<string>((fn) => sub.on('status', fn), (s) => s === 'terminated');
    await wua.close();
    await ended;
  });

  it('refreshes its publication, and publishes afresh after a 412 (server restarted)', async () => {
    const timers = new ManualTimers();
    const user = name('dave');
    const ua = await agent(user, 'udp', timers);
    const pua = new PresenceUserAgent(ua, { expires: 120 });
    const first = await pua.publish({ basic: 'open', note: 'here' });
    expect(first.expires).to.equal(120);
    // A refresh keeps the entity-tag alive without a body (RFC 3903 §4.4).
    const refreshed = next<{ etag: string }>((fn) => pua.on('published', fn));
    timers.advance(80_000);
    const r = await refreshed;
    expect(r.etag).to.not.equal(first.etag);
    // The server forgets everything: the next refresh gets 412 and the state is published again.
    const port = srv.port;
    await srv.stop();
    srv = await startTestServer({ sip: { port } });
    const republished = next<{ etag: string }>((fn) => pua.on('published', fn));
    timers.advance(80_000);
    await republished;
    const watcher = new WatcherUserAgent(await agent(name('w')));
    const seen = next<PresenceUpdate>((fn) => watcher.on('presence', fn), (u) => u.summary?.note === 'here');
    await watcher.watch(user);
    await seen;
  });

  it('raises the publication Expires to Min-Expires on 423', async () => {
    const pua = new PresenceUserAgent(await agent(name('frank')), { expires: 10 });
    // presence.publishMinExpires is 60.
    expect((await pua.publish({ basic: 'open' })).expires).to.equal(60);
    await pua.close();
  });

  it('subscribes to its own watcher information and sees a new watcher', async () => {
    const ownerName = name('owner');
    const owner = new WatcherUserAgent(await agent(ownerName));
    const listed = next<{ watcherLists: ReadonlyArray<{ watchers: ReadonlyArray<{ uri: string }> }> }>(
      (fn) => owner.on('watchers', fn),
      (d) => d.watcherLists.some((l) => l.watchers.some((w) => w.uri.includes('fan'))),
    );
    await owner.watchWatchers();
    const fan = new WatcherUserAgent(await agent(name('fan')));
    await fan.watch(ownerName);
    await listed;
  });

  it('rejects a subscription the server refuses, with the status', async () => {
    const ua = await agent(name('eve'));
    const req = ua.createRequest('SUBSCRIBE', `sip:x@example.com`, { contact: true, headers: [['Event', 'no-such-package'], ['Expires', 60]] });
    const { response } = await ua.send(req);
    expect(response.status).to.equal(489);
  });
});

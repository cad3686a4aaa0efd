import { expect } from 'chai';
import {
  Messager, Publisher, PublisherState, Registerer, RegistererState, Subscriber, SubscriptionState, UserAgent as SipJsUserAgent,
  type Message, type Notification, type URI,
} from 'sip.js';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { openStore, type Store } from '../../src/store/index.js';
import { parsePidf } from '../../src/presence/pidf/parse-pidf.js';
import { summarizePresence } from '../../src/presence/pidf/summarize.js';
import { Pager } from '../../src/ua/pager.js';
import { PresenceUserAgent } from '../../src/ua/presence-user-agent.js';
import { Registration } from '../../src/ua/registration.js';
import { UserAgent } from '../../src/ua/user-agent.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { wsUrl } from './ws-ua.js';
import { until } from '../support/wait.js';
import type { LocationService } from '../../src/registrar/location-service.js';

/**
 * Interop with sip.js 0.21 (an independent, browser-grade SIP stack) over SIP-over-WebSocket
 * (RFC 7118), run in Node with the `ws` package standing in for the browser's WebSocket.
 */

// sip.js opens `new WebSocket(url, "sip")` on the global; Node 20 has none.
const g = globalThis as { WebSocket?: unknown };
const hadWebSocket = 'WebSocket' in g;
const savedWebSocket = g.WebSocket;

function pidf(entity: string, basic: 'open' | 'closed', note: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}"><tuple id="sipjs"><status><basic>${basic}</basic></status><note>${note}</note></tuple></presence>`;
}

/** A sip.js presence Subscriber that accepts every NOTIFY and keeps the note each one carried. */
function noteWatcher(ua: SipJsUserAgent, target: URI, options?: { expires: number }): { subscriber: Subscriber; notes: Array<string | undefined> } {
  const notes: Array<string | undefined> = [];
  const subscriber = new Subscriber(ua, target, 'presence', options);
  subscriber.delegate = {
    onNotify: (notification: Notification) => {
      notification.accept();
      const doc = notification.request.body ? parsePidf(notification.request.body) : undefined;
      notes.push(doc?.ok ? summarizePresence(doc.document).note : undefined);
    },
  };
  return { subscriber, notes };
}

describe('interop: sip.js over WebSocket', function () {
  this.timeout(10_000);
  let srv: TestServer;
  let url: string;
  const sipjs: SipJsUserAgent[] = [];
  const ours: UserAgent[] = [];
  let n = 0;
  const name = (base: string): string => `${base}${++n}`;

  before(async () => {
    g.WebSocket = WebSocket;
    srv = await startTestServer({ presence: { publishMinExpires: 1, subscribeMinExpires: 1 } });
    url = wsUrl(srv.server.listeners);
  });
  after(async () => {
    await srv.stop();
    if (hadWebSocket) g.WebSocket = savedWebSocket;
    else delete g.WebSocket;
  });
  afterEach(async () => {
    // sip.js's stop() ends its subscriptions and waits for the answers; don't wait forever.
    for (const ua of sipjs.splice(0)) await Promise.race([ua.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    for (const ua of ours.splice(0)) await ua.close();
  });

  /** A sip.js user agent registered as `user` that accepts each MESSAGE; resolves with the bodies it gets. */
  async function registeredReceiver(user: string): Promise<string[]> {
    const received: string[] = [];
    const ua = await sipjsUa(user, (m) => {
      received.push(m.request.body);
      void m.accept();
    });
    const registerer = new Registerer(ua);
    await registerer.register();
    await until(() => registerer.state === RegistererState.Registered, 'Registered');
    return received;
  }

  async function sipjsUa(user: string, onMessage?: (m: Message) => void): Promise<SipJsUserAgent> {
    const ua = new SipJsUserAgent({
      uri: SipJsUserAgent.makeURI(`sip:${user}@example.com`),
      transportOptions: { server: url, traceSip: false },
      logLevel: 'error',
      logBuiltinEnabled: false,
      ...(onMessage ? { delegate: { onMessage } } : {}),
    });
    sipjs.push(ua);
    await ua.start();
    return ua;
  }

  async function ourUa(user: string): Promise<UserAgent> {
    const ua = new UserAgent({ aor: `sip:${user}@example.com`, server: { host: '127.0.0.1', port: srv.port } });
    ours.push(ua);
    await ua.start();
    return ua;
  }

  const uri = (user: string): URI => SipJsUserAgent.makeURI(`sip:${user}@example.com`)!;

  it('Registerer registers, and unregisters (binding bound to the WebSocket)', async () => {
    const user = name('jsreg');
    const ua = await sipjsUa(user);
    const registerer = new Registerer(ua, { expires: 300 });
    await registerer.register();
    await until(() => registerer.state === RegistererState.Registered, 'Registered');
    const bindings = (srv.server.location as LocationService).lookup(`sip:${user}@example.com`);
    expect(bindings).to.have.length(1);
    expect(bindings[0]!.contact).to.match(/\.invalid/);
    expect(bindings[0]!.flow.protocol).to.equal('ws');
    await registerer.unregister();
    await until(() => registerer.state === RegistererState.Unregistered, 'Unregistered');
    expect((srv.server.location as LocationService).lookup(`sip:${user}@example.com`)).to.have.length(0);
  });

  it('Publisher publishes, refreshes, modifies and unpublishes PIDF; a sip.js Subscriber sees each state', async () => {
    const presentity = name('jspub');
    const pubUa = await sipjsUa(presentity);
    const watchUa = await sipjsUa(name('jswatch'));
    const notifies: Array<{ state: string; basic?: string; note?: string }> = [];
    const subscriber = new Subscriber(watchUa, uri(presentity), 'presence', { expires: 600 });
    subscriber.delegate = {
      onNotify: (notification: Notification) => {
        notification.accept();
        const req = notification.request;
        const doc = req.body ? parsePidf(req.body) : undefined;
        const summary = doc?.ok ? summarizePresence(doc.document) : undefined;
        notifies.push({ state: req.getHeader('Subscription-State') ?? '', basic: summary?.basic, note: summary?.note });
      },
    };
    await subscriber.subscribe();
    await until(() => notifies.length >= 1, 'first NOTIFY');
    expect(notifies[0]!.state).to.match(/^active/);

    const publisher = new Publisher(pubUa, uri(presentity), 'presence', { expires: 600, contentType: 'application/pidf+xml' });
    const states: PublisherState[] = [];
    publisher.stateChange.addListener((s) => states.push(s));
    await publisher.publish(pidf(`sip:${presentity}@example.com`, 'open', 'from sip.js'));
    await until(() => states.includes(PublisherState.Published), 'Published');
    await until(() => notifies.some((x) => x.basic === 'open' && x.note === 'from sip.js'), 'NOTIFY with the published state');

    // sip.js refreshes at 90% of Expires; its own refresh path is triggered here rather than waiting minutes.
    const before = notifies.length;
    const internals = publisher as unknown as { refreshRequest(): void; pubRequestEtag?: string };
    const etag = internals.pubRequestEtag;
    internals.refreshRequest();
    // RFC 3903 §4.4: the refresh is answered with a new entity-tag.
    await until(() => internals.pubRequestEtag !== etag, 'refreshed entity-tag');
    expect(publisher.state).to.equal(PublisherState.Published);
    // A refresh changes nothing a watcher sees (RFC 3903 §4.4): no new NOTIFY with other content.
    expect(notifies.slice(before).every((x) => x.note === 'from sip.js')).to.equal(true);

    await publisher.publish(pidf(`sip:${presentity}@example.com`, 'closed', 'gone fishing'));
    await until(() => notifies.some((x) => x.basic === 'closed' && x.note === 'gone fishing'), 'NOTIFY with the modified state');

    await publisher.unpublish();
    await until(() => states.includes(PublisherState.Unpublished), 'Unpublished');
    await until(() => notifies.at(-1)!.basic === undefined, 'NOTIFY after the publication was removed');

    const watching = (): number => srv.server.presence.subscriptions.subscriptionsTo('presence', `sip:${presentity}@example.com`).length;
    expect(watching()).to.equal(1);
    await subscriber.unsubscribe();
    await until(() => subscriber.state === SubscriptionState.Terminated, 'subscription Terminated');
    // sip.js ends its side at once; the server ends its own on the Expires: 0 SUBSCRIBE.
    await until(() => watching() === 0, 'the server to end the subscription');
  });

  it('Messager sends a MESSAGE that a second sip.js user agent receives', async () => {
    const bobName = name('jsbob');
    const received = await registeredReceiver(bobName);
    const alice = await sipjsUa(name('jsalice'));
    let status = 0;
    await new Messager(alice, uri(bobName), 'hello from sip.js', 'text/plain').message({
      requestDelegate: { onAccept: (r) => (status = r.message.statusCode ?? 0), onReject: (r) => (status = r.message.statusCode ?? 0) },
    });
    await until(() => received.length === 1 && status !== 0, 'MESSAGE delivered and answered');
    expect(received[0]).to.equal('hello from sip.js');
    expect(status).to.equal(200);
  });

  it('across transports: our UDP PUA publishes and a sip.js watcher over WebSocket is notified', async () => {
    const presentity = name('udppub');
    const watchUa = await sipjsUa(name('jswatch'));
    const { subscriber, notes } = noteWatcher(watchUa, uri(presentity));
    await subscriber.subscribe();
    await until(() => notes.length >= 1, 'first NOTIFY');
    const pua = new PresenceUserAgent(await ourUa(presentity));
    await pua.publish({ basic: 'open', note: 'published over UDP', activities: ['away'] });
    await until(() => notes.includes('published over UDP'), 'NOTIFY over WebSocket');
    await pua.close();
  });

  it('across transports: a sip.js user messages a UDP user', async () => {
    const bobName = name('udpbob');
    const bob = await ourUa(bobName);
    await new Registration(bob).register();
    const pager = new Pager(bob);
    const got: string[] = [];
    pager.on('message', (m) => got.push(m.text));
    const alice = await sipjsUa(name('jsalice'));
    let status = 0;
    await new Messager(alice, uri(bobName), 'hi UDP bob').message({ requestDelegate: { onAccept: (r) => (status = r.message.statusCode ?? 0) } });
    await until(() => got.length === 1 && status === 200, 'MESSAGE to the UDP user');
    expect(got[0]).to.equal('hi UDP bob');
  });

  it('and back: our UDP pager messages a sip.js user over its WebSocket', async () => {
    const jsName = name('jscarol');
    const received = await registeredReceiver(jsName);
    const res = await new Pager(await ourUa(name('udpdave'))).send(jsName, 'to the browser');
    expect(res.status).to.equal(200);
    expect(received).to.deep.equal(['to the browser']);
  });
});

describe('interop: sip.js over WebSocket with authentication on', function () {
  this.timeout(20_000);
  const PASSWORD = 'sip.js interop password';
  let store: Store;
  let srv: TestServer;
  const sipjs: SipJsUserAgent[] = [];
  const ours: UserAgent[] = [];

  before(async () => {
    g.WebSocket = WebSocket;
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ auth: { required: true, defaultPolicy: 'allow', maxFailedUsersPerSource: 1000 } }, { store });
    for (const u of ['jsann', 'jsben', 'udpcat', 'jspia', 'jsquinn']) await srv.server.security.admin!.addUser({ username: u, password: PASSWORD });
  });
  after(async () => {
    for (const ua of sipjs.splice(0)) await Promise.race([ua.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    for (const ua of ours.splice(0)) await ua.close();
    await srv?.stop();
    await store?.close();
    if (hadWebSocket) g.WebSocket = savedWebSocket;
    else delete g.WebSocket;
  });

  async function sipjsUa(user: string, password: string, onMessage?: (m: Message) => void): Promise<SipJsUserAgent> {
    const ua = new SipJsUserAgent({
      uri: SipJsUserAgent.makeURI(`sip:${user}@example.com`),
      transportOptions: { server: wsUrl(srv.server.listeners) },
      authorizationUsername: user,
      authorizationPassword: password,
      logLevel: 'error',
      logBuiltinEnabled: false,
      ...(onMessage ? { delegate: { onMessage } } : {}),
    });
    sipjs.push(ua);
    await ua.start();
    return ua;
  }

  it('Registerer answers the digest challenge; a wrong password is refused', async () => {
    const ok = new Registerer(await sipjsUa('jsann', PASSWORD));
    await ok.register();
    await until(() => ok.state === RegistererState.Registered, 'Registered with the right password');
    expect((srv.server.location as LocationService).lookup('sip:jsann@example.com')).to.have.length(1);
    let rejected = 0;
    const bad = new Registerer(await sipjsUa('jsben', 'wrong password'));
    await bad.register({ requestDelegate: { onReject: (r) => (rejected = r.message.statusCode ?? 0) } });
    await until(() => rejected !== 0, 'rejection');
    expect(rejected).to.be.oneOf([401, 403]);
    expect((srv.server.location as LocationService).lookup('sip:jsben@example.com')).to.have.length(0);
  });

  it('Publisher and Subscriber answer the challenges: publish, modify, unpublish, each state notified', async () => {
    const pia = await sipjsUa('jspia', PASSWORD);
    const quinn = await sipjsUa('jsquinn', PASSWORD);
    const { subscriber, notes } = noteWatcher(quinn, SipJsUserAgent.makeURI('sip:jspia@example.com')!, { expires: 600 });
    await subscriber.subscribe();
    await until(() => subscriber.state === SubscriptionState.Subscribed && notes.length >= 1, 'subscribed after the challenge');
    expect(srv.server.presence.subscriptions.subscriptionsTo('presence', 'sip:jspia@example.com')).to.have.length(1);

    const publisher = new Publisher(pia, SipJsUserAgent.makeURI('sip:jspia@example.com')!, 'presence', { expires: 600, contentType: 'application/pidf+xml' });
    const states: PublisherState[] = [];
    publisher.stateChange.addListener((st) => states.push(st));
    await publisher.publish(pidf('sip:jspia@example.com', 'open', 'authenticated publish'));
    await until(() => states.includes(PublisherState.Published), 'Published after the challenge');
    await until(() => notes.includes('authenticated publish'), 'NOTIFY with the published state');
    await publisher.publish(pidf('sip:jspia@example.com', 'closed', 'modified'));
    await until(() => notes.includes('modified'), 'NOTIFY with the modified state');
    await publisher.unpublish();
    await until(() => states.includes(PublisherState.Unpublished), 'Unpublished');
    await until(() => notes.at(-1) === undefined, 'NOTIFY after the publication was removed');
    await subscriber.unsubscribe();
    await until(() => srv.server.presence.subscriptions.subscriptionsTo('presence', 'sip:jspia@example.com').length === 0, 'the server to end the subscription');
  });

  it('a sip.js Publisher with a wrong password is refused, and nothing is published', async () => {
    const ben = await sipjsUa('jsben', 'wrong password');
    const publisher = new Publisher(ben, SipJsUserAgent.makeURI('sip:jsben@example.com')!, 'presence', { contentType: 'application/pidf+xml' });
    const states: PublisherState[] = [];
    publisher.stateChange.addListener((st) => states.push(st));
    await publisher.publish(pidf('sip:jsben@example.com', 'open', 'should not show'));
    // sip.js ends a Publisher whose PUBLISH was refused (the second 401: its answer was wrong).
    await until(() => states.includes(PublisherState.Terminated), 'the Publisher to end');
    expect(states).to.not.include(PublisherState.Published);
    expect(srv.server.presence.publications('sip:jsben@example.com')).to.have.length(0);
  });

  it('a sip.js user messages a UDP user, both authenticated', async () => {
    const cat = new UserAgent({ aor: 'sip:udpcat@example.com', password: PASSWORD, server: { host: '127.0.0.1', port: srv.port } });
    ours.push(cat);
    await cat.start();
    await new Registration(cat).register();
    const got: string[] = [];
    new Pager(cat).on('message', (m) => got.push(m.text));
    const ann = await sipjsUa('jsann', PASSWORD);
    let status = 0;
    await new Messager(ann, SipJsUserAgent.makeURI('sip:udpcat@example.com')!, 'authenticated hi').message({
      requestDelegate: { onAccept: (r) => (status = r.message.statusCode ?? 0), onReject: (r) => (status = r.message.statusCode ?? 0) },
    });
    await until(() => status !== 0, 'an answer to the MESSAGE');
    expect(status).to.equal(200);
    expect(got).to.deep.equal(['authenticated hi']);
  });
});

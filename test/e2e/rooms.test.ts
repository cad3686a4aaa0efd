import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SipRequest } from '../../src/sip/message.js';
import { parseCpim } from '../../src/messaging/rooms/cpim.js';
import { parseConferenceInfo, type ConferenceInfo } from '../../src/presence/conference/conference-info-document.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa, type UaProtocol } from '../support/test-ua.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { until } from '../support/wait.js';
import { WsUa } from '../interop/ws-ua.js';
import { httpBase } from '../http/http-support.js';

const IS_COMPOSING = '<?xml version="1.0" encoding="UTF-8"?>\n<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>';

describe('e2e: chat rooms over real sockets (issue 22)', function () {
  this.timeout(20_000);
  let srv: TestServer;
  let uas: TestUa[] = [];
  let n = 0;

  before(async () => {
    srv = await startTestServer({ messaging: { offlineMaxMessages: 10, offlineMaxBytes: 65536, rooms: { historySize: 2, maxMembers: 4, maxRoomsPerUser: 2, maxMessagesPerMinute: 3 } } });
  });
  after(async () => {
    await srv.stop();
  });
  afterEach(async () => {
    for (const ua of uas) await ua.close();
    uas = [];
  });

  const fresh = (base: string): string => `${base}${++n}`;
  const roomUri = (name: string): string => `sip:${name}@example.com`;

  async function member(name: string, protocol: UaProtocol = 'udp', register = true): Promise<TestUa> {
    const u = await TestUa.create({ protocol, port: srv.port, user: name, domain: 'example.com' });
    uas.push(u);
    u.autoAnswer('MESSAGE', 200);
    if (register) expect((await u.transact(registerRequest(u, { expires: 600 }))).status).to.equal(200);
    return u;
  }

  function say(from: TestUa, to: string, body: string, headers: Record<string, string> = {}, contentType = 'text/plain;charset=utf-8'): Promise<number> {
    const req = from.request('MESSAGE', to, { body, headers: { 'Content-Type': contentType, ...headers } });
    req.removeHeader('contact');
    return from.transact(req).then((r) => r.status);
  }

  /** Everything `ua` received so far, as text. */
  const received = (ua: TestUa): string => Buffer.concat(ua.raw).toString('utf8');

  /** A MESSAGE from `room` whose body includes `text`. */
  const fromRoom = (room: string, text: string) => (r: SipRequest): boolean => r.method === 'MESSAGE' && r.getHeader('from')!.includes(`<${room}>`) && r.body.toString().includes(text);

  it('three members over UDP and TCP: a message reaches the two others From the room, as CPIM or with a nick prefix, and not the sender', async () => {
    const room = roomUri(fresh('lobby'));
    const alice = await member(fresh('alice'), 'udp');
    const bob = await member(fresh('bob'), 'tcp');
    const carol = await member(fresh('carol'), 'udp');
    expect(await say(alice, room, '#create')).to.equal(200);
    expect(await say(bob, room, '#join')).to.equal(200);
    // carol's client shows message/cpim: her copies name the sender in the wrapper.
    expect(await say(carol, room, '#join', { Accept: 'message/cpim, text/plain' })).to.equal(200);
    expect(srv.server.rooms.get(room)!.members).to.deep.equal([alice.aor, bob.aor, carol.aor]);

    expect(await say(alice, room, 'hello room')).to.equal(202);
    const atBob = await bob.waitRequest(fromRoom(room, 'hello room'));
    expect(atBob.body.toString()).to.equal(`${alice.user}: hello room`);
    expect(atBob.getHeader('to')).to.include(bob.aor);
    expect(atBob.uriText).to.equal(bob.contactUri);
    const atCarol = await carol.waitRequest((r) => r.method === 'MESSAGE' && r.contentType?.essence === 'message/cpim');
    const cpim = parseCpim(atCarol.body)!;
    expect(cpim.headers.find(([h]) => h === 'From')![1]).to.equal(`"${alice.user}" <${alice.aor}>`);
    expect(cpim.headers.find(([h]) => h === 'To')![1]).to.equal(`<${room}>`);
    expect(cpim.contentType).to.equal('text/plain;charset=utf-8');
    expect(cpim.body.toString()).to.equal('hello room');
    // The sender never gets its own message back: by the time bob's answer reaches alice,
    // a copy to her (sent with bob's and carol's) would have come first.
    expect(await say(bob, room, 'hi alice')).to.equal(202);
    await alice.waitRequest(fromRoom(room, 'hi alice'));
    expect(received(alice)).to.not.include('hello room');

    // #members answers the asker with the list, its owner marked.
    expect(await say(bob, room, '#members')).to.equal(200);
    const list = await bob.waitRequest(fromRoom(room, 'Members of'));
    expect(list.body.toString()).to.equal(`Members of ${room}: ${alice.user} (owner), ${bob.user}, ${carol.user}`);
  });

  it('a member over WebSocket (RFC 7118) takes part like the others', async () => {
    const room = roomUri(fresh('web'));
    const alice = await member(fresh('alice'), 'tcp');
    const wsName = fresh('wendy');
    const wendy = await WsUa.connect(httpBase(srv.server).replace(/^http/, 'ws'), { user: wsName });
    try {
      wendy.autoAnswer('MESSAGE', 200);
      const reg = wendy.request('REGISTER', 'sip:example.com', { headers: { Expires: 600 } });
      reg.setHeader('To', `<${wendy.aor}>`);
      expect((await wendy.transact(reg)).status).to.equal(200);
      expect(await say(alice, room, '#create')).to.equal(200);
      const join = wendy.request('MESSAGE', room, { body: '#join', headers: { 'Content-Type': 'text/plain' } });
      expect((await wendy.transact(join)).status).to.equal(200);
      expect(await say(alice, room, 'hello web')).to.equal(202);
      const got = await wendy.waitRequest(fromRoom(room, 'hello web'));
      expect(got.body.toString()).to.equal(`${alice.user}: hello web`);
      const back = wendy.request('MESSAGE', room, { body: 'hi from the browser', headers: { 'Content-Type': 'text/plain' } });
      expect((await wendy.transact(back)).status).to.equal(202);
      expect((await alice.waitRequest(fromRoom(room, 'hi from the browser'))).body.toString()).to.equal(`${wsName}: hi from the browser`);
    } finally {
      await wendy.close();
    }
  });

  it('refuses non-members (403), bans, owner-only topic, full rooms and unknown body types', async () => {
    const room = roomUri(fresh('club'));
    const alice = await member(fresh('alice'));
    const bob = await member(fresh('bob'));
    const mallory = await member(fresh('mallory'));
    expect(await say(alice, room, '#create')).to.equal(200);
    expect(await say(alice, room, '#create')).to.equal(403);
    expect(await say(mallory, room, 'let me in')).to.equal(403);
    expect(await say(bob, room, '#join')).to.equal(200);
    expect(await say(bob, room, '#topic we are bob')).to.equal(403);
    expect(await say(alice, room, '#topic weekly sync')).to.equal(200);
    expect(srv.server.rooms.get(room)!.topic).to.equal('weekly sync');
    expect(await say(alice, room, '<b>hi</b>', {}, 'application/octet-stream')).to.equal(415);

    expect(await say(alice, room, `#ban ${bob.user}`)).to.equal(200);
    expect(srv.server.rooms.get(room)!.members).to.deep.equal([alice.aor]);
    expect(await say(bob, room, 'still here?')).to.equal(403);
    expect(await say(bob, room, '#join')).to.equal(403);
    expect(await say(alice, room, `#unban ${bob.user}`)).to.equal(200);
    expect(await say(bob, room, '#join')).to.equal(200);

    // maxMembers 4: the fifth is refused.
    for (let i = 0; i < 2; i++) expect(await say(await member(fresh('extra'), 'udp', false), room, '#join')).to.equal(200);
    expect(await say(mallory, room, '#join')).to.equal(403);
  });

  it('limits a member to maxMessagesPerMinute messages a minute (503 with Retry-After); typing does not count', async () => {
    const room = roomUri(fresh('rate'));
    const alice = await member(fresh('alice'));
    expect(await say(alice, room, '#create')).to.equal(200);
    for (let i = 0; i < 3; i++) expect(await say(alice, room, `m${i}`)).to.equal(202);
    expect(await say(alice, room, IS_COMPOSING, {}, 'application/im-iscomposing+xml')).to.equal(200);
    const req = alice.request('MESSAGE', room, { body: 'one too many', headers: { 'Content-Type': 'text/plain' } });
    const res = await alice.transact(req);
    expect([res.status, res.reason]).to.deep.equal([503, 'Sending Too Fast']);
    expect(Number(res.getHeader('retry-after'))).to.be.within(1, 60);
    expect(srv.server.rooms.get(room)).to.exist;
  });

  it('IRC life cycle: joining a missing room creates it, the last to leave ends it; a persistent room stays', async () => {
    const room = roomUri(fresh('adhoc'));
    const alice = await member(fresh('alice'));
    const bob = await member(fresh('bob'));
    expect(await say(alice, room, '#join')).to.equal(200);
    expect(srv.server.rooms.get(room)!.owner).to.equal(alice.aor);
    expect(await say(bob, room, '#join')).to.equal(200);
    // The owner leaves: the room passes to the member who has been there longest.
    expect(await say(alice, room, '#leave')).to.equal(200);
    expect(srv.server.rooms.get(room)!.owner).to.equal(bob.aor);
    expect(await say(bob, room, '#leave')).to.equal(200);
    expect(srv.server.rooms.isRoom(room)).to.equal(false);

    // '#join' to a registered user is a message to that user, not a new room in its place.
    expect(await say(alice, bob.aor, '#join')).to.equal(200);
    expect((await bob.waitRequest((r) => r.method === 'MESSAGE' && r.body.toString() === '#join')).getHeader('from')).to.include(alice.aor);
    expect(srv.server.rooms.isRoom(bob.aor)).to.equal(false);

    const kept = roomUri(fresh('kept'));
    expect(await say(alice, kept, '#create persistent')).to.equal(200);
    expect(await say(alice, kept, '#leave')).to.equal(200);
    expect(srv.server.rooms.get(kept)).to.deep.include({ owner: alice.aor, members: [], persistent: true });
  });

  it('an offline member gets what it missed when it registers; one who joins gets the history; typing is relayed, never stored', async () => {
    const room = roomUri(fresh('hist'));
    const alice = await member(fresh('alice'));
    const dave = await member(fresh('dave'), 'tcp', false);
    expect(await say(alice, room, '#create')).to.equal(200);
    // dave joins from a phone that has not registered: his copies wait in the offline store.
    expect(await say(dave, room, '#join')).to.equal(200);
    expect(await say(alice, room, IS_COMPOSING, {}, 'application/im-iscomposing+xml')).to.equal(200);
    expect(await say(alice, room, 'first')).to.equal(202);
    expect(await say(alice, room, 'second')).to.equal(202);
    expect(await say(alice, room, 'third')).to.equal(202);
    await until(async () => (await srv.server.messaging.storedMessages(dave.aor)).count === 3, 'three copies stored for dave');
    expect((await dave.transact(registerRequest(dave, { expires: 600 }))).status).to.equal(200);
    for (const text of ['first', 'second', 'third']) {
      expect((await dave.waitRequest(fromRoom(room, text))).body.toString()).to.equal(`${alice.user}: ${text}`);
    }
    // The typing state sent while dave was away was not kept for him.
    expect(received(dave)).to.not.include('isComposing');
    await until(async () => (await srv.server.messaging.storedMessages(dave.aor)).count === 0, 'the store emptied');

    // historySize 2: erin gets the last two, oldest first; bob, online, sees typing at once.
    const erin = await member(fresh('erin'));
    expect(await say(erin, room, '#join')).to.equal(200);
    const second = await erin.waitRequest(fromRoom(room, 'second'));
    const third = await erin.waitRequest(fromRoom(room, 'third'));
    expect(second.body.toString()).to.equal(`${alice.user}: second`);
    expect(third.body.toString()).to.equal(`${alice.user}: third`);
    // History goes oldest first, one at a time: 'first' would have come before 'second'.
    expect(received(erin)).to.not.include('first');
    expect(await say(alice, room, IS_COMPOSING, {}, 'application/im-iscomposing+xml')).to.equal(200);
    const typing = await erin.waitRequest((r) => r.method === 'MESSAGE' && r.contentType?.essence === 'application/im-iscomposing+xml');
    expect(typing.getHeader('from')).to.include(room);
  });

  it('Event: conference (RFC 4575): subscribing joins; members come and go in full then partial documents; the room\'s end ends the subscription', async () => {
    const room = roomUri(fresh('conf'));
    const alice = await member(fresh('alice'));
    const bob = await member(fresh('bob'), 'tcp');
    const carol = await member(fresh('carol'));
    bob.autoAnswer('NOTIFY', 200);
    expect(await say(alice, room, '#create')).to.equal(200);
    expect(await say(alice, room, '#topic standup')).to.equal(200);
    const callId = `${fresh('conf')}@test`;
    const notifies = (r: SipRequest): boolean => r.method === 'NOTIFY' && r.callId === callId;
    const docs: ConferenceInfo[] = [];
    const nextDoc = async (): Promise<ConferenceInfo> => {
      const n = await bob.waitRequest((r) => notifies(r) && !docs.some((d) => d.version === versionOf(r)));
      const parsed = parseConferenceInfo(n.body);
      if (!parsed.ok) throw new Error(parsed.reason);
      docs.push(parsed.document);
      return parsed.document;
    };
    const versionOf = (r: SipRequest): number | undefined => {
      const p = parseConferenceInfo(r.body);
      return p.ok ? p.document.version : undefined;
    };
    const sub = bob.request('SUBSCRIBE', room, { callId, cseq: 1, headers: { Event: 'conference', Expires: 600, Accept: 'application/conference-info+xml' } });
    expect((await bob.transact(sub)).status).to.equal(200);
    const full = await nextDoc();
    expect(full).to.deep.include({ entity: room, state: 'full', subject: 'standup' });
    expect(full.users.map((u) => [u.entity, u.roles])).to.deep.equal([
      [alice.aor, ['owner', 'participant']],
      [bob.aor, ['participant']],
    ]);
    // Bob is a member now: the room's messages reach him.
    expect(srv.server.rooms.get(room)!.members).to.include(bob.aor);
    expect(await say(alice, room, 'welcome')).to.equal(202);
    await bob.waitRequest(fromRoom(room, 'welcome'));

    expect(await say(carol, room, '#join')).to.equal(200);
    const came = await nextDoc();
    expect(came.state).to.equal('partial');
    expect(came.version).to.equal(full.version + 1);
    expect(came.users.map((u) => [u.entity, u.state])).to.deep.equal([[carol.aor, 'full']]);
    expect(await say(carol, room, '#leave')).to.equal(200);
    const left = await nextDoc();
    expect(left.users.map((u) => [u.entity, u.state])).to.deep.equal([[carol.aor, 'deleted']]);

    expect(await say(alice, room, '#destroy')).to.equal(200);
    const last = await bob.waitRequest((r) => notifies(r) && r.getHeader('subscription-state')!.startsWith('terminated'));
    expect(last.getHeader('subscription-state')).to.equal('terminated;reason=noresource');
    // A missing room has nothing to watch.
    const nothing = bob.request('SUBSCRIBE', roomUri(fresh('none')), { callId: `${fresh('x')}@test`, cseq: 1, headers: { Event: 'conference', Expires: 600 } });
    expect((await bob.transact(nothing)).status).to.equal(403);
  });
});

describe('e2e: rooms survive a restart on the embedded store', function () {
  this.timeout(60_000);
  let dir: string;
  let uas: TestUa[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sp-rooms-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const ua of uas) await ua.close();
    uas = [];
  });

  it('keeps rooms, owners, topics, members, bans and history', async () => {
    const config = { store: { enabled: true, dataDir: join(dir, 'data') } };
    const room = 'sip:durable@example.com';
    let srv = await startTestServer(config, { store: 'config' });
    try {
      const alice = await TestUa.create({ protocol: 'udp', port: srv.port, user: 'alice', domain: 'example.com' });
      const bob = await TestUa.create({ protocol: 'tcp', port: srv.port, user: 'bob', domain: 'example.com' });
      uas.push(alice, bob);
      const say = async (ua: TestUa, body: string): Promise<number> => {
        const req = ua.request('MESSAGE', room, { body, headers: { 'Content-Type': 'text/plain' } });
        return (await ua.transact(req)).status;
      };
      expect(await say(alice, '#create')).to.equal(200);
      expect(await say(alice, '#topic plans')).to.equal(200);
      expect(await say(bob, '#join')).to.equal(200);
      expect(await say(alice, '#ban sip:mallory@example.com')).to.equal(200);
      expect(await say(alice, 'before the restart')).to.equal(202);
    } finally {
      await srv.stop();
    }
    srv = await startTestServer(config, { store: 'config' });
    try {
      expect(srv.server.rooms.get(room)).to.deep.include({ owner: 'sip:alice@example.com', topic: 'plans', members: ['sip:alice@example.com', 'sip:bob@example.com'], bans: ['sip:mallory@example.com'] });
      const carol = await TestUa.create({ protocol: 'udp', port: srv.port, user: 'carol', domain: 'example.com' });
      uas.push(carol);
      carol.autoAnswer('MESSAGE', 200);
      expect((await carol.transact(registerRequest(carol, { expires: 600 }))).status).to.equal(200);
      const join = carol.request('MESSAGE', room, { body: '#join', headers: { 'Content-Type': 'text/plain' } });
      expect((await carol.transact(join)).status).to.equal(200);
      expect((await carol.waitRequest((r) => r.method === 'MESSAGE' && r.body.toString() === 'alice: before the restart')).getHeader('from')).to.include(room);
    } finally {
      await srv.stop();
    }
  });
});

import { expect } from 'chai';
import type { SipRequest } from '../../src/sip/message.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { advance, Bench, drivenPerTest, inDialog, isNotify, watch } from './presence-support.js';
import { readXml } from '../../src/presence/pidf/read-xml.js';
import { attributeValue, childElements, textContent } from '../../src/presence/pidf/xml-tree.js';

/**
 * The registration event package (RFC 3680) over real sockets: a user watches its own
 * address of record and sees its bindings come, refresh, go, expire, and drop with their
 * TCP flow; nobody else may watch them.
 */

const REGINFO = 'application/reginfo+xml';
const NS = 'urn:ietf:params:xml:ns:reginfo';

interface RegInfo {
  version: number;
  state: string;
  registration: string;
  contacts: Array<{ uri: string; state: string; event: string; id: string }>;
}

function reginfo(n: SipRequest): RegInfo {
  expect(n.getHeader('content-type')).to.equal(REGINFO);
  const r = readXml(n.body);
  if (!r.ok) throw new Error(r.reason);
  const reg = childElements(r.root, NS, 'registration')[0]!;
  return {
    version: Number(attributeValue(r.root, 'version')),
    state: attributeValue(r.root, 'state')!,
    registration: attributeValue(reg, 'state')!,
    contacts: childElements(reg, NS, 'contact').map((c) => ({
      uri: textContent(childElements(c, NS, 'uri')[0]!),
      state: attributeValue(c, 'state')!,
      event: attributeValue(c, 'event')!,
      id: attributeValue(c, 'id')!,
    })),
  };
}

const brief = (d: RegInfo) => [d.version, d.state, d.registration, d.contacts.map((c) => `${c.state}/${c.event}`)];

describe('e2e: reg event package (RFC 3680)', function () {
  this.timeout(15000);

  describe('with real time', () => {
    const b = Bench.perSuite();

    it('follows REGISTER, refresh, unregister and a dropped TCP flow; only the user may watch', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const desk = await b.ua(alice, 'tcp');
      expect((await desk.transact(registerRequest(desk, { expires: 600 }))).status).to.equal(200);
      const w = await watch(await b.ua(alice), aor, { event: 'reg' });
      const full = reginfo(w.first);
      expect(brief(full)).to.deep.equal([0, 'full', 'active', ['active/registered']]);
      expect(full.contacts[0]!.uri).to.contain(`sip:${alice}@127.0.0.1`);

      const eve = await b.ua(b.user('eve'));
      const refused = await eve.transact(eve.request('SUBSCRIBE', aor, { headers: { Event: 'reg', Expires: 600, Accept: REGINFO } }));
      expect(refused.status).to.equal(403);

      // Refresh.
      expect((await desk.transact(registerRequest(desk, { expires: 600 }))).status).to.equal(200);
      expect(brief(reginfo(await w.ua.waitRequest(isNotify(w.callId))))).to.deep.equal([1, 'partial', 'active', ['active/refreshed']]);
      // A second device.
      const phone = await b.ua(alice);
      expect((await phone.transact(registerRequest(phone, { expires: 600 }))).status).to.equal(200);
      const added = reginfo(await w.ua.waitRequest(isNotify(w.callId)));
      expect(brief(added)).to.deep.equal([2, 'partial', 'active', ['active/registered']]);
      // It unregisters.
      expect((await phone.transact(registerRequest(phone, { expires: 0 }))).status).to.equal(200);
      const gone = reginfo(await w.ua.waitRequest(isNotify(w.callId)));
      expect(brief(gone)).to.deep.equal([3, 'partial', 'active', ['terminated/unregistered']]);
      expect(gone.contacts[0]!.id).to.equal(added.contacts[0]!.id);
      // The desk phone's TCP connection drops: deactivated (it should register again).
      await desk.close();
      const dropped = reginfo(await w.ua.waitRequest(isNotify(w.callId)));
      expect(brief(dropped)).to.deep.equal([4, 'partial', 'terminated', ['terminated/deactivated']]);
      expect(dropped.contacts[0]!.id).to.equal(full.contacts[0]!.id);
      // A refresh of the subscription: the full state, with no active contact left.
      expect((await w.ua.transact(inDialog(w, 600))).status).to.equal(200);
      expect(brief(reginfo(await w.ua.waitRequest(isNotify(w.callId))))).to.deep.equal([5, 'full', 'init', []]);
    });
  });

  describe('with a driven clock', () => {
    const driven = drivenPerTest();

    it('a binding that runs out is told as expired', async () => {
      const { srv, timers, b } = await driven.start();
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const phone = await b.ua(alice);
      const w = await watch(await b.ua(alice, 'tcp'), aor, { event: 'reg', expires: 3600 });
      expect(brief(reginfo(w.first))).to.deep.equal([0, 'full', 'init', []]);
      expect((await phone.transact(registerRequest(phone, { expires: 120 }))).status).to.equal(200);
      expect(brief(reginfo(await w.ua.waitRequest(isNotify(w.callId))))).to.deep.equal([1, 'partial', 'active', ['active/registered']]);
      await advance(srv, timers, 121_000, 10_000);
      expect(brief(reginfo(await w.ua.waitRequest(isNotify(w.callId))))).to.deep.equal([2, 'partial', 'terminated', ['terminated/expired']]);
    });
  });
});

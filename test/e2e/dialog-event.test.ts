import { expect } from 'chai';
import type { Json } from '../../src/config/config.js';
import { parseDialogInfo, type DialogInfo } from '../../src/presence/dialog-info/dialog-info-document.js';
import { parseWatcherInfo } from '../../src/presence/winfo/watcherinfo-document.js';
import type { SipRequest } from '../../src/sip/message.js';
import { advance, Bench, drivenPerTest, inDialog, isNotify, network, pidf, publishReq, watch } from './presence-support.js';

/**
 * The dialog event package (RFC 4235) over real sockets: PUBLISH of dialog-info by a PBX
 * or a phone (RFC 3903), the busy lamp's full then partial NOTIFYs, the merge of several
 * publishers, expiry, the presence rules (polite-block shows nothing) and dialog.winfo.
 */

const DIALOG_INFO = 'application/dialog-info+xml';

/** A publisher's dialog-info document with the dialogs given as [id, state]. */
function dialogInfo(entity: string, dialogs: Array<[string, string]>, version = 0): string {
  return (
    '<?xml version="1.0"?>\n' +
    `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="${version}" state="full" entity="${entity}">` +
    dialogs
      .map(
        ([id, state]) =>
          `<dialog id="${id}" call-id="${id}@pbx" direction="recipient"><state>${state}</state>` +
          `<remote><identity display="Bob">sip:bob@example.com</identity><target uri="sip:bob@10.0.0.2"/></remote><unknown-ext>x</unknown-ext></dialog>`,
      )
      .join('') +
    '</dialog-info>'
  );
}

function info(n: SipRequest): DialogInfo {
  expect(n.getHeader('content-type')).to.equal(DIALOG_INFO);
  const r = parseDialogInfo(n.body);
  if (!r.ok) throw new Error(`NOTIFY body is not dialog-info: ${r.reason}`);
  return r.document;
}

const states = (d: DialogInfo): string[][] => d.dialogs.map((x) => [x.id, x.state]);

describe('e2e: dialog event package (RFC 4235)', function () {
  this.timeout(15000);

  describe('with real time', () => {
    const b = Bench.perSuite();

    it('PUBLISH → full NOTIFY, then partial ones with a version per subscription; two publishers merged', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pbx = await b.ua(alice);
      const phone = await b.ua(alice, 'tcp');
      const p1 = await pbx.transact(publishReq(pbx, aor, { event: 'dialog', contentType: DIALOG_INFO, body: dialogInfo(aor, [['d1', 'early']]), expires: 600 }));
      expect(p1.status).to.equal(200);
      const w = await watch(await b.ua(b.user('bob')), aor, { event: 'dialog' });
      const full = info(w.first);
      expect([full.version, full.state, full.entity]).to.deep.equal([0, 'full', aor]);
      expect(states(full)).to.deep.equal([['d1', 'early']]);
      // What we do not model of a publisher's XML does not reach the watcher.
      expect(w.first.body.toString()).to.not.contain('unknown-ext');
      expect(full.dialogs[0]!.remote).to.deep.equal({ identity: 'sip:bob@example.com', display: 'Bob', target: 'sip:bob@10.0.0.2' });

      // The call is answered: only that dialog, as partial state.
      const p2 = await pbx.transact(publishReq(pbx, aor, { event: 'dialog', contentType: DIALOG_INFO, etag: p1.getHeader('sip-etag')!, body: dialogInfo(aor, [['d1', 'confirmed']], 1), expires: 600 }));
      expect(p2.status).to.equal(200);
      const n2 = info(await w.ua.waitRequest(isNotify(w.callId)));
      expect([n2.version, n2.state]).to.deep.equal([1, 'partial']);
      expect(states(n2)).to.deep.equal([['d1', 'confirmed']]);

      // A second device publishes its own call: merged with the PBX's.
      const p3 = await phone.transact(publishReq(phone, aor, { event: 'dialog', contentType: DIALOG_INFO, body: dialogInfo(aor, [['d2', 'trying']]), expires: 600 }));
      expect(p3.status).to.equal(200);
      const n3 = info(await w.ua.waitRequest(isNotify(w.callId)));
      expect([n3.version, n3.state]).to.deep.equal([2, 'partial']);
      expect(states(n3)).to.deep.equal([['d2', 'trying']]);
      expect(b.srv.server.presence.dialog.dialogsOf(aor)).to.have.length(2);

      // The PBX removes its publication: its dialog is told as terminated.
      expect((await pbx.transact(publishReq(pbx, aor, { event: 'dialog', etag: p2.getHeader('sip-etag')!, expires: 0 }))).status).to.equal(200);
      const n4 = info(await w.ua.waitRequest(isNotify(w.callId)));
      expect([n4.version, n4.state]).to.deep.equal([3, 'partial']);
      expect(states(n4)).to.deep.equal([['d1', 'terminated']]);

      // A refresh of the subscription sends the full state again.
      expect((await w.ua.transact(inDialog(w, 600))).status).to.equal(200);
      const n5 = info(await w.ua.waitRequest(isNotify(w.callId)));
      expect([n5.version, n5.state]).to.deep.equal([4, 'full']);
      expect(states(n5)).to.deep.equal([['d2', 'trying']]);

      // The presence state of the user is untouched by its dialog publications.
      expect(b.srv.server.presence.composedDocument(aor).toString()).to.not.contain('d2');
    });

    it('answers PUBLISH errors for dialog-info; entity-tags do not cross packages', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pua = await b.ua(alice);
      const wrongType = await pua.transact(publishReq(pua, aor, { event: 'dialog', body: pidf(aor, 'open') }));
      expect([wrongType.status, wrongType.getHeader('accept')]).to.deep.equal([415, DIALOG_INFO]);
      const bad = await pua.transact(publishReq(pua, aor, { event: 'dialog', contentType: DIALOG_INFO, body: '<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="x"><dialog id="a"><state>ringing</state></dialog></dialog-info>' }));
      expect([bad.status, bad.reason]).to.deep.equal([400, 'Invalid dialog-info: bad state ringing']);
      // A PBX names the extension at its own host: accepted, and shown under the presentity's URI.
      const pbxEntity = await pua.transact(publishReq(pua, aor, { event: 'dialog', contentType: DIALOG_INFO, body: dialogInfo('sip:201@pbx.example.net', [['x1', 'early']]) }));
      expect(pbxEntity.status).to.equal(200);
      expect(b.srv.server.presence.dialog.dialogsOf(aor)).to.have.length(1);
      const bomb = await pua.transact(publishReq(pua, aor, { event: 'dialog', contentType: DIALOG_INFO, body: `<!DOCTYPE x [<!ENTITY a "aaaa">]>${dialogInfo(aor, [])}` }));
      expect(bomb.status).to.equal(400);
      // A presence entity-tag names no dialog publication.
      const pres = await pua.transact(publishReq(pua, aor, { body: pidf(aor, 'open') }));
      expect(pres.status).to.equal(200);
      expect((await pua.transact(publishReq(pua, aor, { event: 'dialog', etag: pres.getHeader('sip-etag')!, expires: 600 }))).status).to.equal(412);
      // SUBSCRIBE answers list every package in Allow-Events.
      const unknown = await pua.transact(pua.request('SUBSCRIBE', aor, { headers: { Event: 'ua-profile', Expires: 600 } }));
      expect(unknown.getHeader('allow-events')).to.contain('dialog').and.to.contain('dialog.winfo');
    });

    it('dialog.winfo tells the owner who watches its busy lamp', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const owner = await b.ua(alice);
      const wi = await watch(owner, aor, { event: 'dialog.winfo' });
      const bob = b.user('bob');
      await watch(await b.ua(bob), aor, { event: 'dialog' });
      const r = parseWatcherInfo((await owner.waitRequest(isNotify(wi.callId))).body);
      if (!r.ok) throw new Error(r.reason);
      expect(r.document.watcherLists[0]!.package).to.equal('dialog');
      expect(r.document.watcherLists[0]!.watchers.map((x) => [x.uri, x.status])).to.deep.equal([[`sip:${bob}@example.com`, 'active']]);
    });
  });

  describe('with confirm policy', () => {
    const b = Bench.perSuite({ presence: { defaultPolicy: 'confirm' } as Json });

    it('a polite-blocked watcher sees no dialogs; a rejected one is refused; an approved one gets them', async () => {
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pbx = await b.ua(alice);
      expect((await pbx.transact(publishReq(pbx, aor, { event: 'dialog', contentType: DIALOG_INFO, body: dialogInfo(aor, [['secret-call', 'confirmed']]) }))).status).to.equal(200);
      const eve = b.user('eve');
      const w = await watch(await b.ua(eve), aor, { event: 'dialog' });
      expect(w.first.getHeader('subscription-state')).to.match(/^pending/);
      expect(w.first.body.length).to.equal(0);
      expect(await b.srv.server.presence.politeBlock(aor, `sip:${eve}@example.com`)).to.equal(1);
      const blocked = await w.ua.waitRequest(isNotify(w.callId));
      expect(blocked.getHeader('subscription-state')).to.match(/^active/);
      expect(states(info(blocked))).to.deep.equal([]);
      for (const d of w.ua.raw) expect(d.toString()).to.not.contain('secret-call');
      expect(await b.srv.server.presence.approve(aor, `sip:${eve}@example.com`)).to.equal(1);
      const shown = info(await w.ua.waitRequest(isNotify(w.callId)));
      expect([shown.state, states(shown)]).to.deep.equal(['full', [['secret-call', 'confirmed']]]);

      const mallory = b.user('mallory');
      const m = await b.ua(mallory);
      await b.srv.server.presence.reject(aor, `sip:${mallory}@example.com`);
      const refused = await m.transact(m.request('SUBSCRIBE', aor, { headers: { Event: 'dialog', Expires: 600, Accept: DIALOG_INFO } }));
      expect(refused.status).to.equal(403);
      await network();
    });
  });

  describe('with a driven clock', () => {
    const driven = drivenPerTest();

    it('an expired publication takes its dialogs with it (partial NOTIFY: terminated)', async () => {
      const { srv, timers, b } = await driven.start();
      const alice = b.user('alice');
      const aor = `sip:${alice}@example.com`;
      const pbx = await b.ua(alice);
      const w = await watch(await b.ua(b.user('bob')), aor, { event: 'dialog', expires: 3600 });
      expect(states(info(w.first))).to.deep.equal([]);
      expect((await pbx.transact(publishReq(pbx, aor, { event: 'dialog', contentType: DIALOG_INFO, body: dialogInfo(aor, [['d1', 'confirmed']]), expires: 120 }))).status).to.equal(200);
      expect(states(info(await w.ua.waitRequest(isNotify(w.callId))))).to.deep.equal([['d1', 'confirmed']]);
      await advance(srv, timers, 121_000, 10_000);
      const gone = info(await w.ua.waitRequest(isNotify(w.callId)));
      expect([gone.state, states(gone)]).to.deep.equal(['partial', [['d1', 'terminated']]]);
    });
  });
});

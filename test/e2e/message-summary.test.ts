import { expect } from 'chai';
import type { SipRequest } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { until } from '../support/wait.js';
import { Bench, drivenPerTest, inDialog, isNotify, network, publishReq, watch, type Watch } from './presence-support.js';
import type { TestUa } from '../support/test-ua.js';

/**
 * Message waiting indication (RFC 3842) over real sockets: the count of pager messages our
 * offline store holds for a user (RFC 3458 text-message class) follows storing and
 * delivery exactly, a voicemail system's PUBLISHed summary is merged with it, and only the
 * mailbox's owner may watch it.
 */

const SUMMARY = 'application/simple-message-summary';

function messageTo(from: TestUa, to: string, body: string): SipRequest {
  const req = from.request('MESSAGE', to, { body, headers: { 'Content-Type': 'text/plain' } });
  req.removeHeader('contact');
  return req;
}

const isMessage = (r: SipRequest): boolean => r.method === 'MESSAGE';

/** The summary lines of a NOTIFY, by lower-case name. */
function lines(n: SipRequest): Record<string, string> {
  expect(n.getHeader('content-type')).to.equal(SUMMARY);
  const out: Record<string, string> = {};
  for (const l of n.body.toString().split('\r\n')) {
    const i = l.indexOf(':');
    if (i > 0) out[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return out;
}

/** The text-message count of each NOTIFY the watcher got and nobody waited for yet (0/0 when the line is absent). */
function textCounts(w: Watch): string[] {
  return w.ua.requests.filter(isNotify(w.callId)).map((n) => lines(n)['text-message'] ?? '0/0');
}

describe('e2e: message-summary event package (RFC 3842)', function () {
  this.timeout(20000);

  describe('with real time', () => {
    const b = Bench.perSuite();

    it('counts stored pager messages as they are stored and delivered; only the owner may watch', async () => {
      const bob = b.user('bob');
      const aor = `sip:${bob}@example.com`;
      const alice = await b.ua(b.user('alice'));
      const mailbox = await b.ua(bob);
      const w = await watch(mailbox, aor, { event: 'message-summary' });
      expect(lines(w.first)).to.deep.equal({ 'messages-waiting': 'no', 'message-account': aor });

      // Somebody else's mailbox is not theirs to watch.
      const eve = await b.ua(b.user('eve'));
      const refused = await eve.transact(eve.request('SUBSCRIBE', aor, { headers: { Event: 'message-summary', Expires: 600, Accept: SUMMARY } }));
      expect(refused.status).to.equal(403);

      expect((await alice.transact(messageTo(alice, aor, 'one'))).status).to.equal(202);
      const n1 = lines(await w.ua.waitRequest(isNotify(w.callId)));
      expect([n1['messages-waiting'], n1['text-message']]).to.deep.equal(['yes', '1/0']);
      expect((await alice.transact(messageTo(alice, aor, 'two'))).status).to.equal(202);
      const n2 = lines(await w.ua.waitRequest(isNotify(w.callId)));
      expect([n2['messages-waiting'], n2['text-message']]).to.deep.equal(['yes', '2/0']);

      // Bob's phone registers: both are delivered, and the lamp goes out.
      const phone = await b.ua(bob, 'tcp');
      phone.autoAnswer('MESSAGE', 200);
      expect((await phone.transact(registerRequest(phone, { expires: 600 }))).status).to.equal(200);
      await phone.waitRequest(isMessage);
      await until(async () => (await b.srv.server.messaging.storedMessages(aor)).count === 0, 'the stored messages to be delivered');
      await until(async () => textCounts(w).at(-1) === '0/0', 'the last NOTIFY to show no message');
      // On the way down from 2: never up again, never below zero, ending at none.
      const counts = textCounts(w).map((c) => Number(c.split('/')[0]));
      expect(counts).to.deep.equal([...counts].sort((x, y) => y - x));
      expect(counts.every((c) => c < 2)).to.equal(true);
      const last = lines(w.ua.requests.filter(isNotify(w.callId)).at(-1)!);
      expect(last['messages-waiting']).to.equal('no');
    });

    it('merges a voicemail system\'s PUBLISHed summary with the stored messages', async () => {
      const bob = b.user('bob');
      const aor = `sip:${bob}@example.com`;
      const alice = await b.ua(b.user('alice'));
      const voicemail = await b.ua(bob);
      const w = await watch(await b.ua(bob), aor, { event: 'message-summary' });
      const body = 'Messages-Waiting: yes\r\nMessage-Account: sip:voicemail@example.com\r\nVoice-Message: 2/8 (0/2)\r\n';
      const pub = await voicemail.transact(publishReq(voicemail, aor, { event: 'message-summary', contentType: SUMMARY, body, expires: 600 }));
      expect(pub.status).to.equal(200);
      const n1 = lines(await w.ua.waitRequest(isNotify(w.callId)));
      expect(n1).to.deep.equal({ 'messages-waiting': 'yes', 'message-account': aor, 'voice-message': '2/8 (0/2)' });
      expect((await alice.transact(messageTo(alice, aor, 'call me'))).status).to.equal(202);
      const n2 = lines(await w.ua.waitRequest(isNotify(w.callId)));
      expect([n2['voice-message'], n2['text-message']]).to.deep.equal(['2/8 (0/2)', '1/0']);
      // The voicemail is listened to: its summary says so; our stored message still waits.
      const etag = pub.getHeader('sip-etag')!;
      const heard = await voicemail.transact(publishReq(voicemail, aor, { event: 'message-summary', contentType: SUMMARY, etag, body: 'Messages-Waiting: no\r\nVoice-Message: 0/10\r\n', expires: 600 }));
      expect(heard.status).to.equal(200);
      const n3 = lines(await w.ua.waitRequest(isNotify(w.callId)));
      expect([n3['messages-waiting'], n3['voice-message'], n3['text-message']]).to.deep.equal(['yes', '0/10', '1/0']);
      // A summary that does not parse is refused with the reason.
      const bad = await voicemail.transact(publishReq(voicemail, aor, { event: 'message-summary', contentType: SUMMARY, body: 'Voice-Message: lots\r\n' }));
      expect([bad.status, bad.reason]).to.deep.equal([400, 'Invalid message-summary: bad counts for voice-message']);
      // Unsubscribe: the final NOTIFY still tells the state (RFC 6665 §4.4.3 as for presence).
      expect((await w.ua.transact(inDialog(w, 0))).status).to.equal(200);
      const final = await w.ua.waitRequest(isNotify(w.callId));
      expect(final.getHeader('subscription-state')).to.equal('terminated;reason=timeout');
      expect(lines(final)['text-message']).to.equal('1/0');
    });
  });

  describe('with a driven clock', () => {
    const driven = drivenPerTest();

    it('a message withdrawn after a late 200 is counted once, and not again at the next registration', async () => {
      const { srv, timers, b } = await driven.start();
      const alice = await b.ua(b.user('alice'));
      expect((await alice.transact(registerRequest(alice, { expires: 600 }))).status).to.equal(200);
      const bob = b.user('bob');
      const aor = `sip:${bob}@example.com`;
      const slow = await b.ua(bob);
      expect((await slow.transact(registerRequest(slow, { expires: 600 }))).status).to.equal(200);
      const w = await watch(await b.ua(bob, 'tcp'), aor, { event: 'message-summary', expires: 3600 });
      const answer = alice.transact(messageTo(alice, aor, 'slow phone'), 5000);
      const got = await slow.waitRequest(isMessage);
      timers.advance(30_000);
      expect((await answer).status).to.equal(202);
      expect(lines(await w.ua.waitRequest(isNotify(w.callId)))['text-message']).to.equal('1/0');
      // The phone answers late: it had the message; the stored copy is withdrawn.
      slow.send(createResponse(got, 200));
      const n = lines(await w.ua.waitRequest(isNotify(w.callId)));
      expect([n['messages-waiting'], n['text-message']]).to.deep.equal(['no', undefined]);
      // The phone registers again: nothing left to deliver, nothing counted.
      slow.autoAnswer('MESSAGE', 200);
      expect((await slow.transact(registerRequest(slow, { expires: 600 }))).status).to.equal(200);
      await network();
      expect(textCounts(w)).to.deep.equal([]);
      expect((await srv.server.messaging.storedMessages(aor)).count).to.equal(0);
    });
  });
});

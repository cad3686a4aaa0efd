import { expect } from 'chai';
import type { SipRequest } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { ManualTimers } from '../../src/util/timers.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { until } from '../support/wait.js';
import type { LocationService } from '../../src/registrar/location-service.js';

/**
 * A UDP phone that vanished without unregistering (crash, lost network) keeps a binding
 * until it expires. A MESSAGE to it must not leave the sender waiting past its own Timer F
 * (64*T1, RFC 3261 §17.1.2.2) and then lose the message: the server answers in time and
 * keeps the message for the phone's next registration.
 */
describe('e2e: MESSAGE to a contact that stays silent (driven clock)', () => {
  let srv: TestServer;
  let timers: ManualTimers;
  let uas: TestUa[] = [];
  let n = 0;

  before(async () => {
    timers = new ManualTimers();
    srv = await startTestServer({}, { timers });
  });
  after(async () => {
    await srv.stop();
  });
  afterEach(async () => {
    for (const ua of uas) await ua.close();
    uas = [];
  });

  async function registered(user: string): Promise<TestUa> {
    const u = await TestUa.create({ protocol: 'udp', port: srv.port, user, domain: 'example.com' });
    uas.push(u);
    expect((await u.transact(registerRequest(u, { expires: 600 }))).status).to.equal(200);
    return u;
  }

  function messageTo(from: TestUa, to: string, body: string): SipRequest {
    const req = from.request('MESSAGE', to, { body, headers: { 'Content-Type': 'text/plain' } });
    req.removeHeader('contact');
    return req;
  }

  const isMessage = (r: SipRequest): boolean => r.method === 'MESSAGE';

  it('answers 202 before the sender\'s Timer F, stores the message and delivers it when the phone registers again', async () => {
    const alice = await registered(`alice${++n}`);
    const name = `bob${++n}`;
    const aor = `sip:${name}@example.com`;
    const gone = await registered(name);
    const answer = alice.transact(messageTo(alice, aor, 'are you still there?'), 5000);
    await gone.waitRequest(isMessage);
    // Retransmissions (Timer E) go to the silent phone; at 30 s the server answers without it.
    timers.advance(29_000);
    expect((await srv.server.messaging.storedMessages(aor)).count).to.equal(0);
    timers.advance(1_000);
    const res = await answer;
    expect(res.status).to.equal(202);
    expect(res.reason).to.equal('Accepted');
    expect((await srv.server.messaging.storedMessages(aor)).count).to.equal(1);
    expect((srv.server.location as LocationService).lookup(aor)).to.have.length(0);

    // The next message does not wait for the silent contact at all.
    expect((await alice.transact(messageTo(alice, aor, 'second'))).status).to.equal(202);

    // The phone is back (a new socket, a new registration): both arrive, oldest first.
    const back = await TestUa.create({ protocol: 'udp', port: srv.port, user: name, domain: 'example.com' });
    uas.push(back);
    back.autoAnswer('MESSAGE', 200);
    expect((await back.transact(registerRequest(back, { expires: 600 }))).status).to.equal(200);
    const first = await back.waitRequest(isMessage);
    expect(first.body.toString()).to.equal('are you still there?');
    expect((await back.waitRequest(isMessage)).body.toString()).to.equal('second');
    await until(async () => (await srv.server.messaging.storedMessages(aor)).count === 0, 'the stored messages to be deleted');
  });

  it('withdraws the stored copy when the silent phone answers 200 late, before its transaction gives up', async () => {
    const alice = await registered(`alice${++n}`);
    const name = `bob${++n}`;
    const aor = `sip:${name}@example.com`;
    const slow = await registered(name);
    const answer = alice.transact(messageTo(alice, aor, 'slow phone'), 5000);
    const got = await slow.waitRequest(isMessage);
    timers.advance(30_000);
    expect((await answer).status).to.equal(202);
    expect((await srv.server.messaging.storedMessages(aor)).count).to.equal(1);
    // Within the server's Timer F (32 s) the phone finally answers: it has the message.
    slow.send(createResponse(got, 200));
    await until(async () => (await srv.server.messaging.storedMessages(aor)).count === 0, 'the stored copy to be withdrawn');
  });
});

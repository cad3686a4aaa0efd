import { expect } from 'chai';
import { freePort } from '../support/server-process.js';
import { TestUa } from '../support/test-ua.js';
import { until } from '../support/wait.js';
import { baresipSandbox } from './baresip-phone.js';

/**
 * baresip as a member of a chat room (issue 22): a phone that shows text/plain only. It
 * registers, is a member of the room, and the room's copy of alice's message reaches it From
 * the room with the `alice: ` prefix; baresip's menu module shows it and answers 200.
 */
describe('interop: baresip as a chat room member (nick: text)', function () {
  this.timeout(30_000);
  const sandbox = baresipSandbox(this, 'baresip room interop');

  it('gets the room message as text/plain "alice: ..." From the room and answers 200', async () => {
    const srv = sandbox.srv();
    const room = 'sip:phones@example.com';
    const local = await freePort();
    const phone = sandbox.startPhone(
      ['module stdio.so', 'module_app account.so', 'module_app menu.so', `sip_listen 127.0.0.1:${local}`],
      `<sip:bob@example.com>;outbound="sip:127.0.0.1:${srv.port};transport=udp";regint=600\n`,
      ['-t', '25'],
    );
    const out = (): string => phone.out();
    const alice = await TestUa.create({ port: srv.port, user: 'alice', domain: 'example.com' });
    try {
      await until(async () => (await srv.server.location.lookup('sip:bob@example.com')).length > 0, 'baresip registered', 15_000);
      expect((await srv.server.rooms.create(room, 'sip:alice@example.com')).ok).to.equal(true);
      expect((await srv.server.rooms.join(room, 'sip:bob@example.com')).ok).to.equal(true);
      const msg = alice.request('MESSAGE', room, { headers: { 'Content-Type': 'text/plain;charset=utf-8' }, body: 'hello from the room' });
      msg.removeHeader('contact');
      expect((await alice.transact(msg)).status).to.equal(202);
      await until(() => srv.server.rooms.outcomes.delivered > 0 || srv.server.rooms.outcomes.refused > 0 || srv.server.rooms.outcomes.stored > 0, 'the copy answered', 10_000);
      expect(srv.server.rooms.outcomes, out().slice(-4000)).to.deep.include({ delivered: 1, refused: 0 });
      // baresip answered 200 before its trace of the request reached our pipe, perhaps.
      await until(() => /MESSAGE sip:bob-\S+@127\.0\.0\.1:\d+ SIP\/2\.0/.test(out()), 'the MESSAGE in the phone\'s trace', 5000);
      // What the phone shows: the room, and the text with alice's nick.
      await until(() => out().includes('sip:phones@example.com: "alice: hello from the room"'), 'baresip showed the message', 5000);
    } finally {
      await alice.close();
      await phone.stop();
    }
  });
});

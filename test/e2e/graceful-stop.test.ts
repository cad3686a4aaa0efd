import { expect } from 'chai';
import type { SipRequest } from '../../src/sip/message.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { startTestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';

/** The graceful stop: stop accepting, finish what is in flight, then close. */
describe('e2e: graceful stop', function () {
  this.timeout(15_000);

  it('refuses new requests with 503 while a MESSAGE in flight is still answered, then stops', async () => {
    const srv = await startTestServer({ sip: { drainTimeoutMs: 5000 } });
    const alice = await TestUa.create({ port: srv.port, user: 'alice' });
    const bob = await TestUa.create({ port: srv.port, user: 'bob' });
    const carol = await TestUa.create({ port: srv.port, user: 'carol' });
    try {
      expect((await bob.transact(registerRequest(bob, { expires: 600 }))).status).to.equal(200);
      // bob holds the MESSAGE unanswered until the stop has begun.
      const arrived = bob.waitRequest((r) => r.method === 'MESSAGE');
      const sent = alice.transact(alice.request('MESSAGE', bob.aor, { headers: { 'Content-Type': 'text/plain' }, body: 'in flight' }), 10_000);
      const msg: SipRequest = await arrived;

      let stopped = false;
      const stopping = srv.stop().then(() => (stopped = true));
      const refused = await carol.transact(carol.request('OPTIONS', 'sip:example.com'));
      expect(refused.status).to.equal(503);
      expect(refused.getHeader('retry-after')).to.equal('5');
      expect(stopped).to.equal(false);

      bob.send(bob.respond(msg, 200));
      expect((await sent).status).to.equal(200);
      await stopping;
      expect(stopped).to.equal(true);
    } finally {
      for (const u of [alice, bob, carol]) await u.close();
      await srv.stop();
    }
  });
});

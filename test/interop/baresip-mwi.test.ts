import { expect } from 'chai';
import { freePort } from '../support/server-process.js';
import { TestUa } from '../support/test-ua.js';
import { until } from '../support/wait.js';
import { baresipSandbox } from './baresip-phone.js';

/**
 * baresip's `mwi` module as a message-summary watcher (RFC 3842): it registers, subscribes to
 * its own account's message-summary, and the NOTIFY it gets (seen in its SIP trace) says how
 * many messages wait for it.
 */
describe('interop: baresip mwi module watches message-summary', function () {
  this.timeout(30_000);
  const sandbox = baresipSandbox(this, 'baresip mwi interop');

  it('sees Messages-Waiting: yes with the stored message count', async () => {
    const srv = sandbox.srv();
    // A message waits for bob before his phone comes up.
    const alice = await TestUa.create({ port: srv.port, user: 'alice', domain: 'example.com' });
    const msg = alice.request('MESSAGE', 'sip:bob@example.com', { headers: { 'Content-Type': 'text/plain' }, body: 'call me back' });
    msg.removeHeader('contact');
    expect((await alice.transact(msg)).status).to.equal(202);
    await alice.close();

    const local = await freePort();
    // baresip 1.0's mwi module subscribes again, for ever, when its account registered before
    // the module's 1 ms start timer ran (its timer walks the list it appends to): a phone that
    // registers at start loops when the server answers fast, and grew to 21 GB here once. So
    // the phone starts without an account and gets one from its menu (uanew) once it is up.
    const phone = sandbox.startPhone(['module stdio.so', 'module_app account.so', 'module_app menu.so', 'module_app mwi.so', `sip_listen 127.0.0.1:${local}`], '');
    const seen = (): boolean => /Text-Message: 1\/0/.test(phone.out());
    try {
      await until(() => /baresip is ready/.test(phone.out()), 'baresip up', 10_000, 20);
      phone.child.stdin!.write(`/uanew <sip:bob@example.com>;outbound="sip:127.0.0.1:${srv.port};transport=udp";regint=600\n`);
      // Stopped once the NOTIFY is seen, or after 20 s.
      await until(seen, 'the message-summary NOTIFY in the trace', 20_000, 20).catch(() => undefined);
    } finally {
      await phone.stop();
    }
    const out = phone.out();
    expect(out.match(/mwi: subscribing/g) ?? [], out.slice(-4000)).to.have.length(1);
    expect(out, out.slice(-4000)).to.match(/SUBSCRIBE sip:bob@example\.com/);
    expect(out, out.slice(-4000)).to.match(/Messages-Waiting: yes/);
    expect(out, out.slice(-4000)).to.match(/Text-Message: 1\/0/);
  });
});

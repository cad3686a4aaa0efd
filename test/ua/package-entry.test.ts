import { expect } from 'chai';
import { Pager, PresenceUserAgent, Registration, UserAgent, WatcherUserAgent, type PresenceUpdate } from '../../src/index.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** The README's library sample, run as written, from the package's main entry. */
describe('ua: the client roles from the package entry (README "As a library")', function () {
  this.timeout(10_000);
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer();
  });
  after(async () => {
    await srv.stop();
  });

  it('publishes, watches, registers and messages over TCP', async () => {
    const bob = new UserAgent({ aor: 'sip:bob@example.com', server: { host: '127.0.0.1', port: srv.port } });
    await bob.start();
    const bobPua = new PresenceUserAgent(bob);
    await bobPua.publish({ basic: 'open', note: 'here' });

    const ua = new UserAgent({ aor: 'sip:alice@example.com', password: 'secret', server: { host: '127.0.0.1', port: srv.port, transport: 'tcp' } });
    await ua.start();
    try {
      const pua = new PresenceUserAgent(ua);
      await pua.publish({ basic: 'open', note: 'in a meeting', activities: ['meeting'] });

      const watcher = new WatcherUserAgent(ua);
      const seen = new Promise<PresenceUpdate>((resolve) => watcher.on('presence', (u) => u.summary?.note === 'here' && resolve(u)));
      await watcher.watch('bob');
      expect((await seen).summary?.basic).to.equal('open');

      await new Registration(ua).register();
      const pager = new Pager(ua);
      const got = new Promise<string>((resolve) => pager.on('message', (m) => resolve(`${m.from}: ${m.text}`)));
      expect(await new Pager(bob).send('alice', 'hi alice')).to.deep.include({ status: 200 });
      expect(await got).to.equal('sip:bob@example.com: hi alice');
      expect(await pager.send('carol', 'hi')).to.deep.equal({ status: 202, reason: 'Accepted', stored: true });

      await watcher.close();
      await pua.close();
      await bobPua.close();
    } finally {
      await ua.close();
      await bob.close();
    }
  });
});

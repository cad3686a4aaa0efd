import { expect } from 'chai';
import { parseMultipart } from '../../src/lists/multipart.js';
import { flattenEntries, parseResourceLists } from '../../src/lists/resource-lists.js';
import type { SipRequest } from '../../src/sip/message.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa, type UaProtocol } from '../support/test-ua.js';
import { registerRequest } from '../registrar/ua-helpers.js';
import { until } from '../support/wait.js';
import { httpBase } from '../http/http-support.js';

const SERVICE = 'sip:uri-list@example.com';

/** RFC 5365 §4: the message and its recipient list in one multipart/mixed body. */
function listMessage(text: string, entries: ReadonlyArray<{ uri: string; cc?: 'to' | 'cc' | 'bcc'; anonymize?: boolean; name?: string }>): { contentType: string; body: string } {
  const items = entries
    .map((e) => `<entry uri="${e.uri}"${e.cc ? ` cp:copyControl="${e.cc}"` : ''}${e.anonymize ? ' cp:anonymize="true"' : ''}>${e.name ? `<display-name>${e.name}</display-name>` : ''}</entry>`)
    .join('');
  const list =
    '<?xml version="1.0" encoding="UTF-8"?>\r\n<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:copycontrol"><list>' + items + '</list></resource-lists>';
  const body =
    '--b0undary\r\nContent-Type: text/plain;charset=utf-8\r\n\r\n' +
    text +
    '\r\n--b0undary\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n' +
    list +
    '\r\n--b0undary--\r\n';
  return { contentType: 'multipart/mixed;boundary="b0undary"', body };
}

describe('e2e: multiple-recipient MESSAGE (RFC 5365) over real sockets', function () {
  this.timeout(20_000);
  let srv: TestServer;
  let uas: TestUa[] = [];
  let n = 0;

  before(async () => {
    srv = await startTestServer({ messaging: { offlineMaxMessages: 10, offlineMaxBytes: 65536, uriList: { maxRecipients: 5 } } });
  });
  after(async () => {
    await srv.stop();
  });
  afterEach(async () => {
    for (const ua of uas) await ua.close();
    uas = [];
  });

  const fresh = (base: string): string => `${base}${++n}`;

  async function user(name: string, protocol: UaProtocol = 'udp', register = true): Promise<TestUa> {
    const u = await TestUa.create({ protocol, port: srv.port, user: name, domain: 'example.com' });
    uas.push(u);
    u.autoAnswer('MESSAGE', 200);
    if (register) expect((await u.transact(registerRequest(u, { expires: 600 }))).status).to.equal(200);
    return u;
  }

  async function send(from: TestUa, m: { contentType: string; body: string }, headers: Record<string, string> = { Require: 'recipient-list-message' }): Promise<number> {
    const req = from.request('MESSAGE', SERVICE, { body: m.body, headers: { 'Content-Type': m.contentType, ...headers } });
    req.removeHeader('contact');
    return (await from.transact(req)).status;
  }

  /** The message text and the recipient list of a copy. */
  function readCopy(r: SipRequest): { text: string; list?: Array<{ uri: string; copyControl?: string }> } {
    if (r.contentType?.essence !== 'multipart/mixed') return { text: r.body.toString() };
    const parts = parseMultipart(r.getHeader('content-type')!, r.body);
    if (!parts.ok) throw new Error(parts.reason);
    const [message, list] = parts.parts;
    expect(list!.headers.get('content-disposition')).to.match(/^recipient-list-history/);
    const doc = parseResourceLists(list!.body);
    if (!doc.ok) throw new Error(doc.reason);
    return { text: message!.body.toString(), list: flattenEntries(doc.document).entries.map((e) => ({ uri: e.uri, ...(e.copyControl ? { copyControl: e.copyControl } : {}) })) };
  }

  it('gives each recipient its own copy From the sender, with the list minus the bcc entries; 202 to the sender', async () => {
    const alice = await user(fresh('alice'));
    const bob = await user(fresh('bob'), 'tcp');
    const carol = await user(fresh('carol'));
    const dave = await user(fresh('dave'));
    const m = listMessage('team news', [{ uri: bob.aor }, { uri: carol.aor, cc: 'cc' }, { uri: dave.aor, cc: 'bcc' }]);
    expect(await send(alice, m)).to.equal(202);
    const visible = [{ uri: bob.aor, copyControl: 'to' }, { uri: carol.aor, copyControl: 'cc' }];
    for (const ua of [bob, carol, dave]) {
      const got = await ua.waitRequest((r) => r.method === 'MESSAGE');
      expect(got.from.uri.raw).to.equal(alice.aor);
      expect(got.to.uri.raw).to.equal(ua.aor);
      const copy = readCopy(got);
      expect(copy.text).to.equal('team news');
      // RFC 5365 §4: no one, not even dave himself, learns of the bcc recipient.
      expect(copy.list).to.deep.equal(visible);
      expect(got.body.toString()).to.not.include(`${dave.user}@`);
    }
    await until(() => srv.server.uriList.outcomes.delivered >= 3, 'three copies counted');
    // The outcomes are on /metrics.
    const metrics = await (await fetch(`${httpBase(srv.server)}/metrics`)).text();
    expect(metrics).to.match(/^simple_presence_uri_list_copies_total\{outcome="delivered"\} [3-9]/m);
  });

  it('stores the copy of an offline recipient; an anonymized one is shown as anonymous; foreign ones are not sent', async () => {
    const alice = await user(fresh('alice'));
    const bob = await user(fresh('bob'));
    const erin = await user(fresh('erin'), 'udp', false);
    const before = { ...srv.server.uriList.outcomes };
    const m = listMessage('see you', [{ uri: bob.aor }, { uri: erin.aor, anonymize: true }, { uri: 'sip:zed@elsewhere.org' }]);
    expect(await send(alice, m)).to.equal(202);
    const got = readCopy(await bob.waitRequest((r) => r.method === 'MESSAGE'));
    expect(got.list).to.deep.equal([{ uri: bob.aor, copyControl: 'to' }, { uri: 'sip:anonymous@anonymous.invalid', copyControl: 'to' }, { uri: 'sip:zed@elsewhere.org', copyControl: 'to' }]);
    await until(async () => (await srv.server.messaging.storedMessages(erin.aor)).count === 1, 'erin\'s copy stored');
    await until(() => srv.server.uriList.outcomes['not-ours'] === before['not-ours'] + 1, 'the foreign recipient counted');
    expect((await erin.transact(registerRequest(erin, { expires: 600 }))).status).to.equal(200);
    expect(readCopy(await erin.waitRequest((r) => r.method === 'MESSAGE')).text).to.equal('see you');
  });

  it('refuses what is not a URI-list MESSAGE: no Require (421), not multipart (415), no list (400), too many (413); the tag to a user (420)', async () => {
    const alice = await user(fresh('alice'));
    const bob = await user(fresh('bob'));
    const m = listMessage('x', [{ uri: bob.aor }]);
    expect(await send(alice, m, {})).to.equal(421);
    expect(await send(alice, { contentType: 'text/plain', body: 'hi' })).to.equal(415);
    expect(await send(alice, { contentType: 'multipart/mixed;boundary="b"', body: '--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n' })).to.equal(400);
    const six = Array.from({ length: 6 }, (_, i) => ({ uri: `sip:u${i}@example.com` }));
    expect(await send(alice, listMessage('x', six))).to.equal(413);
    const toBob = alice.request('MESSAGE', bob.aor, { body: m.body, headers: { 'Content-Type': m.contentType, Require: 'recipient-list-message' } });
    expect((await alice.transact(toBob)).status).to.equal(420);
  });
});

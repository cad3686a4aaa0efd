import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { openStore, type Store } from '../../src/store/index.js';
import { call, httpBase, TOKEN } from '../http/http-support.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { TestUa } from '../support/test-ua.js';
import { authorization, parseChallenge } from '../auth/digest-client.js';
import { ROOT, xcap } from './xcap-client.js';

const PIDF = 'application/pidf+xml';
const CP = 'urn:ietf:params:xml:ns:common-policy';
const PR = 'urn:ietf:params:xml:ns:pres-rules';

function ruleset(rules: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<cp:ruleset xmlns:cp="${CP}" xmlns:pr="${PR}">${rules}</cp:ruleset>`;
}

function rule(id: string, who: string, action: string, transformations = '<pr:provide-services><pr:all-services/></pr:provide-services><pr:provide-persons><pr:all-persons/></pr:provide-persons><pr:provide-devices><pr:all-devices/></pr:provide-devices><pr:provide-all-attributes/>'): string {
  return `<cp:rule id="${id}"><cp:conditions><cp:identity><cp:one id="${who}"/></cp:identity></cp:conditions><cp:actions><pr:sub-handling>${action}</pr:sub-handling></cp:actions><cp:transformations>${transformations}</cp:transformations></cp:rule>`;
}

describe('xcap: end to end over HTTP with digest and SIP', function () {
  this.timeout(20000);
  let store: Store;
  let srv: TestServer;
  let base: string;

  before(async () => {
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ admin: { token: TOKEN }, presence: { defaultPolicy: 'confirm' } }, { store });
    base = httpBase(srv.server);
    for (const username of ['alice', 'bob', 'carol', 'dave']) {
      expect((await call(base, 'POST', '/api/users', { body: { username, password: `${username}-pass` } })).status).to.equal(201);
    }
  });
  after(async () => {
    await srv.stop();
    await store.close();
  });

  describe('authentication and the trees', () => {
    it('challenges with SHA-256 and MD5 digest; both HA1s of the SIP account log in', async () => {
      const none = await fetch(`${base}${ROOT}/xcap-caps/global/index`);
      expect(none.status).to.equal(401);
      const offered = none.headers.get('www-authenticate')!;
      expect(offered).to.match(/^Digest realm="example.com".*algorithm=SHA-256.*Digest realm="example.com".*algorithm=MD5/);
      for (const algorithm of ['SHA-256', 'MD5'] as const) {
        const r = await xcap(base, 'GET', '/xcap-caps/global/index', { user: 'alice', algorithm });
        expect(r.status, algorithm).to.equal(200);
      }
      const wrong = await xcap(base, 'GET', '/xcap-caps/global/index', { user: 'alice', password: 'guess' });
      expect(wrong.status).to.equal(401);
    });

    it('xcap-caps lists the auids and namespaces served, read-only', async () => {
      const r = await xcap(base, 'GET', '/xcap-caps/global/index', { user: 'alice' });
      expect(r.headers.get('content-type')).to.equal('application/xcap-caps+xml');
      for (const auid of ['xcap-caps', 'pres-rules', 'org.openmobilealliance.pres-rules', 'pidf-manipulation', 'org.openmobilealliance.xcap-directory']) expect(r.text).to.contain(`<auid>${auid}</auid>`);
      expect(r.text).to.contain(`<namespace>${CP}</namespace>`);
      expect((await xcap(base, 'PUT', '/xcap-caps/global/index', { token: TOKEN, body: r.text, type: 'application/xcap-caps+xml' })).status).to.equal(405);
    });

    it('a user reaches only its own documents; the admin token reaches all', async () => {
      expect((await xcap(base, 'GET', '/pres-rules/users/sip:bob@example.com/index', { user: 'alice' })).status).to.equal(403);
      expect((await xcap(base, 'GET', '/pres-rules/users/sip:nobody@elsewhere.org/index', { user: 'alice' })).status).to.equal(404);
      expect((await xcap(base, 'GET', '/pres-rules/users/sip:bob@example.com/index', { token: TOKEN })).status).to.equal(404);
      expect((await xcap(base, 'GET', '/pres-rules/users/sip:bob@example.com/index', { token: 'wrong-token-0123456789' })).status).to.equal(401);
    });

    it('answers path traversal, unknown usages and malformed selectors with 404 and 400', async () => {
      expect((await xcap(base, 'GET', '/pidf-manipulation/users/sip:alice@example.com/%2e%2e/index', { user: 'alice' })).status).to.equal(404);
      expect((await xcap(base, 'GET', '/nonesuch/users/sip:alice@example.com/index', { user: 'alice' })).status).to.equal(404);
      expect((await xcap(base, 'GET', '/pidf-manipulation/users/sip:alice@example.com/', { user: 'alice' })).status).to.equal(404);
      for (const sel of ['/~~/presence[', '/~~/presence/tuple[@id=%22x]', '/~~/presence/@id/tuple', '/~~/p:presence', '/~~/presence/tuple[0]']) {
        expect((await xcap(base, 'GET', `/pidf-manipulation/users/sip:alice@example.com/index${sel}`, { user: 'alice' })).status, sel).to.equal(400);
      }
    });
  });

  describe('pres-rules: one source of truth with the presence rules', () => {
    it('a PUT allowing a pending watcher activates it with the transformation; a PUT blocking it terminates it; the CLI-side rules show in the document', async () => {
      const carol = await TestUa.create({ port: srv.port, user: 'carol' });
      const dave = await TestUa.create({ port: srv.port, user: 'dave' });
      try {
        const body = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:carol@example.com"><tuple id="c"><status><basic>open</basic></status><note>at lunch</note></tuple></presence>`;
        expect((await carol.transact(carol.request('PUBLISH', 'sip:carol@example.com', { headers: { Event: 'presence', Expires: 600, 'Content-Type': PIDF }, body }))).status).to.equal(200);
        dave.autoAnswer('NOTIFY', 200);
        const callId = 'xcap-approve@test';
        const pending = dave.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId);
        expect((await dave.transact(dave.request('SUBSCRIBE', 'sip:carol@example.com', { callId, headers: { Event: 'presence', Expires: 600, Accept: PIDF } }))).status).to.be.oneOf([200, 202]);
        expect((await pending).getHeader('subscription-state')).to.match(/^pending/);

        // Allow dave, notes withheld (no provide-note nor provide-all-attributes).
        const doc = ruleset(rule('friends', 'sip:dave@example.com', 'allow', '<pr:provide-services><pr:all-services/></pr:provide-services><pr:provide-persons><pr:all-persons/></pr:provide-persons><pr:provide-devices><pr:all-devices/></pr:provide-devices>'));
        const active = dave.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && /^active/.test(r.getHeader('subscription-state') ?? ''));
        const put = await xcap(base, 'PUT', '/pres-rules/users/sip:carol@example.com/index', { user: 'carol', body: doc, type: 'application/auth-policy+xml' });
        expect(put.status).to.equal(201);
        const etag = put.headers.get('etag')!;
        expect(etag).to.match(/^"[A-Za-z0-9_-]+"$/);
        const shown = (await active).body.toString();
        expect(shown).to.contain('<basic>open</basic>');
        expect(shown).not.to.contain('at lunch');

        // The same rules through the admin API (the CLI's path) and back through XCAP.
        const rules = await call(base, 'GET', '/api/users/carol/rules');
        expect(rules.json).to.deep.equal([{ presentity: 'sip:carol@example.com', watcher: 'sip:dave@example.com', action: 'allow', transformations: { hideNotes: true, hideDevices: false, basicOnly: false } }]);
        const get = await xcap(base, 'GET', '/pres-rules/users/sip:carol@example.com/index', { user: 'carol' });
        expect(get.text).to.equal(doc);
        expect(get.headers.get('etag')).to.equal(etag);
        // The OMA auid is the same rule set, rendered.
        const oma = await xcap(base, 'GET', '/org.openmobilealliance.pres-rules/users/sip:carol@example.com/pres-rules', { user: 'carol' });
        expect(oma.status).to.equal(200);
        expect(oma.text).to.contain('<cp:one id="sip:dave@example.com"/>');

        // A PUT on an old entity-tag loses (412); on the current one the block terminates dave.
        expect((await call(base, 'PUT', '/api/users/carol/rules', { body: { watcher: '*@example.com', action: 'polite-block' } })).status).to.equal(200);
        const rendered = await xcap(base, 'GET', '/pres-rules/users/sip:carol@example.com/index', { user: 'carol' });
        expect(rendered.text).to.contain('<cp:many domain="example.com"><cp:except id="sip:dave@example.com"/></cp:many>');
        expect(rendered.headers.get('etag')).not.to.equal(etag);
        const stale = await xcap(base, 'PUT', '/pres-rules/users/sip:carol@example.com/index', { user: 'carol', body: ruleset(rule('x', 'sip:dave@example.com', 'block')), type: 'application/auth-policy+xml', headers: { 'If-Match': etag } });
        expect(stale.status).to.equal(412);
        const terminated = dave.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && /^terminated/.test(r.getHeader('subscription-state') ?? ''));
        const blocked = await xcap(base, 'PUT', '/pres-rules/users/sip:carol@example.com/index', {
          user: 'carol',
          body: ruleset(rule('x', 'sip:dave@example.com', 'block')),
          type: 'application/auth-policy+xml',
          headers: { 'If-Match': rendered.headers.get('etag')! },
        });
        expect(blocked.status).to.equal(200);
        expect((await terminated).getHeader('subscription-state')).to.match(/reason=rejected/);
        // The domain rule was not in the new document: gone.
        expect((await call(base, 'GET', '/api/users/carol/rules')).json.map((r: { watcher: string }) => r.watcher)).to.deep.equal(['sip:dave@example.com']);
      } finally {
        await carol.close();
        await dave.close();
      }
    });

    it('edits one rule by element selector, keeping the rest (§8.2), and deletes it by selector', async () => {
      const path = '/pres-rules/users/sip:bob@example.com/index';
      expect((await xcap(base, 'PUT', path, { user: 'bob', body: ruleset(rule('a', 'sip:alice@example.com', 'allow')), type: 'application/auth-policy+xml' })).status).to.equal(201);
      const sel = `${path}/~~/cp:ruleset/cp:rule%5b@id=%22b%22%5d?xmlns(cp=${CP})`;
      const el = `<cp:rule xmlns:cp="${CP}" xmlns:pr="${PR}" id="b"><cp:conditions><cp:identity><cp:one id="sip:carol@example.com"/></cp:identity></cp:conditions><cp:actions><pr:sub-handling>polite-block</pr:sub-handling></cp:actions></cp:rule>`;
      const put = await xcap(base, 'PUT', sel, { user: 'bob', body: el, type: 'application/xcap-el+xml' });
      expect(put.status).to.equal(201);
      const rules = (await call(base, 'GET', '/api/users/bob/rules')).json as Array<{ watcher: string; action: string }>;
      expect(rules.map((r) => `${r.watcher} ${r.action}`)).to.deep.equal(['sip:alice@example.com allow', 'sip:carol@example.com polite-block']);
      const got = await xcap(base, 'GET', sel, { user: 'bob' });
      expect(got.status).to.equal(200);
      expect(got.headers.get('content-type')).to.equal('application/xcap-el+xml');
      expect(got.text).to.contain('polite-block');
      const action = await xcap(base, 'GET', `${path}/~~/cp:ruleset/cp:rule%5b@id=%22b%22%5d/@id?xmlns(cp=${CP})`, { user: 'bob' });
      expect(action.text).to.equal('b');
      expect((await xcap(base, 'DELETE', sel, { user: 'bob' })).status).to.equal(200);
      expect((await call(base, 'GET', '/api/users/bob/rules')).json.map((r: { watcher: string }) => r.watcher)).to.deep.equal(['sip:alice@example.com']);
      expect((await xcap(base, 'DELETE', sel, { user: 'bob' })).status).to.equal(404);
    });

    it('refuses bad rule sets with the RFC 4825 §11 error bodies and leaves the rules alone', async () => {
      const path = '/pres-rules/users/sip:alice@example.com/index';
      const type = 'application/auth-policy+xml';
      const notWf = await xcap(base, 'PUT', path, { user: 'alice', body: '<cp:ruleset xmlns:cp="x">', type });
      expect(notWf.status).to.equal(409);
      expect(notWf.headers.get('content-type')).to.equal('application/xcap-error+xml');
      expect(notWf.text).to.contain('<not-well-formed');
      const dup = await xcap(base, 'PUT', path, { user: 'alice', body: ruleset(rule('same', 'sip:bob@example.com', 'allow') + rule('same', 'sip:carol@example.com', 'block')), type });
      expect(dup.status).to.equal(409);
      expect(dup.text).to.match(/<uniqueness-failure><exists field="\/cp:ruleset\/cp:rule\[2\]\/@id"><alt-value>/);
      const schema = await xcap(base, 'PUT', path, { user: 'alice', body: `<ruleset xmlns="urn:wrong"/>`, type });
      expect(schema.text).to.contain('<schema-validation-error');
      const sphere = await xcap(base, 'PUT', path, { user: 'alice', body: ruleset(`<cp:rule id="s"><cp:conditions><cp:sphere value="work"/></cp:conditions></cp:rule>`), type });
      expect(sphere.text).to.contain('<constraint-failure');
      const dtd = await xcap(base, 'PUT', path, { user: 'alice', body: `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><cp:ruleset xmlns:cp="${CP}"/>`, type });
      expect(dtd.status).to.equal(409);
      expect(dtd.text).to.contain('<not-well-formed');
      expect((await xcap(base, 'PUT', path, { user: 'alice', body: ruleset(''), type: 'text/plain' })).status).to.equal(415);
      const big = await xcap(base, 'PUT', path, { user: 'alice', body: ruleset('x'.repeat(300_000)), type });
      expect(big.status).to.equal(413);
      expect((await call(base, 'GET', '/api/users/alice/rules')).json).to.deep.equal([]);
    });
  });

  describe('pidf-manipulation: hard state', () => {
    it('shows in the NOTIFYs of watchers, under the devices publications, and goes with a DELETE', async () => {
      const watcher = await TestUa.create({ port: srv.port, user: 'bob' });
      try {
        // alice allows bob.
        expect((await call(base, 'PUT', '/api/users/alice/rules', { body: { watcher: 'bob', action: 'allow' } })).status).to.equal(200);
        watcher.autoAnswer('NOTIFY', 200);
        const callId = 'xcap-hard@test';
        const first = watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId);
        await watcher.transact(watcher.request('SUBSCRIBE', 'sip:alice@example.com', { callId, headers: { Event: 'presence', Expires: 600, Accept: PIDF } }));
        expect((await first).body.toString()).not.to.contain('<tuple');

        const hard = `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><tuple id="hard"><status><basic>open</basic></status><note>on holiday</note></tuple></presence>`;
        const withHard = watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && r.body.toString().includes('on holiday'));
        const path = '/pidf-manipulation/users/sip:alice@example.com/index';
        const put = await xcap(base, 'PUT', path, { user: 'alice', body: hard, type: PIDF, headers: { 'If-None-Match': '*' } });
        expect(put.status).to.equal(201);
        await withHard;
        expect((await xcap(base, 'PUT', path, { user: 'alice', body: hard, type: PIDF, headers: { 'If-None-Match': '*' } })).status).to.equal(412);
        expect((await xcap(base, 'GET', path, { user: 'alice', headers: { 'If-None-Match': put.headers.get('etag')! } })).status).to.equal(304);

        // The note changed by attribute-free element PUT: the tuple's <note>.
        const noteSel = `${path}/~~/presence/tuple%5b@id=%22hard%22%5d/note`;
        const changed = watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && r.body.toString().includes('back monday'));
        expect((await xcap(base, 'PUT', noteSel, { user: 'alice', body: '<note>back monday</note>', type: 'application/xcap-el+xml' })).status).to.equal(200);
        await changed;
        // An idempotency failure: a second <tuple> by position 3 when there is one tuple.
        const ci = await xcap(base, 'PUT', `${path}/~~/presence/tuple%5b3%5d`, { user: 'alice', body: '<tuple id="x"><status><basic>open</basic></status></tuple>', type: 'application/xcap-el+xml' });
        expect(ci.status).to.equal(409);
        expect(ci.text).to.contain('<cannot-insert');
        const np = await xcap(base, 'PUT', `${path}/~~/presence/tuple%5b@id=%22nope%22%5d/status/basic`, { user: 'alice', body: '<basic>open</basic>', type: 'application/xcap-el+xml' });
        expect(np.status).to.equal(409);
        expect(np.text).to.match(/<no-parent><ancestor>http:\/\/[^<]+\/xcap-root\/pidf-manipulation\/users\/sip:alice@example.com\/index\/~~\/presence<\/ancestor><\/no-parent>/);
        const deeper = await xcap(base, 'PUT', `${path}/~~/presence/tuple%5b@id=%22hard%22%5d/x/basic`, { user: 'alice', body: '<basic>open</basic>', type: 'application/xcap-el+xml' });
        expect(deeper.text).to.match(/<ancestor>http:\/\/[^<]+\/index\/~~\/presence\/tuple%5b@id=%22hard%22%5d<\/ancestor>/);
        const cd = await xcap(base, 'DELETE', `${path}/~~/presence`, { user: 'alice' });
        expect(cd.status).to.equal(409);
        expect(cd.text).to.contain('<cannot-delete');
        const invalid = await xcap(base, 'PUT', `${path}/~~/presence/tuple%5b@id=%22hard%22%5d/status`, { user: 'alice', body: '<status><basic>maybe</basic></status>', type: 'application/xcap-el+xml' });
        expect(invalid.status).to.equal(409);
        expect(invalid.text).to.contain('<schema-validation-error');

        // A device publishes: its tuple joins the hard state's.
        const dev = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><tuple id="phone"><status><basic>closed</basic></status></tuple></presence>`;
        const both = watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && r.body.toString().includes('phone'));
        const alice = await TestUa.create({ port: srv.port, user: 'alice' });
        try {
          expect((await alice.transact(alice.request('PUBLISH', 'sip:alice@example.com', { headers: { Event: 'presence', Expires: 600, 'Content-Type': PIDF }, body: dev }))).status).to.equal(200);
          const text = (await both).body.toString();
          expect(text).to.contain('back monday');
          expect(text.indexOf('phone')).to.be.lessThan(text.indexOf('hard'));
        } finally {
          await alice.close();
        }

        const gone = watcher.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && !r.body.toString().includes('back monday'));
        expect((await xcap(base, 'DELETE', path, { user: 'alice' })).status).to.equal(200);
        await gone;
        expect((await xcap(base, 'GET', path, { user: 'alice' })).status).to.equal(404);
      } finally {
        await watcher.close();
      }
    });
  });
  describe('xcap-diff (RFC 5875), xcap-directory, attributes, races, account deletion', () => {
    it('a user subscribed to xcap-diff hears which of its documents changed, with the entity-tags', async () => {
      const ua = await TestUa.create({ port: srv.port, user: 'dave' });
      try {
        ua.autoAnswer('NOTIFY', 200);
        const path = '/pidf-manipulation/users/sip:dave@example.com/index';
        const hard = (note: string) => `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:dave@example.com"><tuple id="h"><status><basic>open</basic></status><note>${note}</note></tuple></presence>`;
        const first = await xcap(base, 'PUT', path, { user: 'dave', body: hard('one'), type: PIDF });
        const etag1 = first.headers.get('etag')!.replace(/"/g, '');
        const callId = 'xcap-diff@test';
        const initial = ua.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId);
        const res = await ua.transact(ua.request('SUBSCRIBE', 'sip:dave@example.com', { callId, headers: { Event: 'xcap-diff', Expires: 600, Accept: 'application/xcap-diff+xml' } }));
        expect(res.status).to.be.oneOf([200, 202]);
        const n0 = await initial;
        expect(n0.getHeader('content-type')).to.equal('application/xcap-diff+xml');
        expect(n0.body.toString()).to.match(/<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" xcap-root="http:\/\/example.com:\d+\/xcap-root">/);
        expect(n0.body.toString()).to.contain(`<document sel="pidf-manipulation/users/sip:dave@example.com/index" new-etag="${etag1}"/>`);

        const changed = ua.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && r.body.toString().includes('previous-etag'));
        const second = await xcap(base, 'PUT', path, { user: 'dave', body: hard('two'), type: PIDF });
        const etag2 = second.headers.get('etag')!.replace(/"/g, '');
        expect((await changed).body.toString()).to.contain(`<document sel="pidf-manipulation/users/sip:dave@example.com/index" previous-etag="${etag1}" new-etag="${etag2}"/>`);

        const rules = ua.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && r.body.toString().includes('pres-rules/users'));
        await xcap(base, 'PUT', '/pres-rules/users/sip:dave@example.com/index', { user: 'dave', body: ruleset(rule('a', 'sip:alice@example.com', 'allow')), type: 'application/auth-policy+xml' });
        const told = (await rules).body.toString();
        // Both forms of the one rule set changed; the hard state did not.
        expect(told).to.contain('sel="pres-rules/users/sip:dave@example.com/index" new-etag=');
        expect(told).to.contain('sel="org.openmobilealliance.pres-rules/users/sip:dave@example.com/pres-rules" new-etag=');
        expect(told).not.to.contain('pidf-manipulation');

        // A rule changed another way (the CLI's path): the pres-rules documents changed too.
        const byApi = ua.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && r.body.toString().includes('previous-etag') && r.body.toString().includes('pres-rules/users'));
        expect((await call(base, 'PUT', '/api/users/dave/rules', { body: { watcher: 'carol', action: 'block' } })).status).to.equal(200);
        expect((await byApi).body.toString()).to.match(/sel="pres-rules\/users\/sip:dave@example.com\/index" previous-etag="[^"]+" new-etag="[^"]+"/);

        const removed = ua.waitRequest((r) => r.method === 'NOTIFY' && r.callId === callId && r.body.toString().includes(`previous-etag="${etag2}"/>`));
        await xcap(base, 'DELETE', path, { user: 'dave' });
        await removed;

        // Nobody else's tree: another user is refused.
        const bob = await TestUa.create({ port: srv.port, user: 'bob' });
        try {
          const r = await bob.transact(bob.request('SUBSCRIBE', 'sip:dave@example.com', { callId: 'xcap-diff-bob@test', headers: { Event: 'xcap-diff', Expires: 600 } }));
          expect(r.status).to.equal(403);
        } finally {
          await bob.close();
        }
      } finally {
        await ua.close();
      }
    });

    it('attributes and namespace bindings by selector (§6.3, §7.7-7.10), HEAD, and validation after every edit', async () => {
      const path = '/pidf-manipulation/users/sip:bob@example.com/index';
      const body = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:bob@example.com"><tuple id="a"><status><basic>open</basic></status></tuple><dm:person id="p"/></presence>`;
      expect((await xcap(base, 'PUT', path, { user: 'bob', body, type: PIDF })).status).to.equal(201);
      const ns = await xcap(base, 'GET', `${path}/~~/presence/dm:person/namespace::*?xmlns(dm=urn:ietf:params:xml:ns:pidf:data-model)`, { user: 'bob' });
      expect(ns.status).to.equal(200);
      expect(ns.headers.get('content-type')).to.equal('application/xcap-ns+xml');
      expect(ns.text).to.match(/^<dm:person /).and.to.contain('xmlns="urn:ietf:params:xml:ns:pidf"').and.to.contain('xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"');
      const att = (v: string) => ({ user: 'bob', body: v, type: 'application/xcap-att+xml' });
      expect((await xcap(base, 'PUT', `${path}/~~/presence/@entity`, att('pres:bob@example.com'))).status).to.equal(200);
      expect((await xcap(base, 'GET', `${path}/~~/presence/@entity`, { user: 'bob' })).text).to.equal('pres:bob@example.com');
      // The selector's own test would no longer hold after the change.
      const moved = await xcap(base, 'PUT', `${path}/~~/presence/tuple%5b@id=%22a%22%5d/@id`, att('b'));
      expect(moved.status).to.equal(409);
      expect(moved.text).to.contain('<cannot-insert');
      expect((await xcap(base, 'PUT', `${path}/~~/presence/@entity`, att('a<b'))).text).to.contain('<not-xml-att-value');
      // A tuple without its id is no PIDF: the edit is refused and the document stays.
      const invalid = await xcap(base, 'DELETE', `${path}/~~/presence/tuple%5b1%5d/@id`, { user: 'bob' });
      expect(invalid.status).to.equal(409);
      expect(invalid.text).to.contain('<schema-validation-error');
      expect((await xcap(base, 'PUT', `${path}/~~/presence/tuple%5b1%5d`, { user: 'bob', body: '<tuple id="a"/>', type: 'text/xml' })).status).to.equal(415);
      const head = await xcap(base, 'HEAD', path, { user: 'bob' });
      expect([head.status, head.text, head.headers.get('content-type')]).to.deep.equal([200, '', PIDF]);
      expect(head.headers.get('etag')).to.match(/^"/);
      expect((await xcap(base, 'GET', `${path}/~~/presence/tuple%5b1%5d`, { user: 'bob' })).text).to.equal('<tuple xmlns="urn:ietf:params:xml:ns:pidf" id="a"><status><basic>open</basic></status></tuple>');
      expect((await xcap(base, 'POST', path, { user: 'bob', body: 'x', type: PIDF })).status).to.equal(405);
      await xcap(base, 'DELETE', path, { user: 'bob' });
    });

    it('xcap-directory lists the user\'s documents with their entity-tags', async () => {
      const path = '/pidf-manipulation/users/sip:carol@example.com/index';
      const body = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:carol@example.com"><tuple id="d"><status><basic>open</basic></status></tuple></presence>`;
      const put = await xcap(base, 'PUT', path, { user: 'carol', body, type: PIDF });
      const dir = await xcap(base, 'GET', '/org.openmobilealliance.xcap-directory/users/sip:carol@example.com/directory.xml', { user: 'carol' });
      expect(dir.status).to.equal(200);
      expect(dir.headers.get('content-type')).to.equal('application/vnd.oma.xcap-directory+xml');
      expect(dir.text).to.match(new RegExp(`<entry uri="http://example.com:\\d+/xcap-root/pidf-manipulation/users/sip:carol@example.com/index" etag="${put.headers.get('etag')!.replace(/"/g, '')}"/>`));
      expect(dir.text).to.contain('<folder auid="pres-rules">');
      expect((await xcap(base, 'GET', '/org.openmobilealliance.xcap-directory/users/sip:carol@example.com/directory.xml', { user: 'dave' })).status).to.equal(403);
      expect((await xcap(base, 'PUT', '/org.openmobilealliance.xcap-directory/users/sip:carol@example.com/directory.xml', { user: 'carol', body: dir.text, type: 'application/vnd.oma.xcap-directory+xml' })).status).to.equal(405);
      await xcap(base, 'DELETE', path, { user: 'carol' });
    });

    it('two PUTs racing on one entity-tag: one wins, the other gets 412', async () => {
      const path = '/pidf-manipulation/users/sip:bob@example.com/index';
      const doc = (n: number) => `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@example.com"><tuple id="t${n}"><status><basic>open</basic></status></tuple></presence>`;
      const etag = (await xcap(base, 'PUT', path, { user: 'bob', body: doc(0), type: PIDF })).headers.get('etag')!;
      const both = await Promise.all([1, 2].map((n) => xcap(base, 'PUT', path, { user: 'bob', body: doc(n), type: PIDF, headers: { 'If-Match': etag } })));
      expect(both.map((r) => r.status).sort()).to.deep.equal([200, 412]);
      await xcap(base, 'DELETE', path, { user: 'bob' });
    });

    it("a deleted account's documents and hard state go with it", async () => {
      expect((await call(base, 'POST', '/api/users', { body: { username: 'erin', password: 'erin-pass' } })).status).to.equal(201);
      const path = '/pidf-manipulation/users/sip:erin@example.com/index';
      const body = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:erin@example.com"><tuple id="e"><status><basic>open</basic></status></tuple></presence>`;
      expect((await xcap(base, 'PUT', path, { user: 'erin', body, type: PIDF })).status).to.equal(201);
      expect(srv.server.presence.composedDocument('sip:erin@example.com').toString()).to.contain('<tuple id="e"');
      expect((await call(base, 'DELETE', '/api/users/erin')).status).to.be.oneOf([200, 204]);
      expect((await xcap(base, 'GET', path, { token: TOKEN })).status).to.equal(404);
      expect(srv.server.presence.composedDocument('sip:erin@example.com').toString()).not.to.contain('<tuple');
    });
  });
});

describe('xcap: hard state across a restart', function () {
  this.timeout(20000);

  it('a stored pidf-manipulation document is composed again when the server starts on the same store', async () => {
    const store = await openStore({ logger: pino({ level: 'silent' }) });
    try {
      let srv = await startTestServer({ admin: { token: TOKEN } }, { store });
      const body = `<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><tuple id="kept"><status><basic>open</basic></status></tuple></presence>`;
      try {
        expect((await call(httpBase(srv.server), 'POST', '/api/users', { body: { username: 'alice', password: 'alice-pass' } })).status).to.equal(201);
        expect((await xcap(httpBase(srv.server), 'PUT', '/pidf-manipulation/users/sip:alice@example.com/index', { user: 'alice', body, type: PIDF })).status).to.equal(201);
      } finally {
        await srv.stop();
      }
      srv = await startTestServer({ admin: { token: TOKEN } }, { store });
      try {
        expect(srv.server.presence.composedDocument('sip:alice@example.com').toString()).to.contain('<tuple id="kept"');
      } finally {
        await srv.stop();
      }
    } finally {
      await store.close();
    }
  });
});

describe('xcap: over HTTPS when TLS is configured', function () {
  this.timeout(20000);
  let dir: string;
  let store: Store;
  let srv: TestServer;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'xcap-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    } catch {
      this.skip(); // no openssl to make a test certificate
    }
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ admin: { token: TOKEN }, tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') }, websocket: { wssPort: 0 } }, { store });
    expect((await call(httpBase(srv.server), 'POST', '/api/users', { body: { username: 'alice', password: 'alice-pass' } })).status).to.equal(201);
  });
  after(async () => {
    await srv?.stop();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** One request on the TLS port (the test certificate is self-signed). */
  function tls(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
    const port = srv.server.listeners.find((x) => x.protocol === 'wss')!.port;
    return new Promise((resolve, reject) => {
      const r = https.request({ host: '127.0.0.1', port, method, path, headers, rejectUnauthorized: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString() }));
      });
      r.on('error', reject);
      r.end(body);
    });
  }

  it('answers with digest on the TLS port, and names https ancestors', async () => {
    const path = `${ROOT}/pidf-manipulation/users/sip:alice@example.com/index/~~/presence/tuple%5b@id=%22x%22%5d/status`;
    const first = await tls('PUT', path);
    expect(first.status).to.equal(401);
    const challenge = parseChallenge(([] as string[]).concat(first.headers['www-authenticate'] ?? [])[0]!);
    const put = await tls(
      'PUT',
      path,
      { Authorization: authorization(challenge, { username: 'alice', password: 'alice-pass', method: 'PUT', uri: path }), 'Content-Type': 'application/xcap-el+xml' },
      '<status><basic>open</basic></status>',
    );
    expect(put.status).to.equal(409);
    // No document yet: the closest ancestor is the user's tree, on https.
    expect(put.text).to.match(/<no-parent phrase="the document does not exist"><ancestor>https:\/\/127.0.0.1:\d+\/xcap-root\/pidf-manipulation\/users\/sip:alice@example.com<\/ancestor>/);
  });
});

describe('xcap: OMA external lists over the resource-lists usage', function () {
  this.timeout(20000);
  const RL = 'urn:ietf:params:xml:ns:resource-lists';
  const OCP = 'urn:oma:xml:xdm:common-policy';
  let store: Store;
  let srv: TestServer;
  let base: string;

  before(async () => {
    store = await openStore({ logger: pino({ level: 'silent' }) });
    srv = await startTestServer({ admin: { token: TOKEN } }, { store });
    base = httpBase(srv.server);
    expect((await call(base, 'POST', '/api/users', { body: { username: 'alice', password: 'alice-pass' } })).status).to.equal(201);
  });
  after(async () => {
    await srv.stop();
    await store.close();
  });

  it('OMA rules on an external list follow the list: its members are watchers, and a list edit changes the rules', async () => {
    const caps = await xcap(base, 'GET', '/xcap-caps/global/index', { user: 'alice' });
    expect(caps.text).to.contain('<auid>resource-lists</auid>');
    const lists = `<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="${RL}"><list name="oma_grantedcontacts"><entry uri="sip:bob@example.com"/></list><list name="oma_blockedcontacts"><entry uri="sip:mallory@example.org"/></list></resource-lists>`;
    expect((await xcap(base, 'PUT', '/resource-lists/users/sip:alice@example.com/index', { user: 'alice', body: lists, type: 'application/resource-lists+xml' })).status).to.equal(201);
    const anc = (name: string) => `${base}/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22${name}%22%5d`;
    const rules = `<?xml version="1.0" encoding="UTF-8"?>\n<cp:ruleset xmlns:cp="${CP}" xmlns:pr="${PR}" xmlns:ocp="${OCP}">` +
      `<cp:rule id="wp_prs_grantedcontacts"><cp:conditions><ocp:external-list><ocp:entry anc="${anc('oma_grantedcontacts')}"/></ocp:external-list></cp:conditions><cp:actions><pr:sub-handling>allow</pr:sub-handling></cp:actions><cp:transformations><pr:provide-services><pr:all-services/></pr:provide-services><pr:provide-persons><pr:all-persons/></pr:provide-persons><pr:provide-devices><pr:all-devices/></pr:provide-devices><pr:provide-all-attributes/></cp:transformations></cp:rule>` +
      `<cp:rule id="wp_prs_blockedcontacts"><cp:conditions><ocp:external-list><ocp:entry anc="${anc('oma_blockedcontacts')}"/></ocp:external-list></cp:conditions><cp:actions><pr:sub-handling>block</pr:sub-handling></cp:actions></cp:rule>` +
      `<cp:rule id="wp_prs_unlisted"><cp:conditions><ocp:other-identity/></cp:conditions><cp:actions><pr:sub-handling>confirm</pr:sub-handling></cp:actions></cp:rule></cp:ruleset>`;
    const path = '/org.openmobilealliance.pres-rules/users/sip:alice@example.com/pres-rules';
    expect((await xcap(base, 'PUT', path, { user: 'alice', body: rules, type: 'application/auth-policy+xml' })).status).to.equal(201);
    const listed = async () => ((await call(base, 'GET', '/api/users/alice/rules')).json as Array<{ watcher: string; action: string }>).map((r) => `${r.watcher} ${r.action}`);
    expect(await listed()).to.deep.equal(['* confirm', 'sip:bob@example.com allow', 'sip:mallory@example.org block']);
    // The client's document comes back as it was, external lists and all.
    expect((await xcap(base, 'GET', path, { user: 'alice' })).text).to.equal(rules);

    // carol joins the granted list by an element PUT on the resource list: she is allowed at once.
    const carol = `/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22oma_grantedcontacts%22%5d/entry%5b@uri=%22sip:carol@example.com%22%5d`;
    expect((await xcap(base, 'PUT', carol, { user: 'alice', body: '<entry uri="sip:carol@example.com"/>', type: 'application/xcap-el+xml' })).status).to.equal(201);
    expect(await listed()).to.include('sip:carol@example.com allow');
    expect((await xcap(base, 'GET', path, { user: 'alice' })).text).to.equal(rules);
    // bob leaves it: his rule goes.
    expect((await xcap(base, 'DELETE', `/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22oma_grantedcontacts%22%5d/entry%5b@uri=%22sip:bob@example.com%22%5d`, { user: 'alice' })).status).to.equal(200);
    expect(await listed()).not.to.include('sip:bob@example.com allow');
    // The list changed through the admin API (the CLI's path): the rules follow before it answers.
    expect((await call(base, 'PUT', '/api/users/alice/lists/oma_grantedcontacts', { body: { entries: [{ uri: 'dave' }] } })).status).to.equal(200);
    expect(await listed()).to.include('sip:dave@example.com allow').and.not.to.include('sip:carol@example.com allow');

    // A list that is not the user's, or not there, is refused.
    const other = rules.replace(anc('oma_blockedcontacts'), anc('nope'));
    const refused = await xcap(base, 'PUT', path, { user: 'alice', body: other, type: 'application/auth-policy+xml' });
    expect(refused.status).to.equal(409);
    expect(refused.text).to.contain('<constraint-failure phrase="external list');
  });
});

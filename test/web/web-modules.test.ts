import { expect } from 'chai';
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { packageRoot } from '../../src/config/config.js';
import { buildMultipartRelated } from '../../src/lists/multipart.js';
import { buildRlmi } from '../../src/lists/rlmi-document.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * The web client's document modules (PIDF with RPID, watcherinfo, isComposing, buddy
 * addresses) in the browser they run in: they read XML with the browser's DOMParser,
 * which Node lacks. web/src is bundled with esbuild as the page is, then exercised in a
 * blank page.
 */
describe('web client modules in Chromium (web/src: pidf, winfo, is-composing, buddies, rlmi)', function () {
  this.timeout(30000);
  let browser: Browser;
  let page: Page;

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
    const src = join(packageRoot(), 'web', 'src');
    const out = await build({
      stdin: {
        contents: ['pidf', 'winfo', 'is-composing', 'buddies', 'rlmi'].map((m) => `export * from './${m}.js';`).join('\n'),
        resolveDir: src,
        sourcefile: 'modules-under-test.ts',
        loader: 'ts',
      },
      bundle: true,
      write: false,
      format: 'iife',
      globalName: 'web',
      platform: 'browser',
      target: ['es2020'],
      logLevel: 'silent',
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage();
    await page.addScriptTag({ content: out.outputFiles[0]!.text });
    // tsx compiles these tests keeping function names (esbuild's __name helper), which the page lacks.
    await page.addScriptTag({ content: 'window.__name = (f) => f;' });
  });

  after(async () => {
    await browser?.close();
  });

  // The bundle's exports, as the page sees them.
  type Web = typeof import('../../web/src/pidf.js') & typeof import('../../web/src/winfo.js') & typeof import('../../web/src/is-composing.js') & typeof import('../../web/src/buddies.js') & typeof import('../../web/src/rlmi.js');
  const inPage = <R, A>(fn: (web: Web, arg: A) => R, arg: A): Promise<R> =>
    page.evaluate(
      ([body, a]) => {
        const web = (globalThis as unknown as { web: Web }).web;
        return (new Function('web', 'arg', `return (${body})(web, arg);`) as (w: Web, x: unknown) => unknown)(web, a);
      },
      [fn.toString(), arg] as const,
    ) as Promise<R>;

  describe('rlmi (RFC 4662 list NOTIFYs)', () => {
    it("reads the server's multipart/related bodies: resources, states, reasons and each one's PIDF by Content-ID", async () => {
      const pidf = '<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:bob@example.com"><tuple id="t"><status><basic>open</basic></status><note>hi</note></tuple></presence>';
      for (const bare of [false, true]) {
        const rlmi = buildRlmi({
          uri: 'sip:alice+presence@example.com',
          version: 3,
          fullState: false,
          resources: [
            { uri: 'sip:bob@example.com', instances: [{ id: 'i1', state: 'active', cid: 'c1@example.com' }] },
            { uri: 'sip:carol@example.com', instances: [{ id: 'i2', state: 'pending' }] },
            { uri: 'sip:dave@other.example', instances: [{ id: 'i3', state: 'terminated', reason: 'noresource' }] },
          ],
        });
        const mp = buildMultipartRelated([{ contentId: 'root@example.com', contentType: 'application/rlmi+xml;charset="UTF-8"', body: rlmi }, { contentId: 'c1@example.com', contentType: 'application/pidf+xml', body: Buffer.from(pidf) }], 'application/rlmi+xml', bare);
        const read = await inPage((web, a: { type: string; body: string }) => {
          const n = web.readListNotify(a.type, a.body);
          return n && { ...n, resources: n.resources.map((r) => ({ uri: r.uri, state: r.state, ...(r.reason ? { reason: r.reason } : {}), ...(r.pidf ? { presence: web.readPidf(r.pidf) } : {}) })) };
        }, { type: mp.contentType, body: mp.body.toString('utf8') });
        expect(read, `bare Content-IDs: ${bare}`).to.deep.equal({
          version: 3,
          fullState: false,
          resources: [
            { uri: 'sip:bob@example.com', state: 'active', presence: { status: 'available', note: 'hi' } },
            { uri: 'sip:carol@example.com', state: 'pending' },
            { uri: 'sip:dave@other.example', state: 'terminated', reason: 'noresource' },
          ],
        });
      }
      expect(await inPage((web) => web.readListNotify('application/pidf+xml', '<presence/>') ?? null, null)).to.equal(null);
    });
  });

  describe('pidf (RFC 3863, RPID RFC 4480)', () => {
    it('publishes each status so that a watcher reads it back, notes escaped', async () => {
      const read = await inPage(
        (web) =>
          (['available', 'away', 'busy', 'invisible'] as const).map((s) => {
            const xml = web.buildPidf('sip:alice@example.com', s, 'tea & <cake> "now"', { tuple: 't1', person: 'p1' });
            return { s, read: web.readPidf(xml), xml };
          }),
        null,
      );
      expect(read.map((r) => [r.s, r.read.status, r.read.note])).to.deep.equal([
        ['available', 'available', 'tea & <cake> "now"'],
        ['away', 'away', 'tea & <cake> "now"'],
        ['busy', 'busy', 'tea & <cake> "now"'],
        // Invisible publishes closed, and no note to see.
        ['invisible', 'offline', ''],
      ]);
      expect(read[1]!.xml).to.contain('<rpid:activities><rpid:away/></rpid:activities>');
      expect(read[0]!.xml).not.to.contain('rpid:activities');
      expect(read[0]!.xml).to.contain('tea &amp; &lt;cake&gt; &quot;now&quot;');
    });

    it('reads what other clients publish: RPID activities, tuple notes, closed, junk', async () => {
      const r = await inPage((web) => {
        const head = '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:bob@example.com">';
        return {
          phone: web.readPidf(`${head}<dm:person id="p"><rpid:activities><rpid:on-the-phone/></rpid:activities></dm:person><tuple id="t"><status><basic>open</basic></status><note>call me</note></tuple></presence>`),
          // baresip: an empty activities element.
          baresip: web.readPidf(`${head}<dm:person id="p4159"><rpid:activities/></dm:person><tuple id="t4109"><status><basic>open</basic></status></tuple></presence>`),
          closed: web.readPidf(`${head}<tuple id="t"><status><basic>closed</basic></status><note>gone</note></tuple></presence>`),
          twoDevices: web.readPidf(`${head}<tuple id="a"><status><basic>closed</basic></status></tuple><tuple id="b"><status><basic>open</basic></status></tuple></presence>`),
          notPidf: web.readPidf('<html><body>no</body></html>'),
          broken: web.readPidf('<presence xmlns="urn:ietf:params:xml:ns:pidf"'),
        };
      }, null);
      expect(r.phone).to.deep.equal({ status: 'busy', note: 'call me' });
      expect(r.baresip).to.deep.equal({ status: 'available', note: '' });
      expect(r.closed).to.deep.equal({ status: 'offline', note: '' });
      // RFC 3863 §4.1.4: one open tuple is enough.
      expect(r.twoDevices.status).to.equal('available');
      expect(r.notPidf.status).to.equal('unknown');
      expect(r.broken.status).to.equal('unknown');
    });
  });

  describe('winfo (RFC 3857, RFC 3858)', () => {
    it('applies a full document, then partial ones in version order, ignoring stale ones', async () => {
      const r = await inPage((web) => {
        const doc = (version: number, state: 'full' | 'partial', watchers: string) =>
          `<?xml version="1.0"?><watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="${version}" state="${state}"><watcher-list resource="sip:bob@example.com" package="presence">${watchers}</watcher-list></watcherinfo>`;
        const list = new web.WatcherList();
        const steps: unknown[] = [];
        steps.push(list.apply(doc(0, 'full', '<watcher id="w1" event="subscribe" status="pending">sip:alice@example.com</watcher>')), list.watchers());
        steps.push(list.apply(doc(1, 'partial', '<watcher id="w1" event="approved" status="active">sip:alice@example.com</watcher><watcher id="w2" event="subscribe" status="pending">sip:carol@example.com</watcher>')), list.watchers());
        // A partial document older than what we have changes nothing.
        steps.push(list.apply(doc(1, 'partial', '<watcher id="w1" event="rejected" status="terminated">sip:alice@example.com</watcher>')), list.watchers().map((w: { status: string }) => w.status));
        steps.push(list.apply('<notwinfo/>'));
        return steps;
      }, null);
      expect(r[0]).to.equal(true);
      expect(r[1]).to.deep.equal([{ id: 'w1', uri: 'sip:alice@example.com', status: 'pending', event: 'subscribe' }]);
      expect(r[2]).to.equal(true);
      expect((r[3] as Array<{ uri: string; status: string }>).map((w) => [w.uri, w.status])).to.deep.equal([
        ['sip:alice@example.com', 'active'],
        ['sip:carol@example.com', 'pending'],
      ]);
      expect(r[4]).to.equal(false);
      expect(r[5]).to.deep.equal(['active', 'pending']);
      expect(r[6]).to.equal(false);
    });
  });

  describe('is-composing (RFC 3994)', () => {
    it('builds and reads active (with refresh) and idle; 120 s without a refresh; junk is nothing', async () => {
      const r = await inPage(
        (web) => ({
          active: web.readIsComposing(web.buildIsComposing('active')),
          idle: web.readIsComposing(web.buildIsComposing('idle')),
          noRefresh: web.readIsComposing('<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>'),
          otherState: web.readIsComposing('<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>typing</state></isComposing>'),
          otherNs: web.readIsComposing('<isComposing><state>active</state></isComposing>'),
        }),
        null,
      );
      expect(r.active).to.deep.equal({ state: 'active', refresh: 60 });
      expect(r.idle).to.deep.equal({ state: 'idle', refresh: 120 });
      expect(r.noRefresh).to.deep.equal({ state: 'active', refresh: 120 });
      expect(r.otherState).to.equal(undefined);
      expect(r.otherNs).to.equal(undefined);
    });
  });

  describe('buddies', () => {
    it('turns what a user types into an address of record, or refuses it', async () => {
      const r = await inPage(
        (web, inputs: string[]) => inputs.map((t) => web.toAor(t, 'example.com') ?? null),
        ['bob', ' bob@Example.COM ', 'sip:carol@example.org', 'SIPS:dave@[::1]', 'bad name', '', 'a@b@c', '<script>'],
      );
      expect(r).to.deep.equal(['sip:bob@example.com', 'sip:bob@example.com', 'sip:carol@example.org', 'sip:dave@[::1]', null, null, null, null]);
    });
  });
});

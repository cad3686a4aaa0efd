import { expect } from 'chai';
import { buildWatcherInfo, parseWatcherInfo, type WatcherInfoDocument } from '../../../src/presence/winfo/watcherinfo-document.js';
import { prng } from '../pidf/helpers.js';

/** RFC 3858 §6 shape: a full document with an active and a pending watcher. */
const RFC3858_EXAMPLE = `<?xml version="1.0"?>
<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo"
             version="0" state="full">
  <watcher-list resource="sip:professor@example.net" package="presence">
    <watcher status="active"
             id="8ajksjda7s"
             duration-subscribed="509"
             event="approved" >sip:userA@example.net</watcher>
    <watcher status="pending"
             id="hh8juja87s997-ass7"
             display-name="Mr. Subscriber"
             event="subscribe">sip:userB@example.org</watcher>
  </watcher-list>
</watcherinfo>
`;

function mustParse(bytes: Buffer | string): WatcherInfoDocument {
  const r = parseWatcherInfo(bytes);
  if (!r.ok) expect.fail(`expected a valid watcherinfo document, got "${r.reason}"`);
  return r.document;
}

describe('winfo: watcherinfo documents (RFC 3858)', () => {
  it('reads the RFC 3858 example', () => {
    expect(mustParse(RFC3858_EXAMPLE)).to.deep.equal({
      version: 0,
      state: 'full',
      watcherLists: [
        {
          resource: 'sip:professor@example.net',
          package: 'presence',
          watchers: [
            { id: '8ajksjda7s', status: 'active', event: 'approved', uri: 'sip:userA@example.net', durationSubscribed: 509 },
            { id: 'hh8juja87s997-ass7', status: 'pending', event: 'subscribe', uri: 'sip:userB@example.org', displayName: 'Mr. Subscriber' },
          ],
        },
      ],
    });
  });

  it('writes application/watcherinfo+xml that reads back the same', () => {
    const bytes = buildWatcherInfo({
      version: 7,
      state: 'partial',
      resource: 'sip:alice@example.com',
      package: 'presence',
      watchers: [
        { id: 's1', status: 'active', event: 'approved', uri: 'sip:bob@example.com', displayName: 'Bob', expiration: 3599, durationSubscribed: 1 },
        { id: 's2', status: 'terminated', event: 'timeout', uri: 'sip:carol@example.com', durationSubscribed: 3600 },
        { id: 's3', status: 'waiting', event: 'rejected', uri: 'sip:dave@example.com' },
      ],
    });
    const text = bytes.toString('utf8');
    expect(text.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="7" state="partial">')).to.equal(
      true,
    );
    expect(text).to.include('<watcher-list resource="sip:alice@example.com" package="presence">');
    expect(mustParse(bytes)).to.deep.equal({
      version: 7,
      state: 'partial',
      watcherLists: [
        {
          resource: 'sip:alice@example.com',
          package: 'presence',
          watchers: [
            { id: 's1', status: 'active', event: 'approved', uri: 'sip:bob@example.com', displayName: 'Bob', expiration: 3599, durationSubscribed: 1 },
            { id: 's2', status: 'terminated', event: 'timeout', uri: 'sip:carol@example.com', durationSubscribed: 3600 },
            { id: 's3', status: 'waiting', event: 'rejected', uri: 'sip:dave@example.com' },
          ],
        },
      ],
    });
  });

  it('writes the subscription records’ `subscribed` as the RFC’s `subscribe`', () => {
    const bytes = buildWatcherInfo({
      version: 0,
      state: 'full',
      resource: 'sip:alice@example.com',
      package: 'presence',
      watchers: [{ id: 's1', status: 'pending', event: 'subscribed', uri: 'sip:bob@example.com' }],
    });
    expect(mustParse(bytes).watcherLists[0]!.watchers[0]!.event).to.equal('subscribe');
  });

  it('an empty full list', () => {
    const bytes = buildWatcherInfo({ version: 0, state: 'full', resource: 'sip:a@example.com', package: 'presence', watchers: [] });
    expect(mustParse(bytes).watcherLists).to.deep.equal([{ resource: 'sip:a@example.com', package: 'presence', watchers: [] }]);
  });

  it('escapes hostile display names and URIs, drops what XML cannot carry', () => {
    const displayName = 'Eve" status="active"><watcher id="x\u0000\u0007 & <b>\r\n';
    const uri = 'sip:eve@example.com?x=<y>&z="1"';
    const bytes = buildWatcherInfo({
      version: 1,
      state: 'partial',
      resource: 'sip:a@example.com',
      package: 'presence',
      watchers: [{ id: 'i"d', status: 'pending', event: 'subscribe', uri, displayName }],
    });
    const w = mustParse(bytes).watcherLists[0]!.watchers;
    expect(w).to.have.length(1);
    expect(w[0]!.displayName).to.equal('Eve" status="active"><watcher id="x & <b>\r\n');
    expect(w[0]!.uri).to.equal(uri);
    expect(w[0]!.id).to.equal('i"d');
  });

  it('leaves out counts that are not whole non-negative numbers', () => {
    const bytes = buildWatcherInfo({
      version: Number.NaN,
      state: 'full',
      resource: 'sip:a@example.com',
      package: 'presence',
      watchers: [{ id: 's', status: 'active', event: 'approved', uri: 'sip:b@example.com', expiration: -5, durationSubscribed: 12.7 }],
    });
    const doc = mustParse(bytes);
    expect(doc.version).to.equal(0);
    expect(doc.watcherLists[0]!.watchers[0]).to.deep.equal({ id: 's', status: 'active', event: 'approved', uri: 'sip:b@example.com', durationSubscribed: 12 });
  });

  it('reads prefixed documents and ignores extensions', () => {
    const doc = mustParse(
      `<w:watcherinfo xmlns:w="urn:ietf:params:xml:ns:watcherinfo" xmlns:e="urn:example:ext" version="3" state="partial">` +
        `<w:watcher-list resource="sip:a@example.com" package="presence"><e:extra/>` +
        `<w:watcher id="1" status="active" event="approved" xml:lang="en" display-name="Ann">sip:ann@example.com</w:watcher>` +
        `</w:watcher-list></w:watcherinfo>`,
    );
    expect(doc.watcherLists[0]!.watchers).to.deep.equal([
      { id: '1', status: 'active', event: 'approved', uri: 'sip:ann@example.com', displayName: 'Ann', lang: 'en' },
    ]);
  });

  describe('refusals', () => {
    const W = 'xmlns="urn:ietf:params:xml:ns:watcherinfo"';
    const list = (watcher: string) => `<watcherinfo ${W} version="0" state="full"><watcher-list resource="sip:a@x" package="presence">${watcher}</watcher-list></watcherinfo>`;
    const cases: Array<[string, string, string]> = [
      ['another root', `<presence xmlns="urn:ietf:params:xml:ns:pidf"/>`, 'Invalid watcherinfo: root element is not watcherinfo'],
      ['no version', `<watcherinfo ${W} state="full"/>`, 'Invalid watcherinfo: missing version'],
      ['a negative version', `<watcherinfo ${W} version="-1" state="full"/>`, 'Invalid watcherinfo: bad version'],
      ['a bad state', `<watcherinfo ${W} version="0" state="some"/>`, 'Invalid watcherinfo: state must be full or partial'],
      [
        'a list without resource',
        `<watcherinfo ${W} version="0" state="full"><watcher-list package="presence"/></watcherinfo>`,
        'Invalid watcherinfo: missing resource',
      ],
      ['a bad status', list('<watcher id="1" status="happy" event="approved">sip:b@x</watcher>'), 'Invalid watcherinfo: bad status happy'],
      ['a bad event', list('<watcher id="1" status="active" event="subscribed">sip:b@x</watcher>'), 'Invalid watcherinfo: bad event subscribed'],
      ['a watcher without id', list('<watcher status="active" event="approved">sip:b@x</watcher>'), 'Invalid watcherinfo: missing id'],
      ['a watcher without URI', list('<watcher id="1" status="active" event="approved"/>'), 'Invalid watcherinfo: watcher without URI'],
      ['a bad expiration', list('<watcher id="1" status="active" event="approved" expiration="soon">sip:b@x</watcher>'), 'Invalid watcherinfo: bad expiration'],
      [
        'a DOCTYPE',
        `<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><watcherinfo ${W} version="0" state="full"/>`,
        'Invalid watcherinfo: DOCTYPE not allowed',
      ],
      ['not XML', 'watchers', 'Invalid watcherinfo: not well-formed XML'],
    ];
    for (const [what, doc, reason] of cases) {
      it(`refuses ${what}`, () => {
        const r = parseWatcherInfo(doc);
        expect(r).to.deep.equal({ ok: false, reason });
      });
    }
  });

  it('randomized: 1,000 mutated documents never throw', () => {
    const rnd = prng(3858);
    const seed = buildWatcherInfo({
      version: 2,
      state: 'full',
      resource: 'sip:a@example.com',
      package: 'presence',
      watchers: [
        { id: 's1', status: 'active', event: 'approved', uri: 'sip:b@example.com', displayName: 'B', expiration: 10, durationSubscribed: 5 },
        { id: 's2', status: 'pending', event: 'subscribe', uri: 'sip:c@example.com' },
      ],
    }).toString('utf8');
    const tokens = ['<', '>', '&', '"', '<!DOCTYPE x>', 'status="', 'event="', '</watcher>', '\u0000', '&#x0;', 'xmlns:a="urn:a"', 'a:'];
    for (let i = 0; i < 1000; i++) {
      let s = seed;
      for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) {
        const at = Math.floor(rnd() * s.length);
        s = rnd() < 0.5 ? s.slice(0, at) + tokens[Math.floor(rnd() * tokens.length)]! + s.slice(at) : s.slice(0, at) + s.slice(at + Math.floor(rnd() * 10));
      }
      let r: ReturnType<typeof parseWatcherInfo>;
      try {
        r = parseWatcherInfo(i % 2 ? Buffer.from(s) : s);
      } catch (e) {
        expect.fail(`parseWatcherInfo threw on case ${i}: ${String(e)}\n${s}`);
      }
      if (!r.ok) expect(r.reason).to.match(/^Invalid watcherinfo: [\x20-\x7e]+$/);
    }
  });
});

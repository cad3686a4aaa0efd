import { expect } from 'chai';
import { Publications, type Publication } from '../../src/presence/publications.js';
import { ManualTimers } from '../../src/util/timers.js';

/** One Publications store on manual timers whose wall clock follows them. */
function store(): { pubs: Publications; timers: ManualTimers; expired: string[] } {
  const timers = new ManualTimers();
  const expired: string[] = [];
  const pubs = new Publications({ timers, wallClock: { nowMs: () => timers.clock.now() }, maxPerPresentity: 4, onExpired: (p) => expired.push(p.etag) });
  return { pubs, timers, expired };
}

function pub(etag: string, expiresAtMs: number): Publication {
  return { etag, presentity: 'sip:alice@example.com', contentType: 'application/pidf+xml', body: Buffer.from('<presence/>'), publishedAtMs: 0, expiresAtMs, tupleIds: [] };
}

describe('presence: publications (RFC 3903 event state)', () => {
  it('expires each publication at its time, once', () => {
    const { pubs, timers, expired } = store();
    pubs.restore(pub('a', 1000));
    pubs.restore(pub('b', 2000));
    timers.advance(1000);
    expect(expired).to.deep.equal(['a']);
    expect(pubs.get('b', 'sip:alice@example.com')).to.not.equal(undefined);
    timers.advance(1000);
    expect(expired).to.deep.equal(['a', 'b']);
    expect(pubs.size).to.equal(0);
    expect(timers.size).to.equal(0);
  });

  it('a publication put back under its entity-tag keeps one timer, the newest expiry', () => {
    const { pubs, timers, expired } = store();
    const first = pub('a', 1000);
    pubs.restore(first);
    pubs.restore(first);
    expect(timers.size).to.equal(1);
    // A copy with the same entity-tag and a later expiry (the handle copied with its fields).
    pubs.restore({ ...first, expiresAtMs: 5000 });
    expect(timers.size).to.equal(1);
    timers.advance(1000);
    expect(expired).to.deep.equal([]);
    timers.advance(4000);
    expect(expired).to.deep.equal(['a']);
  });

  it('a copy put in another store leaves the first store its timer', () => {
    const one = store();
    const two = store();
    const p = pub('a', 1000);
    one.pubs.restore(p);
    two.pubs.restore({ ...p });
    two.pubs.drop('a');
    one.timers.advance(1000);
    expect(one.expired).to.deep.equal(['a']);
    expect(two.expired).to.deep.equal([]);
  });

  it('a presentity goes from one publication to several and back, in publication order, and its eviction picks the soonest to expire', () => {
    const { pubs } = store();
    const at = (etag: string, publishedAtMs: number, expiresAtMs: number) => ({ ...pub(etag, expiresAtMs), publishedAtMs });
    const alice = 'sip:alice@example.com';
    pubs.restore(at('a', 10, 9000));
    expect(pubs.count(alice)).to.equal(1);
    expect(pubs.of(alice).map((p) => p.etag)).to.deep.equal(['a']);
    pubs.restore(at('b', 5, 8000));
    pubs.restore(at('c', 20, 7000));
    expect(pubs.count(alice)).to.equal(3);
    expect(pubs.of(alice).map((p) => p.etag)).to.deep.equal(['b', 'a', 'c']);
    pubs.drop('a');
    pubs.drop('c');
    expect(pubs.of(alice).map((p) => p.etag)).to.deep.equal(['b']);
    // The same entity-tag again replaces it, whichever form the index holds.
    pubs.restore(at('b', 30, 9500));
    expect(pubs.of(alice).map((p) => p.publishedAtMs)).to.deep.equal([30]);
    for (const [etag, exp] of [['d', 6000], ['e', 9900], ['f', 9800]] as const) pubs.restore(at(etag, 40, exp));
    // maxPerPresentity 4 is reached: a new one evicts the soonest to expire (d).
    const evicted = pubs.put(at('g', 50, 9999));
    expect(evicted?.etag).to.equal('d');
    expect(pubs.count(alice)).to.equal(4);
    for (const etag of ['b', 'e', 'f', 'g']) pubs.drop(etag);
    expect(pubs.count(alice)).to.equal(0);
    expect(pubs.presentities()).to.deep.equal([]);
  });

  it('drop and close cancel the timers', () => {
    const { pubs, timers, expired } = store();
    pubs.restore(pub('a', 1000));
    pubs.restore(pub('b', 1000));
    pubs.drop('a');
    expect(timers.size).to.equal(1);
    pubs.close();
    expect(timers.size).to.equal(0);
    timers.advance(2000);
    expect(expired).to.deep.equal([]);
  });
});

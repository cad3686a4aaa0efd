import { expect } from 'chai';
import { PartialState, type StateElement } from '../../src/presence/partial-state.js';
import type { Subscription } from '../../src/presence/subscription.js';

/** PartialState keys what it sent by subscription id only. */
const sub = (id: string) => ({ id }) as Subscription;
const state = (entries: Array<[string, string, boolean?]>): Map<string, StateElement> => new Map(entries.map(([k, xml, live]) => [k, { xml, live: live ?? true }]));
const gone = (k: string) => `<gone ${k}/>`;

describe('presence: full and partial state per subscription (RFC 4235 §4.1, RFC 3680 §5.1)', () => {
  it('full first; then the changed, the new, the ended and the gone elements; full again after a reset', () => {
    const p = new PartialState();
    const a = sub('a');
    expect(p.next(a, state([['d1', '<d1 early/>'], ['d2', '<d2 early/>'], ['x', '<x ended/>', false]]), gone)).to.deep.equal({ state: 'full', elements: ['<d1 early/>', '<d2 early/>'] });
    // d1 changed, d2 ended (told once), d3 new, nothing about x (never shown).
    expect(p.next(a, state([['d1', '<d1 confirmed/>'], ['d2', '<d2 ended/>', false], ['d3', '<d3 trying/>'], ['x', '<x ended/>', false]]), gone)).to.deep.equal({
      state: 'partial',
      elements: ['<d1 confirmed/>', '<d2 ended/>', '<d3 trying/>'],
    });
    // d1 left the state without a word: written by `gone`; the ended d2 is not told again.
    expect(p.next(a, state([['d2', '<d2 ended/>', false], ['d3', '<d3 trying/>']]), gone)).to.deep.equal({ state: 'partial', elements: ['<gone d1/>'] });
    // Another subscription has its own history.
    expect(p.next(sub('b'), state([['d3', '<d3 trying/>']]), gone).state).to.equal('full');
    p.reset(a);
    expect(p.next(a, state([['d3', '<d3 trying/>']]), gone)).to.deep.equal({ state: 'full', elements: ['<d3 trying/>'] });
  });
});

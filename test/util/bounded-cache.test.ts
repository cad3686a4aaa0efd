import { expect } from 'chai';
import { BoundedCache } from '../../src/util/bounded-cache.js';

describe('util/bounded-cache', () => {
  it('forgets the least recently used entry past its bound', () => {
    const c = new BoundedCache<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    c.get('a');
    c.set('c', 3);
    expect([c.has('a'), c.has('b'), c.has('c')]).to.deep.equal([true, false, true]);
  });

  it('fill caches a read only when no write came since the read began', () => {
    const c = new BoundedCache<string, number>(10);
    const since = c.writes;
    c.fill('a', 1, since);
    expect(c.get('a')).to.equal(1);
    const late = c.writes;
    c.delete('a'); // a write lands while a read is on its way
    c.fill('a', 1, late);
    expect(c.has('a')).to.equal(false);
  });
});

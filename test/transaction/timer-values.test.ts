import { expect } from 'chai';
import { TimerValues } from '../../src/transaction/timer-values.js';

describe('transaction/timer-values', () => {
  it('derives RFC 3261 Table 4 values from the defaults (T1 500 ms, T2 4 s, T4 5 s)', () => {
    const v = new TimerValues();
    expect([v.T1, v.T2, v.T4]).to.deep.equal([500, 4000, 5000]);
    const u = v.unreliable;
    expect(u).to.include({ A: 500, B: 32000, D: 32000, E: 500, F: 32000, G: 500, H: 32000, I: 5000, J: 32000, K: 5000, L: 32000, M: 32000 });
  });

  it('drops retransmission timers and zeroes the wait timers on reliable transports', () => {
    const r = new TimerValues().for(true);
    expect(r.A).to.equal(undefined);
    expect(r.E).to.equal(undefined);
    expect(r.G).to.equal(undefined);
    expect(r).to.include({ B: 32000, F: 32000, H: 32000, D: 0, I: 0, J: 0, K: 0 });
  });

  it('takes T1, T2, T4 from config', () => {
    const v = new TimerValues({ t1: 100, t2: 1000, t4: 2000 });
    expect(v.for(false)).to.include({ A: 100, B: 6400, E: 100, F: 6400, H: 6400, I: 2000, J: 6400, K: 2000, T2: 1000 });
    // Timer D stays at least 32 s on UDP (Table 4: "> 32s for UDP").
    expect(v.for(false).D).to.equal(32000);
    expect(new TimerValues({ t1: 1000 }).for(false).D).to.equal(64000);
  });

  it('refuses nonsense configuration', () => {
    expect(() => new TimerValues({ t1: 0 })).to.throw(RangeError);
    expect(() => new TimerValues({ t2: Number.NaN })).to.throw(RangeError);
    expect(() => new TimerValues({ t1: 5000, t2: 4000 })).to.throw(RangeError);
  });
});

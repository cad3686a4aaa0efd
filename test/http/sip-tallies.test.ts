import { expect } from 'chai';
import { LATENCY_BUCKETS, SipTallies } from '../../src/http/sip-tallies.js';

describe('http/sip-tallies: the SIP core counts, read at scrape time', () => {
  it('counts requests by method, any method it does not label as other, and lists only those seen', () => {
    const t = new SipTallies();
    t.request('PUBLISH');
    t.request('PUBLISH');
    t.request('FOO');
    t.request('BAR');
    expect(t.requestTotals()).to.deep.equal({ PUBLISH: 2, other: 2 });
  });

  it('counts responses by method and status, provisional ones too', () => {
    const t = new SipTallies();
    t.response('SUBSCRIBE', 200, 0.001);
    t.response('SUBSCRIBE', 200, 0.002);
    t.response('INVITE', 100, 0);
    t.response('FOO', 501, 0);
    expect(t.responseTotals()).to.have.deep.members([
      { method: 'SUBSCRIBE', status: 200, total: 2 },
      { method: 'INVITE', status: 100, total: 1 },
      { method: 'other', status: 501, total: 1 },
    ]);
  });

  it('keeps the latency of final responses only, in cumulative buckets whose bounds are inclusive (le)', () => {
    const t = new SipTallies();
    t.response('INVITE', 180, 0.2);
    t.response('MESSAGE', 200, 0.0005); // on the first bound: in it
    t.response('MESSAGE', 202, 0.003);
    t.response('MESSAGE', 480, 7); // past the last bound: +Inf only
    const [m, ...rest] = t.latency();
    expect(rest).to.deep.equal([]);
    expect(m!.method).to.equal('MESSAGE');
    expect(m!.count).to.equal(3);
    expect(m!.sum).to.be.closeTo(7.0035, 1e-9);
    expect(m!.cumulative).to.have.length(LATENCY_BUCKETS.length);
    const at = (bound: number) => m!.cumulative[LATENCY_BUCKETS.indexOf(bound)];
    expect([at(0.0005), at(0.001), at(0.0025), at(0.005), at(2.5)]).to.deep.equal([1, 1, 1, 2, 2]);
  });
});

import { expect } from 'chai';
import { CompletedResponses } from '../../src/transaction/completed-responses.js';
import type { Destination } from '../../src/transport/types.js';
import { ManualTimers } from '../../src/util/timers.js';

const J = 32_000;

function table(fail?: (dest: Destination) => Error | undefined) {
  const timers = new ManualTimers();
  const sent: Array<{ data: Buffer; dest: Destination }> = [];
  const errors: unknown[] = [];
  const t = new CompletedResponses(
    timers,
    J,
    (data, dest) => {
      sent.push({ data, dest });
      const err = fail?.(dest);
      return err ? Promise.reject(err) : Promise.resolve();
    },
    (err) => errors.push(err),
  );
  return { timers, sent, errors, t };
}

const udp = (port: number): Destination => ({ protocol: 'udp', address: '203.0.113.9', port });
const settle = () => new Promise((r) => setImmediate(r));

describe('transaction/completed-responses (RFC 3261 §17.2.2, Completed over UDP)', () => {
  it('resends the kept response byte for byte to its route until Timer J, then forgets it', () => {
    const { timers, sent, t } = table();
    const bytes = Buffer.from([0x53, 0x49, 0x50, 0xff, 0x00, 0x80, 0x0d, 0x0a]);
    t.add('k1', bytes.toString('latin1'), udp(40000));
    expect(t.size).to.equal(1);
    timers.advance(J - 1);
    expect(t.retransmit('k1')).to.equal(true);
    expect(sent).to.have.length(1);
    expect(sent[0]!.data.equals(bytes)).to.equal(true);
    expect(sent[0]!.dest).to.deep.equal(udp(40000));
    timers.advance(1);
    expect(t.retransmit('k1')).to.equal(false);
    expect(t.size).to.equal(0);
    expect(timers.size).to.equal(0);
  });

  it('ends each entry at its own Timer J, in the order they entered, with one timer for all', () => {
    const { timers, t } = table();
    t.add('a', 'A', udp(1));
    timers.advance(10_000);
    t.add('b', 'B', udp(2));
    timers.advance(10_000);
    t.add('c', 'C', udp(3));
    expect(timers.size).to.equal(1);
    timers.advance(12_000); // a's J
    expect([t.has('a'), t.has('b'), t.has('c')]).to.deep.equal([false, true, true]);
    timers.advance(10_000);
    expect([t.has('a'), t.has('b'), t.has('c')]).to.deep.equal([false, false, true]);
    expect(t.response('c')?.toString('latin1')).to.equal('C');
    timers.advance(10_000);
    expect(t.size).to.equal(0);
    expect(timers.size).to.equal(0);
  });

  it('keeps every entry right across many expiries and the arrays dropping their front', () => {
    const { timers, t } = table();
    for (let i = 0; i < 5000; i++) {
      t.add(`k${i}`, `R${i}`, udp(1000 + (i % 7)));
      timers.advance(10);
    }
    // 50 s of adds at 10 ms: those added at or before 18 s (J before now) are gone.
    expect(t.size).to.equal(3199);
    expect(t.has('k1800')).to.equal(false);
    for (const i of [1801, 2500, 4999]) expect(t.response(`k${i}`)?.toString('latin1')).to.equal(`R${i}`);
    timers.advance(J);
    expect(t.size).to.equal(0);
    // Numbering goes on after the table emptied.
    t.add('again', 'X', udp(1));
    expect(t.response('again')?.toString('latin1')).to.equal('X');
  });

  it('shares one route object between entries to the same address', () => {
    const { t, sent } = table();
    t.add('a', 'A', { ...udp(5060) });
    t.add('b', 'B', { ...udp(5060) });
    t.add('c', 'C', udp(5061));
    t.retransmit('a');
    t.retransmit('b');
    t.retransmit('c');
    expect(sent[0]!.dest).to.equal(sent[1]!.dest);
    expect(sent[2]!.dest).to.not.equal(sent[0]!.dest);
    expect(sent[2]!.dest.port).to.equal(5061);
  });

  it('an entry deleted before its time answers no more, and the others keep theirs', () => {
    const { timers, t } = table();
    t.add('a', 'A', udp(1));
    t.add('b', 'B', udp(2));
    t.delete('a');
    expect(t.retransmit('a')).to.equal(false);
    expect(t.response('b')?.toString('latin1')).to.equal('B');
    t.delete('b');
    expect(t.size).to.equal(0);
    expect(timers.size).to.equal(0);
  });

  it('a failed resend is reported, not thrown', async () => {
    const { t, errors } = table(() => new Error('unreachable'));
    t.add('a', 'A', udp(1));
    expect(t.retransmit('a')).to.equal(true);
    await settle();
    expect(errors).to.have.length(1);
  });

  it('clear forgets everything and stops its timer', () => {
    const { timers, t } = table();
    t.add('a', 'A', udp(1));
    t.clear();
    expect(t.size).to.equal(0);
    expect(t.has('a')).to.equal(false);
    expect(timers.size).to.equal(0);
  });
});

import { expect } from 'chai';
import { pino } from 'pino';
import { EarlyRefusal } from '../../src/core/early-refusal.js';
import { OverloadControl, type OverloadSettings } from '../../src/core/overload-control.js';
import { parseMessage } from '../../src/sip/parser.js';
import type { ReceiveDelay, ReceiveDelayReading } from '../../src/transport/receive-delay.js';
import type { Flow } from '../../src/transport/types.js';
import { harness, udpFlow, type Harness } from '../transaction/helpers.js';

const SETTINGS: OverloadSettings = { enabled: true, targetDelayMs: 50, intervalMs: 100, probeIntervalMs: 20, retryAfterSeconds: 2 };

class ScriptedDelay implements ReceiveDelay {
  next: ReceiveDelayReading = { queueDelayMs: 0, measured: true, eventLoopLagMs: 0, cpuWaitMs: 0 };
  read(): ReceiveDelayReading {
    return this.next;
  }
}

interface Rig {
  readonly h: Harness;
  readonly early: EarlyRefusal;
  readonly ctl: OverloadControl;
  /** Sources admitFrom was asked about, and whether they are within their rate. */
  readonly asked: Flow[];
  overRate: boolean;
  /** What the random source returns next (the overload control's coin). */
  coin: number;
}

/** A transaction layer, an overload control at `level` (0 to 2) and the early path over both. */
function rig(level: number): Rig {
  const h = harness();
  const delay = new ScriptedDelay();
  const state = { coin: 0.5 };
  const ctl = new OverloadControl({ delay, timers: h.timers, settings: SETTINGS, random: () => state.coin, logger: pino({ level: 'silent' }) });
  // Two windows over the target and rising, then as many as it takes to reach the level.
  ctl.start();
  let ms = 100;
  while (ctl.level < level) {
    delay.next = { queueDelayMs: ms, measured: true, eventLoopLagMs: 1, cpuWaitMs: 0 };
    ms += 10;
    h.timers.advance(SETTINGS.intervalMs);
  }
  ctl.stop();
  const asked: Flow[] = [];
  const r: Rig = {
    h,
    ctl,
    asked,
    overRate: false,
    get coin() {
      return state.coin;
    },
    set coin(v: number) {
      state.coin = v;
    },
    early: new EarlyRefusal({
      overload: ctl,
      transactions: h.layer,
      admitFrom: (flow) => {
        asked.push(flow);
        return !r.overRate;
      },
    }),
  };
  return r;
}

function text(lines: string[], body = ''): Buffer {
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body);
}

const PUBLISH = text(
  [
    'PUBLISH sip:alice@example.com SIP/2.0',
    'Via: SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bKpub1;rport',
    'v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKproxy',
    'Max-Forwards: 70',
    'f: "Alice" <sip:alice@example.com>;tag=a1',
    't: <sip:alice@example.com>',
    'i: pub-1@10.0.0.9',
    'CSeq: 7 PUBLISH',
    'Event: presence',
    'Content-Type: application/pidf+xml',
    'Content-Length: 5',
  ],
  '<x/>\n',
);

describe('core: early refusal (503 from the head alone while overload control refuses)', () => {
  it('is active only while overload control refuses something', () => {
    expect(rig(0).early.active).to.equal(false);
    expect(rig(0.5).early.active).to.equal(true);
  });

  it('answers a refused request with the 503 a full parse would have given: Vias stamped, From, To with a tag, Call-ID, CSeq, Retry-After', () => {
    const r = rig(1);
    const flow = udpFlow('198.51.100.7', 40000);
    expect(r.early.screen(PUBLISH, flow)).to.deep.equal({ kind: 'refused' });
    expect(r.h.requests).to.have.length(0);
    const [sent] = r.h.sender.sent;
    const res = r.h.sender.responses()[0]!;
    expect(res.status).to.equal(503);
    expect(res.reason).to.equal('Service Unavailable');
    expect(Number(res.getHeader('retry-after'))).to.be.within(2, 4);
    // RFC 3261 §18.2.1, RFC 3581 §4: received and rport on the top Via; the one below as it was.
    expect(res.vias).to.have.length(2);
    expect(res.topVia.params.get('received')).to.equal('198.51.100.7');
    expect(res.topVia.params.get('rport')).to.equal('40000');
    expect(res.vias[1]!.branch).to.equal('z9hG4bKproxy');
    expect(res.from.tag).to.equal('a1');
    expect(res.from.displayName).to.equal('Alice');
    expect(res.to.tag).to.be.a('string').and.not.empty;
    expect(res.callId).to.equal('pub-1@10.0.0.9');
    expect(res.cseq).to.deep.equal({ seq: 7, method: 'PUBLISH' });
    expect(res.body.length).to.equal(0);
    // §18.2.2 with RFC 3581: back to the source address and port.
    expect(sent!.dest).to.include({ protocol: 'udp', address: '198.51.100.7', port: 40000 });
    expect(r.ctl.stats().shed).to.deep.equal({ new: 1, ongoing: 0 });
  });

  it('hands an admitted request on with its head, and the full parse of that head is the same message', () => {
    const r = rig(0.5);
    r.coin = 0.9; // over the share refused: served
    const outcome = r.early.screen(PUBLISH, udpFlow());
    expect(outcome.kind).to.equal('admitted');
    if (outcome.kind !== 'admitted') return;
    const parsed = parseMessage(PUBLISH, outcome.head);
    expect(parsed.ok).to.equal(true);
    expect(parsed.ok && parsed.message.toString()).to.equal((parseMessage(PUBLISH) as { message: { toString(): string } }).message.toString());
    expect(r.h.sender.sent).to.have.length(0);
    expect(r.ctl.stats().shed).to.deep.equal({ new: 0, ongoing: 0 });
  });

  it('an admitted request is not asked about again by the transaction layer', () => {
    const r = rig(0.5);
    r.coin = 0.9;
    const outcome = r.early.screen(PUBLISH, udpFlow());
    if (outcome.kind !== 'admitted') throw new Error(outcome.kind);
    // The next draw would refuse: only a second question could.
    r.coin = 0;
    const parsed = parseMessage(PUBLISH, outcome.head);
    if (!parsed.ok) throw new Error(parsed.error.reason);
    const layer = harness({ admit: (req) => r.ctl.admit(req) });
    layer.layer.receive({ message: parsed.message, flow: udpFlow(), receivedAt: 0, admitted: true });
    expect(layer.requests).to.have.length(1);
    expect(r.ctl.stats().shed.new).to.equal(0);
  });

  it('leaves responses, ACK, CANCEL and retransmissions to the usual path', () => {
    const r = rig(2);
    const response = text(['SIP/2.0 200 OK', 'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKn1', 'From: <sip:a@example.com>;tag=1', 'To: <sip:b@example.com>;tag=2', 'Call-ID: n1', 'CSeq: 1 NOTIFY', 'Content-Length: 0']);
    const lower = Buffer.from(response.toString().replace('SIP/2.0 200', 'sip/2.0 200'));
    for (const method of ['ACK', 'CANCEL']) {
      const m = text([`${method} sip:b@example.com SIP/2.0`, 'Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx', 'From: <sip:a@example.com>;tag=1', 'To: <sip:b@example.com>', 'Call-ID: c', `CSeq: 1 ${method}`, 'Content-Length: 0']);
      expect(r.early.screen(m, udpFlow()).kind, method).to.equal('undecided');
    }
    expect(r.early.screen(response, udpFlow()).kind).to.equal('undecided');
    expect(r.early.screen(lower, udpFlow()).kind).to.equal('undecided');
    // A PUBLISH whose transaction exists (it came before the overload): its retransmission is the transaction's.
    const first = parseMessage(PUBLISH);
    if (!first.ok) throw new Error(first.error.reason);
    r.h.deliver(first.message, udpFlow('198.51.100.7', 40000));
    expect(r.h.requests).to.have.length(1);
    expect(r.early.screen(PUBLISH, udpFlow('198.51.100.7', 40000)).kind).to.equal('undecided');
    expect(r.h.sender.sent).to.have.length(0);
  });

  it('leaves a head that does not read, or lacks what a response copies, to the parser, which answers it with its own 400', () => {
    const r = rig(1);
    const badLine = text(['PUBLISH sip:alice@example.com SIP/2.0 extra', 'Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKb1', 'Call-ID: b', 'CSeq: 1 PUBLISH']);
    const noVia = text(['PUBLISH sip:alice@example.com SIP/2.0', 'From: <sip:a@example.com>;tag=1', 'Call-ID: b', 'CSeq: 1 PUBLISH']);
    const badHeader = text(['PUBLISH sip:alice@example.com SIP/2.0', 'Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKb2', 'this is no header', 'Call-ID: b', 'CSeq: 1 PUBLISH']);
    // RFC 3261 §8.1.1: without To (or From, Call-ID, CSeq) no response can be matched to it.
    const noTo = text(['PUBLISH sip:alice@example.com SIP/2.0', 'Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKb3', 'From: <sip:a@example.com>;tag=1', 'Call-ID: b', 'CSeq: 1 PUBLISH']);
    for (const m of [badLine, noVia, badHeader, noTo]) expect(r.early.screen(m, udpFlow()).kind).to.equal('undecided');
    expect(r.ctl.stats().shed).to.deep.equal({ new: 0, ongoing: 0 });
  });

  it('below level 1 refuses only new work: a request in a dialog and a PUBLISH with SIP-If-Match go on', () => {
    const r = rig(1);
    r.coin = 0;
    const inDialog = text(['SUBSCRIBE sip:alice@example.com SIP/2.0', 'Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKs1', 'From: <sip:b@example.com>;tag=1', 'To: <sip:alice@example.com>;tag=dlg', 'Call-ID: s', 'CSeq: 2 SUBSCRIBE', 'Event: presence', 'Content-Length: 0']);
    const refresh = text(['PUBLISH sip:alice@example.com SIP/2.0', 'Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp2', 'From: <sip:a@example.com>;tag=1', 'To: <sip:alice@example.com>', 'Call-ID: p', 'CSeq: 2 PUBLISH', 'SIP-If-Match: dx200', 'Event: presence', 'Content-Length: 0']);
    expect(r.early.screen(inDialog, udpFlow()).kind).to.equal('admitted');
    expect(r.early.screen(refresh, udpFlow()).kind).to.equal('admitted');
  });

  it('drops a refusal to a source over its rate instead of answering it', () => {
    const r = rig(1);
    r.overRate = true;
    expect(r.early.screen(PUBLISH, udpFlow()).kind).to.equal('refused');
    expect(r.asked).to.have.length(1);
    expect(r.h.sender.sent).to.have.length(0);
  });
});

import { expect } from 'chai';
import { pino } from 'pino';
import { loadClass, OverloadControl, type OverloadSettings } from '../../src/core/overload-control.js';
import type { SipRequest } from '../../src/sip/message.js';
import type { ReceiveDelay, ReceiveDelayReading } from '../../src/transport/receive-delay.js';
import { ManualTimers } from '../../src/util/timers.js';
import { request } from '../transaction/helpers.js';

const SETTINGS: OverloadSettings = { enabled: true, targetDelayMs: 50, intervalMs: 100, probeIntervalMs: 20, retryAfterSeconds: 2 };

/** Readings the test sets window by window (the probe's place). */
class ScriptedDelay implements ReceiveDelay {
  next: ReceiveDelayReading = { queueDelayMs: 0, measured: true, eventLoopLagMs: 0, cpuWaitMs: 0 };
  reads = 0;
  read(): ReceiveDelayReading {
    this.reads++;
    return this.next;
  }
  set(queueDelayMs: number, options: { lag?: number; measured?: boolean; cpuWait?: number } = {}): void {
    this.next = { queueDelayMs, measured: options.measured ?? true, eventLoopLagMs: options.lag ?? Math.min(queueDelayMs, 5), cpuWaitMs: options.cpuWait ?? 0 };
  }
}

/** A control on manual timers, with a random source the test picks. */
function control(random: () => number = () => 0.5) {
  const timers = new ManualTimers();
  const delay = new ScriptedDelay();
  const ctl = new OverloadControl({ delay, timers, settings: SETTINGS, random, logger: pino({ level: 'silent' }) });
  ctl.start();
  /** Runs `windows` control windows with the reading `ms`. */
  const windows = (n: number, ms: number, options: { lag?: number; measured?: boolean; cpuWait?: number } = {}): void => {
    delay.set(ms, options);
    timers.advance(n * SETTINGS.intervalMs);
  };
  return { ctl, timers, delay, windows };
}

const NEW = (): SipRequest => request({ method: 'SUBSCRIBE', branch: 'z9hG4bKn1' });
const IN_DIALOG = (): SipRequest => request({ method: 'SUBSCRIBE', branch: 'z9hG4bKd1', toTag: 'dlg' });

describe('core: overload control', () => {
  describe('loadClass', () => {
    it('calls out-of-dialog requests new work, and requests that keep existing state ongoing', () => {
      for (const method of ['SUBSCRIBE', 'PUBLISH', 'MESSAGE', 'REGISTER', 'OPTIONS', 'INVITE']) {
        expect(loadClass(request({ method })), method).to.equal('new');
      }
      // In a dialog: refreshes, unsubscribes, NOTIFY, BYE.
      for (const method of ['SUBSCRIBE', 'NOTIFY', 'BYE', 'MESSAGE']) {
        expect(loadClass(request({ method, toTag: 't1' })), method).to.equal('ongoing');
      }
      // RFC 3903 §4.4: refresh, modify or remove of a publication that exists.
      expect(loadClass(request({ method: 'PUBLISH', extraHeaders: ['SIP-If-Match: dx200xyz'] }))).to.equal('ongoing');
      expect(loadClass(request({ method: 'CANCEL' }))).to.equal(undefined);
      expect(loadClass(request({ method: 'ACK' }))).to.equal(undefined);
    });
  });

  it('serves everything while the delay stays under the target', () => {
    const { ctl, delay, windows } = control(() => 0);
    windows(50, 40);
    expect(delay.reads).to.equal(50);
    expect(ctl.level).to.equal(0);
    expect(ctl.admit(NEW())).to.equal(0);
    expect(ctl.stats().shed).to.deep.equal({ new: 0, ongoing: 0 });
  });

  it('does not act on one slow window, nor on a queue that drains by itself', () => {
    const { ctl, windows } = control();
    windows(1, 300);
    windows(1, 10);
    expect(ctl.level).to.equal(0);
    // Over the target for long, but falling every window: the backlog of a burst going away.
    for (const ms of [400, 350, 300, 250, 200, 150, 100, 60]) windows(1, ms);
    expect(ctl.level).to.equal(0);
  });

  it('ignores the window of a stall and judges by the windows after it', () => {
    const { ctl, windows } = control();
    // A 600 ms GC pause: one late reading, then its backlog drains.
    windows(1, 600, { lag: 600 });
    windows(1, 500);
    windows(1, 300);
    windows(1, 20);
    expect(ctl.level).to.equal(0);
    // Stalls in a row are the load itself (iterations longer than a window): they count.
    windows(1, 700, { lag: 700 });
    windows(1, 800, { lag: 800 });
    windows(1, 900, { lag: 900 });
    expect(ctl.level).to.be.greaterThan(0);
  });

  it('counts the time the SIP thread waited for a CPU as the host\'s delay, not the load\'s', () => {
    const { ctl, windows } = control();
    // Other processes held the CPU for 40 ms of each window: a delay of 85 ms is theirs.
    windows(10, 85, { cpuWait: 40 });
    expect(ctl.level).to.equal(0);
    // The same delay with the CPU ours: a queue of our own work.
    windows(2, 85);
    expect(ctl.level).to.be.greaterThan(0);
    // However long the wait, the bar rises by one target at most: a queue of 120 ms is acted on.
    const { ctl: starved, windows: starvedWindows } = control();
    starvedWindows(3, 120, { cpuWait: 100 });
    expect(starved.level).to.be.greaterThan(0);
  });

  it('refuses a growing share of new work while the delay stands over the target and grows, then all of it', () => {
    const { ctl, windows } = control();
    windows(1, 80);
    expect(ctl.level).to.equal(0); // one window over: not yet
    windows(1, 100);
    const first = ctl.level;
    // GAIN 1/s × (100 − 50)/50 × 0.1 s
    expect(first).to.be.closeTo(0.1, 1e-9);
    windows(1, 100); // standing (not falling) counts as well
    expect(ctl.level).to.be.closeTo(0.2, 1e-9);
    windows(1, 95); // falling: held
    expect(ctl.level).to.be.closeTo(0.2, 1e-9);
    // A queue seconds deep (no probe back in the window: the oldest one's age, a lower bound):
    // all new work refused at once, but not ongoing work in the same step.
    windows(1, 1000, { measured: false });
    expect(ctl.level).to.equal(1);
    // Still growing with all new work refused: ongoing work too, by what exceeds twice the target.
    windows(1, 2000, { measured: false });
    expect(ctl.level).to.equal(2);
  });

  it('refuses ongoing work only while the delay stays over twice the target with all new work refused', () => {
    const { ctl, windows } = control();
    windows(1, 60);
    windows(2, 300); // 0.5, then 1 (capped)
    expect(ctl.level).to.equal(1);
    windows(5, 90); // over the target, under twice it: held at 1
    expect(ctl.level).to.equal(1);
    windows(1, 150); // (150 − 100) / 50 × 0.1
    expect(ctl.level).to.be.closeTo(1.1, 1e-9);
  });

  it('refuses new requests first and ongoing ones only above level 1, never CANCEL or ACK', () => {
    let r = 0;
    const { ctl, windows } = control(() => r);
    windows(1, 60);
    windows(2, 300); // +0.5 a window up to 1
    windows(3, 400); // then + (400 − 100) / 50 × 0.1 a window, up to 2
    expect(ctl.level).to.equal(2);
    const { ctl: half, windows: halfWindows } = control(() => r);
    halfWindows(1, 60);
    halfWindows(1, 300);
    expect(half.level).to.be.closeTo(0.5, 1e-9);
    r = 0.49;
    expect(half.admit(NEW())).to.be.greaterThan(0);
    expect(half.admit(IN_DIALOG())).to.equal(0);
    r = 0.51;
    expect(half.admit(NEW())).to.equal(0);
    expect(half.stats().shed).to.deep.equal({ new: 1, ongoing: 0 });
    // At the top, everything but CANCEL and ACK.
    r = 0.99;
    expect(ctl.admit(NEW())).to.be.greaterThan(0);
    expect(ctl.admit(IN_DIALOG())).to.be.greaterThan(0);
    expect(ctl.admit(request({ method: 'PUBLISH', extraHeaders: ['SIP-If-Match: e1'] }))).to.be.greaterThan(0);
    expect(ctl.admit(request({ method: 'CANCEL' }))).to.equal(0);
    expect(ctl.admit(request({ method: 'ACK' }))).to.equal(0);
    expect(ctl.stats().shed).to.deep.equal({ new: 1, ongoing: 2 });
  });

  it('answers with a Retry-After from retryAfterSeconds to twice that', () => {
    let r = 0;
    const { ctl, windows } = control(() => r);
    windows(1, 60);
    windows(2, 300);
    const seen = new Set<number>();
    for (const x of [0, 0.2, 0.34, 0.5, 0.67, 0.9, 0.999]) {
      r = x;
      seen.add(ctl.admit(NEW()));
    }
    expect([...seen].sort()).to.deep.equal([2, 3, 4]);
  });

  it('serves everything again once the delay is back under the target', () => {
    const { ctl, windows } = control();
    windows(1, 60);
    windows(2, 300);
    windows(3, 400);
    expect(ctl.level).to.equal(2);
    // Refusing ongoing work ends first: 0.4 a window down to 1 (at most), then 0.1 a window.
    windows(2, 0);
    expect(ctl.level).to.be.closeTo(1.2, 1e-9);
    windows(1, 0);
    expect(ctl.level).to.equal(1);
    windows(9, 0);
    expect(ctl.level).to.be.closeTo(0.1, 1e-9);
    windows(1, 0);
    expect(ctl.level).to.equal(0);
    expect(ctl.admit(NEW())).to.equal(0);
    expect(ctl.admit(IN_DIALOG())).to.equal(0);
  });

  it('reports the last reading and stops reading once stopped', () => {
    const { ctl, delay, windows } = control();
    windows(1, 42, { lag: 7, cpuWait: 3 });
    expect(ctl.stats()).to.include({ queueDelayMs: 42, eventLoopLagMs: 7, cpuWaitMs: 3, level: 0 });
    ctl.stop();
    const reads = delay.reads;
    windows(10, 500);
    expect(delay.reads).to.equal(reads);
  });
});

import { expect } from 'chai';
import { ManualTimers, TimerHeap, type TimerHandle } from '../../src/util/timers.js';

describe('util/timers', () => {
  describe('ManualTimers', () => {
    it('runs timers in deadline order', () => {
      const t = new ManualTimers();
      const log: string[] = [];
      t.schedule(300, () => log.push('c'));
      t.schedule(100, () => log.push('a'));
      t.schedule(200, () => log.push('b'));
      t.schedule(0, () => log.push('zero'));
      t.advance(1000);
      expect(log).to.deep.equal(['zero', 'a', 'b', 'c']);
      expect(t.size).to.equal(0);
    });

    it('runs ties in insertion order', () => {
      const t = new ManualTimers();
      const log: number[] = [];
      for (let i = 0; i < 50; i++) t.schedule(10, () => log.push(i));
      t.advance(10);
      expect(log).to.deep.equal(Array.from({ length: 50 }, (_, i) => i));
    });

    it('runs ties in insertion order even when scheduled at different times', () => {
      const t = new ManualTimers();
      const log: string[] = [];
      t.schedule(10, () => log.push('first'));
      t.advance(5);
      t.schedule(5, () => log.push('second'));
      t.schedule(4, () => log.push('earlier'));
      t.advance(5);
      expect(log).to.deep.equal(['earlier', 'first', 'second']);
    });

    it('advances step by step: nothing fires before its deadline, each at its own time', () => {
      const t = new ManualTimers(1000);
      const seen: number[] = [];
      t.schedule(10, () => seen.push(t.now()));
      t.schedule(25, () => seen.push(t.clock.now()));
      t.advance(9);
      expect(seen).to.deep.equal([]);
      expect(t.now()).to.equal(1009);
      t.advance(1);
      expect(seen).to.deep.equal([1010]);
      t.advance(100);
      expect(seen).to.deep.equal([1010, 1025]);
      expect(t.now()).to.equal(1110);
    });

    it('advance(0) runs what is due now', () => {
      const t = new ManualTimers();
      let ran = 0;
      t.schedule(0, () => ran++);
      t.schedule(-50, () => ran++);
      expect(ran).to.equal(0);
      t.advance(0);
      expect(ran).to.equal(2);
    });

    it('cancel stops a timer and is idempotent', () => {
      const t = new ManualTimers();
      const log: string[] = [];
      const a = t.schedule(10, () => log.push('a'));
      t.schedule(20, () => log.push('b'));
      expect(t.size).to.equal(2);
      t.cancel(a);
      expect(a.cancelled).to.equal(true);
      expect(t.size).to.equal(1);
      t.cancel(a);
      t.cancel(undefined);
      expect(t.size).to.equal(1);
      t.advance(100);
      expect(log).to.deep.equal(['b']);
      expect(t.size).to.equal(0);
    });

    it('lets go of a callback once it is cancelled or has run, though its entry waits in the heap', () => {
      const t = new ManualTimers();
      const big = { payload: 'a whole transaction' };
      const a = t.schedule(10_000, () => big.payload);
      const b = t.schedule(5, () => big.payload);
      const callbackOf = (h: TimerHandle) => (h as unknown as { fn: () => unknown }).fn();
      expect(callbackOf(a)).to.equal(big.payload);
      t.cancel(a);
      expect(callbackOf(a)).to.equal(undefined);
      t.advance(5);
      expect(callbackOf(b)).to.equal(undefined);
    });

    it('calls one shared function with each timer\'s own argument, and lets go of the argument once cancelled or run', () => {
      const t = new ManualTimers();
      const fired: string[] = [];
      const expire = (who: { name: string }) => fired.push(who.name);
      const a = t.schedule(20, expire, { name: 'a' });
      t.schedule(10, expire, { name: 'b' });
      const c = t.schedule(30, expire, { name: 'c' });
      const argOf = (h: TimerHandle) => (h as unknown as { arg: unknown }).arg;
      t.cancel(c);
      expect(argOf(c)).to.equal(undefined);
      t.advance(30);
      expect(fired).to.deep.equal(['b', 'a']);
      expect(argOf(a)).to.equal(undefined);
    });

    it('cancelling a timer that already fired changes nothing', () => {
      const t = new ManualTimers();
      const h = t.schedule(1, () => {});
      t.schedule(100, () => {});
      t.advance(1);
      expect(h.cancelled).to.equal(true);
      expect(t.size).to.equal(1);
      t.cancel(h);
      expect(t.size).to.equal(1);
    });

    it('a timer can cancel a later one', () => {
      const t = new ManualTimers();
      const log: string[] = [];
      let later: TimerHandle | undefined;
      t.schedule(5, () => {
        log.push('first');
        t.cancel(later);
      });
      later = t.schedule(10, () => log.push('later'));
      t.advance(20);
      expect(log).to.deep.equal(['first']);
      expect(t.size).to.equal(0);
    });

    it('a timer can cancel a sibling due at the same time', () => {
      const t = new ManualTimers();
      const log: string[] = [];
      const handles: TimerHandle[] = [];
      handles.push(t.schedule(5, () => { log.push('a'); t.cancel(handles[1]); }));
      handles.push(t.schedule(5, () => log.push('b')));
      handles.push(t.schedule(5, () => log.push('c')));
      t.advance(5);
      expect(log).to.deep.equal(['a', 'c']);
      expect(t.size).to.equal(0);
    });

    it('runs timers scheduled from timers at their own time, within the same advance', () => {
      const t = new ManualTimers();
      const log: Array<[string, number]> = [];
      t.schedule(10, () => {
        log.push(['outer', t.now()]);
        t.schedule(5, () => {
          log.push(['inner', t.now()]);
          t.schedule(0, () => log.push(['immediate', t.now()]));
        });
        t.schedule(100, () => log.push(['too-late', t.now()]));
      });
      t.schedule(12, () => log.push(['between', t.now()]));
      t.advance(50);
      expect(log).to.deep.equal([['outer', 10], ['between', 12], ['inner', 15], ['immediate', 15]]);
      expect(t.size).to.equal(1);
      t.advance(60);
      expect(log[log.length - 1]).to.deep.equal(['too-late', 110]);
    });

    it('a periodic timer re-arming itself fires once per period', () => {
      const t = new ManualTimers();
      const ticks: number[] = [];
      const tick = (): void => {
        ticks.push(t.now());
        if (ticks.length < 100) t.schedule(1000, tick);
      };
      t.schedule(1000, tick);
      t.advance(10_500);
      expect(ticks).to.deep.equal(Array.from({ length: 10 }, (_, i) => (i + 1) * 1000));
      t.advance(1_000_000);
      expect(ticks).to.have.length(100);
      expect(t.size).to.equal(0);
    });

    it('counts live timers in size', () => {
      const t = new ManualTimers();
      const hs = Array.from({ length: 10 }, (_, i) => t.schedule(i * 10, () => {}));
      expect(t.size).to.equal(10);
      t.cancel(hs[9]);
      expect(t.size).to.equal(9);
      t.advance(35); // fires 0, 10, 20, 30
      expect(t.size).to.equal(5);
      t.advance(1000);
      expect(t.size).to.equal(0);
    });

    it('reports the next live deadline, skipping cancelled ones', () => {
      const t = new ManualTimers(100);
      expect(t.nextDeadline()).to.equal(undefined);
      const a = t.schedule(5, () => {});
      t.schedule(50, () => {});
      expect(t.nextDeadline()).to.equal(105);
      t.cancel(a);
      expect(t.nextDeadline()).to.equal(150);
    });

    it('keeps running after a callback throws, reporting to onError', () => {
      const t = new ManualTimers();
      const errors: unknown[] = [];
      t.onError = (e) => errors.push(e);
      const log: string[] = [];
      t.schedule(1, () => {
        throw new Error('boom');
      });
      t.schedule(2, () => log.push('after'));
      t.advance(5);
      expect(log).to.deep.equal(['after']);
      expect(errors).to.have.length(1);
      expect((errors[0] as Error).message).to.equal('boom');
      expect(t.size).to.equal(0);
    });

    it('compacts the heap under many cancels and still fires the rest in order', () => {
      const t = new ManualTimers();
      const fired: number[] = [];
      const handles: TimerHandle[] = [];
      // deadlines in a scrambled order so the heap has real work to do
      for (let i = 0; i < 10_000; i++) {
        const at = (i * 7919) % 10_000;
        handles.push(t.schedule(at, () => fired.push(at)));
      }
      expect(t.size).to.equal(10_000);
      const kept: number[] = [];
      for (let i = 0; i < 10_000; i++) {
        if (i % 10 === 0) kept.push((i * 7919) % 10_000);
        else t.cancel(handles[i]);
      }
      expect(t.size).to.equal(1_000);
      // compaction must have dropped most cancelled entries from the heap
      const heapLength = (t as unknown as { heap: unknown[] }).heap.length;
      expect(heapLength).to.be.at.most(2 * 1_000 + 1024);
      t.advance(5_000);
      const firstHalf = kept.filter((d) => d <= 5_000).sort((a, b) => a - b);
      expect(fired).to.deep.equal(firstHalf);
      t.advance(10_000);
      expect(fired).to.deep.equal([...kept].sort((a, b) => a - b));
      expect(t.size).to.equal(0);
      expect(t.nextDeadline()).to.equal(undefined);
    });

    it('keeps tie order across compaction', () => {
      const t = new ManualTimers();
      const fired: number[] = [];
      const handles: TimerHandle[] = [];
      for (let i = 0; i < 5_000; i++) handles.push(t.schedule(i % 3 === 0 ? 7 : 50, () => fired.push(i)));
      for (let i = 0; i < 5_000; i++) if (i % 4 !== 0) t.cancel(handles[i]);
      t.advance(100);
      const expected = [
        ...Array.from({ length: 5_000 }, (_, i) => i).filter((i) => i % 4 === 0 && i % 3 === 0),
        ...Array.from({ length: 5_000 }, (_, i) => i).filter((i) => i % 4 === 0 && i % 3 !== 0),
      ];
      expect(fired).to.deep.equal(expected);
    });

    it('matches a sorted reference under random schedule/cancel/advance', () => {
      let s = 0x9e3779b9;
      const rnd = (n: number): number => {
        s ^= s << 13; s >>>= 0;
        s ^= s >>> 17;
        s ^= s << 5; s >>>= 0;
        return s % n;
      };
      const t = new ManualTimers();
      const live = new Map<number, { at: number; handle: TimerHandle }>();
      const fired: Array<[number, number]> = [];
      const expected: Array<{ id: number; at: number }> = [];
      let id = 0;
      for (let step = 0; step < 3_000; step++) {
        const op = rnd(10);
        if (op < 6) {
          const myId = id++;
          const delay = rnd(500);
          const handle = t.schedule(delay, () => {
            fired.push([myId, t.now()]);
            live.delete(myId);
          });
          live.set(myId, { at: t.now() + delay, handle });
          expected.push({ id: myId, at: t.now() + delay });
        } else if (op < 8 && live.size > 0) {
          const keys = [...live.keys()];
          const k = keys[rnd(keys.length)]!;
          t.cancel(live.get(k)!.handle);
          live.delete(k);
          const i = expected.findIndex((e) => e.id === k);
          expected.splice(i, 1);
        } else {
          t.advance(rnd(200));
        }
        expect(t.size).to.equal(live.size);
      }
      t.advance(10_000);
      expected.sort((a, b) => a.at - b.at || a.id - b.id);
      expect(fired.map(([i]) => i)).to.deep.equal(expected.map((e) => e.id));
      for (const [i, at] of fired) expect(at).to.equal(expected.find((e) => e.id === i)!.at);
    });
  });

  describe('TimerHeap with an injected clock', () => {
    it('runDue runs what is due at the given time and returns the count', () => {
      let now = 0;
      const h = new TimerHeap({ now: () => now }, { manual: true });
      const log: string[] = [];
      h.schedule(10, () => log.push('a'));
      h.schedule(20, () => log.push('b'));
      h.schedule(30, () => log.push('c'));
      expect(h.runDue()).to.equal(0);
      now = 20;
      expect(h.runDue()).to.equal(2);
      expect(log).to.deep.equal(['a', 'b']);
      expect(h.runDue(100)).to.equal(1);
      expect(h.size).to.equal(0);
    });

    it('computes deadlines from the clock at scheduling time', () => {
      let now = 500;
      const h = new TimerHeap({ now: () => now }, { manual: true });
      const handle = h.schedule(100, () => {});
      expect(handle.at).to.equal(600);
      now = 550;
      expect(h.schedule(10, () => {}).at).to.equal(560);
      expect(h.nextDeadline()).to.equal(560);
    });

    it('stop() on a real-time heap clears its Node timer without running anything', () => {
      const h = new TimerHeap();
      let ran = false;
      h.schedule(60_000, () => {
        ran = true;
      });
      h.stop();
      expect(ran).to.equal(false);
      expect(h.size).to.equal(1);
      expect(h.nextDeadline()).to.be.a('number');
    });
  });
});

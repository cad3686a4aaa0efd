#!/usr/bin/env python3
"""A model of overload control (src/core/overload-control.ts, src/transport/receive-delay.ts)
on a simulated event loop, to see how its rules behave where a real run cannot be arranged:
a server exactly at capacity, GC-like pauses of chosen lengths, a 503 of chosen cost.

  python3 bench/overload-sim.py

The loop: Poisson arrivals of requests into a UDP queue; each turn, the due timers (the probe
every 20 ms, stamped when it leaves; the control every 100 ms), then up to 32 datagrams read,
a request costing `cost` seconds served or `shed_cost` refused; pauses block the loop.
Offered: half the capacity's 2,000/s sustained rate for 10 s, the sustained rate for 10 s,
2 × for 20 s, half again for 6 s. Printed per stretch: completed/s, refused/s, p99 (ms).
The model is simpler than the server (one class of request, no retransmissions, no CPU wait).
"""
import collections, random, sys

CAPACITY = 2200.0      # requests/s the loop can serve
SUSTAINED = 2000.0     # what a benchmark would find it sustains (91 % of the capacity)
TARGET, WINDOW, PROBE = 0.050, 0.100, 0.020
GAIN, WINDOWS_OVER, ONGOING_FACTOR = 1.0, 2, 2


class Control:
    """overload-control.ts's update(), for one class of (new) requests."""

    def __init__(self):
        self.level, self.previous, self.over, self.stalled = 0.0, 0.0, 0, False

    def update(self, d, lag, measured):
        if lag >= WINDOW and not self.stalled:
            self.stalled, self.over, self.previous = True, 0, max(d, lag)
            return
        self.stalled = lag >= WINDOW
        error = (d - TARGET) / TARGET
        self.over = self.over + 1 if error > 0 else 0
        rising = d >= self.previous
        if measured:
            self.previous = d
        if error > 0 and self.over >= WINDOWS_OVER and rising:
            if self.level < 1:
                self.level = min(1.0, self.level + GAIN * error * WINDOW)
            elif d > ONGOING_FACTOR * TARGET:
                self.level += GAIN * (d - ONGOING_FACTOR * TARGET) / TARGET * WINDOW
        elif error < 0:
            step = GAIN * error * WINDOW
            self.level = max(1.0, self.level + ONGOING_FACTOR ** 2 * step) if self.level > 1 else self.level + step
        self.level = 0.0 if self.level < 1e-3 else min(2.0, self.level)


def run(shed_ratio, pauses, seed=1, end=46.0):
    random.seed(seed)
    rate = lambda t: SUSTAINED / 2 if t < 10 else SUSTAINED if t < 20 else 2 * SUSTAINED if t < 40 else SUSTAINED / 2
    arrivals, t = collections.deque(), 0.0
    while t < end:
        t += random.expovariate(rate(t))
        arrivals.append(t)
    pause_at = collections.deque(sorted((k * every + offset, length) for every, offset, length in pauses for k in range(int(end / every))))
    cost, shed_cost = 1 / CAPACITY, shed_ratio / CAPACITY
    ctl, clock, queue = Control(), 0.0, collections.deque()
    probe_due, tick_due, lag_max, lag_min = PROBE, WINDOW, 0.0, float("inf")
    returned, outstanding = [], collections.deque()
    per_second = collections.defaultdict(lambda: [0, 0, []])
    while clock < end + 2:
        while arrivals and arrivals[0] <= clock:
            queue.append(("request", arrivals.popleft()))
        if clock >= probe_due:
            lag = clock - probe_due
            lag_max, lag_min = max(lag_max, lag), min(lag_min, lag)
            outstanding.append(clock)
            queue.append(("probe", clock))
            probe_due = clock + PROBE
        if clock >= tick_due:
            pending = max(0.0, clock - probe_due)
            d, measured = (lag_min if lag_min < float("inf") else pending), True
            if returned and min(returned) >= d:
                d = min(returned)
            elif not returned and outstanding and clock - outstanding[0] > d:
                d, measured = clock - outstanding[0], False
            ctl.update(d, max(lag_max, pending), measured)
            returned, lag_max, lag_min = [], 0.0, float("inf")
            tick_due = clock + WINDOW
        if pause_at and pause_at[0][0] <= clock:
            clock += pause_at.popleft()[1]
            continue
        if not queue:
            clock = max(clock, min(probe_due, tick_due, arrivals[0] if arrivals else end + 2))
            continue
        for _ in range(min(32, len(queue))):
            kind, at = queue.popleft()
            if kind == "probe":
                returned.append(clock - at)
                while outstanding and outstanding[0] <= at:
                    outstanding.popleft()
                continue
            refused = random.random() < min(1.0, ctl.level)
            clock += shed_cost if refused else cost
            row = per_second[int(at)]
            if refused:
                row[1] += 1
            else:
                row[0] += 1
                row[2].append(clock - at)
    return per_second


def stretch(per_second, lo, hi):
    done = sum(per_second[s][0] for s in range(lo, hi)) / (hi - lo)
    refused = sum(per_second[s][1] for s in range(lo, hi)) / (hi - lo)
    times = sorted(x for s in range(lo, hi) for x in per_second[s][2])
    p99 = times[int(0.99 * len(times))] * 1000 if times else float("nan")
    return f"{done:5.0f} {refused:5.0f} {p99:5.0f}"


def main():
    print(f"capacity {CAPACITY:.0f}/s, sustained {SUSTAINED:.0f}/s; per stretch: completed/s refused/s p99 ms")
    print(f"{'503 cost':>8} {'pauses':28} | {'half load':17} | {'sustained':17} | {'2 x':17} | {'back to half':17}")
    for shed_ratio in (0.1, 0.2):
        for label, pauses in (("none", ()), ("30 ms/s, 150 ms/5 s", ((1.0, 0.37, 0.03), (5.0, 2.1, 0.15))),
                              ("30 ms/s, 300 ms/5 s", ((1.0, 0.37, 0.03), (5.0, 2.1, 0.3))),
                              ("30 ms/s, 600 ms/5 s", ((1.0, 0.37, 0.03), (5.0, 2.1, 0.6)))):
            r = run(shed_ratio, pauses)
            print(f"{shed_ratio:8.0%} {label:28} | {stretch(r, 1, 10)} | {stretch(r, 11, 20)} | {stretch(r, 22, 40)} | {stretch(r, 41, 46)}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()

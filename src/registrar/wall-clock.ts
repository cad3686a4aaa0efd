import type { Timers, WallClock } from '../util/timers.js';

/**
 * A wall clock that advances with the timer structure's clock: the real time in
 * production (monotonic, immune to clock steps after start), the driven time in tests.
 * Stored expiries are wall-clock ms; their timers run on `timers`, so both must agree.
 */
export function timersWallClock(timers: Timers, epochMs: number = Date.now()): WallClock {
  const offset = epochMs - timers.clock.now();
  return { nowMs: () => Math.round(offset + timers.clock.now()) };
}

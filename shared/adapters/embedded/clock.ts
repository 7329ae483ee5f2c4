import type { Clock } from '../../ports/index.ts';

/** Clocks for the embedded runs: a manual one for simulated time and tests, and the system clock. */

export class ClockError extends Error {
  override readonly name = 'ClockError';
}

const requireTime = (ms: number, what: string): void => {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new ClockError(`clock/bad-time: ${what} ${ms}`);
};

/** Time moves only when told to, and never backwards (simulated time is monotonic like epoch ms). */
export class ManualClock implements Clock {
  #now: number;

  constructor(startMs = 0) {
    requireTime(startMs, 'start');
    this.#now = startMs;
  }

  nowMs(): number {
    return this.#now;
  }

  set(ms: number): void {
    requireTime(ms, 'set');
    if (ms < this.#now) throw new ClockError(`clock/backwards: ${ms} is before ${this.#now}`);
    this.#now = ms;
  }

  advance(ms: number): void {
    requireTime(ms, 'advance');
    this.#now += ms;
  }
}

/** Wall-clock time; lives here because shared/domain never reads a clock. */
export const systemClock: Clock = { nowMs: () => Date.now() };

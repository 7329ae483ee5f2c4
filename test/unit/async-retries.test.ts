import { describe, expect, it } from 'vitest';
import { asyncEventExpired, asyncRetriesWithin, asyncRetryAfterSeconds } from '../../shared/topology.ts';

/** Lambda's asynchronous retries, as the local runner gives a failed tick them (docs/RELIABILITY.md, tick-retry-age). */
describe('asyncRetryAfterSeconds', () => {
  it('retries a minute after the first attempt and two after the second, as many times as the maximum age allows', () => {
    expect([asyncRetryAfterSeconds(1, 0, 180), asyncRetryAfterSeconds(2, 60, 180)]).toEqual([60, 120]);
    expect(asyncRetryAfterSeconds(3, 180, 6 * 3600)).toBeUndefined();
    expect(asyncRetryAfterSeconds(2, 60, 120)).toBeUndefined();
    expect(asyncRetryAfterSeconds(1, 0, 59)).toBeUndefined();
  });

  it('gives no retry that would come past the maximum age', () => {
    expect(asyncRetryAfterSeconds(1, 60, 120)).toBe(60);
    expect(asyncRetryAfterSeconds(1, 61, 120)).toBeUndefined();
  });

  it('agrees with the retries the stack configures for every maximum age', () => {
    for (const maxAge of [30, 60, 119, 120, 179, 180, 3600, 21_600]) {
      let retries = 0;
      let age = 0;
      for (let delay = asyncRetryAfterSeconds(1, age, maxAge); delay !== undefined; ) {
        retries += 1;
        age += delay;
        delay = asyncRetryAfterSeconds(retries + 1, age, maxAge);
      }
      expect({ maxAge, retries }).toEqual({ maxAge, retries: asyncRetriesWithin(maxAge) });
    }
  });

  it('discards an event only once it is older than its maximum age, to the second', () => {
    expect([asyncEventExpired(120.9, 120), asyncEventExpired(121, 120)]).toEqual([false, true]);
  });
});

import { describe, expect, it } from 'vitest';
import { parsePrice } from '../../shared/domain/units.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Found by a review of time, session 27: evaluateTick accepts a tick up to maxClockSkewSeconds (5 s) ahead of
 * margin-check's clock and records its timestamp as the market's last; every later tick stamped below it was
 * refused as 'tick/out-of-order', even with a newer sequence and a correct timestamp. One tick stamped 4.9 s ahead
 * dropped the next 4.9 s of real prices, and positions they crossed stayed OPEN. Within the skew the sequence
 * orders now.
 */
describe('a tick from the near future', () => {
  it('accepts the next, newer-sequence tick with a correct timestamp after one stamped a few seconds ahead', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200'); // liquidated below 184.6
    // Stamped 4.9 s ahead of this container's clock: within the 5 s skew, accepted.
    const ahead = await p.deliverTick({
      symbol: 'ETH-USD',
      markPrice: parsePrice('199'),
      timestampMs: p.clock.nowMs() + 4_900,
      sequence: 100,
      source: 'test',
    });
    expect(ahead.status).toBe('accepted');
    // One second later the feed's next print, correctly stamped, crosses the long.
    p.clock.advance(1_000);
    const next = await p.deliverTick({
      symbol: 'ETH-USD',
      markPrice: parsePrice('180'),
      timestampMs: p.clock.nowMs(),
      sequence: 101,
      source: 'test',
    });
    expect(next).toMatchObject({ status: 'accepted' });
    expect((await p.adapters.positions.get(long.id))?.state).toBe('LIQUIDATING');
  });
});

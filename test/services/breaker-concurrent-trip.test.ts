import { describe, expect, it } from 'vitest';
import type { Tick } from '../../shared/domain/tick.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import type { MarketState } from '../../shared/ports/index.ts';
import { handleTick, type MarginCheckDeps } from '../../shared/services/margin-check.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

const tickAt = (p: Pipeline, price: string, sequence: number): Tick => ({
  symbol: 'ETH-USD',
  markPrice: parsePrice(price),
  timestampMs: p.clock.nowMs(),
  sequence,
  source: 'test',
});

/**
 * Two invocations of margin-check for consecutive ticks of one market run at once (EventBridge invokes Lambda
 * asynchronously: nothing serialises a market's ticks). The newer one reads the market before the older one's
 * breaker trip lands, then is judged on that read.
 */
function readingBefore(p: Pipeline, meanwhile: () => Promise<unknown>): MarginCheckDeps {
  const markets = p.marginDeps.markets;
  let first = true;
  return {
    ...p.marginDeps,
    markets: new Proxy(markets, {
      get(target, key) {
        if (key === 'get') {
          return async (symbol: string): Promise<MarketState | undefined> => {
            const read = await target.get(symbol);
            if (first) {
              first = false;
              await meanwhile();
            }
            return read;
          };
        }
        const value = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }),
  };
}

// Found by a review of the tick path in session 25: a trip was guarded on the last tick only, so a tick judged on
// a market read before another tick's trip landed wrote its own trip over it (docs/RELIABILITY.md, trip-on-stale-breaker).
describe('margin-check: a breaker trip judged on a breaker that has moved', () => {
  it('a print that agrees with the print that just tripped the breaker (a real crash) closes it, even when judged concurrently', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200', { sequence: 0 }); // a market's first print waits for a second
    await p.tick('ETH-USD', '200', { sequence: 1 });
    const long = await p.open('LONG', '10', '200', '200'); // liquidatable below ~184.6
    p.clock.advance(10_000);
    // A real crash: 160 is 20 % below 200 (beyond the 15 % band) and trips the breaker; 160.5 agrees with it,
    // stamped 5 s later (breakerConfirmSeconds: the move persisted).
    // Tick 3's invocation reads the market, then tick 2's invocation trips the breaker, then tick 3 is judged.
    let tripped: unknown;
    const deps = readingBefore(p, async () => {
      const earlier = { ...tickAt(p, '160', 2), timestampMs: p.clock.nowMs() - 5_000 };
      tripped = await handleTick(earlier, p.marginDeps, p.clock.nowMs());
    });
    // Tick 3's invocation runs 5 s after the trip (breakerConfirmSeconds on this service's clock too).
    const outcome = await handleTick(tickAt(p, '160.5', 3), deps, p.clock.nowMs() + 5_000);
    expect(tripped).toMatchObject({ status: 'rejected', reason: 'tick/price-band' });

    // As if served one after the other: tick 3 is judged again on tick 2's breaker, accepted (it agrees), and
    // starts the crossed long (before the fix it was refused and re-armed the breaker over tick 2's).
    expect(outcome).toMatchObject({ status: 'accepted' });
    expect((await p.adapters.positions.get(long.id))?.state).toBe('LIQUIDATING');
  });
});

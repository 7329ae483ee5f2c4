import { expect, it } from 'vitest';
import type { MarketRepository } from '../../shared/ports/index.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { handleTick, type MarginCheckDeps } from '../../shared/services/margin-check.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';
import { adminDepsOf } from '../support/resume.ts';

/**
 * A trip or a hold is written only on the market its print was judged against (services/margin-check.ts). A feed
 * resumed below its sequence numbers new prints as the old ones were, so "the same market" is the same prints (their
 * numbers, marks and stamps), not the same numbers: judged on sequences alone, a bad print read before a resume
 * tripped the breaker on the resumed feed's print of the same number (review of session 35's resume).
 */

/**
 * Margin-check's dependencies whose trip first lets the operator resume the feed at 4991 and the new feed walk the
 * mark down to 105 by 5000, within the band: what happens between a bad print's read and its write.
 */
function resumedBeforeTrip(p: Pipeline): MarginCheckDeps {
  const markets = p.adapters.markets;
  let raced = false;
  return {
    ...p.marginDeps,
    markets: new Proxy(markets, {
      get: (target, key) => {
        if (key !== 'tripBreaker' || raced) return Reflect.get(target, key).bind(target);
        return async (...args: unknown[]) => {
          raced = true;
          const resumed = await handleAdmin(
            { action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 4991 },
            adminDepsOf(p),
          );
          expect(resumed).toMatchObject({ ok: true, sequence: { before: 5000, after: 4990 } });
          p.clock.advance(6_000);
          for (let sequence = 4991; sequence <= 5000; sequence++) {
            p.clock.advance(1_000);
            const mark = String(195 - (sequence - 4991) * 10);
            expect(await p.tick('ETH-USD', mark, { sequence })).toMatchObject({ status: 'accepted' });
          }
          return target.tripBreaker(...(args as Parameters<MarketRepository['tripBreaker']>));
        };
      },
    }) as MarketRepository,
  };
}

async function marketAt5000(): Promise<Pipeline> {
  const p = createPipeline();
  await p.tick('ETH-USD', '200', { sequence: 4999 }); // a market's first print waits for a second
  await p.tick('ETH-USD', '200', { sequence: 5000 });
  return p;
}

it('a print judged out of band before a feed resume does not trip the breaker of the resumed feed', async () => {
  const p = await marketAt5000();
  p.clock.advance(1_000);
  const print = {
    symbol: 'ETH-USD',
    markPrice: 100_00000000n,
    timestampMs: p.clock.nowMs(),
    sequence: 5001,
    source: 'old',
  };
  // Judged against old 5000 (200: out of the band). Its trip is refused (the market's 5000 is another print now);
  // judged again, it is the old feed's (stamped before the resume) and refused as such.
  const outcome = await handleTick(print, resumedBeforeTrip(p), p.clock.nowMs());
  expect(outcome).toMatchObject({ status: 'rejected', reason: 'tick/out-of-order' });
  const market = await p.adapters.markets.get('ETH-USD');
  expect(market?.breaker).toBeUndefined();
  expect(market?.lastTick).toMatchObject({ sequence: 5000, markPrice: 105_00000000n });
});

// review52-feed-breaker-guard-whole-print: the acceptance was guarded on the breaker's number alone, so a print
// judged to confirm a market's first print, landing after a resume lowered that print's number and the resumed feed's
// print of the old number re-armed the breaker, opened the market on the old feed's mark and closed the new feed's
// breaker.
it("a print judged to confirm a market's first print before a feed resume does not open the market on the resumed feed's breaker", async () => {
  const p = createPipeline();
  expect(await p.tick('ETH-USD', '200', { sequence: 5000 })).toMatchObject({ reason: 'tick/unconfirmed' });
  p.clock.advance(1_000);
  const confirming = {
    symbol: 'ETH-USD',
    markPrice: 200_00000000n,
    timestampMs: p.clock.nowMs(),
    sequence: 5001,
    source: 'old',
  };
  const markets = p.adapters.markets;
  let raced = false;
  const deps: MarginCheckDeps = {
    ...p.marginDeps,
    markets: new Proxy(markets, {
      get: (target, key) => {
        if (key !== 'acceptTick' || raced) return Reflect.get(target, key).bind(target);
        return async (...args: Parameters<MarketRepository['acceptTick']>) => {
          raced = true;
          // The operator resumes the feed below the first print; the resumed feed's 5000, at 300, re-arms the breaker.
          const resumed = await handleAdmin(
            { action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 4991 },
            adminDepsOf(p),
          );
          expect(resumed).toMatchObject({ ok: true, sequence: { before: 5000, after: 4990 } });
          p.clock.advance(6_000);
          expect(await p.tick('ETH-USD', '300', { sequence: 5000 })).toMatchObject({
            reason: 'tick/breaker-open',
          });
          return target.acceptTick(...args);
        };
      },
    }) as MarketRepository,
  };
  // Judged on the first print (first-confirmed). Its write is refused (the breaker holds another print of 5000 now);
  // judged again, it is the old feed's and refused as such. Before, accepted: the market opened at 200.
  expect(await handleTick(confirming, deps, p.clock.nowMs())).toMatchObject({
    status: 'rejected',
    reason: 'tick/out-of-order',
  });
  expect(raced).toBe(true);
  const market = await markets.get('ETH-USD');
  expect(market?.lastTick).toBeUndefined();
  expect(market?.breaker?.tick).toMatchObject({ sequence: 5000, markPrice: 300_00000000n });
});

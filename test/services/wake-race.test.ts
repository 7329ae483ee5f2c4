import { describe, expect, it, vi } from 'vitest';
import { parseRiskConfig } from '../../shared/domain/config.ts';
import { parseBase, parsePrice } from '../../shared/domain/units.ts';
import type { AuctionRecord } from '../../shared/ports/index.ts';
import { parseAuctionStepMessage } from '../../shared/schemas/messages.ts';
import { processAuctionStep } from '../../shared/services/auction.ts';
import { createPipeline } from '../support/pipeline.ts';
import { DEEP_AUCTION } from '../support/risk-configs.ts';

/**
 * Two SELL auctions of one market: A sleeps with wake mark 202 (the market's), B is awake at step 0 (top 204).
 * B's step plans a sleep with a wake mark of about 207.3 (its 10 % bidder reaches step 9's 186.56 from there),
 * while a tick at 203 wakes A and replaces the market's wake mark with the next sleeper it found.
 */
async function world() {
  const p = createPipeline({ config: parseRiskConfig(DEEP_AUCTION) });
  await p.tick('ETH-USD', '200'); // a market's first print waits for a second
  await p.tick('ETH-USD', '200');
  await p.provider('lp-1', '100000', '0.10', '100');
  const base = {
    symbol: 'ETH-USD',
    direction: 'SELL' as const,
    lot: parseBase('1'),
    remainingLot: parseBase('1'),
    resets: 0,
    state: 'RUNNING' as const,
    fills: [],
    version: 0,
  };
  const a: AuctionRecord = {
    ...base,
    id: 'auction-a',
    liquidationId: 'liq-a',
    top: parsePrice('204'),
    startedAtMs: p.clock.nowMs(),
    step: 3,
    wakeMark: parsePrice('202'),
  };
  const b: AuctionRecord = {
    ...base,
    id: 'auction-b',
    liquidationId: 'liq-b',
    top: parsePrice('204'),
    startedAtMs: p.clock.nowMs(),
    step: 0,
  };
  await p.adapters.auctions.create(a);
  await p.adapters.markets.coverWakeMark('ETH-USD', 'SELL', a.wakeMark!);
  await p.adapters.auctions.create(b);
  p.clock.advance(1_000);
  const stepB = (deps = p.deps) =>
    processAuctionStep({ auctionId: 'auction-b', step: 0, symbol: 'ETH-USD' }, deps);
  return { p, stepB };
}

/** After the race: B sleeps, and a tick past its wake mark must wake it. */
async function expectBWokenByATickPastItsWakeMark(p: Awaited<ReturnType<typeof world>>['p']) {
  const b = (await p.adapters.auctions.get('auction-b'))!;
  expect(b.state).toBe('RUNNING');
  expect(b.wakeMark).toBeGreaterThan(parsePrice('207'));
  expect(b.wakeMark).toBeLessThan(parsePrice('208'));
  const market = await p.adapters.markets.get('ETH-USD');
  // Drop what is already queued (A's woken message, B's planned one, 900 s away).
  for (const m of await p.adapters.auctionQueue.receive(10, 3600))
    await p.adapters.auctionQueue.delete(m.receiptHandle);
  await p.tick('ETH-USD', '208');
  const woken = (await p.adapters.auctionQueue.receive(10, 30)).map((m) => parseAuctionStepMessage(m.body));
  expect({
    marketWakeMarkCoversB: market?.wakeMarks?.SELL !== undefined && market.wakeMarks.SELL <= b.wakeMark!,
    bWokenAt208: woken.some((m) => m.auctionId === 'auction-b' && m.woken === true),
  }).toEqual({ marketWakeMarkCoversB: true, bWokenAt208: true });
}

describe("a sleeper's wake mark is never lost to a tick replacing the market's (wake-cover-race)", () => {
  it('a tick that runs while a step is between its market read and its commit: the step covers on the fresh item', async () => {
    const { p, stepB } = await world();
    let ticked = false;
    const deps = {
      ...p.deps,
      providers: {
        ...p.deps.providers,
        list: async (symbol: string) => {
          if (!ticked) {
            ticked = true;
            // The whole tick: wakes A, finds no other sleeper (B has not committed), removes the wake mark.
            await p.tick('ETH-USD', '203');
          }
          return p.deps.providers.list(symbol);
        },
      },
    };
    expect((await stepB(deps)).status).toBe('stepped');
    await expectBWokenByATickPastItsWakeMark(p);
  });

  it("a step that commits and covers between a tick's sleeper query and its replace: the cover's count stops the replace", async () => {
    const { p, stepB } = await world();
    const repo = p.adapters.auctions;
    const original = repo.sleepers.bind(repo);
    let stepped = false;
    vi.spyOn(repo, 'sleepers').mockImplementation(async (...args) => {
      const result = await original(...args);
      if (!stepped) {
        stepped = true;
        // B's whole step, after the tick's query and before its replaceWakeMark(202 -> next).
        expect((await stepB()).status).toBe('stepped');
      }
      return result;
    });
    await p.tick('ETH-USD', '203');
    vi.restoreAllMocks();
    await expectBWokenByATickPastItsWakeMark(p);
  });
});

/**
 * A window that left a side's wake mark as it was for 5 s after any cover of the side (so a sleeper the index did
 * not hold yet kept its mark) never replaced the mark while the side kept covering: every tick reaching it
 * queried the sleepers and sent every due sleeper's step again (a review's finding; the window was backed out).
 */
describe('wakes under continuous covers (the wake-index-lag window, backed out)', () => {
  it('a sleeper is woken once, not by every later tick, while others of its side keep covering', async () => {
    const p = createPipeline({ config: parseRiskConfig(DEEP_AUCTION) });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.provider('lp-1', '100000', '0.10', '100');
    const base = {
      symbol: 'ETH-USD',
      direction: 'SELL' as const,
      lot: parseBase('1'),
      remainingLot: parseBase('1'),
      resets: 0,
      state: 'RUNNING' as const,
      fills: [],
      version: 0,
      top: parsePrice('204'),
      startedAtMs: p.clock.nowMs(),
    };
    const a: AuctionRecord = {
      ...base,
      id: 'auction-a',
      liquidationId: 'liq-a',
      step: 3,
      wakeMark: parsePrice('202'),
    };
    const c: AuctionRecord = {
      ...base,
      id: 'auction-c',
      liquidationId: 'liq-c',
      step: 1,
      wakeMark: parsePrice('250'),
    };
    await p.adapters.auctions.create(a);
    await p.adapters.markets.coverWakeMark('ETH-USD', 'SELL', a.wakeMark!);
    await p.adapters.auctions.create(c);
    await p.adapters.markets.coverWakeMark('ETH-USD', 'SELL', c.wakeMark!);
    p.clock.advance(50_000);

    // 20 ticks a second apart reach A's mark; meanwhile other auctions of the side keep covering (every 2 s a
    // sleep far from the mark, as C's), and the auction queue has a backlog: A's woken step has not run yet.
    let woken = 0;
    for (let i = 0; i < 20; i++) {
      if (i % 2 === 0) await p.adapters.markets.coverWakeMark('ETH-USD', 'SELL', c.wakeMark!);
      p.clock.advance(1000);
      await p.tick('ETH-USD', i % 2 === 0 ? '203' : '203.5');
    }
    for (;;) {
      const batch = await p.adapters.auctionQueue.receive(10, 3600);
      if (batch.length === 0) break;
      for (const m of batch) {
        const step = parseAuctionStepMessage(m.body);
        if (step.auctionId === 'auction-a' && step.woken === true) woken += 1;
      }
    }
    // A covered 50 s before the first of these ticks: the index holds it, one wake is all it needs.
    expect({
      wokenMessagesForA: woken,
      sellMark: (await p.adapters.markets.get('ETH-USD'))?.wakeMarks?.SELL,
    }).toEqual({
      wokenMessagesForA: 1,
      sellMark: c.wakeMark,
    });
  });
});

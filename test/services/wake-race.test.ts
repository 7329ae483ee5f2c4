import { describe, expect, it, vi } from 'vitest';
import { parseBase, parsePrice } from '../../shared/domain/units.ts';
import type { AuctionRecord } from '../../shared/ports/index.ts';
import { parseAuctionStepMessage } from '../../shared/schemas/messages.ts';
import { processAuctionStep } from '../../shared/services/auction.ts';
import { WAKE_INDEX_SETTLE_MS } from '../../shared/services/margin-check.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Two SELL auctions of one market: A sleeps with wake mark 202 (the market's), B is awake at step 0 (top 204).
 * B's step plans a sleep with a wake mark of about 207.3 (its 10 % bidder reaches step 9's 186.56 from there),
 * while a tick at 203 wakes A and replaces the market's wake mark with the next sleeper it found.
 */
async function world() {
  const p = createPipeline();
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
  await p.adapters.markets.coverWakeMark('ETH-USD', 'SELL', a.wakeMark!, p.clock.nowMs());
  await p.adapters.auctions.create(b);
  // A's cover is settled in the index: ticks replace the market's mark from their queries.
  p.clock.advance(WAKE_INDEX_SETTLE_MS);
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

  it('a sleeper the index does not hold yet (a GSI behind its table) keeps the mark covering it (wake-index-lag)', async () => {
    const { p, stepB } = await world();
    // B sleeps (its wake mark about 207.3) and covers: the market's SELL mark stays at A's 202.
    expect((await stepB()).status).toBe('stepped');
    const repo = p.adapters.auctions;
    const original = repo.sleepers.bind(repo);
    const lagging = vi.spyOn(repo, 'sleepers').mockImplementationOnce(async (...args) => {
      // The index as it was before B's write: A is due at 203, nobody is left after it.
      const { due } = await original(...args);
      return { due: due.filter((s) => s.id !== 'auction-b'), next: undefined };
    });
    p.clock.advance(WAKE_INDEX_SETTLE_MS - 1);
    await p.tick('ETH-USD', '203');
    expect(lagging).toHaveBeenCalledOnce();
    vi.restoreAllMocks();
    // The mark stayed at 202 (B covered 4.999 s ago): a tick past B's mark queries the index, which holds B now.
    await expectBWokenByATickPastItsWakeMark(p);
  });

  it('once the index has settled, a tick replaces the mark with what it found', async () => {
    const { p, stepB } = await world();
    expect((await stepB()).status).toBe('stepped');
    p.clock.advance(WAKE_INDEX_SETTLE_MS);
    await p.tick('ETH-USD', '203');
    const b = (await p.adapters.auctions.get('auction-b'))!;
    expect((await p.adapters.markets.get('ETH-USD'))?.wakeMarks?.SELL).toBe(b.wakeMark);
  });
});

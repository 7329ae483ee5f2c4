import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { isTerminal } from '../../shared/domain/model.ts';
import { parseBase, parsePpm, parseQuote, price } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import type { ProviderRecord } from '../../shared/ports/index.ts';
import { spentMarkets } from '../../shared/services/sleeping.ts';
import { auctionOf, leftAuctionAt, liquidationOf } from '../support/auction-records.ts';
import { crashOnceAt, createPipeline } from '../support/pipeline.ts';

/**
 * Two SELL auctions of ETH-USD and one provider, lp-1 (2 %, 150 USD: less than either lot). A (p1, liquidated at
 * 184) sleeps until 360 s; B (p2, liquidated at 183.5 at 200 s) sleeps until 560 s on lp-1's bid; the lower mark
 * moves A's fill to 450 s, where it spends all of lp-1. A profitable short (p3) is there for ADL.
 */
async function oneMarket(options: { crashHook?: ReturnType<typeof crashOnceAt>['hook'] } = {}) {
  const p = createPipeline(options.crashHook ? { crashHook: options.crashHook } : {});
  await p.tick('ETH-USD', '200'); // a market's first print waits for a second
  await p.tick('ETH-USD', '200');
  await p.fund('100000');
  await p.open('LONG', '1', '200', '20'); // liquidated below 184.62
  await p.open('LONG', '1', '200', '21'); // below 183.59
  await p.open('SHORT', '5', '200', '500');
  await p.provider('lp-1', '150', '0.02', '10');
  p.venue.faults.emptyBooks.add('ETH-USD'); // the market takes nothing: every lot goes to the auction
  const t0 = p.clock.nowMs();
  await p.tick('ETH-USD', '184');
  await p.runUntil(t0 + 200_000);
  await p.tick('ETH-USD', '183.5');
  await p.runUntil(t0 + 201_000);
  const b = await auctionOf(p, 'p2');
  // B sleeps on lp-1's bid, its step planned after A's fill.
  expect(b).toMatchObject({ state: 'RUNNING', fills: [] });
  expect(b.wakeMark).toBeDefined();
  expect(b.stepDueAtMs).toBe(t0 + 560_000);
  return { p, t0, plannedB: b.stepDueAtMs! };
}

describe('sleepers of a provider another auction spent wake at once (spent-provider-sleepers)', () => {
  it('one market: B ends when A spends its only bidder, not at its planned step', async () => {
    const { p, t0, plannedB } = await oneMarket();
    await p.runUntil(plannedB - 1000);
    expect((await p.adapters.providers.get('lp-1'))?.capital).toBeLessThan(parseQuote('0.01'));
    const a = await auctionOf(p, 'p1');
    expect(a.fills.map((f) => f.providerId)).toEqual(['lp-1']);
    // B: woken by A's fills, no bidder left, ended; its lot went on to the fund and ADL then (450 s), not at 560 s.
    expect(await auctionOf(p, 'p2')).toMatchObject({ state: 'EXHAUSTED', endedBy: 'wake', fills: [] });
    expect(leftAuctionAt(p, 'p2')).toBe(t0 + 450_000);
    expect(isTerminal(liquidationOf(p, 'p2').state)).toBe(true);
    // B's wake is counted, in its market, as a tick's is (no tick woke anything here).
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(1);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(1);
    await p.drain();
    expect(await p.check()).toMatchObject({ violations: [] });
  });

  it('A sleeps one step after its fill spends its only bidder, and that step ends it (fill-leaves-no-bidder)', async () => {
    const { p, t0, plannedB } = await oneMarket();
    await p.runUntil(plannedB - 1000);
    const a = await auctionOf(p, 'p1');
    // lp-1's 150 USD bought part of A's lot at 450 s; nobody can bid on the rest. Ending then was measured and
    // dropped (more bad debt on both real crash legs): A ends at its next step, 90 s later, at that mark.
    expect(a).toMatchObject({ state: 'EXHAUSTED', endedBy: 'plan' });
    expect(a.fills.map((f) => f.providerId)).toEqual(['lp-1']);
    expect(a.remainingLot).toBeGreaterThan(0n);
    expect(leftAuctionAt(p, 'p1')).toBe(t0 + 540_000);
    expect(isTerminal(liquidationOf(p, 'p1').state)).toBe(true);
    await p.drain();
    expect(await p.check()).toMatchObject({ violations: [] });
  });

  it('the fills commit and the delivery dies before the wake: its redelivery wakes B', async () => {
    // Killed right after the commit of A's fills (lp-1's record is in it): the redelivery comes 30 s later.
    const crash = crashOnceAt('transactor.commit');
    const { p, t0, plannedB } = await oneMarket({ crashHook: crash.hook });
    const providers = p.adapters.providers;
    const list = providers.list.bind(providers);
    // Armed once A's step is about to fill: the next commit is the one with the fills.
    providers.list = async (symbol) => {
      const listed = await list(symbol);
      if (p.clock.nowMs() === t0 + 450_000 && !crash.crashed()) crash.arm();
      return listed;
    };
    await p.runUntil(plannedB - 1000);
    expect(crash.crashed()).toBe(true);
    expect(await auctionOf(p, 'p2')).toMatchObject({ state: 'EXHAUSTED', endedBy: 'wake' });
    expect(leftAuctionAt(p, 'p2')).toBeLessThanOrEqual(t0 + 450_000 + 31_000);
    // The debt is paid and dropped: nothing owes a wake any more.
    expect((await auctionOf(p, 'p1')).spentIn).toBeUndefined();
    await p.drain();
    expect(await p.check()).toMatchObject({ violations: [] });
  });

  it('a fill that leaves the provider its bid wakes nobody: B keeps its planned step', async () => {
    const { p, plannedB } = await oneMarket();
    // Enough for both lots: A's fill leaves lp-1 able to bid on B.
    const lp = (await p.adapters.providers.get('lp-1'))!;
    await p.adapters.providers.put(
      { ...lp, capital: parseQuote('1000'), version: lp.version + 1 },
      lp.version,
    );
    await p.runUntil(plannedB - 1000);
    expect((await auctionOf(p, 'p1')).state).toBe('CLEARED');
    const b = await auctionOf(p, 'p2');
    expect(b).toMatchObject({ state: 'RUNNING', stepDueAtMs: plannedB, fills: [] });
    await p.runUntil(plannedB + 1000);
    expect((await auctionOf(p, 'p2')).state).toBe('CLEARED');
  });

  it('two markets sharing a provider: a BTC sleeper ends when an ETH auction spends it', async () => {
    const p = createPipeline();
    for (const _ of [1, 2]) {
      await p.tick('ETH-USD', '200');
      await p.tick('BTC-USD', '10000');
    }
    await p.fund('100000');
    await p.open('LONG', '1', '200', '20'); // ETH, liquidated below 184.62
    await p.open('LONG', '0.02', '10000', '20', 'BTC-USD');
    await p.open('SHORT', '5', '200', '500');
    await p.open('SHORT', '0.1', '10000', '500', 'BTC-USD');
    await p.adapters.providers.put(
      {
        id: 'lp-m',
        capital: parseQuote('150'),
        maxDiscountPpm: parsePpm('0.02'),
        maxLot: parseBase('10'),
        symbols: ['ETH-USD', 'BTC-USD'],
        version: 0,
      },
      undefined,
    );
    p.venue.faults.emptyBooks.add('ETH-USD');
    p.venue.faults.emptyBooks.add('BTC-USD');
    const t0 = p.clock.nowMs();
    await p.tick('ETH-USD', '184');
    await p.runUntil(t0 + 200_000);
    await p.tick('BTC-USD', '9000');
    await p.runUntil(t0 + 201_000);
    const btc = await auctionOf(p, 'p2');
    expect(btc).toMatchObject({ state: 'RUNNING', fills: [] });
    expect(btc.wakeMark).toBeDefined();
    expect(btc.stepDueAtMs).toBe(t0 + 560_000);

    await p.runUntil(btc.stepDueAtMs! - 1000);
    // The ETH auction's fills at 360 s spent lp-m; the BTC sleeper ended then, its lot on to the fund and ADL.
    expect((await auctionOf(p, 'p1')).fills.map((f) => f.providerId)).toEqual(['lp-m']);
    expect(await auctionOf(p, 'p2')).toMatchObject({ state: 'EXHAUSTED', endedBy: 'wake', fills: [] });
    expect(leftAuctionAt(p, 'p2')).toBe(t0 + 360_000);
    // Counted in the market woken, not the market of the auction that spent it.
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@BTC-USD`)).toBe(1);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBeUndefined();
    await p.drain();
    expect(await p.check()).toMatchObject({ violations: [] });
  });
});

describe('the other markets a filled provider quotes are read in one call (spent-markets-reads)', () => {
  it('a provider quoting 40 markets: one batch read of the 39 others, no GetItem each; the spent one found', async () => {
    const eth = DEFAULT_RISK_CONFIG.markets[0]!;
    const symbols = ['ETH-USD', ...Array.from({ length: 39 }, (_, i) => `M${i}-USD`)];
    const p = createPipeline({
      config: { ...DEFAULT_RISK_CONFIG, markets: symbols.map((symbol) => ({ ...eth, symbol })) },
    });
    for (const symbol of symbols) {
      // A market's first print waits for a second; M5 trades at 1,000 times the others.
      const at = symbol === 'M5-USD' ? '100000' : '100';
      await p.tick(symbol, at);
      await p.tick(symbol, at);
    }
    const calls = { get: 0, batch: 0, keys: 0 };
    const { markets, reader } = p.deps;
    const deps = {
      config: p.deps.config,
      markets: {
        ...markets,
        get: async (symbol: string) => {
          calls.get += 1;
          return markets.get(symbol);
        },
      },
      reader: {
        ...reader,
        markets: async (wanted: readonly string[]) => {
          calls.batch += 1;
          calls.keys += wanted.length;
          return reader.markets(wanted);
        },
      },
    };
    // 10 USD pays for a dust piece (0.001) at 100 / floor, not at 100,000 / floor.
    const lp: ProviderRecord = {
      id: 'lp-40',
      capital: parseQuote('10'),
      maxDiscountPpm: parsePpm('0.02'),
      maxLot: parseBase('10'),
      symbols,
      version: 1,
    };
    const spent = await spentMarkets(new Map([[lp.id, lp]]), 'ETH-USD', price('100'), deps);
    expect(spent).toEqual(['M5-USD']);
    // Before: 39 GetItem calls, one per other market, every step that filled it.
    expect(calls).toEqual({ get: 0, batch: 1, keys: 39 });
    // A mark moved since is judged as it is now (nothing cached between steps).
    const last = (await markets.get('M5-USD'))!.lastTick!;
    const fell = {
      ...last,
      sequence: last.sequence + 1,
      markPrice: price('100'),
      timestampMs: p.clock.nowMs(),
    };
    await markets.acceptTick('M5-USD', fell, last.sequence, false);
    expect(await spentMarkets(new Map([[lp.id, lp]]), 'ETH-USD', price('100'), deps)).toEqual([]);
  });
});

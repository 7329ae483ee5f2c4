import { describe, expect, it } from 'vitest';
import { pnlE16 } from '../../shared/domain/accounting.ts';
import { NOTIONAL_TO_QUOTE, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { InjectedCrash, type LiquidationRecord, type PositionRecord } from '../../shared/ports/index.ts';
import { AdlSnapshots } from '../../shared/services/adl-snapshots.ts';
import { processLiquidation } from '../../shared/services/liquidation.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * ADL rounds (services/liquidation/adl-rounds.ts adlRounds) where they are fragile: started by an auction step, lost
 * to a concurrent writer, behind counterparties that can give nothing, and on a queue shared with other plans.
 * Found by a review of the rounds (docs/RELIABILITY.md, adl-one-transaction).
 */

/** The book's spread wide enough that the long's market order fills nothing: the auction takes it. */
const WIDE_BOOK = { venue: { defaults: { baseHalfSpreadPpm: 60_000, maxHalfSpreadPpm: 60_000 } } };

/** A long the auction closes below its bankruptcy price, and 300 shorts that give 1 USD each. */
async function auctionLeavesDeficit(p: Pipeline): Promise<void> {
  await p.tick('ETH-USD', '200');
  await p.open('LONG', '100', '200', '2000');
  for (let i = 0; i < 300; i++) await p.open('SHORT', '0.1', '200', '1');
  await p.provider('lp-1', '100000', '0.02', '1000');
  await p.tick('ETH-USD', '175');
}

describe('ADL rounds', () => {
  it('rounds an auction step settled with are resumed after that delivery dies', async () => {
    let armed = true;
    const p: Pipeline = createPipeline({
      ...WIDE_BOOK,
      crashHook: (point) => {
        // Right after the commit that settled with rounds to come, before any round.
        if (!armed || point !== 'transactor.commit') return;
        if (p.adapters.liquidations.all().some((l) => l.context?.adlRound?.round === 0)) {
          armed = false;
          throw new InjectedCrash(point);
        }
      },
    });
    await auctionLeavesDeficit(p);
    await p.drain();
    expect(armed).toBe(false);
    const [liquidation] = p.adapters.liquidations.all();
    expect(liquidation?.settlement?.auctionClosedSize).toBeGreaterThan(0n);
    expect(liquidation?.context?.adlRound).toBeUndefined();
    expect(liquidation?.context?.adlRounds).toBeGreaterThan(0);
    // One terminal event: rounds leave no history of their own (the record's size stays bounded).
    expect(liquidation?.history.filter((h) => h.state === liquidation.state)).toHaveLength(1);
    expect((await p.check()).violations).toEqual([]);
  });

  it('a round that loses a race to another writer of a counterparty is planned again', async () => {
    const p = createPipeline(WIDE_BOOK);
    await auctionLeavesDeficit(p);
    // Once, during the first round's ranking: a concurrent writer moves one of the counterparties it read.
    const positions = p.deps.positions;
    const original = positions.queryAdlOrder.bind(positions);
    let bumped = false;
    Object.assign(positions, {
      queryAdlOrder: async (...args: Parameters<typeof positions.queryAdlOrder>) => {
        const page = await original(...args);
        const inRound = p.adapters.liquidations.all().some((l) => l.context?.adlRound?.round === 0);
        if (!bumped && inRound && args[2] === 'leverage') {
          bumped = true;
          const r = page.positions
            .filter((x) => x.collateral > 0n)
            .sort((a, b) => (a.id < b.id ? -1 : 1))[0]!;
          await p.adapters.transactor.commit([
            { kind: 'position', record: { ...r, version: r.version + 1 }, expectedVersion: r.version },
          ]);
        }
        return page;
      },
    });
    await p.drain();
    expect(bumped).toBe(true);
    const [liquidation] = p.adapters.liquidations.all();
    expect(liquidation?.context?.adlRound).toBeUndefined();
    expect((await p.check()).violations).toEqual([]);
  });

  it('passes over counterparties with nothing left to give, however many rank first', async () => {
    // Each round leaves the shorts it took with no collateral and some profit: infinite leverage, ranked
    // first. More of them than the queue holds (2,000) must not end the rounds while others can give.
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '300', '200', '5000');
    const shorts: PositionRecord[] = [];
    for (let i = 0; i < 2600; i++) shorts.push(await p.open('SHORT', '0.1', '200', '1'));
    await p.tick('ETH-USD', '175');
    await p.drain();
    const liquidations = p.adapters.liquidations.all();
    const badDebt = liquidations.reduce((a, l) => a + (l.settlement?.badDebt ?? 0n), 0n);
    const mark = parsePrice('175');
    let couldGive = 0;
    for (const s of shorts) {
      const r = (await p.adapters.positions.get(s.id))!;
      const left = pnlE16(r.side, r.size, r.entryPrice, mark) / NOTIONAL_TO_QUOTE - (r.adlProfitGiven ?? 0n);
      if (r.state === 'OPEN' && r.collateral > 0n && left > 0n) couldGive++;
    }
    expect(liquidations.reduce((a, l) => a + (l.settlement?.adlCovered ?? 0n), 0n)).toBeGreaterThan(
      parseQuote('2000'),
    );
    expect(badDebt === 0n || couldGive === 0).toBe(true);
    expect((await p.check()).violations).toEqual([]);
  }, 60_000);

  it('follows a plan whose places went to counterparties that could only close size', async () => {
    // Ninety shorts with profit and no collateral rank first and take the long's size; the deficit left needs
    // the funded short behind them.
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '150');
    for (let i = 0; i < 90; i++) {
      const s = await p.open('SHORT', '10', '180', '10');
      const r = (await p.adapters.positions.get(s.id))!;
      await p.adapters.positions.replace({ ...r, collateral: 0n, version: r.version + 1 }, r.version);
    }
    const funded = await p.open('SHORT', '10', '200', '400');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '175');
    await p.drain();
    const [liquidation] = p.adapters.liquidations.all();
    const s = liquidation!.settlement!;
    expect(s.badDebt).toBe(0n);
    expect(s.adlCovered).toBe(s.shortfall);
    // (No p.check(): the test took the ninety's collateral outside any settlement.)
    const after = (await p.adapters.positions.get(funded.id))!;
    expect(funded.collateral - after.collateral).toBeGreaterThan(0n);
    expect(liquidation?.context?.adlRounds).toBe(1);
  });

  it('plans again on the whole side when the queue a settlement found cached is spent', async () => {
    // Thirty deficits against 2,100 shorts that give 1 USD each: settlements spend the cached 2,000-long queue
    // before the side; the later ones must rank the side again, not report their deficit.
    const p = createPipeline({ adlSnapshots: new AdlSnapshots() });
    await p.tick('ETH-USD', '200');
    for (let i = 0; i < 30; i++) await p.open('LONG', '10', '200', '185');
    const shorts: PositionRecord[] = [];
    for (let i = 0; i < 2100; i++) shorts.push(await p.open('SHORT', '0.1', '200', '1'));
    await p.tick('ETH-USD', '175');
    await p.drain();
    const liquidations = p.adapters.liquidations.all();
    const badDebt = liquidations.reduce((a, l) => a + (l.settlement?.badDebt ?? 0n), 0n);
    let couldGive = 0;
    for (const s of shorts) {
      const r = (await p.adapters.positions.get(s.id))!;
      if (r.state === 'OPEN' && r.collateral > 0n) couldGive++;
    }
    // The side ran out: what stays uncovered is real.
    expect(badDebt).toBeGreaterThan(0n);
    expect(couldGive).toBe(0);
    expect((await p.check()).violations).toEqual([]);
  }, 60_000);

  it('a round on a queue another plan moved meanwhile writes no counterparty from an older record', async () => {
    const p = createPipeline({ adlSnapshots: new AdlSnapshots(1e12) });
    await p.tick('ETH-USD', '200');
    const shorts: PositionRecord[] = [];
    for (let i = 0; i < 20; i++) shorts.push(await p.open('SHORT', '0.1', '200', '1'));
    await p.tick('ETH-USD', '175');
    const records = [owing('A', '10'), owing('B', '0.5'), owing('C', '0'), owing('D', '0')];
    for (const r of records)
      await p.adapters.transactor.commit([{ kind: 'liquidation', record: r, expectedVersion: undefined }]);
    // C ranks the side and leaves the queue in the container's cache.
    await processLiquidation({ liquidationId: 'C' }, p.deps);
    // A's round reads the head of the cached queue in two reads, and is slow on the second.
    let reached!: () => void;
    const atSecondRead = new Promise<void>((r) => {
      reached = r;
    });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let calls = 0;
    const reader = p.deps.reader;
    const slowReader: typeof reader = {
      liquidationPositionAndMarket: reader.liquidationPositionAndMarket.bind(reader),
      positionAndMarket: reader.positionAndMarket.bind(reader),
      auctionAndMarket: reader.auctionAndMarket.bind(reader),
      markets: reader.markets.bind(reader),
      liquidations: reader.liquidations.bind(reader),
      positions: async (ids: readonly string[]) => {
        const found = await reader.positions(ids);
        if (++calls === 2) {
          reached();
          await gate;
        }
        return found;
      },
    };
    const a = processLiquidation({ liquidationId: 'A' }, { ...p.deps, reader: slowReader });
    await atSecondRead;
    // Meanwhile, in the same container: B's round takes 0.5 from the top counterparty, then D's plan re-reads
    // it and puts its new ranking in the shared queue.
    await processLiquidation({ liquidationId: 'B' }, p.deps);
    await processLiquidation({ liquidationId: 'D' }, p.deps);
    release();
    await a;
    const after = await Promise.all(shorts.map(async (s) => (await p.adapters.positions.get(s.id))!));
    const given = after.reduce((sum, r, i) => sum + (shorts[i]!.collateral - r.collateral), 0n);
    const settled = await Promise.all(records.map(async (r) => (await p.adapters.liquidations.get(r.id))!));
    // What the counterparties gave is what the liquidations say ADL covered.
    expect(given).toBe(settled.reduce((sum, l) => sum + l.settlement!.adlCovered, 0n));
    expect(settled.map((l) => l.settlement!.badDebt)).toEqual([0n, 0n, 0n, 0n]);
  });
});

const NO_AMOUNTS = {
  marketClosedSize: 0n,
  lastResortClosedSize: 0n,
  auctionClosedSize: 0n,
  adlClosedSize: 0n,
  carriedSize: 0n,
  realizedPnl: 0n,
  fee: 0n,
  shortfall: 0n,
  insurancePaid: 0n,
  adlCovered: 0n,
  badDebt: 0n,
  traderPayout: 0n,
};

/** A settled liquidation of a long that owes ADL rounds for `badDebt` USD at 175 (as a settlement leaves it). */
const owing = (id: string, badDebt: string): LiquidationRecord => ({
  id,
  positionId: `${id}-pos`,
  symbol: 'ETH-USD',
  side: 'LONG',
  state: 'SETTLED_ADL',
  tickKey: 'ETH-USD#2',
  triggerMark: parsePrice('175'),
  remainingSize: 0n,
  marketFills: [],
  settlement: { ...NO_AMOUNTS, shortfall: parseQuote(badDebt), badDebt: parseQuote(badDebt) },
  history: [],
  context: { plannedSize: 0n, executionMark: parsePrice('175'), adlRound: { round: 0 } },
  version: 0,
});

/**
 * The haircut queue (positions that give without closing size) is cached per mark and container with
 * `complete`: it held every such position when ranked. A short with profit and no collateral is passed over
 * there (it gives nothing without a close); ADL's own partial close of it realizes profit into its collateral and
 * makes it one that gives. The cached queue never learns of it (it is not in it) and, being `complete`, is
 * trusted: the next haircut-only settlement at that mark sees the side spent (adlExhausted), runs no rounds and
 * reports bad debt while that short holds collateral and profit. AdlSnapshots promises "ADL's own changes are
 * re-read".
 */
describe('the cached haircut queue after ADL closed part of a short it passed over (haircut-queue-complete)', () => {
  it('a later deficit at the same mark is covered by the short ADL just funded, not reported uncovered', async () => {
    const p = createPipeline({ adlSnapshots: new AdlSnapshots() });
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const l1 = await p.open('LONG', '10', '200', '200'); // bankrupt at 180
    // S1: profit at 175 (250 USD), no collateral (a haircut took it): ranks first, gives only by closing.
    const s1 = await p.open('SHORT', '10', '200', '10');
    const stored = (await p.adapters.positions.get(s1.id))!;
    await p.adapters.positions.replace(
      { ...stored, collateral: 0n, version: stored.version + 1 },
      stored.version,
    );
    // S2: gives 5 USD out of its collateral, once.
    await p.open('SHORT', '1', '200', '5');
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    const first = p.adapters.liquidations.all().find((l) => l.positionId === l1.id)!;
    expect(first.settlement?.adlClosedSize).toBe(0n); // the market closed it: a haircut-only ADL
    expect(first.settlement?.badDebt).toBeGreaterThan(0n); // right then: nobody else could give

    // L2: the book is empty, ADL closes 1 of S1 at 175 (no deficit): S1 realizes 25 USD into its collateral.
    const l2 = await p.open('LONG', '1', '200', '28'); // liquidatable at 175 (176.4), bankrupt at 172
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    expect(p.adapters.liquidations.all().find((l) => l.positionId === l2.id)?.settlement?.adlClosedSize).toBe(
      100_000_000n,
    );
    const s1After = (await p.adapters.positions.get(s1.id))!;
    expect(s1After.state).toBe('OPEN');
    expect(s1After.collateral).toBeGreaterThan(0n);

    // L3: the same deficit as L1, the market closes it: haircut only, at the same mark, on the cached queue.
    p.venue.faults.emptyBooks.delete('ETH-USD');
    const l3 = await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    await p.drain();
    const third = p.adapters.liquidations.all().find((l) => l.positionId === l3.id)!;
    expect(third.settlement?.adlClosedSize).toBe(0n);
    const s1Final = (await p.adapters.positions.get(s1.id))!;
    // Expected: S1 (25 USD of collateral, 225 USD of profit left) covers what it can of L3's deficit.
    expect({ adlCovered: third.settlement?.adlCovered, s1Collateral: s1Final.collateral }).toEqual({
      adlCovered: s1After.collateral,
      s1Collateral: 0n,
    });
  });
});

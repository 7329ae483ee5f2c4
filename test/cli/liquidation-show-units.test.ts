import { describe, expect, it } from 'vitest';
import {
  adlClosesOf,
  collectLiquidation,
  collectPositionLiquidations,
  decodeNote,
  renderLiquidation,
  renderPositionLiquidations,
  sizingWhy,
} from '../../cli/ops/liquidation-show.ts';
import { createEmbeddedAdapters } from '../../shared/adapters/embedded/index.ts';
import { encodeClaimedFacts } from '../../shared/domain/claimed-facts.ts';
import { auctionFillCost, fillEdge } from '../../shared/domain/provider-fills.ts';
import { parseBase, parsePrice, parseQuote, ppm, usd } from '../../shared/domain/units.ts';
import type { LiquidationRecord, PositionRecord, ProviderRecord } from '../../shared/ports/index.ts';
import { createPipeline } from '../support/pipeline.ts';

/** `liquidations show`'s reading of records the pipeline tests do not reach (test/cli/liquidations-show.test.ts runs it on moto). */

const T = Date.UTC(2020, 2, 12, 9, 0, 0);

describe('decodeNote', () => {
  it("writes the services' stored integers as decimals in their units, and leaves any other note", () => {
    expect(decodeNote('size 250000000 limit 17325000000', 'ETH', 'USD')).toBe(
      'size 2.5 ETH, limit 173.25 USD',
    );
    // A slice not in whole lots (lot51-consumer-knows-lot): its market order, the whole lots, said too.
    expect(decodeNote('size 600050000 limit 18430000000 market order 600000000', 'ETH', 'USD')).toBe(
      'size 6.0005 ETH, limit 184.3 USD, market order 6 ETH (its whole lots)',
    );
    expect(decodeNote('filled 0 of 1000000000', 'ETH', 'USD')).toBe('filled 0 ETH of 10 ETH');
    expect(decodeNote('lot 1', 'BTC', 'USDT')).toBe('lot 0.00000001 BTC');
    expect(decodeNote('healthy at 19012345678', 'ETH', 'USD')).toBe('healthy at 190.12345678 USD');
    for (const note of [
      'crossed at 184',
      'market>insurance>adl',
      'next slice of p1:3',
      'lot 1.5',
      'inputs refreshed',
    ])
      expect(decodeNote(note, 'ETH', 'USD')).toBe(note);
  });
});

/** p1 LONG 10 at 200, 200 of collateral, closed by ADL at 175 against `candidateSize` of s1: 20 from the fund, 30 by ADL. */
const settledByAdl = (candidateSize: string): LiquidationRecord => ({
  id: 'p1:0',
  positionId: 'p1',
  symbol: 'ETH-USD',
  side: 'LONG',
  state: 'SETTLED_ADL',
  tickKey: 'ETH-USD#2',
  triggerMark: parsePrice('175'),
  remainingSize: parseBase('10'),
  marketFills: [],
  settlement: {
    marketClosedSize: 0n,
    lastResortClosedSize: 0n,
    auctionClosedSize: 0n,
    adlClosedSize: parseBase('10'),
    carriedSize: 0n,
    realizedPnl: usd('-250'),
    fee: 0n,
    shortfall: parseQuote('50'),
    insurancePaid: parseQuote('20'),
    adlCovered: parseQuote('30'),
    badDebt: 0n,
    traderPayout: 0n,
  },
  history: [
    { atMs: T, state: 'QUEUED', note: 'crossed at 175' },
    { atMs: T + 1000, state: 'SETTLED_ADL', note: 'insurance>adl' },
  ],
  context: {
    plannedSize: parseBase('10'),
    executionMark: parsePrice('175'),
    settle: {
      insurance: { balance: parseQuote('20'), windowStartMs: 0, windowDrawn: 0n },
      nowMs: T + 500,
      mark: parsePrice('175'),
      position: {
        size: parseBase('10'),
        collateral: parseQuote('200'),
        entryPrice: parsePrice('200'),
        version: 1,
      },
      auctionFills: [],
      candidates: [
        {
          id: 's1',
          side: 'SHORT',
          size: parseBase(candidateSize),
          entryPrice: parsePrice('200'),
          collateral: parseQuote('400'),
          version: 0,
        },
      ],
      adlTraderRounding: true,
    },
  },
  version: 4,
});

/** The market closed the 10, s1 (1 ETH, 1 USD of collateral) covered 3 of the deficit, two ADL rounds followed. */
function settledWithRounds(): LiquidationRecord {
  const base = settledByAdl('1');
  return {
    ...base,
    settlement: {
      ...base.settlement!,
      marketClosedSize: parseBase('10'),
      adlClosedSize: 0n,
      insurancePaid: 0n,
      adlCovered: parseQuote('3'),
      badDebt: parseQuote('47'),
    },
    context: {
      ...base.context!,
      settle: {
        ...base.context!.settle!,
        candidates: [{ ...base.context!.settle!.candidates![0]!, collateral: parseQuote('1') }],
      },
      adlRounds: 2,
    },
  };
}

describe('adlClosesOf', () => {
  it("gives the plan's counterparties when they give the settlement's amounts", () => {
    const { fills, note } = adlClosesOf(settledByAdl('10'));
    expect(note).toBeUndefined();
    expect(fills?.map((f) => [f.id, f.size, f.pnlGiven])).toEqual([
      ['s1', parseBase('10'), parseQuote('30')],
    ]);
  });

  it('shows none, and says why, when they do not (a record of another version of the plan)', () => {
    const { fills, note } = adlClosesOf(settledByAdl('4'));
    expect(fills).toBeUndefined();
    expect(note).toMatch(/^the plan's inputs do not give the settlement's ADL amounts \(closed 4, covered /);
  });

  it('gives those of the settlement alone when rounds followed it (their counterparties are not recorded)', () => {
    // The market closed the 10 (ADL closes no size); s1, 1 ETH with 1 USD of collateral, gives what its haircut can.
    const record = settledWithRounds();
    const { fills, note } = adlClosesOf(record);
    expect(note).toBeUndefined();
    expect(fills).toEqual([expect.objectContaining({ id: 's1', size: 0n, pnlGiven: parseQuote('1') })]);
    // Without the rounds the settlement alone must have covered the 3: it could not, so none is shown.
    const { adlRounds: _, ...context } = record.context!;
    expect(adlClosesOf({ ...record, context }).fills).toBeUndefined();
  });

  it('review46-adl-split-check: shows none when the totals agree but the frozen counterparties do not all take part', () => {
    // s1 alone gives the 10 and the 30 under this version's rules; the plan froze s2 as well, so it used s2: rules
    // of another version split it otherwise (s1 shown closing all 10 would be plausible and wrong).
    const base = settledByAdl('10');
    const s1 = base.context!.settle!.candidates![0]!;
    const record: LiquidationRecord = {
      ...base,
      context: {
        ...base.context!,
        settle: { ...base.context!.settle!, candidates: [s1, { ...s1, id: 's2' }] },
      },
    };
    const { fills, note } = adlClosesOf(record);
    expect(fills).toBeUndefined();
    expect(note).toBe(
      "the plan froze counterparties this allocation does not use (s2): a plan of another version's, its counterparties are not shown",
    );
  });

  it('review46-adl-split-check: shows none when rounds followed a settlement its inputs say covered it all', () => {
    // Rounds follow only a deficit the settlement left uncovered: s1 covers the 30 whole, so no round could follow.
    const base = settledByAdl('10');
    const { fills, note } = adlClosesOf({ ...base, context: { ...base.context!, adlRounds: 1 } });
    expect(fills).toBeUndefined();
    expect(note).toMatch(
      /^the plan's inputs do not give the settlement's ADL amounts \(closed 10, covered 30\)/,
    );
  });

  it('says the counterparties are not recorded when the record keeps no plan of ADL', () => {
    const record = settledByAdl('10');
    const { settle: _, ...context } = record.context!;
    expect(adlClosesOf({ ...record, context })).toEqual({
      note: 'the record keeps no plan of ADL (its counterparties are not recorded on it)',
    });
  });
});

describe('an open liquidation: a next slice waiting for the book, its auction asleep', () => {
  it('shows the slices, the waits, the lease, the running auction and no settlement', async () => {
    const adapters = createEmbeddedAdapters();
    const position: PositionRecord = {
      id: 'p2',
      traderId: 't-p2',
      symbol: 'ETH-USD',
      side: 'SHORT',
      size: parseBase('4'),
      entryPrice: parsePrice('150'),
      collateral: parseQuote('30'),
      state: 'OPEN',
      liquidationPrice: parsePrice('155'),
      version: 3,
    };
    await adapters.positions.create({ ...position, version: 0 });
    await adapters.positions.replace({ ...position, version: 1 }, 0);
    await adapters.positions.replace({ ...position, version: 2 }, 1);
    await adapters.positions.replace(position, 2);
    const queued: LiquidationRecord = {
      id: 'p2:3',
      positionId: 'p2',
      symbol: 'ETH-USD',
      side: 'SHORT',
      state: 'QUEUED',
      tickKey: 'ETH-USD#9',
      triggerMark: parsePrice('156'),
      remainingSize: parseBase('4'),
      marketFills: [],
      history: [{ atMs: T, state: 'QUEUED', note: 'next slice of p2:1' }],
      version: 0,
    };
    await adapters.liquidations.begin(position, queued);
    await adapters.liquidations.replace(
      {
        ...queued,
        state: 'AUCTION',
        remainingSize: parseBase('1.5'),
        marketFills: [{ price: parsePrice('156.1'), size: parseBase('2.5') }],
        history: [
          ...queued.history,
          { atMs: T + 1000, state: 'EXECUTING', note: 'size 400000000 limit 15756000000' },
          { atMs: T + 2000, state: 'MARKET_EXECUTED', note: 'filled 250000000 of 400000000' },
          { atMs: T + 3000, state: 'AUCTION', note: 'lot 150000000' },
        ],
        context: {
          plannedSize: parseBase('4'),
          // Its market order in whole lots of 0.7 (lot51-consumer-knows-lot).
          marketOrderSize: parseBase('3.5'),
          executionMark: parsePrice('156'),
          executionMarkAtMs: T,
          limitPrice: parsePrice('157.56'),
          positionVersion: 4,
          auctionId: 'p2:3:auction',
          lastResortWait: { id: 'w-2', waits: 2 },
          lastResortAttempt: 2,
          lease: { owner: 'delivery-7', untilMs: T + 600_000 },
        },
        version: 1,
      },
      0,
    );
    await adapters.liquidations.recordFailure('p2:3', {
      reason: 'VenueError: timeout',
      attempt: 3,
      atMs: T + 2500,
    });
    await adapters.auctions.create({
      id: 'p2:3:auction',
      liquidationId: 'p2:3',
      symbol: 'ETH-USD',
      direction: 'BUY',
      lot: parseBase('1.5'),
      remainingLot: parseBase('1.5'),
      top: parsePrice('159.12'),
      startedAtMs: T + 3000,
      resets: 1,
      step: 2,
      state: 'RUNNING',
      fills: [],
      wakeMark: parsePrice('158'),
      stepDueAtMs: T + 90_000,
      version: 0,
    });

    const shown = (await collectLiquidation(adapters, 'p2:3'))!;
    expect(shown.liquidation).toMatchObject({
      state: 'AUCTION',
      open: true,
      slices: { previous: 'p2:1' },
      lastFailure: { reason: 'VenueError: timeout', attempt: 3, at: '2020-03-12T09:00:02.500Z' },
      context: { marketOrderSize: '3.5', waitsForBook: { waits: 2, ordersFilledNothing: 2, outraced: 0 } },
    });
    expect(shown.settlement).toBeUndefined();
    expect(shown.journal).toEqual({ account: 'insurance-fund', entries: [], fee: '0', fundPaid: '0' });
    expect(renderLiquidation(shown)).toBe(
      [
        'liquidation p2:3: ETH-USD SHORT, AUCTION (open)',
        '  position     p2 of trader t-p2, entry 150 USD; now LIQUIDATING, 4 ETH, collateral 30.00 USD (version 4)',
        // Not claimed yet: nothing tells whether the rest was past its liquidation price or dust (review51-support-dust-slice).
        "  trigger      started 2020-03-12T09:00:00.000Z by the settlement of the previous slice, p2:1: the rest was still past its liquidation price at mark 156 USD, or below the market's dust size",
        // Claimed without the claim's facts: said, not left out (support52-claim-facts-predate).
        '  at claim     not recorded: this liquidation predates recorded claim facts (claimed before session 51, or by an earlier version during its deploy), so no prices, sizing or fee rate at the claim are shown',
        '  execution    4 ETH planned at mark 156 USD (of 2020-03-12T09:00:00.000Z), limit 157.56 USD, market order 3.5 ETH (its whole lots)',
        '  slices       previous p2:1',
        '  history',
        '    2020-03-12T09:00:00.000Z QUEUED  next slice of p2:1',
        '    2020-03-12T09:00:01.000Z EXECUTING  size 4 ETH, limit 157.56 USD',
        '    2020-03-12T09:00:02.000Z MARKET_EXECUTED  filled 2.5 ETH of 4 ETH',
        '    2020-03-12T09:00:03.000Z AUCTION  lot 1.5 ETH',
        '  market fills 1, 2.5 ETH in all',
        '    2.5 ETH at 156.1 USD, 0.06 % above the mark',
        '  remaining    1.5 ETH (as recorded: what the layers after the market had to close)',
        '  waits for the book: 2 so far, 2 last-resort orders filled nothing, 0 outraced by another slice',
        '  orders held by delivery delivery-7 until 2020-03-12T09:10:00.000Z',
        '  last failure 2020-03-12T09:00:02.500Z (receive 3): VenueError: timeout',
        'auction p2:3:auction: BUY RUNNING, at step 2 (due 2020-03-12T09:01:30.000Z), asleep until mark 158 USD',
        '  lot          1.5 ETH, 0 ETH filled, 1.5 ETH left; top 159.12 USD, started 2020-03-12T09:00:03.000Z, 1 reset',
        '  fills        none',
        'ledger       insurance-fund: no entry keyed p2:3:...',
        '',
      ].join('\n'),
    );
  });
});

describe("a position's liquidations (review46-position-order, review46-list-remaining)", () => {
  it('are listed in the order they started, whatever their times say; an ended one says no size remaining', async () => {
    const adapters = createEmbeddedAdapters();
    const position: PositionRecord = {
      id: 'p3',
      traderId: 't-p3',
      symbol: 'ETH-USD',
      side: 'LONG',
      size: parseBase('6'),
      entryPrice: parsePrice('200'),
      collateral: parseQuote('60'),
      state: 'LIQUIDATING',
      liquidationPrice: parsePrice('190'),
      version: 3,
    };
    await adapters.positions.create({ ...position, version: 0 });
    for (let v = 1; v <= 3; v++) await adapters.positions.replace({ ...position, version: v }, v - 1);
    const slice = (id: string, atMs: number, note: string): LiquidationRecord => ({
      id,
      positionId: 'p3',
      symbol: 'ETH-USD',
      side: 'LONG',
      state: 'QUEUED',
      tickKey: 'ETH-USD#4',
      triggerMark: parsePrice('185'),
      remainingSize: parseBase('6'),
      marketFills: [],
      history: [{ atMs, state: 'QUEUED', note }],
      version: 0,
    });
    // p3:0 began at its tick's stamp, the feed's clock 4 s ahead of the functions'; its settlement began p3:2 at
    // the function's time, before that stamp.
    const first = slice('p3:0', T + 5000, 'crossed at 185');
    const next = slice('p3:2', T + 1000, 'next slice of p3:0');
    await adapters.transactor.commit([
      { kind: 'liquidation', record: next, expectedVersion: undefined },
      {
        kind: 'liquidation',
        record: {
          ...first,
          state: 'SETTLED_MARKET',
          remainingSize: parseBase('4'),
          history: [...first.history, { atMs: T + 1000, state: 'SETTLED_MARKET', note: 'market' }],
        },
        expectedVersion: undefined,
      },
    ]);
    const listed = (await collectPositionLiquidations(adapters, 'p3'))!;
    expect(listed.liquidations.map((l) => l.id)).toEqual(['p3:0', 'p3:2']);
    expect(renderPositionLiquidations(listed)).toBe(
      [
        'position p3 of trader t-p3: ETH-USD LONG, entry 200 USD; now LIQUIDATING, 6 ETH, collateral 60.00 USD (version 3)',
        '  2 liquidations, the oldest first:',
        '  p3:0 SETTLED_MARKET (market), started 2020-03-12T09:00:05.000Z',
        '  p3:2 QUEUED, open, started 2020-03-12T09:00:01.000Z, 6 ETH remaining',
        '',
      ].join('\n'),
    );
  });
});

describe('review46-payout-to: where a settlement left the collateral', () => {
  /** A settled record of p4 and p4 at `now`; the text's `trader` line and the JSON's payoutTo. */
  async function shown(record: LiquidationRecord, now: PositionRecord) {
    const adapters = createEmbeddedAdapters();
    await adapters.positions.create({ ...now, version: 0 });
    for (let v = 1; v <= now.version; v++) await adapters.positions.replace({ ...now, version: v }, v - 1);
    await adapters.transactor.commit([{ kind: 'liquidation', record, expectedVersion: undefined }]);
    const r = (await collectLiquidation(adapters, record.id))!;
    return {
      payoutTo: r.settlement?.payoutTo,
      line: renderLiquidation(r)
        .split('\n')
        .find((l) => l.startsWith('  trader ')),
    };
  }
  const p4: PositionRecord = {
    id: 'p4',
    traderId: 't-p4',
    symbol: 'ETH-USD',
    side: 'LONG',
    size: parseBase('20'),
    entryPrice: parsePrice('200'),
    collateral: usd('-655'),
    state: 'LIQUIDATING',
    liquidationPrice: parsePrice('230'),
    version: 3,
  };
  /** p4:0 settled a slice of 10 of its 30 by the market, leaving `payout`. */
  const slice = (payout: string, context: Partial<NonNullable<LiquidationRecord['context']>>) => ({
    ...settledByAdl('10'),
    id: 'p4:0',
    positionId: 'p4',
    state: 'SETTLED_MARKET' as const,
    settlement: {
      ...settledByAdl('10').settlement!,
      marketClosedSize: parseBase('10'),
      adlClosedSize: 0n,
      shortfall: 0n,
      insurancePaid: 0n,
      adlCovered: 0n,
      traderPayout: usd(payout),
    },
    history: [{ atMs: T, state: 'SETTLED_MARKET' as const, note: 'market' }],
    context: { plannedSize: parseBase('10'), executionMark: parsePrice('175'), ...context },
  });

  it('a slice whose plan saw a bigger position: the rest keeps it, the trader is paid nothing', async () => {
    const { settle } = settledByAdl('10').context!;
    const frozen = { ...settle!, candidates: [], position: { ...settle!.position, size: parseBase('30') } };
    expect(await shown(slice('-655', { settle: frozen }), p4)).toEqual({
      payoutTo: 'rest',
      line: '  trader       realized PnL -250.00 USD; fee: the fund received 0.00 USD (what the trader paid: see fee); collateral left with the rest of the position -655.00 USD',
    });
  });

  it('without a plan, the position says: written again since (rest), or CLOSED by the settlement (trader)', async () => {
    // The slice worked on version 2 and wrote version 3, OPEN again with the rest.
    expect((await shown(slice('-655', { positionVersion: 2 }), { ...p4, state: 'OPEN' })).payoutTo).toBe(
      'rest',
    );
    const closed = {
      ...p4,
      state: 'CLOSED' as const,
      size: parseBase('10'),
      collateral: 0n,
      closedPayout: usd('12'),
    };
    expect(await shown(slice('12', { positionVersion: 2 }), closed)).toEqual({
      payoutTo: 'trader',
      line: '  trader       realized PnL -250.00 USD; fee: the fund received 0.00 USD (what the trader paid: see fee); collateral left to the trader 12.00 USD',
    });
    // A record that does not say which version it worked on: both read.
    expect(await shown(slice('12', {}), closed)).toEqual({
      payoutTo: undefined,
      line: "  trader       realized PnL -250.00 USD; fee: the fund received 0.00 USD (what the trader paid: see fee); collateral left 12.00 USD (the trader's if it closed the position, else its rest's)",
    });
  });
});

describe('adl47-who-closed: a position ADL reduced names the liquidations that did it', () => {
  /** s9, a short ADL took from `events.total` times, of which it keeps `events.recent`. */
  async function listed(over: Partial<PositionRecord>) {
    const adapters = createEmbeddedAdapters();
    const s9: PositionRecord = {
      id: 's9',
      traderId: 't-s9',
      symbol: 'ETH-USD',
      side: 'SHORT',
      size: parseBase('4'),
      entryPrice: parsePrice('200'),
      collateral: parseQuote('91.5'),
      state: 'OPEN',
      liquidationPrice: parsePrice('215'),
      version: 0,
      ...over,
    };
    await adapters.positions.create(s9);
    return (await collectPositionLiquidations(adapters, 's9'))!;
  }
  const close = {
    liquidationId: 'p1:0',
    round: 0,
    size: parseBase('6'),
    price: parsePrice('178.12345678'),
    mark: parsePrice('175'),
    given: usd('18.740741'),
    haircut: 0n,
    atMs: T + 1_000,
  };
  const haircut = {
    liquidationId: 'p2:3',
    round: 2,
    size: 0n,
    price: parsePrice('170'),
    mark: parsePrice('170'),
    given: usd('1234.5'),
    haircut: usd('1234.5'),
    atMs: T + 61_000,
  };

  it('each event by its liquidation and round: the size closed at the mark, what it gave, exactly', async () => {
    const r = await listed({ adlEvents: { total: 2, recent: [close, haircut] } });
    expect(r.deleveragedBy).toEqual({
      total: 2,
      events: [
        {
          liquidationId: 'p1:0',
          round: 0,
          at: '2020-03-12T09:00:01.000Z',
          closedSize: '6',
          mark: '175',
          price: '178.12345678',
          profitGiven: '18.740741',
          haircut: '0',
        },
        {
          liquidationId: 'p2:3',
          round: 2,
          at: '2020-03-12T09:01:01.000Z',
          closedSize: '0',
          mark: '170',
          price: '170',
          profitGiven: '1234.5',
          haircut: '1234.5',
        },
      ],
    });
    expect(renderPositionLiquidations(r)).toBe(
      [
        'position s9 of trader t-s9: ETH-USD SHORT, entry 200 USD; now OPEN, 4 ETH, collateral 91.50 USD (version 0)',
        '  no liquidation',
        '  deleveraged by ADL 2 times, the oldest first:',
        '  2020-03-12T09:00:01.000Z by p1:0 (its settlement): closed 6 ETH at mark 175 USD (effective 178.12345678 USD), gave 18.740741 USD (haircut 0.00 USD)',
        '  2020-03-12T09:01:01.000Z by p2:3 (its ADL round 2): closed nothing (a haircut alone, at mark 170 USD), gave 1,234.50 USD (haircut 1,234.50 USD)',
        '',
      ].join('\n'),
    );
  });

  it('a list that let older events go says how many there were; a position ADL never took from shows none', async () => {
    const lines = renderPositionLiquidations(
      await listed({ adlEvents: { total: 7, recent: [close] } }),
    ).split('\n');
    // follow47-show-grammar: before, "the latest 1 kept".
    expect(lines[2]).toBe('  deleveraged by ADL 7 times, only the latest kept:');
    expect(lines[3]).toMatch(/^ {2}\S+Z by p1:0 \(its settlement\): closed 6 ETH/);
    const once = renderPositionLiquidations(await listed({ adlEvents: { total: 1, recent: [close] } }));
    expect(once).toContain('\n  deleveraged by ADL once:\n');
    // A count left below the events kept (an edit by hand) is not said as fewer than listed: before, "once" over two.
    const short = await listed({ adlEvents: { total: 1, recent: [close, haircut] } });
    expect(short.deleveragedBy?.total).toBe(2);
    expect(renderPositionLiquidations(short)).toContain(
      '\n  deleveraged by ADL 2 times, the oldest first:\n',
    );
    const none = await listed({});
    expect(none.deleveragedBy).toBeUndefined();
    expect(renderPositionLiquidations(none)).not.toContain('ADL');
  });

  it('a list this version cannot read is shown as unreadable, with why (follow47-adl-events-unreadable)', async () => {
    const r = await listed({
      adlEvents: { total: 1, recent: [close] },
      adlEventsSetAside: [{ unreadable: 'recent[0]: adapter/not-an-integer: size', stored: { M: {} } }],
    });
    expect(r.unreadableAdlEvents).toEqual([
      { reason: 'recent[0]: adapter/not-an-integer: size', current: false },
    ]);
    expect(renderPositionLiquidations(r).split('\n').slice(2)).toEqual([
      '  deleveraged by ADL once:',
      expect.stringMatching(/^ {2}\S+Z by p1:0 \(its settlement\)/),
      '  an earlier list of ADL events this version cannot read (recent[0]: adapter/not-an-integer: size): set aside on the record as it was when an ADL event started a new list',
      '',
    ]);
    const current = await listed({
      adlEvents: { unreadable: 'adapter/missing-attribute: recent', stored: { M: {} } },
    });
    expect(current.deleveragedBy).toBeUndefined();
    expect(current.unreadableAdlEvents).toEqual([
      { reason: 'adapter/missing-attribute: recent', current: true },
    ]);
    expect(renderPositionLiquidations(current)).toContain(
      '\n  ADL events recorded in a shape this version cannot read (adapter/missing-attribute: recent): kept on the record as they are\n',
    );
  });
});

/** `record` with its position `p` stored, as `liquidations show` collects it and renders it. */
async function collected(record: LiquidationRecord, p: PositionRecord) {
  const adapters = createEmbeddedAdapters();
  await adapters.positions.create({ ...p, version: 0 });
  for (let v = 1; v <= p.version; v++) await adapters.positions.replace({ ...p, version: v }, v - 1);
  await adapters.transactor.commit([{ kind: 'liquidation', record, expectedVersion: undefined }]);
  const shown = (await collectLiquidation(adapters, record.id))!;
  return { shown, lines: renderLiquidation(shown).split('\n') };
}
const rules = {
  maintenanceMargin: ppm('0.025'),
  initialMargin: ppm('0.05'),
  liquidationFee: ppm('0.01'),
  slippageBound: ppm('0.03'),
};
const noAmounts = {
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

describe('support51: what answers a trader, from records the pipeline tests do not reach', () => {
  it('support51-fee-and-loss: a slice whose rest carries its deficit; its fee capped to keep the position solvent', async () => {
    // p5 LONG 30 at 200 on 100 of collateral; a slice of 10 (a quarter, rounded) sold at 170 against a mark of 175:
    // 300 lost on 100 of collateral, the rest carries 200 below zero and pays no fee (1 % of 1,700 would be 17).
    const p5: PositionRecord = {
      id: 'p5',
      traderId: 't-p5',
      symbol: 'ETH-USD',
      side: 'LONG',
      size: parseBase('20'),
      entryPrice: parsePrice('200'),
      collateral: usd('-200'),
      state: 'LIQUIDATING',
      liquidationPrice: parsePrice('300'),
      version: 2,
    };
    const record: LiquidationRecord = {
      id: 'p5:0',
      positionId: 'p5',
      symbol: 'ETH-USD',
      side: 'LONG',
      state: 'SETTLED_MARKET',
      tickKey: 'ETH-USD#17',
      triggerMark: parsePrice('175'),
      remainingSize: 0n,
      marketFills: [{ price: parsePrice('170'), size: parseBase('10') }],
      settlement: {
        ...noAmounts,
        marketClosedSize: parseBase('10'),
        realizedPnl: usd('-300'),
        traderPayout: usd('-200'),
      },
      history: [
        { atMs: T, state: 'QUEUED', note: 'crossed at 175' },
        { atMs: T + 1000, state: 'SETTLED_MARKET', note: 'market' },
      ],
      context: {
        plannedSize: parseBase('10'),
        executionMark: parsePrice('175'),
        executionMarkAtMs: T,
        limitPrice: parsePrice('169.75'),
        positionVersion: 1,
        nextLiquidationId: 'p5:2',
        claimed: encodeClaimedFacts({
          position: { size: parseBase('30'), entryPrice: parsePrice('200'), collateral: parseQuote('100') },
          sizing: 'sizing/max-close-share',
          markTick: { sequence: 17 },
          ...rules,
          configDigest: '3f1c0a9b7d2e',
        }),
      },
      version: 3,
    };
    const { shown, lines } = await collected(record, p5);
    expect(shown.liquidation.tickSequence).toBe(17);
    expect(shown.liquidation.marketFills).toEqual([{ price: '170', size: '10', slippagePercent: '2.85' }]);
    expect(shown.liquidation.context?.claimed).toEqual({
      position: { size: '30', collateral: '100', entryPrice: '200' },
      liquidationPrice: '201.70940171',
      bankruptcyPrice: '196.66666667',
      maintenanceMargin: '0.025',
      initialMargin: '0.05',
      liquidationFee: '0.01',
      slippageBound: '0.03',
      sizing: {
        reason: 'sizing/max-close-share',
        percentOfPosition: '33.33',
        why: "part of the position: a position this large (above the market's sliceAboveNotional) is closed in slices of at most maxCloseShare of it, the rest in the next slices",
      },
      markTick: { sequence: 17 },
      // The configuration the claim applied, by its digest's start (facts52-claim-config-digest).
      configDigest: '3f1c0a9b7d2e',
    });
    expect(shown.settlement).toMatchObject({
      payoutTo: 'rest',
      feeBasis: {
        rate: '0.01',
        closedNotional: '1700',
        atRate: '17',
        paid: '0',
        credited: '0',
        how: 'capped',
      },
      traderLoss: { collateral: '100', lost: '300', beyondCollateral: '0', restDeficit: '200' },
    });
    expect(lines).toEqual(
      expect.arrayContaining([
        '  trigger      mark 175 USD of tick 17 (ETH-USD#17), stamped 2020-03-12T09:00:00.000Z by the feed',
        '  at claim     position 30 ETH, entry 200 USD, collateral 100.00 USD: liquidation price 201.70940171 USD (equity at the maintenance margin, 2.5 % of its value), bankruptcy price 196.66666667 USD (equity zero)',
        "  config       the claim applied the risk configuration whose digest begins 3f1c0a9b7d2e (a stack's RiskConfigDigest output; backstop config digest --config FILE prints a file's)",
        '  execution    10 ETH planned at mark 175 USD (tick 17 of 2020-03-12T09:00:00.000Z), limit 169.75 USD (the mark less the slippage bound, 3 %)',
        "  sized        33.33 % of the position's 30 ETH: part of the position: a position this large (above the market's sliceAboveNotional) is closed in slices of at most maxCloseShare of it, the rest in the next slices",
        '    10 ETH at 170 USD, 2.85 % below the mark',
        // What the trader paid and what the fund received, each said as such (support52-fee-paid-received), at the
        // rate of the claim (support52-fee-rate-at-claim).
        '  trader       realized PnL -300.00 USD; fee: the trader paid 0.00 USD, the fund received 0.00 USD; collateral left with the rest of the position -200.00 USD',
        '  fee          the trader paid 0.00 USD: the rate in force when it was claimed, 1 %, of the closed notional 1,700.00 USD is 17.00 USD, capped at what leaves the whole position solvent at the mark',
        "  loss         the slice lost 300.00 USD, more than the position's 100.00 USD of collateral: its rest carries the deficit of 200.00 USD (collateral below zero), not charged to the trader; the rest's later gains fill it, and the fund and ADL settle what the position leaves once closed whole",
      ]),
    );
  });

  it('support51-why-liquidated: a short bought above the mark, the tick index, a last-resort fill, a fee above the rate', async () => {
    // s6 SHORT 4 at 150 on 30: 3 bought at 156.1 against a mark of 156 (index 155.5), 1 by the last resort at 160;
    // 1 % of 628.3 is 6.283, and 7 was charged (a fee an earlier plan credited, kept by the fund's floor).
    const s6: PositionRecord = {
      id: 's6',
      traderId: 't-s6',
      symbol: 'ETH-USD',
      side: 'SHORT',
      size: parseBase('4'),
      entryPrice: parsePrice('150'),
      collateral: 0n,
      state: 'CLOSED',
      liquidationPrice: parsePrice('153'),
      closedPayout: 0n,
      version: 1,
    };
    const lastResort = { price: parsePrice('160'), size: parseBase('1') };
    const record: LiquidationRecord = {
      id: 's6:0',
      positionId: 's6',
      symbol: 'ETH-USD',
      side: 'SHORT',
      state: 'SETTLED_INSURANCE',
      tickKey: 'ETH-USD#41',
      triggerMark: parsePrice('156'),
      remainingSize: parseBase('1'),
      marketFills: [{ price: parsePrice('156.1'), size: parseBase('3') }, lastResort],
      settlement: {
        ...noAmounts,
        marketClosedSize: parseBase('4'),
        lastResortClosedSize: parseBase('1'),
        realizedPnl: usd('-28.3'),
        fee: parseQuote('7'),
        shortfall: parseQuote('5.3'),
        insurancePaid: parseQuote('5.3'),
      },
      history: [
        { atMs: T, state: 'QUEUED', note: 'crossed at 156' },
        { atMs: T + 9000, state: 'SETTLED_INSURANCE', note: 'market>insurance' },
      ],
      context: {
        plannedSize: parseBase('4'),
        executionMark: parsePrice('156'),
        executionMarkAtMs: T,
        limitPrice: parsePrice('160.68'),
        positionVersion: 0,
        claimed: encodeClaimedFacts({
          position: { size: parseBase('4'), entryPrice: parsePrice('150'), collateral: parseQuote('30') },
          sizing: 'sizing/no-partial-restores',
          markTick: { sequence: 41, indexPrice: parsePrice('155.5') },
          ...rules,
        }),
        settle: {
          insurance: { balance: parseQuote('100'), windowStartMs: 0, windowDrawn: 0n },
          nowMs: T + 8000,
          mark: parsePrice('158'),
          position: {
            size: parseBase('4'),
            collateral: parseQuote('30'),
            entryPrice: parsePrice('150'),
            version: 0,
          },
          auctionFills: [],
          lastResortFills: [lastResort],
          // An earlier plan credited a fee of 7 the fund's floor did not let it give back.
          applied: { 's6:0:fee': parseQuote('7') },
          replans: 1,
        },
      },
      version: 6,
    };
    const { shown, lines } = await collected(record, s6);
    expect(shown.liquidation.marketFills).toEqual([
      { price: '156.1', size: '3', slippagePercent: '0.06' },
      { price: '160', size: '1', lastResort: true },
    ]);
    expect(shown.liquidation.context?.claimed).toMatchObject({
      liquidationPrice: '153.65853658',
      bankruptcyPrice: '157.5',
      markTick: { sequence: 41, indexPrice: '155.5' },
      sizing: { reason: 'sizing/no-partial-restores', percentOfPosition: '100' },
      // Claimed before session 52: the facts say no configuration, so it is unknown (facts52-claim-config-digest).
      configDigest: null,
    });
    expect(shown.settlement).toMatchObject({
      payoutTo: 'trader',
      // The close left the trader 1.70 (30 less 28.30): the fee it paid, capped there; the fund took 7, the 5.30
      // beyond it a fee kept by its floor, which is the shortfall (review51-support-fee-paid).
      feeBasis: {
        rate: '0.01',
        closedNotional: '628.3',
        atRate: '6.283',
        paid: '1.7',
        credited: '7',
        how: 'capped',
      },
      traderLoss: { collateral: '30', lost: '30', beyondCollateral: '0', restDeficit: '0' },
    });
    expect(lines).toEqual(
      expect.arrayContaining([
        '  config       which risk configuration the claim applied is not recorded (claimed before session 52, or by an earlier version during its deploy)',
        '  execution    4 ETH planned at mark 156 USD (tick 41 of 2020-03-12T09:00:00.000Z, index 155.5 USD), limit 160.68 USD (the mark plus the slippage bound, 3 %)',
        "  sized        100 % of the position's 4 ETH: the whole position: no partial close leaves the rest its initial margin (5 % of its value)",
        '    3 ETH at 156.1 USD, 0.06 % above the mark',
        '    1 ETH at 160 USD (last resort)',
        '  trader       realized PnL -28.30 USD; fee: the trader paid 1.70 USD, the fund received 7.00 USD; collateral left to the trader 0.00 USD',
        "  fee          the trader paid 1.70 USD: the rate in force when it was claimed, 1 %, of the closed notional 628.30 USD is 6.283 USD, capped at what the close left the trader; the fund received 7.00 USD, 5.30 USD more: a fee an earlier plan of this settlement credited that the fund's floor kept beyond what the trader had left (in the shortfall)",
        '  loss         the trader lost 30.00 USD of its 30.00 USD of collateral',
      ]),
    );
  });

  it('support52-claim-facts-predate: a liquidation claimed before session 51 says so; none of it is guessed', async () => {
    const record = settledByAdl('10');
    const p1: PositionRecord = {
      id: 'p1',
      traderId: 't-p1',
      symbol: 'ETH-USD',
      side: 'LONG',
      size: 0n,
      entryPrice: parsePrice('200'),
      collateral: 0n,
      state: 'CLOSED',
      liquidationPrice: 0n,
      closedPayout: 0n,
      version: 2,
    };
    const { shown, lines } = await collected(record, p1);
    expect(shown.liquidation.context?.claimed).toBeUndefined();
    // The fee's rate is on the claim alone; what the trader lost is read from the plan's frozen position.
    expect(shown.settlement?.feeBasis).toBeUndefined();
    expect(shown.settlement?.traderLoss).toEqual({
      collateral: '200',
      lost: '200',
      beyondCollateral: '50',
      restDeficit: '0',
    });
    // Said, in the text and the JSON, where it was left out (support52-claim-facts-predate); no sizing guessed.
    expect(shown.liquidation.context?.claimedMissing).toBe('predates-claim-facts');
    expect(lines.filter((l) => /^ {2}(at claim|sized|fee|trader) /.test(l))).toEqual([
      '  at claim     not recorded: this liquidation predates recorded claim facts (claimed before session 51, or by an earlier version during its deploy), so no prices, sizing or fee rate at the claim are shown',
      '  trader       realized PnL -250.00 USD; fee: the fund received 0.00 USD (what the trader paid: see fee); collateral left to the trader 0.00 USD',
      '  fee          what the trader paid is not shown: the fee rate in force when it was claimed is not recorded (it predates recorded claim facts)',
    ]);
    // Facts recorded in a text this version cannot read: said so, not as predating them.
    const unreadable = { ...record, context: { ...record.context!, claimed: 'size=x' } };
    const again = await collected(unreadable, p1);
    expect(again.shown.liquidation.context?.claimed).toBeUndefined();
    expect(again.shown.liquidation.context?.claimedMissing).toBe('does-not-read');
    expect(again.lines.filter((l) => /^ {2}(at claim|fee) /.test(l))).toEqual([
      '  at claim     recorded in a form this version cannot read (an edit by hand, or a later version), so none of it is shown',
      '  fee          what the trader paid is not shown: the fee rate in force when it was claimed is recorded in a form this version cannot read',
    ]);
  });

  it.each([
    [
      'sizing/restore-initial-margin',
      false,
      'part of the position: the least whose close leaves the rest its initial margin (5 % of its value)',
    ],
    [
      'sizing/min-slice',
      false,
      "part of the position: what restores the initial margin, raised to the market's smallest slice (minSliceNotional)",
    ],
    // Seen on a replay: a small position's smallest slice is all of it, which "part of the position" misread.
    [
      'sizing/min-slice',
      true,
      "the whole position: what restores the initial margin, raised to the market's smallest slice (minSliceNotional), is all of it",
    ],
    [
      'sizing/dust-remainder',
      true,
      "the whole position: what a partial close would leave is below the market's dust size or smallest slice",
    ],
    [
      'sizing/insolvent',
      true,
      'the whole position: it had no equity left at the mark (past its bankruptcy price)',
    ],
    [
      'sizing/fee-exceeds-margin-relief',
      true,
      'the whole position: the fee rate is at least the initial margin, so no partial close restores it',
    ],
  ] as const)('sizingWhy(%s, whole: %s) says it in words', (reason, whole, words) => {
    expect(sizingWhy(reason, ppm('0.05'), whole)).toBe(words);
  });
});

describe('review51-support: what show says is true in the cases the first version misread', () => {
  const closed = (id: string, side: 'LONG' | 'SHORT', version: number): PositionRecord => ({
    id,
    traderId: `t-${id}`,
    symbol: 'ETH-USD',
    side,
    size: 0n,
    entryPrice: parsePrice('130.53'),
    collateral: 0n,
    state: 'CLOSED',
    liquidationPrice: 0n,
    closedPayout: 0n,
    version,
  });

  it('review51-support-fee-paid: ADL\'s rounding the fund takes with the fee is not a fee "an earlier plan credited"', async () => {
    // adl-close-rounding's solvent long: 1 ETH at 200.00000001 on 27, closed by ADL at 175 against three shorts. The
    // fee due is 1.75; the trader paid it (27 - 25.00000001 - 1.75, floored, is its 0.249999), and the fund took
    // 1.750002: the shorts' unit and the trader's own close's sub-unit, rounded away, no plan made again.
    const p = createPipeline({
      venue: { defaults: { baseHalfSpreadPpm: 60_000, maxHalfSpreadPpm: 60_000 } },
    });
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '1', '200.00000001', '27');
    await p.open('SHORT', '0.33333333', '200.00000001', '100');
    await p.open('SHORT', '0.33333333', '200.00000001', '100');
    await p.open('SHORT', '0.33333334', '200.00000001', '100');
    await p.tick('ETH-USD', '175');
    await p.drain();
    const [l] = p.adapters.liquidations.all().filter((x) => x.positionId === long.id);
    expect(l?.state).toBe('SETTLED_ADL');
    expect(l?.settlement?.fee).toBe(parseQuote('1.750002'));
    const shown = (await collectLiquidation(p.adapters, l!.id))!;
    expect(shown.settlement?.feeBasis).toEqual({
      rate: '0.01',
      closedNotional: '175',
      atRate: '1.75',
      paid: '1.75',
      credited: '1.750002',
      how: 'at-rate',
    });
    const text = renderLiquidation(shown);
    expect(text).toContain(
      "\n  fee          the trader paid 1.75 USD: the rate in force when it was claimed, 1 %, of the closed notional 175.00 USD (rounded up); the fund received 1.750002 USD, 0.000002 USD more: what ADL's counterparties' closes at the mark rounded away (whole units, never the trader's)\n",
    );
    expect(text).toContain('\n  loss         the trader lost 26.750001 USD of its 27.00 USD of collateral\n');
    // support52-adl-why-me: each counterparty ADL closed whole is told why it, from the plan's frozen inputs.
    // Its rank among those ADL took from, and the score's two factors at the plan's mark (0.33333334 ETH short at
    // 200.00000001 on 100: 8.33 USD of profit at 175; 58.33 of value on 108.33 of equity).
    const why =
      "ranked 1st of the 3 counterparties its settlement's ADL took from, by profit as a share of collateral x effective leverage at the plan's mark: profit 8.33 % of its collateral, effective leverage 0.53x";
    const listed = (await collectPositionLiquidations(p.adapters, 'p4'))!;
    expect(listed.deleveragedBy?.events).toEqual([
      expect.objectContaining({
        liquidationId: l!.id,
        round: 0,
        closedSize: '0.33333334',
        rank: { place: 1, of: 3, profitPercentOfCollateral: '8.33', effectiveLeverage: '0.53' },
      }),
    ]);
    expect(renderPositionLiquidations(listed).split('\n').slice(2)).toEqual([
      '  deleveraged by ADL once:',
      `  2020-03-12T09:00:00.000Z by ${l!.id} (its settlement): closed 0.33333334 ETH at mark 175 USD (effective 175 USD), gave 0.00 USD (haircut 0.00 USD)`,
      `    ${why}`,
      '',
    ]);
    // The liquidation's own ADL lines say it of each; the others come after it in ADL's order.
    expect(shown.settlement?.adl.closes?.map((c) => [c.positionId, c.rank?.place])).toEqual([
      ['p4', 1],
      ['p2', 2],
      ['p3', 3],
    ]);
    expect(text).toContain(`from version 0; now CLOSED, 0 ETH (version 1)\n               ${why}\n`);
    // The trader line says what the trader paid and what the fund received (support52-fee-paid-received).
    expect(text).toContain(
      '\n  trader       realized PnL -25.000001 USD; fee: the trader paid 1.75 USD, the fund received 1.750002 USD; collateral left to the trader 0.249999 USD\n',
    );
  });

  it('review51-support-dust-slice: a next slice started because its rest was dust, not past its liquidation price', async () => {
    // slice-dust-carry's long: planned whole, the book filled all but 0.0005 ETH, the rest healthy with its collateral.
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '6', '200', '80');
    p.venue.faults.maxFillPerOrder = parseBase('5.9995');
    await p.tick('ETH-USD', '190');
    await p.drain();
    const [, next] = p.adapters.liquidations.all();
    expect(next?.remainingSize).toBe(0n);
    const shown = (await collectLiquidation(p.adapters, next!.id))!;
    expect(shown.liquidation).toMatchObject({ startedBy: 'previous-slice', restWas: 'dust' });
    // Its 0.0005 ETH rest kept 4.567086 USD of collateral, more than it is worth at entry: no mark liquidates it or
    // takes its equity to zero. Said so, never as a price of 0 USD (support52-no-liquidation-price).
    expect(shown.liquidation.context?.claimed).toMatchObject({
      position: { size: '0.0005', entryPrice: '200', collateral: '4.567086' },
      liquidationPrice: null,
      bankruptcyPrice: null,
    });
    const text = renderLiquidation(shown);
    expect(text).toMatch(
      /\n {2}trigger {6}started \S+ by the settlement of the previous slice, p1:0: the rest was below the market's dust size, closed whatever its health \(it had no liquidation price: its collateral covered any price\)\n/,
    );
    expect(text).toContain(
      '\n  at claim     position 0.0005 ETH, entry 200 USD, collateral 4.567086 USD: no liquidation price: its collateral covers any price; no bankruptcy price: its equity stays above zero at any price\n',
    );
    expect(text).not.toMatch(/ 0 USD/);
  });

  it("review51-support-deficit-loss: a rest that came with its earlier slices' deficit lost no collateral it did not have", async () => {
    // The replay's ETH-USD-p0017367:3: 12.0399161 ETH at 130.53 with -5.333056 of collateral (its earlier slice's
    // deficit), closed whole at 121.17: the close lost 112.693615, and the fund paid the 118.026671 beyond zero.
    const size = parseBase('12.0399161');
    const record: LiquidationRecord = {
      id: 'p9:3',
      positionId: 'p9',
      symbol: 'ETH-USD',
      side: 'LONG',
      state: 'SETTLED_INSURANCE',
      tickKey: 'ETH-USD#12',
      triggerMark: parsePrice('124.08'),
      remainingSize: 0n,
      marketFills: [{ price: parsePrice('121.17'), size }],
      settlement: {
        ...noAmounts,
        marketClosedSize: size,
        realizedPnl: -parseQuote('112.693615'),
        shortfall: parseQuote('118.026671'),
        insurancePaid: parseQuote('118.026671'),
      },
      history: [
        { atMs: T, state: 'QUEUED', note: 'next slice of p9:2' },
        { atMs: T, state: 'SETTLED_INSURANCE', note: 'market>insurance' },
      ],
      context: {
        plannedSize: size,
        executionMark: parsePrice('124.08'),
        executionMarkAtMs: T,
        limitPrice: parsePrice('120.3576'),
        positionVersion: 3,
        claimed: encodeClaimedFacts({
          position: { size, entryPrice: parsePrice('130.53'), collateral: -parseQuote('5.333056') },
          sizing: 'sizing/insolvent',
          markTick: { sequence: 69 },
          ...rules,
        }),
      },
      version: 5,
    };
    const { shown, lines } = await collected(record, closed('p9', 'LONG', 4));
    expect(shown.liquidation.restWas).toBe('past-liquidation-price');
    expect(shown.settlement?.traderLoss).toEqual({
      collateral: '-5.333056',
      lost: '-5.333056',
      beyondCollateral: '118.026671',
      restDeficit: '0',
    });
    expect(lines).toContain(
      "  loss         the position came to this close with a deficit of 5.333056 USD (collateral below zero: its earlier slices lost more than their collateral), never charged to the trader; with this close's loss it came to 118.026671 USD below zero, borne by the fund, ADL or bad debt (the shortfall), never by the trader",
    );
  });

  it('review51-support-near-mark: a fill nearer the mark than 0.01 % is not "at the mark"; one at it is', async () => {
    const record: LiquidationRecord = {
      id: 's9:0',
      positionId: 's9',
      symbol: 'ETH-USD',
      side: 'SHORT',
      state: 'SETTLED_MARKET',
      tickKey: 'ETH-USD#5',
      triggerMark: parsePrice('2000'),
      remainingSize: 0n,
      // 0.005 % above the mark, then at it.
      marketFills: [
        { price: parsePrice('2000.1'), size: parseBase('1') },
        { price: parsePrice('2000'), size: parseBase('1') },
      ],
      settlement: {
        ...noAmounts,
        marketClosedSize: parseBase('2'),
        realizedPnl: -parseQuote('100.1'),
        fee: parseQuote('40.001'),
        traderPayout: parseQuote('59.899'),
      },
      history: [
        { atMs: T, state: 'QUEUED', note: 'crossed at 2000' },
        { atMs: T, state: 'SETTLED_MARKET', note: 'market' },
      ],
      context: {
        plannedSize: parseBase('2'),
        executionMark: parsePrice('2000'),
        executionMarkAtMs: T,
        limitPrice: parsePrice('2060'),
        positionVersion: 0,
      },
      version: 4,
    };
    const { shown, lines } = await collected(record, closed('s9', 'SHORT', 1));
    expect(shown.liquidation.marketFills.map((f) => f.slippagePercent)).toEqual(['0', '0']);
    expect(lines).toEqual(
      expect.arrayContaining([
        '    1 ETH at 2000.1 USD, within 0.01 % of the mark',
        '    1 ETH at 2000 USD, at the mark',
      ]),
    );
  });

  it("review51-support-market-only-bound: the market-only baseline's limit is not the mark plus a bound", async () => {
    // A short claimed by the baseline (no sizing): its buy's limit is a thousand times the mark.
    const record: LiquidationRecord = {
      id: 's8:0',
      positionId: 's8',
      symbol: 'ETH-USD',
      side: 'SHORT',
      state: 'EXECUTING',
      tickKey: 'ETH-USD#5',
      triggerMark: parsePrice('160'),
      remainingSize: parseBase('4'),
      marketFills: [],
      history: [{ atMs: T, state: 'QUEUED', note: 'crossed at 160' }],
      context: {
        plannedSize: parseBase('4'),
        executionMark: parsePrice('160'),
        executionMarkAtMs: T,
        limitPrice: parsePrice('160000'),
        positionVersion: 0,
        claimed: encodeClaimedFacts({
          position: { size: parseBase('4'), entryPrice: parsePrice('150'), collateral: parseQuote('30') },
          ...rules,
          slippageBound: 999_999n,
        }),
      },
      version: 1,
    };
    const s8 = { ...closed('s8', 'SHORT', 0), state: 'LIQUIDATING' as const, size: parseBase('4') };
    const { lines } = await collected(record, s8);
    expect(lines).toEqual(
      expect.arrayContaining([
        '  execution    4 ETH planned at mark 160 USD (of 2020-03-12T09:00:00.000Z), limit 160000 USD (the market-only baseline: no bound)',
        '  sized        the whole position (the market-only baseline)',
      ]),
    );
  });
});

describe('support52: answering traders, round two', () => {
  it('support52-no-liquidation-price: a short whose deficit passes its entry value is past both prices at any mark', async () => {
    // 1 ETH short at 200 carrying 250 of its earlier slices' deficit: its equity is below zero at every price.
    const record: LiquidationRecord = {
      id: 's7:2',
      positionId: 's7',
      symbol: 'ETH-USD',
      side: 'SHORT',
      state: 'EXECUTING',
      tickKey: 'ETH-USD#8',
      triggerMark: parsePrice('210'),
      remainingSize: parseBase('1'),
      marketFills: [],
      history: [{ atMs: T, state: 'QUEUED', note: 'next slice of s7:0' }],
      context: {
        plannedSize: parseBase('1'),
        executionMark: parsePrice('210'),
        positionVersion: 2,
        claimed: encodeClaimedFacts({
          position: { size: parseBase('1'), entryPrice: parsePrice('200'), collateral: -parseQuote('250') },
          sizing: 'sizing/insolvent',
          ...rules,
        }),
      },
      version: 1,
    };
    const s7: PositionRecord = {
      id: 's7',
      traderId: 't-s7',
      symbol: 'ETH-USD',
      side: 'SHORT',
      size: parseBase('1'),
      entryPrice: parsePrice('200'),
      collateral: -parseQuote('250'),
      state: 'LIQUIDATING',
      liquidationPrice: 0n,
      version: 2,
    };
    const { shown, lines } = await collected(record, s7);
    expect(shown.liquidation.context?.claimed).toMatchObject({
      liquidationPrice: null,
      bankruptcyPrice: null,
    });
    expect(shown.liquidation.restWas).toBe('past-liquidation-price');
    expect(lines).toContain(
      '  at claim     position 1 ETH, entry 200 USD, collateral -250.00 USD: no liquidation price: its equity is below the maintenance margin at any price; no bankruptcy price: its equity is below zero at any price',
    );
  });

  it("review52-support-adl-rank-rounds: a rank is among its settlement's counterparties, not the later rounds'", async () => {
    // The market closed the 10; s1's haircut covered 3 of the deficit and two ADL rounds took from others after.
    const record = settledWithRounds();
    const p1: PositionRecord = {
      id: 'p1',
      traderId: 't-p1',
      symbol: 'ETH-USD',
      side: 'LONG',
      size: 0n,
      entryPrice: parsePrice('200'),
      collateral: 0n,
      state: 'CLOSED',
      liquidationPrice: 0n,
      version: 2,
    };
    const { shown, lines } = await collected(record, p1);
    expect(shown.settlement?.adl.closes?.map((c) => [c.positionId, c.rank?.place, c.rank?.of])).toEqual([
      ['s1', 1, 1],
    ]);
    // It said `the only counterparty ADL took from`: the rounds took from others.
    expect(lines).toContain(
      "               the only counterparty its settlement's ADL took from, ranked first by profit as a share of collateral x effective leverage at the plan's mark: profit 2500 % of its collateral, effective leverage 6.73x",
    );
    expect(lines).toContain(
      '  ADL rounds   2 after the settlement (their counterparties are not recorded on the liquidation)',
    );
  });

  describe("support52-auction-fill-times: each auction fill's time and mark", () => {
    const sell = (providerId: string, size: string, price: string) => {
      const fill = { price: parsePrice(price), size: parseBase(size) };
      return { providerId, ...fill, cost: auctionFillCost('SELL', fill) };
    };
    type Sold = ReturnType<typeof sell>;
    // q1:0's SELL auction: step 1 filled lp-a and lp-b, step 2 lp-a, lp-c and lp-d.
    const fills = [
      sell('lp-a', '2', '194'),
      sell('lp-b', '1', '195'),
      sell('lp-a', '1', '190.08'),
      sell('lp-c', '1', '191'),
      sell('lp-d', '0.5', '191'),
    ];
    /** What a provider's record keeps of a fill of `auction`'s liquidation (or another's). */
    const kept = (f: Sold, step: number, mark: string, atMs: number, liquidationId = 'q1:0') => ({
      liquidationId,
      step,
      symbol: 'ETH-USD',
      direction: 'SELL' as const,
      size: f.size,
      price: f.price,
      cost: f.cost,
      mark: parsePrice(mark),
      edge: fillEdge('SELL', f.size, parsePrice(mark), f.cost),
      atMs,
    });
    /** A fill as the auction records it since session 52: with its step, time and mark. */
    const timed = (f: Sold, step: number, mark: string, atMs: number) => ({
      ...f,
      step,
      atMs,
      mark: parsePrice(mark),
    });
    const provider = (id: string, recent: ReturnType<typeof kept>[]): ProviderRecord => ({
      id,
      capital: parseQuote('100000'),
      maxDiscountPpm: 30_000n,
      maxLot: parseBase('100'),
      symbols: ['ETH-USD'],
      fills: { total: 9, recent, byMarket: {}, sinceMs: T },
      version: 3,
    });
    const later = (n: number) =>
      Array.from({ length: n }, (_, i) => kept(sell('x', '1', '150'), 1, '150', T + 600_000 + i, `z${i}:0`));

    /**
     * q1:0 and its auction with `auctionFills` (at `step`, in `state`), the providers' records keeping `records`; a
     * provider named by `unreadable` refuses its read, as does every one when `unreadable` is `every`.
     */
    async function shownOf(options: {
      auctionFills: readonly (Sold | ReturnType<typeof timed>)[];
      records: Readonly<Record<string, ReturnType<typeof kept>[]>>;
      step?: number;
      state?: 'RUNNING' | 'CLEARED';
      unreadable?: string;
    }) {
      const adapters = createEmbeddedAdapters();
      for (const [id, recent] of Object.entries(options.records))
        await adapters.providers.put(provider(id, recent), undefined);
      const filled = options.auctionFills.reduce((t, f) => t + f.size, 0n);
      const running = options.state === 'RUNNING';
      await adapters.auctions.create({
        id: 'q1:0:auction',
        liquidationId: 'q1:0',
        symbol: 'ETH-USD',
        direction: 'SELL',
        lot: parseBase('5.5'),
        remainingLot: parseBase('5.5') - filled,
        top: parsePrice('196'),
        startedAtMs: T,
        resets: 0,
        step: options.step ?? 3,
        state: options.state ?? 'CLEARED',
        ...(running ? {} : { endedBy: 'plan' as const, endedAtMark: parsePrice('192') }),
        fills: options.auctionFills,
        version: 2,
      });
      await adapters.transactor.commit([
        {
          kind: 'liquidation',
          record: {
            id: 'q1:0',
            positionId: 'q1',
            symbol: 'ETH-USD',
            side: 'LONG',
            state: 'AUCTION',
            tickKey: 'ETH-USD#3',
            triggerMark: parsePrice('196'),
            remainingSize: parseBase('5.5'),
            marketFills: [],
            history: [{ atMs: T, state: 'AUCTION', note: 'lot 550000000' }],
            context: {
              plannedSize: parseBase('5.5'),
              executionMark: parsePrice('196'),
              auctionId: 'q1:0:auction',
            },
            version: 2,
          },
          expectedVersion: undefined,
        },
      ]);
      const { unreadable } = options;
      const reading =
        unreadable === undefined
          ? adapters
          : {
              ...adapters,
              providers: {
                list: (symbol: string) => adapters.providers.list(symbol),
                put: (p: ProviderRecord, expected: number | undefined) => adapters.providers.put(p, expected),
                get: async (id: string) => {
                  if (unreadable === 'every' || id === unreadable)
                    throw new Error('AccessDeniedException: not authorized');
                  return adapters.providers.get(id);
                },
              },
            };
      return (await collectLiquidation(reading, 'q1:0'))!;
    }

    // lp-a keeps its step-2 fill of it, its step-1 fill let go; lp-b its one fill, filled at the step's mark;
    // lp-c five later fills of other auctions; lp-d a fill of this auction this one does not hold (another size).
    const before52 = {
      auctionFills: fills,
      records: {
        'lp-a': [...later(4), kept(fills[2]!, 2, '192', T + 40_000)],
        'lp-b': [kept(fills[1]!, 1, '195', T + 10_000)],
        'lp-c': later(5),
        'lp-d': [{ ...kept(fills[4]!, 2, '192', T + 40_000), size: parseBase('0.4') }],
      },
    };

    it("an auction of before session 52: times the fills the providers' records keep, says why the others have none", async () => {
      const r = await shownOf(before52);
      expect(r.auction?.fills).toEqual([
        { providerId: 'lp-a', price: '194', size: '2', cost: '388' },
        {
          providerId: 'lp-b',
          price: '195',
          size: '1',
          cost: '195',
          step: 1,
          at: '2020-03-12T09:00:10.000Z',
          mark: '195',
          slippagePercent: '0',
        },
        {
          providerId: 'lp-a',
          price: '190.08',
          size: '1',
          cost: '190.08',
          step: 2,
          at: '2020-03-12T09:00:40.000Z',
          mark: '192',
          slippagePercent: '1',
        },
        { providerId: 'lp-c', price: '191', size: '1', cost: '191' },
        { providerId: 'lp-d', price: '191', size: '0.5', cost: '95.5' },
      ]);
      expect(r.auction?.providersUnread).toBeUndefined();
      const lines = renderLiquidation(r).split('\n');
      const at = lines.indexOf(
        "  fills        3 of 5 without a time: a fill made before session 52 is timed only by its provider's record, which keeps its latest 5 fills, and only where it tells the fill from the provider's others in this auction",
      );
      expect(at).toBeGreaterThan(0);
      expect(lines.slice(at + 1, at + 6)).toEqual([
        '    lp-a: 2 ETH at 194 USD (cost 388.00 USD)',
        "    lp-b: 1 ETH at 195 USD (cost 195.00 USD), step 1 at 2020-03-12T09:00:10.000Z, at the step's mark 195 USD",
        "    lp-a: 1 ETH at 190.08 USD (cost 190.08 USD), step 2 at 2020-03-12T09:00:40.000Z, 1.00 % below the step's mark 192 USD",
        '    lp-c: 1 ETH at 191 USD (cost 191.00 USD)',
        '    lp-d: 0.5 ETH at 191 USD (cost 95.50 USD)',
      ]);
    });

    it('a provider whose record cannot be read is named with why; the command still answers', async () => {
      const r = await shownOf({ ...before52, unreadable: 'lp-b' });
      expect(r.auction?.providersUnread).toEqual([
        { providerId: 'lp-b', reason: 'AccessDeniedException: not authorized' },
      ]);
      expect(r.auction?.fills[1]).toEqual({ providerId: 'lp-b', price: '195', size: '1', cost: '195' });
      expect(r.auction?.fills[2]?.at).toBe('2020-03-12T09:00:40.000Z');
      expect(renderLiquidation(r)).toContain(
        "\n    provider lp-b's record not read (AccessDeniedException: not authorized): its fills' times not shown\n",
      );
    });

    // review52-support-fill-times-on-auction: the providers' records keep their latest 5 fills, so the morning after a crash
    // (a provider fills many auctions) most fills had no time. Each fill made since session 52 keeps its own.
    it("review52-support-fill-times-on-auction: a fill recorded with its time shows it, its provider's record not read", async () => {
      const r = await shownOf({
        auctionFills: [
          timed(fills[0]!, 1, '196', T + 10_000),
          timed(fills[1]!, 1, '196', T + 10_000),
          timed(fills[2]!, 2, '192', T + 40_000),
        ],
        // Their records have let them go; and none can be read: none need be.
        records: { 'lp-a': later(5), 'lp-b': later(5) },
        unreadable: 'every',
      });
      expect(r.auction?.providersUnread).toBeUndefined();
      expect(r.auction?.fills.map((f) => [f.providerId, f.step, f.at, f.mark, f.slippagePercent])).toEqual([
        ['lp-a', 1, '2020-03-12T09:00:10.000Z', '196', '1.02'],
        ['lp-b', 1, '2020-03-12T09:00:10.000Z', '196', '0.51'],
        ['lp-a', 2, '2020-03-12T09:00:40.000Z', '192', '1'],
      ]);
      const text = renderLiquidation(r);
      expect(text).toContain("\n  fills        each with its step's time and mark\n");
      expect(text).toContain(
        "\n    lp-a: 2 ETH at 194 USD (cost 388.00 USD), step 1 at 2020-03-12T09:00:10.000Z, 1.02 % below the step's mark 196 USD\n",
      );
    });

    // Matching a provider's kept fills to the auction's by their place (the last of its fills in the auction) printed
    // a wrong time as fact when the two reads did not see the same auction, or a provider filled alike twice.
    describe('review52-support-fill-times-unambiguous: an older fill is timed from its provider only where told apart', () => {
      const alike = sell('lp-a', '1', '190');

      it("a running auction that stepped after it was read: no fill is given a later step's time", async () => {
        // Read at step 3: lp-a filled alike at steps 1 and 2. Its record, read after step 3 filled it alike again,
        // has let step 1's go: [step 2, step 3].
        const r = await shownOf({
          auctionFills: [alike, alike],
          records: {
            'lp-a': [...later(3), kept(alike, 2, '192', T + 40_000), kept(alike, 3, '192', T + 70_000)],
          },
          step: 3,
          state: 'RUNNING',
        });
        // By place, step 2's time went to step 1's fill and step 3's to step 2's. Its step-2 fill is one of two
        // alike: neither is timed.
        expect(r.auction?.fills.map((f) => f.at)).toEqual([undefined, undefined]);
        // Said as what it is: every fill without a time (it said `none without a time`).
        expect(renderLiquidation(r)).toContain('\n  fills        2 of 2 without a time: ');
      });

      it('a provider that filled alike at two steps, the record keeping one: neither is timed', async () => {
        const r = await shownOf({
          auctionFills: [alike, sell('lp-b', '1', '195'), alike],
          records: { 'lp-a': [...later(4), kept(alike, 2, '192', T + 40_000)] },
        });
        expect(r.auction?.fills.map((f) => f.at)).toEqual([undefined, undefined, undefined]);
      });

      it('a provider whose record keeps every one of its fills in the auction: each timed, in step order', async () => {
        const r = await shownOf({
          auctionFills: [alike, sell('lp-b', '1', '195'), alike],
          records: { 'lp-a': [kept(alike, 1, '192', T + 10_000), kept(alike, 2, '192', T + 40_000)] },
        });
        expect(r.auction?.fills.map((f) => [f.step, f.at])).toEqual([
          [1, '2020-03-12T09:00:10.000Z'],
          [undefined, undefined],
          [2, '2020-03-12T09:00:40.000Z'],
        ]);
      });

      it("a fill timed on the auction is not matched again: its record's fill times no older fill alike", async () => {
        // lp-a filled alike at step 1 (before session 52: no time) and step 2 (timed); its record keeps step 2's.
        const r = await shownOf({
          auctionFills: [alike, timed(alike, 2, '192', T + 40_000)],
          records: { 'lp-a': [...later(4), kept(alike, 2, '192', T + 40_000)] },
        });
        expect(r.auction?.fills.map((f) => [f.step, f.at])).toEqual([
          [undefined, undefined],
          [2, '2020-03-12T09:00:40.000Z'],
        ]);
      });
    });
  });
});

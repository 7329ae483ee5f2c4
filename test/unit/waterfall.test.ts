import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EmbeddedLedger } from '../../shared/adapters/embedded/ledger.ts';
import {
  type ClosablePosition,
  pnlE16,
  settleClose,
  settleSlice,
  traderChange,
} from '../../shared/domain/accounting.ts';
import {
  type AdlCandidate,
  asAdlCandidate,
  type DeleveragedPosition,
  deleverageCounterparty,
  rankForAdl,
} from '../../shared/domain/adl.ts';
import { DEFAULT_RISK_CONFIG, type InsuranceConfig, marketConfig } from '../../shared/domain/config.ts';
import { type InsuranceState, planDebit } from '../../shared/domain/insurance.ts';
import { marginE16 } from '../../shared/domain/margin.ts';
import type { Fill, Layer, Side } from '../../shared/domain/model.ts';
import { planLiquidationStep } from '../../shared/domain/sizing.ts';
import {
  base,
  div,
  maxBig,
  NOTIONAL_TO_QUOTE,
  PPM_SCALE,
  ppm,
  price,
  usd,
} from '../../shared/domain/units.ts';
import {
  type AppliedAmounts,
  appliedAmounts,
  appliedByKey,
  decideWaterfall,
  differenceMovements,
  nextSliceDelaySeconds,
  type PlannedMovement,
  planKeyOf,
  SETTLEMENT_UNITS,
  type SettlementAmounts,
  settlementRecord,
  type WaterfallDecision,
  WaterfallError,
  type WaterfallInput,
} from '../../shared/domain/waterfall.ts';
import type { LedgerMovement } from '../../shared/ports/index.ts';

const RUNS = { numRuns: 300 };
const ID = 'pos-1:3';
const ACCOUNT = 'insurance:ETH-USD';
const insuranceConfig: InsuranceConfig = { drawCapPerWindow: usd('1000'), windowSeconds: 3600, floor: 0n };
const fill = (size: string, at: string): Fill => ({ size: base(size), price: price(at) });
const short = (id: string, size: string, entry: string, collateral: string): AdlCandidate => ({
  id,
  side: 'SHORT',
  size: base(size),
  entryPrice: price(entry),
  collateral: usd(collateral),
});

/** LONG 1 ETH at 2000 with 200 collateral: bankruptcy 1800. */
const input = (over: Partial<WaterfallInput> = {}): WaterfallInput => ({
  liquidationId: ID,
  position: { side: 'LONG', size: base('1'), entryPrice: price('2000'), collateral: usd('200') },
  mark: price('1840'),
  market: { liquidationFee: ppm('0.01') },
  stillLiquidatable: true,
  insurance: {
    account: ACCOUNT,
    state: { balance: usd('10000'), windowStartMs: 0, windowDrawn: 0n },
    config: insuranceConfig,
  },
  nowMs: 1_000,
  ...over,
});
const fund = (balance: string, cap = '1000') => ({
  account: ACCOUNT,
  state: { balance: usd(balance), windowStartMs: 0, windowDrawn: 0n },
  config: { ...insuranceConfig, drawCapPerWindow: usd(cap) },
});
const shorts = [short('s1', '2', '2100', '100'), short('s2', '1', '2050', '500')];

describe('next action before the end', () => {
  it.each([
    { name: 'market not run yet', over: {}, next: 'execute-market', terminal: undefined },
    {
      name: 'no longer liquidatable before the market',
      over: { stillLiquidatable: false },
      next: 'cancel',
      terminal: 'CANCELLED',
    },
    {
      name: 'market found nothing and no longer liquidatable',
      over: { stillLiquidatable: false, marketResult: { fills: [] } },
      next: 'cancel',
      terminal: 'CANCELLED',
    },
    {
      name: 'market left size',
      over: { marketResult: { fills: [fill('0.4', '1830')] } },
      next: 'start-auction',
      terminal: undefined,
    },
    {
      name: 'market executed part: never cancelled',
      over: { stillLiquidatable: false, marketResult: { fills: [fill('0.4', '1830')] } },
      next: 'start-auction',
      terminal: undefined,
    },
    {
      name: 'auction running',
      over: { marketResult: { fills: [] }, auctionResult: { fills: [fill('0.1', '1820')], finished: false } },
      next: 'await-auction',
      terminal: undefined,
    },
    {
      name: 'auction running without a fill, no longer liquidatable',
      over: {
        stillLiquidatable: false,
        marketResult: { fills: [] },
        auctionResult: { fills: [], finished: false },
      },
      next: 'cancel',
      terminal: 'CANCELLED',
    },
    {
      name: 'auction finished with size left: ADL needs candidates',
      over: { marketResult: { fills: [] }, auctionResult: { fills: [fill('0.5', '1820')], finished: true } },
      next: 'load-adl-candidates',
      terminal: undefined,
    },
    {
      name: 'fund refuses part of a shortfall: ADL needs candidates',
      over: { marketResult: { fills: [fill('1', '1750')] }, insurance: fund('20') },
      next: 'load-adl-candidates',
      terminal: undefined,
    },
    {
      name: 'nothing closed and no counterparty in profit: the last resort',
      over: {
        marketResult: { fills: [] },
        auctionResult: { fills: [], finished: true },
        adlCandidates: [short('s1', '3', '1500', '100')],
      },
      next: 'execute-last-resort',
      terminal: undefined,
    },
    {
      name: 'the last resort filled nothing either',
      over: {
        marketResult: { fills: [] },
        auctionResult: { fills: [], finished: true },
        lastResortResult: { fills: [] },
        adlCandidates: [],
      },
      next: 'escalate',
      terminal: undefined,
    },
  ] as const)('$name', ({ over, next, terminal }) => {
    const d = decideWaterfall(input(over));
    expect(d.next).toBe(next);
    expect(d.terminal).toBe(terminal);
    expect(d.movements).toEqual([]);
    expect(d.insuranceNext).toEqual(input(over).insurance.state);
    if (next === 'escalate') expect(d.reason).toBe('waterfall/no-liquidity');
    if (next === 'execute-last-resort') expect(d.lastResortSize).toBe(base('1'));
  });

  it('a last-resort result before the auction layer ended is refused', () => {
    expect(() =>
      decideWaterfall(input({ marketResult: { fills: [] }, lastResortResult: { fills: [] } })),
    ).toThrow('waterfall/bad-input');
  });

  it.each([
    {
      name: 'auction before market',
      over: { auctionResult: { fills: [], finished: true } },
      reason: 'waterfall/auction-before-market',
    },
    {
      name: 'overfill',
      over: {
        marketResult: { fills: [fill('0.6', '1830')] },
        auctionResult: { fills: [fill('0.5', '1830')], finished: true },
      },
      reason: 'waterfall/overfill',
    },
    { name: 'empty id', over: { liquidationId: '' }, reason: 'waterfall/bad-input' },
    { name: 'zero mark', over: { mark: 0n }, reason: 'waterfall/bad-input' },
    {
      name: 'zero-size fill',
      over: { marketResult: { fills: [fill('0', '1830')] } },
      reason: 'waterfall/bad-input',
    },
    {
      name: 'zero-price fill',
      over: { marketResult: { fills: [{ size: base('0.1'), price: 0n }] } },
      reason: 'waterfall/bad-input',
    },
    {
      name: 'id not a string',
      over: { liquidationId: 7 as unknown as string },
      reason: 'waterfall/bad-input',
    },
    { name: 'fractional nowMs', over: { nowMs: 1.5 }, reason: 'waterfall/bad-input' },
    { name: 'negative nowMs', over: { nowMs: -1 }, reason: 'waterfall/bad-input' },
    {
      name: 'empty insurance account',
      over: { insurance: { ...fund('1'), account: '' } },
      reason: 'waterfall/bad-input',
    },
    {
      name: 'negative rest of the position',
      over: { restOfPosition: { size: -1n, mark: price('1840') } },
      reason: 'waterfall/bad-input',
    },
    {
      name: 'rest of the position at a zero mark',
      over: { restOfPosition: { size: base('1'), mark: 0n } },
      reason: 'waterfall/bad-input',
    },
    {
      name: 'negative applied shortfall',
      over: { applied: { fee: 0n, shortfallPaid: -1n } },
      reason: 'waterfall/bad-input',
    },
  ])('rejects $name', ({ over, reason }) => {
    expect(() => decideWaterfall(input(over))).toThrow(WaterfallError);
    expect(() => decideWaterfall(input(over))).toThrow(reason);
  });

  it('rejects a position that cannot close before anything runs', () => {
    const empty = { ...input().position, size: 0n };
    expect(() => decideWaterfall(input({ position: empty }))).toThrow('accounting/bad-position');
  });

  // The message names the field and its value (what an operator reads in a log), after the reason.
  const zeroPrice = { size: base('0.1'), price: 0n };
  const messages: [Partial<WaterfallInput>, string][] = [
    [{ liquidationId: '' }, 'waterfall/bad-input: liquidationId is empty'],
    [{ mark: -1n }, 'waterfall/bad-input: mark -1 must be > 0'],
    [{ nowMs: 1.5 }, 'waterfall/bad-input: nowMs 1.5'],
    [{ insurance: { ...fund('1'), account: '' } }, 'waterfall/bad-input: insurance account is empty'],
    [{ restOfPosition: { size: -1n, mark: 3n } }, 'waterfall/bad-input: restOfPosition -1 at 3'],
    [{ applied: { fee: 4n, shortfallPaid: -2n } }, 'waterfall/bad-input: applied fee 4, shortfall -2'],
    [
      { auctionResult: { fills: [], finished: true } },
      'waterfall/auction-before-market: an auction result without a market result',
    ],
    [
      {
        marketResult: { fills: [fill('0.6', '1830')] },
        auctionResult: { fills: [fill('0.5', '1830')], finished: true },
      },
      'waterfall/overfill: fills 110000000 > size 100000000',
    ],
    [
      { marketResult: { fills: [fill('0.1', '1830'), zeroPrice] } },
      'waterfall/bad-input: market fill 1: size and price must be > 0',
    ],
    [
      { marketResult: { fills: [] }, auctionResult: { fills: [zeroPrice], finished: true } },
      'waterfall/bad-input: auction fill 0: size and price must be > 0',
    ],
    [
      {
        marketResult: { fills: [] },
        auctionResult: { fills: [], finished: true },
        lastResortResult: { fills: [zeroPrice] },
      },
      'waterfall/bad-input: last-resort fill 0: size and price must be > 0',
    ],
    [
      { marketResult: { fills: [] }, lastResortResult: { fills: [] } },
      'waterfall/bad-input: a last-resort result before the auction layer ended',
    ],
  ];
  it.each(messages)('says what was wrong: %o', (over, message) => {
    const error = (() => {
      try {
        decideWaterfall(input(over));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(WaterfallError);
    expect((error as WaterfallError).name).toBe('WaterfallError');
    expect((error as WaterfallError).message).toBe(message);
  });

  it('before the end, reports the layers that closed size and nothing else', () => {
    const nothingYet = {
      insurance: { feeCredited: 0n, shortfallPaid: 0n, refused: 0n },
      adl: { closedSize: 0n, deficit: 0n, covered: 0n, uncovered: 0n },
    };
    const common = {
      traderPayout: 0n,
      carriedSize: 0n,
      movements: [],
      insuranceNext: input().insurance.state,
    };
    expect(decideWaterfall(input({ marketResult: { fills: [fill('0.4', '1830')] } }))).toEqual({
      next: 'start-auction',
      acted: ['market'],
      layers: {
        market: { closedSize: base('0.4'), lastResortSize: 0n },
        auction: { closedSize: 0n },
        ...nothingYet,
      },
      ...common,
    });
    const running = {
      marketResult: { fills: [] },
      auctionResult: { fills: [fill('0.1', '1820')], finished: false },
    };
    expect(decideWaterfall(input(running))).toEqual({
      next: 'await-auction',
      acted: ['auction'],
      layers: {
        market: { closedSize: 0n, lastResortSize: 0n },
        auction: { closedSize: base('0.1') },
        ...nothingYet,
      },
      ...common,
    });
  });
});

describe('terminal states', () => {
  const cases: {
    name: string;
    over: Partial<WaterfallInput>;
    terminal: string;
    acted: Layer[];
    fee: string;
    shortfall: string;
    paid: string;
    covered: string;
    badDebt: string;
    adlSize: string;
    payout: string;
  }[] = [
    {
      name: 'market closes all, solvent',
      over: { marketResult: { fills: [fill('1', '1830')] } },
      terminal: 'SETTLED_MARKET',
      acted: ['market'],
      fee: '18.3',
      shortfall: '0',
      paid: '0',
      covered: '0',
      badDebt: '0',
      adlSize: '0',
      payout: '11.7',
    },
    {
      name: 'auction closes the rest, solvent',
      over: {
        marketResult: { fills: [fill('0.4', '1830')] },
        auctionResult: { fills: [fill('0.6', '1820')], finished: true },
      },
      terminal: 'SETTLED_AUCTION',
      acted: ['market', 'auction'],
      fee: '18.24',
      shortfall: '0',
      paid: '0',
      covered: '0',
      badDebt: '0',
      adlSize: '0',
      payout: '5.76',
    },
    {
      name: 'auction closes the rest, the fund pays the shortfall',
      over: {
        marketResult: { fills: [fill('0.5', '1800')] },
        auctionResult: { fills: [fill('0.5', '1700')], finished: true },
      },
      terminal: 'SETTLED_INSURANCE',
      acted: ['market', 'auction', 'insurance'],
      fee: '0',
      shortfall: '50',
      paid: '50',
      covered: '0',
      badDebt: '0',
      adlSize: '0',
      payout: '0',
    },
    {
      name: 'market closes all under the bankruptcy price, the fund pays',
      over: { marketResult: { fills: [fill('1', '1750')] } },
      terminal: 'SETTLED_INSURANCE',
      acted: ['market', 'insurance'],
      fee: '0',
      shortfall: '50',
      paid: '50',
      covered: '0',
      badDebt: '0',
      adlSize: '0',
      payout: '0',
    },
    {
      name: 'fund floor refuses part: ADL socializes it without size',
      over: { marketResult: { fills: [fill('1', '1750')] }, insurance: fund('20'), adlCandidates: shorts },
      terminal: 'SETTLED_ADL',
      acted: ['market', 'insurance', 'adl'],
      fee: '0',
      shortfall: '50',
      paid: '20',
      covered: '30',
      badDebt: '0',
      adlSize: '0',
      payout: '0',
    },
    {
      name: 'ADL closes what the auction left, at the mark, solvent',
      over: {
        mark: price('1780'),
        marketResult: { fills: [fill('0.5', '1820')] },
        auctionResult: { fills: [], finished: true },
        adlCandidates: shorts,
      },
      terminal: 'SETTLED_ADL',
      acted: ['market', 'adl'],
      fee: '0',
      shortfall: '0',
      paid: '0',
      covered: '0',
      badDebt: '0',
      adlSize: '0.5',
      payout: '0',
    },
    {
      name: 'nothing on market or auction: fund within its cap, ADL the rest',
      over: {
        mark: price('1700'),
        marketResult: { fills: [] },
        auctionResult: { fills: [], finished: true },
        insurance: fund('10000', '60'),
        adlCandidates: shorts,
      },
      terminal: 'SETTLED_ADL',
      acted: ['insurance', 'adl'],
      fee: '0',
      shortfall: '100',
      paid: '60',
      covered: '40',
      badDebt: '0',
      adlSize: '1',
      payout: '0',
    },
    {
      name: 'empty fund, too little profit on the other side: bad debt',
      over: {
        marketResult: { fills: [fill('1', '1750')] },
        insurance: fund('0'),
        adlCandidates: [short('s3', '1', '1760', '100')],
      },
      terminal: 'SETTLED_ADL',
      acted: ['market', 'adl'],
      fee: '0',
      shortfall: '50',
      paid: '0',
      covered: '0',
      badDebt: '50',
      adlSize: '0',
      payout: '0',
    },
  ];

  it.each(cases)('$name -> $terminal', (c) => {
    const d = decideWaterfall(input(c.over));
    expect(d.next).toBe('settle');
    expect(d.terminal).toBe(c.terminal);
    expect(d.acted).toEqual(c.acted);
    expect(d.layers.insurance.feeCredited).toBe(usd(c.fee));
    expect(d.settlement?.shortfall).toBe(usd(c.shortfall));
    expect(d.layers.insurance.shortfallPaid).toBe(usd(c.paid));
    expect(d.layers.adl.covered).toBe(usd(c.covered));
    expect(d.layers.adl.uncovered).toBe(usd(c.badDebt));
    expect(d.layers.adl.closedSize).toBe(base(c.adlSize));
    expect(d.traderPayout).toBe(usd(c.payout));
  });

  it('plans idempotent ledger movements keyed by the liquidation id', () => {
    const fee = decideWaterfall(input({ marketResult: { fills: [fill('1', '1830')] } }));
    expect(fee.movements).toEqual([
      {
        account: ACCOUNT,
        idempotencyKey: `${ID}:fee`,
        amount: usd('18.3'),
        kind: 'liquidation-fee',
        reference: ID,
        atMs: 1_000,
        floor: 0n,
      },
    ]);
    const draw = decideWaterfall(input({ nowMs: 7_300_000, marketResult: { fills: [fill('1', '1750')] } }));
    expect(draw.movements).toEqual([
      {
        account: ACCOUNT,
        idempotencyKey: `${ID}:shortfall`,
        amount: -usd('50'),
        kind: 'shortfall-payout',
        reference: ID,
        atMs: 7_300_000,
        floor: 0n,
        drawWindow: { windowStartMs: 7_200_000, cap: usd('1000') },
      },
    ]);
    expect(draw.insuranceNext).toEqual({
      balance: usd('9950'),
      windowStartMs: 7_200_000,
      windowDrawn: usd('50'),
    });
    // the planned movements are the Ledger port's LedgerMovement
    const asPort: readonly LedgerMovement[] = draw.movements;
    expect(asPort).toHaveLength(1);
  });

  it('names the refusing limit and the ADL fills at the effective price', () => {
    const d = decideWaterfall(input(cases[6]!.over));
    expect(d.layers.insurance.refusal).toBe('insurance/draw-cap');
    expect(d.adl?.fills).toEqual([
      { id: 's1', size: base('1'), price: price('1740'), pnlGiven: usd('40'), haircut: 0n },
    ]);
  });

  it('records nothing settled before the end', () => {
    const record = settlementRecord(decideWaterfall(input()));
    expect(Object.values(record)).toEqual(Object.keys(SETTLEMENT_UNITS).map(() => 0n));
  });

  it('names a size in base units and money in quote units', () => {
    const record = settlementRecord(decideWaterfall(input(cases[4]!.over)));
    expect(Object.keys(SETTLEMENT_UNITS).sort()).toEqual(Object.keys(record).sort());
    for (const key of Object.keys(record) as (keyof SettlementAmounts)[])
      expect([key, SETTLEMENT_UNITS[key]]).toEqual([key, key.endsWith('Size') ? 'base' : 'quote']);
  });

  it('records the settlement amounts in their units', () => {
    const d = decideWaterfall(input(cases[4]!.over));
    expect(settlementRecord(d)).toMatchObject({
      marketClosedSize: base('1'),
      shortfall: usd('50'),
      insurancePaid: usd('20'),
      adlCovered: usd('30'),
      badDebt: 0n,
    });
  });
});

// --- properties -----------------------------------------------------------------------------------------

const sideArb = fc.constantFrom<Side>('LONG', 'SHORT');
const sizeArb = fc.bigInt({ min: 1n, max: 500_000_000n });
const ORDER: readonly Layer[] = ['market', 'auction', 'insurance', 'adl'];
const TERMINAL_LAYER: Record<string, Layer> = {
  SETTLED_MARKET: 'market',
  SETTLED_AUCTION: 'auction',
  SETTLED_INSURANCE: 'insurance',
  SETTLED_ADL: 'adl',
};

const scenarioArb = fc
  .record({
    side: sideArb,
    entry: fc.bigInt({ min: 100_000_000_000n, max: 500_000_000_000n }), // 1k .. 5k USD
    leverage: fc.bigInt({ min: 2n, max: 50n }),
    markMove: fc.bigInt({ min: -300n, max: 300n }), // per mille
    marketSizes: fc.array(sizeArb, { maxLength: 3 }),
    auctionSizes: fc.array(sizeArb, { maxLength: 3 }),
    leftover: fc.oneof({ arbitrary: fc.constant(0n), weight: 3 }, { arbitrary: sizeArb, weight: 2 }),
    priceMoves: fc.array(fc.bigInt({ min: -400n, max: 200n }), { minLength: 6, maxLength: 6 }),
    stage: fc.oneof(
      { arbitrary: fc.constantFrom('none', 'market', 'auction-running'), weight: 1 },
      { arbitrary: fc.constant('done'), weight: 4 },
    ),
    stillLiquidatable: fc.boolean(),
    balance: fc.bigInt({ min: 0n, max: 5_000_000_000n }),
    drawn: fc.bigInt({ min: 0n, max: 3_000_000_000n }),
    cap: fc.bigInt({ min: 0n, max: 3_000_000_000n }),
    floor: fc.bigInt({ min: 0n, max: 500_000_000n }),
    nowMs: fc.integer({ min: 0, max: 10 * 3_600_000 }),
    candidates: fc.array(
      fc.record({
        side: sideArb,
        size: sizeArb,
        entryMove: fc.bigInt({ min: -300n, max: 300n }),
        collateral: sizeArb,
      }),
      { maxLength: 5 },
    ),
    lastResortPercent: fc.option(fc.bigInt({ min: 0n, max: 100n })),
    loadCandidates: fc.oneof(
      { arbitrary: fc.constant(false), weight: 1 },
      { arbitrary: fc.constant(true), weight: 4 },
    ),
  })
  .map((s): WaterfallInput => {
    const filled = [...s.marketSizes, ...s.auctionSizes].reduce((a, b) => a + b, 0n);
    const size = filled + s.leftover > 0n ? filled + s.leftover : 1n;
    // the adverse direction is down for a long and up for a short
    const at = (move: bigint) => (s.entry * (1000n + (s.side === 'LONG' ? move : -move))) / 1000n;
    const fills = (sizes: bigint[], offset: number): Fill[] =>
      sizes.map((sz, i) => ({ size: sz, price: at(s.priceMoves[(offset + i) % 6]!) }));
    const mark = at(s.markMove);
    const lastResortSize = s.lastResortPercent === null ? 0n : (s.leftover * s.lastResortPercent) / 100n;
    const lastResortResult =
      s.stage === 'done' && s.lastResortPercent !== null
        ? { fills: lastResortSize > 0n ? [{ size: lastResortSize, price: at(s.priceMoves[5]!) }] : [] }
        : undefined;
    const marketResult = s.stage === 'none' ? undefined : { fills: fills(s.marketSizes, 0) };
    const auctionResult =
      s.stage === 'auction-running' || s.stage === 'done'
        ? { fills: fills(s.auctionSizes, 3), finished: s.stage === 'done' }
        : undefined;
    return {
      liquidationId: 'liq-x',
      position: {
        side: s.side,
        size,
        entryPrice: s.entry,
        collateral: (size * s.entry) / (s.leverage * 10n ** 10n),
      },
      mark,
      market: { liquidationFee: ppm('0.01') },
      stillLiquidatable: s.stillLiquidatable,
      ...(marketResult ? { marketResult } : {}),
      ...(auctionResult ? { auctionResult } : {}),
      ...(lastResortResult ? { lastResortResult } : {}),
      insurance: {
        account: ACCOUNT,
        state: { balance: s.balance, windowStartMs: 0, windowDrawn: s.drawn },
        config: { drawCapPerWindow: s.cap, windowSeconds: 3600, floor: s.floor },
      },
      ...(s.loadCandidates
        ? {
            adlCandidates: s.candidates.map((c, i) => ({
              id: `c${i}`,
              side: c.side,
              // large enough, usually, to take the remaining size
              size: c.size * 20n,
              entryPrice: (s.entry * (1000n + c.entryMove)) / 1000n,
              collateral: c.collateral,
            })),
          }
        : {}),
      nowMs: s.nowMs,
    };
  });

const executed = (i: WaterfallInput): bigint =>
  [
    ...(i.marketResult?.fills ?? []),
    ...(i.auctionResult?.fills ?? []),
    ...(i.lastResortResult?.fills ?? []),
  ].reduce((a, f) => a + f.size, 0n);

describe('waterfall: properties', () => {
  it('at settle, the layers add up exactly to the size and to the shortfall', () => {
    fc.assert(
      fc.property(scenarioArb, (i) => {
        const d = decideWaterfall(i);
        fc.pre(d.next === 'settle');
        const { market, auction, insurance, adl } = d.layers;
        expect(market.closedSize + auction.closedSize + adl.closedSize + d.carriedSize).toBe(i.position.size);
        expect(d.settlement!.closedSize).toBe(i.position.size - d.carriedSize);
        expect(d.settlement!.closedSize > 0n).toBe(true);
        // Size is carried only when the ranked counterparties had no more to give.
        if (d.carriedSize > 0n) {
          const capacity = rankForAdl(i.adlCandidates ?? [], i.mark, i.position.side).reduce(
            (a, c) => a + c.size,
            0n,
          );
          expect(adl.closedSize).toBe(capacity);
        }
        const s = d.settlement!;
        expect(insurance.shortfallPaid + adl.covered + adl.uncovered).toBe(s.shortfall);
        expect(adl.deficit).toBe(insurance.refused);
        expect(insurance.shortfallPaid + insurance.refused).toBe(s.shortfall);
        expect(traderChange(i.position, s) + s.counterpartyFlow + s.fee - s.shortfall).toBe(0n);
        // ledger: movements carry exactly the fee in and the payout out, under unique keys
        const net = d.movements.reduce((a, m) => a + m.amount, 0n);
        expect(net).toBe(insurance.feeCredited - insurance.shortfallPaid);
        expect(d.insuranceNext.balance).toBe(i.insurance.state.balance + net);
        expect(new Set(d.movements.map((m) => m.idempotencyKey)).size).toBe(d.movements.length);
        for (const m of d.movements) expect(m.idempotencyKey.startsWith('liq-x:')).toBe(true);
        expect(d.insuranceNext.balance >= i.insurance.config.floor || insurance.shortfallPaid === 0n).toBe(
          true,
        );
      }),
      { numRuns: 500 },
    );
  });

  it('the terminal state is the last layer that acted, and no layer acts after it', () => {
    fc.assert(
      fc.property(scenarioArb, (i) => {
        const d: WaterfallDecision = decideWaterfall(i);
        fc.pre(d.next === 'settle');
        const layer = TERMINAL_LAYER[d.terminal!]!;
        expect(d.acted[d.acted.length - 1]).toBe(layer);
        const amount: Record<Layer, bigint> = {
          market: d.layers.market.closedSize,
          auction: d.layers.auction.closedSize,
          insurance: d.layers.insurance.shortfallPaid,
          adl: d.layers.adl.closedSize + d.layers.adl.deficit,
        };
        const k = ORDER.indexOf(layer);
        for (const later of ORDER.slice(k + 1)) expect(amount[later]).toBe(0n);
        for (const l of ORDER) expect(d.acted.includes(l)).toBe(amount[l] > 0n);
        expect(d.acted).toEqual(ORDER.filter((l) => d.acted.includes(l))); // in waterfall order
      }),
      RUNS,
    );
  });

  it('CANCELLED exactly when no longer liquidatable and nothing executed; otherwise the flow goes on', () => {
    fc.assert(
      fc.property(scenarioArb, (i) => {
        const d = decideWaterfall(i);
        const cancel = !i.stillLiquidatable && executed(i) === 0n;
        // Nothing closed, no counterparty: the last resort is asked for exactly once, then escalation.
        if (d.next === 'execute-last-resort') expect(i.lastResortResult).toBeUndefined();
        if (d.next === 'escalate') expect(i.lastResortResult?.fills ?? []).toEqual([]);
        expect(d.terminal === 'CANCELLED').toBe(cancel);
        expect(d.next === 'cancel').toBe(cancel);
        if (cancel) expect(d.movements).toEqual([]);
        if (d.next !== 'settle') expect(d.movements).toEqual([]);
        if (!i.marketResult && !cancel) expect(d.next).toBe('execute-market');
        const sizeLeft = executed(i) < i.position.size;
        if (i.auctionResult && !i.auctionResult.finished && !cancel && sizeLeft)
          expect(d.next).toBe('await-auction');
      }),
      RUNS,
    );
  });

  it('is deterministic', () => {
    fc.assert(
      fc.property(scenarioArb, (i) => {
        expect(decideWaterfall(i)).toEqual(decideWaterfall(i));
      }),
      { numRuns: 100 },
    );
  });
});

describe('size ADL cannot take', () => {
  it('settles what the counterparties take and carries the rest to the next slice', () => {
    // 0.5 left after the auction; the one short in profit holds 0.2.
    const d = decideWaterfall(
      input({
        marketResult: { fills: [fill('0.3', '1830')] },
        auctionResult: { fills: [fill('0.2', '1825')], finished: true },
        adlCandidates: [short('s1', '0.2', '2100', '100'), short('s2', '5', '1500', '100')],
      }),
    );
    expect(d.next).toBe('settle');
    expect(d.terminal).toBe('SETTLED_ADL');
    expect(d.layers.adl.closedSize).toBe(base('0.2'));
    expect(d.carriedSize).toBe(base('0.3'));
    expect(d.settlement?.closedSize).toBe(base('0.7'));
    // The closed 0.7 settles with all 200 of collateral, and what is left stays with the carried 0.3:
    // pnl 0.3(1830-2000) + 0.2(1825-2000) + 0.2(1840-2000) = -118, fee 1% of 549+365+368 = 12.82.
    expect(d.traderPayout).toBe(usd('69.18'));
    expect(settlementRecord(d).carriedSize).toBe(base('0.3'));
  });

  it('carries everything left when the market or the auction closed some and ADL can take none', () => {
    const d = decideWaterfall(
      input({
        marketResult: { fills: [fill('0.4', '1830')] },
        auctionResult: { fills: [], finished: true },
        adlCandidates: [],
      }),
    );
    expect(d.next).toBe('settle');
    expect(d.terminal).toBe('SETTLED_MARKET');
    expect(d.carriedSize).toBe(base('0.6'));
    expect(d.acted).toEqual(['market']);
    // The market and the auction closed as much each: size closed, so no last resort, whatever they add to.
    const both = decideWaterfall(
      input({
        marketResult: { fills: [fill('0.3', '1830')] },
        auctionResult: { fills: [fill('0.3', '1820')], finished: true },
        adlCandidates: [],
      }),
    );
    expect(both.next).toBe('settle');
    expect(both.carriedSize).toBe(base('0.4'));
    expect(both.acted).toEqual(['market', 'auction']);
  });

  it('counts last-resort fills as market fills, and carries what they left', () => {
    const d = decideWaterfall(
      input({
        marketResult: { fills: [] },
        auctionResult: { fills: [], finished: true },
        lastResortResult: { fills: [fill('0.6', '1700')] },
        adlCandidates: [],
      }),
    );
    expect(d.next).toBe('settle');
    expect(d.layers.market).toEqual({ closedSize: base('0.6'), lastResortSize: base('0.6') });
    expect(d.carriedSize).toBe(base('0.4'));
    expect(settlementRecord(d).lastResortClosedSize).toBe(base('0.6'));
  });
});

// lot51-last-resort-whole-lots: the venue fills whole lots only (the market's lotSize).
describe('the last resort in whole lots of the market', () => {
  const nothingClosed = (size: string, lotSize: bigint) =>
    decideWaterfall(
      input({
        position: { side: 'LONG', size: base(size), entryPrice: price('2000'), collateral: usd('200') },
        market: { liquidationFee: ppm('0.01'), lotSize },
        marketResult: { fills: [] },
        auctionResult: { fills: [], finished: true },
        adlCandidates: [],
      }),
    );

  it("sells the slice's whole lots; what is under a lot is left to carry", () => {
    const d = nothingClosed('1.0005', base('0.001'));
    expect(d.next).toBe('execute-last-resort');
    expect(d.lastResortSize).toBe(base('1'));
    // One lot exactly is an order; a lot of one unit sells it all.
    expect(nothingClosed('0.001', base('0.001')).lastResortSize).toBe(base('0.001'));
    expect(nothingClosed('1.0005', 1n).lastResortSize).toBe(base('1.0005'));
  });

  it('a slice all under a lot that nothing took escalates at once: waterfall/sub-lot-remainder, no order', () => {
    const d = nothingClosed('0.0005', base('0.001'));
    expect(d.next).toBe('escalate');
    expect(d.reason).toBe('waterfall/sub-lot-remainder');
    expect(d.lastResortSize).toBeUndefined();
    expect(d.movements).toEqual([]);
  });
});

describe("ADL in whole lots of the market's lot (lot52-adl-whole-lots)", () => {
  // A long at 2000 whose market and auction closed nothing of the slice, ADL's shorts in profit at 1840.
  const adlOnly = (size: string, lotSize?: bigint) =>
    decideWaterfall(
      input({
        position: { side: 'LONG', size: base(size), entryPrice: price('2000'), collateral: usd('200') },
        market: { liquidationFee: ppm('0.01'), ...(lotSize === undefined ? {} : { lotSize }) },
        marketResult: { fills: [] },
        auctionResult: { fills: [], finished: true },
        adlCandidates: shorts,
      }),
    );

  it("closes its counterparties' whole lots and carries the slice's part under a lot", () => {
    const d = adlOnly('1.0005', base('0.001'));
    expect(d).toMatchObject({ next: 'settle', terminal: 'SETTLED_ADL', carriedSize: base('0.0005') });
    expect(d.adl?.fills.map((f) => f.size)).toEqual([base('1')]);
    // Before: the short closed 1.0005, left at 0.9995, off the lot. With one unit, as ever.
    expect(adlOnly('1.0005').adl?.fills.map((f) => f.size)).toEqual([base('1.0005')]);
    expect(adlOnly('1.0005', 1n)).toEqual(adlOnly('1.0005'));
  });

  it('takes none of a slice all under a lot, its counterparties in profit: waterfall/sub-lot-remainder', () => {
    const d = adlOnly('0.0005', base('0.001'));
    expect(d).toMatchObject({ next: 'escalate', reason: 'waterfall/sub-lot-remainder', movements: [] });
    // Before: SETTLED_ADL, the short closing 0.0005.
    expect(adlOnly('0.0005')).toMatchObject({ next: 'settle', terminal: 'SETTLED_ADL' });
  });
});

describe('a deficit ADL does not socialize (the market-only baseline)', () => {
  // Half sold at 1500 (the rest left to ADL at the mark 1700), an empty fund: the shortfall is all refused.
  const thin = (socializeDeficit?: boolean) =>
    decideWaterfall(
      input({
        mark: price('1700'),
        marketResult: { fills: [fill('0.5', '1500')] },
        auctionResult: { fills: [], finished: true },
        adlCandidates: shorts,
        insurance: fund('0'),
        ...(socializeDeficit === undefined ? {} : { socializeDeficit }),
      }),
    );

  it('closes the size left against counterparties at the mark and leaves the refused deficit uncovered', () => {
    const socialized = thin();
    const baseline = thin(false);
    expect(baseline.next).toBe('settle');
    expect(baseline.layers.adl.closedSize).toBe(base('0.5'));
    expect(baseline.layers.adl.closedSize).toBe(socialized.layers.adl.closedSize);
    // pnl 0.5(1500-2000) + 0.5(1700-2000) = -400 against 200 of collateral (no fee from nothing): all refused.
    expect(baseline.layers.insurance.refused).toBe(usd('200'));
    expect(baseline.layers.adl).toMatchObject({ covered: 0n, uncovered: baseline.layers.insurance.refused });
    for (const f of baseline.adl?.fills ?? [])
      expect(f).toMatchObject({ pnlGiven: 0n, haircut: 0n, price: price('1700') });
    // By default ADL covers it out of the shorts' profit.
    expect(socialized.layers.adl.covered).toBe(socialized.layers.insurance.refused);
    expect(socialized.layers.adl.uncovered).toBe(0n);
  });

  it('changes nothing when ADL has no size to take: the deficit stays uncovered either way', () => {
    const whole = (socializeDeficit: boolean) =>
      decideWaterfall(
        input({
          mark: price('1700'),
          marketResult: { fills: [fill('1', '1500')] },
          adlCandidates: [],
          insurance: fund('0'),
          socializeDeficit,
        }),
      );
    expect(whole(false).layers.adl).toEqual(whole(true).layers.adl);
    expect(whole(false).layers.adl.uncovered).toBeGreaterThan(0n);
    // pnl 1500 - 2000 = -500 against 200 of collateral, an empty fund: the 300 is bad debt, and ADL closes nothing.
    expect(whole(false).adl).toEqual({
      fills: [],
      covered: 0n,
      uncovered: usd('300'),
      closedSize: 0n,
      unmatchedSize: 0n,
      closeRoundingE16: 0n,
    });
  });
});

describe('differenceMovements: a plan made again after an earlier one moved money', () => {
  const fund = {
    account: 'fund',
    atMs: 5,
    config: { drawCapPerWindow: 1_000n, windowSeconds: 3600, floor: 0n },
  };
  const movement = (key: string, amount: bigint, windowStartMs = 0): PlannedMovement => ({
    account: 'fund',
    idempotencyKey: key,
    amount,
    kind: key.endsWith(':fee') ? 'liquidation-fee' : 'shortfall-payout',
    reference: 'p1:0',
    atMs: 5,
    floor: 0n,
    ...(amount < 0n && !key.endsWith(':fee') ? { drawWindow: { windowStartMs, cap: 1_000n } } : {}),
  });

  it('applies only the differences, under keys of their own, and gives back what the new plan pays no more', () => {
    // The first plan paid a 50 shortfall and no fee; the new one (ADL took less) charges a 3.5 fee and pays nothing.
    const out = differenceMovements(
      [movement('p1:0:fee', 3_500_000n), movement('p1:0:shortfall', 0n)],
      { 'p1:0:shortfall': -50_000_000n },
      1,
      fund,
    );
    expect(out.map((m) => [m.idempotencyKey, m.amount, m.kind, m.reference])).toEqual([
      ['p1:0:fee:r1', 3_500_000n, 'liquidation-fee', 'p1:0'],
      ['p1:0:shortfall:r1', 50_000_000n, 'shortfall-payout', 'p1:0'],
    ]);
  });

  it('moves nothing for what is unchanged, and a debit that grew draws the difference under its window', () => {
    const out = differenceMovements(
      [movement('p1:0:fee', 3_000_000n), movement('p1:0:shortfall', -70_000_000n)],
      { 'p1:0:fee': 3_000_000n, 'p1:0:shortfall': -50_000_000n },
      2,
      fund,
    );
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ idempotencyKey: 'p1:0:shortfall:r2', amount: -20_000_000n });
    expect(out[0]!.drawWindow).toEqual({ windowStartMs: 0, cap: 1_000n });
  });

  it("gives a shortfall payout back to the draw window of the settlement's time, a fee never (credit-back-window)", () => {
    const late = { ...fund, atMs: 2 * 3_600_000 + 7 };
    // Paid less: the difference goes back to the window of the plan's time, even when the new plan's debit was
    // counted in a later window (its fund state had rolled on): that window keeps its draws.
    const less = differenceMovements(
      [movement('p1:0:fee', 1_000_000n), movement('p1:0:shortfall', -20_000_000n, 3 * 3_600_000)],
      { 'p1:0:fee': 3_000_000n, 'p1:0:shortfall': -50_000_000n },
      1,
      late,
    );
    // Credits first: the fee given back may need the room the payout given back makes.
    expect(less.map((m) => [m.idempotencyKey, m.amount, m.kind, m.drawWindow])).toEqual([
      ['p1:0:shortfall:r1', 30_000_000n, 'shortfall-payout', { windowStartMs: 2 * 3_600_000, cap: 1_000n }],
      ['p1:0:fee:r1', -2_000_000n, 'liquidation-fee', undefined],
    ]);
    // Paid nothing: the whole payout goes back to that window; the fee given back is a debit without a window.
    const none = differenceMovements(
      [movement('p1:0:fee', 0n), movement('p1:0:shortfall', 0n)],
      { 'p1:0:fee': 3_000_000n, 'p1:0:shortfall': -50_000_000n },
      2,
      late,
    );
    expect(none.map((m) => [m.idempotencyKey, m.amount, m.drawWindow])).toEqual([
      ['p1:0:shortfall:r2', 50_000_000n, { windowStartMs: 2 * 3_600_000, cap: 1_000n }],
      ['p1:0:fee:r2', -3_000_000n, undefined],
    ]);
  });

  it('gives a payout back to the window it was drawn in when a plan is made again later (stale-frozen-plan)', () => {
    // Made again at 03:00 (a late redelivery): the earlier draw was at 01:30. What goes back frees 01:00's window,
    // never 03:00's, where it was not drawn.
    const drawnAt = 3_600_000 + 1_800_000;
    const replanned = { ...fund, atMs: 3 * 3_600_000, givenBackAtMs: drawnAt };
    const out = differenceMovements(
      [movement('p1:0:shortfall', -20_000_000n, 3 * 3_600_000)],
      { 'p1:0:shortfall': -50_000_000n },
      1,
      replanned,
    );
    expect(out.map((m) => [m.amount, m.drawWindow])).toEqual([
      [30_000_000n, { windowStartMs: 3_600_000, cap: 1_000n }],
    ]);
  });

  it('refuses a plan that does not say a key applied before (a plan made without knowing it)', () => {
    expect(() => differenceMovements([], { 'p1:0:fee': 3_000_000n }, 1, fund)).toThrow(
      /^waterfall\/bad-input: p1:0:fee was applied and the plan does not say it$/,
    );
    // A key that nets to 0 moved nothing: a plan need not say it.
    expect(differenceMovements([], { 'p1:0:fee': 0n }, 1, fund)).toEqual([]);
  });

  it('gives a fee credit no draw window, and a grown debit keeps the window it was planned in', () => {
    const late = { ...fund, atMs: 2 * 3_600_000 + 7 };
    const out = differenceMovements(
      [movement('p1:0:fee', 3_000_000n), movement('p1:0:shortfall', -70_000_000n, 0)],
      { 'p1:0:shortfall': -50_000_000n },
      1,
      late,
    );
    expect(out).toEqual([
      { ...movement('p1:0:fee', 3_000_000n), idempotencyKey: 'p1:0:fee:r1' },
      { ...movement('p1:0:shortfall', -20_000_000n, 0), idempotencyKey: 'p1:0:shortfall:r1' },
    ]);
  });

  it("reads a plan's key off the replan suffix at the end only", () => {
    expect(planKeyOf('p:r7:fee:r12')).toBe('p:r7:fee');
    expect(planKeyOf('p:r7:fee')).toBe('p:r7:fee');
  });

  it('sums, with what was applied, to the new plan for any amounts, as the journal reads (property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.bigInt({ min: -(10n ** 12n), max: 0n }),
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.bigInt({ min: -(10n ** 12n), max: 0n }),
        (feeBefore, paidBefore, feeAfter, paidAfter) => {
          const applied: Record<string, bigint> = {};
          if (feeBefore !== 0n) applied['p1:0:fee'] = feeBefore;
          if (paidBefore !== 0n) applied['p1:0:shortfall'] = paidBefore;
          // A plan made knowing what was applied says every key applied before (decideWaterfall).
          const plan = [
            ...(feeAfter !== 0n || feeBefore !== 0n ? [movement('p1:0:fee', feeAfter)] : []),
            ...(paidAfter !== 0n || paidBefore !== 0n ? [movement('p1:0:shortfall', paidAfter)] : []),
          ];
          // The journal: what earlier plans applied, then the differences; read back by appliedByKey.
          const journal = [
            ...Object.entries(applied).map(([idempotencyKey, amount]) => ({ idempotencyKey, amount })),
            ...differenceMovements(plan, applied, 1, fund),
          ];
          const total = appliedByKey(journal);
          expect(total['p1:0:fee'] ?? 0n).toBe(feeAfter);
          expect(total['p1:0:shortfall'] ?? 0n).toBe(paidAfter);
        },
      ),
    );
  });
});

describe('a plan made again, knowing what earlier plans applied (replan-fee-floor)', () => {
  // LONG 1 at 2000 with 200 collateral: at 1840 the fee is 18.40 and the trader keeps 141.60; at 1780 the trader
  // is bankrupt (no fee, a 20 shortfall).
  const solvent = { marketResult: { fills: [fill('1', '1840')] } };
  const bankrupt = { marketResult: { fills: [fill('1', '1780')] }, adlCandidates: shorts };
  const feeBefore = { fee: usd('18.4'), shortfallPaid: 0n };

  it('gives a fee back while the fund stays above its floor, and draws only the new shortfall', () => {
    const d = decideWaterfall(input({ ...bankrupt, insurance: fund('100'), applied: feeBefore }));
    expect(d.layers.insurance).toMatchObject({ feeCredited: 0n, shortfallPaid: usd('20'), refused: 0n });
    expect(d.movements.map((m) => [m.idempotencyKey, m.amount])).toEqual([
      [`${ID}:fee`, 0n],
      [`${ID}:shortfall`, -usd('20')],
    ]);
    expect(d.insuranceNext.balance).toBe(usd('100') - usd('18.4') - usd('20'));
  });

  it('keeps the fee the floor will not give back: the shortfall grows by it, and ADL takes what the fund cannot', () => {
    const d = decideWaterfall(input({ ...bankrupt, insurance: fund('5'), applied: feeBefore }));
    // 5 of the 18.40 goes back; 13.40 stays charged to the bankrupt trader, a shortfall of 20 + 13.40.
    expect(d.settlement).toMatchObject({ fee: usd('13.4'), shortfall: usd('33.4'), traderPayout: 0n });
    expect(d.layers.insurance).toMatchObject({
      feeCredited: usd('13.4'),
      shortfallPaid: 0n,
      refused: usd('33.4'),
    });
    expect(d.layers.adl.deficit).toBe(usd('33.4'));
    expect(d.terminal).toBe('SETTLED_ADL');
    expect(d.insuranceNext.balance).toBe(0n);
    const out = differenceMovements(d.movements, { [`${ID}:fee`]: usd('18.4') }, 1, {
      atMs: 1_000,
      config: insuranceConfig,
    });
    expect(out.map((m) => [m.idempotencyKey, m.amount])).toEqual([[`${ID}:fee:r1`, -usd('5')]]);
  });

  it('charges a solvent trader the fee it cannot give back out of the payout', () => {
    // The new plan's fee is lower (a lower notional): 17.80 at 1780 on a trader with 400 collateral.
    const rich = {
      side: 'LONG' as const,
      size: base('1'),
      entryPrice: price('2000'),
      collateral: usd('400'),
    };
    const d = decideWaterfall(
      input({
        position: rich,
        marketResult: { fills: [fill('1', '1780')] },
        insurance: fund('0'),
        applied: feeBefore,
      }),
    );
    expect(d.settlement).toMatchObject({
      fee: usd('18.4'),
      shortfall: 0n,
      traderPayout: usd('400') - usd('220') - usd('18.4'),
    });
    expect(d.movements.map((m) => m.amount)).toEqual([usd('18.4')]);
    expect(traderChange(rich, d.settlement!) - d.settlement!.realizedPnl + d.settlement!.fee).toBe(0n);
  });

  it('gives back what earlier plans paid beyond the new shortfall, and never draws it again', () => {
    const paidBefore = { fee: 0n, shortfallPaid: usd('50') };
    const less = decideWaterfall(input({ ...bankrupt, insurance: fund('0'), applied: paidBefore }));
    expect(less.layers.insurance).toMatchObject({ shortfallPaid: usd('20'), refused: 0n });
    expect(less.insuranceNext.balance).toBe(usd('30'));
    // More than paid before: the fund (at its floor) draws nothing more, and ADL covers the rest; nothing is
    // given back, as a plan on the fund's state alone would have (it had paid 50 of it already).
    const deeper = { marketResult: { fills: [fill('1', '1700')] }, adlCandidates: shorts };
    const more = decideWaterfall(input({ ...deeper, insurance: fund('0'), applied: paidBefore }));
    expect(more.layers.insurance).toMatchObject({ shortfallPaid: usd('50'), refused: usd('50') });
    expect(more.movements.map((m) => m.amount)).toEqual([-usd('50')]);
  });

  it('frees draw room only in the window the payout given back was drawn in (stale-frozen-plan)', () => {
    const paidBefore = { fee: 0n, shortfallPaid: usd('50') };
    const hour = 3_600_000;
    const state = { balance: 0n, windowStartMs: 3 * hour, windowDrawn: usd('7') };
    const later = {
      ...bankrupt,
      nowMs: 3 * hour + 5,
      applied: paidBefore,
      insurance: { ...fund('0'), state },
    };
    // Drawn at 01:30, given back at 03:00: the 03:00 window keeps its 7 drawn.
    const elsewhere = decideWaterfall(input({ ...later, appliedDrawAtMs: hour + hour / 2 }));
    expect(elsewhere.insuranceNext).toMatchObject({ balance: usd('30'), windowDrawn: usd('7') });
    // Drawn in this window: the 30 given back frees its room.
    const here = decideWaterfall(input({ ...later, appliedDrawAtMs: 3 * hour + 1 }));
    expect(here.insuranceNext).toMatchObject({ balance: usd('30'), windowDrawn: 0n });
  });

  it('gives a fee back out of a shortfall payout given back in the same plan, at the floor', async () => {
    const config: InsuranceConfig = { drawCapPerWindow: usd('1000'), windowSeconds: 3600, floor: 0n };
    const atFloor = {
      account: ACCOUNT,
      state: { balance: 0n, windowStartMs: 0, windowDrawn: usd('50') },
      config,
    };
    const before = { fee: usd('18.4'), shortfallPaid: usd('50') };
    const rich = {
      side: 'LONG' as const,
      size: base('1'),
      entryPrice: price('2000'),
      collateral: usd('400'),
    };
    // Solvent at 1780 (fee 17.80, payout 162.20): the fund gets the 50 back and gives 0.60 of fee back out of it.
    const solventNow = decideWaterfall(
      input({
        position: rich,
        marketResult: { fills: [fill('1', '1780')] },
        insurance: atFloor,
        applied: before,
      }),
    );
    expect(solventNow.settlement).toMatchObject({
      fee: usd('17.8'),
      shortfall: 0n,
      traderPayout: usd('162.2'),
    });
    expect(solventNow.layers.insurance.shortfallPaid).toBe(0n);
    // Bankrupt at 1780 (200 collateral: a 20 shortfall, no fee): 30 of the 50 comes back, the 18.40 goes out of it.
    const bankruptNow = decideWaterfall(input({ ...bankrupt, insurance: atFloor, applied: before }));
    expect(bankruptNow.settlement).toMatchObject({ fee: 0n, shortfall: usd('20') });
    expect(bankruptNow.layers.insurance.shortfallPaid).toBe(usd('20'));
    expect(bankruptNow.insuranceNext).toEqual({
      balance: usd('30') - usd('18.4'),
      windowStartMs: 0,
      windowDrawn: usd('20'),
    });
    // The ledger takes the differences in their order (the payout given back, then the fee), on the fund as the plan
    // read it: at its floor with 50 drawn, the earlier plan's fee and draw in its journal (a give-back is judged on
    // them: books52-given-back-proved).
    for (const d of [solventNow, bankruptNow]) {
      const ledger = new EmbeddedLedger();
      const earlier = { account: ACCOUNT, reference: ID, atMs: 500, floor: 0n };
      await ledger.apply({ ...earlier, idempotencyKey: 'deposit', amount: usd('31.6'), kind: 'deposit' });
      await ledger.apply({
        ...earlier,
        idempotencyKey: `${ID}:fee`,
        amount: usd('18.4'),
        kind: 'liquidation-fee',
      });
      await ledger.apply({
        ...earlier,
        idempotencyKey: `${ID}:shortfall`,
        amount: -usd('50'),
        kind: 'shortfall-payout',
        drawWindow: { windowStartMs: 0, cap: config.drawCapPerWindow },
      });
      expect(await ledger.balance(ACCOUNT)).toMatchObject(atFloor.state);
      const applied = appliedByKey(await ledger.entriesOf(ACCOUNT, ID));
      expect(applied).toEqual({ [`${ID}:fee`]: usd('18.4'), [`${ID}:shortfall`]: -usd('50') });
      for (const m of differenceMovements(d.movements, applied, 1, { atMs: 1_000, config }))
        await ledger.apply(m);
      expect((await ledger.balance(ACCOUNT)).balance).toBe(d.insuranceNext.balance);
    }
  });

  it('keeps out of a solvent payout only the fee the fund cannot give back with the payout given back', () => {
    // Solvent at 1780 (fee 17.80, payout 162.20), the fund at its floor, 0.20 paid before: the 0.20 given back
    // gives 0.20 of the 0.60 fee back; 0.40 stays charged, out of the payout, not the whole 0.60.
    const d = decideWaterfall(
      input({
        position: { side: 'LONG', size: base('1'), entryPrice: price('2000'), collateral: usd('400') },
        marketResult: { fills: [fill('1', '1780')] },
        insurance: { ...fund('0'), state: { balance: 0n, windowStartMs: 0, windowDrawn: usd('0.2') } },
        applied: { fee: usd('18.4'), shortfallPaid: usd('0.2') },
      }),
    );
    expect(d.settlement).toMatchObject({ fee: usd('18.2'), shortfall: 0n, traderPayout: usd('161.8') });
    expect(d.movements.map((m) => m.amount)).toEqual([usd('18.2'), 0n]);
    expect(d.insuranceNext.balance).toBe(0n);
  });

  it('keeps the fee when the trader has not enough left for it and the fund gives nothing back then', () => {
    // 5 above the floor, 10 paid before, bankrupt now with a 4 shortfall: giving 6 back would leave 11 of room for
    // an 18.40 fee; keeping 7.40 would raise the shortfall to 11.40 and leave nothing to give back. So nothing is
    // given back, 5 of the fee goes back (the floor), 13.40 stays charged: a 17.40 shortfall, 10 of it paid.
    const d = decideWaterfall(
      input({
        position: { side: 'LONG', size: base('1'), entryPrice: price('2000'), collateral: usd('200') },
        marketResult: { fills: [fill('1', '1796')] },
        adlCandidates: shorts,
        insurance: fund('5'),
        applied: { fee: usd('18.4'), shortfallPaid: usd('10') },
      }),
    );
    expect(d.settlement).toMatchObject({ fee: usd('13.4'), shortfall: usd('17.4') });
    expect(d.layers.insurance).toMatchObject({ shortfallPaid: usd('10'), refused: usd('7.4') });
    expect(d.insuranceNext.balance).toBe(0n);
  });

  it('refuses negative applied amounts', () => {
    expect(() => decideWaterfall(input({ ...solvent, applied: { fee: -1n, shortfallPaid: 0n } }))).toThrow(
      WaterfallError,
    );
  });

  it('moves only what the ledger accepts, and the journal then sums to the plan (property, embedded ledger)', async () => {
    const config: InsuranceConfig = { drawCapPerWindow: usd('60'), windowSeconds: 3600, floor: usd('10') };
    const deposit = async (ledger: EmbeddedLedger, amount: bigint, atMs: number) =>
      ledger.apply({
        account: ACCOUNT,
        idempotencyKey: `deposit:${atMs}`,
        amount,
        kind: 'deposit',
        reference: 'test',
        atMs,
        floor: 0n,
      });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 400 }), // collateral, USD
        fc.integer({ min: 1500, max: 2100 }), // first plan's fill
        fc.integer({ min: 1500, max: 2100 }), // second plan's fill
        fc.integer({ min: 0, max: 150 }), // fund at the first plan, USD
        fc.integer({ min: -150, max: 150 }), // what others moved between the plans, USD
        fc.boolean(), // ... in a later draw window
        async (collateral, first, second, start, others, later) => {
          const ledger = new EmbeddedLedger();
          const position = {
            side: 'LONG' as const,
            size: base('1'),
            entryPrice: price('2000'),
            collateral: usd(String(collateral)),
          };
          const plan = (at: number, state: InsuranceState, applied?: AppliedAmounts) =>
            decideWaterfall(
              input({
                position,
                marketResult: { fills: [fill('1', String(at))] },
                adlCandidates: shorts,
                insurance: { account: ACCOUNT, state, config },
                ...(applied ? { applied } : {}),
              }),
            );
          const stateOf = async () => {
            const b = await ledger.balance(ACCOUNT);
            return { balance: b.balance, windowStartMs: b.windowStartMs, windowDrawn: b.windowDrawn };
          };
          if (start > 0) await deposit(ledger, usd(String(start)), 1);
          for (const m of plan(first, await stateOf()).movements) await ledger.apply(m);
          // Another settlement moves the fund (within its limits), in this window or a later one.
          const atMs = later ? 3_600_000 * 2 + 5 : 500;
          if (others > 0) await deposit(ledger, usd(String(others)), 2);
          if (others < 0) {
            const now = await stateOf();
            const draw = planDebit(now, usd(String(-others)), atMs, config);
            if (draw.paid > 0n)
              await ledger.apply({
                account: ACCOUNT,
                idempotencyKey: 'other:shortfall',
                amount: -draw.paid,
                kind: 'shortfall-payout',
                reference: 'other',
                atMs,
                floor: config.floor,
                drawWindow: { windowStartMs: draw.next.windowStartMs, cap: config.drawCapPerWindow },
              });
          }
          const applied = appliedByKey(await ledger.entriesOf(ACCOUNT, ID));
          const again = plan(second, await stateOf(), appliedAmounts(applied, ID));
          // Every difference lands (a refusal would plan the same again, forever).
          for (const m of differenceMovements(again.movements, applied, 1, { atMs: 1_000, config }))
            await ledger.apply(m);
          const total = appliedByKey(await ledger.entriesOf(ACCOUNT, ID));
          expect(total[`${ID}:fee`] ?? 0n).toBe(again.layers.insurance.feeCredited);
          expect(-(total[`${ID}:shortfall`] ?? 0n)).toBe(again.layers.insurance.shortfallPaid);
          expect(await stateOf()).toEqual(again.insuranceNext);
          const s = again.settlement!;
          expect(s.shortfall).toBe(
            again.layers.insurance.shortfallPaid + again.layers.adl.covered + again.layers.adl.uncovered,
          );
          expect(traderChange(position, s) + s.counterpartyFlow + s.fee - s.shortfall).toBe(0n);
        },
      ),
      RUNS,
    );
  });
});

// Session 26 (a review of the mechanisms): a slice sized to restore initial margin at the mark and filled at the
// market layer's limit kept a 114.58 USD fee that left the rest of its position bankrupt at that very mark; the
// fund then paid it back as the rest's deficit (or ADL's counterparties did, once its draw cap was spent).
describe('decideWaterfall: a slice whose position keeps size', () => {
  const market = marketConfig(DEFAULT_RISK_CONFIG, 'ETH-USD');
  const position = {
    side: 'LONG' as const,
    size: base('100'),
    entryPrice: price('200'),
    collateral: usd('2000'),
  };
  const mark = price('184.5');
  const step = planLiquidationStep(position, mark, market);
  const limit = div(mark * (PPM_SCALE - market.slippageBound), PPM_SCALE, 'ceil');
  const decide = (restOfPosition?: { size: bigint; mark: bigint }) =>
    decideWaterfall({
      liquidationId: 'p1:0',
      position: { ...position, size: step.size },
      ...(restOfPosition ? { restOfPosition } : {}),
      mark,
      market,
      stillLiquidatable: true,
      marketResult: { fills: [{ price: limit, size: step.size }] },
      insurance: {
        account: 'insurance:ETH-USD',
        state: { balance: usd('100000'), windowStartMs: 0, windowDrawn: 0n },
        config: DEFAULT_RISK_CONFIG.insurance,
      },
      nowMs: 0,
    });

  it('charges no more fee than leaves the rest solvent at the mark the slice was planned at', () => {
    expect(step.reason).toBe('sizing/restore-initial-margin');
    const whole = decide();
    expect(whole.settlement?.fee).toBe(usd('114.581251'));
    const rest = { size: position.size - step.size, mark };
    const sliced = decide(rest);
    // The rest is left solvent at the mark to the last sub-unit: its exact margin (the collateral less the sub-unit
    // the slice's rounding left over) plus its PnL there is under one unit.
    const over = sliced.settlement?.restCollateralOverE16 ?? 0n;
    const rest16 =
      sliced.traderPayout * NOTIONAL_TO_QUOTE -
      over +
      pnlE16(position.side, rest.size, position.entryPrice, mark);
    expect(rest16 >= 0n && rest16 < NOTIONAL_TO_QUOTE).toBe(true);
    // The 18.96 the fee would have left the rest below zero stays with the trader: the cap is the whole position's
    // exact equity at the mark, floored (a slice's PnL rounded up had let the fund take a unit more).
    expect(whole.settlement!.fee - sliced.settlement!.fee).toBe(usd('18.956253'));
  });
});

// The fee's cap values the rest at the mark the slice was planned at (restOfPosition.mark), not the execution mark:
// only that mark is stored, so a redelivery plans the same fee (slice-fee-settled-mark).
describe('decideWaterfall: a slice values the rest of its position at the planned mark', () => {
  // 1 ETH of a 10 ETH long from 200, with 191 USD, filled at the execution mark 190; fee 1 % (1.90 USD).
  const decide = (restMark: bigint) =>
    decideWaterfall({
      liquidationId: 'p1:0',
      position: { side: 'LONG', size: base('1'), entryPrice: price('200'), collateral: usd('191') },
      restOfPosition: { size: base('9'), mark: restMark },
      mark: price('190'),
      market: { liquidationFee: 10_000n },
      stillLiquidatable: true,
      marketResult: { fills: [{ price: price('190'), size: base('1') }] },
      insurance: {
        account: 'ins',
        state: { balance: usd('100000'), windowStartMs: 0, windowDrawn: 0n },
        config: DEFAULT_RISK_CONFIG.insurance,
      },
      nowMs: 0,
    });

  it('planned at 180: the whole position is worth 191 - 10 - 180 = 1 USD there, so the fee is 1, not 1.90', () => {
    const d = decide(price('180'));
    expect(d.settlement?.fee).toBe(usd('1'));
    expect(d.traderPayout).toBe(usd('180')); // the slice's equity 181 less the fee
  });

  it('planned at 190: worth 191 - 10 - 90 = 91 USD, the whole 1.90 fee', () => {
    const d = decide(price('190'));
    expect(d.settlement?.fee).toBe(usd('1.9'));
    expect(d.traderPayout).toBe(usd('179.1'));
  });
});

const sliceInsurance = {
  account: 'ins',
  state: { balance: 10n ** 12n, windowStartMs: 0, windowDrawn: 0n },
  config: DEFAULT_RISK_CONFIG.insurance,
};
const settleSliced = (
  side: Side,
  size: bigint,
  collateral: bigint,
  slice: bigint,
  fills: Fill[],
  mark: bigint,
) =>
  decideWaterfall({
    liquidationId: 'p1:0',
    position: { side, size: slice, entryPrice: 10_000_000_000n, collateral },
    restOfPosition: { size: size - slice, mark },
    mark,
    market: { liquidationFee: 0n },
    stillLiquidatable: true,
    marketResult: { fills },
    auctionResult: { fills: [], finished: true },
    insurance: sliceInsurance,
    adlCandidates: [],
    nowMs: 0,
  });

// Found by a review of the slice settlement in session 26: a slice above water floored its PnL (the sub-unit to
// the counterparty), and the final close's shortfall then held it: the fund paid more than the floor of the whole
// position's exact loss. A slice now rounds its PnL up; the rest's final close rounds against the trader.
describe('slice rounding (settleSlice then settleClose)', () => {
  it('the fund pays no more than the floor of the whole position exact loss', () => {
    // SHORT 0.0007504 at 100 with 0.000001 USD; slice of 75 units bought at 50 (pnl 37.5 units: floored, the
    // half unit went to the counterparty), the rest (74,965 units) bought at 120.12005603.
    const size = 75_040n;
    const first = settleSliced(
      'SHORT',
      size,
      1n,
      75n,
      [{ size: 75n, price: 5_000_000_000n }],
      5_000_000_000n,
    );
    expect(first.layers.insurance.shortfallPaid).toBe(0n);
    const rest = size - 75n;
    const last = settleSliced(
      'SHORT',
      rest,
      first.traderPayout,
      rest,
      [{ size: rest, price: 12_012_005_603n }],
      12_012_005_603n,
    );
    const exact16 =
      1n * 10n ** 10n + 75n * (10_000_000_000n - 5_000_000_000n) + rest * (10_000_000_000n - 12_012_005_603n);
    const exactLossFloor = -exact16 / 10n ** 10n; // exact16 < 0
    expect(exact16 < 0n).toBe(true);
    expect(last.layers.insurance.shortfallPaid).toBeLessThanOrEqual(exactLossFloor);
  });
});

describe("ADL closes' rounding (adl-close-rounding)", () => {
  const E10 = NOTIONAL_TO_QUOTE;
  const oppositeOf = (side: Side): Side => (side === 'LONG' ? 'SHORT' : 'LONG');
  /** A sub-unit a slice's rounding left on a collateral (Position.collateralOverE16), often none. */
  const overArb = fc.oneof(
    { arbitrary: fc.constant(0n), weight: 1 },
    { arbitrary: fc.bigInt({ min: 1n, max: E10 - 1n }), weight: 2 },
  );
  // Odd prices and sizes: every close leaves a sub-unit.
  const arb = fc
    .record({
      side: sideArb,
      mark: fc.bigInt({ min: 1_000_000_000n, max: 500_000_000_000n }),
      size: fc.bigInt({ min: 1n, max: 5_000_000_000n }),
      entryMove: fc.bigInt({ min: 0n, max: 300n }), // per mille against the position
      collateral: fc.bigInt({ min: 0n, max: 50_000_000_000n }),
      over: overArb,
      marketShare: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 99n })), // percent sold on the market
      marketMove: fc.bigInt({ min: 0n, max: 50n }), // per mille under (over) the mark
      balance: fc.bigInt({ min: 0n, max: 50_000_000_000n }),
      cap: fc.bigInt({ min: 0n, max: 50_000_000_000n }),
      feeRate: fc.bigInt({ min: 0n, max: 20_000n }),
      rest: fc.option(fc.bigInt({ min: 1n, max: 5_000_000_000n }), { freq: 3 }),
      counterparties: fc.array(
        fc.record({
          size: fc.bigInt({ min: 1n, max: 3_000_000_000n }),
          entryMove: fc.bigInt({ min: -100n, max: 400n }), // per mille in its favour
          collateral: fc.bigInt({ min: 0n, max: 20_000_000_000n }),
          over: overArb,
          given: fc.option(fc.bigInt({ min: 1n, max: 2_000_000_000n }), { freq: 3 }),
        }),
        { minLength: 1, maxLength: 8 },
      ),
    })
    .map((s) => {
      const against = (move: bigint) => (s.side === 'LONG' ? 1000n + move : 1000n - move);
      const position = {
        side: s.side,
        size: s.size,
        entryPrice: (s.mark * 1000n) / against(-s.entryMove) + 1n,
        collateral: s.collateral,
        ...(s.over > 0n && s.collateral > 0n ? { collateralOverE16: s.over } : {}),
      };
      const sold = (s.size * s.marketShare) / 100n;
      const fills: Fill[] =
        sold > 0n ? [{ size: sold, price: (s.mark * against(s.marketMove)) / 1000n }] : [];
      const counterparties = s.counterparties.map((c, i): DeleveragedPosition & { id: string } => ({
        id: `c${i}`,
        side: oppositeOf(s.side),
        size: c.size,
        entryPrice: (s.mark * (s.side === 'LONG' ? 1000n + c.entryMove : 1000n - c.entryMove)) / 1000n + 7n,
        collateral: c.collateral,
        ...(c.over > 0n && c.collateral > 0n ? { collateralOverE16: c.over } : {}),
        ...(c.given ? { adlProfitGiven: c.given } : {}),
      }));
      return { ...s, position, fills, counterparties };
    });

  /** A counterparty's exact equity at the mark (E16): its exact margin and the profit of its open size there. */
  const equityAt = (p: DeleveragedPosition, mark: bigint) =>
    marginE16(p) + pnlE16(p.side, p.size, p.entryPrice, mark);

  it('every unit the counterparties and the trader give goes to the deficit or the fund; the trader gains none of it', () => {
    let checked = 0;
    let withTrader = 0;
    fc.assert(
      fc.property(arb, (s) => {
        const d = decideWaterfall({
          liquidationId: 'liq-r:0',
          position: s.position,
          ...(s.rest ? { restOfPosition: { size: s.rest, mark: s.mark } } : {}),
          mark: s.mark,
          market: { liquidationFee: s.feeRate },
          stillLiquidatable: true,
          marketResult: { fills: s.fills },
          auctionResult: { fills: [], finished: true },
          insurance: {
            account: ACCOUNT,
            state: { balance: s.balance, windowStartMs: 0, windowDrawn: 0n },
            config: { drawCapPerWindow: s.cap, windowSeconds: 3600, floor: 0n },
          },
          adlCandidates: s.counterparties.map((c) => asAdlCandidate(c)),
          nowMs: 0,
        });
        fc.pre(d.next === 'settle' && d.adl !== undefined);
        const adl = d.adl!;
        // What the counterparties gave up at the mark (E16, exactly): their exact equity before less after.
        let gives16 = 0n;
        for (const f of adl.fills) {
          const before = s.counterparties.find((c) => c.id === f.id)!;
          const after = deleverageCounterparty(before, f, s.mark);
          const over = after.keepsOver ? before.collateralOverE16 : undefined;
          const open = { ...before, size: after.size, collateral: after.collateral, collateralOverE16: over };
          // Never left with an exact margin below 0; closed in full, paid in whole units.
          expect(after.size === 0n ? after.collateral : marginE16(open)).toBeGreaterThanOrEqual(0n);
          const after16 = after.size === 0n ? after.collateral * E10 : equityAt(open, s.mark);
          gives16 += equityAt(before, s.mark) - after16;
        }
        // The position's own close: its fills, and what ADL took at the mark, rounded once (accounting.ts).
        const settled = { ...s.position, size: s.position.size - d.carriedSize };
        const closes: Fill[] = [
          ...s.fills,
          ...(adl.closedSize > 0n ? [{ price: s.mark, size: adl.closedSize }] : []),
        ];
        const restSize = (s.rest ?? 0n) + d.carriedSize;
        const own =
          restSize > 0n
            ? settleSlice(settled, closes, s.feeRate, { size: restSize, mark: s.mark })
            : settleClose(settled, closes, s.feeRate);
        // The trader's outcome is its own close's: nothing of the counterparties' rounding.
        expect(d.traderPayout).toBe(own.traderPayout);
        expect(d.settlement!.restCollateralOverE16).toBe(own.restCollateralOverE16);
        // What the trader's own close gives at the mark (E16, adl-trader-rounding): its exact equity after its fills
        // less what it keeps (a slice's rest at its exact margin) and pays the fund. Solvent, what the close rounds
        // down; a slice carries it on its rest (0: its final close rounds it); under water the loss is floored, the
        // fund's way (below 0: no sub-unit given).
        const exact16 =
          marginE16(settled) +
          closes.reduce((t, f) => t + pnlE16(s.side, f.size, settled.entryPrice, f.price), 0n);
        const kept16 = own.traderPayout * E10 - (own.restCollateralOverE16 ?? 0n);
        const trader16 = exact16 - kept16 - (own.fee - own.shortfall) * E10;
        expect(trader16 > -E10 && trader16 < E10).toBe(true);
        if (restSize > 0n) expect(trader16).toBe(0n);
        const traderGives16 = maxBig(0n, trader16);
        // The fund: its own close's fee less shortfall, what ADL covered and left uncovered (it does not pay them),
        // and what it receives beyond: never less.
        const { insurance } = d.layers;
        const toFund =
          insurance.feeCredited -
          insurance.shortfallPaid -
          (own.fee - own.shortfall) -
          adl.covered -
          adl.uncovered;
        expect(toFund).toBeGreaterThanOrEqual(0n);
        // Every whole unit the counterparties and the trader gave is received: by the deficit (covered) or the fund.
        // What is left is their closes' rounding, less than one unit in all.
        const left16 = gives16 + traderGives16 - (adl.covered + toFund) * E10;
        expect(left16).toBeGreaterThanOrEqual(0n);
        expect(left16).toBeLessThan(E10);
        if (adl.fills.filter((f) => f.size > 0n).length > 1) checked++;
        // The trader's sub-unit made a whole unit with the counterparties' fractions.
        const rounding16 = gives16 - adl.covered * E10;
        if (div(rounding16 + traderGives16, E10, 'floor') > div(rounding16, E10, 'floor')) withTrader++;
      }),
      { numRuns: 1000 },
    );
    // Closes against several counterparties, each leaving a sub-unit, were checked.
    expect(checked).toBeGreaterThan(200);
    expect(withTrader).toBeGreaterThan(20);
  });

  it("counts a slice's own sub-unit once: carried on the rest, not credited, and rounded by the rest's close", () => {
    // A long of 2 ETH entered at 200.00000001 with 54 USD, closed by ADL at 175 in two slices of 1 ETH, each against
    // three shorts: entered at 200.00000001 their closes round 1.01 of a unit away (adl-close-rounding's), at
    // 200.00000002 1.02. The slice's exact equity is 28.99999999: it keeps 29 and its rest carries the 0.01.
    const mark = price('175');
    const shorts = (entry: string) =>
      ['0.33333333', '0.33333333', '0.33333334'].map((size, i) =>
        asAdlCandidate({
          id: `c${i}`,
          side: 'SHORT' as const,
          size: base(size),
          entryPrice: price(entry),
          collateral: usd('100'),
        }),
      );
    const decide = (position: ClosablePosition, shortsEntry: string, rest?: bigint) =>
      decideWaterfall({
        liquidationId: 'liq-own:0',
        position,
        ...(rest ? { restOfPosition: { size: rest, mark } } : {}),
        mark,
        market: { liquidationFee: ppm('0.01') },
        stillLiquidatable: true,
        marketResult: { fills: [] },
        auctionResult: { fills: [], finished: true },
        insurance: {
          account: ACCOUNT,
          state: { balance: 0n, windowStartMs: 0, windowDrawn: 0n },
          config: { drawCapPerWindow: 0n, windowSeconds: 3600, floor: 0n },
        },
        adlCandidates: shorts(shortsEntry),
        nowMs: 0,
      });
    const entry = price('200.00000001');
    const slice = decide(
      { side: 'LONG', size: base('1'), entryPrice: entry, collateral: usd('54') },
      '200.00000001',
      base('1'),
    );
    // The shorts' unit only: the trader's 0.99 stays with its rest (counted here too, the fund would get 2).
    expect(slice.settlement!.fee).toBe(usd('1.750001'));
    expect(slice.traderPayout).toBe(usd('27.25'));
    expect(slice.settlement!.restCollateralOverE16).toBe(100_000_000n);
    const rest = {
      side: 'LONG' as const,
      size: base('1'),
      entryPrice: entry,
      collateral: slice.traderPayout,
      collateralOverE16: slice.settlement!.restCollateralOverE16!,
    };
    const close = decide(rest, '200.00000002');
    // The rest's exact equity, 27.25 less the 0.01 carried less 25.00000001, is 2.24999998: it keeps 2.249999 and
    // rounds 0.98 away, the trader's only sub-unit over both (2 x 27 - 2 x 25.00000001 - 3.50 = 0.49999998).
    expect(close.traderPayout).toBe(usd('0.499999'));
    expect(close.traderPayout).toBe(
      settleClose(rest, [{ price: mark, size: base('1') }], ppm('0.01')).traderPayout,
    );
    // With the shorts' 1.02: two units (the shorts' alone, one).
    expect(close.settlement!.fee).toBe(usd('1.750002'));
  });
});

describe('nextSliceDelaySeconds', () => {
  const amounts = (
    over: Partial<Record<'lastResortClosedSize' | 'carriedSize' | 'adlClosedSize', bigint>>,
  ): SettlementAmounts => ({
    ...(Object.fromEntries(
      Object.keys(SETTLEMENT_UNITS).map((key) => [key, 0n]),
    ) as unknown as SettlementAmounts),
    marketClosedSize: base('1'),
    ...over,
  });
  it('waits the cooldown after a slice that spent the liquidity, goes on at once otherwise', () => {
    expect(nextSliceDelaySeconds(undefined, 30)).toBe(0);
    expect(nextSliceDelaySeconds(amounts({}), 30)).toBe(0);
    // The last resort sold into the book: it needs time to refill.
    expect(nextSliceDelaySeconds(amounts({ lastResortClosedSize: base('1') }), 30)).toBe(30);
    // Size left that no layer took: the liquidity is spent.
    expect(nextSliceDelaySeconds(amounts({ carriedSize: base('5') }), 30)).toBe(30);
    // Size carried past the counterparties of one settlement: the next slice's ADL goes on at once.
    expect(nextSliceDelaySeconds(amounts({ carriedSize: base('5'), adlClosedSize: base('2') }), 30)).toBe(0);
  });
});

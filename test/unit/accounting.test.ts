import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AccountingError,
  type ClosablePosition,
  chargeFee,
  chargeSliceFee,
  closeRoundingOwnE16,
  creditCloseRounding,
  pnlE16,
  settleClose,
  settleSlice,
  traderChange,
} from '../../shared/domain/accounting.ts';
import type { Fill, Side } from '../../shared/domain/model.ts';
import { base, NOTIONAL_TO_QUOTE, ppm, price, usd } from '../../shared/domain/units.ts';

const RUNS = { numRuns: 400 };
const FEE = ppm('0.01');

const pos = (side: Side, size: string, entry: string, collateral: string): ClosablePosition => ({
  side,
  size: base(size),
  entryPrice: price(entry),
  collateral: usd(collateral),
});
const fill = (size: string, at: string): Fill => ({ size: base(size), price: price(at) });

describe('settleClose: table', () => {
  const cases: {
    name: string;
    position: ClosablePosition;
    fills: Fill[];
    feeRate?: bigint;
    pnl: string;
    fee: string;
    shortfall: string;
    payout: string;
    remaining: [string, string];
  }[] = [
    {
      name: 'long profit, full close',
      position: pos('LONG', '1', '2000', '200'),
      fills: [fill('1', '2100')],
      pnl: '100',
      fee: '21',
      shortfall: '0',
      payout: '279',
      remaining: ['0', '0'],
    },
    {
      name: 'long loss, solvent',
      position: pos('LONG', '1', '2000', '200'),
      fills: [fill('1', '1900')],
      pnl: '-100',
      fee: '19',
      shortfall: '0',
      payout: '81',
      remaining: ['0', '0'],
    },
    {
      name: 'long, fee capped by what is left (over the fee)',
      position: pos('LONG', '1', '2000', '200'),
      fills: [fill('1', '1810')],
      pnl: '-190',
      fee: '10',
      shortfall: '0',
      payout: '0',
      remaining: ['0', '0'],
    },
    {
      name: 'long at the bankruptcy price',
      position: pos('LONG', '1', '2000', '200'),
      fills: [fill('1', '1800')],
      pnl: '-200',
      fee: '0',
      shortfall: '0',
      payout: '0',
      remaining: ['0', '0'],
    },
    {
      name: 'long under the bankruptcy price',
      position: pos('LONG', '1', '2000', '200'),
      fills: [fill('1', '1780')],
      pnl: '-220',
      fee: '0',
      shortfall: '20',
      payout: '0',
      remaining: ['0', '0'],
    },
    {
      name: 'short profit',
      position: pos('SHORT', '2', '2000', '400'),
      fills: [fill('2', '1900')],
      pnl: '200',
      fee: '38',
      shortfall: '0',
      payout: '562',
      remaining: ['0', '0'],
    },
    {
      name: 'short over the bankruptcy price',
      position: pos('SHORT', '1', '2000', '100'),
      fills: [fill('1', '2150')],
      pnl: '-150',
      fee: '0',
      shortfall: '50',
      payout: '0',
      remaining: ['0', '0'],
    },
    {
      name: 'two fills',
      position: pos('LONG', '1', '2000', '200'),
      fills: [fill('0.5', '2100'), fill('0.5', '1950')],
      pnl: '25',
      fee: '20.25',
      shortfall: '0',
      payout: '204.75',
      remaining: ['0', '0'],
    },
    {
      name: 'partial close: PnL and fee flow into the remainder',
      position: pos('LONG', '2', '2000', '300'),
      fills: [fill('1', '1900')],
      pnl: '-100',
      fee: '19',
      shortfall: '0',
      payout: '0',
      remaining: ['1', '181'],
    },
    {
      name: 'partial close under water: remainder collateral to 0 first',
      position: pos('LONG', '2', '2000', '100'),
      fills: [fill('1', '1800')],
      pnl: '-200',
      fee: '0',
      shortfall: '100',
      payout: '0',
      remaining: ['1', '0'],
    },
    {
      name: 'zero fee rate',
      position: pos('LONG', '1', '2000', '200'),
      fills: [fill('1', '2100')],
      feeRate: 0n,
      pnl: '100',
      fee: '0',
      shortfall: '0',
      payout: '300',
      remaining: ['0', '0'],
    },
    {
      name: 'sub-unit profit floors to 0 for the trader',
      position: pos('LONG', '0.00000001', '2000', '1'),
      fills: [fill('0.00000001', '2001')],
      feeRate: 0n,
      pnl: '0',
      fee: '0',
      shortfall: '0',
      payout: '1',
      remaining: ['0', '0'],
    },
    {
      name: 'sub-unit loss while solvent floors against the trader',
      position: pos('LONG', '0.00000001', '2000', '0.000001'),
      fills: [fill('0.00000001', '1999')],
      feeRate: 0n,
      pnl: '-0.000001',
      fee: '0',
      shortfall: '0',
      payout: '0',
      remaining: ['0', '0'],
    },
    {
      name: 'sub-unit loss under water: the fund does not pay the crumb',
      position: pos('LONG', '0.00000001', '2000', '0'),
      fills: [fill('0.00000001', '1999')],
      feeRate: 0n,
      pnl: '0',
      fee: '0',
      shortfall: '0',
      payout: '0',
      remaining: ['0', '0'],
    },
  ];

  it.each(cases)('$name', (c) => {
    const s = settleClose(c.position, c.fills, c.feeRate ?? FEE);
    expect(s.realizedPnl).toBe(usd(c.pnl));
    expect(s.fee).toBe(usd(c.fee));
    expect(s.shortfall).toBe(usd(c.shortfall));
    expect(s.traderPayout).toBe(usd(c.payout));
    expect(s.remaining).toEqual({ size: base(c.remaining[0]), collateral: usd(c.remaining[1]) });
    expect(s.counterpartyFlow).toBe(-s.realizedPnl);
    expect(s.fundFlow).toBe(s.fee - s.shortfall);
    expect(traderChange(c.position, s) + s.counterpartyFlow + s.fundFlow).toBe(0n);
  });
});

describe('settleClose: rejects bad input', () => {
  const p = pos('LONG', '1', '2000', '200');
  it.each([
    {
      name: 'no fills',
      position: p,
      fills: [],
      rate: FEE,
      reason: 'accounting/no-fills: a close needs at least one fill',
    },
    {
      name: 'zero-size fill',
      position: p,
      fills: [fill('0', '2000')],
      rate: FEE,
      reason: 'accounting/bad-fill: fill 0: size 0 and price 200000000000 must be > 0, cost - >= 0',
    },
    {
      name: 'zero-price fill',
      position: p,
      fills: [{ size: 1n, price: 0n }],
      rate: FEE,
      reason: 'accounting/bad-fill',
    },
    {
      name: 'overfill (over the size)',
      position: p,
      fills: [fill('0.6', '2000'), fill('0.40000001', '2000')],
      rate: FEE,
      reason: 'accounting/overfill: fills total 100000001 > position size 100000000',
    },
    {
      name: 'empty position',
      position: { ...p, size: 0n },
      fills: [fill('1', '1')],
      rate: FEE,
      reason: 'accounting/bad-position: size 0 must be > 0',
    },
    {
      name: 'no side',
      position: { ...p, side: 'FLAT' as Side },
      fills: [fill('1', '1')],
      rate: FEE,
      reason: 'accounting/bad-position: side FLAT',
    },
    {
      name: 'zero entry price',
      position: { ...p, entryPrice: 0n },
      fills: [fill('1', '1')],
      rate: FEE,
      reason: 'accounting/bad-position: entry price 0 must be > 0',
    },
    {
      name: 'negative sub-unit carried',
      position: { ...p, collateralOverE16: -1n },
      fills: [fill('1', '1')],
      rate: FEE,
      reason: 'accounting/bad-position: collateralOverE16 -1 is outside [0, 1e10)',
    },
    {
      name: 'a whole unit carried as a sub-unit',
      position: { ...p, collateralOverE16: NOTIONAL_TO_QUOTE },
      fills: [fill('1', '1')],
      rate: FEE,
      reason: 'accounting/bad-position: collateralOverE16 10000000000 is outside [0, 1e10)',
    },
    {
      name: 'negative fill cost',
      position: p,
      fills: [{ ...fill('1', '2000'), cost: -1n }],
      rate: FEE,
      reason: 'accounting/bad-fill: fill 0: size 100000000 and price 200000000000 must be > 0, cost -1 >= 0',
    },
    {
      name: 'fee rate over 1',
      position: p,
      fills: [fill('1', '1')],
      rate: 1_000_001n,
      reason: 'accounting/bad-fee-rate: 1000001 ppm is outside [0, 1e6]',
    },
    {
      name: 'negative fee rate',
      position: p,
      fills: [fill('1', '1')],
      rate: -1n,
      reason: 'accounting/bad-fee-rate',
    },
  ])('$name', ({ position, fills, rate, reason }) => {
    expect(() => settleClose(position, fills, rate)).toThrow(AccountingError);
    expect(() => settleClose(position, fills, rate)).toThrow(reason);
  });

  it('accepts fills exactly at the size (at the boundary)', () => {
    expect(settleClose(p, [fill('0.6', '2000'), fill('0.4', '2000')], FEE).remaining.size).toBe(0n);
  });

  // Found by mutation testing (npm run mutate, session 49): the accepted ends of each range.
  it('accepts a fee rate of exactly 1, a sub-unit just under one unit, and a fill that cost 0', () => {
    // Profit 100, equity 300: the whole 2100 of fee is due, 300 of it is there.
    expect(settleClose(p, [fill('1', '2100')], 1_000_000n)).toMatchObject({
      fee: usd('300'),
      traderPayout: 0n,
    });
    const carried = { ...p, collateralOverE16: NOTIONAL_TO_QUOTE - 1n };
    expect(settleClose(carried, [fill('1', '2000')], 0n).traderPayout).toBe(usd('199.999999'));
    // Settled for nothing: the whole entry notional (2000) is lost, 1800 beyond the collateral.
    const free = settleClose(p, [{ ...fill('1', '2000'), cost: 0n }], FEE);
    expect(free).toMatchObject({ realizedPnl: -usd('2000'), shortfall: usd('1800'), fee: 0n });
  });

  it('floors the closed notional, of a close and of a slice', () => {
    // 0.1 at 1520.12345678 is 152.012345678.
    const small = pos('LONG', '0.1', '1520', '200');
    const fills = [fill('0.1', '1520.12345678')];
    expect(settleClose(small, fills, FEE).closedNotional).toBe(usd('152.012345'));
    const rest = { size: base('1'), mark: price('1520') };
    expect(settleSlice(small, fills, FEE, rest).closedNotional).toBe(usd('152.012345'));
    expect(new AccountingError('accounting/bad-fill', 'x').name).toBe('AccountingError');
  });
});

// --- properties -----------------------------------------------------------------------------------------

const sideArb = fc.constantFrom<Side>('LONG', 'SHORT');
const priceArb = fc.bigInt({ min: 100_000_000n, max: 10_000_000_000_000n }); // 1 .. 100k USD
const sizeArb = fc.bigInt({ min: 1n, max: 100_000_000_000n }); // up to 1,000 base units
const fillArb = fc.record({ size: sizeArb, price: priceArb });
const feeArb = fc.bigInt({ min: 0n, max: 100_000n });

/** A position and fills whose total is at most its size (often exactly it). */
const closeArb = fc
  .record({
    side: sideArb,
    entryPrice: priceArb,
    fills: fc.array(fillArb, { minLength: 1, maxLength: 5 }),
    extra: fc.oneof(fc.constant(0n), sizeArb),
    collateralShare: fc.bigInt({ min: 0n, max: 1_500_000n }), // ppm of the entry notional
    feeRate: feeArb,
  })
  .map(({ side, entryPrice, fills, extra, collateralShare, feeRate }) => {
    const size = fills.reduce((a, f) => a + f.size, 0n) + extra;
    const collateral = (size * entryPrice * collateralShare) / (NOTIONAL_TO_QUOTE * 1_000_000n);
    return { position: { side, size, entryPrice, collateral }, fills, feeRate };
  });

const exactPnl16 = (p: ClosablePosition, fills: readonly Fill[]): bigint =>
  fills.reduce((a, f) => a + pnlE16(p.side, f.size, p.entryPrice, f.price), 0n);

describe('settleClose: properties', () => {
  it('conserves money exactly: traderChange + counterpartyFlow + fee - shortfall == 0', () => {
    fc.assert(
      fc.property(closeArb, ({ position, fills, feeRate }) => {
        const s = settleClose(position, fills, feeRate);
        expect(traderChange(position, s) + s.counterpartyFlow + s.fee - s.shortfall).toBe(0n);
        expect(s.fundFlow).toBe(s.fee - s.shortfall);
        expect(s.counterpartyFlow).toBe(-s.realizedPnl);
      }),
      RUNS,
    );
  });

  it('keeps every amount in range and rounds against the trader and for the fund', () => {
    fc.assert(
      fc.property(closeArb, ({ position, fills, feeRate }) => {
        const s = settleClose(position, fills, feeRate);
        const pnl16 = exactPnl16(position, fills);
        const equity16 = position.collateral * NOTIONAL_TO_QUOTE + pnl16;
        expect(s.fee >= 0n && s.shortfall >= 0n && s.traderPayout >= 0n).toBe(true);
        expect(s.remaining.collateral >= 0n).toBe(true);
        expect(s.fee > 0n && s.shortfall > 0n).toBe(false);
        if (equity16 >= 0n) {
          // the trader never gets a sub-unit more than the exact PnL
          expect(s.realizedPnl * NOTIONAL_TO_QUOTE <= pnl16).toBe(true);
          expect(pnl16 - s.realizedPnl * NOTIONAL_TO_QUOTE < NOTIONAL_TO_QUOTE).toBe(true);
          expect(s.shortfall).toBe(0n);
        } else {
          // the fund never pays a sub-unit more than the exact loss
          expect(s.shortfall).toBe(-equity16 / NOTIONAL_TO_QUOTE);
        }
        const closed = fills.reduce((a, f) => a + f.size, 0n);
        expect(s.closedSize).toBe(closed);
        if (closed === position.size) {
          expect(s.remaining).toEqual({ size: 0n, collateral: 0n });
        } else {
          expect(s.traderPayout).toBe(0n);
          expect(s.remaining.size).toBe(position.size - closed);
        }
      }),
      RUNS,
    );
  });

  /** Bankruptcy price rounded toward the mark (the fund-safe side), computed here from exact amounts. */
  const bankruptcy = (p: ClosablePosition): bigint => {
    const perUnit = (p.collateral * NOTIONAL_TO_QUOTE) / p.size;
    return p.side === 'LONG' ? p.entryPrice - perUnit : p.entryPrice + perUnit;
  };
  const solventArb = fc
    .record({
      side: sideArb,
      size: sizeArb,
      entryPrice: priceArb,
      share: fc.bigInt({ min: 1_000n, max: 900_000n }),
    })
    .map(({ side, size, entryPrice, share }) => ({
      side,
      size,
      entryPrice,
      collateral: (size * entryPrice * share) / (NOTIONAL_TO_QUOTE * 1_000_000n),
    }))
    .filter((p) => bankruptcy(p) > 0n);

  it('a close at the bankruptcy price leaves ~0 and no shortfall', () => {
    fc.assert(
      fc.property(solventArb, feeArb, (p, feeRate) => {
        const s = settleClose(p, [{ size: p.size, price: bankruptcy(p) }], feeRate);
        expect(s.shortfall).toBe(0n);
        // what is left (fee + payout) is less than one price tick on the size
        expect((s.fee + s.traderPayout) * NOTIONAL_TO_QUOTE < p.size).toBe(true);
      }),
      RUNS,
    );
  });

  it('beyond the bankruptcy price the shortfall grows monotonically with the adverse move', () => {
    fc.assert(
      fc.property(
        solventArb,
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        (p, d1, d2) => {
          const bk = bankruptcy(p);
          const dir = p.side === 'LONG' ? -1n : 1n;
          const near = bk + dir * d1;
          const far = near + dir * d2;
          fc.pre(far > 0n);
          const sNear = settleClose(p, [{ size: p.size, price: near }], FEE).shortfall;
          const sFar = settleClose(p, [{ size: p.size, price: far }], FEE).shortfall;
          expect(sFar >= sNear).toBe(true);
          // and it is the exact loss beyond the collateral, floored
          const loss16 = -(p.collateral * NOTIONAL_TO_QUOTE + pnlE16(p.side, p.size, p.entryPrice, far));
          expect(sFar).toBe(loss16 / NOTIONAL_TO_QUOTE);
        },
      ),
      RUNS,
    );
  });
});

describe('chargeFee: a fee the fund could not give back stays charged (replan-fee-floor)', () => {
  it('comes out of the payout first, then becomes shortfall, and conservation holds', () => {
    const p = pos('LONG', '1', '2000', '200');
    const solvent = settleClose(p, [fill('1', '1840')], FEE); // fee 18.40, payout 21.60
    const charged = chargeFee(solvent, usd('150'));
    expect(charged).toMatchObject({ fee: usd('168.4'), shortfall: usd('128.4'), traderPayout: 0n });
    expect(chargeFee(solvent, usd('1.6'))).toMatchObject({
      fee: usd('20'),
      shortfall: 0n,
      traderPayout: usd('20'),
    });
    expect(traderChange(p, charged) + charged.counterpartyFlow + charged.fundFlow).toBe(0n);
    expect(chargeFee(solvent, 0n)).toBe(solvent);
    expect(() => chargeFee(solvent, -1n)).toThrow('accounting/bad-fee-rate: extra fee -1 must be >= 0');
  });

  it('on a partial close, takes it from the collateral left, the payout staying 0 (worked example)', () => {
    // SHORT 2 at 1900 with 150, 1 bought back at 1800: pnl 100, fee 18, 232 stays with the rest.
    const s = settleClose(pos('SHORT', '2', '1900', '150'), [fill('1', '1800')], FEE);
    expect(s.remaining).toEqual({ size: base('1'), collateral: usd('232') });
    expect(chargeFee(s, usd('10'))).toMatchObject({
      fee: usd('28'),
      shortfall: 0n,
      traderPayout: 0n,
      remaining: { size: base('1'), collateral: usd('222') },
    });
    expect(chargeFee(s, usd('300'))).toMatchObject({
      fee: usd('318'),
      shortfall: usd('68'),
      remaining: { size: base('1'), collateral: 0n },
    });
  });

  it('on a partial close, takes it from the collateral left (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1500, max: 2100 }),
        fc.bigInt({ min: 0n, max: usd('500') }),
        (at, extra) => {
          const p = pos('SHORT', '2', '1900', '150');
          const s = chargeFee(settleClose(p, [fill('1', String(at))], FEE), extra);
          expect(s.remaining.size).toBe(base('1'));
          expect(s.remaining.collateral).toBeGreaterThanOrEqual(0n);
          expect(traderChange(p, s) + s.counterpartyFlow + s.fee - s.shortfall).toBe(0n);
        },
      ),
      RUNS,
    );
  });
});

// Session 26 (reviews of the mechanisms and of the session's diff): the fund paid a partial slice's deficit, then
// the rest of the position recovered and the trader kept its profit; a slice's fee could leave the rest bankrupt at
// the mark (the fund then paid it back as the rest's deficit); and a slice of a position already carrying a
// deficit charged no fee although the position as a whole was solvent.
describe('settleSlice: a slice of a position that keeps size', () => {
  const conserved = (slice: ClosablePosition, s: ReturnType<typeof settleSlice>) =>
    traderChange(slice, s) + s.counterpartyFlow + s.fundFlow;

  it('carries its deficit to the rest, the fund paying nothing; money is conserved', () => {
    // LONG 100 at 200 with 2000; a slice of 64 sold at 167.86: a loss of 2056.96, beyond the 2000. The rest (36)
    // valued at 184.5: no fee fits.
    const slice = pos('LONG', '64', '200', '2000');
    const s = settleSlice(slice, [fill('64', '167.86')], FEE, { size: base('36'), mark: price('184.5') });
    expect(s).toMatchObject({ shortfall: 0n, traderPayout: -usd('56.96'), fee: 0n, fundFlow: 0n });
    expect(conserved(slice, s)).toBe(0n);
  });

  it('charges the fee only as far as the whole position stays solvent at the given mark', () => {
    // A slice of 64 sold at 180 (fee due 115.20); the rest, 36, valued at 180: the position has nothing left.
    const slice = pos('LONG', '64', '200', '2000');
    const at = (mark: string) =>
      settleSlice(slice, [fill('64', '180')], FEE, { size: base('36'), mark: price(mark) });
    expect(at('180')).toMatchObject({ fee: 0n, traderPayout: usd('720') });
    // At 182 the rest is worth 72 more: 72 of fee fit.
    expect(at('182')).toMatchObject({ fee: usd('72'), traderPayout: usd('648') });
    // At 190 the whole fee fits.
    expect(at('190')).toMatchObject({ fee: usd('115.2'), traderPayout: usd('604.8') });
    for (const mark of ['180', '182', '190']) expect(conserved(slice, at(mark))).toBe(0n);
  });

  it('charges the fee of a slice of a position carrying a deficit when the whole position is solvent', () => {
    // LONG 100 at 100 owing 300, mark 150: the slice of 50 sold at 150 realizes 2500; its equity 2200. The rest's
    // 2500 of profit makes the whole solvent: the fee (75) is charged, the rest starts with 2125.
    const slice = pos('LONG', '50', '100', '-300');
    const s = settleSlice(slice, [fill('50', '150')], FEE, { size: base('50'), mark: price('150') });
    expect(s).toMatchObject({ fee: usd('75'), traderPayout: usd('2125'), shortfall: 0n });
    // Sold below the debt: the slice is under water, the whole is not: the fee is still charged, and carried.
    const under = settleSlice(slice, [fill('50', '102')], FEE, { size: base('50'), mark: price('150') });
    expect(under).toMatchObject({ realizedPnl: usd('100'), fee: usd('51'), traderPayout: -usd('251') });
    expect(conserved(slice, under)).toBe(0n);
  });

  it('takes a kept fee from what the rest starts with, below zero if need be', () => {
    const slice = pos('LONG', '64', '200', '2000');
    const s = settleSlice(slice, [fill('64', '167.86')], FEE, { size: base('36'), mark: price('184.5') });
    const kept = chargeSliceFee(s, usd('10'));
    expect(kept).toMatchObject({ fee: usd('10'), traderPayout: -usd('66.96'), fundFlow: usd('10') });
    expect(conserved(slice, kept)).toBe(0n);
    expect(chargeSliceFee(s, 0n)).toEqual(s);
    expect(() => chargeSliceFee(s, -1n)).toThrow('accounting/bad-fee-rate: extra fee -1 must be >= 0');
  });

  it('settles a carried deficit first when the rest closes: a recovered rest repays it, else the fund pays once', () => {
    const rest = pos('LONG', '36', '200', '-56.96');
    // Back to 206: 216 of profit, 56.96 of it repays the deficit; the trader keeps the rest.
    const recovered = settleClose(rest, [fill('36', '206')], 0n);
    expect(recovered).toMatchObject({ realizedPnl: usd('216'), shortfall: 0n, traderPayout: usd('159.04') });
    // Down to 190: a loss of 360 on top of the 56.96 owed: the fund (or ADL) pays 416.96 now, once.
    const lower = settleClose(rest, [fill('36', '190')], FEE);
    expect(lower).toMatchObject({ shortfall: usd('416.96'), fee: 0n, traderPayout: 0n });
    for (const close of [recovered, lower])
      expect(traderChange(rest, close) + close.counterpartyFlow + close.fundFlow).toBe(0n);
  });

  it('refuses a rest without size or mark', () => {
    expect(() =>
      settleSlice(pos('LONG', '1', '200', '10'), [fill('1', '190')], FEE, { size: 0n, mark: price('190') }),
    ).toThrow(/accounting\/bad-position/);
    expect(() =>
      settleSlice(pos('LONG', '1', '200', '10'), [fill('1', '190')], FEE, { size: base('36'), mark: 0n }),
    ).toThrow('accounting/bad-position: rest 3600000000 at 0: both must be > 0');
  });

  it('refuses a slice its fills do not close whole', () => {
    expect(() =>
      settleSlice(pos('LONG', '1', '200', '10'), [fill('0.5', '190')], FEE, {
        size: base('1'),
        mark: price('190'),
      }),
    ).toThrow('accounting/bad-position: a slice closes whole: 50000000 of 100000000');
  });
});

describe('settleSlice: the sub-unit a slice rounds is carried, so slicing pays nobody (review, session 35)', () => {
  const ENTRY = 10_000_000_000n; // 100 USD
  /** Closes `size` in `slices` equal slices at `fillPrice` (no fee), the rest carrying what each leaves. */
  function sliced(side: Side, size: bigint, slices: bigint, collateral: bigint, fillPrice: bigint) {
    let position = { side, size, entryPrice: ENTRY, collateral, collateralOverE16: 0n };
    const piece = size / slices;
    for (let i = 1n; i < slices; i++) {
      const s = settleSlice({ ...position, size: piece }, [{ price: fillPrice, size: piece }], 0n, {
        size: position.size - piece,
        mark: fillPrice,
      });
      position = {
        ...position,
        size: position.size - piece,
        collateral: s.traderPayout,
        collateralOverE16: s.restCollateralOverE16 ?? 0n,
      };
    }
    return settleClose(position, [{ price: fillPrice, size: position.size }], 0n);
  }

  it.each(['LONG', 'SHORT'] as const)(
    '%s: three slices of 0.1 unit of profit each pay the trader floor(100.3) = 100 units, not 102',
    (side) => {
      const fillPrice = side === 'LONG' ? 10_100_000_000n : 9_900_000_000n;
      expect(sliced(side, 30n, 3n, 100n, fillPrice).traderPayout).toBe(100n);
    },
  );

  it('whatever the slicing, the trader is paid floor(exact equity) and the fund pays floor(exact deficit)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Side>('LONG', 'SHORT'),
        fc.bigInt({ min: 1n, max: 1_000n }),
        fc.bigInt({ min: 1n, max: 20n }),
        fc.bigInt({ min: -1_000n, max: 10_000n }),
        fc.bigInt({ min: 9_000_000_000n, max: 11_000_000_000n }),
        (side, piece, slices, collateral, fillPrice) => {
          const size = piece * slices;
          const closed = sliced(side, size, slices, collateral, fillPrice);
          const exact16 =
            collateral * NOTIONAL_TO_QUOTE + (side === 'LONG' ? 1n : -1n) * size * (fillPrice - ENTRY);
          const floorDiv = (a: bigint) =>
            a >= 0n ? a / NOTIONAL_TO_QUOTE : -((-a - 1n) / NOTIONAL_TO_QUOTE) - 1n;
          if (exact16 >= 0n) {
            expect(closed.traderPayout).toBe(floorDiv(exact16));
            expect(closed.shortfall).toBe(0n);
          } else {
            expect(closed.traderPayout).toBe(0n);
            expect(closed.shortfall).toBe(floorDiv(-exact16));
          }
        },
      ),
    );
  });
});

describe("creditCloseRounding: ADL counterparties' rounding to the fund (adl-close-rounding)", () => {
  const E10 = NOTIONAL_TO_QUOTE;
  // Under water by 5 USD, and solvent with 95 USD left after a 1 USD fee.
  const under = settleClose(pos('LONG', '1', '200', '20'), [fill('1', '175')], FEE);
  const solvent = settleClose(pos('LONG', '1', '200', '100'), [fill('1', '195')], FEE);

  it('lowers the shortfall by the whole units, then credits the rest with the fee; the trader keeps its outcome', () => {
    const a = creditCloseRounding(under, 2n * E10 + 5n);
    expect([a.shortfall, a.fee, a.traderPayout]).toEqual([usd('4.999998'), 0n, 0n]);
    const b = creditCloseRounding(
      settleClose(pos('LONG', '1', '200', '20'), [fill('1', '180')], 0n),
      3n * E10,
    );
    expect([b.shortfall, b.fee, b.traderPayout]).toEqual([0n, 3n, 0n]);
    const c = creditCloseRounding(solvent, E10);
    expect([c.shortfall, c.fee, c.traderPayout]).toEqual([0n, solvent.fee + 1n, solvent.traderPayout]);
    // Under one unit: nothing moves.
    expect(creditCloseRounding(under, E10 - 1n)).toBe(under);
    expect(() => creditCloseRounding(under, -1n)).toThrow(
      'accounting/bad-fill: close rounding -1 must be >= 0',
    );
  });

  it('conserves: the counterparties receive the units less, the fund the units more', () => {
    fc.assert(
      fc.property(fc.constantFrom(under, solvent), fc.bigInt({ min: 0n, max: 100n * E10 }), (s, rounding) => {
        const r = creditCloseRounding(s, rounding);
        const units = rounding / E10;
        expect(r.fundFlow - s.fundFlow).toBe(units);
        expect(s.counterpartyFlow - r.counterpartyFlow).toBe(units);
        expect(r.fee - r.shortfall).toBe(r.fundFlow);
        expect(r.shortfall >= 0n && r.fee >= s.fee && r.shortfall <= s.shortfall).toBe(true);
        expect([r.traderPayout, r.remaining, r.realizedPnl]).toEqual([
          s.traderPayout,
          s.remaining,
          s.realizedPnl,
        ]);
      }),
      RUNS,
    );
  });
});

describe('closeRoundingOwnE16: what a whole close rounds away from the trader (adl-trader-rounding)', () => {
  const E10 = NOTIONAL_TO_QUOTE;

  it('a solvent close: its exact equity less the whole units it keeps; under water: none', () => {
    // 27 - 25.00000001 = 1.99999999: the close keeps 1.999999, 0.99 of a unit away.
    expect(closeRoundingOwnE16(pos('LONG', '1', '200.00000001', '27'), [fill('1', '175')])).toBe(
      9_900_000_000n,
    );
    // A sub-unit over the collateral (a slice's) is rounded with it: 0.98.
    const over = { ...pos('LONG', '1', '200.00000001', '27'), collateralOverE16: 100_000_000n };
    expect(closeRoundingOwnE16(over, [fill('1', '175')])).toBe(9_800_000_000n);
    // Exactly whole: nothing; under water (the loss is floored, the fund's way): nothing.
    expect(closeRoundingOwnE16(pos('LONG', '1', '200', '27'), [fill('1', '175')])).toBe(0n);
    expect(closeRoundingOwnE16(pos('LONG', '1', '200.00000001', '20'), [fill('1', '175')])).toBe(0n);
  });

  it('is what settleClose keeps below the exact equity, for any solvent close', () => {
    fc.assert(
      fc.property(
        sideArb,
        fc.bigInt({ min: 1n, max: 1_000_000_000n }),
        fc.bigInt({ min: 1_000_000_000n, max: 50_000_000_000n }),
        fc.bigInt({ min: 1_000_000_000n, max: 50_000_000_000n }),
        fc.bigInt({ min: 0n, max: 20_000_000_000n }),
        fc.bigInt({ min: 0n, max: E10 - 1n }),
        (side, size, entry, at, collateral, over) => {
          const p = {
            side,
            size,
            entryPrice: entry,
            collateral,
            ...(over > 0n ? { collateralOverE16: over } : {}),
          };
          const fills = [{ size, price: at }];
          const exact16 = collateral * E10 - over + pnlE16(side, size, entry, at);
          const s = settleClose(p, fills, 0n);
          const rounded = closeRoundingOwnE16(p, fills);
          if (exact16 < 0n) expect(rounded).toBe(0n);
          else expect(rounded).toBe(exact16 - s.traderPayout * E10);
          expect(rounded >= 0n && rounded < E10).toBe(true);
        },
      ),
      RUNS,
    );
  });
});

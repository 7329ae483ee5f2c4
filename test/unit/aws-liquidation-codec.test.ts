import { describe, expect, it } from 'vitest';
import type { Item } from '../../shared/adapters/aws/codec.ts';
import { CorruptItemError } from '../../shared/adapters/aws/codec.ts';
import { itemBytes } from '../../shared/adapters/aws/item-size.ts';
import { liquidationFromItem, liquidationItem } from '../../shared/adapters/aws/liquidations.ts';
import { formatBase, formatQuote, parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { SETTLEMENT_UNITS, type SettlementAmounts } from '../../shared/domain/waterfall.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';

/** The DynamoDB item of a liquidation record: settlement amounts, as written now and as written before. */

const SETTLEMENT: SettlementAmounts = {
  marketClosedSize: parseBase('1.25'),
  lastResortClosedSize: 0n,
  auctionClosedSize: parseBase('0.75'),
  adlClosedSize: 0n,
  carriedSize: 0n,
  realizedPnl: parseQuote('-250.5', 'pnl', { allowNegative: true }),
  fee: parseQuote('1.000001'),
  shortfall: 2n ** 60n,
  insurancePaid: 2n ** 60n - 1n,
  adlCovered: 1n,
  badDebt: 0n,
  traderPayout: 0n,
};

const RECORD: LiquidationRecord = {
  id: 'ETH-USD-p1:3',
  positionId: 'ETH-USD-p1',
  symbol: 'ETH-USD',
  side: 'LONG',
  state: 'SETTLED_INSURANCE',
  tickKey: 'ETH-USD#7',
  triggerMark: parsePrice('175'),
  remainingSize: 0n,
  marketFills: [{ price: parsePrice('176'), size: parseBase('1.25') }],
  settlement: SETTLEMENT,
  history: [{ atMs: 1_000, state: 'QUEUED' }],
  version: 4,
};

/** The item with its settlement map replaced. */
function withSettlement(m: Item): Item {
  return { ...liquidationItem(RECORD), settlement: { M: m } } as Item;
}

describe('liquidation items: settlement amounts', () => {
  it('stores them as scaled integers, exactly, and reads them back', () => {
    const item = liquidationItem(RECORD);
    expect(item.settlement?.M?.shortfall).toEqual({ N: String(2n ** 60n) });
    expect(item.settlement?.M?.realizedPnl).toEqual({ N: '-250500000' });
    expect(liquidationFromItem(item)).toEqual(RECORD);
  });

  it('reads an item of an earlier version that still has the (always empty) auctionFills list', () => {
    const item = { ...liquidationItem(RECORD), auctionFills: { L: [] } } as Item;
    expect(liquidationItem(RECORD).auctionFills).toBeUndefined();
    expect(liquidationFromItem(item)).toEqual(RECORD);
  });

  it('reads the decimal strings earlier versions wrote, each in its unit', () => {
    const decimals = Object.fromEntries(
      (Object.keys(SETTLEMENT_UNITS) as (keyof SettlementAmounts)[]).map((k) => [
        k,
        { S: SETTLEMENT_UNITS[k] === 'base' ? formatBase(SETTLEMENT[k]) : formatQuote(SETTLEMENT[k]) },
      ]),
    );
    expect(decimals.realizedPnl).toEqual({ S: '-250.5' });
    expect(liquidationFromItem(withSettlement(decimals)).settlement).toEqual(SETTLEMENT);
  });

  // Found by an audit of rolling deploys in session 39: such an item stopped `backstop liquidations index`.
  it('reads a settlement of the first versions, which had no last resort or carried size, as 0 of each', () => {
    const {
      lastResortClosedSize: _l,
      carriedSize: _c,
      ...first
    } = Object.fromEntries(
      (Object.keys(SETTLEMENT_UNITS) as (keyof SettlementAmounts)[]).map((k) => [
        k,
        { S: SETTLEMENT_UNITS[k] === 'base' ? formatBase(SETTLEMENT[k]) : formatQuote(SETTLEMENT[k]) },
      ]),
    );
    expect(liquidationFromItem(withSettlement(first)).settlement).toEqual({
      ...SETTLEMENT,
      lastResortClosedSize: 0n,
      carriedSize: 0n,
    });
  });

  // cost52-settlement-zeros: a settled liquidation's item, which every write rewrites whole, passed 1 KB with a real
  // exchange's ids; every version since the fence reads the two amounts absent as 0 (the test above).
  it('writes the last resort and carried sizes only when not 0: 37 bytes less, read back the same', () => {
    const item = liquidationItem(RECORD);
    expect(Object.keys(item.settlement!.M!)).not.toContain('lastResortClosedSize');
    expect(Object.keys(item.settlement!.M!)).not.toContain('carriedSize');
    // The other amounts are written at 0 (versions before this one require them).
    expect(item.settlement?.M?.adlClosedSize).toEqual({ N: '0' });
    expect(item.settlement?.M?.badDebt).toEqual({ N: '0' });
    expect(liquidationFromItem(item)).toEqual(RECORD);
    const withZeros = withSettlement({
      ...item.settlement!.M!,
      lastResortClosedSize: { N: '0' },
      carriedSize: { N: '0' },
    });
    expect(itemBytes(withZeros) - itemBytes(item)).toBe(37);
    expect(liquidationFromItem(withZeros)).toEqual(RECORD);
    const carried = { ...RECORD, settlement: { ...SETTLEMENT, lastResortClosedSize: 1n, carriedSize: 2n } };
    expect(liquidationItem(carried).settlement?.M).toMatchObject({
      lastResortClosedSize: { N: '1' },
      carriedSize: { N: '2' },
    });
    expect(liquidationFromItem(liquidationItem(carried))).toEqual(carried);
  });

  it('refuses a settlement with an amount missing, not a number, or finer than its unit', () => {
    const { fee: _missing, ...rest } = liquidationItem(RECORD).settlement!.M!;
    expect(() => liquidationFromItem(withSettlement(rest))).toThrow(CorruptItemError);
    const all = liquidationItem(RECORD).settlement!.M!;
    for (const bad of [{ N: '1.5' }, { S: 'lots' }, { S: '0.0000001' }]) {
      expect(() => liquidationFromItem(withSettlement({ ...all, fee: bad })), JSON.stringify(bad)).toThrow(
        CorruptItemError,
      );
    }
  });
});

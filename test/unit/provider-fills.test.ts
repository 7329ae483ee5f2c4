import { describe, expect, it } from 'vitest';
import { providerShow } from '../../cli/ops/providers.ts';
import { itemBytes, MAX_ITEM_BYTES } from '../../shared/adapters/aws/item-size.ts';
import { providerFromItem, providerItem } from '../../shared/adapters/aws/providers.ts';
import { SIZED_WRITER, withWriter } from '../../shared/adapters/aws/record-items.ts';
import { bidPrice } from '../../shared/domain/clearing.ts';
import {
  auctionFillCost,
  fillEdge,
  fillsKeptOnReregister,
  MAX_PROVIDER_FILLS_KEPT,
  type ProviderFill,
  type ProviderFills,
  recordProviderFill,
  withProviderFill,
} from '../../shared/domain/provider-fills.ts';
import { base, notionalQuote, price, usd } from '../../shared/domain/units.ts';
import type { ProviderRecord } from '../../shared/ports/index.ts';

/**
 * What a provider won (providers48-fills-on-record): domain/provider-fills.ts keeps the latest MAX_PROVIDER_FILLS_KEPT
 * of its auction fills and exact totals per market, each fill's edge at the mark floored (never more than it gained).
 */

const fill = (n: number, over: Partial<ProviderFill> = {}): ProviderFill => ({
  liquidationId: `long-${n}:1`,
  step: 3,
  symbol: 'ETH-USD',
  direction: 'SELL',
  size: base('0.5'),
  price: price('1764'),
  cost: usd('882'),
  mark: price('1800'),
  edge: usd('18'),
  atMs: 1_584_050_040_000 + n,
  ...over,
});

const recorded = (n: number, from?: ProviderFills, over: Partial<ProviderFill> = {}): ProviderFills => {
  let fills = from;
  for (let i = 1; i <= n; i++) fills = withProviderFill(fills, fill(i, over));
  return fills!;
};

// Found by mutation testing (npm run mutate, session 49): no domain unit test reached the rule.
describe("auctionFillCost: what a fill moved its provider's capital by", () => {
  it('its cost when it has one; else size x price rounded against the provider', () => {
    // 0.1 ETH at 1520.12345678: 152.012345678.
    const lot = { size: base('0.1'), price: price('1520.12345678') };
    expect(auctionFillCost('SELL', { ...lot, cost: usd('7') })).toBe(usd('7'));
    expect(auctionFillCost('SELL', lot)).toBe(usd('152.012346'));
    expect(auctionFillCost('BUY', lot)).toBe(usd('152.012345'));
  });
});

describe('fillEdge: what a fill was worth to its provider at the mark', () => {
  it('a SELL lot: the size at the mark less what it paid; a BUY lot: what it was paid less the size at the mark', () => {
    // Bought 0.5 ETH at 1,764 (2 % under a mark of 1,800): 900 at the mark, 882 paid.
    expect(fillEdge('SELL', base('0.5'), price('1800'), usd('882'))).toBe(usd('18'));
    // Sold 0.5 ETH at 1,836 (2 % over): paid 918 for 900 at the mark.
    expect(fillEdge('BUY', base('0.5'), price('1800'), usd('918'))).toBe(usd('18'));
    // A bid past the mark the other way: a loss at the mark, negative.
    expect(fillEdge('SELL', base('1'), price('100'), usd('101'))).toBe(usd('-1'));
    expect(fillEdge('BUY', base('1'), price('100'), usd('99'))).toBe(usd('-1'));
  });

  it('floors the sub-unit, on either side and either sign: never more than the provider gained', () => {
    // 0.00000001 ETH at a mark of 1,800.12345678: 0.0000180012345678 quote at the mark.
    const size = 1n;
    const mark = price('1800.12345678');
    // SELL: 18 units at the mark (floored 18.0012...), 17 paid: edge 1.0012... -> 1.
    expect(fillEdge('SELL', size, mark, 17n)).toBe(1n);
    // Paid 19: -0.9987... -> -1 (floored away from zero: the loss is not understated).
    expect(fillEdge('SELL', size, mark, 19n)).toBe(-1n);
    // BUY: paid 19 for 18.0012...: 0.9987... -> 0; paid 18: -0.0012... -> -1.
    expect(fillEdge('BUY', size, mark, 19n)).toBe(0n);
    expect(fillEdge('BUY', size, mark, 18n)).toBe(-1n);
    // Exact: no rounding.
    expect(fillEdge('SELL', base('2'), price('1.5'), usd('2'))).toBe(usd('1'));
  });

  it("a bid at the mark (no discount) rounded the fund's way gives its provider at most a unit less than 0", () => {
    const mark = price('1799.99999999');
    for (const size of [1n, 7n, base('0.33333333'), base('3')]) {
      const sell = bidPrice({ maxDiscountPpm: 0n }, 'SELL', mark);
      const buy = bidPrice({ maxDiscountPpm: 0n }, 'BUY', mark);
      const sellEdge = fillEdge('SELL', size, mark, notionalQuote(size, sell, 'ceil'));
      const buyEdge = fillEdge('BUY', size, mark, notionalQuote(size, buy, 'floor'));
      expect(sellEdge === 0n || sellEdge === -1n).toBe(true);
      expect(buyEdge === 0n || buyEdge === -1n).toBe(true);
    }
  });
});

describe("a provider's fills (withProviderFill)", () => {
  it('records the first on a record that has none (an older one reads as none): totals begin with it', () => {
    expect(withProviderFill(undefined, fill(1))).toEqual({
      total: 1,
      recent: [fill(1)],
      byMarket: {
        'ETH-USD': {
          fills: 1,
          bought: base('0.5'),
          paid: usd('882'),
          sold: 0n,
          received: 0n,
          edge: usd('18'),
        },
      },
      sinceMs: fill(1).atMs,
    });
  });

  it('keeps the latest, oldest first, counts every fill and totals them per market, exactly', () => {
    const many = recorded(MAX_PROVIDER_FILLS_KEPT + 7);
    expect(many.total).toBe(MAX_PROVIDER_FILLS_KEPT + 7);
    expect(many.recent.map((f) => f.liquidationId)).toEqual(
      Array.from({ length: MAX_PROVIDER_FILLS_KEPT }, (_, i) => `long-${i + 8}:1`),
    );
    expect(many.byMarket['ETH-USD']).toEqual({
      fills: 12,
      bought: base('6'),
      paid: usd('10584'),
      sold: 0n,
      received: 0n,
      edge: usd('216'),
    });
    expect(many.sinceMs).toBe(fill(1).atMs);
  });

  it('totals a BUY lot as sold and received, each market apart', () => {
    const sold = fill(20, { symbol: 'BTC-USD', direction: 'BUY', size: 3n, cost: 7n, edge: -1n });
    const both = withProviderFill(recorded(2), sold);
    expect(both.byMarket).toEqual({
      'ETH-USD': { fills: 2, bought: base('1'), paid: usd('1764'), sold: 0n, received: 0n, edge: usd('36') },
      'BTC-USD': { fills: 1, bought: 0n, paid: 0n, sold: 3n, received: 7n, edge: -1n },
    });
    expect(both.total).toBe(3);
  });

  it('records a fill of the same liquidation and step once; another step of it is another fill', () => {
    const once = recorded(2);
    expect(withProviderFill(once, fill(2, { atMs: 9 }))).toBe(once);
    const next = withProviderFill(once, fill(2, { step: 4 }));
    expect(next.total).toBe(3);
    expect(next.byMarket['ETH-USD']!.fills).toBe(3);
  });

  it('never counts fewer than it keeps (a total a foreign writer left short)', () => {
    expect(withProviderFill({ ...recorded(1), total: 0 }, fill(2)).total).toBe(2);
  });

  it('fillsKeptOnReregister carries the fill attributes of a record, and nothing of one without them', () => {
    const fills = recorded(2);
    const aside = [{ unreadable: 'x', stored: { S: 'y' } }];
    expect(fillsKeptOnReregister({ fills, fillsSetAside: aside })).toEqual({ fills, fillsSetAside: aside });
    expect(fillsKeptOnReregister(undefined)).toEqual({});
    expect(fillsKeptOnReregister({})).toEqual({});
  });
});

const provider = (over: Partial<ProviderRecord> = {}): ProviderRecord => ({
  id: 'lp-000017',
  capital: usd('250000'),
  maxDiscountPpm: 20_000n,
  maxLot: base('10'),
  symbols: ['ETH-USD', 'BTC-USD'],
  version: 41,
  ...over,
});

describe("a provider's item stays small: every auction step lists the providers whole (a consistent Scan)", () => {
  it('with short amounts (0.5 ETH at 1,764) a provider keeping the most fills in two markets stays within one write unit', () => {
    const fills = withProviderFill(
      recorded(MAX_PROVIDER_FILLS_KEPT + 3),
      fill(99, { symbol: 'BTC-USD', liquidationId: 'pos-004711:12' }),
    );
    const item = withWriter(providerItem(provider({ fills })), SIZED_WRITER);
    expect(itemBytes(item)).toBeLessThan(1024);
    expect(providerFromItem(item)).toEqual(provider({ fills }));
  });

  // PERFORMANCE.md prices these (review48-providers-item-size): amounts of full width (8 decimals of base and price,
  // 6 of quote), position ids of 8 to 36 characters, every fill kept.
  it('with amounts of full width: under 1 KB in one market, over it in two with ids of a dozen characters (4 write units in a transaction)', () => {
    const sized = (idLength: number, markets: number): number => {
      const symbols = ['ETH-USD', 'BTC-USD', 'SOL-USD'].slice(0, markets);
      let fills: ProviderFills | undefined;
      for (let i = 0; i < MAX_PROVIDER_FILLS_KEPT + 3; i++)
        fills = withProviderFill(fills, {
          liquidationId: `${'p'.repeat(idLength - 6)}${String(i).padStart(6, '0')}:12`,
          step: 17,
          symbol: symbols[i % markets]!,
          direction: 'SELL',
          size: base('12.34567891'),
          price: price('1764.12345678'),
          cost: usd('21780.123456'),
          mark: price('1800.12345678'),
          edge: usd('444.123456'),
          atMs: 1_784_050_040_123,
        });
      const item = providerItem(provider({ capital: usd('2500000.123456'), symbols, fills, version: 4171 }));
      return itemBytes(withWriter(item, SIZED_WRITER));
    };
    expect(sized(8, 1)).toBeLessThan(1024);
    expect(sized(8, 2)).toBeLessThan(1024);
    expect(sized(13, 2)).toBeGreaterThan(1024);
    expect(sized(8, 3)).toBeGreaterThan(1024);
    // The widest of them: a Scan of 20 such providers reads 7 units of 4 KB (1 before session 48).
    expect(sized(36, 3)).toBeLessThan(1.25 * 1024);
    expect(Math.ceil((20 * sized(36, 3)) / 4096)).toBe(7);
    expect(Math.ceil((20 * sized(8, 1)) / 4096)).toBe(5);
  });

  it('the largest item (longest ids, widest numbers, every fill kept, ten markets) is a few KB', () => {
    const id = 'x'.repeat(100);
    const widest = 10n ** 37n;
    const symbols = Array.from({ length: 10 }, (_, i) => `${'S'.repeat(18)}${i}`);
    const wide: ProviderFill = {
      liquidationId: `${id}:${Number.MAX_SAFE_INTEGER}`,
      step: Number.MAX_SAFE_INTEGER,
      symbol: symbols[0]!,
      direction: 'SELL',
      size: widest,
      price: widest,
      cost: widest,
      mark: widest,
      edge: -widest,
      atMs: Number.MAX_SAFE_INTEGER,
    };
    const totals = {
      fills: Number.MAX_SAFE_INTEGER,
      bought: widest,
      paid: widest,
      sold: widest,
      received: widest,
      edge: -widest,
    };
    const largest = provider({
      id,
      capital: widest,
      maxLot: widest,
      symbols,
      fills: {
        total: Number.MAX_SAFE_INTEGER,
        recent: Array.from({ length: MAX_PROVIDER_FILLS_KEPT }, () => wide),
        byMarket: Object.fromEntries(symbols.map((s) => [s, totals])),
        sinceMs: Number.MAX_SAFE_INTEGER,
      },
    });
    const bytes = itemBytes(withWriter(providerItem(largest), SIZED_WRITER));
    expect(bytes).toBeLessThan(6 * 1024);
    expect(bytes).toBeLessThan(MAX_ITEM_BYTES / 50);
  });
});

// As ADL's events (follow47-adl-events-unreadable): display only, so fills that do not read must not fail the read of
// the provider, which every auction step makes.
describe('fills this version cannot read', () => {
  const stored = providerItem(provider());
  const later = { M: { version: { N: '2' }, fills: { L: [] } } };
  const edited = {
    M: {
      total: { N: '1' },
      sinceMs: { N: '1' },
      recent: { L: [{ M: { liquidationId: { S: 'a:0' } } }] },
      byMarket: { M: {} },
    },
  };

  it('read as unreadable with why, the provider read whole, and written back as they were', () => {
    const read = providerFromItem({ ...stored, fills: later });
    expect(read).toEqual({
      ...provider(),
      fills: { unreadable: 'adapter/missing-attribute: recent', stored: later },
    });
    expect(providerItem(read).fills).toEqual(later);
    expect(providerFromItem({ ...stored, fills: edited }).fills).toEqual({
      unreadable: 'recent[0]: adapter/missing-attribute: direction',
      stored: edited,
    });
    expect(providerFromItem({ ...stored, fills: { S: 'x' } }).fills).toMatchObject({
      unreadable: 'adapter/not-a-map: fills',
    });
  });

  it('the next fill sets them aside as they were and starts new totals; later fills keep what was set aside', () => {
    const read = providerFromItem({ ...stored, fills: later });
    const first = recordProviderFill(read, fill(1));
    expect(first).toEqual({
      fills: withProviderFill(undefined, fill(1)),
      fillsSetAside: [{ unreadable: 'adapter/missing-attribute: recent', stored: later }],
    });
    const item = providerItem({ ...read, ...first });
    expect(item.fillsSetAside).toEqual({ L: [later] });
    const again = providerFromItem(item);
    expect(again.fillsSetAside).toEqual(first.fillsSetAside);
    expect(recordProviderFill(again, fill(2))).toEqual({
      fills: recorded(2),
      fillsSetAside: first.fillsSetAside,
    });
    const twice = recordProviderFill(
      { ...again, fills: providerFromItem({ ...item, fills: edited }).fills },
      fill(3),
    );
    expect(providerItem({ ...again, ...twice }).fillsSetAside).toEqual({ L: [later, edited] });
  });

  // providers49-set-aside-not-a-list: a set-aside stored as something other than a list was read as a list of one,
  // so the provider's first write (a fill that set nothing aside, a registration) wrote it wrapped in a list of one.
  it('a set-aside that is not a list is written back as it was, and kept whole as the first when one more is', () => {
    const notAList = { M: { from: { S: 'a later version' } } };
    const read = providerFromItem({ ...stored, fillsSetAside: notAList });
    expect(read.fillsSetAside).toEqual({ unreadable: 'adapter/not-a-list: fillsSetAside', stored: notAList });
    expect(providerItem(read).fillsSetAside).toEqual(notAList);
    // A fill that sets nothing aside, twice over: unchanged.
    const filled = providerFromItem(providerItem({ ...read, ...recordProviderFill(read, fill(1)) }));
    const again = providerItem({ ...filled, ...recordProviderFill(filled, fill(2)) });
    expect(again.fillsSetAside).toEqual(notAList);
    expect(providerItem({ ...read, ...fillsKeptOnReregister(read) }).fillsSetAside).toEqual(notAList);
    // One more set aside: a list, the one kept whole first, as stored.
    const unread = providerFromItem({ ...stored, fills: later, fillsSetAside: notAList });
    expect(providerItem({ ...unread, ...recordProviderFill(unread, fill(3)) }).fillsSetAside).toEqual({
      L: [notAList, later],
    });
    expect(providerShow(read).unreadableFills).toEqual([
      { reason: 'adapter/not-a-list: fillsSetAside', current: false },
    ]);
  });
});

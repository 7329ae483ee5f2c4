import { describe, expect, it } from 'vitest';
import { itemBytes, MAX_ITEM_BYTES } from '../../shared/adapters/aws/item-size.ts';
import { liquidationItem } from '../../shared/adapters/aws/liquidations.ts';
import { settleClose } from '../../shared/domain/accounting.ts';
import { marketConfig, parseRiskConfig } from '../../shared/domain/config.ts';
import type { Fill } from '../../shared/domain/model.ts';
import type { OrderRequest, OrderResult, PositionRecord, Venue } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { MAX_FILLS_PER_ORDER } from '../../shared/services/liquidation.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';
import { AUCTION_ONLY } from '../support/risk-configs.ts';

const TRADES = 10_000;

/**
 * A venue that answers each order with TRADES trades (as a real one may split one IOC): the book's first level
 * split into pieces one price unit apart, each a little better than the level (so within the limit), the other
 * levels as they are.
 */
class SplittingVenue implements Venue {
  constructor(readonly inner: Venue) {}

  async placeIoc(order: OrderRequest): Promise<OrderResult> {
    const result = await this.inner.placeIoc(order);
    const [first, ...rest] = result.fills;
    if (!first) return result;
    const pieces = BigInt(TRADES - rest.length);
    const better = order.direction === 'SELL' ? 1n : -1n;
    const trades: Fill[] = [];
    for (let j = 0n; j < pieces; j++) {
      // Sizes as even as they go, the remainder on the first ones.
      const size = first.size / pieces + (j < first.size % pieces ? 1n : 0n);
      trades.push({ price: first.price + better * j, size });
    }
    return { ...result, fills: [...trades, ...rest] };
  }

  quote(symbol: string, reference?: OrderRequest['reference']) {
    return this.inner.quote(symbol, reference);
  }
}

/** Every liquidation item as the AWS adapter writes it, measured as DynamoDB counts it. */
function expectItemsFit(p: Pipeline): void {
  for (const l of p.adapters.liquidations.all()) {
    expect(l.marketFills.length).toBeLessThanOrEqual(2 * MAX_FILLS_PER_ORDER);
    expect(itemBytes(liquidationItem(l))).toBeLessThan(MAX_ITEM_BYTES);
  }
}

async function expectExact(p: Pipeline): Promise<void> {
  expect(p.errors).toEqual([]);
  expect((await p.adapters.liquidationDeadLetters.depth()).visible).toBe(0);
  // Conservation to the unit, the closes recomputed from the recorded fills, the recorded fills against the
  // venue's trades (checkInvariants), and the fund's ledger.
  expect((await p.check()).violations).toEqual([]);
  const report = await reconcileAccount(p.adapters.ledger, INSURANCE_ACCOUNT, p.telemetry);
  expect(report.difference).toBe(0n);
  expect(report.problems).toEqual([]);
}

/** The venue's answer to `clientOrderId` as it gave it (every trade). */
function answered(p: Pipeline, clientOrderId: string): readonly Fill[] {
  const fills = p.orders.orders.get(clientOrderId)?.result?.fills ?? [];
  expect(fills).toHaveLength(TRADES);
  return fills;
}

describe('venue-fills-bounded: a venue answering one order with 10,000 trades', () => {
  it('a market order of 10,000 fills settles, its item under 400 KB, to the unit of the trades', async () => {
    const p = createPipeline({ wrapVenue: (v) => new SplittingVenue(v) });
    await p.tick('ETH-USD', '200');
    const position = await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '184');
    await p.drain();

    const [liquidation] = p.adapters.liquidations.all();
    expect(liquidation?.state).toBe('SETTLED_MARKET');
    const trades = answered(p, `${liquidation!.id}:market`);
    expect(liquidation!.marketFills.length).toBeLessThanOrEqual(MAX_FILLS_PER_ORDER);
    // The settlement is the close of every trade, exactly.
    const feeRate = marketConfig(p.config, 'ETH-USD').liquidationFee;
    const close = settleClose(position as PositionRecord, trades, feeRate);
    expect(liquidation!.settlement).toMatchObject({
      marketClosedSize: close.closedSize,
      realizedPnl: close.realizedPnl,
      fee: close.fee,
      traderPayout: close.traderPayout,
    });
    expect(p.telemetry.warnings.some((w) => w.includes('kept as their totals'))).toBe(true);
    expectItemsFit(p);
    await expectExact(p);
  });

  it('a last-resort order of 10,000 fills (frozen, then stored as market fills) settles, its items under 400 KB', async () => {
    // Before: the freeze wrote the 10,000 fills into the context (about 450 KB of JSON), which DynamoDB refuses.
    const p = createPipeline({
      config: parseRiskConfig(AUCTION_ONLY),
      wrapVenue: (v) => new SplittingVenue(v),
    });
    await p.fund('100000');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.open('SHORT', '10', '150', '400'); // the other side holds no profit at 184
    await p.tick('ETH-USD', '184');
    await p.drain();

    const slices = p.adapters.liquidations.all();
    expect(slices.length).toBeGreaterThan(0);
    for (const l of slices) {
      expect(l.state).toMatch(/^SETTLED_(MARKET|INSURANCE)$/);
      const trades = answered(p, `${l.id}:last-resort:0`);
      expect(l.settlement?.lastResortClosedSize).toBe(trades.reduce((t, f) => t + f.size, 0n));
      expect(l.context?.settle?.lastResortFills?.length).toBeLessThanOrEqual(MAX_FILLS_PER_ORDER);
    }
    expectItemsFit(p);
    await expectExact(p);
  });
});

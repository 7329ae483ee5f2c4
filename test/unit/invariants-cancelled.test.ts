import { describe, expect, it } from 'vitest';
import { parseBase, parsePrice } from '../../shared/domain/units.ts';
import type { LiquidationRecord, Venue } from '../../shared/ports/index.ts';
import { CountingVenue, checkVenueOrders } from '../support/invariants.ts';

describe('invariants: a cancelled liquidation (last-resort-recovered)', () => {
  it('flags a CANCELLED liquidation whose last-resort order executed fills (recorded nowhere)', async () => {
    // Since last-resort-recovered a liquidation is cancelled after its last-resort orders: one that filled must
    // never end CANCELLED, and the checker is the oracle that would say so.
    const fill = { price: parsePrice('170'), size: parseBase('10') };
    const inner = {
      placeIoc: async (order: { clientOrderId: string }) => ({
        clientOrderId: order.clientOrderId,
        fills: order.clientOrderId.endsWith(':last-resort:1') ? [fill] : [],
      }),
      quote: async () => ({}),
    } as unknown as Venue;
    const venue = new CountingVenue(inner);
    const id = 'p1:0';
    const reference = { mark: parsePrice('184'), atMs: 0 };
    for (const clientOrderId of [`${id}:market`, `${id}:last-resort:0`, `${id}:last-resort:1`])
      await venue.placeIoc({
        clientOrderId,
        symbol: 'ETH-USD',
        direction: 'SELL',
        size: parseBase('10'),
        limitPrice: 1n,
        reference,
      } as never);
    const cancelled = {
      id,
      state: 'CANCELLED',
      marketFills: [],
      positionId: 'p1',
    } as unknown as LiquidationRecord;
    const { problems } = checkVenueOrders(venue, [cancelled]);
    expect(problems).toEqual([
      `venue: ${id} is CANCELLED but ${id}:last-resort:1 executed [1000000000@17000000000]`,
    ]);
  });
});

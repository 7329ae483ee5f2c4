import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { marketConfig } from '../../shared/domain/config.ts';
import { parseBase } from '../../shared/domain/units.ts';
import { parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { LAST_RESORT_WAITS } from '../../shared/services/liquidation.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * An order under the exchange's lot is answered with no fills (integrate50-sub-lot-refused), and the consumer does not
 * know the lot. A remainder under it that no provider and no ADL counterparty takes comes to the last resort, which no
 * book fills: what happens then is what docs/VENUE.md and DEPLOY.md's runbook must say (review50-integrate-sub-lot-stuck).
 */

const flat = (file: string) =>
  readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8').replace(/\s+/g, ' ');

describe('a remainder under the exchange lot, no provider, no ADL counterparty', () => {
  it('waits about 4 hours on last-resort orders answered with no fills, then dead-letters; the position stays LIQUIDATING', async () => {
    const lot = parseBase('0.001');
    const p = createPipeline({ venue: { markets: { 'ETH-USD': { lotSize: lot } } } });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    // 6.0005 ETH: the market order sells the 6.000 of whole lots, 0.0005 is left (under the 0.001 dust too).
    const opened = await p.open('LONG', '6.0005', '200', '80');
    expect(marketConfig(p.config, 'ETH-USD').dustSize).toBeGreaterThan(parseBase('0.0005'));
    const start = p.clock.nowMs();
    await p.tick('ETH-USD', '190');
    await p.drain(8 * 3600).catch(() => undefined);

    const [first, rest] = p.adapters.liquidations.all();
    expect(first?.state).toBe('SETTLED_MARKET');
    expect(first?.settlement?.carriedSize).toBe(parseBase('0.0005'));
    // The rest's market order and every last resort were answered with no fills: no venue failure counted.
    expect(rest?.remainingSize).toBe(parseBase('0.0005'));
    expect(rest?.marketFills).toEqual([]);
    expect(p.telemetry.total('VenueOrderFailures')).toBe(0);
    // A last-resort order at each look (LastResortAlarm counts them), though the book was there all along.
    expect(p.telemetry.total('LastResortOrders')).toBeGreaterThanOrEqual(LAST_RESORT_WAITS);
    const quote = await p.venue.quote('ETH-USD');
    expect(quote.bid).toBeDefined();
    // Dead-lettered as waterfall/no-liquidity, about 4 hours on.
    const letters = p.adapters.liquidationDeadLetters.pending();
    expect(letters.map((m) => parseLiquidationMessage(m.body).liquidationId)).toEqual([rest!.id]);
    expect(p.errors.at(-1)).toMatch(/waterfall\/no-liquidity: .* 24\d min\)$/);
    expect(p.clock.nowMs() - start).toBeGreaterThan(4 * 3600_000);
    // Not terminal: the position keeps the remainder and its collateral, LIQUIDATING.
    const position = await p.adapters.positions.get(opened.id);
    expect(position).toMatchObject({ state: 'LIQUIDATING', size: parseBase('0.0005') });
    expect(position!.collateral).toBeGreaterThan(0n);

    // Redriven, it dead-letters again within minutes: a last-resort order at each receive, filling nothing.
    const orders = p.telemetry.total('LastResortOrders');
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    const redriven = p.clock.nowMs();
    await p.drain(3600).catch(() => undefined);
    expect(p.adapters.liquidationDeadLetters.pending()).toHaveLength(2);
    expect(p.telemetry.total('LastResortOrders') - orders).toBe(5);
    expect(p.clock.nowMs() - redriven).toBeLessThan(10 * 60_000);
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({ state: 'LIQUIDATING' });

    // What the pages say of it.
    const venue = flat('docs/VENUE.md');
    expect(venue).toContain(
      'a last resort of such a remainder (one no provider and no ADL counterparty took) fills nothing however full the book: after its waits (about 4 hours) it is dead-lettered as `waterfall/no-liquidity`, its position left `LIQUIDATING` with the remainder and its collateral, and a redrive dead-letters it again',
    );
    const deploy = flat('docs/DEPLOY.md');
    expect(deploy).toContain(
      'unless what it has left is under the exchange\'s lot or minimum size (`backstop liquidations show <liquidationId>`: its size left; the adapter answers such an order with no fills, the book full or not: docs/VENUE.md, "What it must do")',
    );
    expect(deploy).toContain(
      'Then no redrive sells it: it dead-letters again within minutes, each receive a last-resort order filling nothing.',
    );
    expect(deploy).toContain(
      "A slice under the exchange's lot or minimum pages it too, the book full: its orders are answered with no fills",
    );
  });
});

import { describe, expect, it } from 'vitest';
import { fillEdge, MAX_PROVIDER_FILLS_KEPT, providerFillsRead } from '../../shared/domain/provider-fills.ts';
import { parseBase } from '../../shared/domain/units.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * What a provider won, on its own record (providers48-fills-on-record): before, an auction's fills were kept on the
 * auction alone, and a provider could not see what it bought without reading every auction.
 */
describe("an auction's fill records on its provider, in the write that takes its capital", () => {
  it.each([
    ['SELL (a long closed: the provider buys)', 'LONG', '184'],
    ['BUY (a short closed: the provider sells)', 'SHORT', '216'],
  ] as const)('%s', async (_name, side, crash) => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    await p.fund('100000');
    await p.open(side, '10', '200', '200');
    await p.provider('lp-1', '100000', '0.02', '1');
    await p.provider('lp-2', '100000', '0.03', '2');
    p.venue.faults.emptyBooks.add('ETH-USD'); // the whole slice goes to the auction

    await p.tick('ETH-USD', crash);
    await p.drain();

    const auctions = p.adapters.auctions.all();
    const mark = (await p.adapters.markets.get('ETH-USD'))!.lastTick!.markPrice;
    const direction = side === 'LONG' ? 'SELL' : 'BUY';
    for (const id of ['lp-1', 'lp-2']) {
      const record = (await p.adapters.providers.get(id))!;
      // Every fill of it, in the order the auctions took them (slices one after the other).
      const won = auctions.flatMap((a) =>
        a.fills.filter((f) => f.providerId === id).map((f) => ({ ...f, liquidationId: a.liquidationId })),
      );
      expect(won.length).toBeGreaterThan(0);
      expect(providerFillsRead(record.fills)).toBe(true);
      if (!providerFillsRead(record.fills)) return;
      const shown = won.map((f) => ({
        liquidationId: f.liquidationId,
        step: expect.any(Number),
        symbol: 'ETH-USD',
        direction,
        size: f.size,
        price: f.price,
        cost: f.cost,
        mark,
        edge: fillEdge(direction, f.size, mark, f.cost!),
        atMs: expect.any(Number),
      }));
      // Bought (or sold) under (over) the mark by its discount: an edge above 0.
      for (const f of shown) expect(f.edge).toBeGreaterThan(0n);
      const sum = (values: bigint[]) => values.reduce((x, y) => x + y, 0n);
      const size = sum(won.map((f) => f.size));
      const cost = sum(won.map((f) => f.cost!));
      const edge = sum(shown.map((f) => f.edge));
      expect(record.fills).toEqual({
        total: won.length,
        recent: shown.slice(-MAX_PROVIDER_FILLS_KEPT),
        byMarket: {
          'ETH-USD':
            direction === 'SELL'
              ? { fills: won.length, bought: size, paid: cost, sold: 0n, received: 0n, edge }
              : { fills: won.length, bought: 0n, paid: 0n, sold: size, received: cost, edge },
        },
        sinceMs: expect.any(Number),
      });
      // The auction keeps when each fill was made as the record does, the fills the record let go included
      // (review52-support-fill-times-on-auction): its step, that step's time and mark.
      const times = (f: { step?: number; atMs?: number; mark?: bigint }) => [f.step, f.atMs, f.mark];
      expect(won.slice(-MAX_PROVIDER_FILLS_KEPT).map(times)).toEqual(record.fills.recent.map(times));
      for (const f of won)
        expect(f).toMatchObject({ step: expect.any(Number), atMs: expect.any(Number), mark });
      // One write a fill: the capital and the fill together.
      expect(record.capital).toBe(100_000_000_000n - cost);
      expect(record.version).toBe(won.length);
    }
    expect((await p.check()).violations).toEqual([]);
  });

  it('a registration with new terms, and one restating its capital, keeps what the provider won', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.fund('100000');
    await p.open('LONG', '10', '200', '200');
    const admin = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    const register = (over: Record<string, unknown>) =>
      handleAdmin(
        {
          action: 'registerProvider',
          id: 'lp-1',
          maxDiscount: '0.02',
          maxLot: '1',
          symbols: ['ETH-USD'],
          ...over,
        },
        admin,
      );
    expect(await register({ capital: '100000' })).toMatchObject({ ok: true });
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    await p.drain();
    const won = (await p.adapters.providers.get('lp-1'))!;
    expect(providerFillsRead(won.fills) && won.fills.total).toBeGreaterThan(0);

    // Before, the registration's write built the record from its terms alone: the fills were gone.
    expect(await register({ maxDiscount: '0.01', maxLot: '3' })).toMatchObject({ ok: true });
    const reterm = (await p.adapters.providers.get('lp-1'))!;
    expect(reterm.maxLot).toBe(parseBase('3'));
    expect(reterm.fills).toEqual(won.fills);
    expect((await p.check()).violations).toEqual([]);
    expect(await register({ capital: '5000', expectedVersion: reterm.version })).toMatchObject({ ok: true });
    const recapitalized = (await p.adapters.providers.get('lp-1'))!;
    expect(recapitalized.capital).toBe(5_000_000_000n);
    expect(recapitalized.fills).toEqual(won.fills);
    // The capital check counts what a registration restates as capital used: only the fills are checked here.
    const { violations } = await p.check();
    expect(violations.filter((v) => !v.startsWith('providers: capital used'))).toEqual([]);
  });
});

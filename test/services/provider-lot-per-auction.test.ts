import { describe, expect, it } from 'vitest';
import { parseBase } from '../../shared/domain/units.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * A provider's maxLot is the largest lot it takes of one auction (ProviderRecord), not of each step: found by an
 * auction review in session 25, when a provider with room for 1 ETH took a whole 10 ETH lot in ten 90 s steps,
 * each 1 % further from the mark.
 */
describe("a provider's maxLot bounds what it takes of one auction", () => {
  it.each([
    ['SELL (a long closed)', 'LONG', '184'],
    ['BUY (a short closed)', 'SHORT', '216'],
  ] as const)(
    '%s: a provider with maxLot 1 ETH takes at most 1 ETH of one auction',
    async (_name, side, crash) => {
      const p = createPipeline();
      await p.tick('ETH-USD', '200'); // a market's first print waits for a second
      await p.tick('ETH-USD', '200');
      await p.open(side, '10', '200', '200');
      // Plenty of capital; its per-auction lot room is 1 ETH.
      await p.provider('lp-1', '100000', '0.02', '1');
      p.venue.faults.emptyBooks.add('ETH-USD'); // the market takes nothing: the whole slice goes to the auction

      await p.tick('ETH-USD', crash);
      await p.drain();

      const [liquidation] = p.adapters.liquidations.all();
      const auction = await p.adapters.auctions.get(`${liquidation?.id}:auction`);
      expect(auction).toBeDefined();
      const taken = (auction?.fills ?? [])
        .filter((f) => f.providerId === 'lp-1')
        .reduce((sum, f) => sum + f.size, 0n);
      expect(taken).toBe(parseBase('1'));
      // The rest went on down the waterfall, and the provider's record keeps its own lot room.
      expect(auction?.remainingLot).toBe(parseBase('9'));
      expect((await p.adapters.providers.get('lp-1'))?.maxLot).toBe(parseBase('1'));
      expect(liquidation?.state).toMatch(/^SETTLED_/);
    },
  );
});

/**
 * Noticed in session 28: maxLot is in base units of the auction's market, so one number for every market took 10
 * ETH (about 2,000 USD) or 10 BTC (about 100,000 USD). A provider can state its lot per market (maxLotBySymbol).
 */
describe("a provider's lot per market", () => {
  it('bounds what it takes of a BTC auction by its BTC lot, and of an ETH auction by its maxLot', async () => {
    const p = createPipeline();
    for (const _ of [1, 2]) {
      await p.tick('ETH-USD', '200');
      await p.tick('BTC-USD', '10000');
    }
    await p.fund('100000');
    await p.open('LONG', '1', '200', '20');
    await p.open('LONG', '0.2', '10000', '100', 'BTC-USD');
    const admin = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    const registered = await handleAdmin(
      {
        action: 'registerProvider',
        id: 'lp-m',
        capital: '1000000',
        maxDiscount: '0.02',
        maxLot: '10',
        maxLotBySymbol: { 'BTC-USD': '0.05' },
        symbols: ['ETH-USD', 'BTC-USD'],
      },
      admin,
    );
    expect(registered).toMatchObject({ ok: true });
    expect((await p.adapters.providers.get('lp-m'))?.maxLotBySymbol).toEqual({
      'BTC-USD': parseBase('0.05'),
    });
    p.venue.faults.emptyBooks.add('ETH-USD');
    p.venue.faults.emptyBooks.add('BTC-USD');
    await p.tick('ETH-USD', '184');
    await p.tick('BTC-USD', '9400');
    await p.drain();

    // The first BTC auction (the 0.2 BTC slice) sold 0.05 BTC to it, and so did each next slice's auction.
    const btc = p.adapters.auctions.all().filter((a) => a.symbol === 'BTC-USD');
    expect(btc[0]?.lot).toBe(parseBase('0.2'));
    expect(btc.map((a) => a.fills.reduce((sum, f) => sum + f.size, 0n))).toEqual(
      btc.map(() => parseBase('0.05')),
    );
    // The ETH lot is not bounded by the BTC one: the whole ETH slice sold to it.
    const eth = p.adapters.auctions.all().filter((a) => a.symbol === 'ETH-USD');
    expect(eth.map((a) => a.remainingLot)).toEqual(eth.map(() => 0n));
    expect(eth.flatMap((a) => a.fills).reduce((sum, f) => sum + f.size, 0n)).toBe(parseBase('1'));
    expect(p.adapters.liquidations.all().every((l) => l.state.startsWith('SETTLED_'))).toBe(true);
    expect(await p.check()).toMatchObject({ violations: [] });
  });
});

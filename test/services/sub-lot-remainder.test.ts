import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RISK_CONFIG_INPUT,
  marketConfig,
  parseRiskConfig,
  type RiskConfig,
} from '../../shared/domain/config.ts';
import { parseBase } from '../../shared/domain/units.ts';
import { parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { LAST_RESORT_WAITS } from '../../shared/services/liquidation.ts';
import { createPipeline, withHeldMarks } from '../support/pipeline.ts';

/**
 * The exchange fills whole lots only: an order under its lot is answered with no fills (integrate50-sub-lot-refused).
 * With the market's lotSize in the risk configuration the consumer knows it (lot51-consumer-knows-lot): a market
 * order sells a slice's whole lots, the part under a lot goes straight to the auction and ADL, and a remainder under
 * a lot that neither takes ends at once as `waterfall/sub-lot-remainder`, no order placed. Without it (the lot left
 * out), the consumer does not know the lot, and such a remainder waits about 4 hours on last-resort orders answered
 * with no fills (review50-integrate-sub-lot-stuck).
 */

const flat = (file: string) =>
  readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8').replace(/\s+/g, ' ');

const LOT = '0.001';

/** The defaults with ETH-USD's lotSize set to the exchange's. */
const withLot = (lotSize: string): RiskConfig =>
  parseRiskConfig({
    ...DEFAULT_RISK_CONFIG_INPUT,
    markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => (m.symbol === 'ETH-USD' ? { ...m, lotSize } : m)),
  });

/**
 * A pipeline on an exchange of lot 0.001 (the risk configuration's lot `configured` or none), and a long of
 * 6.0005 ETH from 200 with 80 USD, opened before the lot was configured (not a whole number of lots), liquidated
 * whole at 190: its market order sells 6.000 and 0.0005 is left (under the 0.001 dust too).
 */
async function subLotLong(configured: string | undefined) {
  const p = createPipeline({
    ...(configured ? { config: withLot(configured) } : {}),
    venue: { markets: { 'ETH-USD': { lotSize: parseBase(LOT) } } },
  });
  await p.tick('ETH-USD', '200');
  await p.tick('ETH-USD', '200');
  const opened = await p.open('LONG', '6.0005', '200', '80');
  expect(marketConfig(p.config, 'ETH-USD').dustSize).toBeGreaterThan(parseBase('0.0005'));
  const liquidate = async (seconds: number) => {
    await p.tick('ETH-USD', '190');
    await p.drain(seconds).catch(() => undefined);
  };
  return { p, opened, liquidate };
}

describe('a remainder under the exchange lot, the lot configured (lotSize)', () => {
  it('no provider, no ADL counterparty: dead-lettered within minutes as waterfall/sub-lot-remainder, no order under the lot; a provider registered, a redrive closes it', async () => {
    const { p, opened, liquidate } = await subLotLong(LOT);
    const start = p.clock.nowMs();
    await liquidate(3600);

    const [first, rest] = p.adapters.liquidations.all();
    // The market order of the whole slice sold its whole lots; the part under one was carried.
    expect(first?.context?.marketOrderSize).toBe(parseBase('6'));
    expect(p.orders.orders.get(`${first!.id}:market`)?.order.size).toBe(parseBase('6'));
    expect(first?.state).toBe('SETTLED_MARKET');
    expect(first?.settlement?.carriedSize).toBe(parseBase('0.0005'));
    // The rest, all under a lot: no market order and no last resort ever reached the venue.
    expect(rest?.context?.marketOrderSize).toBe(0n);
    expect(rest?.marketFills).toEqual([]);
    expect([...p.orders.orders.keys()]).toEqual([`${first!.id}:market`]);
    expect(p.telemetry.total('LastResortOrders')).toBe(0);
    expect(p.telemetry.total('VenueOrderFailures')).toBe(0);
    // Dead-lettered with its own reason, within minutes (its receives), not after 4 hours of waits.
    const letters = p.adapters.liquidationDeadLetters.pending();
    expect(letters.map((m) => parseLiquidationMessage(m.body).liquidationId)).toEqual([rest!.id]);
    expect(p.errors.at(-1)).toMatch(
      /waterfall\/sub-lot-remainder: .*: 0\.0005 ETH left, under ETH-USD's lot 0\.001; no provider could bid for it, ADL closes its counterparties in whole lots only, and the venue fills whole lots only$/,
    );
    expect(p.errors.some((e) => e.includes('no-liquidity'))).toBe(false);
    expect(p.clock.nowMs() - start).toBeLessThan(15 * 60_000);
    // Not terminal yet: the position keeps the remainder and its collateral, LIQUIDATING.
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({
      state: 'LIQUIDATING',
      size: parseBase('0.0005'),
    });

    // Redriven as it is, it dead-letters again, still placing nothing.
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    await p.drain(3600).catch(() => undefined);
    expect(p.adapters.liquidationDeadLetters.pending()).toHaveLength(2);
    expect(p.orders.orders.size).toBe(1);

    // What the runbook says: a provider whose terms take it (an auction fill of any size), then a redrive.
    await p.provider('lp-dust', '10', '0.05', '0.01');
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    await p.drain(3600);
    expect(await p.adapters.liquidations.get(rest!.id)).toMatchObject({ state: 'SETTLED_AUCTION' });
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({ state: 'CLOSED' });
    expect(p.orders.orders.size).toBe(1);

    // What the pages say of it.
    expect(flat('docs/VENUE.md')).toContain(
      'a part under a lot (a position opened before the lot was set, or raised) goes straight to the auction, whose fills take any size (ADL closes its counterparties in whole lots, leaving none of them off the lot: lot52-adl-whole-lots), and a slice all under a lot that the auction does not take is dead-lettered within minutes as `waterfall/sub-lot-remainder`, no order placed; a provider and a redrive then close it, in an auction of its own again if its first ended with no fill',
    );
    const deploy = flat('docs/DEPLOY.md');
    expect(deploy).toContain(
      "A liquidation dead-lettered as `waterfall/sub-lot-remainder: <liquidationId>: <size> left, under <market>'s lot <lot>; <what the auction layer did>, ADL closes its counterparties in whole lots only, and the venue fills whole lots only`",
    );
    expect(deploy).toContain(
      'What takes it is an auction: register or restate a provider whose `maxLot` and capital take the size (`backstop seed providers`), then redrive: the redrive opens an auction for it, again if its own ended with no fill',
    );
    // Each of the reason's words for what the auction layer did, as the consumer writes them.
    const freeze = flat('shared/services/liquidation/freeze.ts');
    for (const said of [
      'no provider could bid for it',
      'its auction ended with no provider taking it',
      'no auction opens once its plan is made (SETTLING)',
      'the market-only strategy runs no auction',
    ]) {
      expect(deploy).toContain(`\`${said}\``);
      expect(freeze).toContain(`'${said}'`);
    }
  });

  it("a provider takes the part under a lot in the slice's own auction: one liquidation, the position closed", async () => {
    const { p, opened, liquidate } = await subLotLong(LOT);
    await p.provider('lp-1', '1000', '0.05', '1');
    await liquidate(3600);
    const all = p.adapters.liquidations.all();
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ state: 'SETTLED_AUCTION' });
    expect(all[0]!.settlement).toMatchObject({
      marketClosedSize: parseBase('6'),
      auctionClosedSize: parseBase('0.0005'),
      carriedSize: 0n,
    });
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({ state: 'CLOSED' });
    expect(p.errors).toEqual([]);
  });

  it('an ADL counterparty in profit does not take it (its close would leave it off the lot): dead-lettered; a provider and a redrive close it', async () => {
    const { p, opened, liquidate } = await subLotLong(LOT);
    // A short of 1 ETH from 200, in profit at 190.
    const short = await p.open('SHORT', '1', '200', '100');
    await liquidate(3600);
    const [first, rest] = p.adapters.liquidations.all();
    // Before (lot51): ADL closed 0.0005 of the short in the first slice, leaving it 0.9995, off the lot.
    expect(first?.settlement).toMatchObject({
      marketClosedSize: parseBase('6'),
      adlClosedSize: 0n,
      carriedSize: parseBase('0.0005'),
    });
    expect(await p.adapters.positions.get(short.id)).toMatchObject({ size: parseBase('1'), state: 'OPEN' });
    const letters = p.adapters.liquidationDeadLetters.pending();
    expect(letters.map((m) => parseLiquidationMessage(m.body).liquidationId)).toEqual([rest!.id]);
    expect(rest?.context?.settle).toBeUndefined();
    expect(await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, rest!.id)).toEqual([]);

    await p.provider('lp-dust', '10', '0.05', '0.01');
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    await p.drain(3600);
    expect(await p.adapters.liquidations.get(rest!.id)).toMatchObject({ state: 'SETTLED_AUCTION' });
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({ state: 'CLOSED' });
    expect(await p.adapters.positions.get(short.id)).toMatchObject({ size: parseBase('1') });
  });
});

describe('a remainder under the lot in the market-only baseline', () => {
  it('says there is no auction, not that no provider took it', async () => {
    const p = createPipeline({
      strategy: 'market-only',
      config: withLot(LOT),
      venue: { markets: { 'ETH-USD': { lotSize: parseBase(LOT) } } },
    });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '6.0005', '200', '80');
    await p.tick('ETH-USD', '190');
    await p.drain(3600).catch(() => undefined);
    const [first, rest] = p.adapters.liquidations.all();
    expect(first?.settlement).toMatchObject({
      marketClosedSize: parseBase('6'),
      carriedSize: parseBase('0.0005'),
    });
    expect(p.adapters.auctions.all()).toEqual([]);
    const letters = p.adapters.liquidationDeadLetters.pending();
    expect(letters.map((m) => parseLiquidationMessage(m.body).liquidationId)).toEqual([rest!.id]);
    // Before: "no provider or ADL counterparty took it", where no auction runs.
    expect(p.errors.at(-1)).toMatch(
      /waterfall\/sub-lot-remainder: .*: 0\.0005 ETH left, under ETH-USD's lot 0\.001; the market-only strategy runs no auction, ADL closes its counterparties in whole lots only, and the venue fills whole lots only$/,
    );
  });
});

describe('a slice under the lot whose own auction ran and ended with no fill', () => {
  it("ends its auction and goes to the liquidations' dead-letter queue, as the runbook says, not its auction step's", async () => {
    const p = createPipeline({
      config: withLot(LOT),
      venue: { markets: { 'ETH-USD': { lotSize: parseBase(LOT) } } },
    });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    // A long of 0.0005 ETH, opened before the lot: its one slice is all under a lot, no market order.
    const opened = await p.open('LONG', '0.0005', '200', '0.006');
    // A provider whose bid (5 % under the mark) the curve reaches only after some steps: the auction opens for it.
    await p.provider('lp-1', '1000', '0.05', '1');
    await p.tick('ETH-USD', '190');
    await p.runUntil(p.clock.nowMs() + 5_000);
    const [slice] = p.adapters.liquidations.all();
    expect(slice?.context?.marketOrderSize).toBe(0n);
    const auction = p.adapters.auctions.all().find((a) => a.liquidationId === slice!.id);
    expect(auction).toMatchObject({ state: 'RUNNING', remainingLot: parseBase('0.0005') });
    // Its bids withdrawn while the auction sleeps: nobody fills, the auction ends, and nobody else takes the slice.
    await p.withdrawBids('lp-1');
    await p.drain(3600).catch(() => undefined);

    // Before: its auction step failed on every receive (the auction's end, written with the plan, never landed) and
    // was dead-lettered in the auction steps' queue, the auction RUNNING for good.
    expect((await p.adapters.auctions.get(auction!.id))?.state).not.toBe('RUNNING');
    expect(p.adapters.auctionDeadLetters.pending()).toEqual([]);
    const letters = p.adapters.liquidationDeadLetters.pending();
    expect(letters.map((m) => parseLiquidationMessage(m.body).liquidationId)).toEqual([slice!.id]);
    expect(p.errors.at(-1)).toMatch(
      /^liquidations: waterfall\/sub-lot-remainder: .*: 0\.0005 ETH left, under ETH-USD's lot 0\.001; its auction ended with no provider taking it, /,
    );
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({ state: 'LIQUIDATING' });

    // Redriven with the other side in profit (a short from 200 at 190): ADL takes none of it (whole lots only), and no
    // provider can bid: it dead-letters again.
    await p.open('SHORT', '1', '200', '100');
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    await p.drain(3600).catch(() => undefined);
    expect(p.adapters.liquidationDeadLetters.pending()).toHaveLength(2);
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({ state: 'LIQUIDATING' });

    // A provider registered and a redrive: an auction for it again (lot52-sub-lot-auction-again), which closes it.
    // Before, its auction having run, none opened: nothing could end it.
    await p.provider('lp-2', '1000', '0.05', '1');
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    await p.drain(3600);
    // Sold at the provider's bid, under the bankruptcy price: ADL covers the shortfall (money, no size).
    const settled = (await p.adapters.liquidations.get(slice!.id))!;
    expect(settled.state).toMatch(/^SETTLED_/);
    expect(settled.settlement?.auctionClosedSize).toBe(parseBase('0.0005'));
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({ state: 'CLOSED' });
    // The same auction, opened again past its old steps, filled by the new provider.
    const again = (await p.adapters.auctions.get(auction!.id))!;
    expect(again.fills.map((f) => [f.providerId, f.size])).toEqual([['lp-2', parseBase('0.0005')]]);
    expect(again.step).toBeGreaterThan(auction!.step + 1);
    const openings = (await p.adapters.liquidations.get(slice!.id))!.history.filter(
      (h) => h.state === 'AUCTION',
    );
    expect(openings.map((h) => h.note)).toEqual(['lot 50000', 'lot 50000 again']);
    expect((await p.check(2)).violations).toEqual([]);
  });
});

describe('a remainder waiting for the book when the lot is configured (a deploy that sets lotSize)', () => {
  it('places no more last-resort orders and dead-letters as waterfall/sub-lot-remainder; a provider and a redrive close it', async () => {
    const { p, opened, liquidate } = await subLotLong(undefined);
    await liquidate(30 * 60);
    const [, rest] = p.adapters.liquidations.all();
    expect(rest?.context?.lastResortAttempt).toBeGreaterThan(1);
    const orders = p.telemetry.total('LastResortOrders');
    expect(orders).toBeGreaterThan(1);
    expect(p.adapters.liquidationDeadLetters.pending()).toEqual([]);

    // The functions now run with the market's lot.
    Object.assign(p.deps, { config: withHeldMarks(withLot(LOT)) });
    const deployed = p.clock.nowMs();
    await p.drain(3600).catch(() => undefined);
    expect(p.telemetry.total('LastResortOrders')).toBe(orders);
    expect(p.errors.at(-1)).toMatch(
      /waterfall\/sub-lot-remainder: .*: 0\.0005 ETH left, under ETH-USD's lot 0\.001/,
    );
    const letters = p.adapters.liquidationDeadLetters.pending();
    expect(letters.map((m) => parseLiquidationMessage(m.body).liquidationId)).toEqual([rest!.id]);
    // Within its wait for the book (up to 15 minutes by now) and the receives' minutes.
    expect(p.clock.nowMs() - deployed).toBeLessThan(30 * 60_000);

    // A short from 200, in profit at 190: redriven, ADL takes none of it (whole lots only).
    await p.open('SHORT', '1', '200', '100');
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    await p.drain(3600).catch(() => undefined);
    expect(p.adapters.liquidationDeadLetters.pending()).toHaveLength(2);
    // A provider registered and a redrive: an auction, never opened for it (nobody could bid when it was handed
    // over), takes it. Before: ADL took it (SETTLED_ADL), the short left off the lot.
    await p.provider('lp-dust', '10', '0.05', '0.01');
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    await p.drain(3600);
    expect(await p.adapters.liquidations.get(rest!.id)).toMatchObject({ state: 'SETTLED_AUCTION' });
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({ state: 'CLOSED' });
    expect(p.telemetry.total('LastResortOrders')).toBe(orders);
  });
});

describe('a remainder under the exchange lot, the lot not configured (the market states no lotSize)', () => {
  it('waits about 4 hours on last-resort orders answered with no fills, then dead-letters; the position stays LIQUIDATING', async () => {
    const { p, opened, liquidate } = await subLotLong(undefined);
    const start = p.clock.nowMs();
    await liquidate(8 * 3600);

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
    expect(flat('docs/VENUE.md')).toContain(
      "With no `lotSize` (one unit, 1e-8) the consumer does not know the lot and takes `NONE` as from a book that filled nothing: a market order's slice goes on at once to the auction, then ADL; but a last resort of such a remainder (one no provider and no ADL counterparty took) fills nothing however full the book: after its waits (about 4 hours) it is dead-lettered as `waterfall/no-liquidity`, its position left `LIQUIDATING` with the remainder and its collateral, and a redrive dead-letters it again",
    );
    const deploy = flat('docs/DEPLOY.md');
    expect(deploy).toContain(
      'unless what it has left is under the exchange\'s lot or minimum size (`backstop liquidations show <liquidationId>`: its size left; the adapter answers such an order with no fills, the book full or not: docs/VENUE.md, "What it must do"), which happens to a market without `lotSize`',
    );
    expect(deploy).toContain(
      "Then no redrive sells it: it dead-letters again within minutes, each receive a last-resort order filling nothing. Set the market's `lotSize`",
    );
    expect(deploy).toContain(
      "On a market without `lotSize`, a slice under the exchange's lot or minimum pages it too, the book full: its orders are answered with no fills",
    );
  });
});

describe('a remainder under the lot against a counterparty of its very size under the lot', () => {
  it('is never planned on ADL (no SETTLING, nothing moved in the fund); a provider and a redrive close it', async () => {
    // Before (lot51): B's plan took the short (a transfer of 0.0005), A's plan took it too, was made again with nobody
    // left and stayed SETTLING, where no auction opens and what the plan moved stayed in the fund.
    const p = createPipeline({
      config: withLot(LOT),
      venue: { markets: { 'ETH-USD': { lotSize: parseBase(LOT) } } },
    });
    await p.fund('20');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    // Two longs of 0.0005 ETH and a short of 0.0005, all opened before the lot; the longs bankrupt at 175.
    const a = await p.open('LONG', '0.0005', '200', '0.01');
    const b = await p.open('LONG', '0.0005', '200', '0.01');
    const short = await p.open('SHORT', '0.0005', '200', '1');
    await p.tick('ETH-USD', '175');
    await p.drain(3600).catch(() => undefined);
    const of = (id: string) => p.adapters.liquidations.all().find((l) => l.positionId === id)!;
    for (const id of [a.id, b.id]) {
      expect(of(id).state).not.toBe('SETTLING');
      expect(of(id).context?.settle).toBeUndefined();
      expect(await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, of(id).id)).toEqual([]);
    }
    expect(await p.adapters.positions.get(short.id)).toMatchObject({
      size: parseBase('0.0005'),
      state: 'OPEN',
    });
    const letters = p.adapters.liquidationDeadLetters.pending();
    expect(letters.map((m) => parseLiquidationMessage(m.body).liquidationId).sort()).toEqual(
      [of(a.id).id, of(b.id).id].sort(),
    );
    expect(p.orders.orders.size).toBe(0);

    // A provider whose terms take them, and a redrive: each has its auction.
    await p.provider('lp-dust', '10', '0.05', '0.01');
    for (const letter of letters) await p.adapters.liquidationQueue.send(letter.body);
    await p.drain(3600);
    for (const id of [a.id, b.id]) {
      expect(of(id).state).toMatch(/^SETTLED_/);
      expect(of(id).settlement?.auctionClosedSize).toBe(parseBase('0.0005'));
      expect(await p.adapters.positions.get(id)).toMatchObject({ state: 'CLOSED' });
    }
    expect((await p.check(2)).violations).toEqual([]);
  }, 60_000);
});

describe('what the runbook says when nothing takes a remainder under the lot', () => {
  it('says plainly that it has no terminal state, how to keep it, and what to escalate', () => {
    const deploy = flat('docs/DEPLOY.md');
    expect(deploy).toContain(
      'else nothing ends it: such a liquidation has no terminal state, and no command closes it (under a lot, the auction is the only layer that can).',
    );
    expect(deploy).toContain(
      'within the 14 days SQS keeps it (a redrive sends it anew; the aging alarm pages again at 7 days held). While it is kept the DLQ alarm stays on and pages no new dead letter',
    );
    expect(deploy).toContain(
      "And escalate to the exchange's risk team with `backstop liquidations show <liquidationId>` (the position, the size left, its collateral and the mark, and the fund's journal entries a plan already made for it, which stay until it settles)",
    );
  });
});

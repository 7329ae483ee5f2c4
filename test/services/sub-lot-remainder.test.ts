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
import { crashOnceAt, createPipeline, withHeldMarks } from '../support/pipeline.ts';

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
      /waterfall\/sub-lot-remainder: .*: 0\.0005 ETH left, under ETH-USD's lot 0\.001; no provider or ADL counterparty took it/,
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
      'a part under a lot (a position opened before the lot was set, or raised) goes straight to the auction and ADL, which take any size (ADL hands it to a counterparty), and a slice all under a lot that neither takes is dead-lettered within minutes as `waterfall/sub-lot-remainder`, no order placed',
    );
    const deploy = flat('docs/DEPLOY.md');
    expect(deploy).toContain(
      "A liquidation dead-lettered as `waterfall/sub-lot-remainder: <liquidationId>: <size> left, under <market>'s lot <lot>`",
    );
    expect(deploy).toContain(
      'is `SETTLING` and goes on to ADL alone): register or restate a provider whose `maxLot` and capital take the size (`backstop seed providers`), then redrive; or ADL, planned again at each redrive, once the other side is in profit',
    );
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

  it('an ADL counterparty takes it (a transfer, any size): the position closed', async () => {
    const { p, opened, liquidate } = await subLotLong(LOT);
    // A short from 200, in profit at 190.
    const short = await p.open('SHORT', '1', '200', '100');
    await liquidate(3600);
    const all = p.adapters.liquidations.all();
    expect(all).toHaveLength(1);
    expect(all[0]!.settlement).toMatchObject({
      marketClosedSize: parseBase('6'),
      adlClosedSize: parseBase('0.0005'),
      carriedSize: 0n,
    });
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({ state: 'CLOSED' });
    // The counterparty now holds the part under a lot: its own liquidation would hand it on as this one did.
    expect(await p.adapters.positions.get(short.id)).toMatchObject({ size: parseBase('0.9995') });
    expect(p.errors).toEqual([]);
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
      /^liquidations: waterfall\/sub-lot-remainder: .*: 0\.0005 ETH left, under ETH-USD's lot 0\.001/,
    );
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({ state: 'LIQUIDATING' });

    // Redriven once the other side is in profit (a short from 200 at 190), ADL takes it.
    await p.open('SHORT', '1', '200', '100');
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    await p.drain(3600);
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({ state: 'CLOSED' });
    expect((await p.check(1)).violations).toEqual([]);
  });
});

describe('a remainder waiting for the book when the lot is configured (a deploy that sets lotSize)', () => {
  it('places no more last-resort orders: ADL is asked, then it dead-letters as waterfall/sub-lot-remainder; a counterparty in profit, a redrive closes it', async () => {
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

    // A short from 200, in profit at 190: redriven, ADL takes the remainder.
    await p.open('SHORT', '1', '200', '100');
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    await p.drain(3600);
    expect(await p.adapters.liquidations.get(rest!.id)).toMatchObject({ state: 'SETTLED_ADL' });
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

describe('a remainder under the lot whose plan ADL took, made again with nobody left (SETTLING)', () => {
  it('a provider and a redrive do not take it (no auction once SETTLING); a counterparty in profit and a redrive do, with what the fund already moved', async () => {
    // A's delivery dies right after the fund's first movement of its plan (its plan froze the short).
    const crash = crashOnceAt('ledger.apply');
    const p = createPipeline({
      config: withLot(LOT),
      venue: { markets: { 'ETH-USD': { lotSize: parseBase(LOT) } } },
      crashHook: crash.hook,
    });
    await p.fund('20');
    crash.arm();
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    // Two longs of 0.0005 ETH, opened before the lot, bankrupt at 175; one short of 0.0005 takes one of them.
    const a = await p.open('LONG', '0.0005', '200', '0.01');
    const b = await p.open('LONG', '0.0005', '200', '0.01');
    await p.open('SHORT', '0.0005', '200', '1');
    await p.tick('ETH-USD', '175');
    await p.drain(3600).catch(() => undefined);
    expect(crash.crashed()).toBe(true);
    const of = (id: string) => p.adapters.liquidations.all().find((l) => l.positionId === id)!;
    expect(of(b.id).state).toBe('SETTLED_ADL');
    // A, planned again with nobody left: SETTLING, dead-lettered as a remainder under the lot, no order placed.
    expect(of(a.id).state).toBe('SETTLING');
    expect(of(a.id).context?.settle?.superseded).toBe(true);
    expect(of(a.id).context?.auctionId).toBeUndefined();
    expect(p.errors.at(-1)).toMatch(/waterfall\/sub-lot-remainder: p1:0: 0\.0005 ETH left/);
    const letters = p.adapters.liquidationDeadLetters.pending();
    expect(letters.map((m) => parseLiquidationMessage(m.body).liquidationId)).toEqual([of(a.id).id]);
    expect(p.orders.orders.size).toBe(0);
    // What its plan moved stays in the fund, booked by no settlement.
    const moved = await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, of(a.id).id);
    expect(moved.length).toBeGreaterThan(0);

    // A provider whose terms take it, and a redrive: no auction starts for a SETTLING slice; it dead-letters again.
    await p.provider('lp-dust', '10', '0.05', '0.01');
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    await p.drain(3600).catch(() => undefined);
    expect(p.adapters.auctions.all()).toEqual([]);
    expect(of(a.id).state).toBe('SETTLING');
    expect(p.adapters.liquidationDeadLetters.pending()).toHaveLength(2);

    // A short in profit at 175, and a redrive: ADL takes it, the fund's earlier movements counted.
    await p.open('SHORT', '1', '200', '100');
    await p.adapters.liquidationQueue.send(letters[0]!.body);
    await p.drain(3600);
    expect(of(a.id).state).toBe('SETTLED_ADL');
    expect(await p.adapters.positions.get(a.id)).toMatchObject({ state: 'CLOSED' });

    // What the runbook says of it.
    expect(flat('docs/DEPLOY.md')).toContain(
      'What takes it is an auction, if the slice has had none and has not reached `SETTLING` (`liquidations show`: no auction; a slice whose plan ADL took, then made again with nobody left, is `SETTLING` and goes on to ADL alone)',
    );
  }, 60_000);
});

describe('what the runbook says when nothing takes a remainder under the lot', () => {
  it('says plainly that it has no terminal state, how to keep it, and what to escalate', () => {
    const deploy = flat('docs/DEPLOY.md');
    expect(deploy).toContain(
      'Else nothing ends it: such a liquidation has no terminal state, and no command closes it (under a lot, the auction and ADL are the only layers that can).',
    );
    expect(deploy).toContain(
      'within the 14 days SQS keeps it (a redrive sends it anew; the aging alarm pages again at 7 days held). While it is kept the DLQ alarm stays on and pages no new dead letter',
    );
    expect(deploy).toContain(
      "And escalate to the exchange's risk team with `backstop liquidations show <liquidationId>` (the position, the size left, its collateral and the mark, and the fund's journal entries a plan already made for it, which stay until it settles)",
    );
  });
});

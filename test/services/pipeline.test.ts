import { describe, expect, it, vi } from 'vitest';
import { topEntriesForAdl } from '../../shared/domain/adl.ts';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import type { Side } from '../../shared/domain/model.ts';
import { formatQuote, parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import {
  InjectedCrash,
  type Ledger,
  type LiquidationRecord,
  type PositionRecord,
  type Write,
} from '../../shared/ports/index.ts';
import { parseAuctionStepMessage, parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { AdlQueue, AdlSnapshots, readAdlTop } from '../../shared/services/adl-snapshots.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import {
  AuctionContentionError,
  MAX_FILLS_PER_AUCTION,
  MAX_FILLS_PER_STEP,
  processAuctionStep,
} from '../../shared/services/auction.ts';
import type { SettlementDeps } from '../../shared/services/context.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import {
  LAST_RESORT_WAITS,
  LiquidationBusyError,
  lastResortWaitSeconds,
  MAX_ADL_COUNTERPARTIES,
  processLiquidation,
} from '../../shared/services/liquidation.ts';
import {
  handleTick,
  type MarginCheckDeps,
  withLiquidationPrice,
} from '../../shared/services/margin-check.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';
import { createPipeline, type Pipeline, T0 } from '../support/pipeline.ts';
import { AUCTION_ONLY, DEEP_AUCTION } from '../support/risk-configs.ts';

/**
 * A liquidation message's body: these fields, then when it is due (dueLiquidationMessage). A wait for the book's
 * names its wait after its count (any id: waits43-one-chain), then the one it followed if any
 * (review43b-wait-before-named).
 */
const dueBody = (fields: Record<string, unknown>) =>
  expect.stringMatching(
    new RegExp(
      `^${JSON.stringify(fields)
        .slice(0, -1)
        .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
        .replace(
          /("lastResortWaits":\d+)/,
          '$1,"lastResortWaitId":"[^"]+"(,"lastResortWaitAfter":"[^"]+")?',
        )},"dueAtMs":\\d+}$`,
    ),
  );

/** The services wired on the embedded adapters, one test per waterfall layer and per delivery hazard. */

async function liquidationsOf(p: Pipeline) {
  return p.adapters.liquidations.all();
}

async function expectReconciled(p: Pipeline) {
  const report = await reconcileAccount(p.adapters.ledger, INSURANCE_ACCOUNT, p.telemetry);
  expect(report.difference).toBe(0n);
  expect(report.problems).toEqual([]);
  expect(report.minBalance).toBeGreaterThanOrEqual(0n);
  return report;
}

describe('market layer', () => {
  it('closes a crossed long on the book within the slippage bound and credits the fee to the fund', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    const position = await p.open('LONG', '10', '200', '200'); // 10x; liquidation price ~184.62
    expect(position.liquidationPrice).toBe(parsePrice('184.61538462'));

    const outcome = await p.tick('ETH-USD', '184');
    expect(outcome).toMatchObject({ status: 'accepted', enqueued: 1 });
    await p.drain();

    const [liquidation] = await liquidationsOf(p);
    expect(liquidation?.state).toBe('SETTLED_MARKET');
    expect(liquidation?.marketFills.length).toBeGreaterThan(0);
    for (const fill of liquidation?.marketFills ?? []) {
      expect(fill.price).toBeGreaterThanOrEqual((parsePrice('184') * 97n) / 100n);
    }
    const fund = await p.adapters.ledger.balance(INSURANCE_ACCOUNT);
    expect(fund.balance).toBeGreaterThan(0n);
    expect(liquidation?.settlement?.fee).toBe(fund.balance);
    const after = await p.adapters.positions.get(position.id);
    expect(after?.state === 'CLOSED' || after?.size !== position.size).toBe(true);
    await expectReconciled(p);
    expect(p.errors).toEqual([]);
  });

  it('does not touch a position the tick does not cross', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    const position = await p.open('LONG', '10', '200', '200');
    expect(await p.tick('ETH-USD', '185')).toMatchObject({ status: 'accepted', enqueued: 0 });
    await p.drain();
    expect(await liquidationsOf(p)).toEqual([]);
    expect((await p.adapters.positions.get(position.id))?.state).toBe('OPEN');
  });
});

describe('cancellation', () => {
  it('cancels when the position is healthy again at the latest mark and puts it back in the index', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    const position = await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '184');
    await p.tick('ETH-USD', '199'); // recovers before the consumer runs
    await p.drain();

    const [liquidation] = await liquidationsOf(p);
    expect(liquidation?.state).toBe('CANCELLED');
    expect(liquidation?.marketFills).toEqual([]);
    const after = await p.adapters.positions.get(position.id);
    expect(after?.state).toBe('OPEN');
    const crossed = await p.adapters.positions.queryCrossed('ETH-USD', 'LONG', parsePrice('184'), 10);
    expect(crossed.positions.map((x) => x.id)).toEqual([position.id]);
    expect(p.telemetry.total('LiquidationsCancelled')).toBe(1);
  });
});

/** Delivers the liquidation queue once (the auctions start; their steps wait). */
async function startLiquidations(p: Pipeline): Promise<void> {
  for (const m of await p.adapters.liquidationQueue.receive(10, 30)) {
    await p.handlers.liquidation(m);
    await p.adapters.liquidationQueue.delete(m.receiptHandle);
  }
}

/**
 * A pipeline whose long's auction started (its provider bids 2 % under, beyond the 6 % half spread's market
 * order), then lost its only bidder; the short is at a loss at 184 (no ADL counterparty).
 */
async function auctionWhoseBidderLeft(options: { readonly fund?: string } = {}) {
  const p = createPipeline({
    venue: { defaults: { baseHalfSpreadPpm: 60_000, maxHalfSpreadPpm: 60_000 } },
  });
  if (options.fund) await p.fund(options.fund);
  await p.tick('ETH-USD', '200');
  await p.open('LONG', '10', '200', '200');
  await p.open('SHORT', '10', '150', '400');
  await p.provider('lp-1', '100000', '0.02', '100');
  await p.tick('ETH-USD', '184');
  await startLiquidations(p);
  const [started] = await liquidationsOf(p);
  expect(started?.state).toBe('AUCTION');
  await p.withdrawBids('lp-1');
  return { p, started: started! };
}

/** The auction's next step message, the clock moved on until it is due. */
async function dueAuctionStep(p: Pipeline) {
  for (let i = 0; i < 2000; i++) {
    const [step] = await p.adapters.auctionQueue.receive(1, 30);
    if (step) return parseAuctionStepMessage(step.body);
    p.clock.advance(10_000);
  }
  throw new Error('no auction step came due');
}

/** The pipeline's deps with a venue where orders matching `held` wait until released. */
function venueHolding(p: Pipeline, held: (clientOrderId: string) => boolean) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let entered!: () => void;
  const placed = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const deps: SettlementDeps = {
    ...p.deps,
    venue: {
      placeIoc: async (order) => {
        if (held(order.clientOrderId)) {
          entered();
          await released;
        }
        return p.deps.venue.placeIoc(order);
      },
      quote: (symbol, reference) => p.deps.venue.quote(symbol, reference),
    },
  };
  return { deps, placed, release };
}

/** The pipeline's second tick at `price`, to invoke handleTick by hand (segment by segment). */
const secondTick = (p: Pipeline, price: string) => ({
  symbol: 'ETH-USD',
  markPrice: parsePrice(price),
  timestampMs: p.clock.nowMs(),
  sequence: 2,
  source: 'test',
});

describe('ticks', () => {
  it('rejects a stale (out-of-order) tick and enqueues nothing', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200', { sequence: 8 }); // a market's first print waits for a second
    await p.tick('ETH-USD', '200', { sequence: 10 });
    await p.open('LONG', '10', '200', '200');
    const outcome = await p.tick('ETH-USD', '150', { sequence: 9 });
    expect(outcome).toMatchObject({ status: 'rejected', reason: 'tick/out-of-order' });
    expect((await p.adapters.liquidationQueue.depth()).visible).toBe(0);
    expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.markPrice).toBe(parsePrice('200'));
  });

  it('starts nothing again for a duplicate tick; it re-sends what is still queued, once settled nothing', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200', { sequence: 1 });
    await p.open('LONG', '10', '200', '200');
    await p.open('LONG', '5', '200', '100');
    const first = await p.tick('ETH-USD', '184', { sequence: 2 });
    const duplicate = await p.tick('ETH-USD', '184', { sequence: 2 });
    expect(first).toMatchObject({ status: 'accepted', enqueued: 2 });
    expect(duplicate).toMatchObject({ status: 'rejected', reason: 'tick/duplicate' });
    // An invocation of it may have died before sending: the still-QUEUED ones go again (the consumer dedupes).
    expect(p.adapters.liquidationQueue.pending()).toHaveLength(4);
    await p.drain();
    expect((await liquidationsOf(p)).map((l) => l.state)).toEqual(['SETTLED_MARKET', 'SETTLED_MARKET']);
    // Once they left QUEUED, a duplicate sends nothing.
    await p.tick('ETH-USD', '184', { sequence: 2 });
    expect(p.adapters.liquidationQueue.pending()).toHaveLength(0);
  });

  it('a tick continued over several invocations sends each liquidation once (a continuation re-sends nothing)', async () => {
    const p = createPipeline({ maxPositionsPerInvocation: 2 });
    await p.tick('ETH-USD', '200');
    for (let i = 0; i < 7; i++) await p.open('LONG', '10', '200', '200');
    expect(await p.tick('ETH-USD', '184')).toMatchObject({ status: 'accepted', enqueued: 7 });
    // Four invocations (2 + 2 + 2 + 1): each continuation re-sending the queued ones would make 7 + 2 + 4 + 6.
    expect(p.adapters.liquidationQueue.pending()).toHaveLength(7);
    expect((await p.adapters.markets.get('ETH-USD'))?.pendingSequence).toBeUndefined();
  });

  it('goes on with a tick whose first page came back empty but said more follows', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    // An index whose first page held only entries the filter dropped (on AWS: stale, or cut at a shard's bound).
    const query = p.adapters.positions.queryCrossed.bind(p.adapters.positions);
    let calls = 0;
    p.adapters.positions.queryCrossed = (...args) =>
      calls++ === 0 ? Promise.resolve({ positions: [], cursor: 'more' }) : query(...args);
    expect(await p.tick('ETH-USD', '184')).toMatchObject({ status: 'accepted', enqueued: 1 });
    expect(p.adapters.liquidationQueue.pending()).toHaveLength(1);
  });

  it('a continuation that died after starting a liquidation re-sends on its retry: nothing is lost', async () => {
    let armed = false;
    const p = createPipeline({
      maxPositionsPerInvocation: 2,
      crashHook: (point) => {
        if (armed && point === 'liquidations.begin') {
          armed = false;
          throw new InjectedCrash(point);
        }
      },
    });
    await p.tick('ETH-USD', '200');
    for (let i = 0; i < 5; i++) await p.open('LONG', '10', '200', '200');
    const tick = secondTick(p, '184');
    expect(await handleTick(tick, p.marginDeps, p.clock.nowMs())).toMatchObject({
      enqueued: 2,
      needsContinuation: true,
    });
    armed = true;
    // Segment 1 claims itself, starts a liquidation and dies before sending its message.
    await expect(handleTick(tick, p.marginDeps, p.clock.nowMs(), 1)).rejects.toBeInstanceOf(InjectedCrash);
    const ids = () =>
      new Set(
        p.adapters.liquidationQueue.pending().map((m) => parseLiquidationMessage(m.body).liquidationId),
      );
    expect(ids().size).toBe(2);
    // Its retry (the same segment) finds the segment claimed and re-sends what the tick started and left queued.
    let outcome = await handleTick(tick, p.marginDeps, p.clock.nowMs(), 1);
    for (let segment = 2; outcome.status === 'accepted' && outcome.needsContinuation; segment++)
      outcome = await handleTick(tick, p.marginDeps, p.clock.nowMs(), segment);
    const started = (await p.adapters.liquidations.listByTick('ETH-USD#2')).map((l) => l.id);
    expect(started).toHaveLength(5);
    expect([...ids()].sort()).toEqual([...started].sort());
    await p.drain();
    expect(p.errors).toEqual([]);
  });

  it('a continuation of unknown segment (put before segments, in flight across a deploy) re-sends and goes on', async () => {
    const p = createPipeline({ maxPositionsPerInvocation: 2 });
    await p.tick('ETH-USD', '200');
    for (let i = 0; i < 3; i++) await p.open('LONG', '10', '200', '200');
    const tick = secondTick(p, '184');
    expect(await handleTick(tick, p.marginDeps, p.clock.nowMs())).toMatchObject({ needsContinuation: true });
    expect(await handleTick(tick, p.marginDeps, p.clock.nowMs(), 'unknown')).toMatchObject({
      enqueued: 1,
      needsContinuation: false,
    });
    // The two of the first invocation sent again (harmless: the consumer is idempotent), and the third.
    expect(p.adapters.liquidationQueue.pending()).toHaveLength(5);
    await p.drain();
    expect((await p.adapters.liquidations.all()).map((l) => l.state)).toEqual(
      Array(3).fill('SETTLED_MARKET'),
    );
  });

  it('a tick after one whose continuation never came checks both sides: what the lost segments held is not left OPEN', async () => {
    const p = createPipeline({ maxPositionsPerInvocation: 2 });
    await p.tick('ETH-USD', '200');
    const longs = [];
    for (let i = 0; i < 5; i++) longs.push(await p.open('LONG', '10', '200', '200')); // liquidatable below ~184.6
    // The tick at 180 starts two and asks for a continuation that never comes (its event was lost).
    expect(await handleTick(secondTick(p, '180'), p.marginDeps, p.clock.nowMs())).toMatchObject({
      enqueued: 2,
      needsContinuation: true,
    });
    // The next tick bounces to 182: up, so only shorts could be newly crossed, were every OPEN position healthy
    // at 180. Three longs crossed at 180 were never reached, and 182 still crosses them.
    expect(await p.tick('ETH-USD', '182', { sequence: 3 })).toMatchObject({
      status: 'accepted',
      enqueued: 3,
    });
    for (const long of longs) expect((await p.adapters.positions.get(long.id))?.state).toBe('LIQUIDATING');
    expect((await p.adapters.markets.get('ETH-USD'))?.pendingSequence).toBeUndefined();
    await p.drain();
    expect(p.errors).toEqual([]);
  });

  /** Tick `sequence` at `price`, to invoke handleTick by hand. */
  const tickAt = (p: Pipeline, price: string, sequence: number) => ({
    ...secondTick(p, price),
    sequence,
  });

  /** A tick at 180 has started two of five crossed longs and waits for its continuation. */
  async function pendingAfterTwo() {
    const p = createPipeline({ maxPositionsPerInvocation: 2 });
    await p.tick('ETH-USD', '200', { sequence: 1 });
    const longs: PositionRecord[] = [];
    for (let i = 0; i < 5; i++) longs.push(await p.open('LONG', '10', '200', '200')); // liquidatable below ~184.6
    expect(await handleTick(tickAt(p, '180', 2), p.marginDeps, p.clock.nowMs())).toMatchObject({
      enqueued: 2,
      needsContinuation: true,
    });
    const open = async () => {
      const states = await Promise.all(longs.map((l) => p.adapters.positions.get(l.id)));
      return states.filter((l) => l?.state === 'OPEN').length;
    };
    return { p, open };
  }

  it.each([
    { rejected: 'a redelivery of the tick before it', sequence: 1, reason: 'tick/out-of-order', late: 0 },
    { rejected: 'a tick too old to act on', sequence: 3, reason: 'tick/too-old', late: 3_600_000 },
  ])(
    'a pending tick keeps its work when $rejected is rejected: its continuation goes on',
    async ({ sequence, reason, late }) => {
      const { p, open } = await pendingAfterTwo();
      const rejected = tickAt(p, '179', sequence);
      p.clock.advance(late);
      expect(await handleTick(rejected, p.marginDeps, p.clock.nowMs())).toMatchObject({ reason });
      expect((await p.adapters.markets.get('ETH-USD'))?.pendingSequence).toBe(2);
      expect(await handleTick(tickAt(p, '180', 2), p.marginDeps, p.clock.nowMs(), 1)).toMatchObject({
        status: 'accepted',
        enqueued: 2,
      });
      expect(await handleTick(tickAt(p, '180', 2), p.marginDeps, p.clock.nowMs(), 2)).toMatchObject({
        enqueued: 1,
        needsContinuation: false,
      });
      expect(await open()).toBe(0);
    },
  );

  it("a newer tick takes a pending one over; the older one's late continuation leaves the newer one's work alone", async () => {
    const { p, open } = await pendingAfterTwo();
    // 179 takes over: it starts two more and waits for its own continuation.
    expect(await handleTick(tickAt(p, '179', 3), p.marginDeps, p.clock.nowMs())).toMatchObject({
      enqueued: 2,
      needsContinuation: true,
    });
    expect(await handleTick(tickAt(p, '180', 2), p.marginDeps, p.clock.nowMs(), 1)).toMatchObject({
      reason: 'tick/continuation-done',
    });
    expect((await p.adapters.markets.get('ETH-USD'))?.pendingSequence).toBe(3);
    expect(await handleTick(tickAt(p, '179', 3), p.marginDeps, p.clock.nowMs(), 1)).toMatchObject({
      enqueued: 1,
      needsContinuation: false,
    });
    expect(await open()).toBe(0);
  });

  it('a tick that died between starting a liquidation and sending it, after a newer tick took over, sends it on its retry', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200', { sequence: 1 });
    const long = await p.open('LONG', '10', '200', '200');
    // Tick 2's invocation reaches the begin after tick 3 has taken it over (and re-sent what it had started:
    // nothing yet), then dies before sending.
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let atBegin!: () => void;
    const reachedBegin = new Promise<void>((resolve) => {
      atBegin = resolve;
    });
    const liquidations = p.marginDeps.liquidations;
    const dying: typeof p.marginDeps = {
      ...p.marginDeps,
      liquidations: {
        get: (id) => liquidations.get(id),
        listByTick: (key) => liquidations.listByTick(key),
        replace: (next, v) => liquidations.replace(next, v),
        replaceWithPosition: (next, v, pos, pv) => liquidations.replaceWithPosition(next, v, pos, pv),
        recordFailure: (id, f) => liquidations.recordFailure(id, f),
        recordMarkDispute: (id, since) => liquidations.recordMarkDispute(id, since),
        openStartedBefore: (ms, from) => liquidations.openStartedBefore(ms, from),
        watchCursor: () => liquidations.watchCursor(),
        saveWatchCursor: (cursor, v, owner) => liquidations.saveWatchCursor(cursor, v, owner),
        begin: async (position, liquidation) => {
          atBegin();
          await released;
          return liquidations.begin(position, liquidation);
        },
      },
      liquidationQueue: {
        ...p.marginDeps.liquidationQueue,
        sendBatch: async () => {
          throw new InjectedCrash('liquidationQueue.sendBatch');
        },
      } as typeof p.marginDeps.liquidationQueue,
    };
    const dies = handleTick(tickAt(p, '180', 2), dying, p.clock.nowMs());
    await reachedBegin;
    // The newer tick bounces to 190, where the long is healthy: it starts nothing and replaces the pending mark.
    expect(await handleTick(tickAt(p, '190', 3), p.marginDeps, p.clock.nowMs())).toMatchObject({
      status: 'accepted',
      enqueued: 0,
    });
    release();
    await expect(dies).rejects.toBeInstanceOf(InjectedCrash);
    const [started, ...others] = await p.adapters.liquidations.listByTick('ETH-USD#2');
    expect(others).toEqual([]);
    expect(started?.state).toBe('QUEUED');
    // The retry of tick 2 is out of order now, and re-sends what it started.
    expect(await handleTick(tickAt(p, '180', 2), p.marginDeps, p.clock.nowMs())).toMatchObject({
      reason: 'tick/out-of-order',
    });
    await p.drain();
    expect(p.errors).toEqual([]);
    // Healthy again at 190: the consumer cancels it and the long is OPEN again.
    expect((await p.adapters.liquidations.get(started!.id))?.state).toBe('CANCELLED');
    expect((await p.adapters.positions.get(long.id))?.state).toBe('OPEN');
  });

  it('a position made OPEN crossed behind a tick (by a writer that read an older mark) is started by the next tick, whichever way it moves', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200', { sequence: 1 });
    const long = await p.open('LONG', '10', '200', '400'); // healthy down to ~164
    expect(await p.tick('ETH-USD', '180', { sequence: 2 })).toMatchObject({ enqueued: 0 });
    // Half its collateral taken by a writer that checked it at 200: crossed at 180, yet OPEN.
    const stored = (await p.adapters.positions.get(long.id))!;
    const thinner = withLiquidationPrice(
      { ...stored, collateral: parseQuote('200'), version: stored.version + 1 },
      p.config,
    );
    await p.adapters.positions.replace(thinner, stored.version);
    // The mark rises to 181, where the long is still crossed (below ~184.6).
    expect(await p.tick('ETH-USD', '181', { sequence: 3 })).toMatchObject({ enqueued: 1 });
    expect((await p.adapters.positions.get(long.id))?.state).toBe('LIQUIDATING');
  });

  it('a position made OPEN crossed between a tick reading the index and recording itself is started by the next tick', async () => {
    // Found by the pipeline fuzz (seed 909031): a slice's settlement put its rest back OPEN, judged at its plan's
    // mark, while a newer tick that crosses it was between its index read and its record.
    const p = createPipeline();
    await p.tick('ETH-USD', '200', { sequence: 1 });
    const long = await p.open('LONG', '10', '200', '400'); // healthy down to ~164
    const stored = (await p.adapters.positions.get(long.id))!;
    const thinner = withLiquidationPrice(
      { ...stored, collateral: parseQuote('200'), version: stored.version + 1 },
      p.config,
    );
    const positions = p.marginDeps.positions;
    let written = false;
    const racing: MarginCheckDeps = {
      ...p.marginDeps,
      positions: new Proxy(positions, {
        get(target, key) {
          if (key === 'queryCrossed')
            return async (...args: Parameters<typeof positions.queryCrossed>) => {
              const page = await positions.queryCrossed(...args);
              // The writer lands after the tick's reads (both sides'): its pages do not hold it.
              if (!written) {
                written = true;
                await positions.replace(thinner, stored.version);
              }
              return page;
            };
          const value = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
    };
    expect(await handleTick(tickAt(p, '180', 2), racing, p.clock.nowMs())).toMatchObject({
      status: 'accepted',
      enqueued: 0,
    });
    expect((await p.adapters.positions.get(long.id))?.state).toBe('OPEN');
    // The next tick reads the index after the write: crossed at 181 (below ~184.6), it starts the long.
    expect(await p.tick('ETH-USD', '181', { sequence: 3 })).toMatchObject({ enqueued: 1 });
    expect((await p.adapters.positions.get(long.id))?.state).toBe('LIQUIDATING');
  });

  /** p's margin-check deps with some market methods replaced (the others bound to the real repository). */
  function withMarkets(p: Pipeline, overrides: Partial<MarginCheckDeps['markets']>): MarginCheckDeps {
    const markets = p.marginDeps.markets;
    return {
      ...p.marginDeps,
      markets: new Proxy(markets, {
        get(target, key) {
          const own = overrides[key as keyof typeof overrides];
          if (own) return own;
          const value = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }),
    };
  }

  it('a breaker trip judged on a last tick that has moved on is not written: the print is judged again', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200', { sequence: 0 }); // a market's first print waits for a second
    await p.tick('ETH-USD', '200', { sequence: 1 });
    await p.open('LONG', '10', '200', '200'); // liquidatable below ~184.6
    const markets = p.marginDeps.markets;
    let first = true;
    // Tick 2, a bad print, is judged against tick 1; its trip is slow, and ticks 3 and 4 are accepted meanwhile.
    const slow = withMarkets(p, {
      tripBreaker: async (...args) => {
        if (first) {
          first = false;
          await handleTick(tickAt(p, '201', 3), p.marginDeps, p.clock.nowMs());
          await handleTick(tickAt(p, '202', 4), p.marginDeps, p.clock.nowMs());
        }
        return markets.tripBreaker(...args);
      },
    });
    expect(await handleTick(tickAt(p, '100', 2), slow, p.clock.nowMs())).toMatchObject({
      reason: 'tick/out-of-order',
    });
    expect((await p.adapters.markets.get('ETH-USD'))?.breaker).toBeUndefined();
    // A print near the bad one is judged against 202, not confirmed by it.
    expect(await handleTick(tickAt(p, '101', 5), p.marginDeps, p.clock.nowMs())).toMatchObject({
      reason: 'tick/price-band',
    });
    expect(await liquidationsOf(p)).toEqual([]);
    // Each rejection counted once it stood (the first print, tick 2's second verdict, tick 5): tick 2's first
    // verdict (price-band) did not.
    expect(p.telemetry.total(METRICS.TicksRejected.name)).toBe(3);
  });

  it('a tick that closes the breaker removes it in the same write as the tick (no second write to fail)', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200', { sequence: 0 }); // a market's first print waits for a second
    await p.tick('ETH-USD', '200', { sequence: 1 });
    expect(await p.tick('ETH-USD', '100', { sequence: 2 })).toMatchObject({ reason: 'tick/price-band' });
    const deps = withMarkets(p, {
      resetBreaker: async () => {
        throw new Error('the breaker is closed by acceptTick');
      },
    });
    expect(await handleTick(tickAt(p, '200', 3), deps, p.clock.nowMs())).toMatchObject({
      status: 'accepted',
    });
    const market = await p.adapters.markets.get('ETH-USD');
    expect(market?.breaker).toBeUndefined();
    expect(market?.lastTick?.sequence).toBe(3);
  });

  it('an invocation starts at most its bound over both sides together; the rest continues', async () => {
    const p = createPipeline({ maxPositionsPerInvocation: 2 });
    await p.tick('ETH-USD', '200', { sequence: 1 });
    await p.open('LONG', '10', '200', '200'); // crossed below ~184.6
    // Two shorts left crossed behind the ticks (rewritten by a writer that checked an older mark): short at 175.
    for (let i = 0; i < 2; i++) {
      const short = await p.open('SHORT', '10', '200', '400');
      const stored = (await p.adapters.positions.get(short.id))!;
      const rewritten = { ...stored, entryPrice: parsePrice('175'), collateral: parseQuote('1') };
      await p.adapters.positions.replace(
        withLiquidationPrice({ ...rewritten, version: stored.version + 1 }, p.config),
        stored.version,
      );
    }
    const first = await handleTick(tickAt(p, '180', 2), p.marginDeps, p.clock.nowMs());
    expect(first).toMatchObject({ status: 'accepted', checked: 2, enqueued: 2, needsContinuation: true });
    expect(await handleTick(tickAt(p, '180', 2), p.marginDeps, p.clock.nowMs(), 1)).toMatchObject({
      enqueued: 1,
      needsContinuation: false,
    });
  });

  describe("a container's market states", () => {
    /** margin-check's deps as a Lambda container has them: its cache, and a count of its market reads. */
    function containerDeps(p: Pipeline) {
      const reads = { count: 0 };
      const markets = p.marginDeps.markets;
      const counting = withMarkets(p, {
        get: (symbol: string) => {
          reads.count += 1;
          return markets.get(symbol);
        },
      });
      const deps: MarginCheckDeps = { ...counting, marketStates: new Map() };
      return { deps, reads };
    }

    it('judges a tick on the state its last accepted tick wrote, without reading the market', async () => {
      const p = createPipeline();
      await p.tick('ETH-USD', '200', { sequence: 1 });
      const { deps, reads } = containerDeps(p);
      expect(await handleTick(tickAt(p, '199', 2), deps, p.clock.nowMs())).toMatchObject({
        status: 'accepted',
      });
      expect(reads.count).toBe(1);
      expect(await handleTick(tickAt(p, '198', 3), deps, p.clock.nowMs())).toMatchObject({
        status: 'accepted',
      });
      expect(await handleTick(tickAt(p, '197', 4), deps, p.clock.nowMs())).toMatchObject({
        status: 'accepted',
      });
      expect(reads.count).toBe(1);
      expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.sequence).toBe(4);
    });

    it('a state another container moved on costs a read, never a wrong verdict', async () => {
      const p = createPipeline();
      await p.tick('ETH-USD', '200', { sequence: 1 });
      await p.open('SHORT', '10', '200', '200'); // liquidatable above ~215
      const { deps, reads } = containerDeps(p);
      await handleTick(tickAt(p, '200', 2), deps, p.clock.nowMs());
      // Another container accepts 210 then 220 (each within the 15 % band of the one before).
      await handleTick(tickAt(p, '210', 3), p.marginDeps, p.clock.nowMs());
      await handleTick(tickAt(p, '220', 4), p.marginDeps, p.clock.nowMs());
      // 236 is in the band of 220, not of this container's 200: judged again on the market as it is.
      expect(await handleTick(tickAt(p, '236', 5), deps, p.clock.nowMs())).toMatchObject({
        status: 'accepted',
      });
      expect((await p.adapters.markets.get('ETH-USD'))?.breaker).toBeUndefined();
      expect(reads.count).toBe(2);
      // A duplicate of 4 is rejected after a fresh read too, and one accepted on a stale state is impossible:
      // acceptTick's condition on the last sequence refuses it.
      await handleTick(tickAt(p, '237', 6), p.marginDeps, p.clock.nowMs());
      expect(await handleTick(tickAt(p, '238', 6), deps, p.clock.nowMs())).toMatchObject({
        reason: 'tick/duplicate',
      });
      expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.markPrice).toBe(parsePrice('237'));
    });
  });

  it("a container's market cached before a resumeFeed is not trusted: a bad print is judged on the market as it is (cache-after-resume)", async () => {
    const p = createPipeline();
    const admin = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    await p.tick('ETH-USD', '200', { sequence: 0 });
    await p.tick('ETH-USD', '200', { sequence: 1 });
    // Container A accepts tick 2 at 200 and keeps the market as written.
    const containerA: typeof p.marginDeps = { ...p.marginDeps, marketStates: new Map() };
    expect(await handleTick(tickAt(p, '200', 2), containerA, p.clock.nowMs())).toMatchObject({
      status: 'accepted',
    });
    // Other containers follow the market down to 150.
    for (const [price, sequence] of [
      ['180', 3],
      ['160', 4],
      ['150', 5],
    ] as const) {
      p.clock.advance(1000);
      expect(await handleTick(tickAt(p, price, sequence), p.marginDeps, p.clock.nowMs())).toMatchObject({
        status: 'accepted',
      });
    }
    const short = await p.open('SHORT', '10', '150', '150'); // healthy at 150, liquidatable near 164
    // The feed restarts from 0; the operator resumes it.
    expect(
      await handleAdmin({ action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 0 }, admin),
    ).toMatchObject({
      ok: true,
    });
    // The new feed's ticks come after the old one's (its last recorded time plus the 5 s clock skew).
    p.clock.advance(5_000);
    for (const sequence of [0, 1, 2]) {
      p.clock.advance(1000);
      expect(await handleTick(tickAt(p, '150', sequence), p.marginDeps, p.clock.nowMs())).toMatchObject({
        status: 'accepted',
      });
    }
    // A bad print at 200 (33 % off the last mark, 150) reaches container A: its cache says last = 2 at 200.
    p.clock.advance(1000);
    const outcome = await handleTick(tickAt(p, '200', 3), containerA, p.clock.nowMs());
    expect(outcome).toMatchObject({ status: 'rejected', reason: 'tick/price-band' });
    expect((await p.adapters.positions.get(short.id))?.state).toBe('OPEN');
  });

  it('trips the circuit breaker on a bad print instead of liquidating', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    const outcome = await p.tick('ETH-USD', '100');
    expect(outcome).toMatchObject({ status: 'rejected', reason: 'tick/price-band' });
    expect((await p.adapters.markets.get('ETH-USD'))?.breaker).toBeDefined();
    expect(await liquidationsOf(p)).toEqual([]);
  });

  it("a market's first print liquidates nothing and raises no breaker alarm; the first print that agrees opens the market", async () => {
    const p = createPipeline();
    // Positions opened before the market's first tick (a launch): a long liquidatable below ~184.6.
    await p.open('LONG', '10', '200', '200');
    // A glitch at launch: alone, it would liquidate the book.
    expect(await p.tick('ETH-USD', '20', { sequence: 1 })).toMatchObject({
      status: 'rejected',
      reason: 'tick/unconfirmed',
    });
    let market = await p.adapters.markets.get('ETH-USD');
    expect(market?.lastTick).toBeUndefined();
    expect(market?.breaker?.tick.sequence).toBe(1);
    // The real price does not agree with it: it waits in turn.
    expect(await p.tick('ETH-USD', '200', { sequence: 2 })).toMatchObject({ reason: 'tick/breaker-open' });
    expect(await p.tick('ETH-USD', '199', { sequence: 3 })).toMatchObject({
      status: 'accepted',
      enqueued: 0,
    });
    market = await p.adapters.markets.get('ETH-USD');
    expect(market?.breaker).toBeUndefined();
    expect(market?.lastTick?.markPrice).toBe(parsePrice('199'));
    expect(await liquidationsOf(p)).toEqual([]);
    expect(p.telemetry.total(METRICS.CircuitBreakerTripped.name)).toBe(1); // the 200 print's, not the first
    // From then on, ticks are judged against the accepted mark.
    expect(await p.tick('ETH-USD', '184', { sequence: 4 })).toMatchObject({
      status: 'accepted',
      enqueued: 1,
    });
  });

  it('follows a market that keeps moving past the band: each print re-arms the breaker, two agreeing ones 5 s apart close it', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '100', { sequence: 0 }); // a market's first print waits for a second
    await p.tick('ETH-USD', '100', { sequence: 1 });
    const short = await p.open('SHORT', '10', '100', '100');
    // 120 trips the breaker, 140 agrees with neither 100 nor 120 and re-arms it, 140.4 agrees with 140.
    expect(await p.tick('ETH-USD', '120', { sequence: 2 })).toMatchObject({ reason: 'tick/price-band' });
    expect(await p.tick('ETH-USD', '140', { sequence: 3 })).toMatchObject({ reason: 'tick/breaker-open' });
    expect((await p.adapters.markets.get('ETH-USD'))?.breaker?.tick.sequence).toBe(3);
    // Agreeing at once is not yet a move that persists (breakerConfirmSeconds, 5 s): held, the breaker as it was.
    expect(await p.tick('ETH-USD', '140.4', { sequence: 4 })).toMatchObject({
      reason: 'tick/breaker-confirming',
    });
    expect((await p.adapters.markets.get('ETH-USD'))?.breaker?.tick.sequence).toBe(3);
    p.clock.advance(5_000);
    expect(await p.tick('ETH-USD', '140.4', { sequence: 5 })).toMatchObject({ status: 'accepted' });
    expect((await p.adapters.markets.get('ETH-USD'))?.breaker).toBeUndefined();
    const [liquidation] = await liquidationsOf(p);
    expect(liquidation?.positionId).toBe(short.id);
  });
});

/**
 * A long of `size` ETH crossed at 184 over an empty book, and 150 providers bidding 1 % for at most 0.1 ETH each:
 * one auction step reaches more of them than one transaction holds. The auction and its liquidation once drained.
 */
/** An ETH-USD provider written straight to its table (no wake): crowds of them, as the fill caps need. */
const putProvider = (p: Pipeline, id: string, capital: string, discountPpm: bigint, lot: string) =>
  p.adapters.providers.put(
    {
      id,
      capital: parseQuote(capital),
      maxDiscountPpm: discountPpm,
      maxLot: parseBase(lot),
      symbols: ['ETH-USD'],
      version: 0,
    },
    undefined,
  );

async function crowdedAuction(p: Pipeline, size: string, collateral: string) {
  await p.tick('ETH-USD', '200'); // a market's first print waits for a second
  await p.tick('ETH-USD', '200');
  await p.open('LONG', size, '200', collateral);
  for (let i = 0; i < 150; i++) await p.provider(`lp-${String(i).padStart(3, '0')}`, '100000', '0.01', '0.1');
  p.venue.faults.emptyBooks.add('ETH-USD');
  await p.tick('ETH-USD', '184');
  await p.drain();
  const [liquidation] = await liquidationsOf(p);
  return { liquidation, auction: await p.adapters.auctions.get(`${liquidation?.id}:auction`) };
}

describe('auction layer', () => {
  it('a capped step goes on at the same instant: a tail one second later does not end the auction under standing bids', async () => {
    // Default curve (1.02 start, 0.99 cut every 90 s): a 1 % bid is reached at step 3 (270 s), the tail here.
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      auction: { ...DEFAULT_RISK_CONFIG_INPUT.auction, tailSeconds: 270, maxResets: 0 },
    });
    // 100 of the 150 providers take the 10 ETH lot at the first price that reaches them.
    const { auction } = await crowdedAuction(createPipeline({ config }), '10', '200');
    // With the capped step's follow-up a second later, the tail had passed: EXHAUSTED with 1 ETH unsold.
    expect(auction?.state).toBe('CLEARED');
    expect(auction?.fills).toHaveLength(100);
    expect(auction?.fills.reduce((sum, f) => sum + f.size, 0n)).toBe(parseBase('10'));
    expect(new Set(auction?.fills.map((f) => f.price)).size).toBe(1);
  });

  it("a next slice created by a capped step's continuation is sent even when the continuation's delivery dies after settling", async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    // 184k notional at 184: sliced at 25 % (250 ETH); the remainder is still liquidatable (a next slice).
    const opened = await p.open('LONG', '1000', '200', '20000');
    // 150 providers at 1 %, 2 ETH each: 125 of them take the 250 ETH slice at one price (90, then 35).
    for (let i = 0; i < 150; i++) await p.provider(`lp-${String(i).padStart(3, '0')}`, '100000', '0.01', '2');
    p.venue.faults.emptyBooks.add('ETH-USD');

    const transactor = p.adapters.transactor;
    const commit = transactor.commit.bind(transactor);
    let phase: 'idle' | 'capped' | 'raced' | 'crashed' = 'idle';
    let racing = false;
    let d1Ending: readonly Write[] | undefined;
    let d2Outcome: unknown;
    const auctionOf = (writes: readonly Write[]) =>
      writes.find((w) => w.kind === 'auction')?.record as { state: string } | undefined;
    (transactor as { commit: (w: readonly Write[]) => Promise<void> }).commit = async (writes) => {
      const auction = auctionOf(writes);
      if (phase === 'idle' && auction?.state === 'RUNNING' && writes.length > 90) {
        await commit(writes);
        phase = 'capped'; // step N (90 fills) committed; the continuation runs step N+1 in this delivery
        return;
      }
      if (phase === 'capped' && !racing && auction?.state === 'CLEARED') {
        // The continuation is about to end the auction. Meanwhile (a second later) the planned message of step
        // N+1 is delivered to another container, which reads the auction still RUNNING at N+1 ...
        racing = true;
        d1Ending = writes;
        p.clock.advance(1_000);
        const [planned] = await p.adapters.auctionQueue.receive(1, 30);
        d2Outcome = await processAuctionStep(parseAuctionStepMessage(planned!.body), p.deps);
        await p.adapters.auctionQueue.delete(planned!.receiptHandle);
        racing = false;
        phase = 'raced';
        return; // D1's ending was committed first (below)
      }
      if (racing && auction?.state === 'CLEARED') {
        // ... and loses the race to the continuation's commit: it finds itself stale.
        await commit(d1Ending!);
        return commit(writes);
      }
      if (
        phase === 'raced' &&
        writes.some((w) => w.kind === 'liquidation' && w.record.state === 'SETTLED_AUCTION')
      ) {
        await commit(writes);
        phase = 'crashed';
        throw new InjectedCrash('after the settlement commit, before the next slice is sent');
      }
      return commit(writes);
    };

    await p.tick('ETH-USD', '184');
    await p.drain();

    expect(phase).toBe('crashed');
    // The planned message of the continued step lost its commit to the continuation: it finishes the settlement
    // (it was deleted as stale, and a death of the continuation's delivery then lost the next slice's message).
    expect(d2Outcome).toMatchObject({ status: 'finished' });
    const slices = p.adapters.liquidations.all();
    const next = slices.find((l) => l.history[0]?.note?.startsWith('next slice of'));
    expect(next).toBeDefined();
    // Nobody sends the next slice: the continuation's own message (step N) is stale on redelivery, and the
    // planned message of step N+1 was consumed (stale) while the continuation held the step.
    expect(next?.state).not.toBe('QUEUED');
    expect((await p.adapters.positions.get(opened.id))?.state).not.toBe('LIQUIDATING');
  }, 60_000);

  it('providers with nothing left to take never fill a step: a real bid behind 90 of them takes the lot (no dust)', async () => {
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => ({ ...m, dustSize: '0' })),
    });
    const p = createPipeline({ config });
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    await p.open('SHORT', '1', '200', '20'); // liquidatable above ~216: a BUY auction
    for (let i = 0; i < 90; i++) {
      // Best terms, but nothing left to take (as withdrawn bids leave a provider).
      await p.adapters.providers.put(
        {
          id: `gone-${String(i).padStart(2, '0')}`,
          capital: 10n ** 12n,
          maxDiscountPpm: 0n,
          maxLot: 0n,
          symbols: ['ETH-USD'],
          version: 0,
        },
        undefined,
      );
    }
    await p.provider('real', '100000', '0.01', '100');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '220');
    await p.runUntil(p.clock.nowMs() + 900_000); // 15 minutes: its bid is reached after 270 s
    const [liquidation] = await liquidationsOf(p);
    const auction = await p.adapters.auctions.get(`${liquidation?.id}:auction`);
    // Before: 90 empty "fills" capped every step, re-run each second, and nothing ever filled.
    expect(auction?.state).toBe('CLEARED');
    expect(auction?.fills.map((f) => f.providerId)).toEqual(['real']);
    expect(auction?.step).toBeLessThan(20);
  });

  it('a step that more providers fill than one transaction holds fills them over steps a second apart, at one price', async () => {
    // The lot needs more than 100 of the 150 providers at one price.
    const p = createPipeline();
    const { liquidation, auction } = await crowdedAuction(p, '20', '400');
    // Before the cap, every delivery of the step failed with transactor/too-many-writes and dead-lettered.
    expect(p.errors).toEqual([]);
    expect((await p.adapters.auctionDeadLetters.depth()).visible).toBe(0);
    expect(auction?.state).toBe('CLEARED');
    expect(liquidation?.state).toBe('SETTLED_AUCTION');
    expect(auction?.fills.length).toBeGreaterThan(MAX_FILLS_PER_STEP);
    expect(new Set(auction?.fills.map((f) => f.price)).size).toBe(1);
  });

  it('an auction takes at most MAX_FILLS_PER_AUCTION fills (its item within 400 KB); the rest goes on as the next slice', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '20', '200', '400');
    // 1,100 providers at 1 %, 0.01 ETH each: a lot over 10 ETH would take more than 1,000 fills.
    for (let i = 0; i < MAX_FILLS_PER_AUCTION + 100; i++)
      await putProvider(p, `lp-${String(i).padStart(4, '0')}`, '100000', 10_000n, '0.01');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    await p.drain();
    expect(p.errors).toEqual([]);
    const [liquidation] = await liquidationsOf(p);
    const auction = await p.adapters.auctions.get(`${liquidation?.id}:auction`);
    expect(auction?.state).toBe('EXHAUSTED');
    expect(auction?.fills).toHaveLength(MAX_FILLS_PER_AUCTION);
    expect(auction?.lot).toBeGreaterThan(parseBase('10'));
    expect(auction?.remainingLot).toBe((auction?.lot ?? 0n) - parseBase('10'));
    // What the auction could not take is the position's rest: a next slice, whose own auction takes it.
    expect(liquidation?.settlement).toMatchObject({
      auctionClosedSize: parseBase('10'),
      carriedSize: auction?.remainingLot,
    });
    const all = await liquidationsOf(p);
    expect(all.map((l) => l.state)).toEqual(['SETTLED_AUCTION', 'SETTLED_AUCTION']);
    // DynamoDB's limit, with the JSON text as a stand-in for the item's size.
    const bytes = (record: unknown) =>
      JSON.stringify(record, (_key, value) => (typeof value === 'bigint' ? value.toString() : value)).length;
    expect(bytes(auction)).toBeLessThan(400_000);
    expect(bytes(liquidation)).toBeLessThan(400_000);
  }, 60_000);

  it('an auction whose 1,000th fill comes in a step nobody else fills at ends then, not after a sleep on bids it cannot fill', async () => {
    // Found by the pipeline fuzzing in session 29: full with lot left, it planned its sleep on a 20 % bid (it can
    // take no fill more) and slept 900 s while the rest of the lot waited for the next layers.
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '20', '200', '400');
    const lp = (id: string, discountPpm: bigint, lot: string) =>
      putProvider(p, id, '100000', discountPpm, lot);
    for (let i = 0; i < MAX_FILLS_PER_AUCTION; i++)
      await lp(`lp-${String(i).padStart(4, '0')}`, 10_000n, '0.01');
    await lp('lp-far', 200_000n, '100');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    const [liquidation] = p.adapters.liquidations.all();
    const start = p.clock.nowMs();
    // The 1 % bids are reached about 4.5 minutes in, all in one step (90 fills a step, a second apart).
    await p.runUntil(start + 330_000);
    const auction = await p.adapters.auctions.get(`${liquidation?.id}:auction`);
    expect(auction?.fills).toHaveLength(MAX_FILLS_PER_AUCTION);
    expect(auction?.state).toBe('EXHAUSTED');
    expect(auction?.fills.some((f) => f.providerId === 'lp-far')).toBe(false);
    expect(p.errors).toEqual([]);
  }, 60_000);

  it.each([
    ['LONG', 'SELL', '184'],
    ['SHORT', 'BUY', '216'],
  ] as const)(
    'a %s auction one fill short of its most, its rest under twice dust, ends (%s)',
    async (side, direction, crash) => {
      // Found by the pipeline fuzzing in session 29: with one fill left, the best bid's dust-sized piece would leave
      // a crumb, so the dust rule took it back: a capped step that filled nothing, run again and again (about
      // 12,600 commits in 15 minutes; ended only past its tail and resets, after some 200,000).
      const p = createPipeline();
      await p.tick('ETH-USD', '200');
      await p.tick('ETH-USD', '200');
      await p.open(side, '9.9915', '200', '200'); // 999 x 0.01 + 0.0015 ETH, one slice
      const lp = (id: string, capital: string, discountPpm: bigint, lot: string) =>
        putProvider(p, id, capital, discountPpm, lot);
      for (let i = 0; i < MAX_FILLS_PER_AUCTION - 1; i++)
        await lp(`lp-${String(i).padStart(4, '0')}`, '100000', 5_000n, '0.01');
      // At 1 %: room for exactly dust (more capital: first), and one that could take the whole rest.
      await lp('lp-a', '200000', 10_000n, '0.001');
      await lp('lp-b', '100000', 10_000n, '100');
      p.venue.faults.emptyBooks.add('ETH-USD');
      await p.tick('ETH-USD', crash);
      await p.runUntil(p.clock.nowMs() + 900_000);
      const [liquidation] = p.adapters.liquidations.all();
      const auction = await p.adapters.auctions.get(`${liquidation?.id}:auction`);
      expect(auction?.direction).toBe(direction);
      expect(auction?.fills).toHaveLength(MAX_FILLS_PER_AUCTION - 1);
      expect(auction?.remainingLot).toBe(parseBase('0.0015'));
      expect(auction?.state).toBe('EXHAUSTED');
      expect(auction?.version).toBeLessThan(100);
      expect(p.errors).toEqual([]);
    },
    120_000,
  );

  it('sells what the empty book cannot take to a provider once the price reaches its bid', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    const position = await p.open('LONG', '10', '200', '200');
    await p.provider('lp-1', '100000', '0.02', '100');
    p.venue.faults.emptyBooks.add('ETH-USD');

    await p.tick('ETH-USD', '184');
    await p.drain();

    const [liquidation] = await liquidationsOf(p);
    expect(liquidation?.state).toBe('SETTLED_AUCTION');
    expect(liquidation?.marketFills).toEqual([]);
    const auction = await p.adapters.auctions.get(`${liquidation?.id}:auction`);
    expect(auction?.state).toBe('CLEARED');
    const filled = auction?.fills.reduce((s, f) => s + f.size, 0n) ?? 0n;
    expect(filled).toBeGreaterThan(0n);
    for (const fill of auction?.fills ?? []) {
      expect(fill.price * 100n).toBeLessThanOrEqual(parsePrice('184') * 98n); // at or below the 2 % bid
      expect(fill.price).toBeGreaterThan(0n);
    }
    const provider = await p.adapters.providers.get('lp-1');
    expect(provider?.capital).toBeLessThan(parseQuote('100000'));
    expect((await p.adapters.positions.get(position.id))?.state).not.toBe('LIQUIDATING');
    await expectReconciled(p);
  });

  /** A liquidation handed to an auction of 1 s steps whose one provider bids 1 % under the mark. */
  async function auctionStarted(): Promise<Pipeline> {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.provider('lp-1', '100000', '0.01', '100');
    await p.tick('ETH-USD', '184');
    for (const m of await p.adapters.liquidationQueue.receive(10, 30)) await p.handlers.liquidation(m);
    return p;
  }

  it('settles an auction its step cleared with the mark the step read, reading neither it nor the settled record again', async () => {
    const p = await auctionStarted();
    const marketReads = vi.spyOn(p.adapters.markets, 'get');
    const liquidationReads = vi.spyOn(p.adapters.liquidations, 'get');
    const finishing: { markets: number; liquidations: number }[] = [];
    for (let second = 0; second < 10 && finishing.length === 0; second++) {
      p.clock.advance(1_000);
      for (const m of await p.adapters.auctionQueue.receive(10, 30)) {
        marketReads.mockClear();
        liquidationReads.mockClear();
        const outcome = await processAuctionStep(parseAuctionStepMessage(m.body), p.deps);
        if (outcome.status === 'finished') {
          finishing.push({
            markets: marketReads.mock.calls.length,
            liquidations: liquidationReads.mock.calls.length,
          });
        }
        await p.adapters.auctionQueue.delete(m.receiptHandle);
      }
    }
    // The step's read of the market, and one read of the liquidation it hands to the waterfall.
    expect(finishing).toEqual([{ markets: 1, liquidations: 1 }]);
    const [liquidation] = await liquidationsOf(p);
    expect(liquidation?.state).toBe('SETTLED_AUCTION');
    await expectReconciled(p);
  });

  /**
   * Concurrent auctions clear against the same providers: a step whose provider was changed by another auction
   * between its read and its commit runs again on fresh records, after a backoff, within the same delivery.
   */
  async function contendedStep(conflicts: number) {
    const p = await auctionStarted();
    const [liquidation] = await liquidationsOf(p);
    expect(liquidation?.state).toBe('AUCTION');
    const auctionId = `${liquidation?.id}:auction`;
    // Another auction's fill: the provider's version moves on just before each of this step's commits.
    let left = conflicts;
    const rival: typeof p.deps.transactor = {
      commit: async (writes) => {
        const provider = writes.find((w) => w.kind === 'provider');
        if (provider && left > 0) {
          left -= 1;
          const stored = (await p.adapters.providers.get(provider.record.id))!;
          await p.adapters.transactor.commit([
            {
              kind: 'provider',
              record: { ...stored, version: stored.version + 1 },
              expectedVersion: stored.version,
            },
          ]);
        }
        return p.adapters.transactor.commit(writes);
      },
    };
    const waits: number[] = [];
    const deps = {
      ...p.deps,
      transactor: rival,
      backoff: async (attempt: number) => {
        waits.push(attempt);
      },
    };
    // Step until the price reaches the provider's bid (1 s steps of 1 %: the 1 % bid at the first).
    let outcome: unknown;
    for (
      let second = 0;
      second < 5 && (await p.adapters.auctions.get(auctionId))?.state === 'RUNNING';
      second++
    ) {
      p.clock.advance(1_000);
      for (const m of await p.adapters.auctionQueue.receive(10, 30)) {
        outcome = await processAuctionStep(parseAuctionStepMessage(m.body), deps).catch(
          (error: unknown) => error,
        );
        if (outcome instanceof Error) return { p, auctionId, waits, outcome };
        await p.adapters.auctionQueue.delete(m.receiptHandle);
      }
    }
    return { p, auctionId, waits, outcome };
  }

  it('runs a step that lost races on a provider again after a backoff, in the same delivery', async () => {
    const { p, auctionId, waits, outcome } = await contendedStep(3);
    expect(outcome).not.toBeInstanceOf(Error);
    expect(waits).toEqual([2, 3, 4]);
    const auction = await p.adapters.auctions.get(auctionId);
    expect(auction?.state).toBe('CLEARED');
    // Filled once, whatever the lost races: one fill, and the provider's capital consumed by it.
    expect(auction?.fills).toHaveLength(1);
    expect((await p.adapters.providers.get('lp-1'))?.capital).toBeLessThan(parseQuote('100000'));
  });

  it('gives a step still contended after eight attempts back to SQS (redelivered later)', async () => {
    const { p, auctionId, waits, outcome } = await contendedStep(Number.POSITIVE_INFINITY);
    expect(outcome).toBeInstanceOf(AuctionContentionError);
    expect(waits).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('RUNNING');
    expect((await p.adapters.providers.get('lp-1'))?.capital).toBe(parseQuote('100000'));
  });

  it.each([
    { name: 'no provider registered', provider: undefined },
    { name: 'the only provider has no capital left', provider: { capital: '0', maxLot: '100' } },
    { name: 'the only provider takes no lot', provider: { capital: '100000', maxLot: '0' } },
    // Dust is 0.001 ETH and the floor half the mark (92 USD): a dust-sized piece costs 0.092 USD there.
    { name: 'the only provider holds crumbs', provider: { capital: '0.091999', maxLot: '100' } },
    // The curve (from 187.68, 1 % a 90 s step) resets at its 1 h tail, at 125.6: 0.1256 USD for dust there.
    {
      name: 'the only provider pays for dust only below the lowest price the curve reaches',
      provider: { capital: '0.12', maxLot: '100' },
    },
    { name: 'the only provider takes less than dust', provider: { capital: '100000', maxLot: '0.0009' } },
    // Its bid is 2 % under the mark (180.32), where dust costs 0.18032 USD: 0.13 USD pays for it only at 130 or
    // less, and each bid fills at its own price (session 44). Until then it bid lower and slept to 130 (session 28).
    {
      name: 'the only provider pays for dust only below its own bid',
      provider: { capital: '0.13', maxLot: '100' },
    },
  ])(
    'starts no auction when nobody can bid ($name): the fund and ADL take the rest at once',
    async ({ provider }) => {
      // A 6 % half-spread: nothing fills within the 3 % slippage bound, the last resort fills at any price.
      const p = createPipeline({
        venue: { defaults: { baseHalfSpreadPpm: 60_000, maxHalfSpreadPpm: 60_000 } },
      });
      await p.fund('100000');
      await p.tick('ETH-USD', '200');
      await p.open('LONG', '10', '200', '200');
      await p.open('SHORT', '10', '150', '400'); // no ADL counterparty in profit
      if (provider) await p.provider('lp-1', provider.capital, '0.02', provider.maxLot);
      await p.tick('ETH-USD', '184');
      const start = p.clock.nowMs();
      await p.drain();

      const slices = await liquidationsOf(p);
      expect(slices.length).toBeGreaterThan(0);
      for (const l of slices) {
        expect(await p.adapters.auctions.get(`${l.id}:auction`)).toBeUndefined();
        expect(l.history.map((h) => h.state)).not.toContain('AUCTION');
        expect(l.state).toMatch(/^SETTLED_/);
      }
      expect(p.telemetry.total(METRICS.AuctionsSkipped.name)).toBe(slices.length);
      expect(p.errors).toEqual([]);
      expect(p.clock.nowMs() - start).toBeLessThan(60_000);
      expect((await p.check()).violations).toEqual([]);
    },
  );

  it('ends an auction at its first step when its bidder withdrew while it slept', async () => {
    const { p, started } = await auctionWhoseBidderLeft({ fund: '100000' });
    const start = p.clock.nowMs();
    await p.drain();

    const slices = await liquidationsOf(p);
    for (const l of slices) {
      const auction = await p.adapters.auctions.get(`${l.id}:auction`);
      if (l.id === started.id) {
        expect(auction).toMatchObject({ state: 'EXHAUSTED', step: 1, resets: 0, fills: [] });
      }
      expect(l.state).toMatch(/^SETTLED_/);
    }
    expect(p.errors).toEqual([]);
    // The curve was not walked: the default one (90 s steps, 1 h tail, 2 resets) would take hours.
    expect(p.clock.nowMs() - start).toBeLessThan(60 * 60_000);
    expect((await p.check()).violations).toEqual([]);
  });

  it('ends an auction in the transaction that freezes its settlement with the fund and ADL', async () => {
    // After every commit: an ended auction whose liquidation is still AUCTION would be a commit of its own.
    const seen: string[] = [];
    const p = createPipeline({
      venue: { defaults: { baseHalfSpreadPpm: 60_000, maxHalfSpreadPpm: 60_000 } },
      crashHook: (point) => {
        if (point !== 'transactor.commit') return;
        for (const a of p.adapters.auctions.all()) {
          const l = p.adapters.liquidations.all().find((x) => x.id === a.liquidationId);
          seen.push(`${a.state}/${l?.state}`);
        }
      },
    });
    await p.fund('100000');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.open('SHORT', '20', '200', '1000'); // in profit at 184: ADL takes what the auction does not
    await p.provider('lp-1', '100000', '0.02', '100');
    await p.tick('ETH-USD', '184');
    await startLiquidations(p);
    await p.withdrawBids('lp-1');
    await p.drain();

    const [liquidation] = await liquidationsOf(p);
    expect(liquidation?.state).toBe('SETTLED_ADL');
    expect(seen).toContain('EXHAUSTED/SETTLING');
    expect(seen).not.toContain('EXHAUSTED/AUCTION');
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
  });
});

describe('sleeping auctions', () => {
  /**
   * The default 90 s stairstep from mark * 1.02, no market layer, one provider bidding 10 % under the mark (as deep
   * as DEEP_AUCTION's floor lets an auction go; the default's stops at 9 % since session 39).
   */
  async function sleeper() {
    const p = createPipeline({
      config: parseRiskConfig({
        ...DEEP_AUCTION,
        markets: DEEP_AUCTION.markets.map((m) => ({ ...m, slippageBound: '0.000001' })),
      }),
    });
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.provider('lp-1', '100000', '0.10', '100');
    await p.tick('ETH-USD', '184');
    const startedAt = p.clock.nowMs();
    await p.runUntil(startedAt + 1000);
    const [liquidation] = await liquidationsOf(p);
    const auctionId = `${liquidation?.id}:auction`;
    return { p, auctionId, startedAt, auction: async () => (await p.adapters.auctions.get(auctionId))! };
  }

  it('sleeps through the steps its best bid cannot reach at this mark, with the mark that would reach one sooner', async () => {
    const { p, auction, startedAt } = await sleeper();
    // top 187.68 reaches the bid (165.6) at step 13: its first step message, planned as it starts, waits the
    // 900 s it can (10 steps). No step has run.
    const asleep = await auction();
    expect(asleep.state).toBe('RUNNING');
    expect(asleep.step).toBe(0);
    expect(asleep.fills).toEqual([]);
    // Step 9 (the last slept through) costs 187.68 * 0.99^9 = 171.45: the bid reaches it from a mark of 190.5.
    expect(asleep.wakeMark).toBeGreaterThan(parsePrice('190.4'));
    expect(asleep.wakeMark).toBeLessThan(parsePrice('190.6'));
    expect((await p.adapters.markets.get('ETH-USD'))?.wakeMarks).toEqual({ SELL: asleep.wakeMark });
    expect(await p.adapters.auctionQueue.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 1 });

    // A mark that falls or stays below the wake mark leaves it asleep: no step for 899 s.
    await p.runUntil(startedAt + 300_000);
    await p.tick('ETH-USD', '186');
    await p.runUntil(startedAt + 899_000);
    expect((await auction()).step).toBe(0);
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(0);
    // Then it steps, at the mark of then, and sleeps again.
    await p.runUntil(startedAt + 902_000);
    expect((await auction()).step).toBe(1);
    expect(p.errors).toEqual([]);
  });

  it('a tick whose mark reaches the wake mark wakes it at once; it fills at once when the bid reaches the price', async () => {
    const { p, auction, startedAt } = await sleeper();
    await p.runUntil(startedAt + 600_000);
    // 193 passes the wake mark (190.5), but the bid (173.7) is short of step 6 (176.70) and step 7 (174.93): it
    // sleeps through step 7 to step 8 (173.18), now woken from 174.93 / 0.9 = 194.37.
    await p.tick('ETH-USD', '193');
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(1);
    await p.runUntil(startedAt + 601_000);
    const again = await auction();
    expect(again).toMatchObject({ state: 'RUNNING', step: 1, fills: [] });
    expect(again.wakeMark).toBeGreaterThan(parsePrice('194.3'));
    expect(again.wakeMark).toBeLessThan(parsePrice('194.4'));
    expect((await p.adapters.markets.get('ETH-USD'))?.wakeMarks).toEqual({ SELL: again.wakeMark });
    // 200: the bid (180) takes step 6's price.
    await p.tick('ETH-USD', '200');
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(2);
    expect((await p.adapters.markets.get('ETH-USD'))?.wakeMarks).toBeUndefined();
    await p.runUntil(startedAt + 602_000);
    const woken = await auction();
    expect(woken.state).toBe('CLEARED');
    expect(woken.fills.length).toBeGreaterThan(0);
    for (const fill of woken.fills) expect(fill.price * 10n).toBeLessThanOrEqual(parsePrice('200') * 9n);
    // The messages it slept on find their steps taken and change nothing: an older step's is an orphan, and
    // the planned twin of the woken step that ended it, and neither reads anything more; the woken step that
    // ended it (redelivered) finds the settlement done.
    expect(woken.endedBy).toBe('wake');
    const liquidationId = woken.liquidationId;
    const settled = await p.adapters.liquidations.get(liquidationId);
    expect(settled?.state).toMatch(/^SETTLED_/);
    const read: string[] = [];
    const watched = {
      ...p.deps,
      liquidations: {
        ...p.deps.liquidations,
        get: async (id: string) => {
          read.push(id);
          return p.deps.liquidations.get(id);
        },
      },
      auctions: {
        ...p.deps.auctions,
        get: async (id: string) => {
          read.push(`auction ${id}`);
          return p.deps.auctions.get(id);
        },
      },
      reader: {
        ...p.deps.reader,
        auctionAndMarket: async (id: string, symbol: string) => {
          read.push(`auction ${id} and market ${symbol}`);
          return p.deps.reader.auctionAndMarket(id, symbol);
        },
      },
    };
    const orphan = { auctionId: woken.id, step: 0, symbol: 'ETH-USD' };
    expect(await processAuctionStep(orphan, watched)).toEqual({ status: 'stale' });
    expect(read).toEqual([`auction ${woken.id} and market ETH-USD`]);
    read.length = 0;
    const twin = { auctionId: woken.id, step: woken.step - 1, symbol: 'ETH-USD' };
    expect(await processAuctionStep(twin, watched)).toEqual({ status: 'stale' });
    expect(read).toEqual([`auction ${woken.id} and market ETH-USD`]);
    // The ending step, as sent (with its market) and as earlier versions sent it (without).
    const finished = { status: 'finished', liquidationState: settled?.state };
    read.length = 0;
    const ending = { auctionId: woken.id, step: woken.step - 1, woken: true } as const;
    expect(await processAuctionStep({ ...ending, symbol: 'ETH-USD' }, watched)).toEqual(finished);
    expect(read).toEqual([`auction ${woken.id} and market ETH-USD`, liquidationId]);
    read.length = 0;
    expect(await processAuctionStep(ending, watched)).toEqual(finished);
    expect(read).toEqual([`auction ${woken.id}`, liquidationId]);
    await p.drain();
    expect(await auction()).toEqual(woken);
    expect(await p.adapters.liquidations.get(liquidationId)).toEqual(settled);
    expect(p.errors).toEqual([]);
    await expectReconciled(p);
  });

  it('a tick wakes at most maxWakesPerTick sleepers per side, those reached first; the next tick wakes the rest', async () => {
    const MAX_WAKES_PER_TICK = 25;
    const p = createPipeline({ maxWakesPerTick: MAX_WAKES_PER_TICK });
    await p.tick('ETH-USD', '200');
    const count = MAX_WAKES_PER_TICK + 2;
    for (let i = 0; i < count; i++) {
      const wakeMark = parsePrice('201') + BigInt(i);
      await p.adapters.auctions.create({
        id: `a-${String(i).padStart(4, '0')}`,
        liquidationId: `l-${i}`,
        symbol: 'ETH-USD',
        direction: 'SELL',
        lot: parseBase('1'),
        remainingLot: parseBase('1'),
        top: parsePrice('204'),
        startedAtMs: T0,
        resets: 0,
        step: 3,
        state: 'RUNNING',
        fills: [],
        wakeMark,
        version: 0,
      });
      await p.adapters.markets.coverWakeMark('ETH-USD', 'SELL', wakeMark);
    }
    await p.tick('ETH-USD', '210');
    const first = await p.adapters.auctionQueue.receive(10, 30);
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(MAX_WAKES_PER_TICK);
    expect((await p.adapters.auctionQueue.depth()).visible + first.length).toBe(MAX_WAKES_PER_TICK);
    expect(parseAuctionStepMessage(first[0]!.body)).toEqual({
      auctionId: 'a-0000',
      step: 3,
      symbol: 'ETH-USD',
      woken: true,
      dueAtMs: p.clock.nowMs(),
    });
    // The side's wake mark is the first one left: still reached, so the next tick goes on.
    expect((await p.adapters.markets.get('ETH-USD'))?.wakeMarks?.SELL).toBe(
      parsePrice('201') + BigInt(MAX_WAKES_PER_TICK),
    );
    // Their steps run (here: as a step that wakes up and stays awake writes them) before the next tick.
    for (let i = 0; i < MAX_WAKES_PER_TICK; i++) {
      const { wakeMark: _, ...woken } = (await p.adapters.auctions.get(`a-${String(i).padStart(4, '0')}`))!;
      await p.adapters.auctions.replace({ ...woken, step: 4, version: 1 }, 0);
    }
    await p.tick('ETH-USD', '210.5');
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(count);
    expect((await p.adapters.markets.get('ETH-USD'))?.wakeMarks).toBeUndefined();
  });

  it('a provider registered (or changed) through admin wakes every sleeper of its markets: they see its bid now', async () => {
    const { p, auction, startedAt } = await sleeper();
    await p.runUntil(startedAt + 200_000);
    const deps = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    // A 1 % bid (182.16 at the mark of 184) is short of step 2's price (183.95) and reached by step 3's (182.1).
    const result = await handleAdmin(
      {
        action: 'registerProvider',
        id: 'lp-2',
        capital: '100000',
        maxDiscount: '0.01',
        maxLot: '100',
        symbols: ['ETH-USD'],
      },
      deps,
    );
    expect(result).toMatchObject({ ok: true, id: 'lp-2', woken: 1 });
    await p.runUntil(startedAt + 201_000);
    // Woken (it slept towards step 10), it plans again on the new bid: step 3, at 270 s.
    expect(await auction()).toMatchObject({ state: 'RUNNING', step: 1, fills: [] });
    await p.runUntil(startedAt + 271_000);
    const taken = await auction();
    expect(taken.state).toBe('CLEARED');
    expect(taken.fills.map((f) => f.providerId)).toEqual(['lp-2']);
    expect(p.errors).toEqual([]);
  });

  it('a failed wake after a provider registration says why; the provider is registered all the same', async () => {
    const { p } = await sleeper();
    vi.spyOn(p.adapters.auctions, 'sleepers').mockRejectedValueOnce(new Error('ThrottlingException'));
    const deps = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    const result = await handleAdmin(
      {
        action: 'registerProvider',
        id: 'lp-2',
        capital: '1000',
        maxDiscount: '0.01',
        maxLot: '1',
        symbols: ['ETH-USD'],
      },
      deps,
    );
    // The auction function goes on with the market's wake from where it failed (registration-wake-unbounded).
    expect(result).toEqual({
      ok: true,
      id: 'lp-2',
      woken: 0,
      wakeContinues: ['ETH-USD'],
      wakeError: 'ETH-USD SELL sleepers: ThrottlingException',
    });
    expect(await p.adapters.providers.get('lp-2')).toMatchObject({ id: 'lp-2', version: 0 });
  });

  it('a wake that fails is reported and the tick goes on: the auction steps when its message comes', async () => {
    const { p, auction, startedAt } = await sleeper();
    const sleepers = vi
      .spyOn(p.adapters.auctions, 'sleepers')
      .mockRejectedValueOnce(new Error('ProvisionedThroughputExceededException'));
    await p.runUntil(startedAt + 600_000);
    const outcome = await p.tick('ETH-USD', '195');
    expect(outcome.status).toBe('accepted');
    expect(sleepers).toHaveBeenCalledTimes(1);
    expect(p.telemetry.warnings).toContain('sleeping auctions not woken; they step when their messages come');
    expect(p.telemetry.total(METRICS.AuctionWakeFailures.name)).toBe(1);
    expect((await auction()).step).toBe(0);
    await p.runUntil(startedAt + 902_000);
    expect((await auction()).state).toBe('CLEARED');
    expect(p.errors).toEqual([]);
  });
});

describe('insurance and ADL layers', () => {
  it('pays a shortfall below the bankruptcy price from the fund (SETTLED_INSURANCE)', async () => {
    const p = createPipeline();
    await p.fund('100000');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200'); // bankrupt at 180
    await p.open('SHORT', '10', '200', '400'); // an ADL counterparty, never needed here
    await p.tick('ETH-USD', '175'); // gapped through the bankruptcy price
    await p.drain();

    const [liquidation] = await liquidationsOf(p);
    expect(liquidation?.state).toBe('SETTLED_INSURANCE');
    const paid = liquidation!.settlement!.insurancePaid;
    expect(paid).toBeGreaterThan(0n);
    const fund = await p.adapters.ledger.balance(INSURANCE_ACCOUNT);
    expect(fund.balance).toBe(parseQuote('100000') - paid);
    expect(liquidation!.settlement!.badDebt).toBe(0n);
    await expectReconciled(p);
  });

  it('socializes what an empty fund cannot pay through ADL, exactly (SETTLED_ADL)', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    const short = await p.open('SHORT', '10', '200', '400');
    await p.tick('ETH-USD', '175');
    await p.drain();

    const [liquidation] = await liquidationsOf(p);
    expect(liquidation?.state).toBe('SETTLED_ADL');
    const shortfall = liquidation!.settlement!.shortfall;
    const covered = liquidation!.settlement!.adlCovered;
    expect(shortfall).toBeGreaterThan(0n);
    expect(covered + liquidation!.settlement!.badDebt).toBe(shortfall);
    const counterparty = await p.adapters.positions.get(short.id);
    expect(counterparty?.version).toBeGreaterThan(short.version);
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(0n);
  });

  it('covers a deficit with nothing left to close from collateral, past any number of counterparties without it', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200');
    const funded = await p.open('SHORT', '10', '200', '400');
    // More profitable shorts than one settlement takes, with no collateral left (a haircut took it): infinite
    // leverage ranks them first, yet with nothing to close they can give nothing.
    for (let i = 0; i < MAX_ADL_COUNTERPARTIES + 1; i++) {
      const drained = await p.open('SHORT', '0.1', '200', '10');
      const stored = (await p.adapters.positions.get(drained.id))!;
      await p.adapters.positions.replace(
        { ...stored, collateral: 0n, version: stored.version + 1 },
        stored.version,
      );
    }
    await p.tick('ETH-USD', '175');
    await p.drain();

    const liquidation = (await liquidationsOf(p)).find((l) => l.positionId === long.id);
    expect(liquidation?.state).toBe('SETTLED_ADL');
    // The market closed the long (nothing left for ADL to close); the funded short covered its whole deficit.
    expect(liquidation?.settlement?.adlClosedSize).toBe(0n);
    expect(liquidation?.settlement?.badDebt).toBe(0n);
    expect(liquidation?.settlement?.adlCovered).toBe(liquidation?.settlement?.shortfall);
    expect((await p.adapters.positions.get(funded.id))?.collateral).toBe(
      parseQuote('400') - liquidation!.settlement!.shortfall,
    );
  });

  it("takes a counterparty's profit once, however many deficits ADL covers after it (adl-profit-twice)", async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    for (let i = 0; i < 4; i++) await p.open('LONG', '10', '200', '200');
    const short = await p.open('SHORT', '1', '200', '1000'); // 25 USD of profit at 175
    await p.tick('ETH-USD', '175');
    await p.drain();

    const settled = await liquidationsOf(p);
    expect(settled.map((l) => l.state)).toEqual(Array(4).fill('SETTLED_ADL'));
    const covered = settled.reduce((total, l) => total + l.settlement!.adlCovered, 0n);
    const after = (await p.adapters.positions.get(short.id))!;
    // It gave its whole profit, once, out of its collateral, and keeps the profit unrealized as given.
    expect(covered).toBe(parseQuote('25'));
    expect(after.collateral).toBe(parseQuote('975'));
    expect(after.adlProfitGiven).toBe(parseQuote('25'));
    for (const l of settled) {
      const s = l.settlement!;
      expect(s.insurancePaid + s.adlCovered + s.badDebt).toBe(s.shortfall);
    }
    expect((await p.check()).violations).toEqual([]);
  });

  describe('ADL rounds: a deficit beyond one transaction of counterparties', () => {
    /** A long whose market close leaves about 668 USD of deficit, and `shorts` that can give 1 USD each. */
    async function deficitBeyondOneRound(
      shorts: number,
      options: Parameters<typeof createPipeline>[0] = {},
      created: (p: Pipeline) => void = () => {},
    ) {
      const p = createPipeline(options);
      created(p);
      await p.tick('ETH-USD', '200');
      const long = await p.open('LONG', '100', '200', '2000');
      const counterparties: PositionRecord[] = [];
      // 2.5 USD of profit each at 175, but 1 USD of collateral: a haircut takes 1.
      for (let i = 0; i < shorts; i++) counterparties.push(await p.open('SHORT', '0.1', '200', '1'));
      await p.tick('ETH-USD', '175');
      await p.drain();
      const liquidation = (await liquidationsOf(p)).find((l) => l.positionId === long.id)!;
      const rounds = liquidation.context?.adlRounds ?? 0;
      const given = await Promise.all(
        counterparties.map(async (c) => c.collateral - (await p.adapters.positions.get(c.id))!.collateral),
      );
      return { p, liquidation, rounds, given };
    }

    it('carries what one transaction of counterparties leaves to further rounds, until it is covered', async () => {
      const { p, liquidation, rounds, given } = await deficitBeyondOneRound(800);
      const s = liquidation.settlement!;
      expect(liquidation.state).toBe('SETTLED_ADL');
      expect(s.shortfall).toBeGreaterThan(parseQuote('600'));
      expect(s.adlCovered).toBe(s.shortfall);
      expect(s.badDebt).toBe(0n);
      expect(liquidation.context?.adlRound).toBeUndefined();
      // 90 a round: more rounds than one delivery runs (the rest came in a message of its own).
      expect(rounds).toBe(Math.ceil(Number(s.shortfall) / 90_000_000) - 1);
      expect(rounds).toBeGreaterThan(4);
      expect(given.reduce((a, b) => a + b, 0n)).toBe(s.shortfall);
      expect(given.every((g) => g >= 0n && g <= parseQuote('1'))).toBe(true);
      expect(p.telemetry.observations.filter((o) => o.metric === METRICS.BadDebt.name)).toEqual([]);
      expect((await p.check()).violations).toEqual([]);
      expect(p.errors).toEqual([]);
    });

    it('ends when the side has no one left to give, and reports the rest as bad debt once', async () => {
      const { p, liquidation, rounds, given } = await deficitBeyondOneRound(150);
      const s = liquidation.settlement!;
      expect(s.adlCovered).toBe(parseQuote('150'));
      expect(s.badDebt).toBe(s.shortfall - parseQuote('150'));
      // One round takes the 150 shorts (ADL's orders here show every write at once: nothing to confirm later).
      expect(rounds).toBe(1);
      expect(given.every((g) => g === parseQuote('1'))).toBe(true);
      expect(p.telemetry.observations.filter((o) => o.metric === METRICS.BadDebt.name)).toEqual([
        {
          metric: METRICS.BadDebt.name,
          value: Number(formatQuote(s.badDebt)),
          dimensions: { Market: 'ETH-USD' },
        },
      ]);
      expect((await p.check()).violations).toEqual([]);
    });

    it('a delivery that dies between rounds is resumed by the next, which takes nobody twice', async () => {
      let armed = true;
      let pipeline: Pipeline | undefined;
      const { p, liquidation, given } = await deficitBeyondOneRound(
        800,
        {
          crashHook: (point) => {
            // Just after the commit of round 2, before round 3.
            if (!armed || point !== 'transactor.commit') return;
            if (pipeline?.adapters.liquidations.all().some((l) => l.context?.adlRound?.round === 2)) {
              armed = false;
              throw new InjectedCrash(point);
            }
          },
        },
        (created) => {
          pipeline = created;
        },
      );
      expect(armed).toBe(false);
      expect(liquidation.settlement!.badDebt).toBe(0n);
      expect(given.reduce((a, b) => a + b, 0n)).toBe(liquidation.settlement!.shortfall);
      expect(given.every((g) => g <= parseQuote('1'))).toBe(true);
      expect((await p.check()).violations).toEqual([]);
    });

    it('the baseline (market-only) runs no rounds', async () => {
      const { liquidation, rounds } = await deficitBeyondOneRound(200, { strategy: 'market-only' });
      expect(rounds).toBe(0);
      expect(liquidation.settlement!.adlCovered).toBe(0n);
    });
  });

  it('deleverages the counterparty records its plan read, without reading them again', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    const short = await p.open('SHORT', '10', '200', '400');
    const reads = vi.spyOn(p.adapters.reader, 'positions');
    await p.tick('ETH-USD', '175');
    await p.drain();

    const [liquidation] = await liquidationsOf(p);
    expect(liquidation?.state).toBe('SETTLED_ADL');
    const counterparty = await p.adapters.positions.get(short.id);
    expect(counterparty?.version).toBe(short.version + 1);
    // The plan read the side (the queue's records); the settlement wrote on those, at the versions it froze.
    expect(reads.mock.calls.filter(([ids]) => ids.includes(short.id))).toEqual([]);
  });

  it('plans again after a counterparty changed under a plan whose money moved, applying only the difference', async () => {
    // Two gapped longs settle at once against one short that can take 12 of their 20: whichever commits second
    // finds the short changed after its money moved, in some interleavings of their awaits.
    let replanned = 0;
    for (let delay = 0; delay <= 40; delay += 2) {
      const p = createPipeline();
      await p.tick('ETH-USD', '200', { sequence: 1 });
      await p.fund('100000');
      await p.open('LONG', '10', '200', '200');
      await p.open('LONG', '10', '200', '200');
      await p.open('SHORT', '12', '200', '2000');
      p.venue.faults.emptyBooks.add('ETH-USD');
      await p.tick('ETH-USD', '175', { sequence: 2 });
      const [a, b] = p.adapters.liquidations.all();
      await Promise.all([
        processLiquidation({ liquidationId: a!.id }, p.deps),
        processLiquidation({ liquidationId: b!.id }, withDelayedStart(p.deps, delay)),
      ]);
      const journal = await p.adapters.ledger.journal(INSURANCE_ACCOUNT);
      if (journal.some((e) => e.idempotencyKey.endsWith(':r1'))) replanned += 1;
      // Each liquidation's journal sums to what its settlement says; money is conserved to the unit.
      expect((await p.check()).violations.filter((v) => !/QUEUED with no message/.test(v))).toEqual([]);
    }
    expect(replanned).toBeGreaterThan(0);
  });

  it('a redelivered settlement whose counterparty shrank since its plan plans again before moving money', async () => {
    let armed = true;
    const p: Pipeline = createPipeline({
      crashHook: (point) => {
        // The first plan is frozen (SETTLING): die before its money moves.
        if (
          armed &&
          point === 'transactor.commit' &&
          p.adapters.liquidations.all().some((l) => l.state === 'SETTLING')
        ) {
          armed = false;
          throw new InjectedCrash(point);
        }
      },
    });
    await p.tick('ETH-USD', '200', { sequence: 1 });
    await p.fund('100000');
    await p.open('LONG', '10', '200', '200');
    await p.open('LONG', '10', '200', '200');
    // The most leveraged short is the first plan's only counterparty; the other settles from it meanwhile.
    await p.open('SHORT', '15', '200', '1000');
    await p.open('SHORT', '10', '200', '2000');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '175', { sequence: 2 });
    await p.drain();
    expect(armed).toBe(false);
    const liquidations = p.adapters.liquidations.all();
    expect(liquidations.map((l) => l.state)).toEqual(['SETTLED_ADL', 'SETTLED_ADL']);
    const replanned = liquidations.find((l) => l.history.some((h) => h.note === 'inputs refreshed'));
    expect(replanned).toBeDefined();
    const journal = await p.adapters.ledger.journal(INSURANCE_ACCOUNT);
    // Planned again before any money moved: the new plan's movements under keys of its own, none of the old.
    const keys = journal.filter((e) => e.reference === replanned?.id).map((e) => e.idempotencyKey);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key).toMatch(/:r1$/);
    expect((await p.check()).violations).toEqual([]);
  });
});

/** The deps with the first call of each port delayed by `turns` microtasks: one interleaving of two deliveries. */
function withDelayedStart(deps: SettlementDeps, turns: number): SettlementDeps {
  let first = true;
  const delayed = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(t, prop) {
        const value = Reflect.get(t, prop, t);
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (first) {
            first = false;
            for (let n = 0; n < turns; n++) await Promise.resolve();
          }
          return (value as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    });
  return {
    ...deps,
    reader: delayed(deps.reader),
    positions: delayed(deps.positions),
    markets: delayed(deps.markets),
    liquidations: delayed(deps.liquidations),
    auctions: delayed(deps.auctions),
    providers: delayed(deps.providers),
    ledger: delayed(deps.ledger),
    transactor: delayed(deps.transactor),
    venue: delayed(deps.venue),
  };
}

/** Rankings of a side a spy saw: each threshold search starts with the first page of the entry order. */
const rankings = (calls: readonly unknown[][], side: Side): number =>
  calls.filter(([, s, order, , cursor]) => s === side && order === 'entry' && cursor === undefined).length;

describe('ADL queue (AdlSnapshots)', () => {
  /** Four longs gap through bankruptcy at one mark with an empty fund; six shorts in profit take it. */
  async function cascade(adlSnapshots?: AdlSnapshots) {
    const p = createPipeline(adlSnapshots ? { adlSnapshots } : {});
    await p.tick('ETH-USD', '200');
    for (let i = 0; i < 4; i++) await p.open('LONG', '10', '200', '200');
    for (let i = 0; i < 6; i++) await p.open('SHORT', `${3 + i}`, `${200 + i}`, `${300 + 50 * i}`);
    const sideReads = vi.spyOn(p.adapters.positions, 'queryAdlOrder');
    await p.tick('ETH-USD', '175');
    await p.drain();
    const shortSideReads = rankings(sideReads.mock.calls, 'SHORT');
    const settled = (await liquidationsOf(p)).map((l) => ({ state: l.state, settlement: l.settlement }));
    return { p, shortSideReads, settled };
  }

  it('reads the opposite side once per mark and settles exactly as reading it every time', async () => {
    const everyTime = await cascade();
    const queued = await cascade(new AdlSnapshots());
    expect(everyTime.settled.filter((s) => s.state === 'SETTLED_ADL')).toHaveLength(4);
    expect(everyTime.shortSideReads).toBe(4);
    expect(queued.shortSideReads).toBe(1);
    // The same money: later settlements planned on the counterparties as earlier ADLs left them.
    expect(queued.settled).toEqual(everyTime.settled);
    for (const id of (
      await everyTime.p.adapters.positions.queryCrossed('ETH-USD', 'SHORT', 10n ** 30n, 100)
    ).positions.map((x) => x.id)) {
      expect(await queued.p.adapters.positions.get(id)).toEqual(await everyTime.p.adapters.positions.get(id));
    }
    await expectReconciled(queued.p);
  });

  it('plans on a counterparty as the settlements before left it, also when it ranked it before', async () => {
    // The 35 ETH short ranks first and takes the longs' sizes one after another: each plan must see what it
    // has left (a ranking kept from before it changed would plan on 35 ETH to the end).
    async function run(adlSnapshots?: AdlSnapshots) {
      const p = createPipeline(adlSnapshots ? { adlSnapshots } : {});
      await p.tick('ETH-USD', '200');
      for (let i = 0; i < 4; i++) await p.open('LONG', '10', '200', '200');
      const big = await p.open('SHORT', '35', '210', '2000');
      await p.open('SHORT', '20', '201', '2000');
      p.venue.faults.emptyBooks.add('ETH-USD'); // nor market nor auction (no provider): ADL takes the sizes
      await p.tick('ETH-USD', '175');
      await p.drain();
      const settled = (await liquidationsOf(p)).map((l) => ({ state: l.state, settlement: l.settlement }));
      return { p, settled, big: await p.adapters.positions.get(big.id) };
    }
    const everyTime = await run();
    const queued = await run(new AdlSnapshots());
    expect(everyTime.settled.filter((s) => s.state === 'SETTLED_ADL')).toHaveLength(4);
    expect(everyTime.big?.size).toBe(parseBase('5')); // three longs' 10 ETH each; the fourth's went elsewhere
    expect(queued.settled).toEqual(everyTime.settled);
    expect(queued.big).toEqual(everyTime.big);
    expect(queued.p.errors).toEqual([]);
    await expectReconciled(queued.p);
  });

  it('does not rank a side again when its queue held all of it and could not take a slice', async () => {
    // Four longs gap through bankruptcy; the two shorts in profit take 2 ETH of their 40, then no one is left.
    const p = createPipeline({ adlSnapshots: new AdlSnapshots() });
    await p.tick('ETH-USD', '200');
    for (let i = 0; i < 4; i++) await p.open('LONG', '10', '200', '200');
    for (let i = 0; i < 2; i++) await p.open('SHORT', '1', '201', '300');
    await p.open('SHORT', '5', '150', '300'); // at a loss at 175: never a counterparty
    p.venue.faults.emptyBooks.add('ETH-USD');
    const sideReads = vi.spyOn(p.adapters.positions, 'queryAdlOrder');
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs() + 1_000);

    const slices = await liquidationsOf(p);
    // ADL took both shorts' sizes; every other slice found the queue spent and went on to the last resort.
    const adl = slices.reduce((t, l) => t + (l.settlement?.adlClosedSize ?? 0n), 0n);
    expect(adl).toBe(parseBase('2'));
    expect(p.telemetry.total('LastResortWaits')).toBeGreaterThanOrEqual(4);
    expect(rankings(sideReads.mock.calls, 'SHORT')).toBe(1);
    expect(p.errors).toEqual([]);
  });

  it('ranks a side exactly from prefixes of its two ADL orders, whatever its size', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    // 3,000 shorts in profit at 175: entries and collaterals spread so that neither order alone is the ranking.
    const side: PositionRecord[] = [];
    for (let i = 0; i < 3000; i++) {
      side.push(await p.open('SHORT', '1', String(180 + ((i * 37) % 40)), String(20 + ((i * 53) % 400))));
    }
    const reads = vi.spyOn(p.adapters.positions, 'queryAdlOrder');
    const top = await readAdlTop(p.adapters.positions, 'ETH-USD', 'SHORT', parsePrice('175'), 'LONG', 90);
    const exact = topEntriesForAdl(side, parsePrice('175'), 'LONG', 90).map((e) => e.candidate.id);
    expect(top.entries.map((e) => e.candidate.id)).toEqual(exact);
    expect(top.complete).toBe(false);
    // Fewer positions read than the side holds (pages of 1,000 of each order, so at most two rounds here).
    const read = reads.mock.results.length;
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(6);
    const positionsRead = (
      await Promise.all(
        reads.mock.results.map((r) => r.value as ReturnType<typeof p.adapters.positions.queryAdlOrder>),
      )
    ).reduce((sum, page) => sum + page.positions.length, 0);
    expect(positionsRead).toBeLessThan(side.length);
  });

  it('serves a queue only at its own mark and while fresh', () => {
    const queue = new AdlSnapshots(2_000);
    const mark = parsePrice('175');
    const taken = new AdlQueue(mark, T0, []);
    queue.put('ETH-USD', 'SHORT', taken);
    expect(queue.get('ETH-USD', 'SHORT', mark, T0 + 2_000)).toBe(taken);
    expect(queue.get('ETH-USD', 'SHORT', mark, T0 + 2_001)).toBeUndefined();
    expect(queue.get('ETH-USD', 'SHORT', mark, T0 - 1)).toBeUndefined();
    expect(queue.get('ETH-USD', 'SHORT', mark + 1n, T0)).toBeUndefined();
    expect(queue.get('ETH-USD', 'LONG', mark, T0)).toBeUndefined();
    expect(queue.get('BTC-USD', 'SHORT', mark, T0)).toBeUndefined();
  });
});

describe('what ADL cannot take', () => {
  it('carries the size more counterparties than one transaction holds would take to the next slice', async () => {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '50', '200', '1000'); // bankrupt at 180
    // 200 shorts of 0.5 in profit: ADL needs 100 of them for the 50, one transaction holds 90.
    for (let i = 0; i < 200; i++) await p.open('SHORT', '0.5', '200', '50');
    await p.tick('ETH-USD', '175');
    await p.drain();

    const slices = await liquidationsOf(p);
    const carried = slices.filter((l) => l.settlement !== undefined && l.settlement.carriedSize !== 0n);
    expect(carried.length).toBeGreaterThan(0);
    for (const l of slices) expect(['SETTLED_ADL', 'SETTLED_INSURANCE', 'SETTLED_MARKET']).toContain(l.state);
    expect((await p.adapters.positions.get(long.id))?.state).toBe('CLOSED');
    const adlTotal = slices.reduce((t, l) => t + (l.settlement?.adlClosedSize ?? 0n), 0n);
    expect(adlTotal).toBe(parseBase('50'));
    expect(p.errors).toEqual([]);
    const report = await p.check();
    expect(report.violations).toEqual([]);
    await expectReconciled(p);
  });

  it("closes within the last resort's bound when market, auction and ADL can take none of a slice", async () => {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
    await p.fund('100000');
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200'); // 10x: liquidation ~184.6, bankrupt at 180
    await p.open('SHORT', '10', '150', '400'); // the other side holds no profit at 184
    await p.tick('ETH-USD', '184');
    await p.drain();

    const slices = await liquidationsOf(p);
    expect(slices.length).toBeGreaterThan(0);
    for (const l of slices) {
      expect(l.state).toMatch(/^SETTLED_(MARKET|INSURANCE)$/);
      expect(l.settlement!.lastResortClosedSize).toBeGreaterThan(0n);
      expect(l.settlement?.lastResortClosedSize).toBe(l.settlement?.marketClosedSize);
    }
    expect(p.telemetry.total('LastResortOrders')).toBe(slices.length);
    const lastResortOrders = [...p.orders.orders.values()].filter((o) =>
      o.order.clientOrderId.endsWith(':last-resort:0'),
    );
    expect(lastResortOrders).toHaveLength(slices.length);
    // 10 % of the mark at most (the default lastResortSlippageBound), never any price.
    const limit = parsePrice('165.6');
    for (const { order, result } of lastResortOrders) {
      expect(order.limitPrice).toBe(limit);
      for (const fill of result?.fills ?? []) expect(fill.price).toBeGreaterThanOrEqual(limit);
    }
    expect((await p.adapters.positions.get(long.id))?.state).not.toBe('LIQUIDATING');
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
    await expectReconciled(p);
  });

  it('leaves what the last resort cannot fill within its bound to a next slice, after the cooldown', async () => {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
    await p.fund('100000');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.open('SHORT', '10', '150', '400');
    p.venue.faults.maxFillPerOrder = parseBase('1');
    await p.tick('ETH-USD', '184');
    const settledAt = p.clock.nowMs();
    await p.runUntil(settledAt + 29_000);

    const [first, next, ...none] = await liquidationsOf(p);
    expect(none).toEqual([]);
    expect(first?.settlement).toMatchObject({
      lastResortClosedSize: parseBase('1'),
      carriedSize: parseBase('9'),
    });
    // The book it sold into gets 30 s (lastResortCooldownSeconds) before the next slice sells again.
    expect(next?.state).toBe('QUEUED');
    expect(p.adapters.liquidationQueue.pending()).toMatchObject([
      { body: dueBody({ liquidationId: next?.id }), state: 'delayed' },
    ]);
    await p.drain();
    const slices = await liquidationsOf(p);
    for (const l of slices) expect(l.state).toMatch(/^SETTLED_/);
    expect(slices.length).toBeGreaterThan(2);
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
  });

  it('a slice that closes part of a position leaves the remainder only its share of the profit ADL took before', async () => {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
    await p.fund('100000');
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const opened = await p.open('LONG', '10', '200', '200');
    // ADL took 40 USD of its profit when it was a counterparty (a haircut out of collateral).
    const stored = (await p.adapters.positions.get(opened.id))!;
    await p.adapters.positions.replace(
      withLiquidationPrice(
        { ...stored, adlProfitGiven: parseQuote('40'), version: stored.version + 1 },
        p.config,
      ),
      stored.version,
    );
    await p.open('SHORT', '10', '150', '400');
    p.venue.faults.maxFillPerOrder = parseBase('1');
    await p.tick('ETH-USD', '184');
    await p.runUntil(p.clock.nowMs() + 29_000);
    const [first] = await liquidationsOf(p);
    expect(first?.settlement).toMatchObject({ carriedSize: parseBase('9') });
    // 1 of 10 closed: the remainder keeps 9/10 of it (it kept all 40 before, in the trader's favour).
    const remainder = await p.adapters.positions.get(opened.id);
    expect(remainder?.size).toBe(parseBase('9'));
    expect(remainder?.adlProfitGiven).toBe(parseQuote('36'));
  });

  it("a redelivered tick leaves a next slice waiting out the last resort's cooldown alone (slice-cooldown-bypass)", async () => {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
    await p.fund('100000');
    await p.tick('ETH-USD', '200'); // seq 1: a market's first print waits for a second
    await p.open('LONG', '10', '200', '200');
    await p.open('SHORT', '10', '150', '400');
    p.venue.faults.maxFillPerOrder = parseBase('1');
    const at = p.clock.nowMs();
    await p.tick('ETH-USD', '184'); // seq 2: opens the market and crosses the long
    await p.runUntil(at + 5_000);
    const [first, next] = p.adapters.liquidations.all();
    expect(first?.settlement).toMatchObject({ carriedSize: parseBase('9') });
    expect(next?.state).toBe('QUEUED');
    expect(next?.tickKey).toBe(first?.tickKey); // the slice inherits ETH-USD#2
    // EventBridge delivers tick 2 again (at least once): a duplicate re-sends what its key lists as QUEUED.
    await handleTick(
      { symbol: 'ETH-USD', markPrice: parsePrice('184'), timestampMs: at, sequence: 2, source: 'test' },
      p.marginDeps,
      p.clock.nowMs(),
    );
    // The next slice must wait the 30 s cooldown (lastResortCooldownSeconds): no message of it visible now.
    const visible = p.adapters.liquidationQueue
      .pending()
      .filter((m) => JSON.parse(m.body).liquidationId === next?.id && m.state !== 'delayed');
    expect(visible).toEqual([]);
    // Delivered now, it sells into the book the last slice emptied 5 s ago.
    const before = p.orders.orders.size;
    await p.runUntil(p.clock.nowMs() + 1_000);
    expect(p.orders.orders.size).toBe(before);
  });

  it('waits longer after each attempt that found nothing, up to the longest SQS delay', () => {
    expect([0, 1, 2, 3, 4, 10, 60].map((attempt) => lastResortWaitSeconds(60, attempt))).toEqual([
      60, 120, 240, 480, 900, 900, 900,
    ]);
    expect(lastResortWaitSeconds(1, 3)).toBe(8);
  });

  it('waits for the book when nothing is within the bound, asking it again at each attempt, then closes', async () => {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    await p.runUntil(p.clock.nowMs() + 10 * 60_000);

    // No bid, no fund, no ADL: the last resort found nothing and waits (60 s, 120 s, 240 s...): no error, no
    // dead letter. Its first order filled nothing; each wait after it asks the book for a quote, finds no
    // price within the bound, and waits again with no order (its message and the record count the waits; the
    // record names the message that carries the wait on: waits43-one-chain).
    const [waiting] = await liquidationsOf(p);
    expect(waiting?.state).toBe('MARKET_EXECUTED');
    expect(waiting?.context?.lastResortAttempt).toBe(1);
    expect(waiting?.history.filter((e) => e.note?.startsWith('last resort'))).toHaveLength(1);
    expect(p.telemetry.total('LastResortWaits')).toBe(4);
    expect(p.orders.quotes).toBe(3);
    expect(p.adapters.liquidationQueue.pending()).toMatchObject([
      {
        // With the mark ADL last found nobody at: a mark below it would have it plan again.
        body: dueBody({
          liquidationId: waiting?.id,
          lastResortWaits: 4,
          lastResortFillsSeen: 0,
          adlJudgedAtE8: '18400000000',
        }),
        state: 'delayed',
      },
    ]);
    expect(p.errors).toEqual([]);
    expect(p.adapters.liquidationDeadLetters.pending()).toEqual([]);
    const id = waiting!.id;
    const ordersOf = () => [...p.orders.orders.keys()].filter((o) => o.startsWith(`${id}:last-resort`));
    expect(ordersOf()).toEqual([`${id}:last-resort:0`]);
    expect(p.orders.orders.get(`${id}:last-resort:0`)?.result?.fills).toEqual([]);
    expect((await p.adapters.positions.get(long.id))?.state).toBe('LIQUIDATING');

    // The book is back: the next quote finds a bid within the bound, and the attempt's order sells.
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await p.drain();
    const [settled] = await liquidationsOf(p);
    expect(settled?.state).toMatch(/^SETTLED_/);
    expect(ordersOf()).toEqual([0, 1].map((n) => `${id}:last-resort:${n}`));
    expect(p.orders.orders.get(`${id}:last-resort:1`)?.result?.fills.length).toBeGreaterThan(0);
    expect(settled?.settlement?.lastResortClosedSize).toBeGreaterThan(0n);
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
  });

  it.each([
    { side: 'LONG' as const, crash: '184', quoted: 'bid' as const },
    { side: 'SHORT' as const, crash: '216', quoted: 'ask' as const },
  ])(
    'waits with no order while the best $quoted is beyond the bound ($side)',
    async ({ side, crash, quoted }) => {
      // A 15 % half spread: the book has prices, all beyond the last resort's 10 %.
      const p = createPipeline({
        config: parseRiskConfig(AUCTION_ONLY),
        venue: { defaults: { baseHalfSpreadPpm: 150_000, maxHalfSpreadPpm: 150_000 } },
      });
      await p.tick('ETH-USD', '200');
      await p.open(side, '10', '200', '200');
      await p.tick('ETH-USD', crash);
      await p.runUntil(p.clock.nowMs() + 10 * 60_000);

      const [waiting] = await liquidationsOf(p);
      expect(waiting?.state).toBe('MARKET_EXECUTED');
      expect((await p.venue.quote('ETH-USD'))[quoted]).toBeDefined();
      const id = waiting!.id;
      expect([...p.orders.orders.keys()].filter((o) => o.startsWith(`${id}:last-resort`))).toEqual([
        `${id}:last-resort:0`,
      ]);
      expect(p.orders.quotes).toBe(3);
      expect(p.telemetry.total('LastResortWaits')).toBe(4);
      expect(waiting?.context?.lastResortAttempt).toBe(1);
      expect(p.errors).toEqual([]);
    },
  );

  it('records the attempt when the book empties between the quote and the order, and waits on', async () => {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    await startLiquidations(p);
    const [first] = await liquidationsOf(p);
    expect(first?.context?.lastResortAttempt).toBe(1);

    // The next wait's quote sees the book back; it is gone again when the attempt's order arrives.
    p.venue.faults.emptyBooks.delete('ETH-USD');
    p.orders.afterQuote = () => p.venue.faults.emptyBooks.add('ETH-USD');
    await p.runUntil(p.clock.nowMs() + 61_000);
    const [raced] = await liquidationsOf(p);
    expect(p.orders.quotes).toBe(1);
    expect(p.orders.orders.get(`${first!.id}:last-resort:1`)?.result?.fills).toEqual([]);
    expect(raced?.context?.lastResortAttempt).toBe(2);
    // Three writes: the order's lease, the attempt (which drops the lease), then the wait it sent.
    expect(raced?.version).toBe(first!.version + 3);
    expect(raced?.context?.lease).toBeUndefined();
    expect(p.adapters.liquidationQueue.pending()).toMatchObject([
      {
        body: dueBody({
          liquidationId: first?.id,
          lastResortWaits: 2,
          lastResortFillsSeen: 0,
          adlJudgedAtE8: '18400000000',
        }),
        state: 'delayed',
      },
    ]);

    // A new attempt's order, under its own id, closes it once the book stays.
    p.orders.afterQuote = undefined;
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await p.drain();
    const [settled] = await liquidationsOf(p);
    expect(settled?.state).toMatch(/^SETTLED_/);
    expect(p.orders.orders.get(`${first!.id}:last-resort:2`)?.result?.fills.length).toBeGreaterThan(0);
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
  });

  it('waits for the book after an auction that ended unfilled, and settles from the liquidation queue', async () => {
    const { p, started } = await auctionWhoseBidderLeft();
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.runUntil(p.clock.nowMs() + 30 * 60_000);

    const waiting = await p.adapters.liquidations.get(started.id);
    expect(waiting?.state).toBe('AUCTION');
    expect(waiting?.context?.lastResortAttempt).toBe(1);
    expect(p.telemetry.total('LastResortWaits')).toBeGreaterThan(1);
    expect((await p.adapters.auctions.get(`${started.id}:auction`))?.state).toBe('EXHAUSTED');
    expect(p.errors).toEqual([]);

    p.venue.faults.emptyBooks.delete('ETH-USD');
    await p.drain();
    const settled = await p.adapters.liquidations.get(started.id);
    expect(settled?.state).toMatch(/^SETTLED_/);
    expect(settled?.settlement?.lastResortClosedSize).toBeGreaterThan(0n);
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
  });

  it("dead-letters a slice after the last resort's waits, with the reason; a redrive tries a new order", async () => {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY), maxReceiveCount: { liquidations: 2 } });
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    await p.drain(6 * 3600);

    // No provider to bid: no auction; the last resort found nothing, waited LAST_RESORT_WAITS times, then failed.
    const [liquidation] = await liquidationsOf(p);
    expect(liquidation?.state).toBe('MARKET_EXECUTED');
    expect(p.adapters.auctions.all()).toEqual([]);
    expect(p.errors).toHaveLength(2);
    for (const error of p.errors) expect(error).toContain('waterfall/no-liquidity');
    expect(p.adapters.liquidationDeadLetters.pending()).toHaveLength(1);
    expect(p.telemetry.total('LastResortWaits')).toBe(LAST_RESORT_WAITS - 1);
    expect((await p.adapters.positions.get(long.id))?.state).toBe('LIQUIDATING');
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(0n);
    const id = liquidation!.id;
    // One order, empty; every wait after it found no bid in a quote and placed none.
    const orders = [...p.orders.orders.keys()].filter((o) => o.startsWith(`${id}:last-resort`));
    expect(orders).toEqual([`${id}:last-resort:0`]);
    expect(liquidation?.context?.lastResortAttempt).toBe(1);
    expect(p.adapters.liquidationDeadLetters.pending()).toMatchObject([
      {
        body: dueBody({
          liquidationId: id,
          lastResortWaits: LAST_RESORT_WAITS - 1,
          lastResortFillsSeen: 0,
          adlJudgedAtE8: '18400000000',
        }),
      },
    ]);

    // The book is back; the operator redrives the dead letter: the next attempt closes it.
    p.venue.faults.emptyBooks.delete('ETH-USD');
    for (const m of await p.adapters.liquidationDeadLetters.receive(10, 30)) {
      await p.adapters.liquidationQueue.send(m.body);
      await p.adapters.liquidationDeadLetters.delete(m.receiptHandle);
    }
    await p.drain();
    const [settled] = await liquidationsOf(p);
    expect(settled?.state).toMatch(/^SETTLED_/);
    expect(p.orders.orders.get(`${id}:last-resort:1`)?.executed).toBe(true);
    expect(settled?.settlement?.lastResortClosedSize).toBeGreaterThan(0n);
    expect((await p.check()).violations).toEqual([]);
  });
});

describe('redelivery after a crash', () => {
  /** A crash to `price`: 184 settles on the market (fee), 175 gaps through bankruptcy (fund pays). */
  async function scenario(price: string, crashAt?: number) {
    let count = 0;
    let crashedAt: string | undefined;
    const trace: string[] = [];
    let armed = false;
    const p = createPipeline({
      crashHook: (point) => {
        // Receives and deletes are Lambda's own polling, not side effects of the handlers.
        if (!armed || /\.(receive|delete|changeVisibility)$/.test(point)) return;
        trace.push(point);
        count += 1;
        if (count === crashAt) {
          crashedAt = point;
          throw new InjectedCrash(point);
        }
      },
    });
    await p.fund('100000');
    await p.tick('ETH-USD', '200', { sequence: 1 });
    await p.open('LONG', '10', '200', '200');
    await p.open('LONG', '40', '200', '1000');
    await p.open('SHORT', '10', '200', '400');
    armed = true;
    try {
      await p.tick('ETH-USD', price, { sequence: 2 });
    } catch (error) {
      expect(error).toBeInstanceOf(InjectedCrash);
      await p.tick('ETH-USD', price, { sequence: 2 }); // EventBridge retries the same event
    }
    await p.drain();
    const records = await liquidationsOf(p);
    const liquidations = records.map((l) => ({ id: l.id, state: l.state }));
    // Redelivery may reorder independent liquidations (and so their fills on the impacted book); each
    // movement must still happen exactly once, with the amount its settlement says.
    const entries = await p.adapters.ledger.journal(INSURANCE_ACCOUNT);
    const journal = entries.map((e) => e.idempotencyKey).sort();
    for (const l of records) {
      const paid = entries.find((e) => e.idempotencyKey === `${l.id}:shortfall`)?.amount ?? 0n;
      expect(-paid).toBe(l.settlement!.insurancePaid);
      const fee = entries.find((e) => e.idempotencyKey === `${l.id}:fee`)?.amount ?? 0n;
      expect(fee).toBe(l.settlement!.fee);
    }
    // One execution per client order id, however often it was asked.
    for (const [id, log] of p.orders.orders) expect(log.mismatches, id).toBe(0);
    await expectReconciled(p);
    return { trace, crashedAt, liquidations, journal };
  }

  it.each(['184', '175'])(
    'ends as an uninterrupted run does whichever side effect dies (crash to %s)',
    async (price) => {
      const clean = await scenario(price);
      expect(clean.trace.length).toBeGreaterThan(5);
      expect(clean.liquidations.every((l) => l.state.startsWith('SETTLED_'))).toBe(true);
      for (let i = 1; i <= clean.trace.length; i++) {
        const run = await scenario(price, i);
        expect(run.crashedAt, `crash #${i}`).toBe(clean.trace[i - 1]);
        expect(run.liquidations, `after a crash at #${i} (${run.crashedAt})`).toEqual(clean.liquidations);
        expect(run.journal, `journal after a crash at #${i} (${run.crashedAt})`).toEqual(clean.journal);
      }
    },
  );

  it("an auction step that died after settling a slice, before the next slice's message, sends it when redelivered", async () => {
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      auction: {
        ...DEFAULT_RISK_CONFIG_INPUT.auction,
        curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 30 },
        tailSeconds: 600,
        maxResets: 1,
      },
    });
    let armed = true;
    const p: Pipeline = createPipeline({
      config,
      crashHook: (point) => {
        // The commit that settles the first slice creates the next one: die before sending its message.
        if (armed && point === 'transactor.commit' && p.adapters.liquidations.all().length === 2) {
          armed = false;
          throw new InjectedCrash(point);
        }
      },
    });
    await p.tick('ETH-USD', '200', { sequence: 1 });
    await p.fund('100000');
    await p.provider('lp-1', '10000000', '0.05', '10000');
    await p.open('LONG', '1000', '200', '20000');
    p.venue.faults.emptyBooks.add('ETH-USD');
    p.clock.advance(1000);
    await p.tick('ETH-USD', '184.4', { sequence: 2 });
    await p.drain();
    expect(armed).toBe(false);
    const [first, next] = p.adapters.liquidations.all();
    expect(first?.state).toBe('SETTLED_AUCTION');
    // The step's redelivery found the first slice settled and sent the next one's message.
    expect(next?.id).toBe(first?.context?.nextLiquidationId);
    expect(next?.state).toMatch(/^SETTLED_/);
    expect((await p.adapters.positions.get('p1'))?.state).toBe('CLOSED');
    expect((await p.check()).violations).toEqual([]);
  });
});

describe("the order lease: one delivery at a time places a liquidation's orders", () => {
  /** A long at 184 with a provider behind it and a funded insurance fund; its liquidation QUEUED. */
  async function queuedLiquidation(p: Pipeline): Promise<string> {
    await p.tick('ETH-USD', '200', { sequence: 1 });
    await p.provider('lp-1', '100000', '0.02', '100');
    await p.fund('100000');
    await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '184', { sequence: 2 });
    const [liquidation] = p.adapters.liquidations.all();
    return liquidation!.id;
  }

  it('refused-order-twice: a duplicate delivery never executes the order the first one saw refused', async () => {
    // Two deliveries of one liquidation at once: the first one's three venue attempts are refused, so it hands
    // the slice to the auction; the duplicate must not ask the venue under the same client order id meanwhile.
    let deferred = 0;
    for (let delay = 0; delay <= 60; delay += 3) {
      const p = createPipeline();
      const id = await queuedLiquidation(p);
      p.venue.faults.queued.push('unavailable', 'unavailable', 'unavailable');
      const results = await Promise.allSettled([
        processLiquidation({ liquidationId: id }, p.deps),
        processLiquidation({ liquidationId: id }, withDelayedStart(p.deps, delay)),
      ]);
      for (const r of results) {
        if (r.status === 'rejected') {
          expect(r.reason).toBeInstanceOf(LiquidationBusyError);
          deferred += 1;
        }
      }
      await p.drain();
      const executed = p.orders.orders.get(`${id}:market`)?.result?.fills ?? [];
      const recorded = (await p.adapters.liquidations.get(id))?.marketFills ?? [];
      expect(recorded, `B ${delay} late`).toEqual(executed);
      expect((await p.check()).violations, `B ${delay} late`).toEqual([]);
    }
    // The race really happens: some duplicates found the other holding the orders.
    expect(deferred).toBeGreaterThan(0);
  });

  it('a delivery that died holding the lease: its message waits for the lease, then asks the venue under the same id', async () => {
    const p = createPipeline();
    const id = await queuedLiquidation(p);
    // The first delivery's order executes, and the delivery dies before it hears back (it never returns).
    const dying: SettlementDeps = {
      ...p.deps,
      venue: {
        placeIoc: async (order) => {
          await p.deps.venue.placeIoc(order);
          return new Promise(() => {});
        },
        quote: (symbol, reference) => p.deps.venue.quote(symbol, reference),
      },
    };
    void processLiquidation({ liquidationId: id }, dying);
    await vi.waitFor(() => expect(p.orders.orders.get(`${id}:market`)?.executed).toBe(true));
    const held = await p.adapters.liquidations.get(id);
    expect(held?.state).toBe('EXECUTING');
    const lease = held?.context?.lease;
    expect(lease?.untilMs).toBe(p.clock.nowMs() + 20_000);

    // Its message, delivered before the lease runs out, is deferred and places nothing.
    await expect(processLiquidation({ liquidationId: id }, p.deps)).rejects.toThrow(LiquidationBusyError);
    expect(p.orders.orders.get(`${id}:market`)?.calls).toBe(1);

    // Once it has run out, a delivery takes the lease over and asks again under the same client order id: the
    // venue answers with the execution, which is recorded once.
    p.clock.advance(20_000);
    await p.drain();
    const log = p.orders.orders.get(`${id}:market`);
    expect(log?.calls).toBe(2);
    expect(log?.mismatches).toBe(0);
    const settled = await p.adapters.liquidations.get(id);
    expect(settled?.state).toMatch(/^SETTLED_/);
    expect(settled?.marketFills).toEqual(log?.result?.fills);
    expect(settled?.context?.lease).toBeUndefined();
    expect(p.telemetry.warnings).toContain('order lease ran out; taking it over');
    expect(p.telemetry.total('OrderLeaseDeferrals')).toBe(1);
    expect(p.telemetry.total('OrderLeaseTakeovers')).toBe(1);
    expect((await p.check()).violations).toEqual([]);
  });

  it('a delivery that failed gives its lease up: the retry goes on at once', async () => {
    const p = createPipeline();
    const id = await queuedLiquidation(p);
    // Three timeouts: the order may have executed, so the delivery fails (and asks again when retried).
    p.venue.faults.queued.push('timeout', 'timeout', 'timeout');
    await expect(processLiquidation({ liquidationId: id }, p.deps)).rejects.toThrow(/timeout/);
    const failed = await p.adapters.liquidations.get(id);
    expect(failed?.state).toBe('EXECUTING');
    expect(failed?.context?.lease).toBeUndefined();

    // No time passes: a lease still held would defer the retry.
    const outcome = await processLiquidation({ liquidationId: id }, p.deps);
    expect(outcome.state).toMatch(/^(SETTLED_|AUCTION)/);
    expect(p.orders.orders.get(`${id}:market`)?.calls).toBe(4);
    await p.drain();
    expect((await p.check()).violations).toEqual([]);
  });

  it('a duplicate delivery waits a moment for the holder, then goes on from what it recorded', async () => {
    const p = createPipeline();
    const id = await queuedLiquidation(p);
    const venue = venueHolding(p, () => true);
    const holder = processLiquidation({ liquidationId: id }, venue.deps);
    await venue.placed;
    // The duplicate's waits between reads: the holder's order answers during the second.
    const waits: number[] = [];
    const duplicate = processLiquidation(
      { liquidationId: id },
      {
        ...p.deps,
        backoff: async (attempt) => {
          waits.push(attempt);
          if (attempt === 2) {
            venue.release();
            await holder;
          }
        },
      },
    );
    const [first, second] = await Promise.all([holder, duplicate]);
    expect(second.state).toBe(first.state);
    expect(waits).toEqual([1, 2]);
    expect(p.telemetry.total('OrderLeaseDeferrals')).toBe(0);
    expect(p.orders.orders.get(`${id}:market`)?.calls).toBe(1);
    await p.drain();
    expect((await p.check()).violations).toEqual([]);
  });

  it("a delivery that does not hold the lease never settles over the holder's executing order", async () => {
    // A long's auction loses its only bidder; the step that ends it places the last-resort order (nobody to
    // deleverage), which hangs at the venue. Meanwhile a short in profit opens, and a duplicate delivery of the
    // liquidation would settle through ADL: it must wait for the holder, or the order's fills are recorded nowhere.
    const { p, started } = await auctionWhoseBidderLeft();
    const venue = venueHolding(p, (orderId) => orderId.includes(':last-resort:'));
    const holder = processAuctionStep(await dueAuctionStep(p), venue.deps);
    await venue.placed;
    expect((await p.adapters.liquidations.get(started.id))?.context?.lease).toBeDefined();

    await p.open('SHORT', '10', '200', '400');
    await expect(processLiquidation({ liquidationId: started.id }, p.deps)).rejects.toThrow(
      LiquidationBusyError,
    );
    venue.release();
    await holder;
    await p.drain();
    const settled = await p.adapters.liquidations.get(started.id);
    expect(settled?.state).toMatch(/^SETTLED_/);
    const executed = [...p.orders.orders.entries()]
      .filter(([orderId]) => orderId.startsWith(`${started.id}:last-resort:`))
      .flatMap(([, log]) => log.result?.fills ?? []);
    expect(executed.length).toBeGreaterThan(0);
    expect(settled?.marketFills).toEqual(executed);
    expect((await p.check()).violations).toEqual([]);
  });

  it.each([
    { how: 'failed (its lease released)', advanceMs: 0 },
    { how: 'died (its lease ran out)', advanceMs: 21_000 },
  ])(
    'a last-resort order whose delivery $how is placed again before anything is decided',
    async ({ advanceMs }) => {
      // The step that ends a long's auction (its bidder gone) places the last-resort order, which executes; the
      // delivery then fails before recording it. A short in profit opens: a delivery planning afresh would settle
      // through ADL and leave the executed order recorded nowhere.
      const { p, started } = await auctionWhoseBidderLeft();
      let failures = 0;
      const failing: SettlementDeps = {
        ...p.deps,
        transactor: {
          commit: async (writes) => {
            const settling = writes.some((w) => w.kind === 'liquidation' && w.record.state === 'SETTLING');
            // The commit recording the order fails; a delivery that died also never releases its lease.
            const [only] = writes;
            const release =
              writes.length === 1 && only?.kind === 'liquidation' && !only.record.context?.lease && !settling;
            if (settling || (advanceMs > 0 && release && failures > 0)) {
              failures += 1;
              throw new Error('ProvisionedThroughputExceededException');
            }
            return p.deps.transactor.commit(writes);
          },
        },
      };
      await expect(processAuctionStep(await dueAuctionStep(p), failing)).rejects.toThrow(/Provisioned/);
      const pending = await p.adapters.liquidations.get(started.id);
      expect(pending?.context?.lastResortOrder?.attempt).toBe(0);
      expect(pending?.context?.lease === undefined).toBe(advanceMs === 0);

      await p.open('SHORT', '10', '200', '400');
      p.clock.advance(advanceMs);
      await processLiquidation({ liquidationId: started.id }, p.deps);
      await p.drain();
      const settled = await p.adapters.liquidations.get(started.id);
      const log = p.orders.orders.get(`${started.id}:last-resort:0`);
      expect(log?.calls).toBe(2);
      expect(log?.mismatches).toBe(0);
      expect(settled?.marketFills).toEqual(log?.result?.fills);
      expect(settled?.context?.lastResortOrder).toBeUndefined();
      expect((await p.check()).violations).toEqual([]);
    },
  );

  it('a last-resort order placed while planning again (refreeze) and not recorded is placed again first', async () => {
    // The auction ends unfilled and the settlement is planned through ADL against a short; the short closes before
    // the commit, so it is planned again: nobody left, the last resort executes, and the commit recording it fails.
    // A new short opens: a plan made afresh would settle through ADL and leave the order recorded nowhere.
    const { p, started } = await auctionWhoseBidderLeft();
    const first = await p.open('SHORT', '10', '200', '400');
    let closed = false;
    let failed = false;
    const failing: SettlementDeps = {
      ...p.deps,
      transactor: {
        commit: async (writes) => {
          const own = writes.find((w) => w.kind === 'liquidation' && w.record.id === started.id);
          const record = own?.kind === 'liquidation' ? own.record : undefined;
          if (!closed && record?.state.startsWith('SETTLED')) {
            closed = true;
            // (Closed by hand, so the invariants are not checked below: the money is, by the fills.)
            const short = (await p.adapters.positions.get(first.id))!;
            await p.adapters.positions.replace(
              { ...short, state: 'CLOSED', size: 0n, collateral: 0n, version: short.version + 1 },
              short.version,
            );
          }
          if (!failed && record?.state === 'SETTLING' && record.context?.settle?.lastResortFills) {
            failed = true;
            throw new Error('ProvisionedThroughputExceededException');
          }
          return p.deps.transactor.commit(writes);
        },
      },
    };
    await expect(processAuctionStep(await dueAuctionStep(p), failing)).rejects.toThrow(/Provisioned/);
    const log = p.orders.orders.get(`${started.id}:last-resort:0`);
    expect(log?.result?.fills.length).toBeGreaterThan(0);
    expect((await p.adapters.liquidations.get(started.id))?.context?.lastResortOrder).toBeDefined();

    await p.open('SHORT', '10', '200', '400');
    await processLiquidation({ liquidationId: started.id }, p.deps);
    await p.drain();
    const settled = await p.adapters.liquidations.get(started.id);
    expect(settled?.state).toMatch(/^SETTLED_/);
    expect(log?.calls).toBe(2);
    expect(log?.mismatches).toBe(0);
    expect(settled?.marketFills).toEqual(log?.result?.fills);
    expect(settled?.settlement?.lastResortClosedSize).toBeGreaterThan(0n);
  });

  it('a failed delivery releases a lease it took while planning again (refreeze), so its retry goes on at once', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    const short = await p.open('SHORT', '10', '200', '400');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    const [liquidation] = p.adapters.liquidations.all();
    const id = liquidation!.id;
    // The first delivery freezes an ADL plan against the short (SETTLING), then dies.
    const dying: SettlementDeps = {
      ...p.deps,
      transactor: {
        commit: async (writes) => {
          await p.deps.transactor.commit(writes);
          if (writes.some((w) => w.kind === 'liquidation' && w.record.state === 'SETTLING')) {
            throw new InjectedCrash('after freezing');
          }
        },
      },
    };
    await expect(processLiquidation({ liquidationId: id }, dying)).rejects.toThrow(InjectedCrash);
    expect((await p.adapters.liquidations.get(id))?.state).toBe('SETTLING');
    // The short closes meanwhile: the plan is made again, finds nobody, and places the last resort, which times out.
    const counterparty = (await p.adapters.positions.get(short.id))!;
    await p.adapters.positions.replace(
      { ...counterparty, state: 'CLOSED', size: 0n, collateral: 0n, version: counterparty.version + 1 },
      counterparty.version,
    );
    p.venue.faults.emptyBooks.delete('ETH-USD');
    p.venue.faults.queued.push('timeout', 'timeout', 'timeout');
    await expect(processLiquidation({ liquidationId: id }, p.deps)).rejects.toThrow(/timeout/);
    expect((await p.adapters.liquidations.get(id))?.context?.lease).toBeUndefined();

    // No time passes: the retry is not deferred by its predecessor's lease, and asks the venue again.
    const outcome = await processLiquidation({ liquidationId: id }, p.deps);
    expect(outcome.state).toMatch(/^SETTLED_/);
    const log = p.orders.orders.get(`${id}:last-resort:0`);
    expect(log?.calls).toBe(4);
    expect(log?.mismatches).toBe(0);
    // (The invariants would flag the short closed by hand above: its money is checked here instead.)
    const settled = await p.adapters.liquidations.get(id);
    expect(settled?.marketFills).toEqual(log?.result?.fills);
    expect(settled?.settlement?.lastResortClosedSize).toBeGreaterThan(0n);
  });

  it('two deliveries of a waiting last resort: one places the attempt, a refused one is never executed by the other', async () => {
    let deferred = 0;
    for (let delay = 0; delay <= 60; delay += 3) {
      const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
      await p.tick('ETH-USD', '200');
      await p.open('LONG', '10', '200', '200');
      p.venue.faults.emptyBooks.add('ETH-USD');
      await p.tick('ETH-USD', '184');
      await startLiquidations(p);
      const [waiting] = await liquidationsOf(p);
      expect(waiting?.context?.lastResortAttempt).toBe(1);
      const id = waiting!.id;

      // The book is back; the first delivery's attempt is refused three times.
      p.venue.faults.emptyBooks.delete('ETH-USD');
      p.venue.faults.queued.push('unavailable', 'unavailable', 'unavailable');
      const message = { liquidationId: id, lastResortWaits: 1 };
      const results = await Promise.allSettled([
        processLiquidation(message, p.deps),
        processLiquidation(message, withDelayedStart(p.deps, delay)),
      ]);
      for (const r of results) {
        if (r.status === 'rejected') {
          expect(r.reason).toBeInstanceOf(LiquidationBusyError);
          deferred += 1;
        }
      }
      await p.drain();
      const settled = await p.adapters.liquidations.get(id);
      expect(settled?.state, `B ${delay} late`).toMatch(/^SETTLED_/);
      // Every last-resort order the venue executed is in the record, once.
      const executed = [...p.orders.orders.entries()]
        .filter(([orderId]) => orderId.startsWith(`${id}:last-resort:`))
        .flatMap(([, log]) => log.result?.fills ?? []);
      expect(settled?.marketFills, `B ${delay} late`).toEqual(executed);
      expect((await p.check()).violations, `B ${delay} late`).toEqual([]);
    }
    expect(deferred).toBeGreaterThan(0);
  });
});

describe('money a settlement moved before it is planned again', () => {
  /** A gapped long: the fund pays its 50 USD shortfall and ADL gives its size to one short. The book is empty. */
  async function gappedLongAgainstShort() {
    const p = createPipeline();
    await p.tick('ETH-USD', '200', { sequence: 1 });
    await p.fund('100000');
    await p.open('LONG', '10', '200', '200');
    const short = await p.open('SHORT', '10', '200', '2000');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '175', { sequence: 2 });
    const [liquidation] = p.adapters.liquidations.all();
    return { p, id: liquidation!.id, short };
  }

  /** The deps with `before` run ahead of each commit writing the liquidation `id` (given the record written). */
  function beforeCommits(
    p: Pipeline,
    id: string,
    before: (record: LiquidationRecord) => Promise<void>,
  ): SettlementDeps {
    return {
      ...p.deps,
      transactor: {
        commit: async (writes) => {
          const own = writes.find((w) => w.kind === 'liquidation' && w.record.id === id);
          if (own?.kind === 'liquidation') await before(own.record);
          return p.deps.transactor.commit(writes);
        },
      },
    };
  }

  /** Changes a position by hand (the invariants would flag it: the money is checked by the journal instead). */
  async function changePosition(p: Pipeline, id: string, change: Partial<PositionRecord>) {
    const stored = (await p.adapters.positions.get(id))!;
    await p.adapters.positions.replace({ ...stored, ...change, version: stored.version + 1 }, stored.version);
  }

  const closed = { state: 'CLOSED', size: 0n, collateral: 0n } as const;

  /**
   * Settled, and the liquidation's journal sums to what its settlement says the fund earned and paid. The fund's
   * draw window (these worlds draw in one) holds what the fund paid net, not what earlier plans drew and a new one
   * gave back (credit-back-window).
   */
  /** `entries`: how many movements the settlement made (a slice carrying its deficit may make none). */
  async function expectPaidOnce(p: Pipeline, id: string, entries?: number) {
    expect(p.errors).toEqual([]);
    const settled = await p.adapters.liquidations.get(id);
    expect(settled?.state).toMatch(/^SETTLED_/);
    const journal = await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, id);
    if (entries === undefined) expect(journal.length).toBeGreaterThan(0);
    else expect(journal).toHaveLength(entries);
    const net = journal.reduce((sum, e) => sum + e.amount, 0n);
    expect(net).toBe(settled!.settlement!.fee - settled!.settlement!.insurancePaid);
    const paidNet = (await p.adapters.ledger.journal(INSURANCE_ACCOUNT))
      .filter((e) => e.kind === 'shortfall-payout')
      .reduce((sum, e) => sum - e.amount, 0n);
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).windowDrawn).toBe(paidNet);
    return settled!;
  }

  it.each([
    { world: 'the book is empty: it waits', orderFills: false },
    { world: 'its order executes and the commit recording it fails', orderFills: true },
  ])(
    'a plan made again that finds nobody to deleverage, when $world, leaves a record the next delivery plans again from',
    async ({ orderFills }) => {
      // The short closes before the first plan's commit, after its money moved: planned again, nobody is left, so
      // the last resort, which writes before the new plan is frozen.
      const { p, id, short } = await gappedLongAgainstShort();
      let commits = 0;
      let failed = false;
      const faulty = beforeCommits(p, id, async (record) => {
        if (record.state.startsWith('SETTLED') && commits++ === 0) {
          await changePosition(p, short.id, closed);
          if (orderFills) p.venue.faults.emptyBooks.delete('ETH-USD');
        }
        if (!failed && record.context?.settle?.lastResortFills) {
          failed = true;
          throw new Error('ProvisionedThroughputExceededException');
        }
      });
      const delivery = processLiquidation({ liquidationId: id }, faulty);
      if (orderFills) await expect(delivery).rejects.toThrow(/Provisioned/);
      else await delivery;
      const left = await p.adapters.liquidations.get(id);
      expect(left?.state).toBe('SETTLING');
      expect(left?.context?.settle?.superseded).toBe(true);
      expect(left?.context?.lastResortAttempt).toBe(orderFills ? undefined : 1);
      expect(left?.context?.lastResortOrder !== undefined).toBe(orderFills);

      // The book refills; the liquidation's message comes back and the last resort closes it.
      p.venue.faults.emptyBooks.delete('ETH-USD');
      if (orderFills) await processLiquidation({ liquidationId: id }, p.deps);
      await p.drain();
      const settled = await expectPaidOnce(p, id);
      expect(settled.settlement?.lastResortClosedSize).toBeGreaterThan(0n);
    },
  );

  it('the settlement commit fails after the money moved and the counterparty changed: the retry plans again from the ledger', async () => {
    const { p, id, short } = await gappedLongAgainstShort();
    let failed = false;
    const faulty = beforeCommits(p, id, async (record) => {
      if (!failed && record.state.startsWith('SETTLED')) {
        failed = true;
        await changePosition(p, short.id, closed);
        throw new Error('ProvisionedThroughputExceededException');
      }
    });
    await expect(processLiquidation({ liquidationId: id }, faulty)).rejects.toThrow(/Provisioned/);
    expect((await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, id)).length).toBeGreaterThan(0);
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await processLiquidation({ liquidationId: id }, p.deps);
    await p.drain();
    const settled = await expectPaidOnce(p, id);
    // The failed commit deleveraged nobody, and the last resort closed the slice: no ADL event counted.
    expect(settled.settlement?.adlClosedSize).toBe(0n);
    expect(p.telemetry.total(METRICS.AdlEvents.name)).toBe(0);
  });

  it('two plans moved money, and the second commit fails after its counterparty changed: the third pays the difference', async () => {
    const { p, id, short } = await gappedLongAgainstShort();
    let commits = 0;
    const faulty = beforeCommits(p, id, async (record) => {
      if (!record.state.startsWith('SETTLED')) return;
      commits += 1;
      // The first plan's commit fails on a short that shrank (planned again: its money moved, the second's too).
      if (commits === 1) await changePosition(p, short.id, { size: parseBase('5') });
      if (commits === 2) {
        await changePosition(p, short.id, { collateral: parseQuote('1999') });
        throw new Error('ProvisionedThroughputExceededException');
      }
    });
    await expect(processLiquidation({ liquidationId: id }, faulty)).rejects.toThrow(/Provisioned/);
    const keys = (await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, id)).map((e) => e.idempotencyKey);
    expect(keys.some((k) => k.endsWith(':r1'))).toBe(true);
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await processLiquidation({ liquidationId: id }, p.deps);
    await p.drain();
    await expectPaidOnce(p, id);
  });

  it('a record an older version froze after a draw, without the draw time, is planned again: a give-back frees the draw window', async () => {
    // Plans frozen before session 27 carry no appliedDrawAtMs. Applied as frozen, a payout given back went to the
    // window of the plan's time, not of its draw: here the draw is at 09:59:59 and the plan at 10:00:01.
    const { p, id, short } = await gappedLongAgainstShort();
    const hour = 3_600_000;
    p.clock.set(T0 + hour - 1_000);
    let settledCommits = 0;
    const faulty: SettlementDeps = {
      ...p.deps,
      transactor: {
        commit: async (writes, providersUnchanged) => {
          const own = writes.find((w) => w.kind === 'liquidation' && w.record.id === id);
          const record = own?.kind === 'liquidation' ? own.record : undefined;
          // The first plan drew 50 USD; its commit fails on a short that shrank, so it is planned again.
          if (record?.state.startsWith('SETTLED') && settledCommits++ === 0)
            await changePosition(p, short.id, { size: parseBase('5') });
          if (record?.context?.settle?.superseded) p.clock.set(T0 + hour + 1_000);
          const committed = await p.deps.transactor.commit(writes, providersUnchanged);
          // The new plan is frozen, then its delivery dies.
          if (record?.context?.settle?.applied && !record.context.settle.superseded)
            throw new Error('ProvisionedThroughputExceededException');
          return committed;
        },
      },
    };
    await expect(processLiquidation({ liquidationId: id }, faulty)).rejects.toThrow(/Provisioned/);
    const frozen = (await p.adapters.liquidations.get(id))!;
    const draw = (await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, id)).find((e) => e.amount < 0n)!;
    expect(frozen.context?.settle?.appliedDrawAtMs).toBe(draw.atMs);
    expect(draw.atMs).toBe(T0 + hour - 1_000);
    // What a version before session 27 stored: the same plan without the draw's time.
    const { appliedDrawAtMs: _dropped, ...settle } = frozen.context!.settle!;
    await p.adapters.liquidations.replace(
      { ...frozen, version: frozen.version + 1, context: { ...frozen.context!, settle } },
      frozen.version,
    );
    // Another settlement draws in the new window first: a give-back charged to it would free room it used.
    await p.adapters.ledger.apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: 'other:shortfall',
      amount: -parseQuote('10'),
      kind: 'shortfall-payout',
      reference: 'other',
      atMs: p.clock.nowMs(),
      floor: 0n,
      drawWindow: { windowStartMs: T0 + hour, cap: p.config.insurance.drawCapPerWindow },
    });
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await processLiquidation({ liquidationId: id }, p.deps);
    await p.drain();
    // The window holds what the fund paid net in it: 50 drawn and given back in the last window count in neither.
    await expectPaidOnce(p, id);
    expect((await p.adapters.liquidations.get(id))?.context?.settle?.replans).toBe((settle.replans ?? 0) + 1);
  });

  it('a duplicate delivery plans again while the first, its money moved, is committing: neither pays twice', async () => {
    const { p, id, short } = await gappedLongAgainstShort();
    let twin: Promise<unknown> | undefined;
    const first = beforeCommits(p, id, async (record) => {
      if (!twin && record.state.startsWith('SETTLED')) {
        await changePosition(p, short.id, closed);
        twin = processLiquidation({ liquidationId: id }, p.deps);
        await twin;
      }
    });
    await processLiquidation({ liquidationId: id }, first);
    expect(twin).toBeDefined();
    expect((await p.adapters.liquidations.get(id))?.context?.settle?.superseded).toBe(true);
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await p.drain();
    await expectPaidOnce(p, id);
  });

  it.each([
    // ADL takes all the size: the new plan pays the shortfall under its own key.
    { world: 'pays the shortfall, ADL taking all the size', shortSize: '12', twinMoves: 1 },
    // The new plan moves nothing: ADL takes 5 (or 9) of the 10, the rest of the position carries the deficit of
    // what closed, and no fee (the position is bankrupt at the mark: session 26, settleSlice);
    // under the first plan's key the payment would have gone through.
    { world: 'leaves half the size, with no fee', shortSize: '5', twinMoves: 0 },
    { world: 'carries its deficit with the size ADL left', shortSize: '9', twinMoves: 0 },
  ])(
    'a delivery whose payment is still in flight when a twin plans again and settles ($world): the late payment is refused',
    async ({ shortSize, twinMoves }) => {
      const { p, id, short } = await gappedLongAgainstShort();
      // The first delivery's debit waits at the ledger until the twin has planned again and settled.
      let release!: () => void;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      let reached!: () => void;
      const atLedger = new Promise<void>((resolve) => {
        reached = resolve;
      });
      const ledger = p.deps.ledger;
      const slow: Ledger = {
        balance: (account) => ledger.balance(account),
        journal: (account) => ledger.journal(account),
        journalAfter: (account, after, limit) => ledger.journalAfter(account, after, limit),
        latestEntries: (account, limit) => ledger.latestEntries(account, limit),
        unindexedEntries: (account, maxRead) => ledger.unindexedEntries(account, maxRead),
        auditCheckpoint: (account) => ledger.auditCheckpoint(account),
        saveAuditCheckpoint: (account, audit, restart) => ledger.saveAuditCheckpoint(account, audit, restart),
        entriesOf: (account, reference) => ledger.entriesOf(account, reference),
        apply: async (movement, known) => {
          if (movement.amount < 0n) {
            reached();
            await released;
          }
          return ledger.apply(movement, known);
        },
      };
      const first = processLiquidation({ liquidationId: id }, { ...p.deps, ledger: slow });
      await atLedger;
      // The counterparty the first plan froze shrinks: the twin's plan is void and it plans again.
      await changePosition(p, short.id, { size: parseBase(shortSize) });
      await processLiquidation({ liquidationId: id }, p.deps);
      const keys = async () =>
        (await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, id)).map((e) => e.idempotencyKey);
      const twinKeys = await keys();
      expect(twinKeys).toHaveLength(twinMoves);
      for (const key of twinKeys) expect(key).toMatch(/:r1$/);
      release();
      // Refused by its fence: the delivery ends without an error, and nothing more moved.
      await expect(first).resolves.toMatchObject({ state: expect.stringMatching(/^SETTLED_/) });
      expect(await keys()).toEqual(twinKeys);
      await expectPaidOnce(p, id, twinMoves);
    },
  );
});

import { createEmbeddedAdapters, type EmbeddedAdapters, ManualClock } from '../adapters/embedded/index.ts';
import { type SimulatedMarketConfig, SimulatedVenue } from '../adapters/venue/simulated.ts';
import { marketConfig, type RiskConfig } from '../domain/config.ts';
import { isLiquidatable } from '../domain/margin.ts';
import { isTerminal } from '../domain/model.ts';
import { auctionFillCost, providerFillsRead } from '../domain/provider-fills.ts';
import type { Tick } from '../domain/tick.ts';
import { minBig, type PriceE8, type QuoteE6 } from '../domain/units.ts';
import {
  type AuctionRecord,
  type PositionRecord,
  type ProviderRecord,
  type QueueTransport,
  silentTelemetry,
  type Telemetry,
} from '../ports/index.ts';
import type { PricePoint } from '../prices/parse.ts';
import { parseAuctionQueueMessage, parseLiquidationMessage } from '../schemas/messages.ts';
import { AdlSnapshots } from '../services/adl-snapshots.ts';
import { processAuctionMessage } from '../services/auction.ts';
import { INSURANCE_ACCOUNT, type SettlementDeps } from '../services/context.ts';
import { processLiquidation } from '../services/liquidation.ts';
import { handleTick, type MarginCheckDeps } from '../services/margin-check.ts';
import { DueTimes, ObservedTransactor, ObservedVenue, WatchedQueue } from './observe.ts';
import { SimulationRecorder } from './recorder.ts';
import type { MinuteSeries, SimulationResult, Strategy } from './results.ts';

/**
 * The replay engine: the services of the Lambdas (handleTick, processLiquidation, processAuctionStep) on the
 * embedded adapters, with simulated time. Per 1-minute tick:
 *   1. run every queued message that fell due since the last tick, in time order (auction steps wake at
 *      their delays; a failed message returns after its visibility timeout, as on SQS);
 *   2. set the clock to the tick, move the venue's reference to the tick's price, and read the venue's mid:
 *      the reference moved by our own persisting market impact. That mid is the tick's mark, so forced sells
 *      deepen the crash they react to;
 *   3. handleTick (with its continuations) starts and enqueues the liquidations the mark crosses;
 *   4. drain the liquidation and auction queues at that instant.
 * After the last price the mark is held (still moving with the decay of our impact) and ticks continue once a
 * minute until no message is queued, in flight or delayed (bounded by maxDrainMinutes).
 *
 * The engine only watches, through decorators of the ports (observe.ts): every commit (terminal states,
 * settlements, position and provider changes), every market order with its mark, the fund's journal.
 */

export interface EngineInput {
  readonly scenario: string;
  readonly symbol: string;
  readonly seed: number;
  readonly points: readonly PricePoint[];
  readonly book: readonly PositionRecord[];
  readonly providers: readonly ProviderRecord[];
  readonly fundStart: QuoteE6;
  readonly config: RiskConfig;
  readonly strategy: Strategy;
  readonly venue?: Partial<SimulatedMarketConfig>;
  /** Ticks after the last price while work remains (default a day). */
  readonly maxDrainMinutes?: number;
  /** handleTick's per-invocation bound (default 1000: bigger ticks continue, as on Lambda). */
  readonly maxPositionsPerInvocation?: number;
  readonly telemetry?: Telemetry;
  /** Called after each tick. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Called once at the end with the adapters, to inspect the final records (diagnostics, tests). */
  readonly inspect?: (adapters: EmbeddedAdapters) => Promise<void> | void;
}

export class SimulationError extends Error {
  override readonly name = 'SimulationError';
}

const MINUTE_MS = 60_000;
/** Visibility timeout of a received message: a message whose processing threw comes back after it. */
const VISIBILITY_SECONDS = 30;
const RECEIVE_BATCH = 10;
const VENUE_ATTEMPTS = 3;

export async function runSimulation(input: EngineInput): Promise<SimulationResult> {
  const { symbol, config, strategy } = input;
  const first = input.points[0];
  if (!first) throw new SimulationError('simulation/no-prices: at least one price is needed');
  if (input.fundStart < 0n) throw new SimulationError('simulation/bad-fund: must be >= 0');

  const clock = new ManualClock(first.timestampMs);
  const adapters = createEmbeddedAdapters({ clock });
  const telemetry = input.telemetry ?? silentTelemetry;
  const due = new DueTimes();
  const venue = new SimulatedVenue({ clock, ...(input.venue ? { defaults: input.venue } : {}) });

  const recorder = new SimulationRecorder(first.price);
  const series: MinuteSeries = {
    timestampMs: [],
    reference: [],
    mark: [],
    fund: [],
    started: [],
    settled: { market: [], auction: [], insurance: [], adl: [], badDebt: [], cancelled: [] },
    badDebt: [],
  };
  const errors: Record<string, number> = {};
  const errorSamples: Record<string, string> = {};
  let observerFailure: unknown;

  // --- the world -----------------------------------------------------------------------------------------
  adapters.positions.createMany(input.book);
  // Without providers no auction starts: what the market leaves within its bound goes to the fund and ADL.
  if (strategy !== 'no-auction') for (const p of input.providers) await adapters.providers.put(p, undefined);
  if (input.fundStart > 0n) {
    await adapters.ledger.apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: 'simulation:fund-start',
      amount: input.fundStart,
      kind: 'fund-start',
      reference: input.scenario,
      atMs: first.timestampMs,
      floor: 0n,
    });
  }

  const liquidationQueue = new WatchedQueue(adapters.liquidationQueue, clock, due);
  const auctionQueue = new WatchedQueue(adapters.auctionQueue, clock, due);
  const deps: SettlementDeps = {
    reader: adapters.reader,
    positions: adapters.positions,
    markets: adapters.markets,
    liquidations: adapters.liquidations,
    auctions: adapters.auctions,
    providers: adapters.providers,
    ledger: adapters.ledger,
    transactor: new ObservedTransactor(
      adapters.transactor,
      adapters.positions,
      adapters.providers,
      (writes) => {
        // An observer bug must stop the run, not pass for a service error that the queue retries.
        try {
          recorder.onCommit(writes);
        } catch (error) {
          observerFailure ??= error;
        }
      },
    ),
    liquidationQueue,
    auctionQueue,
    venue: new ObservedVenue(venue, adapters.markets, clock, (o) => recorder.onOrder(o)),
    clock,
    config,
    telemetry,
    strategy: strategy === 'market-only' ? 'market-only' : 'waterfall',
    insuranceAccount: INSURANCE_ACCOUNT,
    venueAttempts: VENUE_ATTEMPTS,
    adlSnapshots: new AdlSnapshots(),
  };
  const marginDeps: MarginCheckDeps = {
    positions: adapters.positions,
    markets: adapters.markets,
    liquidations: adapters.liquidations,
    liquidationQueue,
    auctions: adapters.auctions,
    auctionQueue,
    config,
    telemetry,
    maxPositionsPerInvocation: input.maxPositionsPerInvocation ?? 1000,
  };

  const fail = (error: unknown): void => {
    const name = error instanceof Error ? `${error.name}: ${error.message.split(':')[0]}` : 'unknown';
    errors[name] = (errors[name] ?? 0) + 1;
    errorSamples[name] ??= error instanceof Error ? (error.stack ?? error.message) : String(error);
  };

  /** Runs every visible message of `queue` until none is left at this instant. */
  const drainQueue = async (
    queue: QueueTransport,
    run: (body: string) => Promise<unknown>,
  ): Promise<boolean> => {
    let worked = false;
    for (;;) {
      const messages = await queue.receive(RECEIVE_BATCH, VISIBILITY_SECONDS);
      if (messages.length === 0) return worked;
      worked = true;
      for (const m of messages) {
        try {
          await run(m.body);
          await queue.delete(m.receiptHandle);
        } catch (error) {
          // As on Lambda: the message stays, comes back after the visibility timeout, then dead-letters.
          fail(error);
        }
      }
    }
  };
  const drain = async (): Promise<void> => {
    for (;;) {
      if (observerFailure) throw new SimulationError(`simulation/observer: ${String(observerFailure)}`);
      const a = await drainQueue(liquidationQueue, (b) =>
        processLiquidation(parseLiquidationMessage(b), deps),
      );
      const b = await drainQueue(auctionQueue, (b) =>
        processAuctionMessage(parseAuctionQueueMessage(b), deps),
      );
      if (!a && !b) return;
    }
  };
  /** Runs the work that falls due strictly before `t`, in time order. */
  const advanceTo = async (t: number): Promise<void> => {
    for (;;) {
      const next = due.nextAfter(clock.nowMs());
      if (next === undefined || next >= t) break;
      clock.set(next);
      await drain();
    }
    clock.set(t);
  };

  const ticksRejected: Record<string, number> = {};
  let sequence = 0;
  let priceLow = first.price;
  // Of the accepted marks only: the first print is refused (no mark to judge it by), so it is not the start.
  let markLow: PriceE8 | undefined;
  const fundBalance = async (): Promise<QuoteE6> =>
    (await adapters.ledger.balance(INSURANCE_ACCOUNT)).balance;

  const step = async (t: number, reference: PriceE8): Promise<void> => {
    await advanceTo(t);
    venue.onTick(symbol, reference, t);
    const mark = venue.snapshot(symbol)?.mid ?? reference;
    sequence += 1;
    const tick: Tick = { symbol, markPrice: mark, timestampMs: t, sequence, source: 'simulation' };
    let outcome = await handleTick(tick, marginDeps, t);
    let started = 0;
    if (outcome.status === 'rejected') {
      ticksRejected[outcome.reason] = (ticksRejected[outcome.reason] ?? 0) + 1;
    } else {
      recorder.mark = mark;
      markLow = markLow === undefined ? mark : minBig(markLow, mark);
      started += outcome.enqueued;
      for (let segment = 1; outcome.status === 'accepted' && outcome.needsContinuation; segment++) {
        outcome = await handleTick(tick, marginDeps, t, segment);
        if (outcome.status === 'accepted') started += outcome.enqueued;
      }
    }
    await drain();
    priceLow = minBig(priceLow, reference);
    series.timestampMs.push(t);
    series.reference.push(reference);
    series.mark.push(mark);
    // With the slices after the first, which settlements start (their ticks started the first).
    series.started.push(started + recorder.takeSlicesStarted());
    series.fund.push(await fundBalance());
    const minute = recorder.takeMinute();
    for (const key of Object.keys(minute) as (keyof typeof minute)[]) series.settled[key].push(minute[key]);
    series.badDebt.push(recorder.badDebt);
  };

  const total = input.points.length;
  for (const [i, point] of input.points.entries()) {
    await step(point.timestampMs, point.price);
    input.onProgress?.(i + 1, total);
  }

  // Hold the last price until every liquidation is terminal (auctions run for up to tail * (resets + 1)).
  const last = input.points[input.points.length - 1]!;
  const maxDrain = input.maxDrainMinutes ?? 24 * 60;
  let drainTicks = 0;
  const idle = async (): Promise<boolean> => {
    for (const q of [liquidationQueue, auctionQueue]) {
      const d = await q.depth();
      if (d.visible + d.inFlight + d.delayed > 0) return false;
    }
    // A last print the breaker holds (a gap beyond the band, or a market's first print): the held price confirms
    // it, and what it crosses is liquidated.
    return (await adapters.markets.get(symbol))?.breaker === undefined;
  };
  while (drainTicks < maxDrain && !(await idle())) {
    drainTicks += 1;
    await step(last.timestampMs + drainTicks * MINUTE_MS, last.price);
  }

  // --- the summary ---------------------------------------------------------------------------------------
  const fillsDisagree = providerFillsDisagree(
    await Promise.all(input.providers.map((p) => adapters.providers.get(p.id))),
    adapters.auctions.all(),
  );
  if (fillsDisagree) fail(new Error(`sim/provider-fills: ${fillsDisagree}`));
  const all = adapters.liquidations.all();
  // Rounds of ADL still owed count as unfinished too: their bad debt is not final.
  const nonTerminal = all.filter((l) => !isTerminal(l.state) || l.context?.adlRound !== undefined).length;
  const endMark = (await adapters.markets.get(symbol))?.lastTick?.markPrice;
  const maintenance = marketConfig(config, symbol).maintenanceMargin;
  let traders = 0n;
  let openCrossed = 0;
  for (const initial of input.book) {
    const position = (await adapters.positions.get(initial.id))!;
    traders += recorder.wealthOf(position) - initial.collateral;
    if (position.state === 'OPEN' && endMark !== undefined && isLiquidatable(position, endMark, maintenance))
      openCrossed += 1;
  }
  // Settlements counted as bad debt that later ADL rounds covered some of: settled by ADL, in their minute too.
  for (const minute of recorder.badDebtMoves) {
    series.settled.badDebt[minute]! -= 1;
    series.settled.adl[minute]! += 1;
  }
  const fundEnd = await fundBalance();
  const journal = await adapters.ledger.journal(INSURANCE_ACCOUNT);
  let fundMin = input.fundStart;
  // The deepest fall from a running peak (fees earned early raise the peak a later loss falls from).
  let fundPeak = input.fundStart;
  let drawdown = { fall: 0n, peak: input.fundStart };
  for (const entry of journal) {
    if (entry.balanceAfter < fundMin) fundMin = entry.balanceAfter;
    if (entry.balanceAfter > fundPeak) fundPeak = entry.balanceAfter;
    const fall = fundPeak - entry.balanceAfter;
    // The deepest relative fall; the first fall counts whatever the start (a fund starting at 0 has a peak of 0).
    if (fall > 0n && (drawdown.fall === 0n || fall * drawdown.peak > drawdown.fall * fundPeak))
      drawdown = { fall, peak: fundPeak };
  }
  const dead =
    (await adapters.liquidationDeadLetters.depth()).visible +
    (await adapters.auctionDeadLetters.depth()).visible;
  await input.inspect?.(adapters);

  return {
    scenario: input.scenario,
    symbol,
    strategy,
    seed: input.seed,
    ticks: total,
    drainTicks,
    ticksRejected,
    positions: input.book.length,
    positionsLiquidated: recorder.positionsLiquidated,
    liquidations: all.length,
    settledBy: recorder.settledBy,
    adlBadDebtOnly: recorder.adlBadDebtOnly,
    cancelled: recorder.cancelled,
    nonTerminal,
    openCrossed,
    badDebt: recorder.badDebt,
    badDebtUncovered: recorder.badDebtUncovered,
    insuranceFund: { start: input.fundStart, end: fundEnd, min: fundMin, drawdown },
    feesCollected: recorder.fees,
    insurancePaid: recorder.insurancePaid,
    slippageSamples: recorder.slippage.sort((a, b) => a - b),
    zeroPriceFills: recorder.zeroPriceFills,
    marketOrders: recorder.marketOrders,
    marketVolume: recorder.marketVolume,
    lastResortOrders: recorder.lastResortOrders,
    lastResortVolume: recorder.lastResortVolume,
    auctionVolume: recorder.auctionVolume,
    executionCost: recorder.executionCost,
    adlVolume: recorder.adlVolume,
    providerCapitalUsed: recorder.providerCapitalUsed,
    priceLow,
    ...(markLow === undefined ? {} : { markLow }),
    conservation: recorder.conservation(traders, fundEnd - input.fundStart),
    errors,
    errorSamples,
    deadLetters: dead,
    series,
  };
}

/**
 * What providers' records say they won against the auctions' fills (providers48-fills-on-record): per provider and
 * market, the count, base bought and sold, quote paid and received, exactly. Undefined: they agree.
 */
function providerFillsDisagree(
  providers: readonly (ProviderRecord | undefined)[],
  auctions: readonly AuctionRecord[],
): string | undefined {
  const key = (id: string, symbol: string) => `${id} ${symbol}`;
  const want = new Map<string, [number, bigint, bigint, bigint, bigint]>();
  for (const a of auctions)
    for (const f of a.fills) {
      const t = want.get(key(f.providerId, a.symbol)) ?? [0, 0n, 0n, 0n, 0n];
      const sell = a.direction === 'SELL';
      const cost = auctionFillCost(a.direction, f);
      want.set(key(f.providerId, a.symbol), [
        t[0] + 1,
        t[1] + (sell ? f.size : 0n),
        t[2] + (sell ? cost : 0n),
        t[3] + (sell ? 0n : f.size),
        t[4] + (sell ? 0n : cost),
      ]);
    }
  const got = new Map<string, [number, bigint, bigint, bigint, bigint]>();
  for (const p of providers) {
    if (!p || !providerFillsRead(p.fills)) continue;
    for (const [symbol, t] of Object.entries(p.fills.byMarket))
      got.set(key(p.id, symbol), [t.fills, t.bought, t.paid, t.sold, t.received]);
  }
  for (const k of new Set([...want.keys(), ...got.keys()])) {
    const w = want.get(k)?.join(',') ?? 'none';
    const g = got.get(k)?.join(',') ?? 'none';
    if (w !== g) return `${k}: the record totals ${g}, the auctions' fills ${w}`;
  }
  return undefined;
}

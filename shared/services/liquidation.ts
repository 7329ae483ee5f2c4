import { randomUUID } from 'node:crypto';
import {
  type AdlAllocation,
  type AdlCandidate,
  type AdlFill,
  allocateAdl,
  asAdlCandidate,
  deleverageCounterparty,
  givesWithoutClosing,
  profitGivenAfter,
  type RankedCandidate,
  rankCandidate,
  recordAdlEvent,
} from '../domain/adl.ts';
import { startPrice } from '../domain/auction.ts';
import { type ClaimedFacts, encodeClaimedFacts } from '../domain/claimed-facts.ts';
import type { InsuranceConfig, MarketConfig } from '../domain/config.ts';
import { baseOf, lotSizeOf, marketConfig } from '../domain/config.ts';
import { boundedFills } from '../domain/fills.ts';
import { fnv1a } from '../domain/hash.ts';
import { type InsuranceState, windowStartFor } from '../domain/insurance.ts';
import { isLiquidatable } from '../domain/margin.ts';
import { type Fill, isTerminal, type Side, type TerminalState } from '../domain/model.ts';
import { type LiquidationStep, planLiquidationStep } from '../domain/sizing.ts';
import {
  absBig,
  type BaseE8,
  BPS_SCALE,
  div,
  floorToLot,
  formatBase,
  formatPrice,
  formatQuote,
  maxBig,
  minBig,
  PPM_SCALE,
  type Ppm,
  type PriceE8,
  type QuoteE6,
} from '../domain/units.ts';
import { venueDisputesMark } from '../domain/venue-check.ts';
import {
  appliedAmounts,
  appliedByKey,
  decideWaterfall,
  differenceMovements,
  nextSliceDelaySeconds,
  planKeyOf,
  settlementRecord,
  type WaterfallDecision,
  type WaterfallInput,
} from '../domain/waterfall.ts';
import { METRICS } from '../metrics.ts';
import {
  type AccountBalance,
  type AuctionRecord,
  ConditionFailedError,
  type LiquidationMessage,
  type LiquidationRecord,
  type MarketState,
  MovementFencedError,
  type OrderLease,
  type OrderRequest,
  type OrderResult,
  type PositionRecord,
  type ProvidersEpochCheck,
  VENUE_ERROR_KINDS,
  VenueError,
  type Write,
} from '../ports/index.ts';
import { dueLiquidationMessage } from '../schemas/messages.ts';
import { AdlQueue, type QueuedEntry, readAdlTop, type VersionedCandidate } from './adl-snapshots.ts';
import {
  closeDirection,
  type LiquidationContext,
  latestMark,
  MarkStaleError,
  markOfMarket,
  messageMarket,
  ORDER_LEASE_MS,
  oppositeSide,
  requireFreshMark,
  type SettlementDeps,
  STALE_MARK_WAIT_SECONDS,
  waitForFreshMark,
} from './context.ts';
import { isNextSlice, liquidationIdOf, NEXT_SLICE_NOTE, withLiquidationPrice } from './margin-check.ts';
import {
  type AuctionOpening,
  coverWake,
  dueIn,
  planOpening,
  providersUnchangedSince,
  sendStep,
} from './sleeping.ts';

export class LiquidationNotFoundError extends Error {
  override readonly name = 'LiquidationNotFoundError';
}

/** A liquidation that cannot progress now (for example ADL has no counterparty): retried, then DLQ + alarm. */
export class LiquidationStuckError extends Error {
  override readonly name = 'LiquidationStuckError';
}

/**
 * A slice under its market's lot that nothing took (subLotRemainder): its own message carries it to the dead-letter
 * queue, so an auction step that meets it hands it over to that message (auction.ts settleFinished).
 */
export class SubLotRemainderError extends LiquidationStuckError {}

/** A delivery spent MAX_TRANSITIONS on conflicts: the liquidation comes back after a delay (processLiquidation). */
class LiquidationContendedError extends Error {
  constructor(liquidationId: string) {
    super(`liquidation/contended: ${liquidationId}`);
    this.name = 'LiquidationContendedError';
  }
}

/**
 * Another delivery holds the liquidation's order lease (a duplicate delivery, or the message of one that died
 * before its lease ran out): retried, when the holder has finished or its lease has run out.
 */
export class LiquidationBusyError extends Error {
  override readonly name = 'LiquidationBusyError';
  /** @param retryAfterMs until the holder's lease runs out */
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

export interface LiquidationOutcome {
  readonly liquidationId: string;
  readonly state: LiquidationRecord['state'];
}

/** Upper bound on state transitions per message: each iteration moves the liquidation forward. */
const MAX_TRANSITIONS = 8;

/** Deliveries that may each spend MAX_TRANSITIONS on conflicts before the liquidation is called stuck. */
export const MAX_CONTENDED_DELIVERIES = 10;

/**
 * When a contended liquidation comes back: 1 s to 2^(n+1) s (at most 60) after its n-th contended delivery, spread by
 * its id (the herd's members apart, and a replay the same each run).
 */
export const contendedDelaySeconds = (liquidationId: string, contended: number): number =>
  1 + (fnv1a(`${liquidationId}#${contended}`) % Math.min(60, 2 ** (contended + 1)));

/** A mark with the time of its tick. */
type MarkAt = { readonly mark: PriceE8; readonly atMs: number };

/** What one message's processing already read or wrote: carried forward instead of read again. */
export interface Carried {
  position?: PositionRecord;
  mark?: MarkAt;
  /** The market record as the claim read it (its wake marks spare a new auction's cover when they hold). */
  market?: MarketState;
  /** The plan a freeze just stored with the record of this version: the frozen inputs give it again. */
  frozenPlan?: {
    readonly liquidationId: string;
    readonly version: number;
    readonly decision: WaterfallDecision;
    readonly reads: PlanReads;
  };
  /**
   * The writes of the auction step that ended the auction, not committed yet: they go in the transaction that
   * freezes the settlement (one fewer per liquidation an auction hands to the fund or ADL), or alone before any
   * other effect (`flushPending`).
   */
  pendingWrites?: readonly Write[];
  /** The last resort's waits so far, as its message counts them (the record's count: LiquidationContext). */
  lastResortWaits?: number;
  /** The wait the message carries on (LiquidationMessage.lastResortWaitId). */
  lastResortWaitId?: string;
  /** The wait the record named when the message was sent (LiquidationMessage.lastResortWaitAfter). */
  lastResortWaitAfter?: string;
  /** The market's last-resort fills on the slice's side at its last look (LiquidationMessage.lastResortFillsSeen). */
  lastResortFillsSeen?: number;
  /** Of lastResortWaits, those after which a sibling's last resort had filled (LiquidationMessage). */
  lastResortWaitsOutraced?: number;
  /** The message's markDisputedSinceMs: read only on a record without one (confirmWithVenue). */
  markDisputedSinceMs?: number;
  /** The mark at which ADL last found nobody to take this waiting slice (LiquidationMessage.adlJudgedAtE8). */
  adlJudgedAt?: PriceE8;
  /** This delivery's token as the owner of an order lease. */
  owner?: string;
  /** The record as stored with this delivery's lease (released when the delivery fails). */
  leased?: LiquidationRecord;
  /**
   * The client order id whose claim this delivery wrote before placing it: any other order it places may have been
   * placed by an earlier delivery (one that timed out or died), and a refusal of it says nothing about that.
   */
  claimedOrder?: string;
}

/** What a plan read, for its settlement to write on instead of reading it again (the writes' conditions hold it). */
interface PlanReads {
  /** The ADL counterparties' records, at the versions the plan froze. */
  readonly counterparties?: ReadonlyMap<string, PositionRecord>;
  /** The fund's account as the plan read it. */
  readonly fund?: AccountBalance;
}

/** One transition: `done` with the record this message leaves, or the record to continue from (unknown: re-read). */
type Step =
  | { readonly done: true; readonly record: LiquidationRecord }
  | { readonly done: false; readonly next?: LiquidationRecord };

/**
 * Processes one liquidation message: re-check at the latest mark (cancel if healthy), close on the market
 * within the slippage bound, hand the remainder to the auction, or settle with the ledger. Every step is a
 * conditional transition of the liquidation record, so a redelivered message resumes where the last attempt
 * stopped: the venue order has a deterministic client id (never executed twice), ledger movements have
 * deterministic idempotency keys (never applied twice), and the final writes are one transaction.
 * Records this message wrote are carried forward rather than read again (fewer calls per liquidation).
 */
export async function processLiquidation(
  message: LiquidationMessage,
  deps: SettlementDeps,
): Promise<LiquidationOutcome> {
  // How late it came, whatever it finds: a backed-up or stalled consumer, retries, a redrive (alarmed). Reported
  // once the record names its market: only margin-check's messages carry their symbol.
  const lateSeconds =
    message.dueAtMs === undefined ? undefined : Math.max(0, deps.clock.nowMs() - message.dueAtMs) / 1000;
  // Stored as soon as the record is read, before the delivery's venue calls: a delivery the function's timeout ends
  // keeps it for the deadline's flush (stored only at the end, it died with the invocation: a review, session 40).
  let reported = false;
  const report = (market: { readonly Market: string } | undefined): void => {
    if (reported || lateSeconds === undefined) return;
    reported = true;
    deps.telemetry.observe(METRICS.LiquidationLateness.name, lateSeconds, market);
  };
  const read: LiquidationRead = {
    known: (symbol) => {
      read.symbol = symbol;
      report({ Market: symbol });
    },
  };
  try {
    return await deliverLiquidation(message, deps, read);
  } finally {
    // Never read (not found, or a failure before): the message's market, if it names a configured one.
    report(messageMarket(message.symbol, deps.config));
  }
}

/** What a delivery knows of its liquidation's market: `known` once the record is read. */
interface LiquidationRead {
  symbol?: string;
  readonly known: (symbol: string) => void;
}

/** processLiquidation's delivery; `read.known`: the market of the record, once read. */
async function deliverLiquidation(
  message: LiquidationMessage,
  deps: SettlementDeps,
  read: LiquidationRead,
): Promise<LiquidationOutcome> {
  const {
    liquidationId,
    lastResortWaits,
    lastResortWaitId,
    lastResortWaitAfter,
    lastResortWaitsOutraced,
    lastResortFillsSeen,
    markDisputedSinceMs,
    adlJudgedAtE8,
    contendedDeliveries,
  } = message;
  // What the message carries from earlier deliveries: the last resort's waits and a dispute's first time.
  const counts = {
    ...(lastResortWaits === undefined ? {} : { lastResortWaits }),
    ...(lastResortWaitId === undefined ? {} : { lastResortWaitId }),
    ...(lastResortWaitAfter === undefined ? {} : { lastResortWaitAfter }),
    ...(lastResortWaitsOutraced === undefined ? {} : { lastResortWaitsOutraced }),
    ...(lastResortFillsSeen === undefined ? {} : { lastResortFillsSeen }),
    ...(markDisputedSinceMs === undefined ? {} : { markDisputedSinceMs }),
    ...(adlJudgedAtE8 === undefined ? {} : { adlJudgedAtE8 }),
    // A contended liquidation's count survives a feed's gap, or a livelock would never be called stuck.
    ...(contendedDeliveries === undefined ? {} : { contendedDeliveries }),
  };
  const { adlJudgedAtE8: _, contendedDeliveries: _count, ...carriedCounts } = counts;
  const carried: Carried = {
    ...carriedCounts,
    ...(adlJudgedAtE8 === undefined ? {} : { adlJudgedAt: BigInt(adlJudgedAtE8) }),
  };
  let state: LiquidationRecord['state'] | undefined;
  try {
    return await releasingLease(carried, deps, async () => {
      let current = await firstRead(message, deps, carried);
      for (let i = 0; i < MAX_TRANSITIONS; i++) {
        current ??= await deps.liquidations.get(liquidationId);
        if (!current) throw new LiquidationNotFoundError(`liquidation/not-found: ${liquidationId}`);
        state = current.state;
        read.known(current.symbol);
        const step = await advance(current, deps, carried);
        if (step.done) return { liquidationId, state: step.record.state };
        current = step.next;
        // A concurrent writer moved the records: read them again.
        if (!current) carried.position = undefined;
      }
      throw new LiquidationContendedError(liquidationId);
    });
  } catch (error) {
    if (error instanceof LiquidationContendedError) {
      // Each transition a conflict cost (settlements racing for the fund in a crash, planning again): the herd is
      // spread by a delay, not failed (a failure pages, and five dead-letter a healthy settlement). Only a
      // liquidation still turning after MAX_CONTENDED_DELIVERIES such deliveries is stuck. Its lease, if it held
      // one, was released on the way out (releasingLease).
      const contended = contendedDeliveries ?? 0;
      if (contended >= MAX_CONTENDED_DELIVERIES)
        throw new LiquidationStuckError(`liquidation/too-many-transitions: ${liquidationId}`);
      const delaySeconds = contendedDelaySeconds(liquidationId, contended);
      const { dueAtMs: _due, ...again } = message;
      await deps.liquidationQueue.send(
        dueLiquidationMessage(
          { ...again, contendedDeliveries: contended + 1 },
          deps.clock.nowMs(),
          delaySeconds,
        ),
        delaySeconds,
      );
      deps.telemetry.count(
        METRICS.LiquidationsContended.name,
        1,
        read.symbol === undefined ? undefined : { Market: read.symbol },
      );
      deps.telemetry.info('liquidation contended; it comes back', { liquidationId, delaySeconds });
      return { liquidationId, state: state ?? 'QUEUED' };
    }
    if (error instanceof MarkDisputedError) {
      // Nothing but the hold's start was written: the same start comes back. With the recorded first time, which
      // this version does not read from it, for a consumer of the version before during a deploy.
      const { dueAtMs: _, ...start } = message;
      const body = dueLiquidationMessage(
        { ...start, markDisputedSinceMs: error.sinceMs },
        deps.clock.nowMs(),
        error.waitSeconds,
      );
      await deps.liquidationQueue.send(body, error.waitSeconds);
      // Every look (LiquidationsDisputed counts each liquidation held once, where its hold is recorded).
      deps.telemetry.count(METRICS.MarkDisputes.name, 1, { Market: error.symbol });
      deps.telemetry.warn('the venue disputes the mark; the liquidation waits', {
        liquidationId,
        symbol: error.symbol,
        detail: error.message,
      });
      return { liquidationId, state: state ?? 'QUEUED' };
    }
    if (!(error instanceof MarkStaleError)) throw error;
    // Everything written so far is a step a redelivery resumes from: the message comes back as one would.
    // Due when it comes back: the wait is the feed's (StaleMarkWaits), not the consumer's lateness.
    const body = dueLiquidationMessage(
      // With its counts: a dispute's clock goes on through the feed's stalls (or a stalling feed would hold it for ever).
      { liquidationId, ...counts },
      deps.clock.nowMs(),
      STALE_MARK_WAIT_SECONDS,
    );
    await waitForFreshMark(error, deps.liquidationQueue, body, deps, { liquidationId });
    return { liquidationId, state: state ?? 'QUEUED' };
  }
}

/**
 * The liquidation as a delivery first reads it. A message that names its position and market (margin-check's)
 * reads the three in one call: a new liquidation's claim then re-checks on them without reading again.
 */
async function firstRead(
  message: LiquidationMessage,
  deps: SettlementDeps,
  carried: Carried,
): Promise<LiquidationRecord | undefined> {
  const { liquidationId, positionId, symbol } = message;
  if (positionId === undefined || symbol === undefined) return deps.liquidations.get(liquidationId);
  const read = await deps.reader.liquidationPositionAndMarket(liquidationId, positionId, symbol);
  const { liquidation } = read;
  if (
    liquidation?.state === 'QUEUED' &&
    liquidation.positionId === positionId &&
    liquidation.symbol === symbol
  ) {
    carried.position = read.position;
    carried.market = read.market;
    carried.mark = markOfMarket(read.market, liquidation.triggerMark, deps.clock.nowMs());
  }
  return liquidation;
}

// --- The order lease: one delivery at a time places a liquidation's venue orders ---------------------------

/**
 * A refused order counts as not executed only while no other delivery can place the same client order id: a
 * duplicate delivery placing it a moment later would have it executed after the slice went on to the auction
 * (sold twice, the duplicate's fills recorded nowhere). So a delivery places orders only under its lease.
 */
const leaseFor = (owner: string, nowMs: number, deps: SettlementDeps): OrderLease => ({
  owner,
  untilMs: nowMs + (deps.orderLeaseMs ?? ORDER_LEASE_MS),
});

/** This delivery's token as a lease owner (one per message processed). */
function ownerOf(carried: Carried): string {
  carried.owner ??= randomUUID();
  return carried.owner;
}

/** The context without its lease (a failed delivery releases it; an order it placed stays pending). */
const withoutLease = ({ lease: _, ...context }: LiquidationContext): LiquidationContext => context;

/** The context as stored by a commit that records an order's outcome: no order pending, nobody holding them. */
const outcomeRecorded = ({
  lease: _,
  lastResortOrder: __,
  ...context
}: LiquidationContext): LiquidationContext => context;

/**
 * The record under this delivery's lease: as it is when the lease is ours, else with the lease taken (one
 * conditional write; taken over when another's ran out). Undefined when another writer moved the record first (read
 * it again). A live lease of another delivery is waited for, then defers this one (awaitLeaseHolder).
 */
async function holdLease(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
  order?: LiquidationContext['lastResortOrder'],
): Promise<LiquidationRecord | undefined> {
  const owner = ownerOf(carried);
  if ((await awaitLeaseHolder(liquidation, deps, carried, ' places its orders')) === 'moved')
    return undefined;
  const now = deps.clock.nowMs();
  const context = contextOf(liquidation);
  const held = context.lease;
  // An order to record before it is placed is written even under a lease already held.
  if (!order && held && held.untilMs > now && held.owner === owner) return liquidation;
  if (held && held.owner !== owner) {
    deps.telemetry.warn('order lease ran out; taking it over', { liquidationId: liquidation.id });
    deps.telemetry.count(METRICS.OrderLeaseTakeovers.name, 1, { Market: liquidation.symbol });
  }
  const leased: LiquidationRecord = {
    ...liquidation,
    context: { ...context, lease: leaseFor(owner, now, deps), ...(order ? { lastResortOrder: order } : {}) },
    version: liquidation.version + 1,
  };
  const written = await commitOrSkip(deps, [
    { kind: 'liquidation', record: leased, expectedVersion: liquidation.version },
  ]);
  if (!written) return undefined;
  carried.leased = leased;
  return leased;
}

/**
 * While another delivery holds the lease its order may be executing: an order placed or an outcome decided now (a
 * settlement, a freeze) could sell the slice twice or leave that order's fills recorded nowhere. Waits for the
 * holder to record its outcome ('moved': read the record again) or for its lease to run out ('free': it died);
 * after a few reads, defers this delivery (LiquidationBusyError) until then.
 */
async function awaitLeaseHolder(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
  holderDoes = "'s order may be executing",
): Promise<'free' | 'moved'> {
  const held = liquidation.context?.lease;
  const foreign = () => !!held && held.untilMs > deps.clock.nowMs() && held.owner !== carried.owner;
  if (!foreign()) return 'free';
  // Usually a duplicate delivery whose twin holds the lease and records its outcome within a second: wait for
  // that (the record moves on) rather than fail and come back when the lease would run out.
  for (let attempt = 1; deps.backoff && attempt <= LEASE_POLLS && foreign(); attempt++) {
    await deps.backoff(attempt);
    if ((await deps.liquidations.get(liquidation.id))?.version !== liquidation.version) return 'moved';
  }
  if (!foreign()) return 'free';
  deps.telemetry.count(METRICS.OrderLeaseDeferrals.name, 1, { Market: liquidation.symbol });
  throw new LiquidationBusyError(
    `liquidation/busy: ${liquidation.id} (another delivery${holderDoes} until ${new Date(held!.untilMs).toISOString()})`,
    held!.untilMs - deps.clock.nowMs(),
  );
}

/** Reads of the record while waiting for another delivery's lease (with the deps' backoff between them). */
const LEASE_POLLS = 8;

/**
 * Runs one delivery's work; when it fails, gives up the order lease it took (it places nothing more), so its
 * retry need not wait for the lease to run out. Best effort: a lease not released runs out.
 */
export async function releasingLease<T>(
  carried: Carried,
  deps: SettlementDeps,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const leased = carried.leased;
    carried.leased = undefined;
    if (leased?.context) {
      const released = { ...leased, context: withoutLease(leased.context), version: leased.version + 1 };
      try {
        // Conditional on the leased version: a record that moved on no longer holds this lease.
        await deps.transactor.commit([
          { kind: 'liquidation', record: released, expectedVersion: leased.version },
        ]);
      } catch (releaseError) {
        if (!(releaseError instanceof ConditionFailedError)) {
          deps.telemetry.warn('order lease not released; it runs out', {
            liquidationId: leased.id,
            reason: String(releaseError),
          });
        }
      }
    }
    throw error;
  }
}

async function advance(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<Step> {
  switch (liquidation.state) {
    case 'QUEUED':
      return claim(liquidation, deps, carried);
    case 'EXECUTING':
      return executeMarket(liquidation, deps, carried);
    case 'MARKET_EXECUTED':
    case 'SETTLING':
      return decideAndSettle(liquidation, deps, undefined, carried);
    case 'AUCTION': {
      // The auction function drives it while it runs; make sure its step message exists (a crash may have
      // lost it). Once it ended, the rest is settled here (a last resort waiting for the book comes back so).
      const auction = await deps.auctions.get(auctionIdOf(liquidation.id));
      if (!auction || auction.state === 'RUNNING') {
        if (auction) await sendStep(auction, 0, deps);
        return { done: true, record: liquidation };
      }
      return decideAndSettle(liquidation, deps, auction, carried);
    }
    default:
      // The delivery that settled may have died after its commit, before the alarms' metrics: a redelivery
      // reports the loss again (alarms count at least once; a duplicate delivery counts it twice).
      if (!liquidation.context?.adlRound) reportSettledLoss(liquidation, deps);
      await sendFollowUps(liquidation, deps, { roundsHere: true });
      if (liquidation.context?.adlRound) return adlRounds(liquidation, deps);
      return { done: true, record: liquidation };
  }
}

async function loadPosition(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<PositionRecord> {
  carried.position ??= await deps.positions.get(liquidation.positionId);
  if (!carried.position)
    throw new LiquidationStuckError(`liquidation/position-missing: ${liquidation.positionId}`);
  return carried.position;
}

/** The position and the latest mark in one read when neither is carried (one call per liquidation saved). */
async function loadClaimInputs(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<void> {
  if (carried.position || carried.mark) return;
  const { position, market } = await deps.reader.positionAndMarket(
    liquidation.positionId,
    liquidation.symbol,
  );
  carried.position = position;
  carried.market = market;
  carried.mark = markOfMarket(market, liquidation.triggerMark, deps.clock.nowMs());
}

async function markOf(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
  fallback: PriceE8,
) {
  if (!carried.mark) {
    carried.market = await deps.markets.get(liquidation.symbol);
    carried.mark = markOfMarket(carried.market, fallback, deps.clock.nowMs());
  }
  // Every decision reads the mark here: none is made on a mark the feed has not confirmed lately.
  return requireFreshMark(carried.mark, liquidation.symbol, deps);
}

const withHistory = (
  liquidation: LiquidationRecord,
  state: LiquidationRecord['state'],
  atMs: number,
  note?: string,
): LiquidationRecord => ({
  ...liquidation,
  state,
  history: [...liquidation.history, note === undefined ? { atMs, state } : { atMs, state, note }],
  version: liquidation.version + 1,
});

// --- QUEUED: re-check and claim; EXECUTING: the market order --------------------------------------------

/**
 * Re-checks at the latest mark and either cancels (healthy again) or claims the liquidation (QUEUED ->
 * EXECUTING) with its market order fixed: size, limit and reference. Cancelling is only possible from QUEUED,
 * so once any consumer may have placed the order nobody can cancel it away.
 */
async function claim(liquidation: LiquidationRecord, deps: SettlementDeps, carried: Carried): Promise<Step> {
  await loadClaimInputs(liquidation, deps, carried);
  const position = await loadPosition(liquidation, deps, carried);
  const market = marketConfig(deps.config, liquidation.symbol);
  const reference = await markOf(liquidation, deps, carried, liquidation.triggerMark);
  const { mark } = reference;
  const now = deps.clock.nowMs();

  // A slice left as dust goes on whatever its health (see applySettlement): a healthy dust remainder stays.
  const dustSlice = isNextSlice(liquidation) && position.size < market.dustSize;
  if (!dustSlice && !isLiquidatable(position, mark, market.maintenanceMargin)) {
    // Healthy again at the latest mark: nothing executed, the position goes back to the book, priced by the
    // rules this deployment runs (a reindex after a change of the margin passed it over while LIQUIDATING).
    const reopened: PositionRecord = withLiquidationPrice(
      { ...position, state: 'OPEN', version: position.version + 1 },
      deps.config,
    );
    const cancelled = withHistory(liquidation, 'CANCELLED', now, `healthy at ${mark}`);
    const committed = await commitOrSkip(deps, [
      { kind: 'liquidation', record: cancelled, expectedVersion: liquidation.version },
      { kind: 'position', record: reopened, expectedVersion: position.version },
    ]);
    if (!committed) return { done: false };
    deps.telemetry.count(METRICS.LiquidationsCancelled.name, 1, { Market: liquidation.symbol });
    return { done: true, record: cancelled };
  }

  if (
    !dustSlice &&
    (await confirmWithVenue(liquidation, position, reference, market, deps, carried)) === 'moved'
  )
    return { done: false };

  const step = deps.strategy === 'market-only' ? undefined : planLiquidationStep(position, mark, market);
  const plannedSize = step?.size ?? position.size;
  // The venue fills whole lots only: a part under one (a position opened before its market had a lot) goes straight
  // on to the auction and ADL, and a slice all under one places no order.
  const marketOrderSize = floorToLot(plannedSize, lotSizeOf(market));
  const direction = closeDirection(position.side);
  const slip = deps.strategy === 'market-only' ? PPM_SCALE - 1n : market.slippageBound;
  // Worst acceptable price, rounded toward the mark (a tighter bound protects the fund).
  const limitPrice =
    direction === 'SELL'
      ? div(mark * (PPM_SCALE - slip), PPM_SCALE, 'ceil')
      : deps.strategy === 'market-only'
        ? mark * 1000n
        : div(mark * (PPM_SCALE + slip), PPM_SCALE, 'floor');
  const context: LiquidationContext = {
    plannedSize,
    ...(marketOrderSize === plannedSize ? {} : { marketOrderSize }),
    executionMark: mark,
    executionMarkAtMs: reference.atMs,
    limitPrice,
    positionVersion: position.version,
    claimed: encodeClaimedFacts(claimedFacts(position, market, slip, step, reference, carried.market)),
    // The claimant places the order: the lease comes with the claim.
    lease: leaseFor(ownerOf(carried), now, deps),
  };
  const claimed: LiquidationRecord = {
    ...withHistory(
      liquidation,
      'EXECUTING',
      now,
      `size ${plannedSize} limit ${limitPrice}${marketOrderSize === plannedSize ? '' : ` market order ${marketOrderSize}`}`,
    ),
    remainingSize: plannedSize,
    context,
  };
  if (
    !(await commitOrSkip(deps, [
      { kind: 'liquidation', record: claimed, expectedVersion: liquidation.version },
    ]))
  ) {
    return { done: false };
  }
  carried.leased = claimed;
  carried.claimedOrder = marketOrderId(claimed.id);
  return { done: false, next: claimed };
}

const marketOrderId = (liquidationId: string): string => `${liquidationId}:market`;

/** What the claim read and applied, for `liquidations show` (LiquidationContext.claimed). */
function claimedFacts(
  position: PositionRecord,
  market: MarketConfig,
  slippageBound: Ppm,
  step: LiquidationStep | undefined,
  reference: MarkAt,
  read: MarketState | undefined,
): ClaimedFacts {
  const tick = read?.lastTick;
  // The mark's tick, when the mark is the market's last tick as read (else the trigger mark: no tick recorded).
  const markTick =
    tick && tick.markPrice === reference.mark && tick.timestampMs === reference.atMs
      ? {
          sequence: tick.sequence,
          ...(tick.indexPrice === undefined ? {} : { indexPrice: tick.indexPrice }),
        }
      : undefined;
  return {
    position: {
      size: position.size,
      entryPrice: position.entryPrice,
      collateral: position.collateral,
      ...(position.collateralOverE16 === undefined ? {} : { collateralOverE16: position.collateralOverE16 }),
    },
    ...(step ? { sizing: step.reason } : {}),
    ...(markTick ? { markTick } : {}),
    maintenanceMargin: market.maintenanceMargin,
    initialMargin: market.initialMargin,
    liquidationFee: market.liquidationFee,
    slippageBound,
  };
}

/** How long a liquidation the venue holds (MarkDisputedError) waits before it looks again, at most. */
export const MARK_DISPUTE_WAIT_SECONDS = 10;

/**
 * The venue disputes the mark a liquidation would start on (domain/venue-check.ts): it waits, unwritten, for
 * `waitSeconds`: the next look, or the hold's end if sooner (before session 39, a hold of 25 s ended at the look at
 * 30 s).
 */
export class MarkDisputedError extends Error {
  override readonly name = 'MarkDisputedError';
  constructor(
    readonly symbol: string,
    mark: PriceE8,
    venuePrice: PriceE8 | undefined,
    readonly sinceMs: number,
    readonly waitSeconds: number,
  ) {
    super(
      `mark/disputed: ${symbol} mark ${formatPrice(mark)}, the venue's price for the close ${venuePrice === undefined ? 'unknown (its quote failed)' : formatPrice(venuePrice)} (disputed since ${new Date(sinceMs).toISOString()})`,
    );
  }
}

/**
 * With the market's venueCheckBand, the venue's price for the close must not dispute the mark a liquidation starts
 * on: while it does, the liquidation waits, QUEUED (its message comes back), for at most venueCheckHoldSeconds from
 * the first dispute, as recorded on the liquidation (recordMarkDispute: the first time wins); then it goes on on the
 * mark, as a venue (a book someone props up) must not hold liquidations for ever. A venue that cannot quote is no
 * evidence: it goes on. 'moved': the record left QUEUED, or another delivery recorded the hold first (read it again).
 */
async function confirmWithVenue(
  liquidation: LiquidationRecord,
  position: PositionRecord,
  reference: MarkAt,
  market: MarketConfig,
  deps: SettlementDeps,
  carried: Carried,
): Promise<'checked' | 'moved'> {
  // A slice's rest continues a liquidation whose start was checked (and held at most once).
  if (market.venueCheckBand === undefined || deps.strategy === 'market-only' || isNextSlice(liquidation))
    return 'checked';
  const now = deps.clock.nowMs();
  // The hold starts when the record says. A message's time counts only on a record without one: a message of a
  // version that did not record it (a rolling deploy). Trusted, a message re-sent without it or forged with another
  // time restarted or ended the hold (session 41).
  const legacy = liquidation.markDisputedSinceMs === undefined ? carried.markDisputedSinceMs : undefined;
  const first = liquidation.markDisputedSinceMs ?? legacy;
  // A first time ahead of now (a clock ahead, or forged) would hold past the cap for ever.
  const since = first === undefined ? undefined : Math.min(first, now);
  const quote = await quoteOrNone(liquidation, reference, deps, 'venue quote failed');
  const price = quote && (closeDirection(position.side) === 'SELL' ? quote.bid : quote.ask);
  // No quote is no evidence either way: a dispute already under way holds on (a failing venue must not end it).
  const disputes = quote
    ? venueDisputesMark(position, reference.mark, price, market.maintenanceMargin, market.venueCheckBand)
    : since !== undefined;
  if (!disputes) return 'checked';
  // A hold of 0 holds nothing: the first dispute is overruled at once (it held for a look, 10 s).
  const holdsUntil = (since ?? now) + market.venueCheckHoldSeconds * 1000;
  if (now >= holdsUntil) {
    if (!quote) return 'checked';
    deps.telemetry.warn(
      'the venue has disputed the mark for venueCheckHoldSeconds; liquidating on the mark',
      {
        liquidationId: liquidation.id,
        mark: formatPrice(reference.mark),
        venuePrice: price === undefined ? null : formatPrice(price),
      },
    );
    deps.telemetry.count(METRICS.MarkDisputesOverruled.name, 1, { Market: liquidation.symbol });
    return 'checked';
  }
  if (liquidation.markDisputedSinceMs === undefined) {
    // Recorded before the message goes back: no later message moves it.
    let held: { readonly sinceMs: number; readonly recorded: boolean };
    try {
      held = await deps.liquidations.recordMarkDispute(liquidation.id, since ?? now);
    } catch (error) {
      if (error instanceof ConditionFailedError) return 'moved';
      throw error;
    }
    if (!held.recorded) return 'moved';
    // Once per liquidation held, by the write only one delivery makes (an older version counted a legacy hold). At
    // most once: a delivery whose write landed and that never counted it or never published the count (its answer
    // lost past the SDK's retries, a process killed before the record's metrics went out) leaves the hold uncounted,
    // and its retry cannot tell that from a delivery that did count and then failed (its hold message not sent):
    // the count and the record are not one atomic write, so counting in the retry would count some holds twice.
    if (legacy === undefined)
      deps.telemetry.count(METRICS.LiquidationsDisputed.name, 1, { Market: liquidation.symbol });
  }
  throw new MarkDisputedError(
    liquidation.symbol,
    reference.mark,
    price,
    since ?? now,
    Math.max(1, Math.min(MARK_DISPUTE_WAIT_SECONDS, Math.ceil((holdsUntil - now) / 1000))),
  );
}

/**
 * Places the claimed order under the order lease (a retry places the same client order id: the venue never
 * executes it twice) and hands the fills to the waterfall in memory; they are stored with the next transition,
 * which is conditional on this record's version.
 */
async function executeMarket(
  claimed: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<Step> {
  // A claimed order is placed (or asked again) only on a fresh mark, as every other decision: while the feed is
  // out it waits with no lease, no order and no write, and its fills are stored with the settlement after.
  await markOf(claimed, deps, carried, contextOf(claimed).executionMark);
  const liquidation = await holdLease(claimed, deps, carried);
  if (!liquidation) return { done: false };
  const context = contextOf(liquidation);
  const clientOrderId = marketOrderId(liquidation.id);
  const placedBefore = carried.claimedOrder !== clientOrderId;
  // Placed now: a later placement of it in this delivery (after a lost commit) is a repeat too.
  carried.claimedOrder = undefined;
  const orderSize = context.marketOrderSize ?? context.plannedSize;
  // A slice under one lot: no order, as the claim fixed for every delivery (the venue would answer no fills).
  const answered =
    orderSize === 0n
      ? []
      : await placeWithRetries(deps, placedBefore, {
          clientOrderId,
          symbol: liquidation.symbol,
          direction: closeDirection(liquidation.side),
          size: orderSize,
          limitPrice: context.limitPrice ?? context.executionMark,
          reference: { mark: context.executionMark, atMs: context.executionMarkAtMs ?? deps.clock.nowMs() },
        });
  for (const fill of answered) {
    deps.telemetry.observe(METRICS.SlippageBps.name, Number(slippageBps(fill.price, context.executionMark)), {
      Market: liquidation.symbol,
    });
  }
  const fills = keptFills(answered, clientOrderId, deps);
  const executed: LiquidationRecord = {
    ...liquidation,
    state: 'MARKET_EXECUTED',
    marketFills: fills,
    remainingSize: context.plannedSize - sumSize(fills),
    history: [
      ...liquidation.history,
      {
        atMs: deps.clock.nowMs(),
        state: 'MARKET_EXECUTED',
        note: `filled ${sumSize(fills)} of ${context.plannedSize}`,
      },
    ],
    // Not stored yet: the next commit expects the stored version.
    version: liquidation.version,
  };
  return decideAndSettle(executed, deps, undefined, carried);
}

/**
 * IOC with bounded retries of the same client order id. A rejection or an unavailable venue means the order did
 * not execute: after the attempts the whole size goes to the auction. A timeout means it may have: handing over
 * then could sell the size twice, so it throws and the redelivered message asks the venue again (same id).
 * `placedBefore`: an earlier delivery may have placed this order (it claimed it, then timed out or died); a
 * venue that is unavailable then says nothing about that order, so only an answer (fills, none, or a rejection of
 * the order itself) counts, and the message comes back until the venue gives one (order-in-doubt).
 */
async function placeWithRetries(
  deps: SettlementDeps,
  placedBefore: boolean,
  order: Parameters<SettlementDeps['venue']['placeIoc']>[0],
): Promise<readonly Fill[]> {
  let inDoubt: VenueError | undefined;
  for (let attempt = 1; attempt <= deps.venueAttempts; attempt++) {
    let result: OrderResult;
    try {
      result = await deps.venue.placeIoc(order);
    } catch (thrown) {
      if (!(thrown instanceof VenueError)) throw thrown;
      const error = knownKind(thrown);
      if (error.kind === 'timeout' || (placedBefore && error.kind === 'unavailable')) inDoubt = error;
      deps.telemetry.count(METRICS.VenueOrderFailures.name, 1, { Reason: error.kind, Market: order.symbol });
      deps.telemetry.warn('venue attempt failed', {
        clientOrderId: order.clientOrderId,
        attempt,
        kind: error.kind,
        ...(error === thrown ? {} : { reportedKind: String(thrown.kind) }),
      });
      continue;
    }
    checkAnswer(order, result);
    return result.fills;
  }
  if (inDoubt) throw inDoubt;
  deps.telemetry.warn('venue refused the order; handing over to the auction', {
    clientOrderId: order.clientOrderId,
  });
  return [];
}

/**
 * A venue failure as the consumer acts on it: of its own kind, or, of a kind outside VENUE_ERROR_KINDS (an adapter's
 * mistake), a timeout: the kind that assumes least (the order may have executed: it is asked again, never handed
 * on), counted under a Reason VenueFailuresAlarm sums. Taken as "nothing executed", a lost answer was sold twice.
 */
function knownKind(error: VenueError): VenueError {
  if ((VENUE_ERROR_KINDS as readonly unknown[]).includes(error.kind)) return error;
  return new VenueError(
    `venue/timeout: a failure of kind ${String(error.kind)}: ${error.message}`,
    'timeout',
  );
}

/**
 * An exchange's answer must be this order's and within it: its client order id, fills of positive size within the
 * order's size and at or within its limit (an IOC never fills beyond it), and no cost of their own. Another answer
 * may mean anything, an execution included: it is neither recorded nor taken as "nothing filled" (which would hand
 * the slice on), but fails the delivery, retried then dead-lettered with its alarm, for an operator. Sizes and prices
 * are bigints: the operators below take a number or a string too, and let them through to fail later, or add up.
 */
function checkAnswer(order: OrderRequest, result: OrderResult): void {
  const fault = (why: string): never => {
    throw new VenueAnswerError(`venue/bad-answer: ${order.clientOrderId}: ${why}`);
  };
  if (typeof result !== 'object' || result === null || !Array.isArray(result.fills))
    fault('an answer with no list of fills');
  if (result.clientOrderId !== order.clientOrderId) fault(`answered as ${result.clientOrderId}`);
  let size = 0n;
  for (const f of result.fills) {
    if (typeof f?.size !== 'bigint' || typeof f.price !== 'bigint')
      fault(
        `a fill whose size and price are not both bigints (size: ${typeof f?.size}, price: ${typeof f?.price})`,
      );
    if (f.size <= 0n || f.price <= 0n) fault(`a fill of ${formatBase(f.size)} at ${formatPrice(f.price)}`);
    const beyond = order.direction === 'SELL' ? f.price < order.limitPrice : f.price > order.limitPrice;
    if (beyond) fault(`a fill at ${formatPrice(f.price)} beyond the limit ${formatPrice(order.limitPrice)}`);
    // A market fill settles at its price x size exactly; a cost (an auction provider's) would settle instead
    // (an audit in session 36: a venue's cost of 0 on a fill within the limit had the fund pay the whole notional).
    if (f.cost !== undefined)
      fault(`a fill carrying a cost of ${f.cost} (a market fill settles price x size)`);
    size += f.size;
  }
  if (size > order.size) fault(`fills of ${formatBase(size)} for an order of ${formatBase(order.size)}`);
}

/** An exchange answered an order with something it cannot have done (see checkAnswer). */
export class VenueAnswerError extends Error {
  override readonly name = 'VenueAnswerError';
}

const sumSize = (fills: readonly Fill[]): BaseE8 => fills.reduce((total, f) => total + f.size, 0n);

/**
 * Most fills of one order a liquidation keeps: they are stored on its item, which DynamoDB refuses over 400 KB,
 * and a venue may split one IOC into thousands of trades. Beyond it the rest are kept as their exact totals
 * (boundedFills), which settle to the unit as the venue's trades do.
 */
export const MAX_FILLS_PER_ORDER = 100;

/** An order's fills as the liquidation keeps them (at most MAX_FILLS_PER_ORDER), with a warning when folded. */
function keptFills(fills: readonly Fill[], clientOrderId: string, deps: SettlementDeps): readonly Fill[] {
  const kept = boundedFills(fills, MAX_FILLS_PER_ORDER);
  if (kept !== fills)
    deps.telemetry.warn('venue answered with more fills than a liquidation keeps; kept as their totals', {
      clientOrderId,
      fills: fills.length,
      kept: kept.length,
    });
  return kept;
}

/** Client order id of a liquidation's last-resort order, one per attempt. */
export const lastResortOrderId = (liquidationId: string, attempt: number): string =>
  `${liquidationId}:last-resort:${attempt}`;
export const isLastResortOrderId = (clientOrderId: string): boolean =>
  /:last-resort:\d+$/.test(clientOrderId);

/**
 * Last-resort attempts that may wait for the book before the liquidation fails instead: retried, then
 * dead-lettered with its reason and an alarm, for an operator (from a first wait of 60 s: about 4 hours).
 */
export const LAST_RESORT_WAITS = 20;

/**
 * Places the last-resort order and returns its fills. When it fills nothing, the attempt is recorded and the
 * liquidation waits for the book: its message comes back after lastResortWaitSeconds, at the mark of then
 * (undefined returned); after LAST_RESORT_WAITS waits it throws `waterfall/no-liquidity` instead (retried,
 * then dead-lettered). An order that filled nothing executed nothing, so the next attempt may place a new one
 * under its own id. A liquidation already waiting (an attempt filled nothing) asks the venue for a quote first:
 * while the best price is beyond the limit no order could fill, so it waits again with no order; a herd of waiting
 * slices so costs the venue a quote each, not an order, and the table one write each (the wait's message, named on the
 * record: any copy of it ends, LiquidationContext.lastResortWait).
 */
async function lastResort(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  size: BaseE8,
  mark: PriceE8,
  deps: SettlementDeps,
  carried: Carried,
): Promise<LastResortOutcome> {
  // An order a delivery placed and did not record the outcome of (it died or failed): exactly that order again.
  const pending = context.lastResortOrder;
  const attempt = pending?.attempt ?? context.lastResortAttempt ?? 0;
  const direction = closeDirection(liquidation.side);
  const limitPrice = pending?.limitPrice ?? lastResortLimit(liquidation, direction, mark, deps);
  // The mark with its tick's time: a venue following the marks takes it as that tick, not as a new one.
  const reference =
    pending?.reference ?? (carried.mark?.mark === mark ? carried.mark : { mark, atMs: deps.clock.nowMs() });
  const waiting = attempt > 0 && !pending;
  // The record the wait is recorded on: as read, or with the attempt that filled nothing.
  let waitingOn = liquidation;
  let outraced: Outraced | undefined;
  const outracedSoFar = async () => (outraced ??= await judgeOutraced(liquidation, direction, deps, carried));
  if (!waiting || (await bookReaches(liquidation, direction, limitPrice, reference, deps))) {
    const order = pending ? undefined : { attempt, size, limitPrice, reference };
    const held = await holdLease(liquidation, deps, carried, order);
    if (!held) return 'moved';
    const fills = await placeLastResort(
      held,
      pending?.size ?? size,
      limitPrice,
      reference,
      attempt,
      deps,
      !!pending,
    );
    if (fills.length > 0) {
      // Tells the slices waiting on this side that the book came back within the bound (a hint; see below).
      await deps.markets.countLastResortFill(liquidation.symbol, direction);
      return { fills, record: held };
    }
    const { count } = await outracedSoFar();
    const next: LiquidationRecord = {
      ...withHistory(held, held.state, deps.clock.nowMs(), `last resort ${attempt} filled nothing`),
      // The stored context, not the caller's: a plan made again (refreeze) keeps its frozen inputs while it waits.
      context: {
        ...outcomeRecorded(contextOf(held)),
        lastResortAttempt: attempt + 1,
        ...(count > 0 ? { lastResortOutraced: count } : {}),
      },
    };
    if (!(await commitOrSkip(deps, [{ kind: 'liquidation', record: next, expectedVersion: held.version }])))
      return 'moved';
    waitingOn = next;
  }
  // Every empty order was a wait; the message and the record count the waits that placed none (the record's count
  // for a message without it: an operator's re-send).
  const waits = Math.max(
    carried.lastResortWaits ?? 0,
    attempt,
    contextOf(waitingOn).lastResortWait?.waits ?? 0,
  );
  const { fillsSeen, now: outracedNow, count: outracedWaits } = await outracedSoFar();
  const since = lastResortWaitingSince(liquidation);
  const waitedMs = since === undefined ? 0 : deps.clock.nowMs() - since;
  if (waits - outracedWaits + 1 >= LAST_RESORT_WAITS || waitedMs >= LAST_RESORT_MAX_WAIT_MS) {
    throw new LiquidationStuckError(
      `waterfall/no-liquidity: ${liquidation.id} (nothing within the bound after ${waits} waits, ${outracedWaits} of them outraced, ${Math.floor(waitedMs / 60_000)} min)`,
    );
  }
  deps.telemetry.count(METRICS.LastResortWaits.name, 1, { Market: liquidation.symbol });
  if (outracedNow)
    deps.telemetry.count(METRICS.LastResortWaitsOutraced.name, 1, { Market: liquidation.symbol });
  const firstWait = marketConfig(deps.config, liquidation.symbol).lastResortWaitSeconds;
  const delaySeconds = lastResortWaitSeconds(firstWait, waits);
  // Its own id: twin deliveries of one message each send a wait, and only the one recorded below goes on.
  const id = randomUUID();
  // The wait it follows (the one the record below replaces): while the record names it, this one is not a copy.
  const after = contextOf(waitingOn).lastResortWait?.id;
  await deps.liquidationQueue.send(
    dueLiquidationMessage(
      {
        liquidationId: liquidation.id,
        lastResortWaits: waits + 1,
        lastResortWaitId: id,
        ...(after === undefined ? {} : { lastResortWaitAfter: after }),
        ...(outracedWaits > 0 ? { lastResortWaitsOutraced: outracedWaits } : {}),
        lastResortFillsSeen: fillsSeen,
        ...(carried.adlJudgedAt === undefined ? {} : { adlJudgedAtE8: carried.adlJudgedAt.toString() }),
      },
      deps.clock.nowMs(),
      delaySeconds,
    ),
    delaySeconds,
  );
  // Recorded once sent, on the version this delivery read: a delivery dying between the two leaves its message a
  // copy, and its own message (still the one named) comes back to wait again; recorded first, the wait was lost.
  const recorded: LiquidationRecord = {
    ...waitingOn,
    context: {
      ...contextOf(waitingOn),
      lastResortWait: { id, waits: waits + 1 },
      ...(outracedWaits > 0 ? { lastResortOutraced: outracedWaits } : {}),
    },
    version: waitingOn.version + 1,
  };
  // Lost to another writer, the look still ends here: the wait just sent names the one this read, so it carries on
  // if the winner named none, and ends as a copy if the winner sent its own. Read again, a message naming no wait
  // looked at once a second time: a quote, a count, and a wait that ended as a copy (wait44-lost-write-ends). But a
  // take-over that lost to its own sender naming it looks again: ended, no message went on.
  const write: Write = { kind: 'liquidation', record: recorded, expectedVersion: waitingOn.version };
  if (await commitOrSkip(deps, [write], undefined, 'quiet')) return 'waiting';
  const again = await namedSinceRead(waitingOn, deps, carried);
  deps.telemetry.info(
    again
      ? "last resort's wait record lost to its sender naming this delivery's wait; re-reading"
      : "last resort's wait record lost to another writer; the look ends, the wait sent follows the one read",
    { liquidationId: waitingOn.id, waitId: id },
  );
  return again ? 'moved' : 'waiting';
}

/**
 * A take-over (its message's wait not yet named when read) whose write lost to its own sender's, naming the wait
 * this delivery carries: ended, its message is consumed and the wait it sent, following the one before, ends as a
 * copy, leaving no message (review44-takeover-named-after). Read again, its wait is the one named and goes on.
 */
async function namedSinceRead(
  read: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<boolean> {
  const own = carried.lastResortWaitId;
  if (own === undefined || contextOf(read).lastResortWait?.id === own) return false;
  return (await deps.liquidations.get(read.id))?.context?.lastResortWait?.id === own;
}

/** A waiting slice's outraced waits (lastResort): the market's fill count now, whether this wait was, and all so far. */
interface Outraced {
  readonly fillsSeen: number;
  readonly now: boolean;
  readonly count: number;
}

/**
 * A last resort on this side filled since this slice last looked: the book came back within the bound and a
 * sibling took it first. Such waits do not count towards the dead letter: a slice that has waited long looks least
 * often and so loses each such race, and would page while the book refills. They still lengthen the next wait, as
 * any other (a herd of waiters polls the book no more often for it).
 */
async function judgeOutraced(
  liquidation: LiquidationRecord,
  direction: 'BUY' | 'SELL',
  deps: SettlementDeps,
  carried: Carried,
): Promise<Outraced> {
  carried.market ??= await deps.markets.get(liquidation.symbol);
  const fillsSeen = carried.market?.lastResortFills?.[direction] ?? 0;
  const now = carried.lastResortFillsSeen !== undefined && fillsSeen > carried.lastResortFillsSeen;
  const before = Math.max(
    carried.lastResortWaitsOutraced ?? 0,
    contextOf(liquidation).lastResortOutraced ?? 0,
  );
  return { fillsSeen, now, count: before + (now ? 1 : 0) };
}

/**
 * The longest a slice waits for the book, counted from its first last-resort order that filled nothing: waits
 * that siblings outraced do not count towards LAST_RESORT_WAITS, so a book that keeps refilling for others could
 * otherwise hold a slice for ever.
 */
export const LAST_RESORT_MAX_WAIT_MS = 24 * 3_600_000;

/** When the liquidation's first last-resort order filled nothing (undefined: none has yet). */
export const lastResortWaitingSince = (liquidation: LiquidationRecord): number | undefined =>
  liquidation.history.find((e) => e.note?.startsWith('last resort ') && e.note.endsWith(' filled nothing'))
    ?.atMs;

/**
 * A last-resort order's fills with the record as stored under its lease (the next commit expects its version),
 * or: the liquidation waits for the book (its message comes back), or another writer moved it first (re-read).
 */
type LastResortOutcome =
  | { readonly fills: readonly Fill[]; readonly record: LiquidationRecord }
  | 'waiting'
  | 'moved';

/**
 * The venue's quote, or none when it fails (counted as a venue failure, and logged with `message`); an answer that is
 * no quote a book can show is refused (checkQuote).
 */
async function quoteOrNone(
  liquidation: LiquidationRecord,
  reference: MarkAt,
  deps: SettlementDeps,
  message: string,
): Promise<{ readonly bid?: PriceE8; readonly ask?: PriceE8 } | undefined> {
  let quote: { readonly bid?: PriceE8; readonly ask?: PriceE8 };
  try {
    quote = await deps.venue.quote(liquidation.symbol, reference);
  } catch (thrown) {
    if (!(thrown instanceof VenueError)) throw thrown;
    const error = knownKind(thrown);
    deps.telemetry.count(METRICS.VenueOrderFailures.name, 1, {
      Reason: error.kind,
      Market: liquidation.symbol,
    });
    deps.telemetry.warn(message, {
      liquidationId: liquidation.id,
      kind: error.kind,
      ...(error === thrown ? {} : { reportedKind: String(thrown.kind) }),
    });
    return undefined;
  }
  checkQuote(liquidation, quote);
  return quote;
}

/**
 * A quote must be a price the book can hold: each side present a positive bigint, the bid not above the ask. Another
 * answer is refused as a fill's is (checkAnswer), failing the delivery for an operator: the bigint operators that read
 * it take a number or a string too, and a side of 0, a negative one or sides swapped would start, hold or spend a
 * liquidation on a price no book shows (venue47-quote-not-bigint).
 */
function checkQuote(liquidation: LiquidationRecord, quote: unknown): void {
  // Typed so that TypeScript narrows on it: a side after its check is a bigint.
  const fault: (why: string) => never = (why) => {
    throw new VenueAnswerError(
      `venue/bad-answer: the quote of ${liquidation.symbol} (liquidation ${liquidation.id}): ${why}`,
    );
  };
  if (typeof quote !== 'object' || quote === null) fault(`an answer that is not a quote (${String(quote)})`);
  const { bid, ask } = quote as { readonly bid?: unknown; readonly ask?: unknown };
  for (const [name, side] of [
    ['bid', bid],
    ['ask', ask],
  ] as const) {
    if (side === undefined) continue;
    const a = name === 'ask' ? 'an' : 'a';
    if (typeof side !== 'bigint') fault(`${a} ${name} that is not a bigint (${typeof side})`);
    if (side <= 0n) fault(`${a} ${name} of ${formatPrice(side)}`);
  }
  if (typeof bid === 'bigint' && typeof ask === 'bigint' && bid > ask)
    fault(`a bid of ${formatPrice(bid)} above the ask of ${formatPrice(ask)}`);
}

/**
 * Whether the venue's best price on the side the order takes reaches `limitPrice` now. A quote that fails says it
 * does not: the liquidation waits for the book again, counted as a venue failure (an audit in session 36 found a
 * quote outage failing the delivery, so every waiting slice was dead-lettered after its receives).
 */
async function bookReaches(
  liquidation: LiquidationRecord,
  direction: 'BUY' | 'SELL',
  limitPrice: PriceE8,
  reference: MarkAt,
  deps: SettlementDeps,
): Promise<boolean> {
  const quote = await quoteOrNone(
    liquidation,
    reference,
    deps,
    'venue quote failed; the last resort waits for the book',
  );
  if (!quote) return false;
  const { bid, ask } = quote;
  return direction === 'SELL'
    ? bid !== undefined && bid >= limitPrice
    : ask !== undefined && ask <= limitPrice;
}

/** The last resort's limit at `mark`: the market's lastResortSlippageBound, rounded toward the mark. */
function lastResortLimit(
  liquidation: LiquidationRecord,
  direction: 'BUY' | 'SELL',
  mark: PriceE8,
  deps: SettlementDeps,
): PriceE8 {
  // The market-only baseline sells at any price, as naive engines do.
  if (deps.strategy === 'market-only') return direction === 'SELL' ? 1n : mark * 1000n;
  const bound = marketConfig(deps.config, liquidation.symbol).lastResortSlippageBound;
  return direction === 'SELL'
    ? div(mark * (PPM_SCALE - bound), PPM_SCALE, 'ceil')
    : div(mark * (PPM_SCALE + bound), PPM_SCALE, 'floor');
}

/**
 * How long a last resort that found nothing within its bound waits before attempt `attempt + 1`: the market's
 * lastResortWaitSeconds, doubled after each attempt, up to SQS's longest delay (a book emptied by a crash
 * refills over minutes, and selling into it as it does only walks the price down).
 */
export const lastResortWaitSeconds = (firstWaitSeconds: number, attempt: number): number =>
  Math.min(900, firstWaitSeconds * 2 ** Math.min(attempt, 10));

/**
 * The waterfall's last resort: no layer could close any of the slice, so a market order within the market's
 * lastResortSlippageBound of the latest mark (its own client order id per attempt: placed once whatever the
 * retries; a new attempt only after one that filled nothing). Its shortfall goes to the fund and ADL, what it
 * leaves to the position's next slice. The market-only baseline sells at any price, as naive engines do.
 */
async function placeLastResort(
  liquidation: LiquidationRecord,
  size: BaseE8,
  limitPrice: PriceE8,
  reference: MarkAt,
  attempt: number,
  deps: SettlementDeps,
  /** The order was recorded pending by an earlier delivery, which may have placed it. */
  placedBefore: boolean,
): Promise<readonly Fill[]> {
  const direction = closeDirection(liquidation.side);
  deps.telemetry.warn('no layer closed any of the slice; last-resort market order', {
    liquidationId: liquidation.id,
    size: size.toString(),
    limitPrice: limitPrice.toString(),
  });
  const clientOrderId = lastResortOrderId(liquidation.id, attempt);
  const fills = await placeWithRetries(deps, placedBefore, {
    clientOrderId,
    symbol: liquidation.symbol,
    direction,
    size,
    limitPrice,
    reference,
  });
  deps.telemetry.count(METRICS.LastResortOrders.name, 1, { Market: liquidation.symbol });
  return keptFills(fills, clientOrderId, deps);
}

/** |fill - mark| / mark in basis points, rounded up. */
export const slippageBps = (fillPrice: PriceE8, mark: PriceE8): bigint =>
  div(absBig(fillPrice - mark) * BPS_SCALE, mark, 'ceil');

// --- MARKET_EXECUTED / SETTLING: ask the waterfall what comes next -----------------------------------------

function contextOf(liquidation: LiquidationRecord): LiquidationContext {
  const context = liquidation.context;
  if (!context) throw new LiquidationStuckError(`liquidation/no-context: ${liquidation.id}`);
  return context;
}

/** A position without the sub-unit a slice left over on its collateral (a close rounded it, or it closed). */
function withoutOver<P extends PositionRecord>(position: P): Omit<P, 'collateralOverE16'> {
  const { collateralOverE16: _, ...rest } = position;
  return rest;
}

/** The slice being liquidated: its planned size, with all of the position's collateral behind it. */
const sliceOf = (position: PositionRecord, context: LiquidationContext) => ({
  side: position.side,
  size: context.plannedSize,
  entryPrice: position.entryPrice,
  collateral: position.collateral,
  ...(position.collateralOverE16 ? { collateralOverE16: position.collateralOverE16 } : {}),
});

/**
 * The position beyond the slice, valued at the mark the slice was planned at, or at `mark` when that is worse for
 * the position: a fee it could not pay there is not charged (accounting.ts settleSlice). A slice the auction or
 * the last resort settles minutes later, the mark having fallen meanwhile, charged a fee on a position bankrupt at
 * its own settlement: the rest owed it back as deficit, paid by the fund or, its cap bound, by ADL's
 * counterparties. `mark` must be stored before any money moves (a frozen plan's, an ended auction's), so every
 * delivery of the plan charges the same fee. Valued at the slice's limit instead, rests kept more collateral and
 * were liquidated later and deeper: the demo's fund ended at 15,918 USD instead of 62,424.
 */
const restOf = (position: PositionRecord, context: LiquidationContext, mark: PriceE8) => {
  const planned = context.executionMark;
  const worse = position.side === 'LONG' ? minBig(planned, mark) : maxBig(planned, mark);
  return { size: position.size - context.plannedSize, mark: worse };
};

/** Before the fund is consulted: a plan that needs no fund state is exactly as valid with this one. */
const NO_FUND: InsuranceState = { balance: 0n, windowStartMs: 0, windowDrawn: 0n };

/** Counterparties one settlement may touch: with the liquidation and its position, one transaction (<= 100). */
export const MAX_ADL_COUNTERPARTIES = 90;
/** Best-ranked counterparties a plan considers before keeping the ones it uses (the ADL queue's length). */
const ADL_CANDIDATES_CONSIDERED = 2000;

type FrozenInputs = NonNullable<LiquidationContext['settle']>;

/**
 * A delivery that acts on what was decided or found longer ago than this acts on now instead: a frozen plan is
 * made again, ADL's confirming round ranks at the mark of now. A delivery freezes and applies in well under a
 * second; one that died in between comes back after its visibility timeout (minutes), when the mark has moved.
 */
export const LATE_DELIVERY_MS = 30_000;

/** A frozen plan from another draw window, or older than LATE_DELIVERY_MS, is made again. */
const frozenPlanIsStale = (frozenAtMs: number, nowMs: number, config: InsuranceConfig): boolean =>
  nowMs - frozenAtMs > LATE_DELIVERY_MS ||
  windowStartFor(nowMs, config) !== windowStartFor(frozenAtMs, config);

export async function decideAndSettle(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  auction: AuctionRecord | undefined,
  carried: Carried = {},
): Promise<Step> {
  const context = contextOf(liquidation);
  const named = context.lastResortWait?.id;
  if (
    carried.lastResortWaitId !== undefined &&
    named !== carried.lastResortWaitId &&
    named !== carried.lastResortWaitAfter
  ) {
    // A copy of a wait message (its delivery came back after it sent the next wait, a duplicate delivery, a wait
    // another replaced): the wait the record names goes on, and this one ends, sending nothing. Before session 43
    // each copy sent a next wait of its own, every look after: chains in parallel (waits43-one-chain). One whose
    // predecessor is still named goes on, as a take-over: its sender has not named it yet, and may never (a write
    // slower than the wait, a death, a lost race); ended, the liquidation was left with no message when that write
    // landed (review43b-wait-before-named). Only one take-over's write lands on a version; the others then end here.
    deps.telemetry.info('a copy of a wait for the book; the one the record names goes on', {
      liquidationId: liquidation.id,
    });
    return { done: true, record: liquidation };
  }
  // Every outcome below commits on this record's version: a lease taken after this read fails that commit.
  if ((await awaitLeaseHolder(liquidation, deps, carried)) === 'moved') return { done: false };
  const live = await loadPosition(liquidation, deps, carried);
  const frozen = context.settle;
  // A reader holding an old liquidation record sees a position that has moved on: never plan from it.
  const expectedVersion = frozen?.position.version ?? context.positionVersion;
  if (live.state !== 'LIQUIDATING' || (expectedVersion !== undefined && live.version !== expectedVersion)) {
    carried.position = undefined;
    return { done: false };
  }
  const position: PositionRecord = frozen ? { ...live, ...frozen.position } : live;
  const market = marketConfig(deps.config, liquidation.symbol);
  const now = deps.clock.nowMs();

  const auctionFills: readonly Fill[] =
    frozen?.auctionFills ??
    auction?.fills.map(({ price, size, cost }) =>
      cost === undefined ? { price, size } : { price, size, cost },
    ) ??
    [];
  // Undefined until the auction layer has run (or is running); market-only has none to run.
  let auctionResult: WaterfallInput['auctionResult'] =
    auction || frozen || deps.strategy === 'market-only'
      ? { fills: auctionFills, finished: auction ? auction.state !== 'RUNNING' || !!frozen : true }
      : undefined;
  const mark = frozen?.mark ?? (await markOf(liquidation, deps, carried, context.executionMark)).mark;
  const decide: Decide = (insurance, candidates, lastResort, restMark) =>
    decideWaterfall({
      liquidationId: liquidation.id,
      position: sliceOf(position, context),
      restOfPosition: restOf(position, context, restMark ?? mark),
      mark,
      market,
      stillLiquidatable: true,
      marketResult: { fills: liquidation.marketFills },
      ...(auctionResult ? { auctionResult } : {}),
      insurance: { account: deps.insuranceAccount, state: insurance, config: deps.config.insurance },
      ...(candidates ? { adlCandidates: candidates } : {}),
      ...(lastResort ? { lastResortResult: { fills: lastResort } } : {}),
      // The baseline has no ADL: a deficit the fund refuses stays bad debt.
      ...(deps.strategy === 'market-only' ? { socializeDeficit: false } : {}),
      nowMs: frozen?.nowMs ?? now,
      ...(frozen?.applied ? { applied: appliedAmounts(frozen.applied, liquidation.id) } : {}),
      ...(frozen?.appliedDrawAtMs !== undefined ? { appliedDrawAtMs: frozen.appliedDrawAtMs } : {}),
    });

  // Reads the fund and ADL's queue, plans on them and freezes the plan (or places the last resort it calls for).
  const planWithTheFund = () =>
    freeze(liquidation, context, position, { mark, nowMs: now, auctionFills }, decide, deps, carried);

  if (!frozen && (context.lastResortAttempt || context.lastResortOrder)) {
    // Waiting for the book: a quote, then this attempt's order when the quote is within the bound, ask it first,
    // and only fills call for a plan (which reads the fund and ADL's queue, spent when the last resort is
    // needed). A new attempt still comes only after an order that filled nothing, so a fill of a concurrent
    // delivery is never skipped.
    if (!(await flushPending(deps, carried))) return { done: false };
    // A position healthy again while it waits is still sold (not cancelled as a queued one would be): measured on
    // the crash replay, cancelling it gave back positions that the next leg down liquidated deeper, at a loss
    // the fund and ADL paid (docs/RELIABILITY.md, last-resort-recovered).
    // The last resort comes after the auction layer: it ended (or never started, nobody being able to bid).
    auctionResult = { fills: auctionFills, finished: true };
    // ADL found nobody when the wait began, at the mark then: one the mark has since moved into profit may take the
    // slice now (a crash puts the other side in profit as it deepens), so plan again, ADL first; the plan waits for
    // the book again if it still finds nobody (an audit in session 37: the slice waited out its budget and was
    // dead-lettered, the position left past its bankruptcy price, while ADL could have closed it).
    if (!context.lastResortOrder && otherSideGainedSince(liquidation.side, mark, carried.adlJudgedAt)) {
      return planWithTheFund();
    }
    const left = context.plannedSize - sumSize(liquidation.marketFills) - sumSize(auctionFills);
    // Whole lots (the decision's lastResortSize). A lot set or raised since the wait began may leave none: no order
    // sells that, ADL alone may take it (planned again, it ends as waterfall/sub-lot-remainder if ADL does not).
    const wholeLots = floorToLot(left, lotSizeOf(market));
    if (wholeLots === 0n && !context.lastResortOrder) return planWithTheFund();
    const placed = await lastResort(liquidation, context, wholeLots, mark, deps, carried);
    if (placed === 'moved') return { done: false };
    if (placed === 'waiting') return { done: true, record: liquidation };
    return freeze(
      placed.record,
      context,
      position,
      { mark, nowMs: now, auctionFills, lastResortFills: placed.fills },
      decide,
      deps,
      carried,
    );
  }

  if (
    frozen &&
    (frozen.superseded || context.lastResortOrder || frozenByOlderVersion(frozen, liquidation.id))
  ) {
    // A plan being made again (refreeze) that wrote before its freeze: a last-resort order it placed and did not
    // record, or a wait for the book. Plan again, placing that order first. (Or a plan an older version froze
    // without what this one needs to apply it: plan again on the ledger as it is.)
    return refreeze(liquidation, context, position, deps, carried);
  }
  if (frozen) {
    const planned = carried.frozenPlan;
    const fresh = planned?.liquidationId === liquidation.id && planned.version === liquidation.version;
    // A plan applied late (its delivery died after the freeze and came back: a redelivery, a redrive, a backlog)
    // is made again on the mark and the fund's window of now: applied as frozen, its draws would open the window
    // it was planned in, one cap per stale window, and ADL would close counterparties at an old mark.
    if (!fresh && frozenPlanIsStale(frozen.nowMs, now, deps.config.insurance)) {
      return refreeze(liquidation, context, position, deps, carried);
    }
    // One an earlier delivery froze is applied only while the market's mark is fresh too, as every decision is
    // (its own mark was fresh when frozen, up to LATE_DELIVERY_MS ago): a read of the market on this path alone.
    if (!fresh) await markOf(liquidation, deps, carried, frozen.mark);
    const decision = fresh
      ? planned.decision
      : decide(frozen.insurance, frozen.candidates, frozen.lastResortFills);
    if (decision.next !== 'settle') {
      throw new LiquidationStuckError(`liquidation/frozen-plan-${decision.next}: ${liquidation.id}`);
    }
    return applySettlement(
      liquidation,
      context,
      position,
      decision,
      deps,
      mark,
      mark,
      carried,
      fresh ? planned.reads : {},
    );
  }

  // A plan that pays nothing from the fund and needs no ADL is the same whatever the fund holds: settle it
  // without reading the fund or freezing. Otherwise read the fund (and the ADL candidates) and freeze. Settled
  // without a freeze, the slice's rest is valued at marks stored before this delivery (the claim's, the ended
  // auction's), not the mark of now: a delivery that applied the fee and died comes back at another mark, and
  // must plan the same fee (the ledger refuses a key applied with another amount).
  const storedRestMark = auction?.endedAtMark ?? context.executionMark;
  let decision = decide(NO_FUND, undefined, undefined, storedRestMark);
  if (decision.next === 'start-auction') {
    const opening = openingAuction(liquidation, context, position, mark, deps);
    // The market before the providers: a first sleep commits on the providers epoch it read (startAuction).
    carried.market ??= await deps.markets.get(liquidation.symbol);
    const plan = planOpening(opening, mark, now, deps.config, await deps.providers.list(liquidation.symbol));
    if (plan.kind !== 'no-bidder') return startAuction(liquidation, context, opening, plan, deps, carried);
    // Its first step would end it unfilled: the fund and ADL take the rest now, not a message later.
    deps.telemetry.count(METRICS.AuctionsSkipped.name, 1, { Market: liquidation.symbol });
    auctionResult = { fills: [], finished: true };
    decision = decide(NO_FUND, undefined, undefined, storedRestMark);
  }
  switch (decision.next) {
    case 'await-auction':
      await ensureAuctionScheduled(liquidation, deps);
      return { done: true, record: liquidation };
    case 'settle':
      if (!(await flushPending(deps, carried))) return { done: false };
      return applySettlement(liquidation, context, position, decision, deps, mark, storedRestMark, carried);
    default:
      return planWithTheFund();
  }
}

/**
 * Whether ADL's counterparties (the other side) gained since `judgedAt`, when it found nobody for the slice: shorts
 * gain as the mark falls, longs as it rises. Not judged (a message from before the field): judge now.
 */
const otherSideGainedSince = (side: Side, mark: PriceE8, judgedAt: PriceE8 | undefined): boolean =>
  judgedAt === undefined || (side === 'LONG' ? mark < judgedAt : mark > judgedAt);

/** `restMark`: what the slice's rest is valued at (restOf; default the plan's mark, which a freeze stores). */
type Decide = (
  insurance: InsuranceState,
  candidates?: readonly AdlCandidate[],
  lastResort?: readonly Fill[],
  restMark?: PriceE8,
) => WaterfallDecision;

/**
 * Reads the fund and the ADL candidates, and stores them with the liquidation (SETTLING) before any movement.
 * When no layer could close any of the slice, the last-resort order is placed here and its fills frozen too.
 */
async function freeze(
  frozenFrom: LiquidationRecord,
  context: LiquidationContext,
  position: PositionRecord,
  base: {
    readonly mark: PriceE8;
    readonly nowMs: number;
    readonly appliedDrawAtMs?: number;
    readonly auctionFills: readonly Fill[];
    readonly lastResortFills?: readonly Fill[];
    readonly applied?: Readonly<Record<string, QuoteE6>>;
    readonly replans?: number;
  },
  decide: Decide,
  deps: SettlementDeps,
  carried: Carried,
  fundRead?: AccountBalance,
): Promise<Step> {
  // The record the SETTLING commit expects: a last-resort order's lease moves it on.
  let liquidation = frozenFrom;
  const fund = fundRead ?? (await deps.ledger.balance(deps.insuranceAccount));
  const insurance = insuranceStateOf(fund);
  let lastResortFills = base.lastResortFills;
  if (context.lastResortOrder && !lastResortFills) {
    // A pending order comes before any plan: its fills are the last resort's, whatever the plan would be now.
    const placed = await lastResortWhileFreezing(
      liquidation,
      context,
      context.lastResortOrder.size,
      base.mark,
      deps,
      carried,
    );
    if ('step' in placed) return placed.step;
    liquidation = placed.record;
    lastResortFills = placed.fills;
  }
  let decision = decide(insurance, undefined, lastResortFills);
  let candidates: (AdlCandidate & { version: number })[] | undefined;
  let counterparties: Map<string, PositionRecord> | undefined;
  let adlExhausted = false;
  const closedSize = sumSize(liquidation.marketFills) + sumSize(base.auctionFills);
  if (
    decision.next === 'load-adl-candidates' &&
    deps.strategy === 'market-only' &&
    closedSize === context.plannedSize
  ) {
    // The baseline has no ADL: a deficit the fund refuses stays bad debt. (ADL still takes size the book could
    // not, or the position would never close.)
    candidates = [];
    decision = decide(insurance, candidates, lastResortFills);
  } else if (decision.next === 'load-adl-candidates') {
    // ADL closes what no layer closed; with nothing left to close it only takes profit out of collateral.
    const closesSize = context.plannedSize - closedSize - sumSize(lastResortFills ?? []) > 0n;
    const queue = await adlQueue(
      liquidation,
      base.mark,
      deps,
      closesSize,
      waterfallPlanner((c) => decide(insurance, c, lastResortFills)),
    );
    decision = queue.decision;
    adlExhausted = queue.spent && queue.complete;
    // Freeze only the counterparties the plan uses (the queue's best, at most what one transaction holds: the
    // size the others would have taken is carried to the next slice). They are a prefix of the rank order, so
    // the plan on them alone is the same plan.
    const used = new Set((decision.adl?.fills ?? []).map((f) => f.id));
    const kept = queue.head.filter((e) => used.has(e.candidate.id));
    candidates = kept.map((e) => e.candidate);
    counterparties = new Map();
    for (const { candidate } of kept) {
      const record = queue.records.get(candidate.id);
      if (record?.version === candidate.version) counterparties.set(candidate.id, record);
    }
    if (kept.length < queue.head.length) {
      decision = decide(
        insurance,
        kept.map((e) => e.ranked),
        lastResortFills,
      );
    }
  }
  if (decision.next === 'execute-last-resort' && candidates && !lastResortFills) {
    // ADL took nothing at this mark: a wait for the book plans again only once the mark moves the other side's way.
    carried.adlJudgedAt = base.mark;
    const size = decision.lastResortSize ?? 0n;
    const placed = await lastResortWhileFreezing(liquidation, context, size, base.mark, deps, carried);
    if ('step' in placed) return placed.step;
    liquidation = placed.record;
    lastResortFills = placed.fills;
    decision = decide(insurance, candidates, lastResortFills);
  }
  if (decision.next === 'escalate') {
    if (decision.reason === 'waterfall/sub-lot-remainder') {
      // The auction's end, written with the plan (an ending step's writes), lands first: thrown without it, the
      // auction stayed RUNNING and its step failed on every receive.
      if (!(await flushPending(deps, carried))) return { done: false };
      throw subLotRemainder(
        liquidation,
        context.plannedSize - closedSize,
        marketConfig(deps.config, liquidation.symbol),
      );
    }
    throw new LiquidationStuckError(`${decision.reason ?? 'waterfall/escalate'}: ${liquidation.id}`);
  }
  if (decision.next !== 'settle') {
    throw new LiquidationStuckError(`liquidation/unexpected-next: ${decision.next} for ${liquidation.id}`);
  }
  const settle: FrozenInputs = {
    insurance,
    nowMs: base.nowMs,
    mark: base.mark,
    position: {
      size: position.size,
      collateral: position.collateral,
      ...(position.collateralOverE16 ? { collateralOverE16: position.collateralOverE16 } : {}),
      entryPrice: position.entryPrice,
      version: position.version,
    },
    auctionFills: base.auctionFills,
    ...(candidates ? { candidates, adlTraderRounding: true } : {}),
    ...(adlExhausted ? { adlExhausted } : {}),
    ...(lastResortFills ? { lastResortFills } : {}),
    ...(base.applied
      ? { applied: base.applied, replans: base.replans ?? 1, insuranceHoldsApplied: true }
      : {}),
    ...(base.appliedDrawAtMs !== undefined ? { appliedDrawAtMs: base.appliedDrawAtMs } : {}),
  };
  const settling: LiquidationRecord = {
    ...withHistory(
      liquidation,
      'SETTLING',
      deps.clock.nowMs(),
      base.applied ? 'inputs refreshed' : undefined,
    ),
    context: { ...outcomeRecorded(context), settle },
  };
  if (
    !(await commitOrSkip(deps, [
      ...(carried.pendingWrites ?? []),
      { kind: 'liquidation', record: settling, expectedVersion: liquidation.version },
    ]))
  ) {
    return { done: false };
  }
  // The next transition settles from these frozen inputs, which give this plan again: it need not be redone.
  carried.pendingWrites = undefined;
  carried.frozenPlan = {
    liquidationId: settling.id,
    version: settling.version,
    decision,
    reads: { ...(counterparties ? { counterparties } : {}), ...(fund ? { fund } : {}) },
  };
  return { done: false, next: settling };
}

/**
 * A slice under its market's lot that no provider or ADL counterparty took: the venue fills whole lots only, so no
 * order sells it. It fails at once (retried, then dead-lettered), where last-resort orders answered with no fills
 * waited about 4 hours for a book that was there (review50-integrate-sub-lot-stuck).
 */
function subLotRemainder(
  liquidation: LiquidationRecord,
  left: BaseE8,
  market: MarketConfig,
): SubLotRemainderError {
  return new SubLotRemainderError(
    `waterfall/sub-lot-remainder: ${liquidation.id}: ${formatBase(left)} ${baseOf(market.symbol)} left, under ${market.symbol}'s lot ${formatBase(lotSizeOf(market))}; no provider or ADL counterparty took it, and the venue fills whole lots only`,
  );
}

/**
 * The last resort's order from freeze: the auction's end is committed first (an order at the venue comes after
 * it). Its fills and the record the freeze commits on, or the step to return: another writer moved the record,
 * or nothing was within the bound (the liquidation waits for the book: its message comes back).
 */
async function lastResortWhileFreezing(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  size: BaseE8,
  mark: PriceE8,
  deps: SettlementDeps,
  carried: Carried,
): Promise<
  { readonly step: Step } | { readonly fills: readonly Fill[]; readonly record: LiquidationRecord }
> {
  if (!(await flushPending(deps, carried))) return { step: { done: false } };
  const placed = await lastResort(liquidation, context, size, mark, deps, carried);
  if (placed === 'moved') return { step: { done: false } };
  if (placed === 'waiting') return { step: { done: true, record: liquidation } };
  return placed;
}

/**
 * Frozen inputs that no longer hold: fresh ones, from what already-applied movements were computed from. The
 * money this settlement's plans moved is read from the ledger, not remembered: a plan may have moved it in an
 * earlier delivery (one that failed, died, or raced this one). The fund is read with it, so the new plan knows
 * both (WaterfallInput.applied) and moves only differences the fund can take (replan-fee-floor).
 */
async function refreeze(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  position: PositionRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<Step> {
  const frozen = context.settle!;
  const market = marketConfig(deps.config, liquidation.symbol);
  // At the mark of now, not the frozen one: a plan made again because its counterparties changed may find
  // nobody left to close the slice there, and a last-resort order bound to a mark the market has left would
  // never fill (the money already applied is read from the ledger, whatever the mark).
  const { mark } = await markOf(liquidation, deps, carried, frozen.mark);
  // Stored before the ledger is read: the old plan's movements are fenced by the old version, so none still in
  // flight (another delivery's) can land after the reads, and the fund read holds every one that landed.
  // Already stored (by a delivery planning again alongside, or one that died): the old plan's fence is spent, and
  // storing it again would fail that delivery's freeze as that one fails this one's, two deliveries in turn
  // until both are dead-lettered.
  const already = frozen.superseded === true && !carried.pendingWrites?.length;
  const superseded: LiquidationRecord = already
    ? liquidation
    : {
        ...withHistory(liquidation, liquidation.state, deps.clock.nowMs(), 'planning again'),
        context: { ...contextOf(liquidation), settle: { ...frozen, superseded: true } },
      };
  if (
    !already &&
    !(await commitOrSkip(deps, [
      ...(carried.pendingWrites ?? []),
      { kind: 'liquidation', record: superseded, expectedVersion: liquidation.version },
    ]))
  ) {
    return { done: false };
  }
  carried.pendingWrites = undefined;
  const [entries, fund] = await Promise.all([
    deps.ledger.entriesOf(deps.insuranceAccount, liquidation.id),
    deps.ledger.balance(deps.insuranceAccount),
  ]);
  const applied = appliedByKey(entries);
  // New draws count in the window of now (a plan's own time would reopen a window gone by); a payout given back
  // returns to the window its draw was made in.
  const now = deps.clock.nowMs();
  const appliedDrawAtMs = firstDrawAtMs(entries, liquidation.id);
  const decide: Decide = (insurance, candidates, lastResort) =>
    decideWaterfall({
      liquidationId: liquidation.id,
      position: sliceOf(position, context),
      restOfPosition: restOf(position, context, mark),
      mark,
      market,
      stillLiquidatable: true,
      marketResult: { fills: liquidation.marketFills },
      auctionResult: { fills: frozen.auctionFills, finished: true },
      insurance: { account: deps.insuranceAccount, state: insurance, config: deps.config.insurance },
      ...(candidates ? { adlCandidates: candidates } : {}),
      ...(lastResort ? { lastResortResult: { fills: lastResort } } : {}),
      // The baseline has no ADL: a deficit the fund refuses stays bad debt.
      ...(deps.strategy === 'market-only' ? { socializeDeficit: false } : {}),
      nowMs: now,
      applied: appliedAmounts(applied, liquidation.id),
      ...(appliedDrawAtMs !== undefined ? { appliedDrawAtMs } : {}),
    });
  const { settle: _stale, ...unfrozen } = context;
  return freeze(
    superseded,
    unfrozen,
    position,
    {
      mark,
      nowMs: now,
      ...(appliedDrawAtMs !== undefined ? { appliedDrawAtMs } : {}),
      auctionFills: frozen.auctionFills,
      // An executed last-resort order stays executed, whatever the fresh plan.
      ...(frozen.lastResortFills ? { lastResortFills: frozen.lastResortFills } : {}),
      // Keys of its own even when nothing moved yet: an older plan's movement, refused by its fence, must not
      // meet a key of this one with another amount (an idempotency conflict instead of a refusal).
      applied,
      replans: (frozen.replans ?? 0) + 1,
    },
    decide,
    deps,
    carried,
    fund,
  );
}

/**
 * A plan an older version froze after money moved: on the fund before what it applied (no
 * `insuranceHoldsApplied`, before session 24), or after a draw without the draw's time (no `appliedDrawAtMs`,
 * before session 27), so a payout it gives back would free the window of its plan, not of its draw. Or one with
 * ADL's counterparties from before adl-trader-rounding: made again here it would credit their rounding (and the
 * trader's), not the amounts the older version may have applied, and, from before adl-close-rounding, count none
 * of their sub-units (review42-adl-older-plan).
 */
function frozenByOlderVersion(
  frozen: NonNullable<LiquidationContext['settle']>,
  liquidationId: string,
): boolean {
  if ((frozen.candidates?.length ?? 0) > 0 && !frozen.adlTraderRounding) return true;
  if (!frozen.applied) return false;
  if (!frozen.insuranceHoldsApplied) return true;
  return frozen.appliedDrawAtMs === undefined && frozen.applied[`${liquidationId}:shortfall`] !== undefined;
}

/**
 * When this liquidation's plans first drew on the fund for its shortfall (a journal entry's time), if ever: a
 * give-back frees room in that window only, where every one of its draws counted or a later one did.
 */
function firstDrawAtMs(
  entries: readonly { readonly idempotencyKey: string; readonly amount: QuoteE6; readonly atMs: number }[],
  liquidationId: string,
): number | undefined {
  let at: number | undefined;
  for (const e of entries) {
    if (e.amount < 0n && planKeyOf(e.idempotencyKey) === `${liquidationId}:shortfall`)
      at = Math.min(at ?? e.atMs, e.atMs);
  }
  return at;
}

/** A record's ranking at the queue's mark (undefined: it cannot be deleveraged there). */
function rankAtMark(
  p: PositionRecord,
  symbol: string,
  mark: PriceE8,
  deleveragedSide: Side,
): QueuedEntry | undefined {
  if (p.state !== 'OPEN' || p.symbol !== symbol) return undefined;
  const ranked = rankCandidate(asAdlCandidate(p), mark, deleveragedSide);
  return ranked ? { ranked, candidate: versionedOf(ranked, p.version) } : undefined;
}

const versionedOf = (c: RankedCandidate, version: number): VersionedCandidate => ({
  id: c.id,
  side: c.side,
  size: c.size,
  entryPrice: c.entryPrice,
  collateral: c.collateral,
  ...(c.adlProfitGiven ? { adlProfitGiven: c.adlProfitGiven } : {}),
  ...(c.collateralUnderE16 ? { collateralUnderE16: c.collateralUnderE16 } : {}),
  version,
});

/**
 * The ADL queue: the opposite side's best-ranked open positions at `mark`, ADL_CANDIDATES_CONSIDERED of them
 * (a full sort of every position is the cost to avoid). Ranked exactly from prefixes of the side's two ADL
 * orders (readAdlTop) once per mark and container (AdlSnapshots, renewed after a short time, as exchanges refresh their ADL queues); each plan
 * re-reads the head of the queue it uses, so the money always moves on the positions as they are, and plans
 * with at most MAX_ADL_COUNTERPARTIES of them. A queue too short to take the size is ranked again, unless
 * it held every position ADL could take.
 */
async function adlQueue<T>(
  liquidation: LiquidationRecord,
  mark: PriceE8,
  deps: SettlementDeps,
  closesSize: boolean,
  planner: AdlPlanner<T>,
  /** Rank the side from its orders as they are now, not from this container's cached queue. */
  uncached = false,
): Promise<{
  readonly head: QueuedEntry[];
  readonly decision: T;
  /** The queue held fewer than MAX_ADL_COUNTERPARTIES that give. */
  readonly spent: boolean;
  /** The queue held every position of the side that could be taken (no one else to rank). */
  readonly complete: boolean;
  /** The records this plan read, by id (the settlement deleverages them without reading them again). */
  readonly records: ReadonlyMap<string, PositionRecord>;
}> {
  const { symbol } = liquidation;
  const side = oppositeSide(liquidation.side);
  const now = deps.clock.nowMs();
  const records = new Map<string, PositionRecord>();
  const read = async (ids: readonly string[]) => {
    const found = await deps.reader.positions(ids);
    for (const p of found) records.set(p.id, p);
    return found;
  };
  // In a queue of haircuts only, a record read again that can no longer give leaves it (not read again).
  const rank = (p: PositionRecord) => {
    const entry = rankAtMark(p, symbol, mark, liquidation.side);
    return entry && (closesSize || givesWithoutClosing(entry.ranked, mark)) ? entry : undefined;
  };
  // A counterparty gives by closing size (the profit it realizes) or out of its collateral (allocateAdl keeps
  // it >= 0): with no size to close, one without collateral gives nothing. Ranked first (no collateral is
  // infinite leverage), such counterparties would fill every place of the plan, and of the queue, and leave the
  // deficit uncovered: with no size to close, neither the queue (readAdlTop) nor the plan takes them.
  const gives = (e: QueuedEntry) => closesSize || givesWithoutClosing(e.ranked, mark);
  const cached = uncached ? undefined : deps.adlSnapshots?.get(symbol, side, mark, now, !closesSize);
  if (cached) {
    const planned = await planOnPrefix(cached, new Set(), read, rank, gives, planner);
    // A queue that held the whole side has no one else to offer: ranking the side again would find the same
    // (a crash with the other side spent asked again for every slice).
    if (planner.stands(planned.decision, planned.spent) || cached.complete)
      return { ...planned, records, complete: cached.complete };
  }
  const top = await readAdlTop(
    deps.positions,
    symbol,
    side,
    mark,
    liquidation.side,
    ADL_CANDIDATES_CONSIDERED,
    !closesSize,
  );
  for (const { candidate: p } of top.entries) records.set(p.id, p);
  const queue = new AdlQueue(
    mark,
    now,
    top.entries.map(({ ranked, candidate: p }) => ({ ranked, candidate: versionedOf(ranked, p.version) })),
    top.complete,
  );
  deps.adlSnapshots?.put(symbol, side, queue, !closesSize);
  // Every record of the queue was read just now.
  return {
    ...(await planOnPrefix(queue, new Set(queue.ids), read, rank, gives, planner)),
    records,
    complete: top.complete,
  };
}

/** How a plan on the ADL queue's head is made and judged (a settlement's waterfall, or an ADL round). */
interface AdlPlanner<T> {
  plan(candidates: readonly AdlCandidate[]): T;
  /** The plan takes all it was asked to: more counterparties would change nothing. */
  takesAll(result: T): boolean;
  /** A plan made on a cached queue stands (else the side is ranked again, unless the queue held all of it). */
  stands(result: T, spent: boolean): boolean;
}

/** The waterfall's plan on ADL candidates: what it closes and covers. */
const waterfallPlanner = (
  plan: (candidates: readonly AdlCandidate[]) => WaterfallDecision,
): AdlPlanner<WaterfallDecision> => ({
  plan,
  takesAll: (d) => d.next === 'settle' && (!d.adl || (d.adl.unmatchedSize === 0n && d.adl.uncovered === 0n)),
  // A spent queue stands only when its plan took everything: else rank the side again (unless it held all).
  stands: (d, spent) =>
    d.next === 'settle' && ((d.carriedSize === 0n && (d.adl?.uncovered ?? 0n) === 0n) || !spent),
});

/**
 * The plan on the queue's best MAX_ADL_COUNTERPARTIES, computed on the fewest of them that give it: ADL takes
 * counterparties in rank order, so once a prefix takes the whole size and covers the whole deficit, the others
 * get nothing (allocateAdl). A settlement usually needs a few, and reads and ranks only those. `spent`: the
 * queue held fewer than MAX_ADL_COUNTERPARTIES.
 */
async function planOnPrefix<T>(
  queue: AdlQueue,
  seen: Set<string>,
  read: (ids: readonly string[]) => Promise<readonly PositionRecord[]>,
  rank: (p: PositionRecord) => QueuedEntry | undefined,
  gives: (entry: QueuedEntry) => boolean,
  planner: AdlPlanner<T>,
): Promise<{ head: QueuedEntry[]; decision: T; spent: boolean }> {
  for (let n = FIRST_PLAN_PREFIX; ; n = Math.min(n * 4, MAX_ADL_COUNTERPARTIES)) {
    const { head, spent } = await headThatGives(queue, n, seen, read, rank, gives);
    // The queue's rankings, made at this mark: the plan reuses their scores.
    const decision = planner.plan(head.map((e) => e.ranked));
    if (planner.takesAll(decision) || spent || n === MAX_ADL_COUNTERPARTIES) return { head, decision, spent };
  }
}

/** The queue's best `n` that can give (in rank order); `spent`: the queue holds fewer. */
async function headThatGives(
  queue: AdlQueue,
  n: number,
  seen: Set<string>,
  read: (ids: readonly string[]) => Promise<readonly PositionRecord[]>,
  rank: (p: PositionRecord) => QueuedEntry | undefined,
  gives: (entry: QueuedEntry) => boolean,
): Promise<{ head: QueuedEntry[]; spent: boolean }> {
  for (let m = n; ; m *= 2) {
    const all = await queue.head(m, seen, read, rank);
    const useful = all.filter(gives);
    if (useful.length >= n) return { head: useful.slice(0, n), spent: false };
    if (all.length < m) return { head: useful, spent: true };
  }
}

/** Counterparties in the first plan: most settlements need one to three. */
const FIRST_PLAN_PREFIX = 4;

const insuranceStateOf = (fund: AccountBalance): InsuranceState => ({
  balance: fund.balance,
  windowStartMs: fund.windowStartMs,
  windowDrawn: fund.windowDrawn,
});

async function applySettlement(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  position: PositionRecord,
  decision: WaterfallDecision,
  deps: SettlementDeps,
  mark: PriceE8,
  /** What the plan valued the slice's rest at (restOf), recorded with the settlement. */
  restMark: PriceE8,
  carried: Carried,
  reads: PlanReads = {},
): Promise<Step> {
  const now = deps.clock.nowMs();
  const terminal = decision.terminal as TerminalState;
  const adlFills = decision.adl?.fills ?? [];
  // The counterparties the plan read at the versions it froze (the commit checks them), or one batch read of
  // them (not one read each: up to 90 per settlement). One that changed since voids the plan before any money
  // moves: plan again on fresh ones.
  const current = new Map(reads.counterparties);
  const unread = adlFills.filter((f) => !current.has(f.id)).map((f) => f.id);
  if (unread.length > 0) for (const p of await deps.reader.positions(unread)) current.set(p.id, p);
  const frozenVersions = new Map((context.settle?.candidates ?? []).map((c) => [c.id, c.version]));
  if (adlFills.some((f) => current.get(f.id)?.version !== frozenVersions.get(f.id))) {
    return refreeze(liquidation, context, position, deps, carried);
  }
  let fundBalance: bigint | undefined;
  // The plan's read of the fund serves its first movement only: each one moves the account on.
  let known = reads.fund;
  const settle = context.settle;
  const movements = settle?.applied
    ? differenceMovements(decision.movements, settle.applied, settle.replans ?? 1, {
        atMs: settle.nowMs,
        config: deps.config.insurance,
        ...(settle.appliedDrawAtMs !== undefined ? { givenBackAtMs: settle.appliedDrawAtMs } : {}),
      })
    : decision.movements;
  // Each movement lands only while the record is the one this plan was made on (see refreeze).
  const fence = { liquidationId: liquidation.id, version: liquidation.version };
  for (const movement of movements) {
    try {
      const applied = await deps.ledger.apply({ ...movement, fence }, known);
      // A key applied by an earlier delivery answers with that application's balance, not the fund's now.
      if (!applied.replayed) fundBalance = applied.balanceAfter;
      known = undefined;
    } catch (error) {
      // Another delivery moved the record on (to plan again, or to settle): nothing of this one is left to do.
      if (error instanceof MovementFencedError) return { done: false };
      // Another settlement drew the fund since these inputs were frozen: the debit was refused whole
      // (nothing applied), so plan again from the fund as it is now and what this settlement applied.
      if (error instanceof ConditionFailedError && movement.amount < 0n && context.settle) {
        deps.telemetry.info('fund changed since the plan; planning again', { liquidationId: liquidation.id });
        return refreeze(liquidation, context, position, deps, carried);
      }
      throw error;
    }
  }
  const writes: Write[] = [];
  // What ADL could not take (decision.carriedSize) stays with the position, as does the collateral left.
  const remainingSize = position.size - context.plannedSize + decision.carriedSize;
  let nextLiquidation: LiquidationRecord | undefined;
  if (remainingSize === 0n) {
    writes.push({
      kind: 'position',
      record: {
        ...withoutOver(position),
        state: 'CLOSED',
        collateral: 0n,
        closedPayout: decision.traderPayout,
        version: position.version + 1,
      },
      expectedVersion: position.version,
    });
  } else {
    // A partial close: what the slice left of the collateral stays with the remainder (isolated margin), and of
    // the profit ADL took from it before only the remainder's share (the closed part's went with its close).
    const { adlProfitGiven: _given, ...kept } = withoutOver(position);
    const given = profitGivenAfter(position, position.size - remainingSize, 0n, mark);
    // The sub-unit the slice's rounding left on the collateral: the rest's final close takes it back.
    const over = decision.settlement?.restCollateralOverE16 ?? 0n;
    const remainder = withLiquidationPrice(
      {
        ...kept,
        ...(given > 0n ? { adlProfitGiven: given } : {}),
        size: remainingSize,
        collateral: decision.traderPayout,
        ...(over > 0n ? { collateralOverE16: over } : {}),
        version: position.version + 1,
      },
      deps.config,
    );
    const market = marketConfig(deps.config, position.symbol);
    // Still endangered, or dust (a carry the layers could not close: the slice was planned whole, and no tick
    // would ever close a remainder healthy at any price): the next slice starts atomically with this settlement.
    if (isLiquidatable(remainder, mark, market.maintenanceMargin) || remainingSize < market.dustSize) {
      // Still endangered: the next slice starts atomically with this settlement.
      const stillLiquidating: PositionRecord = { ...remainder, state: 'LIQUIDATING' };
      nextLiquidation = {
        ...liquidation,
        id: liquidationIdOf(stillLiquidating),
        state: 'QUEUED',
        triggerMark: mark,
        remainingSize: remainingSize,
        marketFills: [],
        history: [{ atMs: now, state: 'QUEUED', note: `${NEXT_SLICE_NOTE} ${liquidation.id}` }],
        version: 0,
      };
      delete (nextLiquidation as { context?: unknown }).context;
      delete (nextLiquidation as { settlement?: unknown }).settlement;
      writes.push({ kind: 'position', record: stillLiquidating, expectedVersion: position.version });
      writes.push({ kind: 'liquidation', record: nextLiquidation, expectedVersion: undefined });
    } else {
      writes.push({
        kind: 'position',
        record: { ...remainder, state: 'OPEN' },
        expectedVersion: position.version,
      });
    }
  }

  const adlMark = context.settle?.mark ?? context.executionMark;
  for (const fill of adlFills) {
    const version = frozenVersions.get(fill.id);
    writes.push({
      kind: 'position',
      ...deleverage(fill, current.get(fill.id), version, adlMark, deps, {
        liquidationId: liquidation.id,
        round: 0,
        atMs: now,
      }),
    });
  }

  // Bounded here too: an older version froze the venue's answer whole.
  const lastResortFills = boundedFills(context.settle?.lastResortFills ?? [], MAX_FILLS_PER_ORDER);
  const settled: LiquidationRecord = {
    ...withHistory(liquidation, terminal, now, decision.acted.join('>')),
    // The last-resort order's fills are market fills (the record's fills re-derive the settlement).
    ...(lastResortFills.length > 0 ? { marketFills: [...liquidation.marketFills, ...lastResortFills] } : {}),
    settlement: settlementRecord(decision),
    context: {
      ...outcomeRecorded(context),
      settledMark: restMark,
      ...(nextLiquidation ? { nextLiquidationId: nextLiquidation.id } : {}),
      ...(roundsFollow(decision, context.settle, deps) ? { adlRound: { round: 0 } } : {}),
    },
  };
  writes.unshift({ kind: 'liquidation', record: settled, expectedVersion: liquidation.version });
  if (!(await commitOrSkip(deps, writes))) {
    const stored = await deps.liquidations.get(liquidation.id);
    if (context.settle?.candidates && stored?.version === liquidation.version) {
      // Nobody moved the liquidation: an ADL counterparty changed. Plan again on fresh counterparties from the
      // same fund state; the money this plan applied is kept, and the next plan applies only the difference.
      return refreeze(liquidation, context, position, deps, carried);
    }
    return { done: false };
  }

  recordSettlementMetrics(liquidation.symbol, decision, fundBalance, deps, !!settled.context?.adlRound);
  if (adlFills.some((f) => f.size > 0n))
    deps.adlSnapshots?.closedOn(liquidation.symbol, oppositeSide(liquidation.side));
  if (nextLiquidation) await sendNextSlice(nextLiquidation.id, settled, deps);
  if (settled.context?.adlRound) return adlRounds(settled, deps);
  return { done: true, record: settled };
}

// --- ADL rounds: a deficit beyond one transaction of counterparties ---------------------------------------

/** Rounds one delivery runs before it hands the rest to a message of its own (bounded work per delivery). */
const ADL_ROUNDS_PER_DELIVERY = 4;
/** Delay of the message that continues the rounds. */
const ROUNDS_CONTINUE_SECONDS = 1;

/**
 * The settlement leaves a deficit ADL did not cover: others may stand behind the counterparties one transaction
 * holds, or behind those that could only close size. A plan that saw the whole side spent is final, unless ADL's
 * orders may lag the writes (a GSI): then a round confirms it a moment later (adl-index-lag). The baseline has no
 * ADL.
 */
const roundsFollow = (
  decision: WaterfallDecision,
  frozen: LiquidationContext['settle'],
  deps: SettlementDeps,
): boolean =>
  deps.strategy !== 'market-only' &&
  (decision.adl?.uncovered ?? 0n) > 0n &&
  (!frozen?.adlExhausted || deps.positions.adlOrdersLagMs > 0);

/**
 * ADL's further rounds on a settled liquidation (context.adlRound): each one takes what is still uncovered
 * (settlement.badDebt) from the next counterparties of the queue at the latest mark, out of profit they still
 * hold, in one transaction with the record (the counterparties' versions and the record's
 * conditional: a delivery that races another, or comes back after a crash, plans the round again). Rounds
 * end when the deficit is covered or the side has no one left to give.
 */
async function adlRounds(liquidation: LiquidationRecord, deps: SettlementDeps): Promise<Step> {
  let current = liquidation;
  for (let i = 0; i < ADL_ROUNDS_PER_DELIVERY; i++) {
    const confirmAtMs = current.context?.adlRound?.confirm?.atMs;
    if (confirmAtMs !== undefined && deps.clock.nowMs() < confirmAtMs) {
      // The round that confirms nobody is left runs once the index shows the last moments' writes.
      const seconds = Math.max(ROUNDS_CONTINUE_SECONDS, Math.ceil((confirmAtMs - deps.clock.nowMs()) / 1000));
      await deps.liquidationQueue.send(
        dueLiquidationMessage({ liquidationId: current.id }, deps.clock.nowMs(), seconds),
        seconds,
      );
      return { done: true, record: current };
    }
    const step = await adlRound(current, deps);
    if (step.done) return step;
    // A round lost to another writer (a counterparty or the record moved): read the record again. Whatever
    // called this (an auction step too) has nothing to resume the rounds with.
    const next = step.next ?? (await deps.liquidations.get(liquidation.id));
    if (!next?.context?.adlRound) return { done: true, record: next ?? current };
    current = next;
  }
  // The rest in a delivery of its own (this one's work stays bounded), a second later: rounds that lost races
  // to other writers of the same counterparties do not spin.
  await deps.liquidationQueue.send(
    dueLiquidationMessage({ liquidationId: current.id }, deps.clock.nowMs(), ROUNDS_CONTINUE_SECONDS),
    ROUNDS_CONTINUE_SECONDS,
  );
  return { done: true, record: current };
}

async function adlRound(liquidation: LiquidationRecord, deps: SettlementDeps): Promise<Step> {
  const context = contextOf(liquidation);
  const settlement = liquidation.settlement;
  if (!settlement) throw new LiquidationStuckError(`adl/round-without-settlement: ${liquidation.id}`);
  // Profit as counterparties hold it now (a round may come long after its settlement: a retry, a redrive).
  const settledAt = context.settle?.mark ?? context.executionMark;
  // A round confirming a finding ranks at the finding's mark: what it may add is only what the index had not shown.
  // One that comes late (a redelivery, a redrive) ranks at the mark of now: profit at an old mark is not profit.
  const confirm = context.adlRound?.confirm;
  const now = deps.clock.nowMs();
  const confirmedAt = confirm && now - confirm.atMs <= LATE_DELIVERY_MS ? confirm.mark : undefined;
  // Either way the round writes counterparties: never while the market's mark is stale (it waits for a tick).
  const latest = requireFreshMark(
    await latestMark(deps.markets, liquidation.symbol, settledAt, now),
    liquidation.symbol,
    deps,
  );
  const mark = confirmedAt ?? latest.mark;
  const deficit = settlement.badDebt;
  const planner: AdlPlanner<AdlAllocation> = {
    plan: (ranked) =>
      allocateAdl({ deficit, bankruptPosition: { side: liquidation.side, size: 0n }, ranked, mark }),
    takesAll: (a) => a.uncovered === 0n,
    stands: (a, spent) => a.uncovered === 0n || !spent,
  };
  // A confirming round reads the orders again: the cached queue is the finding it confirms.
  const queue = await adlQueue(liquidation, mark, deps, false, planner, confirm !== undefined);
  const versions = new Map(queue.head.map((e) => [e.candidate.id, e.candidate.version]));
  // A plan on this container's queue may have moved an entry past the record this plan read: plan again.
  if (queue.decision.fills.some((f) => queue.records.get(f.id)?.version !== versions.get(f.id)))
    return { done: false, next: liquidation };
  const allocation = queue.decision;
  const round = (context.adlRound?.round ?? 0) + 1;
  // Nobody (more) left to give. On orders that may lag the writes, final only when a round a moment later,
  // confirming it at the same mark, finds nobody either (adl-index-lag).
  const spent = allocation.covered === 0n || queue.spent;
  const lagMs = deps.positions.adlOrdersLagMs;
  const last =
    allocation.uncovered === 0n || (lagMs === 0 ? spent : confirm !== undefined && allocation.covered === 0n);
  const { adlRound: _, ...rest } = context;
  // No history event per round: the record stays one terminal event, and its size bounded whatever the rounds.
  const next: LiquidationRecord = {
    ...liquidation,
    settlement: {
      ...settlement,
      adlCovered: settlement.adlCovered + allocation.covered,
      badDebt: allocation.uncovered,
    },
    context: last
      ? { ...rest, adlRounds: round }
      : {
          ...rest,
          adlRound: spent ? { round, confirm: { atMs: deps.clock.nowMs() + lagMs, mark } } : { round },
        },
    version: liquidation.version + 1,
  };
  const writes: Write[] = [{ kind: 'liquidation', record: next, expectedVersion: liquidation.version }];
  for (const fill of allocation.fills) {
    const record = queue.records.get(fill.id);
    writes.push({
      kind: 'position',
      ...deleverage(fill, record, versions.get(fill.id), mark, deps, {
        liquidationId: liquidation.id,
        round,
        atMs: now,
      }),
    });
  }
  if (!(await commitOrSkip(deps, writes))) return { done: false };
  const market = { Market: liquidation.symbol };
  if (allocation.fills.length > 0)
    deps.telemetry.count(METRICS.AdlEvents.name, allocation.fills.length, market);
  if (!last) return { done: false, next };
  if (allocation.uncovered > 0n)
    deps.telemetry.observe(METRICS.BadDebt.name, Number(formatQuote(allocation.uncovered)), market);
  return { done: true, record: next };
}

/**
 * An ADL counterparty closes `size` at the mark and gives up `pnlGiven` of its profit to cover the deficit. The same
 * write records on it which liquidation (and round) did it: no write of its own, and a round that is retried
 * commits it once (the write is conditional on the version planned on).
 */
function deleverage(
  fill: AdlFill,
  current: PositionRecord | undefined,
  planVersion: number | undefined,
  mark: PriceE8,
  deps: SettlementDeps,
  by: { readonly liquidationId: string; readonly round: number; readonly atMs: number },
): { record: PositionRecord; expectedVersion: number } {
  if (planVersion === undefined || !current)
    throw new LiquidationStuckError(`adl/counterparty-missing: ${fill.id}`);
  // The write is made from the record the plan read: any other would undo what another writer did to it.
  if (current.version !== planVersion)
    throw new LiquidationStuckError(
      `adl/counterparty-version: ${fill.id} v${current.version}, plan v${planVersion}`,
    );
  // Applied against the version the plan was made on: a counterparty that changed since makes the commit fail.
  const after = deleverageCounterparty(current, fill, mark);
  const { size, collateral, adlProfitGiven: given } = after;
  // A close rounds the exact margin once: what it leaves holds no sub-unit over. A haircut alone keeps it.
  const { adlProfitGiven: _, ...rest } = after.keepsOver ? current : withoutOver(current);
  const base = {
    ...rest,
    size,
    collateral,
    ...(given > 0n ? { adlProfitGiven: given } : {}),
    ...recordAdlEvent(current, {
      liquidationId: by.liquidationId,
      round: by.round,
      size: fill.size,
      price: fill.price,
      mark,
      given: fill.pnlGiven,
      haircut: fill.haircut,
      atMs: by.atMs,
    }),
    version: planVersion + 1,
  };
  const record =
    size === 0n
      ? { ...base, state: 'CLOSED' as const, collateral: 0n, closedPayout: collateral }
      : withLiquidationPrice({ ...base, state: 'OPEN' }, deps.config);
  return { record, expectedVersion: planVersion };
}

/** A settled record's ADL and bad debt, for their alarms (AdlEvents counts one event for the settlement). */
function reportSettledLoss(liquidation: LiquidationRecord, deps: SettlementDeps): void {
  const s = liquidation.settlement;
  if (!s) return;
  const market = { Market: liquidation.symbol };
  if (s.adlClosedSize > 0n || s.adlCovered > 0n) deps.telemetry.count(METRICS.AdlEvents.name, 1, market);
  if (s.badDebt > 0n) deps.telemetry.observe(METRICS.BadDebt.name, Number(formatQuote(s.badDebt)), market);
}

function recordSettlementMetrics(
  symbol: string,
  decision: WaterfallDecision,
  fundBalance: bigint | undefined,
  deps: SettlementDeps,
  /** ADL runs more rounds: the bad debt is known when they end (adlRound). */
  roundsFollow: boolean,
): void {
  const { telemetry } = deps;
  const market = { Market: symbol };
  for (const layer of decision.acted)
    telemetry.count(METRICS.LiquidationsSettled.name, 1, { Layer: layer, Market: symbol });
  // Counted once committed: a commit that fails (planned again, or lost to a duplicate) deleveraged nobody.
  const deleveraged = decision.adl?.fills.length ?? 0;
  if (deleveraged > 0) telemetry.count(METRICS.AdlEvents.name, deleveraged, market);
  const { insurance, adl } = decision.layers;
  if (insurance.shortfallPaid > 0n) {
    telemetry.count(METRICS.InsuranceFundDraws.name, 1, market);
  }
  // A fund at its floor or its window's cap pages for itself, before ADL's or bad debt's alarms say why.
  if (insurance.refused > 0n && insurance.refusal) {
    telemetry.count(METRICS.InsuranceFundRefusals.name, 1, { Reason: insurance.refusal, Market: symbol });
  }
  if (adl.uncovered > 0n && !roundsFollow) {
    telemetry.observe(METRICS.BadDebt.name, Number(formatQuote(adl.uncovered)), market);
  }
  // The fund is shared by every market: its balance is one gauge.
  if (fundBalance !== undefined) {
    telemetry.observe(METRICS.InsuranceFundBalance.name, Number(formatQuote(fundBalance)));
  }
}

// --- Auction hand-over ---------------------------------------------------------------------------------------

export const auctionIdOf = (liquidationId: string): string => `${liquidationId}:auction`;

/** The auction of what the market left, as it opens. */
function openingAuction(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  position: PositionRecord,
  mark: PriceE8,
  deps: SettlementDeps,
): AuctionRecord {
  const direction = closeDirection(position.side);
  const lot = context.plannedSize - sumSize(liquidation.marketFills);
  return {
    id: auctionIdOf(liquidation.id),
    liquidationId: liquidation.id,
    symbol: liquidation.symbol,
    direction,
    lot,
    remainingLot: lot,
    top: startPrice(mark, direction, deps.config.auction.buf),
    startedAtMs: deps.clock.nowMs(),
    resets: 0,
    step: 0,
    state: 'RUNNING',
    fills: [],
    version: 0,
  };
}

/**
 * Starts the auction of what the market left. Its first step is planned here (planOpening): a new auction
 * opens beyond the mark, where no bid stands, so the step message goes out for the step its best bid makes
 * due and the auction sleeps until then, woken sooner by a tick that reaches its wake mark.
 */
async function startAuction(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  opening: AuctionRecord,
  plan: Exclude<AuctionOpening, { kind: 'no-bidder' }>,
  deps: SettlementDeps,
  carried: Carried,
): Promise<Step> {
  const { market } = carried;
  const sleep = plan.kind === 'sleep' ? plan.sleep : undefined;
  const auction: AuctionRecord = {
    ...opening,
    ...(sleep?.wakeMark === undefined ? {} : { wakeMark: sleep.wakeMark }),
    stepDueAtMs: dueIn(sleep?.delaySeconds ?? 0, deps),
  };
  const inAuction: LiquidationRecord = {
    ...withHistory(liquidation, 'AUCTION', opening.startedAtMs, `lot ${opening.lot}`),
    remainingSize: opening.lot,
    context: { ...outcomeRecorded(context), auctionId: auction.id },
  };
  // A first sleep, planned on the providers listed, checks none changed since.
  const committed = await commitOrSkip(
    deps,
    [
      { kind: 'liquidation', record: inAuction, expectedVersion: liquidation.version },
      { kind: 'auction', record: auction, expectedVersion: undefined },
    ],
    sleep ? providersUnchangedSince(liquidation.symbol, market) : undefined,
  );
  if (!committed) {
    carried.market = undefined; // read again: its providers epoch may be what moved
    return { done: false };
  }
  // Lost with a crash here, the message is sent again by the redelivered liquidation (its AUCTION case).
  await sendStep(auction, sleep?.delaySeconds ?? 0, deps);
  await coverWake(auction, market, deps);
  return { done: true, record: inAuction };
}

async function ensureAuctionScheduled(liquidation: LiquidationRecord, deps: SettlementDeps): Promise<void> {
  const auction = await deps.auctions.get(auctionIdOf(liquidation.id));
  if (auction?.state === 'RUNNING') {
    await sendStep(auction, 0, deps);
  }
}

/**
 * The messages a terminal slice leaves, re-sent by a redelivery: the next slice's, while it is QUEUED, and its
 * own while ADL owes it rounds (a delivery that ran them died or lost a race; `roundsHere`: the caller runs them).
 */
export async function sendFollowUps(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  { roundsHere = false }: { readonly roundsHere?: boolean } = {},
): Promise<void> {
  if (!isTerminal(liquidation.state)) return;
  const next = liquidation.context?.nextLiquidationId;
  if (next && (await deps.liquidations.get(next))?.state === 'QUEUED')
    await sendNextSlice(next, liquidation, deps);
  if (liquidation.context?.adlRound && !roundsHere)
    await deps.liquidationQueue.sendBatch([
      dueLiquidationMessage({ liquidationId: liquidation.id }, deps.clock.nowMs()),
    ]);
}

/** The next slice's message: at once, or after the market's cooldown when this slice spent the liquidity. */
async function sendNextSlice(
  nextId: string,
  settled: LiquidationRecord,
  deps: SettlementDeps,
): Promise<void> {
  const cooldown = marketConfig(deps.config, settled.symbol).lastResortCooldownSeconds;
  const delaySeconds = nextSliceDelaySeconds(settled.settlement, cooldown);
  const body = dueLiquidationMessage({ liquidationId: nextId }, deps.clock.nowMs(), delaySeconds);
  if (delaySeconds === 0) await deps.liquidationQueue.sendBatch([body]);
  else await deps.liquidationQueue.send(body, delaySeconds);
}

/** Commits the ending auction step's writes alone (false: a concurrent step committed first). */
async function flushPending(deps: SettlementDeps, carried: Carried): Promise<boolean> {
  if (!carried.pendingWrites) return true;
  if (!(await commitOrSkip(deps, carried.pendingWrites))) return false;
  carried.pendingWrites = undefined;
  return true;
}

/**
 * Commits the writes; a failed condition means a concurrent or earlier attempt moved the records first,
 * which the caller's loop then observes by re-reading (never an effect applied twice). 'quiet': a caller that
 * does not re-read logs what it does instead.
 */
async function commitOrSkip(
  deps: SettlementDeps,
  writes: readonly Write[],
  providersUnchanged?: ProvidersEpochCheck,
  lost: 'log' | 'quiet' = 'log',
): Promise<boolean> {
  try {
    await deps.transactor.commit(writes, providersUnchanged);
    return true;
  } catch (error) {
    if (!(error instanceof ConditionFailedError)) throw error;
    if (lost === 'quiet') return false;
    deps.telemetry.info('concurrent transition observed; re-reading', {
      records: writes.map((w) => `${w.kind}:${w.record.id}`),
    });
    return false;
  }
}

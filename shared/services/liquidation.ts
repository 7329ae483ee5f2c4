/**
 * The liquidation consumer's entry: the delivery loop (processLiquidation), which moves a liquidation one conditional
 * transition at a time through the steps in ./liquidation/. Re-exports what the other services, the CLI and the tests
 * import from here.
 */

import { fnv1a } from '../domain/hash.ts';
import { METRICS } from '../metrics.ts';
import type { LiquidationMessage, LiquidationRecord } from '../ports/index.ts';
import { dueLiquidationMessage } from '../schemas/messages.ts';
import {
  MarkStaleError,
  markOfMarket,
  messageMarket,
  type SettlementDeps,
  STALE_MARK_WAIT_SECONDS,
  waitForFreshMark,
} from './context.ts';
import { adlRounds } from './liquidation/adl-rounds.ts';
import { auctionIdOf } from './liquidation/auction-start.ts';
import { claim, MarkDisputedError } from './liquidation/claim.ts';
import { LiquidationNotFoundError, LiquidationStuckError } from './liquidation/errors.ts';
import { sendFollowUps } from './liquidation/follow-ups.ts';
import { releasingLease } from './liquidation/lease.ts';
import { executeMarket } from './liquidation/market-order.ts';
import { decideAndSettle } from './liquidation/settlement.ts';
import { reportSettledLoss } from './liquidation/settlement-metrics.ts';
import type { Carried, Step } from './liquidation/step.ts';
import { sendStep } from './sleeping.ts';

/** A delivery spent MAX_TRANSITIONS on conflicts: the liquidation comes back after a delay (processLiquidation). */
class LiquidationContendedError extends Error {
  constructor(liquidationId: string) {
    super(`liquidation/contended: ${liquidationId}`);
    this.name = 'LiquidationContendedError';
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

// What the other services, the CLI and the tests import from this module, defined in its steps.
export { MAX_ADL_COUNTERPARTIES } from './liquidation/adl-queue.ts';
export { auctionIdOf } from './liquidation/auction-start.ts';
export { MARK_DISPUTE_WAIT_SECONDS, MarkDisputedError } from './liquidation/claim.ts';
export {
  LiquidationBusyError,
  LiquidationNotFoundError,
  LiquidationStuckError,
  SubLotRemainderError,
} from './liquidation/errors.ts';
export { sendFollowUps } from './liquidation/follow-ups.ts';
export {
  isLastResortOrderId,
  LAST_RESORT_MAX_WAIT_MS,
  LAST_RESORT_WAITS,
  lastResortOrderId,
  lastResortWaitingSince,
  lastResortWaitSeconds,
} from './liquidation/last-resort.ts';
export { releasingLease } from './liquidation/lease.ts';
export { slippageBps } from './liquidation/market-order.ts';
export { decideAndSettle } from './liquidation/settlement.ts';
export { type Carried, LATE_DELIVERY_MS } from './liquidation/step.ts';
export { MAX_FILLS_PER_ORDER, VenueAnswerError } from './liquidation/venue.ts';

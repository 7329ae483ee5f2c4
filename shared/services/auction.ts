import {
  type AuctionStatus,
  auctionStatus,
  MAX_STEP_DELAY_SECONDS,
  resetAuction,
  sellTab,
} from '../domain/auction.ts';
import { clearAuctionStep } from '../domain/clearing.ts';
import { lotSizeOf, marketConfig } from '../domain/config.ts';
import { isTerminal } from '../domain/model.ts';
import { fillEdge, recordProviderFill } from '../domain/provider-fills.ts';
import { type AuctionSleep, planSleep } from '../domain/sleep.ts';
import type { BaseE8, Ppm, PriceE8 } from '../domain/units.ts';
import { MARKET_DIMENSION, METRICS } from '../metrics.ts';
import {
  type AuctionFill,
  type AuctionQueueMessage,
  type AuctionRecord,
  type AuctionStepMessage,
  ConditionFailedError,
  isRegistrationWakeMessage,
  type LiquidationRecord,
  type MarketState,
  type ProviderRecord,
  type ProvidersEpochCheck,
  providersEpochOf,
  type Write,
} from '../ports/index.ts';
import { dueLiquidationMessage, encodeMessage } from '../schemas/messages.ts';
import {
  MarkStaleError,
  markOfMarket,
  messageMarket,
  requireFreshMark,
  type SettlementDeps,
  STALE_MARK_WAIT_SECONDS,
  waitForFreshMark,
} from './context.ts';
import {
  type Carried,
  decideAndSettle,
  LiquidationNotFoundError,
  LiquidationStuckError,
  releasingLease,
  SubLotRemainderError,
  sendFollowUps,
} from './liquidation.ts';
import { resendTakenLate } from './liquidation-watch.ts';
import { continueRegistrationWake, type RegistrationWakeOutcome } from './registration-wake.ts';
import {
  anyPriceBound,
  bestBid,
  biddersOf,
  coverWake,
  dueIn,
  isWakeContinuation,
  owing,
  providersUnchangedSince,
  SpentWakeOwedError,
  sendStep,
  spentMarkets,
  wakeCovered,
  wakeSpent,
} from './sleeping.ts';
import { countingOncePer, holdingCounts } from './telemetry-counts.ts';

export class AuctionNotFoundError extends Error {
  override readonly name = 'AuctionNotFoundError';
}

export type AuctionStepOutcome =
  | { readonly status: 'stale' }
  /** The market's mark was too old to step on: the same step comes back after delaySeconds. */
  | { readonly status: 'waiting'; readonly delaySeconds: number }
  /** It came before its step's commit (the auction a step behind): the same message comes back after delaySeconds. */
  | { readonly status: 'early'; readonly delaySeconds: number }
  | { readonly status: 'reset' | 'stepped'; readonly nextStep: number; readonly delaySeconds: number }
  | { readonly status: 'finished'; readonly liquidationState: LiquidationRecord['state'] };

/**
 * A message of the auction queue: an auction's step (processAuctionStep), or the rest of a registration's wake
 * (registration-wake.ts), which needs no auction of its own.
 */
export async function processAuctionMessage(
  message: AuctionQueueMessage,
  deps: SettlementDeps,
): Promise<AuctionStepOutcome | RegistrationWakeOutcome> {
  if (!isRegistrationWakeMessage(message)) return processAuctionStep(message, deps);
  return continueRegistrationWake(message.registrationWake, { ...deps, nowMs: () => deps.clock.nowMs() });
}

/**
 * Advances one Dutch auction by one step (the step messages are its clock): reset it when it is past tail or
 * cusp (at most maxResets times), otherwise clear the current price against the providers' standing bids. An
 * auction that no provider can take any more (no capital or lot room left) ends at once, EXHAUSTED.
 * The auction record and the providers' capital change in one transaction, conditional on their versions, so a
 * duplicate or concurrent step message changes nothing twice. A finished auction (cleared, or exhausted at tail)
 * hands the liquidation back to the waterfall, which settles the rest with the insurance fund and ADL.
 */
export async function processAuctionStep(
  message: AuctionStepMessage,
  settlementDeps: SettlementDeps,
): Promise<AuctionStepOutcome> {
  // A capped run tries the one wake it owes again at each of its steps (up to 20 in one delivery), and counted its
  // failure each time (capped44-count-once).
  const deps = {
    ...settlementDeps,
    telemetry: countingOncePer(settlementDeps.telemetry, METRICS.AuctionWakeFailures.name, MARKET_DIMENSION),
  };
  const taking = reportLateness(message, deps);
  let current = message;
  // A capped step's continuation: the instant it is priced at, and this delivery's message (undefined: the first step).
  let within: RunStep | undefined;
  // What a capped step's wake failed with: the run's later steps carry the debt and try it again.
  let owed: unknown;
  // The run's last capped step (undefined: none yet).
  let capped: Capped | undefined;
  for (let run = 1; ; run++) {
    let outcome: StepResult;
    try {
      outcome = await stepWithRetries(current, deps, within, run === 1 ? taking : undefined);
    } catch (error) {
      if (!(error instanceof MarkStaleError)) throw error;
      // A later step of the run, its own message sent before the capped step's commit and due a second later: that
      // message finds its step and waits for the fresh mark itself (sent back here too, two messages waited, each
      // every 30 s: capped43-stale-run-twin-wait). One that came first waits for the commit (early43); after a commit
      // slower than its waits, which it may have outwaited, the capped step sent the step again (resendAfterSlowCommit).
      if (capped) {
        // Its wake still owed, the delivery fails: SQS's retry pays it.
        if (owed !== undefined) throw owed;
        return publicOutcome(capped);
      }
      // Nothing of this step was committed: the same step comes back, still due when it was (the auction's curve
      // waits out the outage: onTimeCurve moves it on by the lateness), and back when the wait ends. No longer
      // `resent`: this delivery counted it, taking the step before it read the mark, and each look back counted it
      // again (final44-resent-stale-once).
      const { resent: _counted, ...again } = current;
      const back = { ...again, backAtMs: deps.clock.nowMs() + STALE_MARK_WAIT_SECONDS * 1000 };
      await waitForFreshMark(error, deps.auctionQueue, encodeMessage(back), deps, {
        auctionId: current.auctionId,
        step: current.step,
      });
      return { status: 'waiting', delaySeconds: STALE_MARK_WAIT_SECONDS };
    }
    // Any other step that ends the run paid the debt its record carried or failed itself (or lost the step to a
    // delivery that carries it).
    if (!isCapped(outcome)) return outcome;
    capped = outcome;
    owed = outcome.owed;
    // A step the fills cap stopped goes on here, priced at the same instant (a second later, the tail or the cusp
    // could reset the auction under bids that stand); its message, a second away, covers a death meanwhile.
    if (run >= MAX_CAPPED_RUNS) {
      // Its wake still owed, the delivery fails after the run: SQS's retry pays it (SpentWakeOwedError).
      if (owed !== undefined) throw owed;
      return publicOutcome(outcome);
    }
    current = { auctionId: current.auctionId, step: outcome.nextStep, ...symbolOf(current) };
    within = { atMs: outcome.cappedAtMs, from: message.step };
  }
}

/**
 * How late a delivery's step ran (a backed-up or stalled consumer, a redrive: alarmed), reported once, by the
 * delivery that takes its step, as it received it. One that finds its step taken ran none late: a twin, or the retry
 * of a delivery that failed on the wake its step owed (5, 30, 120 s on the queue's backoff), which paged as a consumer
 * behind on top of RecordFailures (review42-debt-retry-lateness). One that came before its step's commit and waits
 * for it reports at the delivery that takes the step, counting how late each of its deliveries came, not its waits
 * (waitForCommit; its first delivery's lateness went unreported: early44-lateness). An ended auction's delivery that
 * finds the settlement its ending step left unfinished (that delivery died or failed) runs that step's rest: it
 * reports its lateness too, which none did, however late the settlement, a redrive's hours
 * (lateness43-ended-settlement).
 * `took`: the running auction whose step the delivery takes (absent: it finishes an ended auction's settlement).
 */
function reportLateness(
  message: AuctionStepMessage,
  deps: SettlementDeps,
): ((took?: AuctionRecord) => void) | undefined {
  if ((message.backAtMs ?? message.dueAtMs) === undefined) return undefined;
  const nowMs = deps.clock.nowMs();
  const lateMs = lateMsOf(message, nowMs);
  let reported = false;
  return (took) => {
    if (reported) return;
    reported = true;
    const market = messageMarket(message.symbol, deps.config);
    deps.telemetry.observe(METRICS.AuctionStepLateness.name, lateMs / 1000, market);
    // liquidation-watch's resend took the step: its own message was lost (a twin of a live one finds it taken). Not
    // one finishing an ended auction's settlement: the delivery that took its step counted it (watch44-resent-count).
    if (!message.resent || took === undefined) return;
    const fields = {
      auctionId: message.auctionId,
      step: message.step,
      lateSeconds: Math.floor(lateMs / 1000),
    };
    if (resendTakenLate(took, message.step, nowMs)) {
      // A consumer behind (its lateness pages): the step's own message may have been alive behind the resend.
      deps.telemetry.info(
        'auction step stalled: the message sent again took it late, maybe ahead of its own',
        fields,
      );
      return;
    }
    deps.telemetry.count(METRICS.AuctionStepsResent.name, 1, market);
    deps.telemetry.warn('auction step stalled: the message sent again took it', fields);
  };
}

/** How late a delivery at `nowMs` came: since its message was due, or back from a wait (0: none, or unknown). */
const lateMsOf = (message: AuctionStepMessage, nowMs: number): number => {
  const dueAtMs = message.backAtMs ?? message.dueAtMs;
  return dueAtMs === undefined ? 0 : Math.max(0, nowMs - dueAtMs);
};

/** Capped steps one delivery runs on (1,000 providers at one price take 12). */
const MAX_CAPPED_RUNS = 20;

/**
 * A later step of a capped run: priced at `atMs`, the capped step's instant, and taken by the delivery of the message
 * of step `from`, which owns a wake the run owes (AuctionRecord.runFrom).
 */
interface RunStep {
  readonly atMs: number;
  readonly from: number;
}

/** A step the fills cap stopped, the instant it was priced at, and what its wake failed with (still owed). */
interface Capped {
  readonly status: 'stepped';
  readonly nextStep: number;
  readonly delaySeconds: number;
  readonly cappedAtMs: number;
  readonly owed?: unknown;
}
type StepResult = AuctionStepOutcome | Capped;

const isCapped = (outcome: StepResult): outcome is Capped => 'cappedAtMs' in outcome;

const publicOutcome = (outcome: StepResult): AuctionStepOutcome => {
  if (!isCapped(outcome)) return outcome;
  const { cappedAtMs: _, owed: __, ...rest } = outcome;
  return rest;
};

const symbolOf = (message: AuctionStepMessage) => (message.symbol ? { symbol: message.symbol } : {});

/**
 * `taking`: called when the delivery takes its step (the auction running at it), before it is priced, or finds its
 * ended auction's settlement unfinished (settleFinished).
 */
async function stepWithRetries(
  message: AuctionStepMessage,
  deps: SettlementDeps,
  within: RunStep | undefined,
  taking?: (took?: AuctionRecord) => void,
): Promise<StepResult> {
  // A failed commit is either a duplicate of this step that won (stale: done) or a provider that another
  // auction changed meanwhile (the step must still happen: run it again on fresh records).
  for (let attempt = 1; attempt <= MAX_STEP_ATTEMPTS; attempt++) {
    if (attempt > 1) await deps.backoff?.(attempt);
    const outcome = await stepOnce(message, deps, within, taking);
    if (outcome !== CONFLICT) return outcome;
    const auction = await deps.auctions.get(message.auctionId);
    if (!auction) return { status: 'stale' };
    // Ended meanwhile (by a twin, or a capped step's continuation in another delivery): the next attempt finishes
    // it if this message counts as its ender (the one that can still finish its settlement), else is stale.
    if (auction.state === 'RUNNING' && auction.step !== message.step) return { status: 'stale' };
  }
  // Still contended: SQS redelivers the step message and it runs again then.
  throw new AuctionContentionError(`auction/contended: ${message.auctionId} step ${message.step}`);
}

/**
 * Most providers one step fills: each is a write in the step's transaction, which (with the auction's, and the
 * liquidation's when the step ends it) must stay within MAX_WRITES_PER_COMMIT. A lot that more providers would
 * take at this price goes on in the next step, run at once by the same delivery at the same instant; that step's
 * message, a second later (CAPPED_STEP_DELAY_SECONDS), covers a death of the delivery meanwhile.
 */
export const MAX_FILLS_PER_STEP = 90;
/**
 * Most fills one auction takes: they are kept on its item and frozen into its liquidation's, and DynamoDB refuses
 * an item over 400 KB (about 150 bytes a fill). What is left of the lot then goes to the waterfall's next layers.
 */
export const MAX_FILLS_PER_AUCTION = 1_000;
const CAPPED_STEP_DELAY_SECONDS = 1;

/**
 * A step's next-step message is sent before the step's commit (a death between them must not lose the step) and is
 * due after the step's delay, 1 s at least; the commit can take longer (the SDK's 3 attempts, each up to its 5 s
 * request timeout: adapters/aws/clients.ts; DynamoDB retrying a conflicted or throttled transaction of 90 providers).
 * Such a message finds its auction a step behind: it is sent back to look again EARLY_STEP_WAIT_SECONDS later, at most
 * MAX_EARLY_STEP_WAITS times (early43; taken for a stale twin, it ended, and once the commit landed the auction had no
 * message for its step). Past them the commit never landed: the delivery that planned it died or gave up before it,
 * and SQS redelivers that delivery's message, which plans the step again and sends a message of its own. Or it landed
 * later still (the transactor's 5 attempts of a cancelled transaction, each the SDK's 3): that delivery sends the step
 * again (resendAfterSlowCommit).
 */
export const EARLY_STEP_WAIT_SECONDS = 5;
export const MAX_EARLY_STEP_WAITS = 3;

/** How long after its send a step's message still looks for its step: its delay and its waits. */
const earlyWindowMs = (delaySeconds: number): number =>
  (delaySeconds + MAX_EARLY_STEP_WAITS * EARLY_STEP_WAIT_SECONDS) * 1000;

/** Attempts in one delivery: a step still contended after them waits for SQS's redelivery (the visibility timeout). */
const MAX_STEP_ATTEMPTS = 8;
const CONFLICT = Symbol('conflict');

export class AuctionContentionError extends Error {
  override readonly name = 'AuctionContentionError';
}

async function stepOnce(
  message: AuctionStepMessage,
  deps: SettlementDeps,
  within: RunStep | undefined,
  taking: ((took?: AuctionRecord) => void) | undefined,
): Promise<StepResult | typeof CONFLICT> {
  // Messages name the market (those of earlier versions do not): one read for the auction and its market.
  const read = message.symbol
    ? await deps.reader.auctionAndMarket(message.auctionId, message.symbol)
    : { auction: await deps.auctions.get(message.auctionId), market: undefined };
  const stored = read.auction;
  if (!stored) throw new AuctionNotFoundError(`auction/not-found: ${message.auctionId}`);
  const now = within?.atMs ?? deps.clock.nowMs();
  const auction = onTimeCurve(stored, message, now);
  const marketRead = read.market?.symbol === auction.symbol ? read.market : undefined;
  if (auction.state !== 'RUNNING') {
    // The message that ended it (step auction.step - 1) finishes the settlement, or its redelivery does. An
    // older message, or the twin of that step (a tick's wake and the planned message share a step), has
    // nothing to finish.
    const twin = auction.endedBy !== undefined && auction.endedBy !== enderOf(message);
    // A wake the ending step owes, its delivery dead or failed after the commit: whoever finds it pays it. Still
    // owed, the delivery that owns it fails after the settlement's part (no later step of an ended auction would pay
    // it); a wake that throws holds the settlement no more than one that fails (review41-ended-wake-first).
    const owed = await stillOwed(auction, message, deps, within);
    const outcome =
      message.step < auction.step - 1 || twin
        ? { status: 'stale' as const }
        : await finish(auction, deps, marketRead, undefined, taking);
    if (owed !== undefined) throw owed;
    return outcome;
  }
  if (message.step === auction.step + 1) return waitForCommit(message, deps);
  if (message.step !== auction.step) {
    // The redelivery of a step whose delivery died between its commit and its cover finds the sleeper uncovered
    // (as may a stale twin): cover it now, or no tick would wake it before its planned step. Covered, no write.
    if (marketRead && !wakeCovered(auction, marketRead)) await coverWake(auction, marketRead, deps);
    // So with a wake it owes (this delivery may be the retry of the step that could not pay it).
    const owed = await stillOwed(auction, message, deps, within);
    if (owed !== undefined) throw owed;
    return { status: 'stale' };
  }
  taking?.(auction);

  const config = deps.config.auction;
  const marketState = marketRead ?? (await deps.markets.get(auction.symbol));
  const { mark } = requireFreshMark(markOfMarket(marketState, auction.top, now), auction.symbol, deps);
  const status = auctionStatus(auction, mark, now, config);
  const providers = await deps.providers.list(auction.symbol);
  const bidders = biddersOf(providers, auction.symbol, auction.fills);
  const market = marketConfig(deps.config, auction.symbol);

  // Walking the rest of the curve (and resetting it) fills nothing worth having when no provider whose bid the curve
  // still reaches has the capital and room for a dust-sized piece (or the whole rest, if smaller) at its bid, the
  // price it fills at: the waterfall's next layers take over now, not at tail. (A provider's fills leave it up to
  // one base unit's price of capital: such crumbs kept every auction stepping to its tail.)
  // A reset restarts the curve from the mark now (bidOnSomeCurve).
  const { best, reset } = bidOnSomeCurve(auction, status, bidders, auction.remainingLot, mark, now, deps);
  const anyBidder = best !== undefined;
  const fillsLeft = MAX_FILLS_PER_AUCTION - auction.fills.length;
  if (!anyBidder || fillsLeft <= 0) {
    const exhausted: AuctionRecord = {
      ...takenBy(awake(auction), within),
      endedBy: enderOf(message),
      endedAtMark: mark,
      state: 'EXHAUSTED',
      step: auction.step + 1,
      version: auction.version + 1,
    };
    if (!anyBidder) deps.telemetry.info('no provider can bid; auction ends', { auctionId: auction.id });
    else if (fillsLeft <= 0) warnFull(auction, auction.fills.length, deps);
    return finishAndWake(exhausted, deps, marketState, [
      { kind: 'auction', record: exhausted, expectedVersion: auction.version },
    ]);
  }
  if (reset) {
    const sleep = planSleep(reset, mark, now, config, best);
    const restarted: AuctionRecord = {
      ...takenBy(reset, within),
      ...(sleep.wakeMark === undefined ? {} : { wakeMark: sleep.wakeMark }),
      step: auction.step + 1,
      stepDueAtMs: dueIn(sleep.delaySeconds, deps),
      version: auction.version + 1,
    };
    // Scheduled before the commit, so the next step can never be lost: a death in between redelivers this
    // step, which runs again and schedules once more. Of the two next-step messages the first to arrive after
    // the commit runs the step; the other no longer matches the step number and dies.
    const sentAtMs = deps.clock.nowMs();
    const outcome = await schedule(restarted, sleep, deps, 'reset');
    const writes: Write[] = [{ kind: 'auction', record: restarted, expectedVersion: auction.version }];
    if (!(await commit(deps, writes, providersUnchangedSince(auction.symbol, marketState)))) return CONFLICT;
    await resendAfterSlowCommit(restarted, sleep.delaySeconds, sentAtMs, 0, deps);
    await coverWake(restarted, marketState, deps);
    await payWake(restarted, deps, providersEpochOf(marketState));
    return outcome;
  }

  const clearing = clearAuctionStep({
    direction: auction.direction,
    remainingLot: auction.remainingLot,
    price: status.price,
    mark,
    // Maker's tab: never collect more than the lot is worth at the top (followed up to the mark's) plus the penalty.
    debt: auction.direction === 'SELL' ? sellTab(auction.top, auction.remainingLot, mark, config) : 0n,
    dust: market.dustSize,
    lot: lotSizeOf(market),
    providers: bidders,
    maxFills: Math.min(MAX_FILLS_PER_STEP, fillsLeft),
  });

  const done = clearing.remainingLot === 0n || clearing.debtCovered;
  const filledAtMs = deps.clock.nowMs();
  const fills: AuctionFill[] = [
    ...auction.fills,
    // The cost each provider paid (or was paid) in whole units: the settlement counts it (Fill.cost). When and at which
    // mark, as its provider's record keeps it: the auction's own answer once that record has let it go
    // (review52-support-fill-times-on-auction).
    ...clearing.fills.map((f) => ({
      providerId: f.providerId,
      price: f.price,
      size: f.size,
      cost: f.cost,
      step: auction.step,
      atMs: filledAtMs,
      mark,
    })),
  ];
  const filled = new Map<string, ProviderRecord>();
  for (const fill of clearing.fills) {
    const provider = providers.find((p) => p.id === fill.providerId) as ProviderRecord;
    // Committed capital is consumed by what the provider pays (SELL) or puts up to buy (BUY). The same write records
    // the fill on the provider, what it won (providers48-fills-on-record): no write more.
    filled.set(provider.id, {
      ...provider,
      capital: provider.capital - fill.cost,
      ...recordProviderFill(provider, {
        liquidationId: auction.liquidationId,
        step: auction.step,
        symbol: auction.symbol,
        direction: auction.direction,
        size: fill.size,
        price: fill.price,
        cost: fill.cost,
        mark,
        edge: fillEdge(auction.direction, fill.size, mark, fill.cost),
        atMs: filledAtMs,
      }),
      version: provider.version + 1,
    });
  }
  // At its most fills with lot left: it ends now, not after a sleep planned on bids it can no longer fill. So does
  // one whose few fills left the dust rule took back (the rest between dust and twice dust, one fill left: the
  // best bid's dust-sized piece would leave a crumb): it would run the same empty capped step forever.
  const full =
    !done && (fills.length >= MAX_FILLS_PER_AUCTION || (clearing.fillsCapped && clearing.fills.length === 0));
  if (full) warnFull(auction, fills.length, deps);
  // Fills that leave no provider a bid sleep one step, and the next step ends the auction if still nobody can bid
  // (or resets it, a bid only a reset's curve reaches). Ending at once was measured (session 41): more bad debt on
  // both real crash legs (leg 2 at 4,000 positions: 14,287 against 9,658 USD; leg 1: 300 USD where there was none).
  const ended = done ? ('CLEARED' as const) : full ? ('EXHAUSTED' as const) : undefined;
  const sleep = ended
    ? undefined
    : clearing.fillsCapped
      ? { delaySeconds: CAPPED_STEP_DELAY_SECONDS, wakeMark: undefined }
      : planSleep(
          auction,
          mark,
          now,
          config,
          bestBid(
            auction,
            status,
            biddersOf(
              providers.map((p) => filled.get(p.id) ?? p),
              auction.symbol,
              fills,
            ),
            deps.config,
            clearing.remainingLot,
            mark,
          ),
        );
  // A wake owed since an earlier step goes with this one's.
  const spent = await spentMarkets(filled, auction.symbol, mark, deps);
  const next: AuctionRecord = {
    // Where it went on from, unless this step spent a market anew: then from the start.
    ...owing(
      takenBy(awake(auction), within),
      [...new Set([...(auction.spentIn ?? []), ...spent])],
      spent.length === 0 ? auction : undefined,
    ),
    ...(sleep?.wakeMark === undefined ? {} : { wakeMark: sleep.wakeMark }),
    remainingLot: clearing.remainingLot,
    fills,
    ...(ended
      ? { endedBy: enderOf(message), endedAtMark: mark, state: ended }
      : { state: 'RUNNING' as const }),
    step: auction.step + 1,
    ...(sleep ? { stepDueAtMs: dueIn(sleep.delaySeconds, deps) } : {}),
    version: auction.version + 1,
  };
  const writes: Write[] = [{ kind: 'auction', record: next, expectedVersion: auction.version }];
  for (const record of filled.values()) {
    writes.push({ kind: 'provider', record, expectedVersion: record.version - 1 });
  }
  if (sleep === undefined) return finishAndWake(next, deps, marketState, writes);
  // The next step is scheduled before the commit, for the same reason as a reset's.
  const sentAtMs = deps.clock.nowMs();
  const outcome = await schedule(next, sleep, deps, 'stepped');
  const planned = clearing.fillsCapped ? undefined : providersUnchangedSince(auction.symbol, marketState);
  if (!(await commit(deps, writes, planned))) return CONFLICT;
  // Capped, the run goes on at once: its message, as the one sent before the commit, a second away.
  const resendDelay = clearing.fillsCapped ? CAPPED_STEP_DELAY_SECONDS : 0;
  await resendAfterSlowCommit(next, sleep.delaySeconds, sentAtMs, resendDelay, deps);
  await coverWake(next, marketState, deps);
  if (!clearing.fillsCapped) {
    // The epoch its plan was committed on.
    await payWake(next, deps, planned?.epoch);
    return outcome;
  }
  // A capped step's plan is unchecked (it sleeps on no wake mark). A wake it cannot pay fails the delivery only once
  // the run is done (processAuctionStep): failed here, the run's next step came from its message a second later,
  // when the tail or the cusp could reset the auction under bids that stand (review42-capped-run-split).
  const paid = await wakeSpent(next, deps).catch((error: unknown) => ({ error }));
  return {
    status: 'stepped',
    nextStep: next.step,
    delaySeconds: sleep.delaySeconds,
    cappedAtMs: now,
    ...(paid === true ? {} : { owed: paid === false ? new SpentWakeOwedError(next) : paid.error }),
  };
}

/**
 * A commit that landed later than its next step's message's last look (earlyWindowMs after that message's send, which
 * came first): the message may have ended past its waits, and the step would have none (the auction RUNNING, its
 * liquidation in AUCTION until the overdue watch). The step is sent again, due after `delaySeconds` (its first due time
 * passed); a message that did find the step makes it a twin, which finds its step taken (review43c-slow-commit-resend).
 * Sent before anything else of the delivery: a failure after it redelivers a step message that finds its step taken.
 */
async function resendAfterSlowCommit(
  next: AuctionRecord,
  plannedDelaySeconds: number,
  sentAtMs: number,
  delaySeconds: number,
  deps: SettlementDeps,
): Promise<void> {
  const tookMs = deps.clock.nowMs() - sentAtMs;
  if (tookMs < earlyWindowMs(plannedDelaySeconds)) return;
  deps.telemetry.info("a step's commit outlasted its next step's message; the step is sent again", {
    auctionId: next.id,
    step: next.step,
    tookMs,
  });
  await sendStep(next, delaySeconds, deps);
}

/**
 * A running auction's next step's message that came before the commit of the step that sent it (EARLY_STEP_WAIT_SECONDS):
 * sent back to look again, or past its waits, ended. A message behind its auction (a twin, an older step) ends at once
 * (stepOnce); so does any message of an ended auction, which no commit moves on again.
 */
async function waitForCommit(message: AuctionStepMessage, deps: SettlementDeps): Promise<StepResult> {
  const waits = message.earlyWaits ?? 0;
  const keys = { auctionId: message.auctionId, step: message.step, waits };
  if (waits >= MAX_EARLY_STEP_WAITS) {
    deps.telemetry.info(
      "a step's message stayed ahead of its auction; it ends (its step is planned again)",
      keys,
    );
    return { status: 'stale' };
  }
  const now = deps.clock.nowMs();
  const back: AuctionStepMessage = {
    ...message,
    earlyWaits: waits + 1,
    // The wait is the commit's, not the consumer's: its lateness counts from its look then, less how late this
    // delivery came (the consumer's, reported once, when the step is taken: early44-lateness).
    backAtMs: now + EARLY_STEP_WAIT_SECONDS * 1000 - lateMsOf(message, now),
  };
  await deps.auctionQueue.send(encodeMessage(back), EARLY_STEP_WAIT_SECONDS);
  deps.telemetry.info("a step's message came before its step's commit; it looks again", keys);
  return { status: 'early', delaySeconds: EARLY_STEP_WAIT_SECONDS };
}

/**
 * The best bid the auction can reach, and the restarted auction when only a reset's curve reaches it (no bid: best
 * undefined). A reset comes when this curve must reset, or when no bid is within this curve's reach but one is
 * within the restarted curve's (the mark moved away since the start: review, session 36, an auction idled an hour
 * on a curve that could not fill); who can bid is then judged on the curve the reset starts.
 */
function bidOnSomeCurve(
  auction: AuctionRecord,
  status: AuctionStatus,
  bidders: readonly ProviderRecord[],
  lot: BaseE8,
  mark: PriceE8,
  now: number,
  deps: SettlementDeps,
): { readonly best: Ppm | undefined; readonly reset?: AuctionRecord } {
  const config = deps.config.auction;
  const best = status.needsReset ? undefined : bestBid(auction, status, bidders, deps.config, lot, mark);
  // Only if some provider could bid on some curve (most auctions end because capital ran out: no curve helps).
  if (
    best !== undefined ||
    auction.resets >= config.maxResets ||
    bestBid(auction, status, bidders, deps.config, lot, mark, anyPriceBound(auction.direction)) === undefined
  )
    return { best };
  const restarted = { ...awake(auction), ...resetAuction(auction, mark, now, config) };
  const fresh = auctionStatus(restarted, mark, now, config);
  const onRestarted = bestBid(restarted, fresh, bidders, deps.config, lot, mark);
  return onRestarted === undefined ? { best: undefined } : { best: onRestarted, reset: restarted };
}

const enderOf = (message: AuctionStepMessage): 'wake' | 'plan' => (message.woken ? 'wake' : 'plan');

const warnFull = (auction: AuctionRecord, fills: number, deps: SettlementDeps): void =>
  deps.telemetry.warn('auction took its most fills; auction ends', { auctionId: auction.id, fills });

/** How late a step may run and still be priced at its time: SQS's delivery of a delayed message, a cold start. */
export const STEP_LATENESS_GRACE_MS = 5_000;

/**
 * A step delivered late (its delivery died: a redelivery after the visibility timeout, a dead-letter redrive)
 * would price the lot on a curve that walked on meanwhile, far below the bids it was due to meet: the fund paid
 * the difference. Its auction's curve is moved on by the lateness instead (its start, in the record this step
 * writes), so the step prices as it would have when due, and the tail counts the auction's own time.
 */
function onTimeCurve(auction: AuctionRecord, message: AuctionStepMessage, nowMs: number): AuctionRecord {
  if (auction.state !== 'RUNNING' || message.step !== auction.step) return auction;
  // The earlier of the message's due time and the record's: a step sent due now (a tick's wake, the AUCTION case's
  // resend) after the planned one fell due, say at the end of a feed outage the planned one waited out, is as late.
  // A message of this step was sent once the step was planned, at most MAX_STEP_DELAY_SECONDS before it fell due:
  // a time before that (corrupt or forged: 0, say) is no lateness of this step and is ignored. Taken, it moved the
  // curve's start by decades (or, clamped to the start, by the auction's age): the auction back at its top, its
  // tail put off.
  const plannedSinceMs = Math.max(
    auction.startedAtMs,
    (auction.stepDueAtMs ?? auction.startedAtMs) - MAX_STEP_DELAY_SECONDS * 1000,
  );
  const fromMessage =
    message.dueAtMs !== undefined && message.dueAtMs >= plannedSinceMs
      ? message.dueAtMs
      : Number.POSITIVE_INFINITY;
  const dueAtMs = Math.min(fromMessage, auction.stepDueAtMs ?? Number.POSITIVE_INFINITY);
  const lateMs = nowMs - dueAtMs - STEP_LATENESS_GRACE_MS;
  return lateMs > 0 ? { ...auction, startedAtMs: auction.startedAtMs + lateMs } : auction;
}

/** The record without its wake mark: awake, or no longer RUNNING. */
function awake({ wakeMark: _, ...auction }: AuctionRecord): AuctionRecord {
  return auction;
}

async function schedule(
  auction: AuctionRecord,
  { delaySeconds }: AuctionSleep,
  deps: SettlementDeps,
  status: 'reset' | 'stepped',
): Promise<AuctionStepOutcome> {
  await sendStep(auction, delaySeconds, deps);
  return { status, nextStep: auction.step, delaySeconds };
}

/**
 * Hands a finished auction's liquidation to the waterfall until it reaches its terminal state. `market`: the
 * market record the step just read, whose mark the settlement uses instead of reading it again. `ending`: the
 * writes of the step that ends the auction, not committed yet: they go with the liquidation's first
 * transition (CONFLICT when that fails: the step runs again on fresh records, or finds itself stale).
 */
async function finish(
  auction: AuctionRecord,
  deps: SettlementDeps,
  market?: MarketState,
  ending?: readonly Write[],
  unsettled?: () => void,
): Promise<AuctionStepOutcome | typeof CONFLICT> {
  // What one transition leaves for the next (a frozen plan, the mark), as processLiquidation carries it.
  const carried: Carried = ending ? { pendingWrites: ending } : {};
  const tick = market?.lastTick;
  if (tick) carried.mark = markOfMarket(market, tick.markPrice, deps.clock.nowMs());
  return releasingLease(carried, deps, () => settleFinished(auction, deps, carried, unsettled));
}

/**
 * finish, then the wake the ending step owes (its writes committed with the settlement's first transition); a wake
 * still owed fails the delivery, whose retry pays it (SpentWakeOwedError).
 */
async function finishAndWake(
  auction: AuctionRecord,
  deps: SettlementDeps,
  market: MarketState | undefined,
  ending: readonly Write[],
): Promise<AuctionStepOutcome | typeof CONFLICT> {
  const outcome = await finish(auction, deps, market, ending);
  if (outcome !== CONFLICT && !(await wakeSpent(auction, deps))) throw new SpentWakeOwedError(auction);
  return outcome;
}

/**
 * The wake a running auction's committed step owes (AuctionRecord.spentIn), paid after the commit and its next step's
 * message. Still owed, the delivery fails (SpentWakeOwedError) after everything it wrote (a capped step's, after its
 * run: review42-capped-run-split): its retry, seconds later
 * (the queue's backoff), finds the step done and pays the debt, idempotently, and a wake that keeps failing is
 * dead-lettered (alarmed). Kept for the auction's next step instead, the sleepers planned on the spent capital for
 * up to 900 s more (spent-wake-retry-late, session 42). `plannedAtEpoch`: as wakeSpent's.
 */
async function payWake(auction: AuctionRecord, deps: SettlementDeps, plannedAtEpoch?: number): Promise<void> {
  if (!(await wakeSpent(auction, deps, undefined, plannedAtEpoch))) throw new SpentWakeOwedError(auction);
}

/**
 * The wake its auction owes, paid by a delivery that finds its step taken (a twin, an older step's message, the retry
 * of the delivery that could not pay it): what to fail the delivery with when it stays owed, undefined when paid or
 * left to its owner. The delivery that owns the debt (ownsWake) fails, and its retry pays it; so does one whose try
 * may have written the record (an owner whose write then lost to it took the debt for paid), a write that names its
 * delivery's message the owner (runFrom; a capped run's later step: the run's, `within`), so that its retry fails too
 * (review44-debt-owner-lost). Any other ends quietly,
 * its try's failure uncounted: while the wake kept failing, a capped run's later steps' messages (up to 11, all a
 * second after the run) each failed at every receive and were dead-lettered, for one debt (capped44-stale-run-quiet).
 */
async function stillOwed(
  auction: AuctionRecord,
  message: AuctionStepMessage,
  deps: SettlementDeps,
  within: RunStep | undefined,
): Promise<unknown> {
  const owner = ownsWake(auction, message);
  // A delivery that ends quietly counts no AuctionWakeFailures.
  const held = owner ? undefined : holdingCounts(deps.telemetry, METRICS.AuctionWakeFailures.name);
  // Another's try that writes the record names this delivery's message its owner: that write may beat the owner's,
  // which then takes the debt for moved on and ends, and this one's retry must still fail for it
  // (review44-debt-owner-lost).
  const paying = owner ? auction : { ...auction, runFrom: within?.from ?? message.step };
  const paid = await wakeSpent(paying, held ? { ...deps, telemetry: held.telemetry } : deps).catch(
    (error: unknown) => ({ error }),
  );
  if (paid === true) return undefined;
  const failure = paid === false ? new SpentWakeOwedError(auction) : paid.error;
  if (held && (await untouched(auction, deps))) {
    deps.telemetry.info('a wake its auction owes not paid; the delivery that owns it pays it', {
      auctionId: auction.id,
      step: message.step,
      owner: auction.runFrom ?? auction.step - 1,
    });
    return undefined;
  }
  held?.release();
  return failure;
}

/** The record is as read: this delivery's try wrote nothing (a read that fails cannot say so). */
const untouched = (auction: AuctionRecord, deps: SettlementDeps): Promise<boolean> =>
  deps.auctions.get(auction.id).then(
    (now) => now?.version === auction.version,
    () => false,
  );

/**
 * Whether the message's delivery owns the wake its auction owes: it took the record's last step (whose delivery wrote
 * or carried the debt: a capped run's message for its later steps, AuctionRecord.runFrom), or it is a wake's
 * continuation, which goes on with it.
 */
const ownsWake = (auction: AuctionRecord, message: AuctionStepMessage): boolean =>
  isWakeContinuation(message) || message.step === (auction.runFrom ?? auction.step - 1);

/** The record as a step writes it: a capped run's later step names the run's message (AuctionRecord.runFrom). */
const takenBy = ({ runFrom: _, ...auction }: AuctionRecord, within: RunStep | undefined): AuctionRecord =>
  within === undefined ? auction : { ...auction, runFrom: within.from };

/**
 * `unsettled`: called when the settlement is found unfinished, before this delivery goes on with it: an ended
 * auction's ending step left it (that delivery died or failed), and its lateness is this one's
 * (lateness43-ended-settlement).
 */
async function settleFinished(
  auction: AuctionRecord,
  deps: SettlementDeps,
  carried: Carried,
  unsettled?: () => void,
): Promise<AuctionStepOutcome | typeof CONFLICT> {
  // The record each transition leaves is carried too; undefined: read it (first, or after a lost race).
  let liquidation: LiquidationRecord | undefined;
  // This delivery's own settlement made the record terminal, and sent its follow-ups as it did (applySettlement).
  let settledHere = false;
  for (let attempt = 0; attempt < 6; attempt++) {
    liquidation ??= await deps.liquidations.get(auction.liquidationId);
    if (!liquidation) throw new LiquidationNotFoundError(`liquidation/not-found: ${auction.liquidationId}`);
    // A last resort waiting for the book is its own message's, on its own schedule (LiquidationLateness): this
    // delivery runs nothing late for it.
    if (attempt === 0 && !isTerminal(liquidation.state) && !liquidation.context?.lastResortAttempt)
      unsettled?.();
    // The wait its message carries on was recorded sent (this step's delivery came back after it, or a copy of the
    // step): looking again here sent a second wait beside it, each going on for ever (waits43-one-chain).
    if (!isTerminal(liquidation.state) && liquidation.context?.lastResortWait && !carried.pendingWrites)
      return { status: 'finished', liquidationState: liquidation.state };
    if (isTerminal(liquidation.state)) {
      // Settled without this step (not expected): the auction still ends, or the step is stale.
      if (carried.pendingWrites && !(await commit(deps, carried.pendingWrites))) return CONFLICT;
      // A step that settled it may have died before its follow-up: the next slice's message. Not this delivery's own
      // settlement, which sent them: sent again, its next slice was delivered twice (lot52-next-slice-once).
      if (!settledHere) await sendFollowUps(liquidation, deps);
      if (attempt > 0) {
        // From the liquidation's entry into the auction: a late step moves the curve's start (onTimeCurve).
        const startedAtMs =
          liquidation.history.findLast((h) => h.state === 'AUCTION')?.atMs ?? auction.startedAtMs;
        deps.telemetry.observe(
          METRICS.AuctionDurationSeconds.name,
          Math.max(0, Math.round((deps.clock.nowMs() - startedAtMs) / 1000)),
          { Market: liquidation.symbol },
        );
      }
      return { status: 'finished', liquidationState: liquidation.state };
    }
    let step: Awaited<ReturnType<typeof decideAndSettle>>;
    try {
      step = await decideAndSettle(liquidation, deps, auction, carried);
    } catch (error) {
      if (!(error instanceof SubLotRemainderError)) throw error;
      // Nothing took a slice under the lot, its auction's end committed (freeze): the liquidation's own message takes
      // the failure on, dead-lettered as docs/DEPLOY.md says. Failing here, the step was dead-lettered instead.
      await deps.liquidationQueue.sendBatch([
        dueLiquidationMessage({ liquidationId: liquidation.id }, deps.clock.nowMs()),
      ]);
      return { status: 'finished', liquidationState: liquidation.state };
    }
    if (!step.done && carried.pendingWrites) return CONFLICT;
    // Done but not terminal: a last resort waits for the book, and the liquidation's own message comes back.
    if (step.done && !isTerminal(step.record.state))
      return { status: 'finished', liquidationState: step.record.state };
    liquidation = step.done ? step.record : step.next;
    settledHere = step.done;
    // A concurrent writer moved the records: read them again.
    if (!liquidation) carried.position = undefined;
  }
  throw new LiquidationStuckError(`auction/settlement-did-not-finish: ${auction.id}`);
}

async function commit(
  deps: SettlementDeps,
  writes: readonly Write[],
  providersUnchanged?: ProvidersEpochCheck,
): Promise<boolean> {
  try {
    await deps.transactor.commit(writes, providersUnchanged);
    return true;
  } catch (error) {
    if (error instanceof ConditionFailedError) return false;
    throw error;
  }
}

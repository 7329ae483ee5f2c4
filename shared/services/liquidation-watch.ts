import { DEFAULT_VENUE_CHECK_HOLD_SECONDS, type RiskConfig } from '../domain/config.ts';
import { markIsStale } from '../domain/tick.ts';
import { METRICS } from '../metrics.ts';
import {
  type AuctionRecord,
  type AuctionRepository,
  type LiquidationRecord,
  type LiquidationRepository,
  liquidationStartedAtMs,
  type MarketRepository,
  type QueueTransport,
  type Telemetry,
} from '../ports/index.ts';
import { encodeMessage, stepMessageOf } from '../schemas/messages.ts';
import { markOfMarket, STALE_MARK_WAIT_SECONDS } from './context.ts';
import { auctionIdOf, LAST_RESORT_MAX_WAIT_MS, lastResortWaitingSince } from './liquidation.ts';

/**
 * Beyond its longest legitimate quiet time, how long an open liquidation may go before it is overdue: the queue's
 * retries and backoffs (about 8 minutes before a dead letter, which alarms on its own), a consumer's visibility
 * timeout, an SQS delay of up to 900 s, with room to spare, so a liquidation still moving is never reported.
 */
export const OVERDUE_SLACK_MS = 3_600_000;

/** An SQS delay's most: the next slice's cooldown, an auction's step (the sleeps between its looks). */
const MAX_DELAY_MS = 900_000;

/**
 * When an open liquidation becomes overdue: its last event plus the longest its state may legitimately stay quiet
 * (a start held by the venue's dispute; an auction's tail times its resets; a last resort waiting for the book,
 * counted from its first wait), plus OVERDUE_SLACK_MS. A liquidation waiting for a fresh mark is overdue too once
 * the feed has been stale that long: its work is not moving, whatever the cause (the log says which).
 */
export function overdueAtMs(l: LiquidationRecord, config: RiskConfig): number {
  const lastEventMs = l.history.at(-1)?.atMs ?? 0;
  let quietUntilMs = lastEventMs;
  if (l.state === 'QUEUED') {
    const market = config.markets.find((m) => m.symbol === l.symbol);
    const holdSeconds = market?.venueCheckHoldSeconds ?? DEFAULT_VENUE_CHECK_HOLD_SECONDS;
    quietUntilMs = lastEventMs + holdSeconds * 1000 + MAX_DELAY_MS;
  }
  if (l.state === 'AUCTION') {
    // Its first AUCTION event: a last resort after the auction ended writes more events in AUCTION.
    const auctionStartMs = l.history.find((e) => e.state === 'AUCTION')?.atMs ?? lastEventMs;
    const { tailSeconds, maxResets } = config.auction;
    quietUntilMs = Math.max(
      quietUntilMs,
      auctionStartMs + tailSeconds * 1000 * (maxResets + 1) + MAX_DELAY_MS,
    );
  }
  const waitingSinceMs = lastResortWaitingSince(l);
  if (waitingSinceMs !== undefined)
    quietUntilMs = Math.max(quietUntilMs, waitingSinceMs + LAST_RESORT_MAX_WAIT_MS + MAX_DELAY_MS);
  return quietUntilMs + OVERDUE_SLACK_MS;
}

/**
 * How long past its due time a running auction's step may go without being taken before the watch sends it again:
 * past SQS's longest delay (900 s) and a failed delivery's retries (the queue's backoff, 455 s, and a visibility
 * timeout). A stale-mark wait leaves the step due in the past, but the watch does not resend while the mark is stale.
 */
export const STEP_STALL_MARGIN_MS = 900_000;

/**
 * A resend's delay: past the next look of a step message waiting for a fresh mark (STALE_MARK_WAIT_SECONDS), so one
 * the feed's return finds waiting, just before the watch's run, takes its step first and the resend finds it taken
 * (review43e-feed-back-resend: it took the step itself and paged a lost message that was not).
 */
export const RESEND_DELAY_SECONDS = 2 * STALE_MARK_WAIT_SECONDS;

/**
 * Whether a running auction's step is stalled at `nowMs`: due more than STEP_STALL_MARGIN_MS ago and not taken (a
 * taken step moves `step` and `stepDueAtMs` on). No message will run it: its planned one was lost (a slow commit
 * whose delivery died before its resend, a purge, a dead letter SQS deleted). A record of an earlier version, with
 * no due time, is left to the overdue report.
 */
export const auctionStalled = (
  auction: Pick<AuctionRecord, 'state' | 'stepDueAtMs'>,
  nowMs: number,
): boolean =>
  auction.state === 'RUNNING' &&
  auction.stepDueAtMs !== undefined &&
  nowMs > auction.stepDueAtMs + STEP_STALL_MARGIN_MS;

/** What the watch needs to send a stalled auction's step again (absent: it only reports, as the CLI's listing). */
export interface StalledAuctionResend {
  readonly auctions: Pick<AuctionRepository, 'get'>;
  readonly markets: Pick<MarketRepository, 'get'>;
  readonly auctionQueue: Pick<QueueTransport, 'send'>;
}

export interface OverdueLiquidation {
  readonly id: string;
  readonly symbol: string;
  readonly state: LiquidationRecord['state'];
  readonly startedAtMs: number;
  readonly overdueSinceMs: number;
  /** Settled, with ADL rounds still owed on its deficit. */
  readonly owesAdlRounds: boolean;
  /** The last failed delivery's error and when it failed (it stays on the record after later successes). */
  readonly lastFailure?: string;
}

export interface WatchReport {
  /** Open liquidations old enough to be judged (started at least OVERDUE_SLACK_MS ago; with `all`, every open one). */
  readonly judged: number;
  /** Of them, those overdue (with `all`, every one listed). */
  readonly overdue: number;
  /** The longest overdue first (with `all`, the oldest first), at most `sampleSize`. */
  readonly sample: readonly OverdueLiquidation[];
  /** Stalled auctions whose step was sent again (with `resend`). */
  readonly resent: number;
}

/**
 * Reads the open liquidations started at least OVERDUE_SLACK_MS ago (an index, not a scan of the table) and
 * reports those past overdueAtMs: `LiquidationsOverdue` (a gauge, 0 when healthy, alarmed) and the longest overdue.
 * A purged queue, a message lost to a fault no retry covered or a bug leaves a liquidation no message will move;
 * nothing else would notice it. A message of `{ liquidationId }` resumes any of them (the consumer is idempotent and
 * resumes from the record: `backstop liquidations overdue --resend`).
 * With `resend`, it also heals a running auction whose step is stalled (auctionStalled): it sends that step's
 * message again, due when the step was, RESEND_DELAY_SECONDS away (a twin of a message still alive finds its step
 * taken and ends); the delivery that takes the step with it counts it in `AuctionStepsResent` (alarmed: a lost step
 * message is a fault to look into). To see them, it reads the open
 * liquidations started at least STEP_STALL_MARGIN_MS ago (a step is due after its auction's start), and each one
 * in AUCTION's auction. Not while the market's mark is stale: the step's own message waits for a fresh tick then,
 * and a resend every run would only add a twin waiting beside it; the first watch run after the feed is back
 * resends it if it is still stalled.
 */
export async function watchLiquidations(
  liquidations: Pick<LiquidationRepository, 'openStartedBefore'>,
  config: RiskConfig,
  nowMs: number,
  telemetry: Telemetry,
  sampleSize = 20,
  options: { readonly all?: boolean; readonly resend?: StalledAuctionResend } = {},
): Promise<WatchReport> {
  let judged = 0;
  let resent = 0;
  const overdue: OverdueLiquidation[] = [];
  // `all` (an operator who knows messages were lost): every open liquidation, however young, oldest first.
  // (The functions' clocks stamp the starts: `all` takes any time, not this clock's now.)
  const judgedBefore = options.all ? Number.MAX_SAFE_INTEGER : nowMs - OVERDUE_SLACK_MS;
  const before = options.resend ? Math.max(judgedBefore, nowMs - STEP_STALL_MARGIN_MS) : judgedBefore;
  // Per market, once a run: the 16 reads in flight share one market read.
  const freshMarks = new Map<string, Promise<boolean>>();
  for await (const page of liquidations.openStartedBefore(before)) {
    if (options.resend)
      resent += await resendStalledOf(page, options.resend, config, nowMs, telemetry, freshMarks);
    for (const l of page) {
      if (liquidationStartedAtMs(l) >= judgedBefore) continue;
      judged += 1;
      const dueMs = overdueAtMs(l, config);
      if (nowMs < dueMs && !options.all) continue;
      const failure = l.lastFailure;
      overdue.push({
        id: l.id,
        symbol: l.symbol,
        state: l.state,
        startedAtMs: liquidationStartedAtMs(l),
        overdueSinceMs: dueMs,
        owesAdlRounds: l.context?.adlRound !== undefined,
        ...(failure
          ? {
              lastFailure: `${failure.reason} (receive ${failure.attempt}, ${new Date(failure.atMs).toISOString()})`,
            }
          : {}),
      });
    }
  }
  const order = options.all
    ? (l: OverdueLiquidation) => l.startedAtMs
    : (l: OverdueLiquidation) => l.overdueSinceMs;
  overdue.sort((a, b) => order(a) - order(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (!options.all) telemetry.observe(METRICS.LiquidationsOverdue.name, overdue.length);
  return { judged, overdue: overdue.length, sample: overdue.slice(0, sampleSize), resent };
}

/**
 * Auction reads in flight at once: a crash leaves thousands of auctions open past the margin, and one read after
 * another (a few ms each) would spend the watch's 300 s on them.
 */
const RESEND_READS_IN_FLIGHT = 16;

/** Sends again the stalled steps of a page's auctions; how many it sent. One that fails is tried again next run. */
async function resendStalledOf(
  page: readonly LiquidationRecord[],
  deps: StalledAuctionResend,
  config: RiskConfig,
  nowMs: number,
  telemetry: Telemetry,
  freshMarks: Map<string, Promise<boolean>>,
): Promise<number> {
  const inAuction = page.filter((l) => l.state === 'AUCTION');
  let next = 0;
  let sent = 0;
  const worker = async (): Promise<void> => {
    for (let at = next++; at < inAuction.length; at = next++) {
      const l = inAuction[at]!;
      try {
        if (await resendStalled(auctionIdOf(l.id), deps, config, nowMs, telemetry, freshMarks)) sent += 1;
      } catch (error) {
        // The overdue report still runs.
        telemetry.warn('stalled auction step not sent again', { liquidationId: l.id, error: String(error) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(RESEND_READS_IN_FLIGHT, inAuction.length) }, worker));
  return sent;
}

/** Sends a stalled auction's step again (see watchLiquidations); true if it did. */
async function resendStalled(
  auctionId: string,
  deps: StalledAuctionResend,
  config: RiskConfig,
  nowMs: number,
  telemetry: Telemetry,
  freshMarks: Map<string, Promise<boolean>>,
): Promise<boolean> {
  const auction = await deps.auctions.get(auctionId);
  if (!auction || !auctionStalled(auction, nowMs) || auction.stepDueAtMs === undefined) return false;
  let fresh = freshMarks.get(auction.symbol);
  if (fresh === undefined) {
    const market = config.markets.find((m) => m.symbol === auction.symbol);
    fresh = deps.markets
      .get(auction.symbol)
      .then(
        (state) =>
          market !== undefined && !markIsStale(markOfMarket(state, auction.top, nowMs).atMs, nowMs, market),
      );
    // A failed read is not kept: the market's next auction reads it again.
    fresh.catch(() => freshMarks.delete(auction.symbol));
    freshMarks.set(auction.symbol, fresh);
  }
  if (!(await fresh)) return false;
  // Due when the step was: the step prices as then (onTimeCurve) and reports its lateness (alarmed). Counted in
  // AuctionStepsResent (alarmed) by the delivery that takes the step with it (review43e-feed-back-resend).
  const message = { ...stepMessageOf(auction, auction.stepDueAtMs), resent: true };
  await deps.auctionQueue.send(encodeMessage(message), RESEND_DELAY_SECONDS);
  telemetry.info('auction step stalled: sent again', {
    auctionId: auction.id,
    liquidationId: auction.liquidationId,
    symbol: auction.symbol,
    step: auction.step,
    stepDueAt: new Date(auction.stepDueAtMs).toISOString(),
  });
  return true;
}

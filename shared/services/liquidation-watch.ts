import { DEFAULT_VENUE_CHECK_HOLD_SECONDS, type RiskConfig } from '../domain/config.ts';
import { markIsStale } from '../domain/tick.ts';
import { eachInFlight } from '../in-flight.ts';
import { METRICS } from '../metrics.ts';
import {
  type AuctionRecord,
  type AuctionRepository,
  type LiquidationRecord,
  type LiquidationRepository,
  liquidationStartedAtMs,
  type MarketRepository,
  type OpenListingPosition,
  type QueueTransport,
  type Telemetry,
  type WatchCursor,
  type WatchCursorState,
} from '../ports/index.ts';
import { encodeMessage, stepMessageOf } from '../schemas/messages.ts';
import { latestMark, STALE_MARK_WAIT_SECONDS } from './context.ts';
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
    // Its auction's opening (`lot ...`; a slice under its lot may open one again: auctionAgain), not the events a last
    // resort after the auction ended writes in AUCTION.
    const auctionStartMs =
      l.history.findLast((e) => e.state === 'AUCTION' && e.note?.startsWith('lot '))?.atMs ??
      l.history.find((e) => e.state === 'AUCTION')?.atMs ??
      lastEventMs;
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
 * How long after a step's resend the watch sends it again if it is still stalled: each run (every 5 minutes) sent a
 * twin of it while its resend waited in a queue behind (watch44-resend-once). An hour: far past a resend's delay and
 * the margin, so a step still stalled then lost its resend too (a purge again) or its consumer is an hour behind
 * (AuctionStepQueueAgeAlarm pages at 20 minutes): a twin an hour each, not twelve.
 */
export const RESEND_AGAIN_AFTER_MS = 3_600_000;

/**
 * A resend that takes its step within this of its own due time counts in AuctionStepsResent: its consumer keeps up
 * (its first retries included), so the step's own message, due over STEP_STALL_MARGIN_MS before it, would have run
 * first had it been alive. Taken later, the consumer is behind (its lateness pages) and the step's own message may
 * be alive behind it: SQS keeps no order, so a count would page a lost message that was not (watch44-resent-count).
 */
export const RESEND_COUNTED_WITHIN_MS = 300_000;

/**
 * Whether the resent message of `step` that takes it at `nowMs` came RESEND_COUNTED_WITHIN_MS or more past its own
 * due time (its claim's time plus RESEND_DELAY_SECONDS). No claim of that step known (a resend of an earlier version,
 * one given back): not late.
 */
export const resendTakenLate = (
  auction: Pick<AuctionRecord, 'stepResent'>,
  step: number,
  nowMs: number,
): boolean => {
  const claim = auction.stepResent;
  if (claim === undefined || claim.step !== step || claim.atMs === 0) return false;
  return nowMs - (claim.atMs + RESEND_DELAY_SECONDS * 1000) > RESEND_COUNTED_WITHIN_MS;
};

/**
 * How long a run may read before it reports what it has judged: under the function's 300 s timeout (topology.ts),
 * with room for the page in hand and the cursor's write. Every open liquidation is read each run; 100,000 after a
 * crash (a BatchGet per 100, an auction read each) outran the timeout, so no run reported anything
 * (watch44-bounded-run).
 */
export const WATCH_BUDGET_MS = 240_000;

/**
 * How old a cycle's reads may be for the watch to report a 0 from them (review44b-watch-cycle-gauge): a cycle begun
 * longer ago (its runs too slow for the open set, or its cursor writes failing so each run reads the same tail) has
 * parts last read that long ago, and reports only the overdue ones it found, so the watch pages as stopped.
 */
export const CYCLE_REPORTED_WITHIN_MS = 3_600_000;

/**
 * Whether a running auction's step is stalled at `nowMs`: due more than STEP_STALL_MARGIN_MS ago and not taken (a
 * taken step moves `step` and `stepDueAtMs` on). No message will run it: its planned one was lost (a slow commit
 * whose delivery died before its resend, a purge, a dead letter SQS deleted). A record of an earlier version, with
 * no due time, is left to the overdue report.
 */
export const auctionStalled = <A extends Pick<AuctionRecord, 'state' | 'stepDueAtMs'>>(
  auction: A,
  nowMs: number,
): auction is A & { readonly stepDueAtMs: number } =>
  auction.state === 'RUNNING' &&
  auction.stepDueAtMs !== undefined &&
  nowMs > auction.stepDueAtMs + STEP_STALL_MARGIN_MS;

/** What the watch needs to send a stalled auction's step again (absent: it only reports, as the CLI's listing). */
export interface StalledAuctionResend {
  readonly auctions: Pick<AuctionRepository, 'get' | 'claimStepResend' | 'giveBackStepResend'>;
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

/** Where a cycle of runs stands after this run (with `resume`). */
export interface WatchCycle {
  /** When the cycle's first run began. */
  readonly startedAtMs: number;
  /** Judged and overdue by the cycle's stored runs and this one: the whole cycle's once `complete`. */
  readonly judged: number;
  readonly overdue: number;
  /** This run stored where the next resumes (false: it failed, or another run's cursor was stored first). */
  readonly cursorSaved: boolean;
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
  /**
   * Read to the listing's end; false: the budget ran out first (`judged` and `overdue` are of a part). With
   * `resume`, the end of a cycle of runs that read the whole listing between them.
   */
  readonly complete: boolean;
  readonly cycle?: WatchCycle;
  /**
   * With `young`: the open liquidations too young to judge (started less than OVERDUE_SLACK_MS ago), and when the
   * first of them is judged (its start plus OVERDUE_SLACK_MS). `more`: counted up to YOUNG_COUNTED_MAX, more may be
   * open (`open` is at least, and the first is judged at `firstJudgedAtMs` at the latest).
   */
  readonly young?: { readonly open: number; readonly more: boolean; readonly firstJudgedAtMs?: number };
}

/** The stored cursor a run resumes from and stores, and the run's name (stored with its cursor). */
export interface WatchResume {
  readonly cursors: Pick<LiquidationRepository, 'watchCursor' | 'saveWatchCursor'>;
  readonly runId: string;
}

/** A run's time budget: reading stops once `nowMs()` reaches `untilMs`. */
export interface WatchBudget {
  readonly untilMs: number;
  readonly nowMs: () => number;
}

/**
 * Reads the open liquidations started at least OVERDUE_SLACK_MS ago (an index, not a scan of the table) and
 * reports those past overdueAtMs: `LiquidationsOverdue` (a gauge, 0 when healthy, alarmed) and the longest overdue.
 * A purged queue, a message lost to a fault no retry covered or a bug leaves a liquidation no message will move;
 * nothing else would notice it. A message of `{ liquidationId }` resumes any of them (the consumer is idempotent and
 * resumes from the record: `backstop liquidations overdue --resend`).
 * With `resend`, it also heals a running auction whose step is stalled (auctionStalled): it sends that step's
 * message again, due when the step was, RESEND_DELAY_SECONDS away (a twin of a message still alive finds its step
 * taken and ends); the delivery that takes the step with it, within RESEND_COUNTED_WITHIN_MS of the resend's due time,
 * counts it in `AuctionStepsResent` (alarmed: a lost step message is a fault to look into). A step is sent again at
 * most once per RESEND_AGAIN_AFTER_MS (claimStepResend, a conditional write on the auction). To see them, it reads the open
 * liquidations started at least STEP_STALL_MARGIN_MS ago (a step is due after its auction's start), and each one
 * in AUCTION's auction. Not while the market's mark is stale: the step's own message waits for a fresh tick then,
 * and a resend every run would only add a twin waiting beside it; the first watch run after the feed is back
 * resends it if it is still stalled. With `budget`, it stops reading once the budget is spent (after its first page:
 * each run moves on) and reports the part it judged (`complete` false; no gauge of 0 for it). With `resume`, it reads
 * on from the cursor the last stored run stored and stores where it stopped, so runs cut short read the listing in
 * turn, each part once a cycle (watch44b-cursor); the gauge: overdueGauge.
 */
export async function watchLiquidations(
  liquidations: Pick<LiquidationRepository, 'openStartedBefore'>,
  config: RiskConfig,
  nowMs: number,
  telemetry: Telemetry,
  sampleSize = 20,
  options: {
    readonly all?: boolean;
    readonly resend?: StalledAuctionResend;
    readonly budget?: WatchBudget;
    readonly resume?: WatchResume;
    /** Count the open liquidations too young to judge as well (an operator's `overdue`: ux45-overdue-none-judged). */
    readonly young?: boolean;
  } = {},
): Promise<WatchReport> {
  let judged = 0;
  const young = { open: 0, more: false, firstStartMs: Number.MAX_SAFE_INTEGER };
  let resent = 0;
  let complete = true;
  const overdue: OverdueLiquidation[] = [];
  // `all` (an operator who knows messages were lost): every open liquidation, however young, oldest first.
  // (The functions' clocks stamp the starts: `all` takes any time, not this clock's now.)
  const judgedBefore = options.all ? Number.MAX_SAFE_INTEGER : nowMs - OVERDUE_SLACK_MS;
  const before = options.resend ? Math.max(judgedBefore, nowMs - STEP_STALL_MARGIN_MS) : judgedBefore;
  // Per market, once a run: the 16 reads in flight share one market read.
  const freshMarks = new Map<string, Promise<boolean>>();
  const stored = options.resume ? await storedCursor(options.resume, telemetry) : undefined;
  let stoppedAt: OpenListingPosition | undefined;
  for await (const page of liquidations.openStartedBefore(before, stored?.cursor?.from)) {
    // Never before the first page: a run that reads none would leave its cursor, and the next the same.
    if (stoppedAt && options.budget && options.budget.nowMs() >= options.budget.untilMs) {
      complete = false;
      break;
    }
    stoppedAt = page.next;
    if (options.resend)
      resent += await resendStalledOf(page.records, options.resend, config, nowMs, telemetry, freshMarks);
    for (const l of page.records) {
      const startedMs = liquidationStartedAtMs(l);
      if (startedMs >= judgedBefore) {
        young.open += 1;
        young.firstStartMs = Math.min(young.firstStartMs, startedMs);
        continue;
      }
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
  if (options.young && before < Number.MAX_SAFE_INTEGER) await countYoung(liquidations, before, young);
  const order = options.all
    ? (l: OverdueLiquidation) => l.startedAtMs
    : (l: OverdueLiquidation) => l.overdueSinceMs;
  overdue.sort((a, b) => order(a) - order(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (!complete)
    telemetry.warn('liquidation-watch ran out of time: it judged only part of the open liquidations', {
      judged,
      overdue: overdue.length,
    });
  const cycle =
    options.resume && stored
      ? await storeCycle(options.resume, stored, { judged, overdue: overdue.length }, nowMs, {
          resumeFrom: complete ? undefined : stoppedAt,
          telemetry,
        })
      : undefined;
  const gauge = options.all
    ? undefined
    : overdueGauge(overdue.length, complete, cycle, stored?.cursor?.lastCycleOverdue, nowMs);
  if (gauge !== undefined) telemetry.observe(METRICS.LiquidationsOverdue.name, gauge);
  return {
    judged,
    overdue: overdue.length,
    sample: overdue.slice(0, sampleSize),
    resent,
    complete,
    ...(cycle ? { cycle } : {}),
    ...(options.young
      ? {
          young: {
            open: young.open,
            more: young.more,
            ...(young.open > 0 ? { firstJudgedAtMs: young.firstStartMs + OVERDUE_SLACK_MS } : {}),
          },
        }
      : {}),
  };
}

/**
 * How many of the open liquidations too young to judge `young`'s count reads beyond the judged ones: after a crash
 * tens of thousands are, and the command's reads grew with them all (ux45-young-read-bounded).
 */
export const YOUNG_COUNTED_MAX = 1_000;

/**
 * Adds to `young` the open liquidations started at or after `fromMs` (the index's range, none judged read again), a
 * page at a time up to YOUNG_COUNTED_MAX; a page beyond it is not read, and `more` says so.
 */
async function countYoung(
  liquidations: Pick<LiquidationRepository, 'openStartedBefore'>,
  fromMs: number,
  young: { open: number; more: boolean; firstStartMs: number },
): Promise<void> {
  let counted = 0;
  for await (const page of liquidations.openStartedBefore(Number.MAX_SAFE_INTEGER, undefined, fromMs)) {
    if (counted >= YOUNG_COUNTED_MAX) {
      young.more = true;
      return;
    }
    for (const l of page.records) {
      const startedMs = liquidationStartedAtMs(l);
      counted += 1;
      young.open += 1;
      young.firstStartMs = Math.min(young.firstStartMs, startedMs);
    }
  }
}

/**
 * What a run reports as LiquidationsOverdue; undefined: nothing, and 15 minutes (three runs) of nothing pages as a
 * stopped watch. A 0 only from reads that cover every open liquidation: a run's whole read, or a cycle's begun within
 * CYCLE_REPORTED_WITHIN_MS, at its end, or mid-cycle (its cursor stored: it moves on) with the last ended cycle's
 * count for the part not read yet, so a healthy backlog of four runs or more is no stopped watch and an overdue one a
 * cycle found stays reported until a cycle ends without it (review44b-watch-cycle-gauge). Otherwise, what the cycle
 * found overdue so far, when above 0: an overdue one found by an earlier run is not forgotten.
 */
function overdueGauge(
  found: number,
  complete: boolean,
  cycle: WatchCycle | undefined,
  lastCycleOverdue: number | undefined,
  nowMs: number,
): number | undefined {
  if (!cycle) return complete || found > 0 ? found : undefined;
  const recent = nowMs - cycle.startedAtMs <= CYCLE_REPORTED_WITHIN_MS;
  if (recent && complete) return cycle.overdue;
  if (recent && cycle.cursorSaved && lastCycleOverdue !== undefined)
    return Math.max(lastCycleOverdue, cycle.overdue);
  return cycle.overdue > 0 ? cycle.overdue : undefined;
}

/**
 * The cursor a run resumes from: `cursor` undefined, none stored (a first run). Not `readable`: the run reads from the
 * listing's start and stores nothing over what it could not read.
 */
interface StoredCursor {
  readonly cursor: WatchCursor | undefined;
  readonly readable: boolean;
}

async function storedCursor(resume: WatchResume, telemetry: Telemetry): Promise<StoredCursor> {
  try {
    return { cursor: await resume.cursors.watchCursor(), readable: true };
  } catch (error) {
    telemetry.warn('liquidation-watch could not read its cursor: this run reads from the start', {
      error: String(error),
    });
    return { cursor: undefined, readable: false };
  }
}

/**
 * Stores where the next run resumes (`resumeFrom`, after this run's last page) and what the cycle found so far; none
 * (the listing read to its end): the cycle's end, and the next run begins another at the start. One write,
 * conditional on the cursor this run read: of two runs that read the same one, only the first to store moves it on,
 * so the stored cursors follow one another and each part is counted once a cycle.
 */
async function storeCycle(
  resume: WatchResume,
  stored: StoredCursor,
  found: { readonly judged: number; readonly overdue: number },
  nowMs: number,
  end: { readonly resumeFrom: OpenListingPosition | undefined; readonly telemetry: Telemetry },
): Promise<WatchCycle> {
  // A cursor with no position begins a cycle: its counts are not read (the last cycle's is lastCycleOverdue).
  const carried = stored.cursor?.from ? stored.cursor : undefined;
  const cycle = {
    startedAtMs: carried?.cycleStartedAtMs ?? nowMs,
    judged: (carried?.judged ?? 0) + found.judged,
    overdue: (carried?.overdue ?? 0) + found.overdue,
  };
  if (!stored.readable) return { ...cycle, cursorSaved: false };
  // The last ended cycle's count, for the next runs' reports mid-cycle: only a cycle whose reads are recent vouches.
  const lastCycleOverdue = end.resumeFrom
    ? stored.cursor?.lastCycleOverdue
    : nowMs - cycle.startedAtMs <= CYCLE_REPORTED_WITHIN_MS
      ? cycle.overdue
      : undefined;
  const next: WatchCursorState = {
    ...(end.resumeFrom
      ? {
          cycleStartedAtMs: cycle.startedAtMs,
          judged: cycle.judged,
          overdue: cycle.overdue,
          from: end.resumeFrom,
        }
      : { cycleStartedAtMs: nowMs, judged: 0, overdue: 0 }),
    ...(lastCycleOverdue === undefined ? {} : { lastCycleOverdue }),
  };
  let cursorSaved = false;
  try {
    cursorSaved = await resume.cursors.saveWatchCursor(next, stored.cursor?.version, resume.runId);
    if (!cursorSaved)
      end.telemetry.info('liquidation-watch: another run stored its cursor first; this run leaves it', {
        runId: resume.runId,
      });
  } catch (error) {
    end.telemetry.warn('liquidation-watch could not store its cursor: the next run reads this part again', {
      error: String(error),
    });
  }
  return { ...cycle, cursorSaved };
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
  let sent = 0;
  await eachInFlight(inAuction, RESEND_READS_IN_FLIGHT, async (l) => {
    try {
      if (await resendStalled(auctionIdOf(l.id), deps, config, nowMs, telemetry, freshMarks)) sent += 1;
    } catch (error) {
      // The overdue report still runs. Counted (alarmed): the step's own message is lost, and only a later run heals it.
      telemetry.count(METRICS.AuctionStepResendFailures.name, 1, { Market: l.symbol });
      telemetry.warn('stalled auction step not sent again', { liquidationId: l.id, error: String(error) });
    }
  });
  return sent;
}

/** Its current step was sent again after `sinceMs` (a claim, as claimStepResend's). */
const resentSince = (auction: AuctionRecord, sinceMs: number): boolean =>
  auction.stepResent !== undefined &&
  auction.stepResent.step === auction.step &&
  auction.stepResent.atMs > sinceMs;

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
  if (!auction || !auctionStalled(auction, nowMs)) return false;
  if (resentSince(auction, nowMs - RESEND_AGAIN_AFTER_MS)) return false;
  let fresh = freshMarks.get(auction.symbol);
  if (fresh === undefined) {
    const market = config.markets.find((m) => m.symbol === auction.symbol);
    fresh = latestMark(deps.markets, auction.symbol, auction.top, nowMs).then(
      (mark) => market !== undefined && !markIsStale(mark.atMs, nowMs, market),
    );
    // A failed read is not kept: the market's next auction reads it again.
    fresh.catch(() => freshMarks.delete(auction.symbol));
    freshMarks.set(auction.symbol, fresh);
  }
  if (!(await fresh)) return false;
  // One claim per step an interval, a conditional write: a run racing this one, or a retry, sends no twin.
  const lastBeforeMs = Math.max(0, nowMs - RESEND_AGAIN_AFTER_MS);
  const claimer = await deps.auctions.claimStepResend(auction.id, auction.step, nowMs, lastBeforeMs);
  if (claimer === undefined) return false;
  // Due when the step was: the step prices as then (onTimeCurve) and reports its lateness (alarmed). Counted in
  // AuctionStepsResent (alarmed) by the delivery that takes the step with it (review43e-feed-back-resend).
  const message = { ...stepMessageOf(auction, auction.stepDueAtMs), resent: true };
  try {
    await deps.auctionQueue.send(encodeMessage(message), RESEND_DELAY_SECONDS);
  } catch (error) {
    // Given back (as if sent at 0): the next run sends it. This run's own claim only (its token): another's stored
    // since stands, and its resend (watch46-give-back-own). A claim kept by a failed give-back waits the interval.
    await deps.auctions.giveBackStepResend(auction.id, claimer).then(
      (given) => {
        if (!given)
          telemetry.info("resend claim not given back: the claim stored is no longer this run's", {
            auctionId: auction.id,
            step: auction.step,
          });
      },
      (giveBack: unknown) => {
        telemetry.warn('resend claim not given back: the next run waits the interval to send the step', {
          auctionId: auction.id,
          reason: giveBack instanceof Error ? giveBack.message : String(giveBack),
        });
      },
    );
    throw error;
  }
  telemetry.info('auction step stalled: sent again', {
    auctionId: auction.id,
    liquidationId: auction.liquidationId,
    symbol: auction.symbol,
    step: auction.step,
    stepDueAt: new Date(auction.stepDueAtMs).toISOString(),
  });
  return true;
}

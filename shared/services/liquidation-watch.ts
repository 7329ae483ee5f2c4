import { DEFAULT_VENUE_CHECK_HOLD_SECONDS, type RiskConfig } from '../domain/config.ts';
import { METRICS } from '../metrics.ts';
import {
  type LiquidationRecord,
  type LiquidationRepository,
  liquidationStartedAtMs,
  type Telemetry,
} from '../ports/index.ts';
import { LAST_RESORT_MAX_WAIT_MS, lastResortWaitingSince } from './liquidation.ts';

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
}

/**
 * Reads the open liquidations started at least OVERDUE_SLACK_MS ago (an index, not a scan of the table) and
 * reports those past overdueAtMs: `LiquidationsOverdue` (a gauge, 0 when healthy, alarmed) and the longest overdue.
 * A purged queue, a message lost to a fault no retry covered or a bug leaves a liquidation no message will move;
 * nothing else would notice it. A message of `{ liquidationId }` resumes any of them (the consumer is idempotent and
 * resumes from the record: `backstop liquidations overdue --resend`).
 */
export async function watchLiquidations(
  liquidations: Pick<LiquidationRepository, 'openStartedBefore'>,
  config: RiskConfig,
  nowMs: number,
  telemetry: Telemetry,
  sampleSize = 20,
  options: { readonly all?: boolean } = {},
): Promise<WatchReport> {
  let judged = 0;
  const overdue: OverdueLiquidation[] = [];
  // `all` (an operator who knows messages were lost): every open liquidation, however young, oldest first.
  // (The functions' clocks stamp the starts: `all` takes any time, not this clock's now.)
  const before = options.all ? Number.MAX_SAFE_INTEGER : nowMs - OVERDUE_SLACK_MS;
  for await (const page of liquidations.openStartedBefore(before)) {
    for (const l of page) {
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
  return { judged, overdue: overdue.length, sample: overdue.slice(0, sampleSize) };
}

import { randomUUID } from 'node:crypto';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { lambdaHandler, log } from '../../shared/lambda/runtime.ts';
import { wiring } from '../../shared/lambda/wiring.ts';
import { gaugeDeadLetters } from '../../shared/services/dead-letter-gauge.ts';
import { WATCH_BUDGET_MS, watchLiquidations } from '../../shared/services/liquidation-watch.ts';

/**
 * Scheduled: finds the open liquidations no message is moving (past the longest their state may stay quiet) and
 * reports them (`LiquidationsOverdue`, alarmed; the longest overdue in the log): an operator resumes them with
 * `backstop liquidations overdue --resend` once the cause is known. One fault it heals itself: a running auction
 * whose step message was lost gets it again (`AuctionStepsResent`, alarmed, counted by the delivery it takes the
 * step in; a twin is harmless). A run reads for WATCH_BUDGET_MS at most, from where the last stopped (its cursor).
 * First, what each dead-letter queue holds (`DeadLetters`, read by the dead-letter alarms: dlq45-depth-gauge): a
 * queue it cannot read is counted and logged, never thrown, so the rest of the run goes on whatever it finds.
 */
export async function watch() {
  const { adapters, telemetry, config, deadLetters } = wiring();
  const dead = await gaugeDeadLetters(deadLetters(), telemetry);
  const nowMs = systemClock.nowMs();
  const report = await watchLiquidations(adapters.liquidations, config, nowMs, telemetry, 20, {
    resend: { auctions: adapters.auctions, markets: adapters.markets, auctionQueue: adapters.auctionQueue },
    // Under the function's timeout: a run too short for every open liquidation reports the part it read.
    budget: { untilMs: nowMs + WATCH_BUDGET_MS, nowMs: () => systemClock.nowMs() },
    // And the next run reads on from where it stopped (watch44b-cursor).
    resume: { cursors: adapters.liquidations, runId: randomUUID() },
  });
  const summary = {
    deadLetters: dead.held,
    ...(dead.unread.length > 0 ? { deadLettersUnread: dead.unread } : {}),
    judged: report.judged,
    complete: report.complete,
    ...(report.cycle
      ? {
          cycle: {
            startedAt: new Date(report.cycle.startedAtMs).toISOString(),
            judged: report.cycle.judged,
            overdue: report.cycle.overdue,
            cursorSaved: report.cycle.cursorSaved,
          },
        }
      : {}),
    auctionStepsResent: report.resent,
    overdue: report.overdue,
    longestOverdue: report.sample.map((l) => ({
      ...l,
      overdueSince: new Date(l.overdueSinceMs).toISOString(),
    })),
  };
  if (report.overdue === 0) log.info('no liquidation overdue', summary);
  else log.warn('liquidations overdue: no message is moving them', summary);
  return summary;
}

export const handler = lambdaHandler(watch);

import { z } from 'zod';
import { formatQuote } from '../../shared/domain/units.ts';
import { lambdaHandler, log } from '../../shared/lambda/runtime.ts';
import { wiring } from '../../shared/lambda/wiring.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';

/** Entries one run audits at most: 100 pages, well within the 5-minute timeout; the next run goes on. */
const ENTRIES_PER_RUN = 100_000;

/**
 * The schedule's event, or an operator's `{"full": true}`: begin the audit again from the journal's first entry
 * (the checkpoint is replaced; the scheduled runs finish what one run's budget leaves).
 */
const ReconcileRequest = z.looseObject({ full: z.boolean().optional() });

/**
 * Scheduled: checks the insurance fund's journal from the last run's checkpoint (a page at a time, so its cost
 * follows the entries written since, not the journal's size) and the balance against the journal's sum; any
 * difference or broken entry raises its alarm metric.
 */
export async function reconcile(event: unknown) {
  const request = ReconcileRequest.safeParse(event ?? {});
  if (!request.success) throw new Error(`reconcile/invalid-request: ${request.error.message}`);
  const { adapters, telemetry, config } = wiring();
  const report = await reconcileAccount(adapters.ledger, INSURANCE_ACCOUNT, telemetry, {
    from: request.data.full ? 'start' : 'checkpoint',
    saveCheckpoint: true,
    maxEntries: ENTRIES_PER_RUN,
    drawCap: {
      cap: config.insurance.drawCapPerWindow,
      windowSeconds: config.insurance.windowSeconds,
      nowMs: Date.now(),
    },
  });
  const summary = {
    account: report.account,
    balance: formatQuote(report.balance),
    journalSum: formatQuote(report.journalSum),
    difference: report.difference === undefined ? null : formatQuote(report.difference),
    auditedThrough: report.auditedThrough,
    entries: report.entries,
    backlog: report.backlog,
    minBalance: formatQuote(report.minBalance),
    problemCount: report.problemCount,
    problems: report.problems,
    reconciled: report.difference === 0n && report.problemCount === 0,
  };
  if (summary.reconciled) log.info('ledger reconciled', summary);
  else log.warn('ledger not reconciled', summary);
  return summary;
}

export const handler = lambdaHandler(reconcile);

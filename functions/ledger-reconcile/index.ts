import { z } from 'zod';
import { NewerWriterError } from '../../shared/adapters/aws/writer-schema.ts';
import { adviceTargetFromEnv, withTargetFlags } from '../../shared/advice.ts';
import { formatQuote } from '../../shared/domain/units.ts';
import { lambdaHandler, log } from '../../shared/lambda/runtime.ts';
import { wiring } from '../../shared/lambda/wiring.ts';
import type { Ledger } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { type JournalReader, reconcileAccount } from '../../shared/services/reconcile.ts';

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
  const report = await reconcileAccount(
    leavingNewerCheckpoint(adapters.ledger),
    INSURANCE_ACCOUNT,
    telemetry,
    {
      from: request.data.full ? 'start' : 'checkpoint',
      saveCheckpoint: true,
      maxEntries: ENTRIES_PER_RUN,
      advice: withStackFlags,
      drawCap: {
        cap: config.insurance.drawCapPerWindow,
        windowSeconds: config.insurance.windowSeconds,
        nowMs: Date.now(),
      },
    },
  );
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
    // Of problemCount, entries the chart of accounts refuses (a kind it does not name, a sign against its kind): they
    // page (LedgerJournalAlarm) and refuse no withdrawal (books51-kind-not-charted).
    chartProblems: report.chartProblems,
    problems: report.problems,
    // As a withdrawal's check judges the fund: `not-indexed` is a journal to index (its problem names the command).
    verdict: report.verdict.reconciled ? 'reconciled' : report.verdict.reason,
    reconciled: report.verdict.reconciled,
  };
  if (!summary.reconciled) log.warn('ledger not reconciled', summary);
  else if (summary.chartProblems > 0)
    log.warn("ledger reconciled; journal entries the fund's chart of accounts refuses", summary);
  else log.info('ledger reconciled', summary);
  return summary;
}

/**
 * A problem's command (an unindexed journal's `backstop fund index-journal`) as the on-call pastes it: with this stack's
 * target flags, from the function's own environment (ops47-reconcile-advice: it named the bare command, which runs
 * against the default target, local). The flags in words when the environment does not name the stage.
 */
function withStackFlags(problem: string): string {
  const target = adviceTargetFromEnv(process.env);
  if (target) return withTargetFlags(problem, target);
  return problem.replace(
    /`backstop [^`]+`/g,
    (command) => `${command} (with the stack's flags: --target aws --stage <stage> --region <region>)`,
  );
}

/**
 * The ledger, but a checkpoint a newer Backstop stored is left as it stands, with a warning: during a rolling deploy
 * an old scheduled run overlaps a new one, whose runs carry the audit on (small44-reconcile-newer-checkpoint). This
 * run's audit is still reported; a failed run would count a Lambda error, which pages.
 */
function leavingNewerCheckpoint(ledger: Ledger): JournalReader {
  return {
    balance: (account) => ledger.balance(account),
    journalAfter: (account, after, limit) => ledger.journalAfter(account, after, limit),
    unindexedEntries: (account, maxRead) => ledger.unindexedEntries(account, maxRead),
    entriesOf: (account, reference) => ledger.entriesOf(account, reference),
    auditCheckpoint: (account) => ledger.auditCheckpoint(account),
    saveAuditCheckpoint: async (account, audit, from) => {
      try {
        await ledger.saveAuditCheckpoint(account, audit, from);
      } catch (error) {
        if (!(error instanceof NewerWriterError)) throw error;
        log.warn('a newer Backstop wrote the audit checkpoint; left to it, whose next run reconciles on', {
          reason: error.message,
          auditedThrough: audit.sequence,
        });
      }
    },
  };
}

export const handler = lambdaHandler(reconcile);

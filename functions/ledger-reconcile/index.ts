import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { formatQuote } from '../../shared/domain/units.ts';
import { logger, metrics, tracer } from '../../shared/lambda/runtime.ts';
import { wiring } from '../../shared/lambda/wiring.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';

/** Scheduled: recomputes the insurance fund's balance from its journal; any difference raises the alarm metric. */
export async function reconcile() {
  const { adapters, telemetry } = wiring();
  const report = await reconcileAccount(adapters.ledger, INSURANCE_ACCOUNT, telemetry);
  const summary = {
    account: report.account,
    balance: formatQuote(report.balance),
    journalSum: formatQuote(report.journalSum),
    difference: formatQuote(report.difference),
    entries: report.entries,
    minBalance: formatQuote(report.minBalance),
    problems: report.problems,
    reconciled: report.difference === 0n && report.problems.length === 0,
  };
  logger.info('ledger reconciled', summary);
  return summary;
}

export const handler = middy(reconcile)
  .use(captureLambdaHandler(tracer))
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics));

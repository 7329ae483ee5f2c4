import type { Context } from 'aws-lambda';
import { formatQuote } from '../../shared/domain/units.ts';
import { lambdaHandler, log } from '../../shared/lambda/runtime.ts';
import { wiring } from '../../shared/lambda/wiring.ts';
import { METRICS } from '../../shared/metrics.ts';
import { ADMIN_ACTIONS, handleAdmin } from '../../shared/services/admin.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';

/**
 * IAM-only administration (no URL, no public trigger): fund deposits and withdrawals, provider registration,
 * position seeding. Refusals come back as { ok: false, reason } and change nothing; logs carry the action and
 * the outcome (a refusal's code), never the whole request. A deposit or withdrawal answers the fund's balance now
 * (`balance`), its journal entry's (`sequence`, `balanceAfter`) and whether its key was applied before
 * (`alreadyApplied`: then nothing moved now). Each movement is journaled with this invocation's request id and the
 * request's `operator` as declared (unverified).
 */
export async function admin(event: unknown, context?: Pick<Context, 'awsRequestId'>) {
  const { adapters, config, telemetry } = wiring();
  const result = await handleAdmin(event, {
    ...adapters,
    config,
    telemetry,
    nowMs: () => adapters.clock.nowMs(),
    // Lambda names no caller; its request id is what CloudTrail's Invoke data event records with the caller.
    ...(context?.awsRequestId ? { invocationId: context.awsRequestId } : {}),
  });
  // Only an action it knows: the caller's value is not logged (any size, and `{"toString": 1}` made String() throw).
  const asked = typeof event === 'object' && event !== null && 'action' in event ? event.action : undefined;
  const action = typeof asked === 'string' && ADMIN_ACTIONS.includes(asked) ? asked : 'unknown';
  // The refusal's code: its reason may describe records to the caller (a taken id's position and owner).
  const refusal = result.ok ? {} : { reason: result.reason.split(':')[0] };
  log.info('admin request', { action, ok: result.ok, ...refusal });
  if (result.ok && result.entry) {
    // A key applied before answers with its first entry, whose balance is not the balance now (an audit, session
    // 36: the answer said nothing of it and the gauge went back to that old balance).
    const applied = result.alreadyApplied === true;
    const balance = applied
      ? (await adapters.ledger.balance(INSURANCE_ACCOUNT)).balance
      : result.entry.balanceAfter;
    // A deposit or withdrawal moves the fund now: its gauge (and the fund-low alarm) need not wait for a reconcile.
    telemetry.observe(METRICS.InsuranceFundBalance.name, Number(formatQuote(balance)));
    return {
      ok: true,
      alreadyApplied: applied,
      balance: formatQuote(balance),
      balanceAfter: formatQuote(result.entry.balanceAfter),
      sequence: result.entry.sequence,
    };
  }
  return result;
}

export const handler = lambdaHandler(admin);

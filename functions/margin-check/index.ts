import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { EventBridgeSchema } from '@aws-lambda-powertools/parser/schemas/eventbridge';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { z } from 'zod';
import {
  log,
  logger,
  logIfTimingOut,
  MIDDY_OPTIONS,
  publishMetrics,
  tracer,
  withInvocationLogKeys,
} from '../../shared/lambda/runtime.ts';
import { wiring } from '../../shared/lambda/wiring.ts';
import { METRICS } from '../../shared/metrics.ts';
import { parseTickDetail } from '../../shared/schemas/tick.ts';
import { handleTick, type TickOutcome } from '../../shared/services/margin-check.ts';
import { TICK_BUS } from '../../shared/topology.ts';

type TickEvent = z.infer<typeof EventBridgeSchema>;

/**
 * EventBridge PriceTick -> margin check. A malformed or refused tick is acknowledged with its reason (a retry
 * would not make it valid); an infrastructure failure throws, so EventBridge retries and then dead-letters it.
 */
export async function marginCheck(
  event: TickEvent,
  context?: { readonly getRemainingTimeInMillis?: () => number },
): Promise<TickOutcome> {
  const { adapters, config, telemetry, maxPositionsPerInvocation, marketStates } = wiring();
  const continuation = event['detail-type'] === TICK_BUS.continuationDetailType;
  const parsed = parseTickDetail(event.detail, continuation);
  if (!parsed.ok) {
    telemetry.count(METRICS.TicksRejected.name, 1, {
      Reason: parsed.reason.split(':')[0] ?? 'tick/malformed',
    });
    log.warn('tick rejected', { reason: parsed.reason });
    return { status: 'rejected', reason: parsed.reason, detail: 'malformed' };
  }
  const { symbol, sequence } = parsed.tick;
  const tickKeys = { symbol, sequence, segment: parsed.segment, eventId: event.id };
  const stopWatching = logIfTimingOut(
    context,
    'tick running out of time; if it times out, EventBridge retries it, then dead-letters it',
    tickKeys,
  );
  try {
    const outcome = await handleTick(
      parsed.tick,
      { ...adapters, config, telemetry, maxPositionsPerInvocation, marketStates },
      adapters.clock.nowMs(),
      parsed.segment,
    );
    if (outcome.status === 'accepted' && outcome.needsContinuation) {
      // Put only after every message of this invocation was sent: the next segment need not re-send them.
      const { segment: _, ...tickDetail } = event.detail as Record<string, unknown>;
      const next = parsed.segment === 'unknown' ? {} : { segment: parsed.segment + 1 };
      await wiring().putContinuation({ ...tickDetail, ...next });
    }
    log.info('tick handled', { symbol, sequence, ...outcome });
    return outcome;
  } catch (error) {
    // Lambda's own error line names no tick: the operator paged by the errors or tick-DLQ alarm needs it.
    log.error('tick failed; EventBridge retries it, then dead-letters it', {
      ...tickKeys,
      error: error as Error,
    });
    throw error;
  } finally {
    stopWatching();
  }
}

export const handler = withInvocationLogKeys(
  middy(marginCheck, MIDDY_OPTIONS)
    .use(captureLambdaHandler(tracer))
    .use(injectLambdaContext(logger))
    // Not Powertools' logMetrics: it leaves the per-market metrics unpublished (publishMetrics).
    .use(publishMetrics(undefined, { coldStart: true }))
    .use(parser({ schema: EventBridgeSchema })),
);

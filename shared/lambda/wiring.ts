import { clientConfigFromEnv } from '../adapters/aws/clients.ts';
import {
  type AwsClients,
  adapterNamesFromEnv,
  createAwsAdapters,
  createAwsClients,
  positionLayoutFromEnv,
  SqsQueueTransport,
} from '../adapters/aws/index.ts';
import { systemClock } from '../adapters/embedded/clock.ts';
import { createVenue } from '../adapters/venue/index.ts';
import type { RiskConfig } from '../domain/config.ts';
import { attempts, type PutOptions, putEntries } from '../feed/publisher.ts';
import type { Adapters, MarketState, Telemetry } from '../ports/index.ts';
import { AdlSnapshots } from '../services/adl-snapshots.ts';
import { INSURANCE_ACCOUNT, jitteredBackoff, type SettlementDeps } from '../services/context.ts';
import type { DeadLetterQueues } from '../services/dead-letter-gauge.ts';
import { deadLetteredQueues, deadLetterQueueEnv, type QueueId, TICK_BUS, TICK_BUS_ENV } from '../topology.ts';
import {
  maxPositionsFromEnv,
  maxReceivesFromEnv,
  powertoolsTelemetry,
  requireEnv,
  riskConfigFromEnv,
} from './runtime.ts';

export interface LambdaWiring {
  /**
   * Re-emits a tick's detail as a continuation event on the tick bus, through the feed's publisher: an entry the bus
   * throttles is sent again, not the whole tick (`options`: its retry, for tests).
   */
  readonly putContinuation: (detail: unknown, options?: PutOptions) => Promise<void>;
  readonly adapters: Adapters;
  readonly config: RiskConfig;
  readonly telemetry: Telemetry;
  readonly settlement: SettlementDeps;
  /** Positions margin-check starts per invocation. */
  readonly maxPositionsPerInvocation: number;
  /** margin-check's markets as its last accepted ticks wrote them, kept for the container's life. */
  readonly marketStates: Map<string, MarketState>;
  /** Receives before each consumer's queue dead-letters a message (its last failure is not backed off). */
  readonly maxReceives: Readonly<Record<Exclude<QueueId, 'tickDeadLetters'>, number | undefined>>;
  /**
   * The queues that keep the dead letters, by the id of the queue whose they are: liquidation-watch reads their depth,
   * and its environment alone carries their URLs, read at this first call, not at every function's cold start
   * (review45-dlq-watch-env); a queue whose URL is missing fails its own read alone (final45-watch-dlq-env).
   */
  readonly deadLetters: () => DeadLetterQueues;
}

let cached: LambdaWiring | undefined;
let instrument: ((clients: AwsClients) => void) | undefined;

/** Benchmarks: called with the handlers' AWS clients when the wiring is next built (counts their calls). */
export function instrumentAwsClients(hook: ((clients: AwsClients) => void) | undefined): void {
  instrument = hook;
  cached = undefined;
}

/**
 * Builds the AWS adapters from the function's environment once per container (cold start), so a missing
 * variable fails the first invocation loudly instead of a later write. Tests and the local runner pass their own
 * environment and call `resetWiring` between stages.
 */
export function wiring(env: NodeJS.ProcessEnv = process.env): LambdaWiring {
  if (cached) return cached;
  const config = riskConfigFromEnv(env);
  const clients = createAwsClients(clientConfigFromEnv(env));
  instrument?.(clients);
  const adapters = createAwsAdapters({
    clients,
    names: adapterNamesFromEnv(env),
    clock: systemClock,
    positionLayout: positionLayoutFromEnv(env),
  });
  const telemetry = powertoolsTelemetry();
  const settlement: SettlementDeps = {
    ...adapters,
    // The venue named in adapters/venue/index.ts (the simulated book that follows the marks, unless an exchange
    // adapter is named there: docs/VENUE.md).
    venue: createVenue({ markets: adapters.markets, clock: systemClock, env }),
    config,
    telemetry,
    strategy: 'waterfall',
    insuranceAccount: INSURANCE_ACCOUNT,
    venueAttempts: 3,
    // Kept by the container between invocations, like the SDK clients.
    adlSnapshots: new AdlSnapshots(),
    // A batch's records run in parallel, and concurrent auctions clear against the same providers.
    backoff: jitteredBackoff,
  };
  const busName = requireEnv(TICK_BUS_ENV, env);
  const putContinuation = async (detail: unknown, options?: PutOptions) => {
    // Its own PutEvents failed the tick on a throttled entry, which Lambda then retried whole (feed47-continuation-
    // retries). Still failing (refused, or its attempts spent), or of unknown fate, the tick fails and is retried:
    // a continuation put twice is taken once (claimSegment).
    const out = await putEntries(
      clients.events,
      [
        {
          EventBusName: busName,
          Source: TICK_BUS.source,
          DetailType: TICK_BUS.continuationDetailType,
          Detail: JSON.stringify(detail),
        },
      ],
      options,
    );
    const failed = out.rejected[0] ?? out.unknown[0];
    if (failed)
      throw new Error(
        `continuation/put-failed: ${failed.code}${failed.message ? ` (${failed.message})` : ''} after ${attempts(failed.attempts)}`,
      );
  };
  const maxPositionsPerInvocation = maxPositionsFromEnv(env);
  const maxReceives = {
    liquidations: maxReceivesFromEnv('liquidations', env),
    auctionSteps: maxReceivesFromEnv('auctionSteps', env),
  };
  let deadLetterQueues: DeadLetterQueues | undefined;
  const deadLetters = (): DeadLetterQueues => {
    // A URL missing (the watch's new code meeting its previous environment, mid-deploy) fails that queue's read
    // alone, counted as any failed read: the rest of the watch's run goes on (final45-watch-dlq-env).
    deadLetterQueues ??= Object.fromEntries(
      deadLetteredQueues().map((q) => {
        const url = env[deadLetterQueueEnv(q.id)];
        const unset = async (): Promise<never> => {
          throw new Error(`${deadLetterQueueEnv(q.id)} environment variable is not set`);
        };
        return [q.id, url ? new SqsQueueTransport(clients.sqs, { url }) : { depth: unset }];
      }),
    );
    return deadLetterQueues;
  };
  cached = {
    adapters,
    deadLetters,
    config,
    telemetry,
    settlement,
    putContinuation,
    maxPositionsPerInvocation,
    marketStates: new Map(),
    maxReceives,
  };
  return cached;
}

export function resetWiring(): void {
  cached = undefined;
}

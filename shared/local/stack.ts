import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  type AwsClientConfig,
  clientOptions,
  EMULATOR_TIMEOUTS,
  withTimeouts,
} from '../adapters/aws/clients.ts';
import {
  type AwsClients,
  createAwsClients,
  createAwsQueueTransports,
  createLocalResources,
  localClientConfig,
  type ResourceNames,
} from '../adapters/aws/index.ts';
import type { MarketShards } from '../adapters/aws/position-layout.ts';
import { LOCAL_RUNNER_ENV } from '../advice.ts';
import type { RiskConfigInput } from '../domain/config.ts';
import { putEntries } from '../feed/publisher.ts';
import { METRICS_NAMESPACE, metricsService } from '../metrics.ts';
import { createLocalRunner, type LambdaHandler, type LocalRunner } from '../runner/index.ts';
import {
  deadLetterQueueEnv,
  FUNCTIONS,
  type FunctionId,
  localVenueSecretName,
  MAX_POSITIONS_ENV,
  maxReceivesEnv,
  optionalEnvNames,
  POSITION_INDEX_SHARDS_ENV,
  QUEUES,
  queueEnv,
  RISK_CONFIG_ENV,
  TABLES,
  TICK_BUS,
  TICK_BUS_ENV,
  tableEnv,
  VENUE_KEY_ENV,
} from '../topology.ts';

/**
 * The whole stack on a local AWS emulator (moto, or LocalStack without Lambda): resources created from the
 * topology, the project's real handlers invoked by the local runner with Lambda's semantics. Used by
 * `backstop local up` and by the end-to-end tests.
 */

export interface LocalStackOptions {
  readonly endpoint: string;
  readonly stage: string;
  readonly region?: string;
  /**
   * Risk configuration given to the functions, e.g. a fast auction for tests: as RISK_CONFIG's JSON, of any size (a
   * process's environment has no 4 KB limit), since the handlers run from source, with none built in.
   */
  readonly riskConfig?: RiskConfigInput;
  /** Index shards per market (POSITION_INDEX_SHARDS), as `backstop:positionIndexShards` sets them on AWS. */
  readonly positionIndexShards?: Readonly<Record<string, MarketShards>>;
  /** Positions margin-check starts per invocation (MARGIN_CHECK_MAX_POSITIONS), as `backstop:marginCheckMaxPositions`. */
  readonly marginCheckMaxPositions?: number;
  /** Retry failed records at once instead of after the visibility timeout (local convenience). */
  readonly fastRetries?: boolean;
  /** Schedules (ledger-reconcile) on timers; off by default in tests. */
  readonly schedules?: boolean;
  /** Tick invocations at once (default 1, in order); more races a market's ticks as Lambda may. */
  readonly tickConcurrency?: number;
  /**
   * The venue's API key (the secret's string, as an exchange adapter parses it), for an adapter run against its stub
   * or testnet: stored in the emulator's Secrets Manager as localVenueSecretName(stage), which VENUE_KEY_ENV names to
   * the functions, as backstop:venueSecret does on AWS. Absent, the functions are told of no key (the simulated venue
   * reads none).
   */
  readonly venueKey?: string;
  /**
   * Timeouts of its own clients (creating the resources, the runner's polls, putTicks); default EMULATOR_TIMEOUTS, as the
   * functions on an emulator have (clientConfigFromEnv). `local up` gives the CLI's (cliTimeouts: its variables).
   */
  readonly timeouts?: AwsClientConfig['timeouts'];
}

export interface LocalStack {
  readonly names: ResourceNames;
  readonly clients: AwsClients;
  readonly runner: LocalRunner;
  readonly env: Readonly<Record<string, string>>;
  readonly handlers: Readonly<Record<FunctionId, LambdaHandler>>;
  /** Puts PriceTick events on the bus, 10 per call; returns the failed entries' error codes. */
  putTicks(details: readonly unknown[]): Promise<string[]>;
  stop(): Promise<void>;
}

/** The optional settings of a local stack, each as its environment variable. */
type LocalSettings = Pick<
  LocalStackOptions,
  'riskConfig' | 'positionIndexShards' | 'marginCheckMaxPositions'
> & {
  /** The venue key's secret (VENUE_KEY_ENV), as `backstop:venueSecret` names it on AWS. */
  readonly venueSecret?: string;
};

/** The environment each function gets in the CDK stack, for local names. */
export function functionEnvironment(
  stage: string,
  names: ResourceNames,
  endpoint: string,
  region: string,
  settings: LocalSettings = {},
): Record<string, string> {
  const env: Record<string, string> = {
    AWS_REGION: region,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
    [TICK_BUS_ENV]: names.busName,
    POWERTOOLS_SERVICE_NAME: metricsService(stage),
    POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    // The runner is not Lambda: no X-Ray daemon to send traces to.
    POWERTOOLS_TRACE_ENABLED: 'false',
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'WARN',
    // The commands its functions name are for a local stage (adviceTargetFromEnv).
    [LOCAL_RUNNER_ENV]: '1',
  };
  for (const table of TABLES) env[tableEnv(table.id)] = names.tables[table.id];
  for (const queue of QUEUES) {
    env[queueEnv(queue.id)] = names.queues[queue.id].url;
    // The local queues' redrive is the topology's (shared/adapters/aws/resources.ts).
    if (queue.deadLetter) env[maxReceivesEnv(queue.id)] = String(queue.deadLetter.maxReceiveCount);
    // liquidation-watch reads what each holds (DeadLetters: dlq45-depth-gauge). On AWS its environment alone has these
    // (ownEnvironment); the runner's functions share one process and one environment.
    const dlqUrl = names.queues[queue.id].dlqUrl;
    if (queue.deadLetter) {
      if (!dlqUrl) throw new Error(`local stack: ${queue.id} has no dead-letter queue`);
      env[deadLetterQueueEnv(queue.id)] = dlqUrl;
    }
  }
  const { riskConfig, positionIndexShards, marginCheckMaxPositions, venueSecret } = settings;
  if (riskConfig) env[RISK_CONFIG_ENV] = JSON.stringify(riskConfig);
  if (positionIndexShards) env[POSITION_INDEX_SHARDS_ENV] = JSON.stringify(positionIndexShards);
  if (marginCheckMaxPositions !== undefined) env[MAX_POSITIONS_ENV] = String(marginCheckMaxPositions);
  // On AWS the traders' alone (VENUE_TRADERS); the runner's functions share one process and one environment.
  if (venueSecret !== undefined) env[VENUE_KEY_ENV] = venueSecret;
  return env;
}

/**
 * Gives the process `env`, as Lambda gives a function its own: the handlers read their configuration from the
 * process environment, so an optional setting from the shell or an earlier stack must not outlive it.
 */
export function applyFunctionEnvironment(
  env: Readonly<Record<string, string>>,
  target: NodeJS.ProcessEnv = process.env,
): void {
  for (const name of optionalEnvNames()) delete target[name];
  Object.assign(target, env);
}

/**
 * Stores the venue's API key in the emulator's Secrets Manager as localVenueSecretName(stage) (a new value over one an
 * earlier stack of the stage left); returns the name, the functions' VENUE_KEY_ENV.
 */
async function storeVenueKey(config: AwsClientConfig, stage: string, key: string): Promise<string> {
  const name = localVenueSecretName(stage);
  const client = withTimeouts(new SecretsManagerClient(clientOptions(config)), config);
  try {
    await client.send(new CreateSecretCommand({ Name: name, SecretString: key }));
  } catch (error) {
    if ((error as Error).name !== 'ResourceExistsException') throw error;
    await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: key }));
  } finally {
    client.destroy();
  }
  return name;
}

/** Imports every function's handler from functions/<folder>/index.ts (the files the CDK stack bundles). */
export async function loadHandlers(): Promise<Record<FunctionId, LambdaHandler>> {
  const entries = await Promise.all(
    FUNCTIONS.map(async (fn) => {
      const module = (await import(`../../functions/${fn.folder}/index.ts`)) as { handler: LambdaHandler };
      return [fn.id, module.handler] as const;
    }),
  );
  return Object.fromEntries(entries) as Record<FunctionId, LambdaHandler>;
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const region = options.region ?? 'us-east-1';
  const config = localClientConfig(options.endpoint, region, options.timeouts ?? EMULATOR_TIMEOUTS);
  const clients = createAwsClients(config);
  const names = await createLocalResources(clients, options.stage);
  const venueSecret =
    options.venueKey === undefined ? undefined : await storeVenueKey(config, options.stage, options.venueKey);
  const env = functionEnvironment(options.stage, names, options.endpoint, region, {
    ...options,
    ...(venueSecret === undefined ? {} : { venueSecret }),
  });
  applyFunctionEnvironment(env);
  // Loaded once the stage's environment is in place: the handlers' Powertools instances (shared/lambda/runtime.ts)
  // read their service name (metricsService(stage)) when their module loads, as a Lambda's do at cold start.
  const { resetWiring } = await import('../lambda/wiring.ts');
  resetWiring();
  const handlers = await loadHandlers();
  const transports = createAwsQueueTransports(clients, names);
  const runner = createLocalRunner({
    handlers,
    queues: transports.queues,
    tickQueue: transports.tickQueue,
    schedules: options.schedules ?? false,
    stage: options.stage,
    region,
    ...(options.fastRetries ? { failureVisibilitySeconds: 0 } : {}),
    ...(options.tickConcurrency === undefined ? {} : { tickConcurrency: options.tickConcurrency }),
  });
  runner.start();

  async function putTicks(details: readonly unknown[]): Promise<string[]> {
    // Any detail as given (a test's malformed one too), put as the feed's publisher puts it.
    const out = await putEntries(
      clients.events,
      details.map((detail) => ({
        EventBusName: names.busName,
        Source: TICK_BUS.source,
        DetailType: TICK_BUS.detailType,
        Detail: JSON.stringify(detail),
      })),
    );
    return [...out.rejected, ...out.unknown].map((r) => r.code);
  }

  return {
    names,
    clients,
    runner,
    env,
    handlers,
    putTicks,
    stop: async () => {
      await runner.stop();
      resetWiring();
      clients.destroy();
    },
  };
}

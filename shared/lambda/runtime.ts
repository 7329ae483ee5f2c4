import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { ConfigError, DEFAULT_RISK_CONFIG, parseRiskConfig, type RiskConfig } from '../domain/config.ts';
import {
  MARKET_DIMENSION,
  METRICS,
  METRICS_NAMESPACE,
  METRICS_SERVICE,
  type MetricSpec,
} from '../metrics.ts';
import type { Telemetry } from '../ports/index.ts';
import {
  MAX_POSITIONS_ENV,
  maxReceivesEnv,
  QUEUES,
  type QueueId,
  RISK_CONFIG_BUNDLED,
  RISK_CONFIG_ENV,
} from '../topology.ts';

/** The stage's service (metricsService, set by the stack and the local stack); outside a stage, the bare prefix. */
const SERVICE = process.env.POWERTOOLS_SERVICE_NAME || METRICS_SERVICE;

/** Powertools instances shared by every handler of a container (created once, at cold start). */
export const logger = new Logger({ serviceName: SERVICE });
export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE });
export const tracer = new Tracer({ serviceName: SERVICE });

/**
 * Metrics stored by their dimensions. An EMF blob's dimension sets hold for every metric in it, so the data points
 * with dimensions (a Reason, a market) are kept in one blob per distinct dimension values, published with the
 * shared instance's: a record's counts for one market make one line, not one a data point.
 */
export class DimensionedMetrics {
  readonly #groups = new Map<string, { readonly emf: Metrics; readonly market?: string }>();
  readonly #create: () => Metrics;

  constructor(
    create: () => Metrics = () => new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE }),
  ) {
    this.#create = create;
  }

  /**
   * Stores a data point filed under { service, ...dimensions } and, with a market, under that set plus Market too.
   * The dimensions are the blob's defaults, in both sets: as a key of two sets Powertools warns on every publish.
   */
  add(
    dimensions: Readonly<Record<string, string>>,
    market: string | undefined,
    name: string,
    unit: Unit,
    value: number,
  ): void {
    const key = JSON.stringify([dimensions, market]);
    let group = this.#groups.get(key);
    if (!group) {
      const emf = this.#create();
      emf.setDefaultDimensions(dimensions);
      group = market === undefined ? { emf } : { emf, market };
      this.#groups.set(key, group);
    }
    // Powertools clears a blob's dimension sets when it publishes (also by itself, at 100 values of one metric).
    if (group.market !== undefined && !group.emf.hasStoredMetrics()) {
      group.emf.addDimensions({});
      group.emf.addDimensions({ [MARKET_DIMENSION]: group.market });
    }
    group.emf.addMetric(name, unit, value);
  }

  publish(): void {
    for (const { emf } of this.#groups.values()) publishMetricsSoFar(emf, null);
  }
}

/** The dimensioned metrics of the functions (beside `metrics`, published with it). */
export const dimensionedMetrics = new DimensionedMetrics();

/**
 * Publishes the metrics stored so far (one EMF line, and one per dimension sets of dimensioned data points). The
 * consumers call it after each record, so a record's metrics are out even when a later record runs the invocation
 * out of time (stored metrics die with it).
 */
export function publishMetricsSoFar(
  emf: Metrics = metrics,
  dimensioned: DimensionedMetrics | null = dimensionedMetrics,
): void {
  if (emf.hasStoredMetrics()) emf.publishStoredMetrics();
  dimensioned?.publish();
}

/**
 * Processes one record of a batch under its log keys (withRecordKeys), then publishes the metrics stored so far: a
 * later record that runs the invocation out of time would otherwise take this one's with it.
 */
export async function processingRecord<T>(
  keys: Readonly<Record<string, unknown>>,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await withRecordKeys(keys, run);
  } finally {
    publishMetricsSoFar();
  }
}

/**
 * The handlers' metrics middleware: publishes what is left when the invocation ends or fails, and what is stored
 * just before Lambda's deadline (publishMetricsAtDeadline); with `coldStart` (margin-check), Powertools' ColdStart
 * metric first. Powertools' logMetrics publishes its instance only (not the dimensioned metrics) and warns on every
 * invocation with nothing left in it, which per-record publishing makes the consumers' usual case, per-market
 * metrics a tick's, and an admin request's too.
 */
export const publishMetrics = (
  emf: Metrics = metrics,
  options: { readonly coldStart?: boolean; readonly dimensioned?: DimensionedMetrics | null } = {},
) => {
  const dimensioned = options.dimensioned === undefined ? dimensionedMetrics : options.dimensioned;
  const atDeadline = publishMetricsAtDeadline(emf, dimensioned);
  return {
    before: async (request: DeadlineRequest) => {
      if (options.coldStart) emf.captureColdStartMetric(request.context?.functionName);
      await atDeadline.before(request);
    },
    after: async (request: DeadlineRequest) => {
      await atDeadline.after(request);
      publishMetricsSoFar(emf, dimensioned);
    },
    onError: async (request: DeadlineRequest) => {
      await atDeadline.onError(request);
      publishMetricsSoFar(emf, dimensioned);
    },
  };
};

/** What the deadline middlewares read of middy's request. */
interface DeadlineRequest {
  readonly context?: { readonly getRemainingTimeInMillis?: () => number; readonly functionName?: string };
}

/**
 * Publishes the metrics stored so far DEADLINE_WARNING_MS before Lambda's deadline, unless the invocation ends
 * first: Lambda ends an invocation that runs out of time with its stored metrics (middy no longer answers early:
 * MIDDY_OPTIONS; a review in session 36 found the counts of a tick or a record that timed out lost so).
 */
export const publishMetricsAtDeadline = (
  emf: Metrics = metrics,
  dimensioned: DimensionedMetrics | null = dimensionedMetrics,
) => {
  const watches = new WeakMap<DeadlineRequest, () => void>();
  const stop = async (request: DeadlineRequest) => {
    watches.get(request)?.();
    watches.delete(request);
  };
  return {
    before: async (request: DeadlineRequest) => {
      watches.set(
        request,
        beforeDeadline(request.context, () => publishMetricsSoFar(emf, dimensioned)),
      );
    },
    after: stop,
    onError: stop,
  };
};

/**
 * The keys of the record being processed, for every line it logs. A batch's records run concurrently, so keys
 * appended to the shared logger would land on another record's lines.
 */
const recordKeys = new AsyncLocalStorage<Readonly<Record<string, unknown>>>();

/** Runs one record's work with `keys` (its correlation id) on every line logged through `log` or the telemetry. */
export const withRecordKeys = <T>(
  keys: Readonly<Record<string, unknown>>,
  run: () => Promise<T>,
): Promise<T> => recordKeys.run(keys, run);

/**
 * The invocation's own Lambda keys. Powertools keeps the Lambda context on the shared logger, which is right in a
 * container (one invocation at a time) but not in the local runner, which hosts every function in one process:
 * there an invocation's lines carried the name and request id of whichever invocation started last.
 */
const invocationKeys = new AsyncLocalStorage<Readonly<Record<string, unknown>>>();

/** Wraps a function's handler so every line it logs (through `log` or the telemetry) names its own invocation. */
export const withInvocationLogKeys =
  <E, R>(handler: (event: E, context: Context) => Promise<R>) =>
  (event: E, context: Context): Promise<R> =>
    invocationKeys.run(
      {
        function_arn: context.invokedFunctionArn,
        function_memory_size: context.memoryLimitInMB,
        function_name: context.functionName,
        function_request_id: context.awsRequestId,
      },
      () => handler(event, context),
    );

const keyed = (fields?: object): Record<string, unknown> => ({
  ...invocationKeys.getStore(),
  ...recordKeys.getStore(),
  ...fields,
});

/** The shared logger with the current record's keys. */
export const log = {
  info: (message: string, fields?: object): void => logger.info(message, keyed(fields)),
  warn: (message: string, fields?: object): void => logger.warn(message, keyed(fields)),
  error: (message: string, fields?: object): void => logger.error(message, keyed(fields)),
};

/**
 * middy's options for every function: no early timeout. By default middy answers a TimeoutError 5 ms before the
 * deadline, which Lambda takes for an invocation that ended with an error: it keeps the environment, and the work
 * still running in it is frozen, to resume in its next invocation (a venue order placed after its lease ran out;
 * an audit of the handlers, session 36). Lambda's own timeout ends the environment, and the work with it.
 */
export const MIDDY_OPTIONS = { timeoutEarlyInMillis: 0 } as const;

/**
 * The chain every function but margin-check runs (which parses an EventBridge event and counts its cold starts):
 * the invocation's log keys, tracing, the logger's Lambda context, and the metrics published as it ends.
 */
export const lambdaHandler = <E, R>(work: (event: E, context: Context) => Promise<R>) =>
  withInvocationLogKeys<E, R>(
    middy(work, MIDDY_OPTIONS)
      .use(captureLambdaHandler(tracer))
      .use(injectLambdaContext(logger))
      .use(publishMetrics()),
  );

/** How long before Lambda's deadline logIfTimingOut logs. */
export const DEADLINE_WARNING_MS = 50;

/**
 * Logs `message` at ERROR with `fields` when the invocation is DEADLINE_WARNING_MS from Lambda's deadline: the
 * handler's own catch never runs when Lambda ends it, and Lambda's timeout line names nothing of the work. Returns
 * the function that stops watching (call it when the work ends). No context (a local call): nothing to watch.
 */
export function logIfTimingOut(
  context: { readonly getRemainingTimeInMillis?: () => number } | undefined,
  message: string,
  fields: object,
): () => void {
  const keys = keyed(fields); // the invocation's and record's keys of now, whatever runs the timer
  return beforeDeadline(context, () => logger.error(message, keys));
}

/** Runs `onDeadline` DEADLINE_WARNING_MS before Lambda's deadline unless stopped first; without a context, never. */
function beforeDeadline(
  context: { readonly getRemainingTimeInMillis?: () => number } | undefined,
  onDeadline: () => void,
): () => void {
  const remainingMs = context?.getRemainingTimeInMillis?.();
  if (remainingMs === undefined) return () => {};
  const timer = setTimeout(onDeadline, Math.max(0, remainingMs - DEADLINE_WARNING_MS));
  return () => clearTimeout(timer);
}

export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (!value) throw new Error(`${name} environment variable is not set`);
  return value;
}

/** Positions margin-check starts per invocation (MARGIN_CHECK_MAX_POSITIONS, 1-10,000); 500 when unset. */
export function maxPositionsFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[MAX_POSITIONS_ENV];
  if (raw === undefined || raw === '') return DEFAULT_MAX_POSITIONS;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1 || value > 10_000)
    throw new Error(`${MAX_POSITIONS_ENV} must be an integer from 1 to 10000, got "${raw}"`);
  return value;
}

/**
 * Receives before `queue` dead-letters a message, from its environment variable (the stack's maxReceiveCount, which
 * CDK context may override), else the topology's; undefined for a queue without a dead-letter queue.
 */
export function maxReceivesFromEnv(queue: QueueId, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const name = maxReceivesEnv(queue);
  const raw = env[name];
  if (raw === undefined || raw === '') return QUEUES.find((q) => q.id === queue)?.deadLetter?.maxReceiveCount;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new Error(`${name} must be a whole number of receives (1 or more), got "${raw}"`);
  return value;
}

/** Bounds one invocation's work well inside its timeout; more is continued by a follow-up event, never dropped. */
const DEFAULT_MAX_POSITIONS = 500;

/**
 * The risk configuration the stack built into this code (infra/constructs/functions.ts injects it under
 * BUNDLED_RISK_CONFIG_GLOBAL, topology.ts); undefined in code run from source (the local runner, tests).
 */
declare const BACKSTOP_RISK_CONFIG: string | undefined;
export const bundledRiskConfigJson = (): string | undefined =>
  typeof BACKSTOP_RISK_CONFIG === 'string' ? BACKSTOP_RISK_CONFIG : undefined;

/**
 * The risk configuration, validated at cold start. One rule, RISK_CONFIG says where it is:
 * - `bundled` (RISK_CONFIG_BUNDLED, what the stack sets): the JSON built into the code at deploy, of any size;
 * - JSON: that configuration, for code run from source (the local runner, tests), which has none built in;
 * - unset: the documented defaults, likewise only without a built-in one.
 * Code that carries a configuration refuses any other source: an edit of RISK_CONFIG in the console must fail
 * loudly, not run beside the deployed rules; and the code of before session 40, which may meet the new
 * environment for a moment during the deploy (code and environment are two updates), refuses `bundled` (not JSON)
 * instead of running with the defaults.
 */
export function riskConfigFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  bundled: string | undefined = bundledRiskConfigJson(),
): RiskConfig {
  const raw = env[RISK_CONFIG_ENV];
  if (raw === RISK_CONFIG_BUNDLED) {
    if (bundled === undefined)
      throw new ConfigError(
        `${RISK_CONFIG_ENV} is "${RISK_CONFIG_BUNDLED}" but this code has no risk configuration built in: deploy it with the CDK app, which bundles backstop:riskConfig into every function`,
      );
    return parsedRiskConfig(bundled, 'the risk configuration built into this code');
  }
  if (bundled !== undefined)
    throw new ConfigError(
      `this code carries the risk configuration it was deployed with, so ${RISK_CONFIG_ENV} must be "${RISK_CONFIG_BUNDLED}", not ${raw ? 'JSON' : 'unset'}: change the configuration with a deploy (backstop:riskConfig)`,
    );
  if (!raw) return DEFAULT_RISK_CONFIG;
  return parsedRiskConfig(raw, RISK_CONFIG_ENV);
}

function parsedRiskConfig(raw: string, source: string): RiskConfig {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new ConfigError(`${source} is not JSON: ${(error as Error).message}`);
  }
  try {
    return parseRiskConfig(json);
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`${source}: ${error.message}`);
    throw error;
  }
}

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];
const UNITS: Record<string, Unit> = {
  Count: MetricUnit.Count,
  Seconds: MetricUnit.Seconds,
  None: MetricUnit.NoUnit,
};
const SPECS = new Map<string, MetricSpec>(Object.values(METRICS).map((spec) => [spec.name, spec]));

/**
 * The services' Telemetry port on Powertools: EMF metrics (flushed by the middleware) and structured logs. A data
 * point without dimensions goes to the shared instance; one with dimensions to the blob of its dimension sets: its
 * own, and for a metric `byMarket` that names its market a second one with Market (the first is the total's).
 */
export function powertoolsTelemetry(
  log: Logger = logger,
  emf: Metrics = metrics,
  dimensioned: DimensionedMetrics = dimensionedMetrics,
): Telemetry {
  const emit = (name: string, value: number, dimensions?: Readonly<Record<string, string>>) => {
    const spec = SPECS.get(name);
    const unit = UNITS[spec?.unit ?? 'None'] ?? MetricUnit.NoUnit;
    if (!dimensions) {
      emf.addMetric(name, unit, value);
      return;
    }
    const market = spec?.byMarket ? dimensions[MARKET_DIMENSION] : undefined;
    let own = dimensions;
    // Market only where the spec has it: on any other metric it would move the data point off the alarm's set.
    if (MARKET_DIMENSION in dimensions && spec && spec.dimension !== MARKET_DIMENSION) {
      const { [MARKET_DIMENSION]: _, ...rest } = dimensions;
      own = rest;
    }
    if (market === undefined && Object.keys(own).length === 0) {
      emf.addMetric(name, unit, value);
      return;
    }
    dimensioned.add(own, market, name, unit, value);
  };
  return {
    count: (name, value = 1, dimensions) => emit(name, value, dimensions),
    observe: (name, value, dimensions) => emit(name, value, dimensions),
    info: (message, fields) => log.info(message, keyed(fields)),
    warn: (message, fields) => log.warn(message, keyed(fields)),
  };
}

import type { IncomingMessage } from 'node:http';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SQSClient } from '@aws-sdk/client-sqs';
// The type alone: the functions leave @aws-sdk/* to the runtime, which is not sure to ship this package
// (review48-timeouts-runtime-sdk); the CLI builds the provider (shared/local/deployment.ts).
import type { defaultProvider } from '@aws-sdk/credential-provider-node';

/**
 * The one place that builds AWS SDK v3 clients. Retries use the SDK's standard mode (exponential backoff
 * with jitter for throttling and transient faults); every call is counted per operation for benchmarks.
 */

export interface AwsClientConfig {
  readonly region: string;
  /** Emulator endpoint (moto, LocalStack); absent on AWS. */
  readonly endpoint?: string;
  /**
   * Explicit credentials (any non-empty pair for an emulator), or a provider of them (the CLI's on AWS: the default
   * chain with its own clients' timeouts, cliCredentials); absent: the client's default provider chain.
   */
  readonly credentials?:
    | { readonly accessKeyId: string; readonly secretAccessKey: string }
    | ReturnType<typeof defaultProvider>;
  /** Attempts per call including the first (SDK standard mode default: 3). */
  readonly maxAttempts?: number;
  /**
   * Milliseconds to open a connection, and for a request to get its answer's headers, before the attempt fails (and
   * is retried like any transient fault); `requestMs` is also the longest silence allowed within the answer's body
   * once its headers came (withTimeouts). Absent: no limit, the SDK's default, with which one stalled socket holds
   * an invocation until the function's timeout fails its whole batch.
   */
  readonly timeouts?: { readonly connectionMs: number; readonly requestMs: number };
}

/** On AWS: a DynamoDB or SQS call answers in milliseconds, so seconds of silence is a dead connection. */
export const AWS_TIMEOUTS = { connectionMs: 3_000, requestMs: 5_000 } as const;
/** On an emulator (moto on a busy two-core machine answers a burst slowly, but it answers). */
export const EMULATOR_TIMEOUTS = { connectionMs: 10_000, requestMs: 30_000 } as const;

/**
 * The HTTP options of one long poll (a ReceiveMessage with WaitTimeSeconds): the request timeout runs from the request
 * to the answer, which a long poll holds back up to its wait, so the poll gets that wait on top of the client's timeout.
 */
export const longPollOptions = (
  config: AwsClientConfig,
  waitSeconds: number,
): { readonly requestTimeout?: number } =>
  config.timeouts && waitSeconds > 0
    ? { requestTimeout: waitSeconds * 1000 + config.timeouts.requestMs }
    : {};

/** API calls and attempts per `service.Operation` (for example `dynamodb.TransactWriteItems`). */
export class ApiCallCounter {
  private readonly calls = new Map<string, number>();
  private readonly attempts = new Map<string, number>();

  record(operation: string, attempts: number): void {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    this.attempts.set(operation, (this.attempts.get(operation) ?? 0) + attempts);
  }

  /** Calls per operation, sorted by name. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.calls].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Attempts per operation (calls plus SDK retries). */
  attemptsSnapshot(): Record<string, number> {
    return Object.fromEntries([...this.attempts].sort(([a], [b]) => a.localeCompare(b)));
  }

  total(): number {
    let sum = 0;
    for (const n of this.calls.values()) sum += n;
    return sum;
  }

  reset(): void {
    this.calls.clear();
    this.attempts.clear();
  }
}

export interface AwsClients {
  readonly dynamo: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly events: EventBridgeClient;
  readonly counter: ApiCallCounter;
  readonly config: AwsClientConfig;
  /** Closes the HTTP connection pools. */
  destroy(): void;
}

interface CountedOutput {
  readonly output?: { readonly $metadata?: { readonly attempts?: number } };
}

/** Initialize-step middleware: runs once per logical call, after the retries have finished. */
const counting =
  (service: string, counter: ApiCallCounter) =>
  <I, O extends CountedOutput>(next: (args: I) => Promise<O>, context: { readonly commandName?: string }) =>
  async (args: I): Promise<O> => {
    const operation = `${service}.${(context.commandName ?? 'unknown').replace(/Command$/, '')}`;
    try {
      const result = await next(args);
      counter.record(operation, result.output?.$metadata?.attempts ?? 1);
      return result;
    } catch (error) {
      const attempts = (error as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
      counter.record(operation, attempts);
      throw error;
    }
  };

const COUNTER_MIDDLEWARE = { step: 'initialize', name: 'backstopApiCallCounter' } as const;

/** The HTTP handler's options of `timeouts`. */
export const handlerOptions = (timeouts: NonNullable<AwsClientConfig['timeouts']>) =>
  ({
    connectionTimeout: timeouts.connectionMs,
    requestTimeout: timeouts.requestMs,
    // Without it the SDK only logs a warning and keeps waiting.
    throwOnRequestTimeout: true,
  }) as const;

/**
 * The options every client of `config` is built with (region, retries, endpoint, credentials, timeouts); build it with
 * `withTimeouts`, which adds the body's stall timeout.
 */
export function clientOptions(config: AwsClientConfig) {
  return {
    region: config.region,
    retryMode: 'standard',
    maxAttempts: config.maxAttempts ?? 3,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    ...(config.timeouts ? { requestHandler: handlerOptions(config.timeouts) } : {}),
  } as const;
}

/** The SDK's name for an attempt that timed out: retried as a transient fault, and said as one by the CLI. */
const stallError = (idleMs: number): Error =>
  Object.assign(
    new Error(`the answer stopped arriving: nothing for ${idleMs} ms after its headers (requestTimeout)`),
    { name: 'TimeoutError', code: 'ETIMEDOUT' },
  );

/**
 * Fails an answer whose body stops arriving for `idleMs` (timeouts48-body-stall). The SDK's requestTimeout ends at the
 * answer's headers and its socketTimeout counts a long poll's wait as silence, so a connection that died after the
 * headers (a NAT that dropped it mid-answer) held the call with no limit. Armed once the headers came, as the socket's
 * idle timeout: a page that streams in slowly is not cut, one that stops is, and the SDK retries it as a timeout.
 */
const bodyStallTimeout =
  (idleMs: number) =>
  <I, O extends { readonly response?: unknown }>(next: (args: I) => Promise<O>) =>
  async (args: I): Promise<O> => {
    const result = await next(args);
    const body = (result.response as { body?: unknown } | undefined)?.body as IncomingMessage | undefined;
    const socket = body?.socket;
    if (!body || body.complete || typeof body.on !== 'function' || !socket) return result;
    const onIdle = () => body.destroy(stallError(idleMs));
    socket.setTimeout(idleMs);
    socket.on('timeout', onIdle);
    // The agent resets the timeout of a socket it keeps for the next request.
    body.once('close', () => socket.removeListener('timeout', onIdle));
    return result;
  };

/** Inside the deserializer: it sees the answer as the HTTP handler gave it, its body not read yet. */
const STALL_MIDDLEWARE = { step: 'deserialize', priority: 'low', name: 'backstopBodyStallTimeout' } as const;

/** Adds the body's stall timeout of `config` (none without timeouts) to a client built from clientOptions(config). */
export function withTimeouts<C extends { readonly middlewareStack: { add: (...args: never[]) => void } }>(
  client: C,
  config: AwsClientConfig,
): C {
  if (config.timeouts)
    (client.middlewareStack as unknown as { add: (m: unknown, o: unknown) => void }).add(
      bodyStallTimeout(config.timeouts.requestMs),
      STALL_MIDDLEWARE,
    );
  return client;
}

export function createAwsClients(config: AwsClientConfig, counter = new ApiCallCounter()): AwsClients {
  const common = clientOptions(config);
  const dynamo = withTimeouts(new DynamoDBClient(common), config);
  const sqs = withTimeouts(new SQSClient(common), config);
  const events = withTimeouts(new EventBridgeClient(common), config);
  dynamo.middlewareStack.add(counting('dynamodb', counter), COUNTER_MIDDLEWARE);
  sqs.middlewareStack.add(counting('sqs', counter), COUNTER_MIDDLEWARE);
  events.middlewareStack.add(counting('events', counter), COUNTER_MIDDLEWARE);
  return {
    dynamo,
    sqs,
    events,
    counter,
    config,
    destroy: () => {
      dynamo.destroy();
      sqs.destroy();
      events.destroy();
    },
  };
}

/**
 * Client config for a local emulator: fake credentials, us-east-1 unless told otherwise, the emulator's timeouts
 * (timeouts48-local-up: `local up`'s own clients had none).
 */
export const localClientConfig = (
  endpoint: string,
  region = 'us-east-1',
  timeouts: NonNullable<AwsClientConfig['timeouts']> = EMULATOR_TIMEOUTS,
): AwsClientConfig => ({
  region,
  endpoint,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  timeouts,
});

/** Client config from the Lambda environment: AWS_REGION, optional AWS_ENDPOINT_URL for emulators. */
export function clientConfigFromEnv(env: NodeJS.ProcessEnv = process.env): AwsClientConfig {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new Error('AWS_REGION environment variable is not set');
  return env.AWS_ENDPOINT_URL
    ? { region, endpoint: env.AWS_ENDPOINT_URL, timeouts: EMULATOR_TIMEOUTS }
    : { region, timeouts: AWS_TIMEOUTS };
}

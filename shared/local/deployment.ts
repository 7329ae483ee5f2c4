import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import {
  deadLetterQueueUrlKey,
  OUTPUT_KEYS,
  queueUrlKey,
  stackName,
  tableNameKey,
} from '../../infra/outputs.ts';
import {
  type AwsClientConfig,
  clientOptions,
  EMULATOR_TIMEOUTS,
  handlerOptions,
  withTimeouts,
} from '../adapters/aws/clients.ts';
import {
  type AdapterNames,
  type AwsClients,
  createAwsClients,
  localClientConfig,
} from '../adapters/aws/index.ts';
import type { MarketShards } from '../adapters/aws/position-layout.ts';
import { LOCAL_TICK_QUEUE } from '../adapters/aws/resources.ts';
import type { TargetGiven } from '../advice.ts';
import { physicalName, QUEUES, type QueueId, TABLES, type TableId, TICK_BUS } from '../topology.ts';
import { AwsClock, type Watchable } from './aws-clock.ts';
import { isAlive, readLocalRecord, stateDir } from './state.ts';

/**
 * Where a command acts: the local emulator started by `backstop local up` (moto), a LocalStack with the CDK
 * stack deployed, or the stack in an AWS account. Local names follow the topology's physical names; LocalStack
 * and AWS names come from the stack's CloudFormation outputs (infra/outputs.ts), so nothing is guessed.
 */

export type TargetKind = 'local' | 'localstack' | 'aws';
export const TARGET_KINDS: readonly TargetKind[] = ['local', 'localstack', 'aws'];

/** LocalStack's edge port on this machine (AWS_ENDPOINT_URL overrides it, --endpoint overrides both). */
export const LOCALSTACK_ENDPOINT = 'http://localhost:4566';
export const DEFAULT_LOCAL_STAGE = 'local';
/** The CDK app's default stage (infra/config.ts). */
export const DEFAULT_DEPLOYED_STAGE = 'dev';

// In a module of their own, which a function can bundle (shared/advice.ts); named here for the CLI's code.
export {
  type AdviceTarget,
  backstopCommand,
  shellWord,
  type TargetGiven,
  targetFlags,
  withTargetFlags,
} from '../advice.ts';

/** The target cannot be used: not running, not deployed, unreachable, no credentials. One line, no stack. */
export class TargetError extends Error {
  override readonly name = 'TargetError';
}

/**
 * The CLI's timeouts against AWS (ops47-cli-timeouts): the SDK's default is none, so a read on a dead connection (a
 * laptop woken from sleep, a VPN that reconnected) waited minutes per attempt, and `status --watch` showed old figures
 * as current, `replay --hold` sent no held tick. An operator's network is slower than a Lambda's (AWS_TIMEOUTS): 5 s to
 * connect, 10 s for an answer (its headers), far above any call the CLI makes; a long poll gets its wait on top
 * (longPollOptions). An emulator gets EMULATOR_TIMEOUTS, as the functions on it do: moto under load answers slowly.
 */
export const CLI_AWS_TIMEOUTS = { connectionMs: 5_000, requestMs: 10_000 } as const;
/** Overrides of the CLI's timeouts, in milliseconds (a slow link, a test). */
export const CONNECT_TIMEOUT_ENV = 'BACKSTOP_AWS_CONNECT_TIMEOUT_MS';
export const REQUEST_TIMEOUT_ENV = 'BACKSTOP_AWS_REQUEST_TIMEOUT_MS';
const MAX_TIMEOUT_MS = 600_000;

/**
 * A bad value of a variable the CLI reads from the operator's environment: input as wrong as a bad option, so a usage
 * error (exit 2), where it was a TargetError (exit 1: cli49-env-usage).
 */
export class EnvironmentValueError extends Error {
  override readonly name = 'EnvironmentValueError';
}

/**
 * The CLI's clients' timeouts on an emulator or on AWS, each overridden by its variable; EnvironmentValueError if one
 * is bad.
 */
export function cliTimeouts(
  emulator: boolean,
  env: NodeJS.ProcessEnv = process.env,
): NonNullable<AwsClientConfig['timeouts']> {
  const base = emulator ? EMULATOR_TIMEOUTS : CLI_AWS_TIMEOUTS;
  const read = (name: string, fallback: number): number => {
    const text = env[name];
    if (text === undefined || text === '') return fallback;
    const ms = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!(ms >= 1 && ms <= MAX_TIMEOUT_MS))
      throw new EnvironmentValueError(
        `${name} (environment variable): "${text}" is not a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS} (unset it for the default, ${fallback})`,
      );
    return ms;
  };
  return {
    connectionMs: read(CONNECT_TIMEOUT_ENV, base.connectionMs),
    requestMs: read(REQUEST_TIMEOUT_ENV, base.requestMs),
  };
}

export interface QueueUrls {
  readonly url: string;
  readonly dlqUrl?: string;
}

export interface DeploymentNames extends AdapterNames {
  readonly tables: Readonly<Record<TableId, string>>;
  readonly queues: Readonly<Record<QueueId, QueueUrls>>;
  readonly busName: string;
  /** Local emulator only: the queue the bus rule feeds and the runner polls. */
  readonly tickQueueUrl?: string;
  readonly dashboardName?: string;
  readonly archiveName?: string;
  readonly busArn?: string;
  /** The stack's RiskConfigDigest output (absent: a local stage, or a stack deployed before session 40). */
  readonly riskConfigDigest?: string;
}

export interface Deployment {
  readonly kind: TargetKind;
  readonly stage: string;
  readonly region: string;
  /** Emulator endpoint; absent on AWS. */
  readonly endpoint?: string;
  readonly clients: AwsClients;
  readonly names: DeploymentNames;
  /** Risk configuration input recorded by `local up` (local only). */
  readonly recordedRiskConfig?: unknown;
  /** Index shards per market recorded by `local up` (local only). */
  readonly recordedPositionIndexShards?: Readonly<Record<string, MarketShards>>;
  /** The target options the command was given (targetFlags names the same target with them). */
  readonly given?: TargetGiven;
  /**
   * AWS's time, by the answers of the deployment's clients, its opening's included (cli49-aws-clock). Always set by
   * openDeployment; absent from one a test builds by hand (awsClockOf: one on its clients).
   */
  readonly awsClock?: AwsClock;
  close(): void;
}

/** The deployment's clock of AWS's time; one watching its clients from now on where it has none (a test's). */
export const awsClockOf = (deployment: Deployment): AwsClock => {
  if (deployment.awsClock) return deployment.awsClock;
  // One per clients: each clock would add a middleware of its own to them.
  const clock = handBuilt.get(deployment.clients) ?? watching(deployment.clients);
  handBuilt.set(deployment.clients, clock);
  return clock;
};
const handBuilt = new WeakMap<AwsClients, AwsClock>();

/** A clock watching `clients` (and `more`, answering first: the stack's outputs), for a deployment opened on them. */
const watching = (clients: AwsClients, ...more: Watchable[]): AwsClock => {
  const clock = new AwsClock();
  for (const client of [...more, clients.dynamo, clients.sqs, clients.events])
    clock.watch(client as Watchable);
  return clock;
};

export interface TargetOptions {
  readonly kind: TargetKind;
  readonly endpoint?: string;
  readonly stage?: string;
  readonly region?: string;
  /** Folder of local.json (default .backstop, or BACKSTOP_STATE_DIR). */
  readonly stateDir?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Fails with one clear line unless something answers HTTP on `endpoint` within the timeout. */
export async function probeEndpoint(endpoint: string, hint: string, timeoutMs = 3_000): Promise<void> {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new TargetError(`--endpoint: "${endpoint}" is not a URL`);
  }
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    const why = cause?.code ?? (error as Error).name;
    throw new TargetError(`cannot reach ${endpoint} (${why}): ${hint}`);
  }
}

/** Names of a local stage: the topology's physical names; queue URLs asked from the emulator. */
export async function localNames(clients: AwsClients, stage: string): Promise<DeploymentNames> {
  const url = async (name: string): Promise<string> => {
    try {
      const out = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      if (!out.QueueUrl) throw new Error('no url');
      return out.QueueUrl;
    } catch (error) {
      if (isMissingQueue(error)) {
        throw new TargetError(
          `stage "${stage}" has no queue ${name} on ${clients.config.endpoint} in ${clients.config.region}: start it with backstop local up --stage ${stage}, or give the --region it runs in`,
        );
      }
      throw error;
    }
  };
  const tables = Object.fromEntries(TABLES.map((t) => [t.id, physicalName(stage, t.id)])) as Record<
    TableId,
    string
  >;
  const queueEntries = await Promise.all(
    QUEUES.map(async (q): Promise<[QueueId, QueueUrls]> => {
      const main = await url(physicalName(stage, q.id));
      if (!q.deadLetter) return [q.id, { url: main }];
      return [q.id, { url: main, dlqUrl: await url(physicalName(stage, `${q.id}-dlq`)) }];
    }),
  );
  return {
    tables,
    queues: Object.fromEntries(queueEntries) as Record<QueueId, QueueUrls>,
    busName: physicalName(stage, TICK_BUS.name),
    tickQueueUrl: await url(physicalName(stage, LOCAL_TICK_QUEUE)),
  };
}

const isMissingQueue = (error: unknown): boolean => {
  const name = (error as { name?: string }).name ?? '';
  return name === 'QueueDoesNotExist' || name.includes('NonExistentQueue');
};

/** Deployment names from the stack's outputs; a missing output is a TargetError naming it. */
export function namesFromOutputs(outputs: Readonly<Record<string, string>>, stage: string): DeploymentNames {
  const need = (key: string): string => {
    const value = outputs[key];
    if (!value) throw new TargetError(`stack ${stackName(stage)} has no output ${key}: redeploy it`);
    return value;
  };
  const tables = Object.fromEntries(TABLES.map((t) => [t.id, need(tableNameKey(t.id))])) as Record<
    TableId,
    string
  >;
  const queues = Object.fromEntries(
    QUEUES.map((q) => [
      q.id,
      q.deadLetter
        ? { url: need(queueUrlKey(q.id)), dlqUrl: need(deadLetterQueueUrlKey(q.id)) }
        : { url: need(queueUrlKey(q.id)) },
    ]),
  ) as Record<QueueId, QueueUrls>;
  const optional = (key: string) => (outputs[key] ? outputs[key] : undefined);
  const dashboardName = optional(OUTPUT_KEYS.dashboardName);
  const archiveName = optional(OUTPUT_KEYS.tickArchiveName);
  const busArn = optional(OUTPUT_KEYS.tickBusArn);
  const riskConfigDigest = optional(OUTPUT_KEYS.riskConfigDigest);
  return {
    tables,
    queues,
    busName: need(OUTPUT_KEYS.tickBusName),
    ...(dashboardName ? { dashboardName } : {}),
    ...(archiveName ? { archiveName } : {}),
    ...(busArn ? { busArn } : {}),
    ...(riskConfigDigest ? { riskConfigDigest } : {}),
  };
}

/** Outputs of Backstop-<stage> (DescribeStacks). */
export async function stackOutputs(
  cfn: CloudFormationClient,
  stage: string,
): Promise<Record<string, string>> {
  const name = stackName(stage);
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: name }));
    const stack = out.Stacks?.[0];
    if (!stack) throw new TargetError(`stack ${name} not found`);
    return Object.fromEntries(
      (stack.Outputs ?? []).flatMap((o) =>
        o.OutputKey && o.OutputValue ? [[o.OutputKey, o.OutputValue]] : [],
      ),
    );
  } catch (error) {
    if (/does not exist/i.test((error as Error).message ?? '')) {
      throw new TargetError(`stack ${name} is not deployed here: deploy it, or pass --stage`);
    }
    throw error;
  }
}

/** Endpoint of a LocalStack target: --endpoint, else AWS_ENDPOINT_URL, else localhost:4566. */
export const localstackEndpoint = (given: string | undefined, env: NodeJS.ProcessEnv = process.env): string =>
  given ?? env.AWS_ENDPOINT_URL ?? LOCALSTACK_ENDPOINT;

const givenOf = (options: TargetOptions): TargetGiven => ({
  ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
  ...(options.stage === undefined ? {} : { stage: options.stage }),
  ...(options.region === undefined ? {} : { region: options.region }),
});

/** Resolves a target into clients and names; TargetError when it cannot be used. */
export async function openDeployment(options: TargetOptions): Promise<Deployment> {
  const env = options.env ?? process.env;
  if (options.kind === 'local') return openLocal(options, env);

  const endpoint =
    options.kind === 'localstack' ? localstackEndpoint(options.endpoint, env) : options.endpoint;
  const stage = options.stage ?? DEFAULT_DEPLOYED_STAGE;
  const timeouts = cliTimeouts(endpoint !== undefined, env);
  if (endpoint) {
    await probeEndpoint(
      endpoint,
      options.kind === 'localstack' ? 'is LocalStack running (it needs Docker)?' : 'check --endpoint',
    );
  }
  const region =
    options.region ??
    env.AWS_REGION ??
    env.AWS_DEFAULT_REGION ??
    (endpoint ? 'us-east-1' : await defaultRegion());
  const config: AwsClientConfig = {
    region,
    ...(endpoint ? { endpoint } : {}),
    credentials: endpoint ? { accessKeyId: 'test', secretAccessKey: 'test' } : cliCredentials(timeouts),
    timeouts,
  };
  const cfn = withTimeouts(new CloudFormationClient(clientOptions(config)), config);
  const clients = createAwsClients(config);
  // Set by the outputs' answer: a command's first decision by the clock needs no call of its own.
  const awsClock = watching(clients, cfn as unknown as Watchable);
  try {
    const names = namesFromOutputs(await stackOutputs(cfn, stage), stage);
    return {
      kind: options.kind,
      stage,
      region,
      ...(endpoint ? { endpoint } : {}),
      clients,
      names,
      given: givenOf(options),
      awsClock,
      close: () => clients.destroy(),
    };
  } catch (error) {
    clients.destroy();
    throw error;
  } finally {
    cfn.destroy();
  }
}

/**
 * The CLI's credentials on AWS: the SDK's default provider chain, its SSO and SSO OIDC clients (a profile's `aws sso
 * login` session, renewed as it expires) and an assumed role's STS client given the CLI's timeouts
 * (timeouts48-credential-clients), an answer's body that stops arriving included. The chain builds them from its
 * `clientConfig` alone, the calling client's handler not passed on: without it they had none, and a dead connection
 * held a command at its first call, before any timeout of its own began. The CLI's alone: a function's chain stops at
 * its environment's keys, and its bundle leaves this package to the runtime (review48-timeouts-runtime-sdk).
 */
export const cliCredentials = (timeouts: NonNullable<AwsClientConfig['timeouts']>) =>
  defaultProvider({
    clientConfig: {
      // The body's stall too (providers49-credential-stall): their `clientConfig` takes no middleware (withTimeouts'),
      // but the handler's own idle timeout stays armed after the headers, failing a body that stops as a TimeoutError.
      // Unusable on the other clients, whose long polls it would count as silence; these never poll.
      requestHandler: { ...handlerOptions(timeouts), socketTimeout: timeouts.requestMs },
    },
  });

/** The SDK's own region resolution (profile config included); TargetError if there is none. */
async function defaultRegion(): Promise<string> {
  const probe = new CloudFormationClient({});
  try {
    return await probe.config.region();
  } catch {
    throw new TargetError('no AWS region: pass --region or set AWS_REGION (or a region in your AWS profile)');
  } finally {
    probe.destroy();
  }
}

async function openLocal(options: TargetOptions, env: NodeJS.ProcessEnv): Promise<Deployment> {
  const timeouts = cliTimeouts(true, env);
  const dir = options.stateDir ?? stateDir(env);
  const record = readLocalRecord(dir);
  let endpoint = options.endpoint;
  if (endpoint === undefined) {
    if (!record) {
      throw new TargetError(
        'no local stack is running: start one with backstop local up (or pass --endpoint)',
      );
    }
    if (!isAlive(record.pid)) {
      throw new TargetError(
        `the local stack recorded in ${dir} (pid ${record.pid}) is not running: start it with backstop local up`,
      );
    }
    endpoint = record.endpoint;
  }
  // What local up recorded is of the stage it runs: another stage on the same emulator runs no functions.
  const fromRecord =
    record && record.endpoint === endpoint && (options.stage === undefined || options.stage === record.stage)
      ? record
      : undefined;
  const stage = options.stage ?? fromRecord?.stage ?? DEFAULT_LOCAL_STAGE;
  const region = options.region ?? fromRecord?.region ?? 'us-east-1';
  await probeEndpoint(endpoint, 'is backstop local up running?');
  const clients = createAwsClients(localClientConfig(endpoint, region, timeouts));
  // Set by the queues' URLs asked below.
  const awsClock = watching(clients);
  try {
    const names = await localNames(clients, stage);
    return {
      kind: 'local',
      stage,
      region,
      endpoint,
      clients,
      names,
      ...(fromRecord?.riskConfig === undefined ? {} : { recordedRiskConfig: fromRecord.riskConfig }),
      ...(fromRecord?.positionIndexShards === undefined
        ? {}
        : { recordedPositionIndexShards: fromRecord.positionIndexShards }),
      given: givenOf(options),
      awsClock,
      close: () => clients.destroy(),
    };
  } catch (error) {
    clients.destroy();
    throw error;
  }
}

import { OUTPUT_KEYS, riskConfigDigest, stackName } from '../../infra/outputs.ts';
import { EMULATOR_TIMEOUTS } from '../../shared/adapters/aws/clients.ts';
import {
  type AdapterNames,
  createAwsAdapters,
  PositionIndexLayout,
  PositionLayoutError,
  positionLayoutFromEnv,
} from '../../shared/adapters/aws/index.ts';
import { UnprocessedKeysError } from '../../shared/adapters/aws/reader.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { DEFAULT_RISK_CONFIG, parseRiskConfig, type RiskConfig } from '../../shared/domain/config.ts';
import { spokenList } from '../../shared/domain/words.ts';
import { errorText, firstLine } from '../../shared/error-text.ts';
import { PutEntriesError } from '../../shared/feed/publisher.ts';
import {
  CLI_AWS_TIMEOUTS,
  CONNECT_TIMEOUT_ENV,
  type Deployment,
  openDeployment,
  REQUEST_TIMEOUT_ENV,
  TARGET_KINDS,
  TargetError,
  type TargetKind,
} from '../../shared/local/deployment.ts';
import { MotoNotInstalledError, MotoPortInUseError } from '../../shared/local/moto.ts';
import { QueueSendRefusedError, sayingQueueSenders } from '../../shared/local/queue-senders.ts';
import { LocalStateError } from '../../shared/local/state.ts';
import { LookPermissionError } from '../../shared/local/status.ts';
import type { Telemetry } from '../../shared/ports/index.ts';
import { DEPLOYED_STAGE } from '../../shared/topology.ts';
import { choiceOption, type OptionSpec, parseOptions, UsageError } from '../args.ts';
import type { ExitCode, OwnExitCommand } from '../exit-codes.ts';
import { printable } from '../printable.ts';
import { readRiskConfig } from '../risk-config.ts';
import type { CliIo } from '../simulate.ts';

/** What the operator commands share: target options, positional arguments, one-line failures. */

/** An operator command: its exit code one of the general ones or of its own, `C`'s (cli/exit-codes.ts). */
export type Command<C extends OwnExitCommand = never> = (
  argv: readonly string[],
  io: CliIo,
) => Promise<ExitCode<C>>;

/** Input that is wrong but only known after parsing (a market without a price, a refused withdrawal): exit 2. */
export class OperatorInputError extends Error {
  override readonly name = 'OperatorInputError';
}

export const TARGET_OPTIONS = {
  target: { type: 'string' },
  endpoint: { type: 'string' },
  stage: { type: 'string' },
  region: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpec;

export const TARGET_USAGE = `Target (every command):
  --target T             local (default: the emulator of backstop local up), localstack, aws
  --endpoint URL         emulator endpoint (local: from .backstop/local.json; localstack: AWS_ENDPOINT_URL
                         or http://localhost:4566)
  --stage S              stage (local: the one local up runs, else "local"; localstack/aws: "dev")
  --region R             region (local/localstack: us-east-1; aws: AWS_REGION or your profile's)
  -h, --help             this help
  ${CONNECT_TIMEOUT_ENV}, ${REQUEST_TIMEOUT_ENV} (environment)
                         ms an AWS call's attempt waits to connect, and for an answer (aws: ${CLI_AWS_TIMEOUTS.connectionMs}, ${CLI_AWS_TIMEOUTS.requestMs};
                         local, localstack: ${EMULATOR_TIMEOUTS.connectionMs}, ${EMULATOR_TIMEOUTS.requestMs}; a bad value exits 2)
`;

/**
 * Splits positional words (subcommand, file) from options, then parses the options strictly. A string
 * option takes the next word as its value unless it is an option, so "--price -1" reaches the option's
 * own check and "--symbol --price 1" says the value is missing.
 */
export function parseCommand<T extends OptionSpec>(argv: readonly string[], spec: T) {
  const positionals: string[] = [];
  const options: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!token.startsWith('-') || token === '-') {
      positionals.push(token);
      continue;
    }
    const name = token.startsWith('--') ? token.slice(2) : '';
    const next = argv[i + 1];
    if (
      !name.includes('=') &&
      spec[name]?.type === 'string' &&
      next !== undefined &&
      !next.startsWith('--')
    ) {
      options.push(`--${name}=${argv[++i]!}`);
    } else options.push(token);
  }
  return { positionals, values: parseOptions(options, spec).values };
}

/** The subcommand (first positional) among `choices`. */
export function subcommand<C extends string>(
  command: string,
  positionals: readonly string[],
  choices: readonly C[],
): C {
  const word = positionals[0];
  if (word === undefined) throw new UsageError(`${command}: missing subcommand (${choices.join(' | ')})`);
  if (!(choices as readonly string[]).includes(word)) {
    throw new UsageError(`${command}: unknown subcommand "${word}" (${choices.join(' | ')})`);
  }
  return word as C;
}

/**
 * The options of a command that belong to some of its subcommands only, by subcommand: each takes those it names and
 * every option no subcommand names (the target's, --help, those all share). What `refuseOthersOptions` holds a run to,
 * and the help test README's and docs' command lines (cli50-help-subcommands).
 */
export type SubcommandOptions = Readonly<Record<string, readonly string[]>>;

/** The options `action` takes, of `spec` (the command's parser) as `owned` shares them out. */
export function subcommandTakes(spec: OptionSpec, owned: SubcommandOptions, action: string): string[] {
  const named = new Set(Object.values(owned).flat());
  return Object.keys(spec).filter((name) => !named.has(name) || (owned[action] ?? []).includes(name));
}

/** Refuses an option `action` does not take, naming the subcommands that do (`fund deposit and withdraw`). */
export function refuseOthersOptions(
  command: string,
  action: string,
  values: Readonly<Record<string, unknown>>,
  spec: OptionSpec,
  owned: SubcommandOptions,
): void {
  const takes = subcommandTakes(spec, owned, action);
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || takes.includes(name)) continue;
    const takers = Object.keys(owned).filter((s) => owned[s]!.includes(name));
    throw new UsageError(`${command} ${action}: --${name} is an option of ${command} ${spokenList(takers)}`);
  }
}

export function noMorePositionals(command: string, positionals: readonly string[], expected: number): void {
  if (positionals.length > expected) {
    throw new UsageError(`${command}: unexpected argument "${positionals[expected]}"`);
  }
}

const STAGE = /^[a-z][a-z0-9-]{0,30}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/** Refuses a --region that is not an AWS region's name (the local stack's too: it names the emulator's). */
export function checkRegion(region: string | undefined): void {
  if (region !== undefined && !REGION.test(region))
    throw new UsageError(`--region: "${region}" is not an AWS region like us-east-1`);
}

export interface TargetValues {
  readonly target?: string;
  readonly endpoint?: string;
  readonly stage?: string;
  readonly region?: string;
}

/** Checks the target options (UsageError) and opens the deployment (TargetError if it cannot be used). */
export async function openTarget(values: TargetValues): Promise<Deployment> {
  const kind: TargetKind = choiceOption('target', values.target, TARGET_KINDS) ?? 'local';
  if (values.stage !== undefined && !STAGE.test(values.stage)) {
    throw new UsageError(`--stage: "${values.stage}" is not a stage name (lower-case letters, digits, -)`);
  }
  if (kind !== 'local' && values.stage !== undefined && !DEPLOYED_STAGE.pattern.test(values.stage)) {
    throw new UsageError(
      `--stage: "${values.stage}" cannot be a deployed stage (${DEPLOYED_STAGE.rule}: what cdk deploy accepts)`,
    );
  }
  checkRegion(values.region);
  if (values.endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(values.endpoint)) {
    throw new UsageError(`--endpoint: "${values.endpoint}" is not an http(s) URL`);
  }
  if (kind === 'aws' && values.endpoint !== undefined) {
    throw new UsageError('--endpoint: not with --target aws (use --target localstack for an emulator)');
  }
  return openDeployment({
    kind,
    ...(values.endpoint === undefined ? {} : { endpoint: values.endpoint }),
    ...(values.stage === undefined ? {} : { stage: values.stage }),
    ...(values.region === undefined ? {} : { region: values.region }),
  });
}

/** Opens the target, runs `body`, always closes the clients. */
export async function withTarget<T extends number>(
  values: TargetValues,
  body: (deployment: Deployment) => Promise<T>,
): Promise<T> {
  const deployment = await openTarget(values);
  try {
    return await body(deployment);
  } finally {
    deployment.close();
  }
}

/**
 * The risk configuration the deployment's functions run with: --config FILE, else what local up recorded,
 * else the defaults. On AWS the configuration is built into the functions' code, not readable from here: pass
 * the file the stack was deployed with (backstop:riskConfig) when it is not the default. A file that is not
 * what local up recorded, or whose digest is not the stack's RiskConfigDigest output, is refused: the stage's
 * functions would not use it (a withdrawal judged by another floor, positions priced by margins nobody
 * liquidates by).
 */
export function riskConfigFor(deployment: Deployment, file: string | undefined): RiskConfig {
  const recorded =
    deployment.recordedRiskConfig === undefined ? undefined : parseRiskConfig(deployment.recordedRiskConfig);
  // A deployed stack says which it runs (its RiskConfigDigest output): a stale or edited file would judge a
  // withdrawal by another floor, the functions not (a security review, session 40).
  const deployed = deployment.names.riskConfigDigest;
  if (file === undefined) {
    if (recorded) return recorded;
    // Without --config the built-in rules, which `status`, `inject` and `replay` assume: only where they run.
    if (deployed !== undefined && deployed !== riskConfigDigest(DEFAULT_RISK_CONFIG))
      throw new UsageError(
        `--config is required: stack ${stackName(deployment.stage)} does not run this CLI's built-in risk ` +
          `configuration (its ${OUTPUT_KEYS.riskConfigDigest} output: other rules, or a version of Backstop with ` +
          `other defaults): pass the file it was deployed with, or use the version it was deployed from`,
      );
    return DEFAULT_RISK_CONFIG;
  }
  const { config: given, digest } = readRiskConfig(file);
  if (deployed !== undefined && digest !== deployed)
    throw new UsageError(
      `--config: ${file} is not the risk configuration stack ${stackName(deployment.stage)} runs with (its ` +
        `${OUTPUT_KEYS.riskConfigDigest} output differs): pass the file it was deployed with`,
    );
  if (recorded && digest !== riskConfigDigest(recorded))
    throw new UsageError(
      `--config: ${file} is not the risk configuration stage ${deployment.stage} runs with (recorded by local up): ` +
        `its functions would not use it; leave --config out, or restart the stage with local up --config ${file}`,
    );
  return given;
}

/**
 * The deployed rules, for a command that prices, judges or cuts off by them: never the built-in defaults by
 * omission on a deployed stack (aws, localstack), whose functions carry it in their code, which the CLI
 * cannot read, so `--config` is required there. A local stage local up does not run has no functions to
 * disagree with; `anyTarget` requires it there too (a withdrawal, a reindex). `why`: what the command takes
 * from the rules.
 */
export function deployedRiskConfig(
  deployment: Deployment,
  file: string | undefined,
  command: string,
  why: string,
  anyTarget = false,
): RiskConfig {
  const unknown = deployment.recordedRiskConfig === undefined && (anyTarget || deployment.kind !== 'local');
  if (file === undefined && unknown)
    throw new UsageError(`${command}: --config is required (the risk configuration deployed: ${why})`);
  return riskConfigFor(deployment, file);
}

/**
 * The services' telemetry when the CLI runs them from an operator's shell: no metrics (the shell has no sink; the
 * dashboard counts the functions' own), warnings on stderr with their error only (a provider registered whose
 * sleepers were not woken says so, where applyAdmin's outcome keeps no wake error).
 */
export const cliTelemetry = (io: Pick<CliIo, 'stderr'>): Telemetry => ({
  count: () => {},
  observe: () => {},
  info: () => {},
  warn: (message, fields) => {
    const error = fields?.error === undefined ? '' : ` (${printable(String(fields.error))})`;
    io.stderr.write(`backstop: warning: ${message}${error}\n`);
  },
});

/**
 * The AWS adapters of a deployment (wall clock). Positions go to the index shards `local up` recorded, else
 * those of POSITION_INDEX_SHARDS (set it as the stack was deployed), else one per market: fewer shards than the
 * functions use are always read, only less spread.
 */
export const adaptersOf = (deployment: Deployment, positionLayout?: PositionIndexLayout) => {
  const adapters = createAwsAdapters({
    clients: deployment.clients,
    names: deployment.names as AdapterNames,
    clock: systemClock,
    positionLayout:
      positionLayout ??
      (deployment.recordedPositionIndexShards
        ? new PositionIndexLayout(deployment.recordedPositionIndexShards)
        : positionLayoutFromEnv(process.env)),
  });
  // The operator's sends (overdue --resend, feed resume, seed providers' wake) say whom a queue's policy takes.
  return {
    ...adapters,
    liquidationQueue: sayingQueueSenders(adapters.liquidationQueue, 'liquidations'),
    auctionQueue: sayingQueueSenders(adapters.auctionQueue, 'auctionSteps'),
  };
};

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EPIPE',
]);

/**
 * One line for a failure of the environment (target, network, credentials, emulator), or undefined for
 * anything else (a bug, reported by main as an internal error).
 */
export function environmentFailure(error: unknown): string | undefined {
  if (isUnusableTarget(error)) return (error as Error).message;
  // A PutEvents call that failed is said as its own error was (the network, a timeout, an AWS error); one that left no
  // request (no credentials) by the publisher's words first, that nothing was sent (feed49-put-not-sent).
  if (error instanceof PutEntriesError) {
    const cause = environmentFailure(error.cause);
    if (error.notSent === undefined) return cause;
    const said = error.message.split('\n')[0]!;
    return cause === undefined ? said : `${said}; ${cause}`;
  }
  if (!(error instanceof Error)) return undefined;
  const e = error as Error & { code?: string; cause?: { code?: string }; $metadata?: unknown };
  const code = e.code ?? e.cause?.code;
  if (code && NETWORK_CODES.has(code)) return `cannot reach the target (${code}): ${shortLine(e.message)}`;
  if (e.name === 'TimeoutError') return `the target did not answer in time: ${shortLine(e.message)}`;
  const credentials = credentialsFailure(e);
  if (credentials !== undefined) return credentials;
  // Any other AWS service error (access denied, missing table, throttling): its name and message.
  if (e.$metadata !== undefined) return `AWS ${e.name}: ${shortLine(e.message)}`;
  return undefined;
}

const shortLine = (text: string): string => firstLine(text).slice(0, 300);

/**
 * The advice for credentials the SDK could not find or renew (none configured, an SSO session expired), or undefined.
 * A line that says its error otherwise (replay's PutEntriesError) adds it: the error's name alone does not say what to do.
 */
export const credentialsFailure = (error: unknown): string | undefined =>
  error instanceof Error && error.name === 'CredentialsProviderError'
    ? 'no AWS credentials (environment, profile, SSO or instance role): configure them or use --target local'
    : undefined;

/**
 * AWS errors a later try may get past though AWS answered them as the caller's (a 4xx): a throttle (as the SDK names
 * them; SQS's RequestThrottled is a 403, KMS's a 400), a request that timed out, a clock the SDK corrects from the
 * answer, an expired credential (renewed, `aws sso login` or a profile's role, the SDK's provider reads it again).
 */
const HEALING_CLIENT_ERRORS = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'LimitExceededException',
  'SlowDown',
  'BandwidthLimitExceeded',
  'PriorRequestNotComplete',
  'TransactionInProgressException',
  'RequestTimeout',
  'RequestTimeoutException',
  'RequestExpired',
  'RequestTimeTooSkewed',
  'RequestInTheFuture',
  'ExpiredToken',
  'ExpiredTokenException',
]);

/**
 * Whether a later try may get past an AWS error: a server's (5xx, 429) or one of HEALING_CLIENT_ERRORS. Any other 4xx
 * is the caller's and every try gets it again, whatever its name (review47-refresh-client-errors: only ten names were
 * lasting, so a SerializationException or SQS's InvalidAttributeName, InvalidSecurity was read again forever): the table
 * or queue not there, access denied, a key not recognised, a request refused as invalid.
 */
function awsErrorMayHeal(e: AwsError): boolean {
  if (HEALING_CLIENT_ERRORS.has(e.name) || /throttl/i.test(e.name) || e.$retryable !== undefined) return true;
  const status = e.$metadata.httpStatusCode;
  // Without a status, the SDK's own word for whose fault it is.
  if (status === undefined) return e.$fault !== 'client';
  return status === 429 || status >= 500;
}

type AwsError = Error & {
  readonly $metadata: { readonly httpStatusCode?: number };
  readonly $fault?: string;
  readonly $retryable?: unknown;
};

/** A read a watch makes again and again that failed: one line, and whether a later read may succeed. */
export interface RefreshFailure {
  /** The error's class (its code for a network error) and the first line of its message. */
  readonly line: string;
  /** No later read heals it (an AWS error of the caller's, or a target that cannot be used): the watch ends on it. */
  readonly lasting: boolean;
}

/**
 * How a watch (`status --watch`, `replay --hold`) takes a failed read (ops47-watch-retry): a throttle, a server error,
 * a timeout, a network blip, an expired credential or keys a batch read left unprocessed may heal, and the watch reads
 * again at its next interval; any other AWS error (awsErrorMayHeal) or a target that cannot be used is lasting.
 * Undefined for anything else (a bug), which ends the watch as any command's bug does.
 */
export function refreshFailure(error: unknown): RefreshFailure | undefined {
  // A batch read throttled through all its rounds: a throttle too.
  if (error instanceof UnprocessedKeysError) return { line: errorText(error), lasting: false };
  if (environmentFailure(error) === undefined) return undefined;
  const e = error as Error & { code?: string; cause?: { code?: string }; $metadata?: unknown };
  const code = e.code ?? e.cause?.code;
  const line = `${e.name}${code && code !== e.name ? ` (${code})` : ''}: ${shortLine(e.message)}`;
  // An answer lost after its headers (a stall, a reset) carries its 200 from the SDK's deserializer, no word of AWS's
  // on the request: a timeout or the network, whatever its $metadata (review48-timeouts-lost-body).
  const lost = e.name === 'TimeoutError' || (code !== undefined && NETWORK_CODES.has(code));
  const lasting = lost
    ? false
    : e.$metadata === undefined
      ? isUnusableTarget(error)
      : !awsErrorMayHeal(error as AwsError);
  return { line, lasting };
}

const isUnusableTarget = (error: unknown): boolean =>
  error instanceof TargetError ||
  error instanceof QueueSendRefusedError ||
  error instanceof LookPermissionError ||
  error instanceof LocalStateError ||
  error instanceof PositionLayoutError ||
  error instanceof MotoNotInstalledError ||
  error instanceof MotoPortInUseError;

function quietOnClosedPipe(error: NodeJS.ErrnoException): void {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
}

/** Wraps an operator command: environment failures become one line on stderr and exit code 1. */
export const operatorCommand =
  <C extends OwnExitCommand = never>(run: Command<C>): Command<C> =>
  async (argv, io) => {
    // `backstop status | head`: a closed pipe ends the command quietly, as for any Unix tool.
    if (io.stdout === process.stdout) process.stdout.once('error', quietOnClosedPipe);
    try {
      return await run(argv, io);
    } catch (error) {
      const line = environmentFailure(error);
      if (line === undefined) throw error;
      // One line, an error's line feeds escaped too (terminal49-error-lines).
      io.stderr.write(`backstop: ${printable(line)}\n`);
      return 1;
    }
  };

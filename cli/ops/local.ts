import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type MarketShards,
  PositionIndexLayout,
  PositionLayoutError,
} from '../../shared/adapters/aws/position-layout.ts';
import { readsVenueKey, VENUE } from '../../shared/adapters/venue/index.ts';
import {
  DEFAULT_RISK_CONFIG_INPUT,
  type RiskConfig,
  type RiskConfigInput,
} from '../../shared/domain/config.ts';
import { errorText, firstLine } from '../../shared/error-text.ts';
import { cliTimeouts, DEFAULT_LOCAL_STAGE, TargetError } from '../../shared/local/deployment.ts';
import { rotateLogs, rotateWhileRunning } from '../../shared/local/log-rotation.ts';
import { METRICS_LOG, metricsToFile } from '../../shared/local/metric-lines.ts';
import {
  type MotoCommand,
  type MotoServer,
  motoAnswers,
  motoCommand,
  motoCommandOf,
  startMoto,
} from '../../shared/local/moto.ts';
import { type LocalStack, startLocalStack } from '../../shared/local/stack.ts';
import {
  isAlive,
  LOCAL_LOG,
  type LocalRecord,
  localRecordPath,
  readLocalRecord,
  removeLocalRecord,
  stateDir,
  writeLocalRecord,
} from '../../shared/local/state.ts';
import type { InvocationError } from '../../shared/runner/index.ts';
import { intOption, readInputFile, UsageError } from '../args.ts';
import type { ExitCode } from '../exit-codes.ts';
import { printable, printableWrites } from '../printable.ts';
import { CONFIG_FILE_HELP, INDEX_SHARDS_KEY, type RiskConfigSource, readRiskConfig } from '../risk-config.ts';
import type { CliIo } from '../simulate.ts';
import {
  type Command,
  checkRegion,
  noMorePositionals,
  operatorCommand,
  parseCommand,
  refuseOthersOptions,
  type SubcommandOptions,
  subcommand,
} from './common.ts';

export const DEFAULT_LOCAL_PORT = 4599;

export const LOCAL_USAGE = `Usage: backstop local up [options] | backstop local down

  up     starts the local AWS emulator (moto from .venv, on 127.0.0.1), creates every table, queue and the
         tick bus of the stage, and runs the project's handlers with the local runner until Ctrl-C
  down   stops a stack started with --detach (or by another terminal)

Options of up:
  --port N               emulator port (default ${DEFAULT_LOCAL_PORT}; 0: any free port)
  --stage S              stage name (default ${DEFAULT_LOCAL_STAGE})
  --region R             region (default us-east-1)
  --config FILE.json     risk configuration the handlers run with (default: the built-in defaults):
${CONFIG_FILE_HELP}  --index-shards JSON    index shards of markets written faster than one partition takes, like
                         '{"BTC-USD": 4}' or '{"BTC-USD": {"read": 4, "write": 1}}' (default: one per
                         market; as backstop:positionIndexShards on AWS, which a --config cdk.json that
                         names it gives instead: both, they must agree)
  --venue-key FILE       the venue's API key (the secret's string, as the exchange adapter parses it), stored in
                         the emulator's Secrets Manager as backstop-<stage>-venue-key and named to the functions in
                         VENUE_KEY_ID, as backstop:venueSecret on AWS; required by a venue that reads a key (an
                         exchange adapter in VENUE: docs/VENUE.md), none for the simulated one
  --lambda-retries       failed records come back after their retry backoff (or the visibility timeout), as on
                         Lambda, and a failed tick a minute later, once within its 120 s maximum age, then to
                         tickDeadLetters (default: retry at once). A tick older than 120 s is never invoked
  --detach               run in the background; the endpoint and pid go to .backstop/local.json
  -h, --help             this help

The other commands find the running stack through .backstop/local.json (BACKSTOP_STATE_DIR moves it).
The functions' metrics (EMF, a line an invocation) are appended to .backstop/metrics.log; logs and the
runner's errors stay on the terminal (in .backstop/local.log with --detach). Either, past 50 MB, is moved
to <name>.1 (over an older one), when local up starts and while it runs.
`;

const DETACH_DEADLINE_MS = 120_000;
const STOP_DEADLINE_MS = 60_000;
const WATCH_MS = 1_000;
const LAUNCHER = fileURLToPath(new URL('../../bin/backstop.mjs', import.meta.url));
/** Set for the background child of --detach: where its output goes (recorded for the operator). */
const LOG_ENV = 'BACKSTOP_LOCAL_LOG';
/** Set for that child too: the python its parent found runs moto, not probed again (review50-cli-detach-probe). */
const EMULATOR_ENV = 'BACKSTOP_LOCAL_MOTO_PYTHON';

/**
 * The python that runs the emulator: a detached child's parent found it (given with its log), any other run finds it
 * (`motoCommand`: the setup hint when there is none; without a .venv, python3 probed, a second or so).
 */
export function emulatorOf(env: NodeJS.ProcessEnv, root?: string): MotoCommand {
  const given = env[LOG_ENV] ? env[EMULATOR_ENV] : undefined;
  return given ? motoCommandOf(given) : motoCommand(root);
}

export const LOCAL_OPTIONS = {
  port: { type: 'string' },
  stage: { type: 'string' },
  region: { type: 'string' },
  config: { type: 'string' },
  'index-shards': { type: 'string' },
  'venue-key': { type: 'string' },
  'lambda-retries': { type: 'boolean' },
  detach: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** local down takes none of up's options. */
export const LOCAL_SUBCOMMANDS: SubcommandOptions = {
  up: ['port', 'stage', 'region', 'config', 'index-shards', 'venue-key', 'lambda-retries', 'detach'],
  down: [],
};

interface UpOptions {
  readonly port: number;
  readonly stage: string;
  readonly region: string;
  readonly configFile?: string;
  readonly riskConfig?: RiskConfigInput;
  readonly positionIndexShards?: Readonly<Record<string, MarketShards>>;
  /** --venue-key: the file, as given again to a detached child, and its key. */
  readonly venueKeyFile?: string;
  readonly venueKey?: string;
  readonly lambdaRetries: boolean;
  /** The python that runs the emulator, found by the early check (a detached child is given it: `emulatorOf`). */
  readonly emulator: MotoCommand;
}

export const runLocal: Command = operatorCommand(async (argv, io) => {
  const { positionals, values } = parseCommand(argv, LOCAL_OPTIONS);
  if (values.help) {
    io.stdout.write(LOCAL_USAGE);
    return 0;
  }
  const action = subcommand('local', positionals, ['up', 'down'] as const);
  noMorePositionals('local', positionals, 1);
  const dir = stateDir();
  refuseOthersOptions('local', action, values, LOCAL_OPTIONS, LOCAL_SUBCOMMANDS);
  if (action === 'down') return down(dir, io);
  if (values.stage !== undefined && !/^[a-z][a-z0-9-]{0,30}$/.test(values.stage)) {
    throw new UsageError(`--stage: "${values.stage}" is not a stage name (lower-case letters, digits, -)`);
  }
  checkRegion(values.region);
  // A bad BACKSTOP_AWS_* value is refused here, a usage error, before anything starts (a detached child's failure
  // said it as the background's, exit 1: cli49-env-usage).
  cliTimeouts(true);
  // As the operator commands and simulate read it: a cdk.json gives its backstop:riskConfig (follow48-config-cdk-json).
  const source = readRiskConfig(values.config);
  const riskConfig = values.config === undefined ? undefined : source.input;
  const positionIndexShards = upIndexShards(values['index-shards'], source);
  const venueKey = venueKeyOption(values['venue-key'], VENUE);
  const given: Omit<UpOptions, 'emulator'> = {
    port: intOption('port', values.port, 0, 65535) ?? DEFAULT_LOCAL_PORT,
    stage: values.stage ?? DEFAULT_LOCAL_STAGE,
    region: values.region ?? 'us-east-1',
    ...(values.config === undefined ? {} : { configFile: resolve(values.config) }),
    ...(riskConfig === undefined ? {} : { riskConfig }),
    ...(positionIndexShards === undefined ? {} : { positionIndexShards }),
    ...(venueKey === undefined ? {} : { venueKeyFile: resolve(values['venue-key']!), venueKey }),
    lambdaRetries: values['lambda-retries'] ?? false,
  };
  const running = readLocalRecord(dir);
  if (running && isAlive(running.pid)) {
    throw new TargetError(
      `a local stack is already running (pid ${running.pid}, ${running.endpoint}): stop it with backstop local down`,
    );
  }
  // Fails early, with the setup hint, when the emulator is not installed; found once, neither the start nor a detached
  // child probes again.
  const emulator = emulatorOf(process.env);
  rotateLogs(logsToRotate(dir), (message) => io.stderr.write(`backstop: local up: ${printable(message)}\n`));
  const options: UpOptions = { ...given, emulator };
  return values.detach ? detach(dir, options, io) : up(dir, options, io);
});

/**
 * The logs a start may rotate (small44-log-rotation): not local.log in the background child, which writes to it
 * already (its parent rotated it before opening it), and a move would send this run's lines to local.log.1; it keeps
 * the file within the bound while it runs (`rotateWhileRunning`, in `up`).
 */
const logsToRotate = (dir: string): string[] =>
  process.env[LOG_ENV] ? [join(dir, METRICS_LOG)] : [join(dir, METRICS_LOG), join(dir, LOCAL_LOG)];

/**
 * The shards local up runs: --index-shards, or a --config context's backstop:positionIndexShards, as the stack deployed
 * with it runs (more48c-local-up-context-shards). Both, they must say the same counts: a flag that differs is refused
 * rather than one silently winning, as the local stack stands for the deployed one.
 */
export function upIndexShards(
  flag: string | undefined,
  source: RiskConfigSource,
): Readonly<Record<string, MarketShards>> | undefined {
  const named = source.positionIndexShards;
  const given = flag === undefined ? undefined : indexShardsOption(flag, source.config);
  if (given === undefined || named === undefined) return given ?? named;
  const of = (shards: Readonly<Record<string, MarketShards>>) => new PositionIndexLayout(shards);
  const [a, b] = [of(given), of(named)];
  const differ = source.config.markets
    .map((m) => m.symbol)
    .filter((s) => a.readShards(s) !== b.readShards(s) || a.writeShards(s) !== b.writeShards(s));
  if (differ.length > 0)
    throw new UsageError(
      `--index-shards ${JSON.stringify(given)} differs from ${INDEX_SHARDS_KEY} ${JSON.stringify(named)} of --config ${source.file}` +
        `${source.beside ? ` (with ${source.beside})` : ''} for ${differ.join(', ')}: local up runs the context's shards, as the stack deployed with it does; ` +
        'leave --index-shards out, or change the context (or give a risk configuration file with --index-shards)',
    );
  return named;
}

/**
 * --index-shards: JSON of shard counts by market, checked as the functions will read it, and against the risk
 * configuration's markets as synth checks backstop:positionIndexShards (a typo would leave a market on one shard).
 */
function indexShardsOption(value: string, config: RiskConfig): Record<string, MarketShards> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new UsageError(`--index-shards: not JSON, like '{"BTC-USD": 4}': ${value}`);
  }
  try {
    new PositionIndexLayout(parsed as Record<string, MarketShards>);
  } catch (error) {
    if (error instanceof PositionLayoutError) throw new UsageError(`--index-shards: ${error.message}`);
    throw error;
  }
  const markets = config.markets.map((m) => m.symbol);
  const unknown = Object.keys(parsed as object).filter((symbol) => !markets.includes(symbol));
  if (unknown.length > 0)
    throw new UsageError(
      `--index-shards: ${unknown.join(', ')} is not a market of the risk config (${markets.join(', ')})`,
    );
  return parsed as Record<string, MarketShards>;
}

/** Largest --venue-key file: Secrets Manager's bound on a secret string (65,536 bytes). */
export const MAX_VENUE_KEY_BYTES = 65_536;

/**
 * --venue-key: the key's secret string, the file's text without its last line break (an editor's). Required by a venue
 * that reads a key, as synth requires backstop:venueSecret of it (venue47-secret-required): without it the adapter's
 * first read fails (VENUE_KEY_ID is not set), and every order with it.
 */
export function venueKeyOption(file: string | undefined, venue: string): string | undefined {
  if (file === undefined) {
    if (readsVenueKey(venue))
      throw new UsageError(
        `--venue-key: the venue ${venue} (VENUE, shared/adapters/venue/index.ts) reads its API key from Secrets Manager: give it with --venue-key FILE, the secret's string (docs/VENUE.md, "The secret")`,
      );
    return undefined;
  }
  const key = readInputFile(file, '--venue-key', MAX_VENUE_KEY_BYTES).replace(/\r?\n$/, '');
  if (key === '') throw new UsageError(`--venue-key: ${file} is empty`);
  return key;
}

/** Runs the stack in this process until SIGINT / SIGTERM (or the emulator dies). */
async function up(dir: string, options: UpOptions, io: CliIo): Promise<ExitCode> {
  const metricsFile = join(dir, METRICS_LOG);
  const warn = (message: string) => io.stderr.write(`backstop: local up: ${printable(message)}\n`);
  const metrics = metricsToFile(metricsFile, process.stdout, warn);
  // A detached run writes local.log through its stdout and stderr: kept within the bound while it runs too.
  const log = process.env[LOG_ENV];
  const stopRotation = log ? rotateWhileRunning(log, warn) : () => {};
  // The functions' log lines (and the rest) with stored and remote text escaped, on the terminal and in local.log
  // (cli50-foreground-log-text); right before the try that undoes them, before the metrics' diversion under them.
  const restoreOut = printableWrites(process.stdout);
  const restoreErr = printableWrites(process.stderr);
  try {
    return await runUp(dir, options, io, metricsFile);
  } finally {
    stopRotation();
    restoreErr();
    restoreOut();
    await metrics.close();
  }
}

async function runUp(dir: string, options: UpOptions, io: CliIo, metricsFile: string): Promise<ExitCode> {
  // Its own clients time out as the other commands' on an emulator, the same variables overriding them (a bad one
  // refused before moto starts).
  const timeouts = cliTimeouts(true);
  const moto = await startMoto({
    port: options.port,
    ownProcessGroup: true,
    command: options.emulator,
  });
  let stack: LocalStack;
  try {
    stack = await startLocalStack({
      endpoint: moto.endpoint,
      stage: options.stage,
      region: options.region,
      ...(options.riskConfig ? { riskConfig: options.riskConfig } : {}),
      ...(options.positionIndexShards ? { positionIndexShards: options.positionIndexShards } : {}),
      ...(options.venueKey === undefined ? {} : { venueKey: options.venueKey }),
      fastRetries: !options.lambdaRetries,
      schedules: true,
      timeouts,
    });
  } catch (error) {
    await moto.stop();
    throw error;
  }
  const record: LocalRecord = {
    pid: process.pid,
    motoPid: moto.pid,
    endpoint: moto.endpoint,
    stage: options.stage,
    region: options.region,
    startedAt: new Date().toISOString(),
    // What the stack runs, the built-in configuration included: the commands that price by it (positions
    // reindex, fund withdraw) take it from here instead of asking for --config.
    riskConfig: options.riskConfig ?? DEFAULT_RISK_CONFIG_INPUT,
    ...(options.positionIndexShards ? { positionIndexShards: options.positionIndexShards } : {}),
    ...(process.env[LOG_ENV] ? { log: process.env[LOG_ENV] } : {}),
  };
  writeLocalRecord(dir, record);
  io.stdout.write(
    `backstop local stack up: endpoint ${moto.endpoint}, stage ${options.stage} (pid ${process.pid}); Ctrl-C stops it\n` +
      `metrics (EMF, one line an invocation) go to ${metricsFile}; logs and runner errors stay here\n`,
  );
  const reason = await untilStopped(stack, moto, io);
  io.stdout.write(`stopping (${reason})...\n`);
  try {
    await stack.stop();
  } finally {
    await moto.stop();
    removeLocalRecord(dir, process.pid);
  }
  io.stdout.write('backstop local stack stopped\n');
  return reason === 'emulator exited' ? 1 : 0;
}

/** Resolves on the first SIGINT / SIGTERM or when the emulator dies; reports runner errors meanwhile. */
function untilStopped(stack: LocalStack, moto: MotoServer, io: CliIo): Promise<string> {
  const printed = new WeakSet<InvocationError>();
  return new Promise((resolveStop) => {
    const finish = (reason: string) => {
      clearInterval(watch);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // A second Ctrl-C while stopping: stop the emulator and leave at once.
      const force = () => {
        void moto.stop().finally(() => process.exit(130));
      };
      process.once('SIGINT', force);
      process.once('SIGTERM', force);
      resolveStop(reason);
    };
    const onSignal = (signal: NodeJS.Signals) => finish(signal);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const watch = setInterval(() => {
      for (const error of stack.runner.errors) {
        if (printed.has(error)) continue;
        printed.add(error);
        io.stderr.write(`${runnerErrorLine(error)}\n`);
      }
      if (!moto.running()) finish('emulator exited');
    }, WATCH_MS);
  });
}

/** The stderr line of a function's failed invocation: its error is the code's, AWS's or the venue's text, escaped. */
export const runnerErrorLine = (error: InvocationError): string =>
  `runner: ${error.functionId}: ${printable(describeFailure(error.error))}`;

/** One line for a failed invocation; a failed batch names its first record's error, not just "all failed". */
export function describeFailure(error: unknown): string {
  const first = (error as { recordErrors?: readonly unknown[] } | undefined)?.recordErrors?.[0];
  const cause = first instanceof Error ? first : error;
  return firstLine(errorText(cause)).slice(0, 300);
}

/** Starts `local up` as a background process and returns once it is ready (or has failed). */
async function detach(dir: string, options: UpOptions, io: CliIo): Promise<ExitCode> {
  mkdirSync(dir, { recursive: true });
  const log = join(dir, LOCAL_LOG);
  const fd = openSync(log, 'a');
  const args = [
    LAUNCHER,
    'local',
    'up',
    '--port',
    String(options.port),
    '--stage',
    options.stage,
    '--region',
    options.region,
    ...(options.configFile ? ['--config', options.configFile] : []),
    ...(options.positionIndexShards ? ['--index-shards', JSON.stringify(options.positionIndexShards)] : []),
    // The file, not the key: a process's arguments are anyone's to read.
    ...(options.venueKeyFile ? ['--venue-key', options.venueKeyFile] : []),
    ...(options.lambdaRetries ? ['--lambda-retries'] : []),
  ];
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: {
      ...process.env,
      BACKSTOP_STATE_DIR: dir,
      [LOG_ENV]: log,
      [EMULATOR_ENV]: options.emulator.command,
    },
  });
  closeSync(fd);
  let exitCode: number | null = null;
  child.once('exit', (code) => {
    exitCode = code ?? 1;
  });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new TargetError('could not start the background process');
  // Durations by the monotonic clock: a step of the machine's gave up at once or waited an hour (tidy50-local-deadline-clock).
  const deadline = performance.now() + DETACH_DEADLINE_MS;
  for (;;) {
    const record = readLocalRecord(dir);
    if (record?.pid === pid) {
      io.stdout.write(
        `backstop local stack running in the background: endpoint ${record.endpoint}, stage ${record.stage} ` +
          `(pid ${pid}, log ${log}); stop it with backstop local down\n`,
      );
      return 0;
    }
    if (exitCode !== null) throw new TargetError(`local up failed in the background: ${lastLine(log)}`);
    if (performance.now() > deadline) {
      process.kill(pid, 'SIGTERM');
      throw new TargetError(`local up was not ready within ${DETACH_DEADLINE_MS / 1000} s (log ${log})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function lastLine(file: string): string {
  try {
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    return lines.at(-1)?.replace(/^backstop: /, '') ?? '(empty log)';
  } catch {
    return '(no log)';
  }
}

/** On Linux, a pid whose command line is not backstop's is someone else's (the pid was reused). */
function looksLikeLocalUp(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('local') && /backstop|cli[/\\]main/.test(cmdline);
  } catch {
    return true;
  }
}

async function waitGone(pid: number, deadlineMs: number): Promise<boolean> {
  const deadline = performance.now() + deadlineMs;
  while (isAlive(pid)) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** Stops the recorded stack (SIGTERM: the same clean stop as Ctrl-C) and waits for it to exit. */
async function down(dir: string, io: CliIo): Promise<ExitCode> {
  const record = readLocalRecord(dir);
  if (!record) {
    io.stdout.write('no local stack is running\n');
    return 0;
  }
  if (!isAlive(record.pid) || !looksLikeLocalUp(record.pid)) {
    // The stack died without cleaning up: its emulator may still be there.
    if (isAlive(record.motoPid) && (await motoAnswers(record.endpoint)))
      process.kill(record.motoPid, 'SIGTERM');
    rmSync(localRecordPath(dir), { force: true });
    io.stdout.write(`the local stack (pid ${record.pid}) was not running; removed its record\n`);
    return 0;
  }
  process.kill(record.pid, 'SIGTERM');
  if (!(await waitGone(record.pid, STOP_DEADLINE_MS))) {
    throw new TargetError(
      `the local stack (pid ${record.pid}) did not stop within ${STOP_DEADLINE_MS / 1000} s`,
    );
  }
  await waitGone(record.motoPid, 10_000);
  removeLocalRecord(dir, record.pid);
  io.stdout.write(`backstop local stack stopped (pid ${record.pid}, ${record.endpoint})\n`);
  return 0;
}

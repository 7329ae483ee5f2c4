import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { afterAll, beforeAll } from 'vitest';
import { main } from '../../cli/main.ts';
import type { CliIo } from '../../cli/simulate.ts';
import {
  deadLetterQueueUrlKey,
  OUTPUT_KEYS,
  queueUrlKey,
  stackName,
  tableNameKey,
} from '../../infra/outputs.ts';
import {
  type AwsClients,
  createAwsClients,
  createLocalResources,
  localClientConfig,
  type ResourceNames,
} from '../../shared/adapters/aws/index.ts';
import { QUEUES, TABLES } from '../../shared/topology.ts';
import { type MotoServer, startMoto } from './moto.ts';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in this process, as `backstop ...argv` would, and returns its exit code and what it printed. */
export const cli = (...argv: string[]): Promise<CliRun> => cliWith({}, ...argv);

export interface CliWith extends Pick<CliIo, 'pause'> {
  /**
   * Told of each line the command writes to stderr as it is written, and how many so far: a test moves the stack
   * there while the command runs (between a hold's looks). What it returns (the test's write) is awaited before the
   * run's outcome is returned.
   */
  readonly onStderrLine?: ((line: string, lines: number) => Promise<unknown> | undefined) | undefined;
}

/** `cli` with the CLI's waits given (`pause`: a test's, which waits no real time), or its stderr's lines watched. */
export async function cliWith({ onStderrLine, ...with_ }: CliWith, ...argv: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  let lines = 0;
  const moves: Promise<unknown>[] = [];
  const code = await main(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: {
      isTTY: false,
      write: (t: string) => {
        stderr += t;
        lines += 1;
        const move = onStderrLine?.(t, lines);
        if (move) moves.push(move);
      },
    },
    ...with_,
  });
  await Promise.all(moves);
  return { code, stdout, stderr };
}

/** `backstop inject tick` for `symbol` at `price`, with more options (`--wait 0` where no stack runs). */
export const injectTick = (symbol: string, price: string, ...options: string[]): Promise<CliRun> =>
  cli('inject', 'tick', '--symbol', symbol, '--price', price, ...options);

/**
 * Publishes a local stage's resource names as the outputs of a CloudFormation stack `Backstop-<stage>` on the
 * emulator, as `cdk deploy` would: the CLI's `--target localstack|aws` finds a deployed stack from them. `more`:
 * other outputs (a `RiskConfigDigest`); `region`: the one it is deployed in.
 */
export async function publishStackOutputs(
  endpoint: string,
  stage: string,
  names: ResourceNames,
  more: Readonly<Record<string, string>> = {},
  region = 'us-east-1',
): Promise<void> {
  const outputs: Record<string, { Value: string }> = {
    [OUTPUT_KEYS.tickBusName]: { Value: names.busName },
    [OUTPUT_KEYS.stage]: { Value: stage },
    ...Object.fromEntries(Object.entries(more).map(([key, value]) => [key, { Value: value }])),
  };
  for (const t of TABLES) outputs[tableNameKey(t.id)] = { Value: names.tables[t.id] };
  for (const q of QUEUES) {
    outputs[queueUrlKey(q.id)] = { Value: names.queues[q.id].url };
    const dlq = names.queues[q.id].dlqUrl;
    if (dlq) outputs[deadLetterQueueUrlKey(q.id)] = { Value: dlq };
  }
  const cfn = new CloudFormationClient({
    region,
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    await cfn.send(
      new CreateStackCommand({
        StackName: stackName(stage),
        TemplateBody: JSON.stringify({
          Resources: { Marker: { Type: 'AWS::SQS::Queue', Properties: { QueueName: `marker-${stage}` } } },
          Outputs: outputs,
        }),
      }),
    );
  } finally {
    cfn.destroy();
  }
}

/** One moto for a test file of operator commands, with its clients and a state folder for the CLI's records. */
export interface OperatorEmulator {
  readonly moto: MotoServer;
  readonly clients: AwsClients;
  /** A temporary folder of the file's own (the CLI's state is in its `state` subfolder). */
  readonly dir: string;
  /** A new stage's local resources and the CLI arguments that reach them (`--endpoint ... --stage ...`). */
  newStage(prefix: string): Promise<{ stage: string; names: ResourceNames; at: string[] }>;
}

/**
 * Starts moto before the file's tests and stops it after them, with BACKSTOP_STATE_DIR in a temporary folder,
 * restoring the environment afterwards. Read the fields inside tests (they are set in beforeAll).
 */
export function useOperatorEmulator(name: string): OperatorEmulator {
  const saved = { ...process.env };
  // Made when the file's tests start, not when they are collected: a run filtering them all out (`-t`) runs no
  // afterAll, and a folder made at collection stayed in the OS temp dir (final45-filtered-temp-dirs).
  let dir: string | undefined;
  let moto: MotoServer | undefined;
  let clients: AwsClients | undefined;
  let stages = 0;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), `backstop-${name}-`));
    process.env.BACKSTOP_STATE_DIR = path.join(dir, 'state');
    moto = await startMoto();
    clients = createAwsClients(localClientConfig(moto.endpoint));
  }, 60_000);
  afterAll(async () => {
    try {
      clients?.destroy();
      await moto?.stop();
    } finally {
      process.env = saved;
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the emulator is started in beforeAll: read it inside a test');
    return value;
  };
  return {
    get moto() {
      return started(moto);
    },
    get clients() {
      return started(clients);
    },
    get dir() {
      return started(dir);
    },
    async newStage(prefix: string) {
      stages += 1;
      const stage = `${prefix}${stages}`;
      const names = await createLocalResources(started(clients), stage);
      return { stage, names, at: ['--endpoint', started(moto).endpoint, '--stage', stage] };
    },
  };
}

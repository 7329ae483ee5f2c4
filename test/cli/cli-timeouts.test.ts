import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { holdLooks } from '../../cli/ops/events.ts';
import { type FailedRefresh, failedRefreshLine, watchStatus } from '../../cli/ops/status.ts';
import { clientOptions, EMULATOR_TIMEOUTS, longPollOptions } from '../../shared/adapters/aws/clients.ts';
import {
  CLI_AWS_TIMEOUTS,
  CONNECT_TIMEOUT_ENV,
  cliTimeouts,
  type Deployment,
  EnvironmentValueError,
  openDeployment,
  REQUEST_TIMEOUT_ENV,
} from '../../shared/local/deployment.ts';
import { listDeadLetters, RECEIVE_WAIT_SECONDS } from '../../shared/local/dlq.ts';
import { collectLiquidationWork, type StatusReport, statusWatcher } from '../../shared/local/status.ts';
import { withdrawalChecker } from '../../shared/services/admin.ts';
import { cli } from '../support/cli.ts';
import { motoStages } from '../support/moto.ts';

/**
 * ops47-cli-timeouts: the CLI's clients (openDeployment) had no timeouts, the SDK's default, so a read on a dead
 * connection waited for minutes per attempt: `status --watch` showed old figures as current, `replay --hold` sent no
 * held tick. The dead connection here is a proxy to moto that, once cut, accepts and reads requests and never answers.
 */

const moto = motoStages('cto');
/** A state folder that is not there: no local.json, the stage named by --endpoint and --stage alone. */
const NO_STATE = path.join(tmpdir(), 'backstop-cli-timeouts-no-such-dir');

/** A TCP proxy to `target` whose `swallow` says which requests it takes and never answers. */
async function cuttableProxy(target: string): Promise<{
  readonly endpoint: string;
  /** Requests (a connection's first chunk of one) to swallow from now on; a connection that swallowed one stays dead. */
  swallow: (chunk: string) => boolean;
  readonly swallowed: () => number;
  close(): Promise<void>;
}> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let swallowed = 0;
  const proxy = {
    endpoint: '',
    swallow: (_chunk: string) => false,
    swallowed: () => swallowed,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    let upstream: Socket | undefined;
    let dead = false;
    client.on('data', (chunk) => {
      if (!dead && proxy.swallow(chunk.toString('latin1'))) {
        dead = true;
        swallowed += 1;
      }
      if (dead) return;
      if (!upstream) {
        upstream = connect(Number(port), hostname);
        sockets.add(upstream);
        upstream.on('data', (answer) => client.write(answer));
        upstream.on('close', () => client.destroy());
        upstream.on('error', () => client.destroy());
      }
      upstream.write(chunk);
    });
    client.on('error', () => {});
    client.on('close', () => {
      sockets.delete(client);
      upstream?.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  proxy.endpoint = `http://127.0.0.1:${address.port}`;
  return proxy;
}

/** The stage of a table's physical name, backstop-<stage>-<id>. */
const stageOf = (table: string): string => table.split('-')[1]!;
const every = () => true;
const none = () => false;

describe('the CLI clients: timeouts (ops47-cli-timeouts)', () => {
  const opened: { close(): void | Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of opened.splice(0).reverse()) await o.close();
  });

  /** A local stage on moto, opened by the CLI's openDeployment through a proxy, with these timeouts. */
  async function openThroughProxy(requestMs: number) {
    const { names, clients } = await moto.stage();
    clients.destroy();
    const stage = stageOf(names.tables.markets);
    const proxy = await cuttableProxy(moto.endpoint());
    opened.push(proxy);
    const deployment = await openDeployment({
      kind: 'local',
      endpoint: proxy.endpoint,
      stage,
      stateDir: NO_STATE,
      env: { [CONNECT_TIMEOUT_ENV]: '1000', [REQUEST_TIMEOUT_ENV]: String(requestMs) },
    });
    opened.push(deployment);
    return { deployment, proxy };
  }

  it('a status read on a dead connection fails as a TimeoutError in bounded time; the watch marks the figures STALE and reads again', async () => {
    // Every moto call of a refresh answers well within 2 s; three attempts of one that never answers take 6 s.
    const requestMs = 2_000;
    const { deployment, proxy } = await openThroughProxy(requestMs);
    expect(deployment.clients.config.timeouts).toEqual({ connectionMs: 1_000, requestMs });
    const written: StatusReport[] = [];
    const failures: { failed: FailedRefresh; tookMs: number }[] = [];
    const stop = new AbortController();
    // The watch's clock of durations is the test's, read once at each refresh's start: the failed refresh is timed from
    // that reading to its failure by that one clock. The stamps (a report's `at`, a failure's `atMs`) are by another,
    // AWS's in the CLI, the machine's here.
    let refreshStartedMs = 0;
    await watchStatus({
      read: statusWatcher(deployment, undefined, withdrawalChecker()),
      write: (report) => written.push(report),
      writeFailure: (failed) => failures.push({ failed, tookMs: performance.now() - refreshStartedMs }),
      intervalMs: 1_000,
      nowMs: () => {
        refreshStartedMs = performance.now();
        return refreshStartedMs;
      },
      awsNowMs: Date.now,
      // No wait: the test's steps between refreshes. Cut after the first, mended after the failure, then Ctrl-C.
      sleep: async () => {
        if (written.length === 1 && failures.length === 0) proxy.swallow = every;
        else if (failures.length === 1 && written.length === 1) proxy.swallow = none;
        else stop.abort();
      },
      signal: stop.signal,
    });
    expect(written).toHaveLength(2);
    expect(failures).toHaveLength(1);
    const [{ failed, tookMs }] = failures as [(typeof failures)[0]];
    expect(proxy.swallowed()).toBeGreaterThanOrEqual(3);
    // The SDK's three attempts, each its request timeout, and its backoff between them: bounded. Before, no timeout.
    expect(tookMs).toBeGreaterThanOrEqual(requestMs);
    expect(tookMs).toBeLessThan(3 * requestMs + 5_000);
    expect(failed.error).toMatch(
      /^TimeoutError \(ETIMEDOUT\): @smithy\/node-http-handler - \[ERROR\] a request has exceeded the configured 2000 ms requestTimeout\.$/,
    );
    expect(failed.last).toBe(written[0]);
    expect(failedRefreshLine(failed)).toContain(`STALE: the figures shown were read at ${written[0]!.at}`);
    // Stamped by the reports' clock, between the figures it shows and the read once the connection heals.
    expect(failed.atMs).toBeGreaterThanOrEqual(Date.parse(written[0]!.at));
    expect(Date.parse(written[1]!.at)).toBeGreaterThan(failed.atMs);
  });

  it("replay --hold's look on a dead connection fails as a TimeoutError, and the hold goes on", async () => {
    const requestMs = 2_000;
    const { deployment, proxy } = await openThroughProxy(requestMs);
    const warned: string[] = [];
    const looks = holdLooks({
      collect: () => collectLiquidationWork(deployment),
      everyMs: 30_000,
      target: deployment,
      warn: (line) => warned.push(line),
    });
    proxy.swallow = every;
    const started = performance.now();
    // True: the held tick goes. Before, the look never ended and no held tick went.
    expect(await looks.pending()).toBe(true);
    expect(performance.now() - started).toBeLessThan(3 * requestMs + 5_000);
    expect(looks.ended()).toBeUndefined();
    expect(warned).toEqual([
      expect.stringMatching(
        /^hold: the stack's status could not be read \(TimeoutError \(ETIMEDOUT\): .* 2000 ms requestTimeout\.\): its last price is sent again/,
      ),
    ]);
    proxy.swallow = none;
    // No work on the stage: the next look reads it and the hold is done.
    expect(await looks.pending()).toBe(false);
    expect(looks.work()).toEqual(expect.objectContaining({ nonTerminal: 0 }));
  });

  it("a deployed stack's outputs are read with the timeouts too (CloudFormation on a dead connection)", async () => {
    const proxy = await cuttableProxy(moto.endpoint());
    opened.push(proxy);
    // The probe (a GET) goes through; every SDK call (a POST) is swallowed.
    proxy.swallow = (chunk) => chunk.startsWith('POST ');
    const open = openDeployment({
      kind: 'localstack',
      endpoint: proxy.endpoint,
      stage: 'dead',
      env: { [CONNECT_TIMEOUT_ENV]: '1000', [REQUEST_TIMEOUT_ENV]: '300' },
    });
    await expect(open).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(proxy.swallowed()).toBe(3);
  });

  it('long polls work on moto with a request timeout below their wait', async () => {
    const { names, clients } = await moto.stage();
    const stage = stageOf(names.tables.markets);
    // Below the wait: each empty poll answers after RECEIVE_WAIT_SECONDS. Above any other call's time on moto.
    const requestMs = 900;
    expect(requestMs).toBeLessThan(RECEIVE_WAIT_SECONDS * 1000);
    const open = (env: NodeJS.ProcessEnv): Promise<Deployment> =>
      openDeployment({ kind: 'local', endpoint: moto.endpoint(), stage, stateDir: NO_STATE, env });
    const short = await open({ [REQUEST_TIMEOUT_ENV]: String(requestMs) });
    const usual = await open({});
    opened.push({ close: () => clients.destroy() }, short, usual);
    expect(short.clients.config.timeouts).toEqual({
      connectionMs: EMULATOR_TIMEOUTS.connectionMs,
      requestMs,
    });
    expect(usual.clients.config.timeouts).toEqual(EMULATOR_TIMEOUTS);
    // An empty DLQ: one poll, which waits its whole wait. Before, a TimeoutError after three attempts.
    const started = performance.now();
    expect(await listDeadLetters(short, 'liquidations')).toEqual([]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(RECEIVE_WAIT_SECONDS * 1000);
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: names.queues.liquidations.dlqUrl, MessageBody: '{"x":1}' }),
    );
    // A message: the first poll has it, the next waits and answers empty.
    expect(await listDeadLetters(short, 'liquidations')).toHaveLength(1);
    expect(await listDeadLetters(usual, 'liquidations')).toHaveLength(1);
  });
});

/** A DynamoDB that answers every request with `{}` (no item) `lagMs` late, as many at once as asked: a far region. */
async function laggingDynamo(lagMs: number): Promise<{ readonly endpoint: string; close(): Promise<void> }> {
  const server = createHttpServer((request, response) => {
    request.resume();
    request.on('end', () =>
      setTimeout(() => {
        response.setHeader('content-type', 'application/x-amz-json-1.0');
        response.end('{}');
      }, lagMs),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('the CLI clients: a request timeout counts the wait for a connection (review47-timeout-socket-queue)', () => {
  const opened: { close(): void | Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of opened.splice(0).reverse()) await o.close();
  });

  it("dlq list reads its dead letters' records a few at a time: on a slow link each answers within the timeout", async () => {
    // Every record read answers 250 ms late. Sent all at once, 200 reads queued for the client's 50 connections:
    // 4 rounds, 1 s for the last, past a 500 ms request timeout that runs from the call.
    const { names, clients } = await moto.stage();
    opened.push({ close: () => clients.destroy() });
    const letters = 200;
    const ids = Array.from({ length: letters }, (_, i) => `gone-${String(i).padStart(3, '0')}`);
    for (let at = 0; at < letters; at += 10)
      await clients.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: names.queues.liquidations.dlqUrl,
          Entries: ids
            .slice(at, at + 10)
            .map((id, j) => ({ Id: String(j), MessageBody: JSON.stringify({ liquidationId: id }) })),
        }),
      );
    const dynamo = await laggingDynamo(250);
    opened.push(dynamo);
    // The queues on moto with the emulator's timeouts; the records on the far DynamoDB with a tight one.
    const deployment = await openDeployment({
      kind: 'local',
      endpoint: moto.endpoint(),
      stage: stageOf(names.tables.markets),
      stateDir: NO_STATE,
      env: {},
    });
    opened.push(deployment);
    const far = new DynamoDBClient(
      clientOptions({
        ...deployment.clients.config,
        endpoint: dynamo.endpoint,
        timeouts: { connectionMs: 1_000, requestMs: 500 },
      }),
    );
    opened.push({ close: () => far.destroy() });
    const slow: Deployment = { ...deployment, clients: { ...deployment.clients, dynamo: far } };
    // Before, TimeoutError: a request has exceeded the configured 500 ms requestTimeout.
    const listed = await listDeadLetters(slow, 'liquidations', letters);
    const idOf = (body: string) => (JSON.parse(body) as { liquidationId: string }).liquidationId;
    expect(listed.map((l) => idOf(l.body)).sort()).toEqual(ids);
    // Each record read (and found missing), none skipped.
    for (const l of listed) expect(l.reason).toContain(`liquidation ${idOf(l.body)} has no record`);
  });
});

describe('the CLI clients: their timeouts (ops47-cli-timeouts)', () => {
  it('are tighter on AWS than on an emulator, each overridden by its variable, a bad value refused', () => {
    expect(cliTimeouts(false, {})).toEqual(CLI_AWS_TIMEOUTS);
    expect(cliTimeouts(true, {})).toEqual(EMULATOR_TIMEOUTS);
    expect(cliTimeouts(false, { [REQUEST_TIMEOUT_ENV]: '30000' })).toEqual({
      connectionMs: CLI_AWS_TIMEOUTS.connectionMs,
      requestMs: 30_000,
    });
    expect(cliTimeouts(true, { [CONNECT_TIMEOUT_ENV]: '250', [REQUEST_TIMEOUT_ENV]: '' })).toEqual({
      connectionMs: 250,
      requestMs: EMULATOR_TIMEOUTS.requestMs,
    });
    for (const bad of ['0', '-5', '1.5', '2s', '600001'])
      expect(() => cliTimeouts(false, { [REQUEST_TIMEOUT_ENV]: bad })).toThrow(
        new EnvironmentValueError(
          `${REQUEST_TIMEOUT_ENV} (environment variable): "${bad}" is not a whole number of milliseconds from 1 to 600000 (unset it for the default, 10000)`,
        ),
      );
  });

  it('refuse a bad value as a usage error, exit 2 as a bad option, before any target is reached (cli49-env-usage)', async () => {
    // Found in session 49: a bad value was a TargetError, exit 1, where a bad option exits 2.
    const line = (name: string, fallback: number) =>
      `backstop: ${name} (environment variable): "2s" is not a whole number of milliseconds from 1 to 600000 (unset it for the default, ${fallback})\n`;
    // An endpoint nothing answers on: the value is refused before it is tried.
    const nowhere = 'http://127.0.0.1:9';
    for (const [name, fallback] of [
      [REQUEST_TIMEOUT_ENV, EMULATOR_TIMEOUTS.requestMs],
      [CONNECT_TIMEOUT_ENV, EMULATOR_TIMEOUTS.connectionMs],
    ] as const) {
      vi.stubEnv(name, '2s');
      try {
        for (const argv of [
          ['status', '--endpoint', nowhere],
          ['dlq', 'list', '--target', 'localstack', '--endpoint', nowhere],
          ['local', 'up', '--port', '9'],
        ]) {
          const run = await cli(...argv);
          expect([run.code, run.stderr, run.stdout], argv.join(' ')).toEqual([2, line(name, fallback), '']);
        }
        // On AWS, its own default named.
        const aws = await cli('status', '--target', 'aws', '--region', 'us-east-1');
        const awsDefault =
          name === REQUEST_TIMEOUT_ENV ? CLI_AWS_TIMEOUTS.requestMs : CLI_AWS_TIMEOUTS.connectionMs;
        expect([aws.code, aws.stderr]).toEqual([2, line(name, awsDefault)]);
      } finally {
        vi.unstubAllEnvs();
      }
    }
  });

  it("are the ones docs/DEPLOY.md's operator section gives", () => {
    const deploy = readFileSync(new URL('../../docs/DEPLOY.md', import.meta.url), 'utf8').replace(
      /\s+/g,
      ' ',
    );
    const s = (ms: number) => `${ms / 1000} s`;
    expect(deploy).toContain(
      `With \`--target aws\` each call's attempt gives up after ${s(CLI_AWS_TIMEOUTS.connectionMs)} without a connection or ${s(CLI_AWS_TIMEOUTS.requestMs)} without an answer`,
    );
    expect(deploy).toContain(
      `with \`--target local\` or \`localstack\`, ${EMULATOR_TIMEOUTS.connectionMs / 1000} and ${s(EMULATOR_TIMEOUTS.requestMs)}`,
    );
    expect(deploy).toContain(
      `\`${CONNECT_TIMEOUT_ENV}\` and \`${REQUEST_TIMEOUT_ENV}\` (milliseconds, 1 to 600000)`,
    );
  });

  it("give a long poll its wait on top of the client's request timeout", () => {
    const timeouts = { connectionMs: 1_000, requestMs: 500 };
    expect(longPollOptions({ region: 'us-east-1', timeouts }, 20)).toEqual({ requestTimeout: 20_500 });
    expect(longPollOptions({ region: 'us-east-1', timeouts }, 0)).toEqual({});
    // No timeout to add to: the SDK's.
    expect(longPollOptions({ region: 'us-east-1' }, 20)).toEqual({});
  });
});

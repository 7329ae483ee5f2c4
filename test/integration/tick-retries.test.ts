import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../infra/config.ts';
import {
  type AwsClients,
  createAwsClients,
  createAwsQueueTransports,
  createLocalResources,
  localClientConfig,
} from '../../shared/adapters/aws/index.ts';
import { LOCAL_TICK_MAX_RECEIVES } from '../../shared/adapters/aws/resources.ts';
import { createLocalRunner } from '../../shared/runner/index.ts';
import { TICK_ATTEMPTS } from '../../shared/runner/runner.ts';
import { asyncRetriesWithin, TICK_BUS } from '../../shared/topology.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

let moto: MotoServer | undefined;
let clients: AwsClients;
beforeAll(async () => {
  moto = await startMoto();
  clients = createAwsClients(localClientConfig(moto.endpoint));
});
afterAll(async () => {
  clients?.destroy();
  await moto?.stop();
});

/** One ETH-USD tick at 100 on the stage's bus. */
const putTick = (busName: string, sequence: number) =>
  clients.events.send(
    new PutEventsCommand({
      Entries: [
        {
          EventBusName: busName,
          Source: TICK_BUS.source,
          DetailType: TICK_BUS.detailType,
          Detail: JSON.stringify({ symbol: 'ETH-USD', markPrice: '100', sequence }),
        },
      ],
    }),
  );

/** Attempts AWS gives a tick whose margin-check invocation throws: the first, plus Lambda's async retries. */
const awsAttempts = 1 + asyncRetriesWithin(loadConfig({}).tickMaxEventAgeSeconds);

it('the local tick path gives a failing tick as many attempts as AWS does (1 + MaximumRetryAttempts)', () => {
  // A function error is retried by Lambda's asynchronous invocation config (1 retry within 120 s), not by
  // EventBridge, whose retries cover failures to deliver: the local redrive was 3 receives.
  expect(awsAttempts).toBe(2);
  expect(TICK_ATTEMPTS).toBe(awsAttempts);
  // One receive more: the runner gives a tick whose last attempt timed out up with its record (below).
  expect(LOCAL_TICK_MAX_RECEIVES).toBe(awsAttempts + 1);
});

it('a tick whose margin-check fails as often as AWS retries it is dead-lettered locally too, not processed later', async () => {
  const names = await createLocalResources(clients, 'tickretries');
  const queues = createAwsQueueTransports(clients, names);
  let attempts = 0;
  const processed: unknown[] = [];
  const runner = createLocalRunner({
    handlers: {
      marginCheck: async (event: { detail: unknown }) => {
        attempts += 1;
        if (attempts <= awsAttempts) throw new Error('throttled');
        processed.push(event.detail);
      },
    },
    tickQueue: queues.tickQueue,
    failureVisibilitySeconds: 0,
    idlePollMs: 20,
  });
  try {
    await putTick(names.busName, 1);
    await runner.runUntilIdle({ deadlineMs: 20_000 });
  } finally {
    await runner.stop();
  }
  const dead = await queues.queues.tickDeadLetters.receive(10, 30);
  // On AWS: 2 attempts, then the on-failure destination (tickDeadLetters); margin-check never succeeds.
  expect({ attempts, processed: processed.length, deadLettered: dead.length }).toEqual({
    attempts: awsAttempts,
    processed: 0,
    deadLettered: 1,
  });
});

it("a tick Lambda gives up on reaches the on-failure destination as Lambda's record, with its last error", async () => {
  const names = await createLocalResources(clients, 'tickrecord');
  const queues = createAwsQueueTransports(clients, names);
  let attempts = 0;
  const runner = createLocalRunner({
    handlers: {
      marginCheck: async () => {
        attempts += 1;
        throw new Error(`throttled on attempt ${attempts}`);
      },
    },
    tickQueue: queues.tickQueue,
    queues: { tickDeadLetters: queues.queues.tickDeadLetters },
    failureVisibilitySeconds: 0,
    idlePollMs: 20,
  });
  try {
    await putTick(names.busName, 7);
    await runner.runUntilIdle({ deadlineMs: 20_000 });
  } finally {
    await runner.stop();
  }
  const dead = await queues.queues.tickDeadLetters.receive(10, 30);
  expect(dead).toHaveLength(1);
  // Before: the bare event, so `backstop dlq list` could say only "margin-check failed on every retry".
  expect(JSON.parse(dead[0]!.body)).toMatchObject({
    requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: awsAttempts },
    requestPayload: { source: TICK_BUS.source, detail: { symbol: 'ETH-USD', sequence: 7 } },
    responsePayload: { errorType: 'Error', errorMessage: `throttled on attempt ${awsAttempts}` },
  });
  expect(attempts).toBe(awsAttempts);
  // Taken off the tick queue, not left for its redrive to copy into the DLQ as well.
  expect(await queues.tickQueue.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
});

import type { EventBridgeEvent, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type AwsClients,
  createAwsClients,
  createAwsQueueTransports,
  createLocalResources,
  localClientConfig,
} from '../../shared/adapters/aws/index.ts';
import type { QueueTransport } from '../../shared/ports/index.ts';
import { createLocalRunner, RunnerTimeoutError } from '../../shared/runner/index.ts';
import { TICK_BUS } from '../../shared/topology.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/**
 * The local runner's deliveries against Lambda's. Found by a review of the runner in session 25 (docs/RELIABILITY.md,
 * runner-tick-ack and runner-concurrency-one).
 */

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

const tickEvent = (sequence: number) =>
  JSON.stringify({
    version: '0',
    id: `ev-${sequence}`,
    source: TICK_BUS.source,
    'detail-type': TICK_BUS.detailType,
    detail: { symbol: 'ETH-USD', markPrice: '100', sequence },
  });

it("one tick's failed acknowledgement does not keep the other ticks of its receive from being invoked (each async event stands alone on AWS)", async () => {
  const names = await createLocalResources(clients, 'rv9ack');
  const { tickQueue } = createAwsQueueTransports(clients, names);
  let failDeletes = 1;
  // The tick queue as the runner sees it, with one DeleteMessage failing (a transient SQS error).
  const flaky: QueueTransport = {
    name: tickQueue.name,
    send: (body, delay) => tickQueue.send(body, delay),
    sendBatch: (bodies) => tickQueue.sendBatch(bodies),
    receive: (max, visibility) => tickQueue.receive(max, visibility),
    changeVisibility: (handle, seconds) => tickQueue.changeVisibility(handle, seconds),
    depth: () => tickQueue.depth(),
    delete: async (handle) => {
      if (failDeletes-- > 0) throw new Error('injected: DeleteMessage failed');
      await tickQueue.delete(handle);
    },
  };
  await tickQueue.sendBatch([1, 2, 3].map(tickEvent));
  const invoked: number[] = [];
  const runner = createLocalRunner({
    handlers: {
      marginCheck: async (event: EventBridgeEvent<'PriceTick', { sequence: number }>) =>
        void invoked.push(event.detail.sequence),
    },
    tickQueue: flaky,
    // As the local stack's tick queue: margin-check's 30 s timeout and Lambda's minute before a retry.
    visibilityTimeoutSeconds: 90,
    idlePollMs: 20,
  });
  try {
    await runner.runUntilIdle({ deadlineMs: 5_000 }).catch((error: unknown) => {
      if (!(error instanceof RunnerTimeoutError)) throw error;
    });
  } finally {
    await runner.stop();
  }
  // AWS: EventBridge invokes margin-check once per event; how one invocation ends never delays another. The runner
  // stops its loop over the receive at the failed delete: ticks 2 and 3 are never invoked, wait out the 180 s
  // visibility timeout, and come back on their 2nd receive of 2 (LOCAL_TICK_MAX_RECEIVES) before any attempt.
  expect(invoked.sort()).toEqual([1, 2, 3]);
});

it("a queue function's invocations overlap, as Lambda's maximumConcurrency is at least 2 (1 is refused)", async () => {
  const names = await createLocalResources(clients, 'rv9maxc');
  const { queues } = createAwsQueueTransports(clients, names);
  expect(() => createLocalRunner({ handlers: {}, queues, maxConcurrency: 1 })).toThrow(/at least 2/);
  let inFlight = 0;
  let maxInFlight = 0;
  let bothStarted!: () => void;
  const overlapped = new Promise<void>((resolve) => {
    bothStarted = resolve;
  });
  const runner = createLocalRunner({
    handlers: {
      liquidationConsumer: async (_event: SQSEvent) => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        if (inFlight >= 2) bothStarted();
        // The first invocation waits for a second to start (bounded: a runner that never overlaps fails below).
        await Promise.race([overlapped, new Promise((resolve) => setTimeout(resolve, 5_000))]);
        inFlight -= 1;
      },
    },
    queues,
    maxConcurrency: 2,
    idlePollMs: 20,
  });
  try {
    // Two receives' worth of records: 20 messages, batches of at most 10.
    await queues.liquidations.sendBatch(Array.from({ length: 20 }, (_, i) => `m${i}`));
    await runner.runUntilIdle({ deadlineMs: 20_000 });
  } finally {
    await runner.stop();
  }
  expect(maxInFlight).toBe(2);
});

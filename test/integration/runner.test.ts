import { DescribeRuleCommand, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { EventBridgeEvent, ScheduledEvent, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type AwsClients,
  createAwsClients,
  createAwsQueueTransports,
  createLocalResources,
  type LocalQueueTransports,
  localClientConfig,
  type ResourceNames,
} from '../../shared/adapters/aws/index.ts';
import { LOCAL_TICK_MAX_RECEIVES, LOCAL_TICK_RULE } from '../../shared/adapters/aws/resources.ts';
import { EmbeddedQueue, ManualClock } from '../../shared/adapters/embedded/index.ts';
import { deferRecord } from '../../shared/lambda/failures.ts';
import type { QueueTransport, ReceivedMessage } from '../../shared/ports/index.ts';
import { createLocalRunner, failedMessageIds, type LocalRunner } from '../../shared/runner/index.ts';
import { FunctionTimeoutError, TICK_ATTEMPTS } from '../../shared/runner/runner.ts';
import {
  DEAD_LETTER_RETENTION_SECONDS,
  FUNCTIONS,
  type FunctionId,
  isDeadLetterSink,
  MARGIN_CHECK_PATTERN,
  physicalName,
  QUEUES,
  type QueueId,
  receiveVisibilitySeconds,
  TICK_BUS,
  visibilityTimeoutSeconds,
} from '../../shared/topology.ts';
import { eventually } from '../contract/suite.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/** The local runner against moto: bus -> rule -> tick queue -> margin-check, SQS batches, DLQ redrive. */

const DEADLINE_MS = 15_000;

let moto: MotoServer | undefined;
let clients: AwsClients;
let stages = 0;
let stage: string;
let names: ResourceNames;
let queues: LocalQueueTransports;
let runner: LocalRunner | undefined;

beforeAll(async () => {
  moto = await startMoto();
  clients = createAwsClients(localClientConfig(moto.endpoint));
});

afterAll(async () => {
  clients?.destroy();
  await moto?.stop();
});

beforeEach(async () => {
  stage = `runner${stages++}`;
  names = await createLocalResources(clients, stage);
  queues = createAwsQueueTransports(clients, names);
});

afterEach(async () => {
  await runner?.stop();
  runner = undefined;
});

/** A promise and what settles it: a handler says what happened, the test waits for exactly that. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** `promise`, or a failure naming `what` at the deadline (which bounds a failing run, never a passing one). */
async function within<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const drain = async (q: LocalQueueTransports['tickQueue']): Promise<ReceivedMessage[]> => {
  const got: ReceivedMessage[] = [];
  for (let batch = await q.receive(10, 30); batch.length > 0; batch = await q.receive(10, 30))
    got.push(...batch);
  return got;
};

/** `t`, telling `seen` the visibility timeout of each receive. */
const recordingReceives = (t: QueueTransport, seen: (visibility: number) => void): QueueTransport => ({
  name: t.name,
  send: (body, delay) => t.send(body, delay),
  sendBatch: (bodies) => t.sendBatch(bodies),
  receive: (max, visibility) => {
    seen(visibility);
    return t.receive(max, visibility);
  },
  delete: (handle) => t.delete(handle),
  changeVisibility: (handle, seconds) => t.changeVisibility(handle, seconds),
  depth: () => t.depth(),
});

const queueAttributes = async (url: string): Promise<Record<string, string>> =>
  (await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] })))
    .Attributes ?? {};

describe('local runner on moto', () => {
  it("gives each local queue, and each of the runner's receives, the stack's visibility timeout (the topology's)", async () => {
    const expected: Record<string, number> = {};
    const local: Record<string, number> = {};
    for (const q of QUEUES) {
      expected[q.id] = visibilityTimeoutSeconds(q.id);
      local[q.id] = Number((await queueAttributes(names.queues[q.id].url)).VisibilityTimeout);
    }
    // A tick is hidden for margin-check's timeout and Lambda's minute before an async retry.
    const marginCheck = FUNCTIONS.find((f) => f.id === 'marginCheck')!;
    expected.tick = receiveVisibilitySeconds(marginCheck);
    local.tick = Number((await queueAttributes(names.tickQueueUrl)).VisibilityTimeout);
    expect(local).toEqual(expected);
    expect({ liquidations: local.liquidations, tick: local.tick }).toEqual({ liquidations: 361, tick: 90 });

    const received: Partial<Record<FunctionId, number>> = {};
    const allPolled = signal();
    const polled = (id: FunctionId) => (visibility: number) => {
      received[id] ??= visibility;
      if (Object.keys(received).length === 3) allPolled.resolve();
    };
    const consumed = (id: FunctionId, queue: QueueId) => ({
      [queue]: recordingReceives(queues.queues[queue], polled(id)),
    });
    runner = createLocalRunner({
      handlers: { marginCheck: async () => {}, liquidationConsumer: async () => {}, auction: async () => {} },
      queues: { ...consumed('liquidationConsumer', 'liquidations'), ...consumed('auction', 'auctionSteps') },
      tickQueue: recordingReceives(queues.tickQueue, polled('marginCheck')),
      schedules: false,
      idlePollMs: 20,
    });
    runner.start();
    await within('a receive by every poller', allPolled.promise);
    expect(received).toEqual({
      marginCheck: expected.tick,
      liquidationConsumer: expected.liquidations,
      auction: expected.auctionSteps,
    });
  });

  it("keeps dead letters 14 days and routes with the stack rule's pattern (never an archive's replay)", async () => {
    for (const q of QUEUES) {
      const url = isDeadLetterSink(q) ? names.queues[q.id].url : names.queues[q.id].dlqUrl;
      expect(Number((await queueAttributes(url!)).MessageRetentionPeriod), q.id).toBe(
        DEAD_LETTER_RETENTION_SECONDS,
      );
    }
    const rule = await clients.events.send(
      new DescribeRuleCommand({ Name: physicalName(stage, LOCAL_TICK_RULE), EventBusName: names.busName }),
    );
    expect(JSON.parse(rule.EventPattern ?? '{}')).toEqual(MARGIN_CHECK_PATTERN);
  });

  it('delivers a PriceTick put on the bus to margin-check as an EventBridge event; other sources never arrive', async () => {
    const seen: EventBridgeEvent<string, unknown>[] = [];
    runner = createLocalRunner({
      handlers: {
        marginCheck: async (event: EventBridgeEvent<'PriceTick', unknown>) => void seen.push(event),
      },
      tickQueue: queues.tickQueue,
      idlePollMs: 20,
    });
    const detail = { symbol: 'ETH-USD', markPrice: '1520.5', sequence: 7 };
    const out = await clients.events.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: names.busName,
            Source: TICK_BUS.source,
            DetailType: TICK_BUS.detailType,
            Detail: JSON.stringify(detail),
          },
          { EventBusName: names.busName, Source: 'someone.else', DetailType: 'PriceTick', Detail: '{}' },
        ],
      }),
    );
    expect(out.FailedEntryCount ?? 0).toBe(0);
    await runner.runUntilIdle({ deadlineMs: DEADLINE_MS });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ source: TICK_BUS.source, 'detail-type': 'PriceTick', detail });
    expect(seen[0]?.account).toMatch(/^\d{12}$/);
    expect(runner.errors).toEqual([]);
  });

  it('a partial batch failure redelivers only the failed record, after the visibility timeout', async () => {
    const deliveries: string[] = [];
    let failed = false;
    runner = createLocalRunner({
      handlers: {
        liquidationConsumer: async (event: SQSEvent): Promise<SQSBatchResponse> => {
          const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
          for (const r of event.Records) {
            deliveries.push(`${r.body}#${r.attributes.ApproximateReceiveCount}`);
            if (r.body === 'b' && !failed) {
              failed = true;
              batchItemFailures.push({ itemIdentifier: r.messageId });
            }
          }
          return { batchItemFailures };
        },
      },
      queues: queues.queues,
      // Lambda's behaviour: the failed record waits out the visibility timeout (1 s here).
      visibilityTimeoutSeconds: 1,
      idlePollMs: 20,
    });
    await queues.queues.liquidations.sendBatch(['a', 'b', 'c']);
    await runner.runUntilIdle({ deadlineMs: DEADLINE_MS });
    expect(deliveries.sort()).toEqual(['a#1', 'b#1', 'b#2', 'c#1']);
    expect(await queues.deadLetters.liquidations?.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });

  it('a thrown error fails the whole batch: every record comes back', async () => {
    const deliveries: string[] = [];
    let threw = false;
    runner = createLocalRunner({
      handlers: {
        liquidationConsumer: async (event: SQSEvent) => {
          for (const r of event.Records) deliveries.push(`${r.body}#${r.attributes.ApproximateReceiveCount}`);
          if (!threw) {
            threw = true;
            throw new Error('transient');
          }
        },
      },
      queues: queues.queues,
      failureVisibilitySeconds: 0,
      idlePollMs: 20,
    });
    await queues.queues.liquidations.sendBatch(['a', 'b']);
    await runner.runUntilIdle({ deadlineMs: DEADLINE_MS });
    expect(deliveries.sort()).toEqual(['a#1', 'a#2', 'b#1', 'b#2']);
    expect(runner.errors).toHaveLength(1);
  });

  it('fast retries leave a record the handler deferred itself until the time it set', async () => {
    const deliveries: string[] = [];
    const nowRetried = signal();
    runner = createLocalRunner({
      handlers: {
        liquidationConsumer: async (event: SQSEvent): Promise<SQSBatchResponse> => {
          const failures: { itemIdentifier: string }[] = [];
          for (const r of event.Records) {
            deliveries.push(`${r.body}#${r.attributes.ApproximateReceiveCount}`);
            if (r.attributes.ApproximateReceiveCount !== '1') {
              if (r.body === 'now') nowRetried.resolve();
              continue;
            }
            // 'later' cannot be processed for 10 minutes (another delivery's lease); 'now' failed for no such reason.
            if (r.body === 'later') await deferRecord(queues.queues.liquidations, r, 600_000);
            failures.push({ itemIdentifier: r.messageId });
          }
          return { batchItemFailures: failures };
        },
      },
      queues: queues.queues,
      failureVisibilitySeconds: 0,
      // Far beyond the test: only the runner's fast retry can bring a record back.
      visibilityTimeoutSeconds: 600,
      idlePollMs: 20,
    });
    await queues.queues.liquidations.sendBatch(['now', 'later']);
    runner.start();
    await within("'now' retried", nowRetried.promise);
    // Once stopped, the runner has settled every delivery: what SQS holds now is what it left.
    await runner.stop();
    // 'now' came back at once; 'later' is still in flight, for the 10 minutes its handler set.
    expect(deliveries.sort()).toEqual(['later#1', 'now#1', 'now#2']);
    expect(await queues.queues.liquidations.depth()).toEqual({ visible: 0, inFlight: 1, delayed: 0 });
    expect(runner.errors).toEqual([]);
  });

  it.each([
    // As on Lambda: each record keeps the visibility its handler set. The 1 s backoff ends within the test (the
    // visibility timeout would not), the 10-minute one does not.
    {
      retries: 'as on Lambda',
      failureVisibilitySeconds: undefined,
      delivered: ['long#1', 'short#1', 'short#2'],
      waiting: 1,
    },
    // Fast retries replace every backoff with their own.
    {
      retries: 'fast',
      failureVisibilitySeconds: 0,
      delivered: ['long#1', 'long#2', 'short#1', 'short#2'],
      waiting: 0,
    },
  ])(
    'a failed record its handler backed off comes back ($retries retries)',
    async ({ failureVisibilitySeconds, delivered, waiting }) => {
      const deliveries: string[] = [];
      const allDelivered = signal();
      runner = createLocalRunner({
        handlers: {
          liquidationConsumer: async (event: SQSEvent): Promise<SQSBatchResponse> => {
            const failures: { itemIdentifier: string }[] = [];
            for (const r of event.Records) {
              deliveries.push(`${r.body}#${r.attributes.ApproximateReceiveCount}`);
              if (r.attributes.ApproximateReceiveCount !== '1') continue;
              const backoffMs = r.body === 'short' ? 1_000 : 600_000;
              await deferRecord(queues.queues.liquidations, r, backoffMs, 'backoff');
              failures.push({ itemIdentifier: r.messageId });
            }
            if (deliveries.length >= delivered.length) allDelivered.resolve();
            return { batchItemFailures: failures };
          },
        },
        queues: queues.queues,
        // Far beyond the test: the visibility timeout never brings a record back here.
        visibilityTimeoutSeconds: 600,
        ...(failureVisibilitySeconds === undefined ? {} : { failureVisibilitySeconds }),
        idlePollMs: 20,
      });
      await queues.queues.liquidations.sendBatch(['short', 'long']);
      runner.start();
      await within(`${delivered.length} deliveries`, allDelivered.promise);
      await runner.stop();
      expect(deliveries.sort()).toEqual(delivered);
      // Backed off for 10 minutes, and left so, as on Lambda; or already retried and deleted.
      expect(await queues.queues.liquidations.depth()).toEqual({ visible: 0, inFlight: waiting, delayed: 0 });
      expect(runner.errors).toEqual([]);
    },
  );

  type SqsHandler = (event: SQSEvent) => Promise<void>;
  it.each([
    { who: 'the runner', wrap: (handler: SqsHandler) => handler, error: 'FunctionTimeoutError' },
    // Found by a docs review in session 29: middy gives up 5 ms before the deadline with its own TimeoutError,
    // which reached the runner first and was taken for a failure, so fast retries ran the record again at once.
    { who: 'middy', wrap: (handler: SqsHandler) => middy(handler), error: 'TimeoutError' },
  ])(
    'fast retries wait out the visibility timeout of an invocation that timed out ($who gave up on it; it may still be running)',
    async ({ wrap, error }) => {
      const events: string[] = [];
      const timedOut = signal();
      const release = signal();
      const firstEnded = signal();
      let firstReceipt = '';
      let calls = 0;
      runner = createLocalRunner({
        handlers: {
          liquidationConsumer: wrap(async (event: SQSEvent) => {
            const call = ++calls;
            const record = event.Records[0]!;
            events.push(`start ${call} #${record.attributes.ApproximateReceiveCount}`);
            if (call === 1) {
              firstReceipt = record.receiptHandle;
              // Outlives its 1 s timeout: the runner stops waiting, it goes on until released.
              await release.promise;
            }
            events.push(`end ${call}`);
            if (call === 1) firstEnded.resolve();
          }),
        },
        queues: queues.queues,
        failureVisibilitySeconds: 0,
        // Far beyond the test: the record comes back only if the runner makes it visible.
        visibilityTimeoutSeconds: 600,
        timeoutSeconds: { liquidationConsumer: 1 },
        idlePollMs: 20,
        onError: () => timedOut.resolve(),
      });
      await queues.queues.liquidations.send('slow');
      runner.start();
      await within('the timeout', timedOut.promise);
      // stop() returns once the runner has settled the delivery it gave up on; the invocation itself still runs.
      await runner.stop();
      expect(runner.errors.map((e) => (e.error as Error).name)).toEqual([error]);
      // Not retried beside the abandoned invocation: fast retries left it in flight.
      expect(events).toEqual(['start 1 #1']);
      expect(await queues.queues.liquidations.depth()).toEqual({ visible: 0, inFlight: 1, delayed: 0 });

      release.resolve();
      await firstEnded.promise;
      // Its visibility timeout runs out (brought forward: 600 s is beyond the test), and the retry runs.
      await queues.queues.liquidations.changeVisibility(firstReceipt, 0);
      await runner.runUntilIdle({ deadlineMs: DEADLINE_MS });
      expect(events).toEqual(['start 1 #1', 'end 1', 'start 2 #2', 'end 2']);
      expect(runner.errors).toHaveLength(1);
    },
  );

  it('a poison message ends in the dead-letter queue after maxReceiveCount (5) receives', async () => {
    const counts: string[] = [];
    let good = 0;
    runner = createLocalRunner({
      handlers: {
        auction: async (event: SQSEvent): Promise<SQSBatchResponse> => ({
          batchItemFailures: event.Records.flatMap((r) => {
            if (r.body !== 'poison') {
              good++;
              return [];
            }
            counts.push(r.attributes.ApproximateReceiveCount);
            return [{ itemIdentifier: r.messageId }];
          }),
        }),
      },
      queues: queues.queues,
      failureVisibilitySeconds: 0,
      idlePollMs: 20,
    });
    await queues.queues.auctionSteps.sendBatch(['poison', 'fine']);
    await runner.runUntilIdle({ deadlineMs: DEADLINE_MS });
    expect(counts).toEqual(['1', '2', '3', '4', '5']);
    expect(good).toBe(1);
    const dead = await drain(queues.deadLetters.auctionSteps!);
    expect(dead.map((m) => m.body)).toEqual(['poison']);
  });

  it('runUntilIdle waits for delayed messages', async () => {
    const bodies: string[] = [];
    runner = createLocalRunner({
      handlers: { auction: async (event: SQSEvent) => void bodies.push(...event.Records.map((r) => r.body)) },
      queues: queues.queues,
      idlePollMs: 20,
    });
    await queues.queues.auctionSteps.send('later', 1);
    await runner.runUntilIdle({ deadlineMs: DEADLINE_MS });
    expect(bodies).toEqual(['later']);
  });

  it('stop() lets the invocation in flight finish and delete its message', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered = false;
    let finished = false;
    runner = createLocalRunner({
      handlers: {
        liquidationConsumer: async () => {
          entered = true;
          await gate;
          finished = true;
        },
      },
      queues: queues.queues,
      idlePollMs: 20,
    });
    runner.start();
    await queues.queues.liquidations.send('slow');
    await eventually('the handler to start', async () => (entered ? true : undefined), DEADLINE_MS);
    let stopped = false;
    const stopping = runner.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(finished).toBe(true);
    expect(await queues.queues.liquidations.depth()).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });

  it('invokes schedule-triggered functions on a timer with a ScheduledEvent', async () => {
    const events: ScheduledEvent[] = [];
    runner = createLocalRunner({
      handlers: { ledgerReconcile: async (event: ScheduledEvent) => void events.push(event) },
      schedules: { ledgerReconcile: 20 },
    });
    runner.start();
    await eventually('two scheduled runs', async () => (events.length >= 2 ? true : undefined), DEADLINE_MS);
    await runner.stop();
    expect(events[0]).toMatchObject({ source: 'aws.events', 'detail-type': 'Scheduled Event' });
  });

  it('refuses a handler whose trigger has no transport', () => {
    expect(() => createLocalRunner({ handlers: { marginCheck: async () => {} } })).toThrow(
      /runner\/missing-tick-queue/,
    );
    expect(() => createLocalRunner({ handlers: { auction: async () => {} }, queues: {} })).toThrow(
      /runner\/missing-queue/,
    );
  });
});

describe('local runner on embedded queues', () => {
  it('runs on any QueueTransport: partial failure and DLQ on an embedded queue', async () => {
    const clock = new ManualClock(1_000);
    const dlq = new EmbeddedQueue({ name: 'auctionSteps-dlq', clock });
    const q = new EmbeddedQueue({
      name: 'auctionSteps',
      clock,
      deadLetter: { queue: dlq, maxReceiveCount: 2 },
    });
    const seen: string[] = [];
    const embedded = createLocalRunner({
      handlers: {
        auction: async (event: SQSEvent): Promise<SQSBatchResponse> => ({
          batchItemFailures: event.Records.flatMap((r) => {
            seen.push(`${r.body}#${r.attributes.ApproximateReceiveCount}`);
            return r.body === 'bad' ? [{ itemIdentifier: r.messageId }] : [];
          }),
        }),
      },
      queues: { auctionSteps: q },
      failureVisibilitySeconds: 0,
      idlePollMs: 5,
    });
    await q.sendBatch(['ok', 'bad']);
    await embedded.runUntilIdle({ deadlineMs: 5_000 });
    await embedded.stop();
    expect(seen.sort()).toEqual(['bad#1', 'bad#2', 'ok#1']);
    expect((await dlq.receive(10, 30)).map((m) => m.body)).toEqual(['bad']);
  });
});

/** A tick queue holding `count` ticks sent at `sentAtMs`, `perReceive` at most a receive; records what is done. */
function fakeTickQueue(
  count: number,
  { sentAtMs = Date.now(), perReceive = 10, receiveCount = 1, onVisibilityChange = () => {} } = {},
) {
  let next = 0;
  const receives: number[] = [];
  const deleted: string[] = [];
  const visibilityChanges: [string, number][] = [];
  const tick = (i: number): ReceivedMessage => ({
    messageId: `m${i}`,
    receiptHandle: `r${i}`,
    receiveCount,
    sentAtMs,
    body: JSON.stringify({
      version: '0',
      id: `e${i}`,
      source: TICK_BUS.source,
      'detail-type': TICK_BUS.detailType,
      detail: { symbol: 'ETH-USD', markPrice: '100', sequence: i },
    }),
  });
  const transport: QueueTransport = {
    name: 'ticks',
    send: async () => {},
    sendBatch: async () => {},
    receive: async (max, visibility) => {
      receives.push(visibility);
      const given: ReceivedMessage[] = [];
      while (given.length < Math.min(max, perReceive) && next < count) given.push(tick(next++));
      return given;
    },
    delete: async (handle) => void deleted.push(handle),
    changeVisibility: async (handle, seconds) => {
      visibilityChanges.push([handle, seconds]);
      onVisibilityChange();
    },
    depth: async () => ({ visible: count - next, inFlight: 0, delayed: 0 }),
  };
  return { transport, receives, deleted, visibilityChanges };
}

describe('local runner: ticks, one asynchronous invocation each', () => {
  it.each([1, 3])('runs at most tickConcurrency (%i) margin-check invocations at once, in all', async (n) => {
    const ticks = fakeTickQueue(16, { perReceive: 4 });
    let inFlight = 0;
    let most = 0;
    const ticking = createLocalRunner({
      handlers: {
        marginCheck: async () => {
          inFlight += 1;
          most = Math.max(most, inFlight);
          // A turn of the event loop: every invocation the runner would start meanwhile has started.
          await new Promise(setImmediate);
          inFlight -= 1;
        },
      },
      tickQueue: ticks.transport,
      tickConcurrency: n,
      idlePollMs: 5,
    });
    try {
      await ticking.runUntilIdle({ deadlineMs: 5_000 });
    } finally {
      await ticking.stop();
    }
    // Was n x n: n receives in flight, each running its ticks n at a time.
    expect({ most, invoked: ticking.invocations.marginCheck, deleted: ticks.deleted.length }).toEqual({
      most: n,
      invoked: 16,
      deleted: 16,
    });
  });

  it('brings a failed tick back when Lambda would retry it: a minute after the first attempt, two after the second, within its maximum age (120 s)', async () => {
    const failOnce = async (ageSeconds: number, receiveCount = 1) => {
      const released = signal();
      const ticks = fakeTickQueue(1, {
        sentAtMs: Date.now() - ageSeconds * 1000,
        receiveCount,
        onVisibilityChange: () => released.resolve(),
      });
      let invoked = 0;
      const ticking = createLocalRunner({
        handlers: {
          marginCheck: async () => {
            invoked += 1;
            throw new Error('injected: throttled');
          },
        },
        tickQueue: ticks.transport,
        idlePollMs: 5,
      });
      ticking.start();
      await within('the tick released', released.promise);
      await ticking.stop();
      return {
        receivedFor: ticks.receives[0],
        invoked,
        retryIn: ticks.visibilityChanges,
        deleted: ticks.deleted,
      };
    };
    // Received for margin-check's 30 s timeout and the minute after it: a tick that times out comes back then.
    expect(await failOnce(0)).toEqual({ receivedFor: 90, invoked: 1, retryIn: [['r0', 60]], deleted: [] });
    // No retry left (120 s allows one), or it would come past the maximum age: visible at once, so the queue's
    // redrive takes it once its receives are spent (not invoked again meanwhile: below), when Lambda sends it to
    // the on-failure destination.
    expect(await failOnce(61, 2)).toMatchObject({ invoked: 1, retryIn: [['r0', 0]] });
    expect(await failOnce(70)).toMatchObject({ invoked: 1, retryIn: [['r0', 0]] });
    // Past its maximum age when received: Lambda never invokes the function with it.
    expect(await failOnce(121)).toMatchObject({ invoked: 0, retryIn: [['r0', 0]] });
  });
});

/** One ETH-USD tick as the bus rule delivers it to the tick queue. */
const TICK_EVENT = JSON.stringify({
  version: '0',
  id: 'e1',
  source: TICK_BUS.source,
  'detail-type': TICK_BUS.detailType,
  detail: { symbol: 'ETH-USD', markPrice: '100', sequence: 1 },
});

/**
 * One tick sent at 0 on an embedded tick queue with a simulated clock (dead-lettering after 2 receives), run
 * `ageMs` later by a runner on that clock: how often margin-check was invoked, and whether it was dead-lettered.
 */
async function runEmbeddedTick({
  ageMs,
  fails,
  destination,
}: {
  ageMs: number;
  fails: boolean;
  destination?: EmbeddedQueue;
}) {
  const clock = new ManualClock(0);
  const dead = new EmbeddedQueue({ name: 'tickDeadLetters', clock });
  const ticks = new EmbeddedQueue({ name: 'ticks', clock, deadLetter: { queue: dead, maxReceiveCount: 2 } });
  await ticks.send(TICK_EVENT);
  clock.set(ageMs);
  let invoked = 0;
  const ticking = createLocalRunner({
    handlers: {
      marginCheck: async () => {
        invoked += 1;
        if (fails) throw new Error('injected: throttled');
      },
    },
    tickQueue: ticks,
    ...(destination ? { queues: { tickDeadLetters: destination } } : {}),
    clock,
    idlePollMs: 5,
  });
  try {
    await ticking.runUntilIdle({ deadlineMs: 5_000 });
  } finally {
    await ticking.stop();
  }
  return { invoked, deadLettered: (await dead.depth()).visible };
}

// Found by a review of session 29's changes.
describe('local runner: a tick Lambda gives up on', () => {
  it('is not invoked again when its first attempt fails and its retry would come past the maximum age', async () => {
    // 70 s old: a retry a minute later would be 130 s old. Made visible at once, it came back as receive 2 of 2 and
    // was invoked again before the redrive took it.
    expect(await runEmbeddedTick({ ageMs: 70_000, fails: true })).toEqual({ invoked: 1, deadLettered: 1 });
  });

  it("measures a tick's age on the clock of its queue: a fresh tick of a simulated clock is invoked", async () => {
    // On the wall clock it was 56 years old: never invoked, dead-lettered.
    expect(await runEmbeddedTick({ ageMs: 0, fails: false })).toEqual({ invoked: 1, deadLettered: 0 });
  });
});

describe("local runner: a tick Lambda gives up on goes to the on-failure destination as Lambda's record", () => {
  const onlyRecord = async (queue: EmbeddedQueue) => {
    const received = await queue.receive(10, 30);
    expect(received).toHaveLength(1);
    return JSON.parse(received[0]!.body) as Record<string, unknown>;
  };

  it('after its last attempt failed: RetriesExhausted, with the error', async () => {
    const clock = new ManualClock(0);
    const destination = new EmbeddedQueue({ name: 'tickDeadLetters', clock });
    expect(await runEmbeddedTick({ ageMs: 70_000, fails: true, destination })).toEqual({
      invoked: 1,
      deadLettered: 0,
    });
    expect(await onlyRecord(destination)).toMatchObject({
      requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: 1 },
      requestPayload: { id: 'e1', detail: { symbol: 'ETH-USD', sequence: 1 } },
      responsePayload: { errorType: 'Error', errorMessage: 'injected: throttled' },
    });
  });

  it('past its maximum age when received: EventAgeExceeded, never invoked, no error', async () => {
    const clock = new ManualClock(0);
    const destination = new EmbeddedQueue({ name: 'tickDeadLetters', clock });
    expect(await runEmbeddedTick({ ageMs: 121_000, fails: true, destination })).toEqual({
      invoked: 0,
      deadLettered: 0,
    });
    const record = await onlyRecord(destination);
    expect(record).toMatchObject({
      requestContext: { condition: 'EventAgeExceeded', approximateInvokeCount: 0 },
      requestPayload: { id: 'e1' },
    });
    expect(record).not.toHaveProperty('responsePayload');
  });

  /** A promise and its resolver: a test waits on the runner's own steps, not on time. */
  const signal = () => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  };

  /**
   * A tick sent at 0 to a queue that redrives after LOCAL_TICK_MAX_RECEIVES, a handler that fails every call with
   * `error`: runs until the tick's record reaches the destination. `deleteFailures`: deletes that fail first.
   */
  async function givenUp(error: () => Error, deleteFailures = 0) {
    const clock = new ManualClock(0);
    const destination = new EmbeddedQueue({ name: 'tickDeadLetters', clock });
    const redrive = new EmbeddedQueue({ name: 'tick-redrive', clock });
    const ticks = new EmbeddedQueue({
      name: 'ticks',
      clock,
      deadLetter: { queue: redrive, maxReceiveCount: LOCAL_TICK_MAX_RECEIVES },
    });
    await ticks.send(TICK_EVENT);
    let called = signal();
    let invoked = 0;
    const sent = signal();
    const send = destination.send.bind(destination);
    destination.send = async (body, delaySeconds) => {
      await send(body, delaySeconds);
      sent.resolve();
    };
    let failDeletes = deleteFailures;
    const deleted = signal();
    const remove = ticks.delete.bind(ticks);
    ticks.delete = async (handle) => {
      if (failDeletes-- > 0) throw new Error('injected: DeleteMessage failed');
      await remove(handle);
      deleted.resolve();
    };
    const runner = createLocalRunner({
      handlers: {
        marginCheck: async () => {
          invoked += 1;
          called.resolve();
          throw error();
        },
      },
      tickQueue: ticks,
      queues: { tickDeadLetters: destination },
      clock,
      failureVisibilitySeconds: 0,
      idlePollMs: 5,
    });
    // A receive's visibility timeout, and a millisecond: the message is visible again.
    const visibilityMs = receiveVisibilitySeconds(FUNCTIONS.find((f) => f.id === 'marginCheck')!) * 1000 + 1;
    runner.start();
    try {
      for (let attempt = 0; attempt < LOCAL_TICK_MAX_RECEIVES - 1; attempt++) {
        await called.promise;
        called = signal();
        // A timed-out attempt's message waits out its visibility timeout (the invocation may still run).
        clock.advance(visibilityMs);
      }
      await sent.promise;
      if (deleteFailures > 0) clock.advance(visibilityMs);
      await deleted.promise;
    } finally {
      await runner.stop();
    }
    const records = await destination.receive(10, 30);
    return {
      invoked,
      redriven: (await redrive.depth()).visible,
      records: records.map((m) => JSON.parse(m.body) as Record<string, unknown>),
      left: await ticks.depth(),
    };
  }

  // Found by the review of the day's changes: a timed-out attempt's failure is left to its visibility timeout, so
  // after the last one the queue's redrive moved the bare event (no error) before the runner saw it again.
  it('after attempts that all timed out: RetriesExhausted with the timeout, never invoked again', async () => {
    const outcome = await givenUp(
      () => new FunctionTimeoutError('runner/function-timeout: marginCheck after 30 s'),
    );
    expect(outcome.invoked).toBe(TICK_ATTEMPTS);
    expect(outcome.redriven).toBe(0);
    expect(outcome.records).toHaveLength(1);
    expect(outcome.records[0]).toMatchObject({
      requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: TICK_ATTEMPTS },
      responsePayload: { errorType: 'FunctionTimeoutError' },
    });
  });

  it('whose delete failed after its record was sent: deleted when it comes back, with no second record', async () => {
    const outcome = await givenUp(() => new Error('injected: throttled'), 1);
    expect(outcome.invoked).toBe(TICK_ATTEMPTS);
    expect({ records: outcome.records.length, redriven: outcome.redriven }).toEqual({
      records: 1,
      redriven: 0,
    });
    expect(outcome.left).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
  });
});

describe('failedMessageIds: Lambda partial batch response rules', () => {
  const batch = ['m1', 'm2'].map(
    (messageId): ReceivedMessage => ({
      messageId,
      body: 'x',
      receiptHandle: messageId,
      receiveCount: 1,
      sentAtMs: 0,
    }),
  );
  it.each([
    { case: 'no response', response: undefined, failed: [] },
    { case: 'null response', response: null, failed: [] },
    { case: 'no batchItemFailures', response: {}, failed: [] },
    { case: 'empty batchItemFailures', response: { batchItemFailures: [] }, failed: [] },
    { case: 'one failure', response: { batchItemFailures: [{ itemIdentifier: 'm2' }] }, failed: ['m2'] },
    {
      case: 'unknown identifier',
      response: { batchItemFailures: [{ itemIdentifier: 'zz' }] },
      failed: ['m1', 'm2'],
    },
    {
      case: 'empty identifier',
      response: { batchItemFailures: [{ itemIdentifier: '' }] },
      failed: ['m1', 'm2'],
    },
    {
      case: 'null identifier',
      response: { batchItemFailures: [{ itemIdentifier: null }] },
      failed: ['m1', 'm2'],
    },
    { case: 'not a list', response: { batchItemFailures: 'm1' }, failed: ['m1', 'm2'] },
  ])('$case', ({ response, failed }) => {
    expect([...failedMessageIds(response, batch)].sort()).toEqual(failed);
  });
});

import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { renderRedrive } from '../../cli/ops/dlq.ts';
import {
  type AwsClients,
  createAwsAdapters,
  createAwsClients,
  createLocalResources,
  localClientConfig,
} from '../../shared/adapters/aws/index.ts';
import { SqsQueueTransport } from '../../shared/adapters/aws/sqs-queue.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { awsClockOf, type Deployment } from '../../shared/local/deployment.ts';
import {
  discardDeadLetters,
  listDeadLetters,
  type RedriveOutcome,
  redriveDeadLetters,
} from '../../shared/local/dlq.ts';
import { startLocalStack } from '../../shared/local/stack.ts';
import { TICK_BUS } from '../../shared/topology.ts';
import { cli, publishStackOutputs } from '../support/cli.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

const WAIT = { timeout: 60_000, interval: 100 };

let moto: MotoServer;
let clients: AwsClients;
/** Short polls seen since the stage was made: each test's first one answers empty. */
let shortPolls = 0;
beforeAll(async () => {
  moto = await startMoto();
  clients = createAwsClients(localClientConfig(moto.endpoint));
  // SQS's documented short-polling behaviour, which moto does not model: the first short poll answers empty.
  clients.sqs.middlewareStack.add(
    ((next: (a: { input: unknown }) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: { WaitTimeSeconds?: number } }) => {
        if (
          context.commandName === 'ReceiveMessageCommand' &&
          (args.input.WaitTimeSeconds ?? 0) === 0 &&
          shortPolls++ === 0
        )
          return { output: { Messages: [], $metadata: {} }, response: {} };
        return next(args);
      }) as never,
    { step: 'initialize', name: 'shortPollSamplesServers' },
  );
}, 60_000);
afterAll(async () => {
  clients?.destroy();
  await moto?.stop();
});

/**
 * A liquidation record whose position is not there: its every delivery fails (`liquidation/position-missing`), a
 * cause that lasts. A message naming no record at all is not sent back (drill45-dlq-no-record).
 */
async function queuedWithoutPosition(table: string, liquidationId: string): Promise<void> {
  await clients.dynamo.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        id: { S: liquidationId },
        positionId: { S: `${liquidationId}-gone` },
        symbol: { S: 'ETH-USD' },
        side: { S: 'LONG' },
        state: { S: 'QUEUED' },
        tickKey: { S: 'ETH-USD#1' },
        triggerMark: { N: '150000000000' },
        remainingSize: { N: '100000000' },
        marketFills: { L: [] },
        history: { L: [{ M: { atMs: { N: '1000' }, state: { S: 'QUEUED' } } }] },
        version: { N: '0' },
      },
    }),
  );
}

async function stage(name: string, bodies: string[]): Promise<Deployment> {
  const names = await createLocalResources(clients, name);
  shortPolls = 0;
  for (const body of bodies) {
    const { liquidationId } = JSON.parse(body) as { liquidationId: string };
    await queuedWithoutPosition(names.tables.liquidations, liquidationId);
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: names.queues.liquidations.dlqUrl!, MessageBody: body }),
    );
  }
  return {
    kind: 'local',
    stage: name,
    region: 'us-east-1',
    endpoint: moto.endpoint,
    clients,
    names,
    close: () => {},
  } as Deployment;
}

/**
 * SQS short polling (ReceiveMessage with WaitTimeSeconds 0) samples a subset of the queue's servers: "If the
 * number of messages in the queue is extremely small, you might not receive any messages in a particular
 * ReceiveMessage response" (SQS developer guide, "Short and long polling"); long polling queries every server. A
 * DLQ on AWS usually holds a handful of messages: exactly that case. Moto does not model it, so the real client
 * answers the first short poll of each stage with nothing (SDK middleware, as test/support/aws-faults.ts injects
 * faults); everything else (visibility, receipt handles, the table lookups, the resend) is moto's.
 *
 * Found by a review of the operator workflow in session 25: both receive loops short-polled, so a DLQ holding a
 * few messages could be reported empty on AWS. (Until session 26 this test faked the whole SDK.)
 */

it('redrives every message of a small DLQ (real SQS semantics on moto)', async () => {
  const d = await stage('dlqmoto1', [
    '{"liquidationId":"a:0"}',
    '{"liquidationId":"b:0"}',
    '{"liquidationId":"c:0"}',
  ]);
  const outcome = await redriveDeadLetters(d, 'liquidations');
  expect(outcome.moved).toBe(3);
  const back = await clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: d.names.queues.liquidations.url,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
    }),
  );
  expect((back.Messages ?? []).map((m) => m.Body).sort()).toEqual([
    '{"liquidationId":"a:0"}',
    '{"liquidationId":"b:0"}',
    '{"liquidationId":"c:0"}',
  ]);
});

it('lists every message a small DLQ holds, with the reason the (real) table gives', async () => {
  const d = await stage('dlqmoto2', ['{"liquidationId":"a:0"}', '{"liquidationId":"b:0"}']);
  const listed = await listDeadLetters(d, 'liquidations');
  expect(listed.map((m) => m.reason).sort()).toEqual([
    'liquidation a:0 in QUEUED',
    'liquidation b:0 in QUEUED',
  ]);
});

it('sends each dead letter back once, even when it fails again during the redrive', async () => {
  // Found by an audit in session 37: the loop took what came back to the DLQ for more dead letters; a poison
  // message fails its receives in well under a second here (fast retries, as local up runs), so one dead letter was
  // sent back 25 times, reported as 25 moved, each round counted 5 more failures.
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'CRITICAL'); // the poison message's ERROR lines, 5 a round
  const stack = await startLocalStack({ endpoint: moto.endpoint, stage: 'dlqcycle', fastRetries: true });
  try {
    const d = { ...(await stage('dlqcycle', [])), clients: stack.clients, names: stack.names };
    // A liquidation whose position is not there fails every delivery (a poison body, or one naming no record, is
    // not sent back at all).
    const failing = '{"liquidationId":"gone:0"}';
    await queuedWithoutPosition(stack.names.tables.liquidations, 'gone:0');
    await stack.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: stack.names.queues.liquidations.url, MessageBody: failing }),
    );
    const dlq = new SqsQueueTransport(stack.clients.sqs, { url: stack.names.queues.liquidations.dlqUrl! });
    await vi.waitFor(async () => expect((await dlq.depth()).visible).toBe(1), WAIT);
    const outcome = await redriveDeadLetters(d, 'liquidations', 25);
    expect(outcome).toMatchObject({ moved: 1, failed: [] });
    // It fails again and is back, once.
    await vi.waitFor(async () => expect((await dlq.depth()).visible).toBe(1), WAIT);
    expect((await listDeadLetters(d, 'liquidations')).map((m) => m.body)).toEqual([failing]);
  } finally {
    await stack.stop();
    vi.unstubAllEnvs();
  }
}, 120_000);

it('ends while new dead letters keep coming in, leaving them for the next redrive', async () => {
  // Found by a review in session 37: held out of sight and not counted, new arrivals kept the run going for as
  // long as the cause kept failing, whatever `max`.
  const d = await stage('dlqinflow', ['{"liquidationId":"old:0"}']);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  let sending = true;
  let sent = 0;
  const inflow = (async () => {
    while (sending) {
      sent += 1;
      await queuedWithoutPosition(d.names.tables.liquidations, `new${sent}:0`);
      await clients.sqs.send(
        new SendMessageCommand({ QueueUrl: dlq, MessageBody: `{"liquidationId":"new${sent}:0"}` }),
      );
      await new Promise((resolve) => setTimeout(resolve, 200)); // the failing cause's pace
    }
  })();
  try {
    const outcome = await redriveDeadLetters(d, 'liquidations', 5);
    expect(outcome).toMatchObject({ moved: 1, failed: [] });
  } finally {
    sending = false;
    await inflow;
  }
});

it("says why a deployed bus refuses a tick dead letter, and leaves it (the bus's policy, session 43)", async () => {
  // On AWS the bus takes a PriceTickContinuation from margin-check's role alone, and with tickPublishersOnly a
  // PriceTick from the feed principals alone; moto enforces no policy, so the client refuses as the bus would: the
  // continuation's entry (EventBridge's per-entry answer), the tick's whole call.
  // A deployed stack's: the advice names its commands for it, the region it ran in too (ops47-advice-region).
  const d = { ...(await stage('dlqbus', [])), kind: 'aws', stage: 'prod', region: 'eu-west-1' } as Deployment;
  const tickDlq = d.names.queues.tickDeadLetters.url;
  const event = (detailType: string, segment?: number) =>
    JSON.stringify({
      version: '0',
      id: `e-${detailType}`,
      'detail-type': detailType,
      source: TICK_BUS.source,
      time: '2026-01-01T00:00:00Z',
      detail: { symbol: 'ETH-USD', markPrice: '1500', sequence: 7, ...(segment ? { segment } : {}) },
    });
  for (const body of [event(TICK_BUS.continuationDetailType, 2), event(TICK_BUS.detailType)])
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: tickDlq, MessageBody: body }));
  const denial =
    'not authorized to perform: events:PutEvents with an explicit deny in a resource-based policy';
  clients.events.middlewareStack.add(
    ((_next: unknown, context: { commandName?: string }) =>
      async (args: { input: { Entries: { DetailType: string }[] } }) => {
        if (context.commandName !== 'PutEventsCommand') throw new Error('unexpected command');
        if (args.input.Entries[0]!.DetailType === TICK_BUS.continuationDetailType)
          return {
            output: {
              FailedEntryCount: 1,
              Entries: [{ ErrorCode: 'AccessDeniedException', ErrorMessage: denial }],
              $metadata: {},
            },
            response: {},
          };
        throw Object.assign(new Error(denial), { name: 'AccessDeniedException' });
      }) as never,
    { step: 'initialize', name: 'busPolicyRefuses' },
  );
  try {
    const outcome = await redriveDeadLetters(d, 'tickDeadLetters');
    expect(outcome.moved).toBe(0);
    const flags = '--target aws --stage prod --region eu-west-1';
    // ops47-json-advice: its discard was named as bare words ("then dlq discard removes this one").
    const continuation = outcome.failed.find((f) => f.reason.startsWith('dlq/continuation-refused'))!;
    expect(outcome.failed.map((f) => f.reason).sort()).toEqual([
      `dlq/continuation-refused: AccessDeniedException (${denial}): the bus takes a PriceTickContinuation from margin-check alone; the market's next accepted tick takes over the work its tick left (backstop status --json ${flags} shows the market's pendingSequence until then), then backstop dlq discard --queue tickDeadLetters --message-id ${continuation.messageId} ${flags} removes this one`,
      `dlq/put-failed: AccessDeniedException (${denial}): a stack deployed with backstop:tickPublishersOnly takes a PriceTick from its feed principals alone: redrive with a feed role's credentials`,
    ]);
  } finally {
    clients.events.middlewareStack.remove('busPolicyRefuses');
  }
  // Both stay, for dlq discard or a redrive with other credentials.
  expect(await listDeadLetters(d, 'tickDeadLetters')).toHaveLength(2);
});

/**
 * Holds the `nth` receive from `url` (counting from 1) until `ready` passes: by then what the run received before has
 * come round (its visibility timeout ran out), as in a run of hundreds of messages that outlasts the timeout. Returns
 * what removes the hold.
 */
function holdReceive(url: string, nth: number, ready: () => Promise<void>): () => void {
  let receives = 0;
  const name = `holdReceive${nth}${url}`;
  clients.sqs.middlewareStack.add(
    ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: { QueueUrl?: string } }) => {
        if (context.commandName === 'ReceiveMessageCommand' && args.input.QueueUrl === url) {
          receives += 1;
          if (receives === nth) await ready();
        }
        return next(args);
      }) as never,
    { step: 'initialize', name },
  );
  return () => clients.sqs.middlewareStack.remove(name);
}

/** Until the queue at `url` shows `visible` messages (the ones held by a receive came round). */
const untilVisible = (url: string, visible: number) => () =>
  vi.waitFor(async () => {
    expect((await new SqsQueueTransport(clients.sqs, { url }).depth()).visible).toBe(visible);
  }, WAIT);

const VISIBILITY = { visibilitySeconds: 2 };

/**
 * SQS's receipt handles as documented, which moto does not model (it takes any handle a message ever had): only the
 * newest one acts. A visibility change by an older one fails ("not available for visibility timeout change"), as an
 * entry of the batch's Failed; a delete by one succeeds and may delete nothing. Here a stale release fails, and
 * `lostDelete` names bodies whose first delete succeeds and deletes nothing (a copy on a server that was out).
 * Returns the count of stale releases and what removes it.
 */
function receiptHandlesAsSqs(
  url: string,
  lostDelete: readonly string[] = [],
): { staleReleases: () => number; remove: () => void } {
  const newest = new Map<string, string>(); // MessageId -> its newest receipt handle
  const received = new Map<string, { id: string; body: string }>(); // receipt handle -> its message
  const lost = new Set<string>();
  let stale = 0;
  const name = `receiptHandlesAsSqs${url}`;
  type Entry = { Id: string; ReceiptHandle: string };
  clients.sqs.middlewareStack.add(
    ((
      next: (a: unknown) => Promise<{ output: Record<string, unknown> }>,
      context: { commandName?: string },
    ) =>
      async (args: { input: { QueueUrl?: string; ReceiptHandle?: string; Entries?: Entry[] } }) => {
        const { input } = args;
        if (input.QueueUrl !== url) return next(args);
        if (context.commandName === 'ReceiveMessageCommand') {
          const result = await next(args);
          for (const m of (result.output.Messages ?? []) as {
            MessageId: string;
            ReceiptHandle: string;
            Body: string;
          }[]) {
            newest.set(m.MessageId, m.ReceiptHandle);
            received.set(m.ReceiptHandle, { id: m.MessageId, body: m.Body });
          }
          return result;
        }
        if (context.commandName === 'DeleteMessageCommand') {
          const body = received.get(input.ReceiptHandle ?? '')?.body;
          if (body !== undefined && lostDelete.includes(body) && !lost.has(body)) {
            lost.add(body);
            return { output: { $metadata: {} }, response: {} };
          }
          return next(args);
        }
        if (context.commandName !== 'ChangeMessageVisibilityBatchCommand') return next(args);
        const isStale = (e: Entry) => {
          const id = received.get(e.ReceiptHandle)?.id;
          return id !== undefined && newest.get(id) !== e.ReceiptHandle;
        };
        const refused = (input.Entries ?? []).filter(isStale);
        stale += refused.length;
        const rest = (input.Entries ?? []).filter((e) => !isStale(e));
        const result: { output: Record<string, unknown>; response?: unknown } =
          rest.length > 0
            ? await next({ ...args, input: { ...input, Entries: rest } })
            : { output: { Successful: [], $metadata: {} }, response: {} };
        const failed = refused.map((e) => ({
          Id: e.Id,
          SenderFault: true,
          Code: 'InvalidParameterValue',
          Message: 'Message does not exist or is not available for visibility timeout change.',
        }));
        return {
          ...result,
          output: { ...result.output, Failed: [...((result.output.Failed as unknown[]) ?? []), ...failed] },
        };
      }) as never,
    { step: 'initialize', name },
  );
  return { staleReleases: () => stale, remove: () => clients.sqs.middlewareStack.remove(name) };
}

it('lists each message once, and all of them, when the listing outlasts the visibility timeout (ops46-dlq-seen-once)', async () => {
  // Found by the on-call drill in session 45: a listing longer than the timeout could end early (a receive of only
  // messages it had listed ended it, with more behind) and released those that came round by a stale receipt
  // handle, which SQS refuses: they stayed hidden for a timeout after the listing.
  const ids = Array.from({ length: 12 }, (_, i) => `l${i}:0`);
  const d = await stage(
    'dlqround1',
    ids.map((id) => `{"liquidationId":"${id}"}`),
  );
  const dlq = d.names.queues.liquidations.dlqUrl!;
  // The first receive takes 10 of the 12; the second waits until those 10 are visible again.
  const unhold = holdReceive(dlq, 2, untilVisible(dlq, 12));
  // review46-dlq-claims-tested: moto takes any handle a message ever had, so a release by a stale one passed here.
  const handles = receiptHandlesAsSqs(dlq);
  try {
    const listed = await listDeadLetters(d, 'liquidations', 100, VISIBILITY);
    expect(listed.map((m) => m.reason).sort()).toEqual(ids.map((id) => `liquidation ${id} in QUEUED`).sort());
    expect(new Set(listed.map((m) => m.messageId)).size).toBe(12);
  } finally {
    unhold();
    handles.remove();
  }
  // Released by their newest handles: all there for the next command at once.
  expect(handles.staleReleases()).toBe(0);
  expect((await new SqsQueueTransport(clients.sqs, { url: dlq }).depth()).visible).toBe(12);
}, 120_000);

it('redrives each message once when the redrive outlasts the visibility timeout (ops46-dlq-seen-once)', async () => {
  // Found by the same drill: a dead letter the redrive held (one it cannot send back) came round once its timeout ran
  // out, and was taken for another: listed twice among those left, counted twice towards --max.
  const d = await stage('dlqround2', []);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const good = Array.from({ length: 10 }, (_, i) => `{"liquidationId":"g${i}:0"}`);
  const poison = Array.from({ length: 5 }, (_, i) => `poison ${i}`);
  for (let i = 0; i < 10; i++) await queuedWithoutPosition(d.names.tables.liquidations, `g${i}:0`);
  // Moto answers in the order sent: the first receive moves five and holds the five poison messages.
  for (const body of [...good.slice(0, 5), ...poison, ...good.slice(5)])
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: body }));
  // The second receive waits until the five poison messages the first held are visible again, beside the five
  // good ones left.
  const unhold = holdReceive(dlq, 2, untilVisible(dlq, 10));
  let outcome: Awaited<ReturnType<typeof redriveDeadLetters>>;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations', 1000, VISIBILITY);
  } finally {
    unhold();
  }
  expect(outcome.moved).toBe(10);
  expect(outcome.failed).toHaveLength(5);
  expect(new Set(outcome.failed.map((f) => f.messageId)).size).toBe(5);
  // Each good one sent back once; the poison ones left, visible for the next command.
  const back: string[] = [];
  for (;;) {
    const out = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: d.names.queues.liquidations.url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    if (!out.Messages?.length) break;
    back.push(...out.Messages.map((m) => m.Body!));
  }
  expect(back.sort()).toEqual([...good].sort());
  expect((await listDeadLetters(d, 'liquidations')).map((m) => m.body).sort()).toEqual(poison);
}, 120_000);

it('deletes a dead letter it sent back that comes round after its delete, and does not send it again (review46-dlq-claims-tested)', async () => {
  // ops46-dlq-seen-once's claim, untested there (moto never returns a deleted message): a standard queue may return a
  // message after its delete succeeded (a copy on a server that was out). Taken for a new one, it was sent back twice.
  const d = await stage('dlqround3', []);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const good = Array.from({ length: 4 }, (_, i) => `{"liquidationId":"c${i}:0"}`);
  for (let i = 0; i < 4; i++) await queuedWithoutPosition(d.names.tables.liquidations, `c${i}:0`);
  for (const body of good)
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: body }));
  // The last held by another reader as the run begins: its first receive takes the other three, and the run, counting
  // four (dlq48-redrive-inflow), receives again. The first delete of the first one deletes nothing: it comes round
  // once its timeout runs out, and the second receive waits for it and the last.
  await hide(dlq, [good[3]!], 2);
  const handles = receiptHandlesAsSqs(dlq, [good[0]!]);
  const unhold = holdReceive(dlq, 2, untilVisible(dlq, 2));
  let outcome: Awaited<ReturnType<typeof redriveDeadLetters>>;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations', 1000, VISIBILITY);
  } finally {
    unhold();
    handles.remove();
  }
  expect(outcome).toEqual({ moved: 4, failed: [] });
  const back: string[] = [];
  for (;;) {
    const out = await clients.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: d.names.queues.liquidations.url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    if (!out.Messages?.length) break;
    back.push(...out.Messages.map((m) => m.Body!));
  }
  expect(back.sort()).toEqual([...good].sort()); // each sent back once
  // The copy deleted by its new handle: none left, visible or hidden.
  const depth = await new SqsQueueTransport(clients.sqs, { url: dlq }).depth();
  expect(depth.visible + depth.inFlight).toBe(0);
}, 120_000);

type DeleteAnswer = 'lost' | 'fail' | 'ok';

/**
 * DeleteMessage on `url` as `plan` says for the bodies it names, its n-th delete of one by the plan's n-th answer (the
 * last for any after): `lost` succeeds and deletes nothing (a copy on a server that was out, as receiptHandlesAsSqs),
 * `fail` fails as a call does once the SDK's retries are spent (an initialize-step middleware runs above them), `ok`
 * deletes. Returns what removes it.
 */
function deletesAs(
  url: string,
  plan: Readonly<Record<string, readonly DeleteAnswer[]>>,
  sqs = clients.sqs,
): () => void {
  const bodyOf = new Map<string, string>(); // receipt handle -> body
  const deletes = new Map<string, number>(); // body -> deletes asked
  const name = `deletesAs${url}`;
  sqs.middlewareStack.add(
    ((
      next: (a: unknown) => Promise<{ output: Record<string, unknown> }>,
      context: { commandName?: string },
    ) =>
      async (args: { input: { QueueUrl?: string; ReceiptHandle?: string } }) => {
        if (args.input.QueueUrl !== url) return next(args);
        if (context.commandName === 'ReceiveMessageCommand') {
          const result = await next(args);
          for (const m of (result.output.Messages ?? []) as { ReceiptHandle: string; Body: string }[])
            bodyOf.set(m.ReceiptHandle, m.Body);
          return result;
        }
        const body = bodyOf.get(args.input.ReceiptHandle ?? '');
        const answers = body === undefined ? undefined : plan[body];
        if (context.commandName !== 'DeleteMessageCommand' || !answers) return next(args);
        const n = deletes.get(body!) ?? 0;
        deletes.set(body!, n + 1);
        const answer = answers[Math.min(n, answers.length - 1)];
        if (answer === 'lost') return { output: { $metadata: {} }, response: {} };
        if (answer === 'fail')
          throw Object.assign(new Error('Service Unavailable'), {
            name: 'ServiceUnavailable',
            $fault: 'server',
          });
        return next(args);
      }) as never,
    { step: 'initialize', name },
  );
  return () => sqs.middlewareStack.remove(name);
}

/** The bodies waiting in the queue at `url`, each once (received and left hidden: read them last). */
async function bodiesIn(url: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const out = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    if (!out.Messages?.length) return bodies.sort();
    bodies.push(...out.Messages.map((m) => m.Body!));
  }
}

/** Hides the messages of `url` with `bodies` for `seconds` (as another operator's listing holds them). */
async function hide(url: string, bodies: readonly string[], seconds: number): Promise<void> {
  const out = await clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: url,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
      VisibilityTimeout: seconds,
    }),
  );
  const others = (out.Messages ?? []).filter((m) => !bodies.includes(m.Body!));
  expect((out.Messages ?? []).length - others.length).toBe(bodies.length);
  for (const m of others)
    await clients.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: url,
        ReceiptHandle: m.ReceiptHandle!,
        VisibilityTimeout: 0,
      }),
    );
}

it('holds the whole batch when the delete of a copy that came round in it fails (ops47-dlq-delete-mid-batch)', async () => {
  // Found by the review of session 46: a copy of a message the run had deleted was deleted again as the run met it
  // in a batch, and that delete failing threw out of the run with the rest of the batch neither handed on nor held:
  // hidden for the visibility timeout, out of the run's release, the redrive ended by the error.
  const d = await stage('dlqcopyfail', []);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const [a, b, c] = ['a', 'b', 'c'].map((id) => `{"liquidationId":"${id}:0"}`) as [string, string, string];
  for (const id of ['a', 'b', 'c']) await queuedWithoutPosition(d.names.tables.liquidations, `${id}:0`);
  for (const body of [a, b, c])
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: body }));
  // The first receive takes a alone (b and c held elsewhere); a's delete deletes nothing, so a's copy comes round
  // first in the second receive (moto answers in the order sent), which waits for all three, and its delete fails.
  await hide(dlq, [b, c], 2);
  const removeDeletes = deletesAs(dlq, { [a]: ['lost', 'fail'] });
  const unhold = holdReceive(dlq, 2, untilVisible(dlq, 3));
  let outcome: Awaited<ReturnType<typeof redriveDeadLetters>>;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations', 1000, VISIBILITY);
  } finally {
    unhold();
    removeDeletes();
  }
  const aId = outcome.notDeleted?.[0]?.messageId ?? '';
  expect(outcome).toEqual({
    moved: 3,
    failed: [],
    notDeleted: [
      {
        messageId: aId,
        reason: `sent back, then its delete failed (Service Unavailable): still in the DLQ, where a redrive sends it again (a duplicate delivery, which its consumer takes as any); backstop dlq discard --queue liquidations --message-id ${aId} removes it`,
      },
    ],
  });
  // b and c deleted, a released (none left hidden), and each sent back once.
  const depth = await new SqsQueueTransport(clients.sqs, { url: dlq }).depth();
  expect([depth.visible, depth.inFlight]).toEqual([1, 0]);
  expect(await bodiesIn(d.names.queues.liquidations.url)).toEqual([a, b, c]);
  expect(await bodiesIn(dlq)).toEqual([a]);
}, 120_000);

it('goes on past a receive of new dead letters alone while older ones are still there (ops47-dlq-arrivals-only)', async () => {
  // Found by the review of session 46: a receive holding only dead letters that arrived during the run ended it. SQS
  // answers in no set order (and another reader may hold the older ones a moment), so older ones were left behind.
  const d = await stage('dlqarrivals', []);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const olds = ['o1', 'o2', 'o3'].map((id) => `{"liquidationId":"${id}:0"}`);
  for (const id of ['o1', 'o2', 'o3']) await queuedWithoutPosition(d.names.tables.liquidations, `${id}:0`);
  for (const body of olds)
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: body }));
  await hide(dlq, olds, 2);
  const arrival = '{"liquidationId":"new:0"}';
  // The run's first receive answers the arrival alone: sent as it starts (stamped after the run's start), the
  // older ones still held; the second waits until they are visible again.
  const unholdFirst = holdReceive(dlq, 1, async () => {
    const calledAt = Date.now();
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(calledAt), { interval: 1 });
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: arrival }));
  });
  const unholdSecond = holdReceive(dlq, 2, untilVisible(dlq, 3));
  let outcome: Awaited<ReturnType<typeof redriveDeadLetters>>;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations');
  } finally {
    unholdFirst();
    unholdSecond();
  }
  expect(outcome).toEqual({ moved: 3, failed: [], arrivedDuring: 1 });
  expect(await bodiesIn(d.names.queues.liquidations.url)).toEqual(olds);
  expect(await bodiesIn(dlq)).toEqual([arrival]); // left for the next redrive, visible at once
}, 120_000);

it('says a dead letter sent back whose delete failed is still there, and its next redrive is a duplicate its consumer takes (ops47-dlq-delete-failed)', async () => {
  // Found by the review of session 46: the delete failing after the resend, the message was reported among those that
  // could not be sent back (it had been), not counted as moved, and nothing said that it was still in the DLQ.
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'CRITICAL');
  const stack = await startLocalStack({ endpoint: moto.endpoint, stage: 'dlqtwice', fastRetries: true });
  try {
    const d = { ...(await stage('dlqtwice', [])), clients: stack.clients, names: stack.names };
    const a = createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock });
    // p1 healthy at the mark: its liquidation, sent back, is cancelled by the consumer and p1 goes back to the book.
    await a.markets.acceptTick(
      'ETH-USD',
      { sequence: 1, markPrice: parsePrice('1500'), timestampMs: Date.now() },
      undefined,
      false,
    );
    const position = {
      id: 'p1',
      traderId: 't-p1',
      symbol: 'ETH-USD',
      side: 'LONG' as const,
      size: parseBase('1'),
      entryPrice: parsePrice('1500'),
      collateral: parseQuote('300'),
      state: 'OPEN' as const,
      liquidationPrice: parsePrice('1250'),
      version: 0,
    };
    await a.positions.create(position);
    await a.liquidations.begin(position, {
      id: 'p1:0',
      positionId: 'p1',
      symbol: 'ETH-USD',
      side: 'LONG',
      state: 'QUEUED',
      tickKey: 'ETH-USD#1',
      triggerMark: parsePrice('1200'),
      remainingSize: position.size,
      marketFills: [],
      history: [{ atMs: Date.now(), state: 'QUEUED' }],
      version: 0,
    });
    const body = '{"liquidationId":"p1:0"}';
    const dlq = stack.names.queues.liquidations.dlqUrl!;
    await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: body }));

    // Every delete of it fails: the one after its resend, and the one the run tries again as it ends.
    const removeDeletes = deletesAs(dlq, { [body]: ['fail'] }, stack.clients.sqs);
    let first: Awaited<ReturnType<typeof redriveDeadLetters>>;
    try {
      first = await redriveDeadLetters(d, 'liquidations');
    } finally {
      removeDeletes();
    }
    const id = first.notDeleted?.[0]?.messageId ?? '';
    expect(first).toEqual({
      moved: 1,
      failed: [],
      notDeleted: [
        {
          messageId: id,
          reason: `sent back, then its delete failed (Service Unavailable): still in the DLQ, where a redrive sends it again (a duplicate delivery, which its consumer takes as any); backstop dlq discard --queue liquidations --message-id ${id} removes it`,
        },
      ],
    });
    await stack.runner.runUntilIdle({ deadlineMs: 60_000 });
    const cancelled = await a.liquidations.get('p1:0');
    const reopened = await a.positions.get('p1');
    expect(cancelled).toMatchObject({ state: 'CANCELLED', version: 1 });
    expect(reopened).toMatchObject({ state: 'OPEN', version: 2 });
    // Still there, visible at once, as said.
    expect((await listDeadLetters(d, 'liquidations')).map((m) => [m.messageId, m.body])).toEqual([
      [id, body],
    ]);

    // The next redrive sends it again: the consumer takes it as a duplicate delivery, nothing moves.
    expect(await redriveDeadLetters(d, 'liquidations')).toEqual({ moved: 1, failed: [] });
    await stack.runner.runUntilIdle({ deadlineMs: 60_000 });
    expect(await a.liquidations.get('p1:0')).toEqual(cancelled);
    expect(await a.positions.get('p1')).toEqual(reopened);
    expect(stack.runner.errors).toEqual([]);
    const depth = await new SqsQueueTransport(stack.clients.sqs, { url: dlq }).depth();
    expect([depth.visible, depth.inFlight]).toEqual([0, 0]);
  } finally {
    await stack.stop();
    vi.unstubAllEnvs();
  }
}, 120_000);

it('names the region a deployed target ran in, resolved from the shell, in the commands it prints (ops47-advice-region)', async () => {
  // Found by the review of session 46: --region was printed only when given, so the copy, run in a shell whose
  // default region (AWS_REGION, the profile's) is another, acted on that region's stack or found none.
  const regional = createAwsClients(localClientConfig(moto.endpoint, 'eu-west-2'));
  try {
    const names = await createLocalResources(regional, 'regionx');
    await publishStackOutputs(moto.endpoint, 'regionx', names, {}, 'eu-west-2');
    await regional.sqs.send(
      new SendMessageCommand({ QueueUrl: names.queues.liquidations.dlqUrl!, MessageBody: 'not json' }),
    );
    vi.stubEnv('AWS_REGION', 'eu-west-2');
    // LocalStack's region resolves from the shell as an aws target's does (--target aws takes no emulator).
    const target = ['--target', 'localstack', '--endpoint', moto.endpoint, '--stage', 'regionx'];
    const redrive = await cli('dlq', 'redrive', '--queue', 'liquidations', '--json', ...target);
    expect(redrive.code, redrive.stderr).toBe(1);
    const [poison] = (JSON.parse(redrive.stdout) as { redriven: RedriveOutcome[] }).redriven[0]!.failed;
    const printed = /; (backstop dlq discard .*) removes it$/.exec(poison!.reason)?.[1];
    expect(printed).toBe(
      `backstop dlq discard --queue liquidations --message-id ${poison!.messageId} --target localstack --stage regionx --endpoint ${moto.endpoint} --region eu-west-2`,
    );
    // Run as printed in a shell whose default region is another: it acts where it was printed.
    vi.stubEnv('AWS_REGION', 'us-west-1');
    const discard = await cli(...printed!.split(' ').slice(1));
    expect(discard.code, discard.stderr).toBe(0);
    expect(discard.stdout).toBe(`discarded ${poison!.messageId}\n  body: not json\n`);
  } finally {
    vi.unstubAllEnvs();
    regional.destroy();
  }
});

it("counts a dead letter sent back whose delete failed among those left in the DLQ, in the redrive's line (review47-redrive-left-count)", async () => {
  // Found by the review of session 47: the line read "1 sent back (1 of them still in the DLQ: their delete failed), 0
  // left in the DLQ", its count of what is left leaving out the one it said was left.
  const names = await createLocalResources(clients, 'leftcount');
  await publishStackOutputs(moto.endpoint, 'leftcount', names);
  const dlq = names.queues.liquidations.dlqUrl!;
  await queuedWithoutPosition(names.tables.liquidations, 'a:0');
  await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: '{"liquidationId":"a:0"}' }));
  // The CLI builds its own clients: every delete from this DLQ fails, as the service's would.
  const send = SQSClient.prototype.send;
  const deletes = vi.spyOn(SQSClient.prototype, 'send').mockImplementation(function (
    this: SQSClient,
    ...args: Parameters<SQSClient['send']>
  ) {
    const [command] = args;
    if (command instanceof DeleteMessageCommand && command.input.QueueUrl === dlq)
      return Promise.reject(Object.assign(new Error('Service Unavailable'), { name: 'ServiceUnavailable' }));
    return (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
  } as SQSClient['send']);
  let run: Awaited<ReturnType<typeof cli>>;
  try {
    run = await cli(
      'dlq',
      'redrive',
      '--queue',
      'liquidations',
      '--target',
      'localstack',
      '--endpoint',
      moto.endpoint,
      '--stage',
      'leftcount',
    );
  } finally {
    deletes.mockRestore();
  }
  expect(run.code, run.stderr).toBe(1);
  const lines = run.stdout.trimEnd().split('\n');
  expect(lines[0]).toBe(
    'liquidations: 1 sent back, 1 left in the DLQ (1 of them sent back: its delete failed)',
  );
  expect(lines[1]).toMatch(
    /^ {2}\S+: sent back, then its delete failed \(Service Unavailable\): still in the DLQ/,
  );
  expect(lines).toHaveLength(2);
  expect(await bodiesIn(dlq)).toEqual(['{"liquidationId":"a:0"}']);
}, 60_000);

it('names every dead letter whose delete failed, and how many more were not sent back, past 10 (ops47-redrive-more)', async () => {
  // Noticed in session 47: the text printed 10 lines, those not sent back first, and nothing of the rest; with 10 or more
  // of them, those sent back whose delete failed (each naming the discard to run) were never printed.
  const names = await createLocalResources(clients, 'redrivemore');
  await publishStackOutputs(moto.endpoint, 'redrivemore', names);
  const dlq = names.queues.liquidations.dlqUrl!;
  await queuedWithoutPosition(names.tables.liquidations, 'a:0');
  await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: '{"liquidationId":"a:0"}' }));
  // Twelve poison messages: none is sent back.
  for (let i = 0; i < 12; i++)
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: `not json ${i}` }));
  // The CLI builds its own clients: a:0's delete from the DLQ fails, as the service's would.
  const send = SQSClient.prototype.send;
  const deletes = vi.spyOn(SQSClient.prototype, 'send').mockImplementation(function (
    this: SQSClient,
    ...args: Parameters<SQSClient['send']>
  ) {
    const [command] = args;
    if (command instanceof DeleteMessageCommand && command.input.QueueUrl === dlq)
      return Promise.reject(Object.assign(new Error('Service Unavailable'), { name: 'ServiceUnavailable' }));
    return (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
  } as SQSClient['send']);
  const target = ['--target', 'localstack', '--endpoint', moto.endpoint, '--stage', 'redrivemore'];
  let run: Awaited<ReturnType<typeof cli>>;
  try {
    run = await cli('dlq', 'redrive', '--queue', 'liquidations', ...target);
  } finally {
    deletes.mockRestore();
  }
  expect(run.code, run.stderr).toBe(1);
  const lines = run.stdout.trimEnd().split('\n');
  expect(lines[0]).toBe(
    'liquidations: 1 sent back, 13 left in the DLQ (1 of them sent back: its delete failed)',
  );
  // The one whose delete failed, with its discard; then 10 of the poison messages and how many more.
  expect(lines[1]).toMatch(
    /^ {2}\S+: sent back, then its delete failed \(Service Unavailable\): still in the DLQ, .*; backstop dlq discard --queue liquidations --message-id \S+ --target localstack .* removes it$/,
  );
  expect(lines.slice(2, 12).every((l) => /^ {2}\S+: poison: /.test(l))).toBe(true);
  expect(lines[12]).toBe(
    `  ... and 2 more not sent back (with --json a redrive lists every one and why; backstop dlq list --queue liquidations --target localstack --stage redrivemore --endpoint ${moto.endpoint} --region us-east-1 lists what is left, sending nothing)`,
  );
  expect(lines).toHaveLength(13);
}, 60_000);

/**
 * Answers `command` on the queue at `url` as SQS answers a caller it refuses (`code`, HTTP `status`): below the SDK's
 * deserializer, which makes the error from the answer as from the service's (its name, `$fault`, `$metadata`), and
 * its retry strategy, which takes it as it would. Returns what removes it and how many it refused.
 */
function sqsRefuses(
  command: string,
  url: string,
  code: string,
  status: number,
  message: string,
): { refused: () => number; remove: () => void } {
  let refused = 0;
  const name = `sqsRefuses${command}${url}`;
  clients.sqs.middlewareStack.add(
    ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: { QueueUrl?: string } }) => {
        if (context.commandName !== command || args.input.QueueUrl !== url) return next(args);
        refused += 1;
        const body = JSON.stringify({ __type: `com.amazonaws.sqs#${code}`, message });
        return {
          response: {
            statusCode: status,
            headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-query-error': `${code};Sender` },
            body: new TextEncoder().encode(body),
          },
        };
      }) as never,
    { step: 'deserialize', priority: 'low', name },
  );
  return { refused: () => refused, remove: () => clients.sqs.middlewareStack.remove(name) };
}

/** Until the clock has passed the moment it is called: what SQS stamps next is later than a run started before. */
const clockPassed = async (): Promise<void> => {
  const calledAt = Date.now();
  await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(calledAt), { interval: 1 });
};

it('moves the dead letters the DLQ held as it began, and ends while new ones keep coming in (dlq48-redrive-inflow)', async () => {
  // Noticed in session 47, left then: under a steady inflow of new dead letters a redrive ran until --max (counted
  // towards it, each held to the end): about 16 minutes at one a second with the default 1000. And a dead letter SQS
  // moves from a work queue keeps the stamp of its first send there, so new failures of work sent before the run
  // looked older than it and were sent back.
  const olds = Array.from({ length: 12 }, (_, i) => `{"liquidationId":"o${i}:0"}`);
  const d = await stage('dlqsteady', olds);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const other = createAwsClients(localClientConfig(moto.endpoint));
  try {
    // A work queue dead-lettering into this DLQ at its second receive, holding five messages sent before the run,
    // each received once and hidden: made visible one at a time, the next receive moves it to the DLQ.
    const { Attributes } = await other.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['QueueArn'] }),
    );
    const { QueueUrl: feeder } = await other.sqs.send(
      new CreateQueueCommand({
        QueueName: 'dlqsteady-feeder',
        Attributes: {
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: 1 }),
        },
      }),
    );
    for (let i = 0; i < 5; i++) {
      await queuedWithoutPosition(d.names.tables.liquidations, `late${i}:0`);
      await other.sqs.send(
        new SendMessageCommand({ QueueUrl: feeder, MessageBody: `{"liquidationId":"late${i}:0"}` }),
      );
    }
    const { Messages: failing } = await other.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: feeder!, MaxNumberOfMessages: 10, VisibilityTimeout: 600 }),
    );
    expect(failing).toHaveLength(5);
    // Before each receive of the run from the DLQ: one of them dead-lettered, and a new failure sent there.
    let receives = 0;
    clients.sqs.middlewareStack.add(
      ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: { input: { QueueUrl?: string } }) => {
          if (context.commandName !== 'ReceiveMessageCommand' || args.input.QueueUrl !== dlq)
            return next(args);
          receives += 1;
          await clockPassed();
          const late = failing!.shift();
          if (late) {
            await other.sqs.send(
              new ChangeMessageVisibilityCommand({
                QueueUrl: feeder,
                ReceiptHandle: late.ReceiptHandle!,
                VisibilityTimeout: 0,
              }),
            );
            const moved = await other.sqs.send(
              new ReceiveMessageCommand({ QueueUrl: feeder, WaitTimeSeconds: 0 }),
            );
            expect(moved.Messages ?? []).toEqual([]);
          }
          await queuedWithoutPosition(d.names.tables.liquidations, `new${receives}:0`);
          await other.sqs.send(
            new SendMessageCommand({ QueueUrl: dlq, MessageBody: `{"liquidationId":"new${receives}:0"}` }),
          );
          return next(args);
        }) as never,
      { step: 'initialize', name: 'steadyInflow' },
    );
    let outcome: RedriveOutcome;
    try {
      outcome = await redriveDeadLetters(d, 'liquidations', 100);
    } finally {
      clients.sqs.middlewareStack.remove('steadyInflow');
    }
    // The twelve, in two receives: before, it went on to --max, sending back the five late ones among 17. A third
    // receive looks past the count and says what came in, the late ones too (review48-dlq-past-count: unsaid, "0 left").
    expect(outcome).toEqual({ moved: 12, failed: [], arrivedDuring: 3, pastCount: 3 });
    expect(receives).toBe(3);
    expect(await bodiesIn(d.names.queues.liquidations.url)).toEqual([...olds].sort());
    // What came in during the run is left for the next redrive, visible at once.
    expect(await bodiesIn(dlq)).toEqual(
      ['late0', 'late1', 'late2', 'new1', 'new2', 'new3'].map((id) => `{"liquidationId":"${id}:0"}`),
    );
  } finally {
    other.destroy();
  }
}, 120_000);

it.each([
  ['20 minutes ahead', 20],
  ['20 minutes behind', -20],
])(
  "cuts the dead letters that came in during a redrive by AWS's clock, on a machine %s (review49-cli-redrive-clock)",
  async (_, minutes) => {
    // Found by the review of session 49: the run's start, against which SQS's SentTimestamp says what came in during
    // it, was the machine's clock. One 20 minutes ahead sent back a dead letter that came in during the run, as old (a
    // letter sent back that fails again comes round and round); one behind left every letter of its last 20 minutes.
    const trueNow = Date.now.bind(Date);
    const d = await stage(`dlqclock${minutes > 0 ? 'ahead' : 'behind'}`, []);
    const dlq = d.names.queues.liquidations.dlqUrl!;
    const clock = awsClockOf(d);
    const olds = ['o1', 'o2', 'o3'].map((id) => `{"liquidationId":"${id}:0"}`);
    for (const id of ['o1', 'o2', 'o3']) await queuedWithoutPosition(d.names.tables.liquidations, `${id}:0`);
    for (const body of olds)
      await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: body }));
    const sentBy = trueNow();
    vi.spyOn(Date, 'now').mockImplementation(() => trueNow() + minutes * 60_000);
    // AWS's time as the answers tell it, a second behind at most, past the letters' stamps (SQS's, by the true clock).
    await vi.waitFor(async () => {
      await clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['QueueArn'] }));
      expect(clock.nowMs()).toBeGreaterThan(sentBy);
    }, WAIT);
    const arrival = '{"liquidationId":"new:0"}';
    // Sent as the run's first receive is asked: after its start, by any clock.
    const unhold = holdReceive(dlq, 1, async () => {
      await clockPassed();
      await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: arrival }));
    });
    let outcome: RedriveOutcome;
    try {
      outcome = await redriveDeadLetters(d, 'liquidations');
    } finally {
      unhold();
      vi.restoreAllMocks();
    }
    // Before: ahead, the arrival said found past SQS's count, as old (pastCount); behind, none moved, all 4 arrivals.
    expect(outcome).toMatchObject({ moved: 3, failed: [], arrivedDuring: 1 });
    expect(await bodiesIn(d.names.queues.liquidations.url)).toEqual(olds);
    expect(await bodiesIn(dlq)).toEqual([arrival]);
  },
  120_000,
);

it('says what it sent back, what is left and the error when a receive fails mid-run (dlq48-redrive-error)', async () => {
  // Noticed in session 47, left then: an error out of the run (a receive failing once the SDK's retries are spent)
  // ended the command with the error alone: what it had sent back, and what was left, unsaid.
  const olds = Array.from({ length: 14 }, (_, i) => `{"liquidationId":"e${i}:0"}`);
  const d = await stage('dlqrecvfail', olds);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  let receives = 0;
  clients.sqs.middlewareStack.add(
    ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: { QueueUrl?: string } }) => {
        if (
          context.commandName === 'ReceiveMessageCommand' &&
          args.input.QueueUrl === dlq &&
          ++receives === 2
        )
          throw Object.assign(new Error('Service Unavailable'), {
            name: 'ServiceUnavailable',
            $fault: 'server',
            $metadata: { httpStatusCode: 503, attempts: 3 },
          });
        return next(args);
      }) as never,
    { step: 'initialize', name: 'secondReceiveFails' },
  );
  let outcome: RedriveOutcome;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations');
  } finally {
    clients.sqs.middlewareStack.remove('secondReceiveFails');
  }
  expect(outcome).toEqual({
    moved: 10,
    failed: [],
    stopped: { error: 'ServiceUnavailable: Service Unavailable', notReached: 4 },
  });
  expect(await bodiesIn(d.names.queues.liquidations.url)).toEqual(olds.slice(0, 10).sort());
  expect(await bodiesIn(dlq)).toEqual(olds.slice(10).sort());
}, 60_000);

it('stops at the first send refused as the caller (AccessDenied), leaving the rest untried (dlq48-caller-refusal)', async () => {
  // Noticed in session 47, left then: a refusal of the caller's fails every message the same way, and the redrive
  // went through the whole DLQ failing each (a send, and its reason, per message).
  const olds = Array.from({ length: 12 }, (_, i) => `{"liquidationId":"d${i}:0"}`);
  const d = await stage('dlqdenied', olds);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const denial =
    'User: arn:aws:sts::123456789012:assumed-role/operator/x is not authorized to perform: sqs:sendmessage because no identity-based policy allows the sqs:sendmessage action';
  const sends = sqsRefuses(
    'SendMessageCommand',
    d.names.queues.liquidations.url,
    'AccessDenied',
    403,
    denial,
  );
  let outcome: RedriveOutcome;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations');
  } finally {
    sends.remove();
  }
  expect(outcome).toEqual({
    moved: 0,
    failed: [{ messageId: expect.any(String), reason: denial }],
    stopped: { error: `AccessDenied: ${denial}`, notReached: 11 },
  });
  expect(sends.refused()).toBe(1);
  // All twelve still there, visible at once for a redrive with other credentials.
  const depth = await new SqsQueueTransport(clients.sqs, { url: dlq }).depth();
  expect([depth.visible, depth.inFlight]).toEqual([12, 0]);
}, 60_000);

it("says a work queue's own policy refused the send, and whom it takes, at the first refusal (security49-queue-senders)", async () => {
  // A stack deployed with queueSendersOnly (the default since session 49) denies SendMessage to every principal but the
  // functions' roles and queueSenderPrincipals; moto enforces no policy, so the client refuses as the queue would.
  const olds = Array.from({ length: 3 }, (_, i) => `{"liquidationId":"q${i}:0"}`);
  const d = await stage('dlqqpolicy', olds);
  const denial =
    'User: arn:aws:sts::123456789012:assumed-role/operator/x is not authorized to perform: sqs:sendmessage on resource: arn:aws:sqs:eu-west-1:123456789012:q with an explicit deny in a resource-based policy';
  const sends = sqsRefuses(
    'SendMessageCommand',
    d.names.queues.liquidations.url,
    'AccessDenied',
    403,
    denial,
  );
  let outcome: RedriveOutcome;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations');
  } finally {
    sends.remove();
  }
  const reason = `dlq/send-refused: AccessDenied (${denial}): a stack deployed with backstop:queueSendersOnly (the default) takes messages on liquidations from its functions and backstop:queueSenderPrincipals alone: redrive as a role listed there`;
  expect(outcome).toEqual({
    moved: 0,
    failed: [{ messageId: expect.any(String), reason }],
    stopped: { error: reason, notReached: 2 },
  });
  expect(sends.refused()).toBe(1);
  const depth = await new SqsQueueTransport(clients.sqs, {
    url: d.names.queues.liquidations.dlqUrl!,
  }).depth();
  expect([depth.visible, depth.inFlight]).toEqual([3, 0]);
}, 60_000);

it('stops at the first tick the bus refuses for the credentials (dlq redrive --queue tickDeadLetters) (dlq48-caller-refusal)', async () => {
  // The same for ticks: credentials EventBridge does not recognise refused every PutEvents, one per dead letter.
  const d = await stage('dlqbadkeys', []);
  const tickDlq = d.names.queues.tickDeadLetters.url;
  for (let sequence = 1; sequence <= 3; sequence++)
    await clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: tickDlq,
        MessageBody: JSON.stringify({
          source: TICK_BUS.source,
          'detail-type': TICK_BUS.detailType,
          detail: { symbol: 'ETH-USD', markPrice: '1500', sequence },
        }),
      }),
    );
  const invalid = 'The security token included in the request is invalid.';
  let puts = 0;
  // EventBridge's answer to keys it does not know, made an error by the SDK's own deserializer.
  clients.events.middlewareStack.add(
    ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
      if (context.commandName !== 'PutEventsCommand') return next(args);
      puts += 1;
      return {
        response: {
          statusCode: 400,
          headers: { 'content-type': 'application/x-amz-json-1.1' },
          body: new TextEncoder().encode(
            JSON.stringify({ __type: 'UnrecognizedClientException', message: invalid }),
          ),
        },
      };
    }) as never,
    { step: 'deserialize', priority: 'low', name: 'unrecognizedKeys' },
  );
  let outcome: RedriveOutcome;
  try {
    outcome = await redriveDeadLetters(d, 'tickDeadLetters');
  } finally {
    clients.events.middlewareStack.remove('unrecognizedKeys');
  }
  expect(outcome).toEqual({
    moved: 0,
    failed: [
      { messageId: expect.any(String), reason: `dlq/put-failed: UnrecognizedClientException (${invalid})` },
    ],
    stopped: { error: `dlq/put-failed: UnrecognizedClientException (${invalid})`, notReached: 2 },
  });
  expect(puts).toBe(1);
  expect(await listDeadLetters(d, 'tickDeadLetters')).toHaveLength(3);
}, 60_000);

// feed48b-continuation-caller-denied: a continuation's whole call denied by the caller's own policy was read as the bus's
// policy refusing its detail type: told to discard it, and the run went on, one refused call a dead letter.
async function redriveContinuationsDenied(
  stageName: string,
  denial: string,
): Promise<{ outcome: RedriveOutcome; puts: number; left: number }> {
  const d = await stage(stageName, []);
  const tickDlq = d.names.queues.tickDeadLetters.url;
  for (let segment = 1; segment <= 3; segment++)
    await clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: tickDlq,
        MessageBody: JSON.stringify({
          source: TICK_BUS.source,
          'detail-type': TICK_BUS.continuationDetailType,
          detail: { symbol: 'ETH-USD', markPrice: '1500', sequence: 7, segment },
        }),
      }),
    );
  let puts = 0;
  // EventBridge's answer, made an error by the SDK's own deserializer.
  clients.events.middlewareStack.add(
    ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
      if (context.commandName !== 'PutEventsCommand') return next(args);
      puts += 1;
      return {
        response: {
          statusCode: 400,
          headers: { 'content-type': 'application/x-amz-json-1.1' },
          body: new TextEncoder().encode(
            JSON.stringify({ __type: 'AccessDeniedException', message: denial }),
          ),
        },
      };
    }) as never,
    { step: 'deserialize', priority: 'low', name: 'callerDenies' },
  );
  let outcome: RedriveOutcome;
  try {
    outcome = await redriveDeadLetters(d, 'tickDeadLetters');
  } finally {
    clients.events.middlewareStack.remove('callerDenies');
  }
  return { outcome, puts, left: (await listDeadLetters(d, 'tickDeadLetters')).length };
}

it("stops at a continuation the caller's identity policy may not put, and does not advise its discard (feed48b-continuation-caller-denied)", async () => {
  const denial =
    'User: arn:aws:sts::123456789012:assumed-role/ops/me is not authorized to perform: events:PutEvents on resource: ' +
    'arn:aws:events:us-east-1:123456789012:event-bus/ticks because no identity-based policy allows the events:PutEvents action';
  const { outcome, puts, left } = await redriveContinuationsDenied('dlqcallerdenied', denial);
  // Before: three dlq/continuation-refused, each advising its discard.
  const reason = `dlq/put-failed: AccessDeniedException (${denial}): these credentials may not put events on the bus: redrive with credentials allowed events:PutEvents on it`;
  expect(outcome).toEqual({
    moved: 0,
    failed: [{ messageId: expect.any(String), reason }],
    stopped: { error: reason, notReached: 2 },
  });
  expect(puts).toBe(1);
  expect(left).toBe(3);
}, 60_000);

// review48-follow-vpce-denial: a denial by the VPC endpoint the operator's calls go through (IAM's own words for it) was
// read as the bus's refusing the continuation: its discard advised, and the run went on.
it("stops at a continuation the caller's VPC endpoint policy denies, and does not advise its discard (review48-follow-vpce-denial)", async () => {
  const denial =
    'User: arn:aws:sts::123456789012:assumed-role/ops/me is not authorized to perform: events:PutEvents on resource: ' +
    'arn:aws:events:us-east-1:123456789012:event-bus/ticks because no VPC endpoint policy allows the events:PutEvents action';
  const { outcome, puts, left } = await redriveContinuationsDenied('dlqvpcedenied', denial);
  const reason = `dlq/put-failed: AccessDeniedException (${denial}): the VPC endpoint these calls go through may not put events on the bus: redrive where its policy allows events:PutEvents, or from outside that network`;
  expect(outcome).toEqual({
    moved: 0,
    failed: [{ messageId: expect.any(String), reason }],
    stopped: { error: reason, notReached: 2 },
  });
  expect(puts).toBe(1);
  expect(left).toBe(3);
}, 60_000);

it('redrives queue by queue and, stopped by a refusal, says what each moved and left and exits 1 (dlq48-redrive-error, dlq48-caller-refusal)', async () => {
  // The CLI on moto, whose own answer refuses the sends: the auction-step queue is not there (a stack half torn down,
  // another region's URL). The liquidations are sent back first; the tick DLQ is not tried.
  const names = await createLocalResources(clients, 'redrivestop');
  const gone = `${names.queues.auctionSteps.url}-gone`;
  await publishStackOutputs(moto.endpoint, 'redrivestop', {
    ...names,
    queues: { ...names.queues, auctionSteps: { ...names.queues.auctionSteps, url: gone } },
  });
  for (const id of ['a', 'b']) {
    await queuedWithoutPosition(names.tables.liquidations, `${id}:0`);
    await clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: names.queues.liquidations.dlqUrl!,
        MessageBody: `{"liquidationId":"${id}:0"}`,
      }),
    );
  }
  for (const epoch of [1, 2, 3])
    await clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: names.queues.auctionSteps.dlqUrl!,
        MessageBody: JSON.stringify({ registrationWake: { symbol: 'ETH-USD', epoch } }),
      }),
    );
  await clients.sqs.send(
    new SendMessageCommand({ QueueUrl: names.queues.tickDeadLetters.url, MessageBody: 'not json' }),
  );
  const target = ['--target', 'localstack', '--endpoint', moto.endpoint, '--stage', 'redrivestop'];
  const run = await cli('dlq', 'redrive', ...target);
  expect(run.code, run.stderr).toBe(1);
  expect(run.stderr).toBe('');
  const lines = run.stdout.trimEnd().split('\n');
  const missing = 'The specified queue does not exist.';
  expect(lines[0]).toBe('liquidations: 2 sent back, 0 left in the DLQ');
  expect(lines[1]).toBe('auctionSteps: 0 sent back, 3 left in the DLQ (about 2 of them not reached)');
  expect(lines[2]).toBe(`  STOPPED by QueueDoesNotExist: ${missing}`);
  expect(lines[3]).toMatch(new RegExp(`^ {2}\\S+: ${missing.replaceAll('.', '\\.')}$`));
  expect(lines[4]).toBe('tickDeadLetters: not redriven (the redrive stopped)');
  expect(lines).toHaveLength(5);
  // As JSON: the same, and the queue not redriven named.
  await queuedWithoutPosition(names.tables.liquidations, 'c:0');
  await clients.sqs.send(
    new SendMessageCommand({
      QueueUrl: names.queues.liquidations.dlqUrl!,
      MessageBody: '{"liquidationId":"c:0"}',
    }),
  );
  const json = await cli('dlq', 'redrive', '--json', ...target);
  expect(json.code, json.stderr).toBe(1);
  const report = JSON.parse(json.stdout) as {
    redriven: (RedriveOutcome & { queue: string })[];
    notRedriven: string[];
  };
  expect(report.redriven.map(({ queue, moved, stopped }) => ({ queue, moved, stopped }))).toEqual([
    { queue: 'liquidations', moved: 1, stopped: undefined },
    { queue: 'auctionSteps', moved: 0, stopped: { error: `QueueDoesNotExist: ${missing}`, notReached: 2 } },
  ]);
  expect(report.notRedriven).toEqual(['tickDeadLetters']);
  expect(await bodiesIn(names.queues.liquidations.url)).toEqual(
    ['a', 'b', 'c'].map((id) => `{"liquidationId":"${id}:0"}`),
  );
}, 60_000);

it('says one message in the singular in dlq list (dlq48-counted)', async () => {
  // Noticed in session 47: `dlq list` printed "1 message(s)", where the other commands say one thing in the singular.
  const names = await createLocalResources(clients, 'listcount');
  await publishStackOutputs(moto.endpoint, 'listcount', names);
  for (const body of ['not json 1', 'not json 2'])
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: names.queues.liquidations.dlqUrl!, MessageBody: body }),
    );
  await clients.sqs.send(
    new SendMessageCommand({ QueueUrl: names.queues.tickDeadLetters.url, MessageBody: 'not json' }),
  );
  const run = await cli(
    'dlq',
    'list',
    '--target',
    'localstack',
    '--endpoint',
    moto.endpoint,
    '--stage',
    'listcount',
  );
  expect(run.code, run.stderr).toBe(0);
  expect(run.stdout.split('\n').slice(0, 3)).toEqual([
    'liquidations: 2 messages',
    'auctionSteps: 0 messages',
    'tickDeadLetters: 1 message',
  ]);
});

it('says only STOPPED for a queue of dlq list that failed before reading it, not "0 messages" first (ops49b-dlq-list-stopped)', async () => {
  const names = await createLocalResources(clients, 'liststop');
  await publishStackOutputs(moto.endpoint, 'liststop', names);
  await clients.sqs.send(
    new SendMessageCommand({ QueueUrl: names.queues.tickDeadLetters.url, MessageBody: 'not json' }),
  );
  // The CLI's receive of the liquidations DLQ refused, as a caller without sqs:ReceiveMessage on it is.
  const send = SQSClient.prototype.send;
  const spy = vi.spyOn(SQSClient.prototype, 'send').mockImplementation(function (
    this: SQSClient,
    ...args: Parameters<SQSClient['send']>
  ) {
    const [command] = args;
    if (
      command instanceof ReceiveMessageCommand &&
      command.input.QueueUrl === names.queues.liquidations.dlqUrl
    )
      return Promise.reject(
        Object.assign(new Error('not authorized to perform: sqs:receivemessage'), {
          name: 'AccessDenied',
          $fault: 'client',
          $metadata: { httpStatusCode: 403 },
        }),
      );
    return (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
  } as SQSClient['send']);
  let run: Awaited<ReturnType<typeof cli>>;
  try {
    run = await cli(
      'dlq',
      'list',
      '--target',
      'localstack',
      '--endpoint',
      moto.endpoint,
      '--stage',
      'liststop',
    );
  } finally {
    spy.mockRestore();
  }
  expect(run.code, run.stderr).toBe(1);
  const lines = run.stdout.trimEnd().split('\n');
  // Before: "liquidations: 0 messages" first, then the line saying it read nothing.
  expect(lines.filter((l) => l.startsWith('liquidations:'))).toEqual([
    'liquidations: STOPPED by before reading it: AccessDenied: not authorized to perform: sqs:receivemessage',
  ]);
  expect(lines.slice(0, 2)).toEqual(['auctionSteps: 0 messages', 'tickDeadLetters: 1 message']);
});

/**
 * SQS's approximate count of the DLQ at `url`, as `counts` answers it (visible, then in flight), on `sqs` (the CLI's
 * own clients: every SQSClient), where SQS may answer low for up to a minute after letters came in. Returns what
 * removes it.
 */
function countsAs(url: string, counts: () => readonly [number, number]): () => void {
  const send = SQSClient.prototype.send;
  const spy = vi.spyOn(SQSClient.prototype, 'send').mockImplementation(function (
    this: SQSClient,
    ...args: Parameters<SQSClient['send']>
  ) {
    const [command] = args;
    if (
      command instanceof GetQueueAttributesCommand &&
      command.input.QueueUrl === url &&
      command.input.AttributeNames?.includes('ApproximateNumberOfMessages')
    ) {
      const [visible, inFlight] = counts();
      return Promise.resolve({
        Attributes: {
          ApproximateNumberOfMessages: String(visible),
          ApproximateNumberOfMessagesNotVisible: String(inFlight),
        },
        $metadata: {},
      });
    }
    return (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
  } as SQSClient['send']);
  return () => spy.mockRestore();
}

it('says the dead letters it found past a count SQS gave low, left for the next redrive (review48-dlq-past-count)', async () => {
  // Found by the review of session 48: a run ended at SQS's count as it began, which is eventually consistent (up to a
  // minute behind letters that came in), and said "0 left in the DLQ" with the rest of them still there.
  const olds = Array.from({ length: 12 }, (_, i) => `{"liquidationId":"p${i}:0"}`);
  const d = await stage('dlqlowcount', olds);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const restore = countsAs(dlq, () => [9, 0]);
  let outcome: RedriveOutcome;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations');
  } finally {
    restore();
  }
  // Nine moved, the three past the count found and left, visible at once.
  expect(outcome).toEqual({ moved: 9, failed: [], pastCount: 3 });
  const depth = await new SqsQueueTransport(clients.sqs, { url: dlq }).depth();
  expect([depth.visible, depth.inFlight]).toEqual([3, 0]);

  // The CLI, a count of none (letters that came in the last seconds): one receive's worth moved, the rest said, with
  // the redrive that takes them; in --json, pastCount.
  const names = await createLocalResources(clients, 'lowcountcli');
  await publishStackOutputs(moto.endpoint, 'lowcountcli', names);
  const url = names.queues.liquidations.dlqUrl!;
  for (let i = 0; i < 13; i++) {
    await queuedWithoutPosition(names.tables.liquidations, `q${i}:0`);
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: url, MessageBody: `{"liquidationId":"q${i}:0"}` }),
    );
  }
  const target = ['--target', 'localstack', '--endpoint', moto.endpoint, '--stage', 'lowcountcli'];
  const restoreCli = countsAs(url, () => [0, 0]);
  let text: Awaited<ReturnType<typeof cli>>;
  let json: Awaited<ReturnType<typeof cli>>;
  try {
    text = await cli('dlq', 'redrive', '--queue', 'liquidations', ...target);
    json = await cli('dlq', 'redrive', '--queue', 'liquidations', '--json', ...target);
  } finally {
    restoreCli();
  }
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout.trimEnd().split('\n')).toEqual([
    "liquidations: 10 sent back, 0 left in the DLQ; 3 more past SQS's count as it began, left for the next redrive",
    `  the DLQ held more than SQS counted as the run began (its count lags up to a minute; a work queue's dead letter keeps its first send's stamp): backstop dlq redrive --queue liquidations --target localstack --stage lowcountcli --endpoint ${moto.endpoint} --region us-east-1 sends them back`,
  ]);
  expect(json.code, json.stderr).toBe(0);
  expect((JSON.parse(json.stdout) as { redriven: RedriveOutcome[] }).redriven).toEqual([
    { queue: 'liquidations', moved: 3, failed: [] },
  ]);
  expect(await bodiesIn(url)).toEqual([]);
}, 120_000);

it('says how many of the count as it began it did not reach: past --max, or held by another reader (review48-dlq-past-count)', async () => {
  // Found by the same review: a run that ended short of its count, at --max or at a receive finding nothing more while
  // another reader held some, said "0 left in the DLQ".
  const olds = Array.from({ length: 8 }, (_, i) => `{"liquidationId":"r${i}:0"}`);
  const d = await stage('dlqshort', olds);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  expect(await redriveDeadLetters(d, 'liquidations', 5)).toEqual({ moved: 5, failed: [], notReached: 3 });
  // Two of the three held by another reader (a listing, another redrive) for longer than the run.
  await holdElsewhere(dlq, 2);
  const outcome = await redriveDeadLetters(d, 'liquidations');
  expect(outcome).toEqual({ moved: 1, failed: [], notReached: 2 });
  expect(renderRedrive([{ queue: 'liquidations', ...outcome }], d)).toBe(
    'liquidations: 1 sent back, 2 left in the DLQ (about 2 of them not reached)\n' +
      "  those not reached of SQS's count as the run began: past --max, held by another reader, or deleted before its count caught up; backstop dlq list --queue liquidations shows what is there\n",
  );
}, 60_000);

/** Receives `n` messages of `url` and leaves them hidden a minute, as another reader holds them. */
async function holdElsewhere(url: string, n: number): Promise<void> {
  const out = await clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: url,
      MaxNumberOfMessages: n,
      WaitTimeSeconds: 1,
      VisibilityTimeout: 60,
    }),
  );
  expect(out.Messages ?? []).toHaveLength(n);
}

it('says a release that failed after the error that stopped the run (review48-dlq-release-unsaid)', async () => {
  // Found by the review of session 48: credentials that expire stop the run and fail its release the same way; the
  // release's error went unsaid behind the first, the messages it held hidden until their visibility timeout.
  const olds = Array.from({ length: 3 }, (_, i) => `{"liquidationId":"x${i}:0"}`);
  const d = await stage('dlqexpired', olds);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const expired = 'The security token included in the request is expired';
  const sends = sqsRefuses(
    'SendMessageCommand',
    d.names.queues.liquidations.url,
    'ExpiredToken',
    403,
    expired,
  );
  const releases = sqsRefuses('ChangeMessageVisibilityBatchCommand', dlq, 'ExpiredToken', 403, expired);
  let outcome: RedriveOutcome;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations', 1000, VISIBILITY);
  } finally {
    sends.remove();
    releases.remove();
  }
  expect(outcome.stopped).toEqual({
    error: `ExpiredToken: ${expired}; then releasing the messages it held: ExpiredToken: ${expired} (they come back once their visibility timeout runs out)`,
    notReached: 2,
  });
  expect(sends.refused()).toBe(1);
  // Hidden, as said, until their timeout runs out.
  const transport = new SqsQueueTransport(clients.sqs, { url: dlq });
  const depth = await transport.depth();
  expect([depth.visible, depth.inFlight]).toEqual([0, 3]);
  await vi.waitFor(async () => expect((await transport.depth()).visible).toBe(3), WAIT);
}, 60_000);

it('ends while new dead letters keep coming in when SQS counted more than the DLQ held (review48-dlq-count-high)', async () => {
  // Found by the review of session 48 (dlq48-redrive-inflow): a count above what is there (deletes SQS's count has not
  // caught up with, as after a redrive a moment before; letters another reader holds) kept the run short of it, and
  // so receiving new dead letters, one a receive, until --max.
  const olds = Array.from({ length: 3 }, (_, i) => `{"liquidationId":"h${i}:0"}`);
  const d = await stage('dlqhighcount', olds);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  let receives = 0;
  clients.sqs.middlewareStack.add(
    ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: { QueueUrl?: string } }) => {
        if (context.commandName !== 'ReceiveMessageCommand' || args.input.QueueUrl !== dlq) return next(args);
        receives += 1;
        await clockPassed();
        await clients.sqs.send(
          new SendMessageCommand({ QueueUrl: dlq, MessageBody: `{"liquidationId":"n${receives}:0"}` }),
        );
        return next(args);
      }) as never,
    { step: 'initialize', name: 'inflowHighCount' },
  );
  const restore = countsAs(dlq, () => [5, 0]);
  let outcome: RedriveOutcome;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations', 100);
  } finally {
    restore();
    clients.sqs.middlewareStack.remove('inflowHighCount');
  }
  // The three, then ten arrivals (a batch): before, 97 arrivals in 97 receives, to --max.
  expect(outcome).toEqual({ moved: 3, failed: [], arrivedDuring: 10, notReached: 2 });
  expect(receives).toBe(10);
  const depth = await new SqsQueueTransport(clients.sqs, { url: dlq }).depth();
  expect([depth.visible, depth.inFlight]).toEqual([10, 0]);
}, 60_000);

/**
 * SQS's answer to a ChangeMessageVisibilityBatch on `url` that refuses the entry of each message whose body is in
 * `bodies` (200, the entry in Failed, as for a receipt handle SQS no longer takes), the others released.
 */
function releaseRefuses(url: string, bodies: readonly string[]): () => void {
  const byHandle = new Map<string, string>(); // receipt handle -> body
  const name = `releaseRefuses${url}`;
  type Entry = { Id: string; ReceiptHandle: string };
  clients.sqs.middlewareStack.add(
    ((
      next: (a: unknown) => Promise<{ output: Record<string, unknown> }>,
      context: { commandName?: string },
    ) =>
      async (args: { input: { QueueUrl?: string; Entries?: Entry[] } }) => {
        if (args.input.QueueUrl !== url) return next(args);
        if (context.commandName === 'ReceiveMessageCommand') {
          const result = await next(args);
          for (const m of (result.output.Messages ?? []) as { ReceiptHandle: string; Body: string }[])
            byHandle.set(m.ReceiptHandle, m.Body);
          return result;
        }
        if (context.commandName !== 'ChangeMessageVisibilityBatchCommand') return next(args);
        const refused = (e: Entry) => bodies.includes(byHandle.get(e.ReceiptHandle) ?? '');
        const rest = (args.input.Entries ?? []).filter((e) => !refused(e));
        const result =
          rest.length > 0
            ? await next({ ...args, input: { ...args.input, Entries: rest } })
            : { output: { Successful: [], $metadata: {} }, response: {} };
        const failed = (args.input.Entries ?? []).filter(refused).map((e) => ({
          Id: e.Id,
          SenderFault: true,
          Code: 'ReceiptHandleIsInvalid',
          Message: 'The receipt handle has expired.',
        }));
        return { ...result, output: { ...result.output, Failed: failed } };
      }) as never,
    { step: 'initialize', name },
  );
  return () => clients.sqs.middlewareStack.remove(name);
}

it('says the messages it held whose release SQS refused, entry by entry (follow48-dlq-release-entries)', async () => {
  // Found by this session's helpers: ChangeMessageVisibilityBatch answers 200 with refused entries in Failed, and the
  // run read nothing of its answer: those messages stayed hidden up to the visibility timeout, unsaid.
  const d = await stage('dlqrelease', ['{"liquidationId":"ok:0"}']);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const poison = ['poison a', 'poison b', 'poison c'];
  for (const body of poison)
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: body }));
  const remove = releaseRefuses(dlq, poison.slice(0, 2));
  let outcome: RedriveOutcome;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations', 1000, VISIBILITY);
  } finally {
    remove();
  }
  expect(outcome.moved).toBe(1);
  expect(outcome.stopped).toBeUndefined();
  const byBody = new Map((await listDeadLetters(d, 'liquidations')).map((m) => [m.body, m.messageId]));
  expect([...byBody.keys()]).toEqual(['poison c']);
  const reason = 'ReceiptHandleIsInvalid: The receipt handle has expired.';
  expect(outcome.failed).toHaveLength(3);
  expect(outcome.notReleased).toHaveLength(2);
  expect(outcome.notReleased!.every((n) => n.reason === reason)).toBe(true);
  // The ids are those of the two refused, which come back once their timeout runs out.
  const refusedIds = outcome.notReleased!.map((n) => n.messageId);
  expect(refusedIds).not.toContain(byBody.get('poison c'));
  expect(new Set(refusedIds).size).toBe(2);
  expect(outcome.failed.map((f) => f.messageId)).toEqual(expect.arrayContaining(refusedIds));
  await vi.waitFor(async () => expect((await listDeadLetters(d, 'liquidations')).length).toBe(3), WAIT);
  expect(renderRedrive([{ queue: 'liquidations', ...outcome }], d).split('\n')[1]).toBe(
    `  releasing 2 messages it held: ${reason} (they come back once their visibility timeout runs out, 30 s)`,
  );
}, 60_000);

it('keeps the entries one batch of the release refused when a later batch fails (more48-dlq-release-kept)', async () => {
  // Found by this session's review: a batch that threw lost the entries the batches before it had refused, the error
  // said and those messages, hidden up to the visibility timeout, not.
  const d = await stage('dlqreleasekept', []);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const poison = Array.from({ length: 12 }, (_, i) => `poison ${i}`);
  for (const body of poison)
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: body }));
  const expired = 'The security token included in the request is expired';
  let batches = 0;
  type Entry = { Id: string; ReceiptHandle: string };
  clients.sqs.middlewareStack.add(
    ((
      next: (a: unknown) => Promise<{ output: Record<string, unknown> }>,
      context: { commandName?: string },
    ) =>
      async (args: { input: { QueueUrl?: string; Entries?: Entry[] } }) => {
        if (context.commandName !== 'ChangeMessageVisibilityBatchCommand' || args.input.QueueUrl !== dlq)
          return next(args);
        batches += 1;
        // The second batch fails whole, as expired credentials fail it.
        if (batches > 1)
          throw Object.assign(new Error(expired), { name: 'ExpiredToken', $fault: 'client', $metadata: {} });
        // The first refuses its first two entries and releases the rest.
        const entries = args.input.Entries ?? [];
        const result = await next({ ...args, input: { ...args.input, Entries: entries.slice(2) } });
        const failed = entries.slice(0, 2).map((e) => ({
          Id: e.Id,
          SenderFault: true,
          Code: 'ReceiptHandleIsInvalid',
          Message: 'The receipt handle has expired.',
        }));
        return { ...result, output: { ...result.output, Failed: failed } };
      }) as never,
    { step: 'initialize', name: 'releaseKept' },
  );
  let outcome: RedriveOutcome;
  try {
    outcome = await redriveDeadLetters(d, 'liquidations', 1000, VISIBILITY);
  } finally {
    clients.sqs.middlewareStack.remove('releaseKept');
  }
  expect(batches).toBe(2);
  expect(outcome.failed).toHaveLength(12);
  // Before: no notReleased, the two refused in the first batch lost with the second's error.
  expect(outcome.notReleased).toHaveLength(2);
  expect(
    outcome.notReleased!.every((n) => n.reason === 'ReceiptHandleIsInvalid: The receipt handle has expired.'),
  ).toBe(true);
  expect(outcome.stopped?.error).toBe(
    `releasing the messages it held: ExpiredToken: ${expired} (they come back once their visibility timeout runs out)`,
  );
  await vi.waitFor(async () => expect((await listDeadLetters(d, 'liquidations')).length).toBe(12), WAIT);
}, 60_000);

it('says in dlq list and dlq discard the messages it held whose release SQS refused (more48-dlq-list-release)', async () => {
  // Found by this session's review (follow48-dlq-release-entries): the release returned them, and list and discard,
  // which hold messages too, dropped them.
  const names = await createLocalResources(clients, 'listrelease');
  await publishStackOutputs(moto.endpoint, 'listrelease', names);
  const dlq = names.queues.liquidations.dlqUrl!;
  for (const body of ['poison a', 'poison b'])
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: body }));
  const at = ['--target', 'localstack', '--endpoint', moto.endpoint, '--stage', 'listrelease'];
  const reason = 'ReceiptHandleIsInvalid: The receipt handle has expired.';
  // The CLI's own clients: released, and every entry answered as refused (a receipt handle SQS no longer takes), so
  // the messages are there for the next command.
  const send = SQSClient.prototype.send;
  const spy = vi.spyOn(SQSClient.prototype, 'send').mockImplementation(async function (
    this: SQSClient,
    ...args: Parameters<SQSClient['send']>
  ) {
    const [command] = args;
    const out = await (send as (...a: unknown[]) => Promise<Record<string, unknown>>).apply(this, args);
    if (!(command instanceof ChangeMessageVisibilityBatchCommand) || command.input.QueueUrl !== dlq)
      return out;
    const [code, message] = reason.split(': ');
    return {
      ...out,
      Successful: [],
      Failed: (command.input.Entries ?? []).map((e) => ({
        Id: e.Id,
        SenderFault: true,
        Code: code,
        Message: message,
      })),
    };
  } as SQSClient['send']);
  const line = (n: string) =>
    `liquidations: releasing ${n} it held: ${reason} (they come back once their visibility timeout runs out, 30 s)`;
  try {
    const text = await cli('dlq', 'list', '--queue', 'liquidations', ...at);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.trimEnd().split('\n').at(-1)).toBe(line('2 messages'));
    const json = await cli('dlq', 'list', '--queue', 'liquidations', '--json', ...at);
    expect(json.code, json.stderr).toBe(0);
    const listed = JSON.parse(json.stdout) as {
      messages: { messageId: string; body: string }[];
      notReleased?: { queue: string; messageId: string; reason: string }[];
    };
    const ids = new Map(listed.messages.map((m) => [m.body, m.messageId]));
    expect(listed.notReleased?.map((n) => [n.queue, n.messageId, n.reason]).sort()).toEqual(
      [...ids.values()].map((id) => ['liquidations', id, reason]).sort(),
    );
    const discard = await cli(
      'dlq',
      'discard',
      '--queue',
      'liquidations',
      '--message-id',
      ids.get('poison a')!,
      '--json',
      ...at,
    );
    expect(discard.code, discard.stderr).toBe(0);
    expect(JSON.parse(discard.stdout).notReleased).toEqual([
      { queue: 'liquidations', messageId: ids.get('poison b'), reason },
    ]);
    const c = await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: 'poison c' }));
    const discardText = await cli(
      'dlq',
      'discard',
      '--queue',
      'liquidations',
      '--message-id',
      c.MessageId!,
      ...at,
    );
    expect(discardText.code, discardText.stderr).toBe(0);
    expect(discardText.stdout.trimEnd().split('\n').at(-1)).toBe(line('1 message'));
  } finally {
    spy.mockRestore();
  }
}, 60_000);

it('returns the bodies it discarded when the release after them fails (final48c-discard-bodies-kept)', async () => {
  // Found by session 48's final review: a release that failed after the deletes threw, and the bodies deleted, the
  // only copy left, were never printed.
  const d = await stage('discardkept', []);
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const a = await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: 'poison a' }));
  await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: 'poison b' }));
  const expired = 'The security token included in the request is expired';
  clients.sqs.middlewareStack.add(
    ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: { QueueUrl?: string } }) => {
        if (context.commandName === 'ChangeMessageVisibilityBatchCommand' && args.input.QueueUrl === dlq)
          throw Object.assign(new Error(expired), { name: 'ExpiredToken', $fault: 'client', $metadata: {} });
        return next(args);
      }) as never,
    { step: 'initialize', name: 'discardKept' },
  );
  let outcome: Awaited<ReturnType<typeof discardDeadLetters>>;
  try {
    // An id not there too: the run reads the whole queue, holding poison b, which the release fails to give back.
    outcome = await discardDeadLetters(d, 'liquidations', [a.MessageId!, 'not-there'], 1000, VISIBILITY);
  } finally {
    clients.sqs.middlewareStack.remove('discardKept');
  }
  expect(outcome.discarded).toEqual([{ messageId: a.MessageId, body: 'poison a' }]);
  expect(outcome.notFound).toEqual(['not-there']);
  expect(outcome.stopped).toBe(
    `releasing the messages it held: ExpiredToken: ${expired} (they come back once their visibility timeout runs out)`,
  );
  await vi.waitFor(
    async () => expect((await listDeadLetters(d, 'liquidations')).map((m) => m.body)).toEqual(['poison b']),
    WAIT,
  );
}, 60_000);

it("lists the dead letters it read when a record's read for their reasons fails (review49-cli-dlq-record-read)", async () => {
  // Found by the review of session 49: cli49-dlq-release-failed said a record's read that failed was said with what the
  // listing read; it was thrown over it, the messages unlisted (an operator without dynamodb:GetItem on a table, or
  // one throttled past its retries in an incident, saw the error alone).
  const name = 'recordread';
  const names = await createLocalResources(clients, name);
  await publishStackOutputs(moto.endpoint, name, names);
  const dlq = names.queues.liquidations.dlqUrl!;
  for (const id of ['a', 'b', 'c']) {
    await queuedWithoutPosition(names.tables.liquidations, `${id}:0`);
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: dlq, MessageBody: `{"liquidationId":"${id}:0"}` }),
    );
  }
  const denied = 'User is not authorized to perform: dynamodb:GetItem';
  const send = DynamoDBClient.prototype.send;
  vi.spyOn(DynamoDBClient.prototype, 'send').mockImplementation(async function (
    this: DynamoDBClient,
    ...args: Parameters<DynamoDBClient['send']>
  ) {
    const [command] = args;
    if (command instanceof GetItemCommand && command.input.Key?.id?.S === 'b:0')
      throw Object.assign(new Error(denied), {
        name: 'AccessDeniedException',
        $fault: 'client',
        $metadata: {},
      });
    return (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
  } as DynamoDBClient['send']);
  let run: Awaited<ReturnType<typeof cli>>;
  try {
    run = await cli(
      'dlq',
      'list',
      '--queue',
      'liquidations',
      '--json',
      '--target',
      'localstack',
      '--endpoint',
      moto.endpoint,
      '--stage',
      name,
    );
  } finally {
    vi.restoreAllMocks();
  }
  // Before: exit 1, the error alone on stderr, nothing listed.
  expect(run.code, run.stderr).toBe(1);
  const listed = JSON.parse(run.stdout) as {
    messages: { body: string; reason: string }[];
    stopped?: { queue: string; error: string }[];
  };
  expect(listed.messages.map((m) => [m.body, m.reason]).sort()).toEqual([
    ['{"liquidationId":"a:0"}', 'liquidation a:0 in QUEUED'],
    ['{"liquidationId":"b:0"}', `not known: its record's read failed (AccessDeniedException: ${denied})`],
    ['{"liquidationId":"c:0"}', 'liquidation c:0 in QUEUED'],
  ]);
  expect(listed.stopped).toEqual([
    {
      queue: 'liquidations',
      error: `reading the records for their reasons: AccessDeniedException: ${denied} (1 message listed without its reason)`,
    },
  ]);
}, 60_000);

it('says what dlq list and discard read, those not released and the error when the release fails outright (cli49-dlq-release-failed)', async () => {
  // Found in session 49: a release that failed outright (its second batch, expired credentials) was thrown over what
  // the command knew: `dlq list` printed the error alone (the messages it had read and the entries the first batch
  // refused unsaid), `dlq discard` of an id not there and its look in the other queues the same.
  const expired = 'The security token included in the request is expired';
  const reason = 'ReceiptHandleIsInvalid: The receipt handle has expired.';
  const stopped = `releasing the messages it held: ExpiredToken: ${expired} (they come back once their visibility timeout runs out)`;
  const setUp = async (name: string, queue: 'liquidations' | 'auctionSteps') => {
    const names = await createLocalResources(clients, name);
    await publishStackOutputs(moto.endpoint, name, names);
    const dlq = names.queues[queue].dlqUrl!;
    const ids: string[] = [];
    for (let i = 0; i < 12; i++)
      ids.push(
        (await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: `poison ${i}` })))
          .MessageId!,
      );
    return { dlq, ids, at: ['--target', 'localstack', '--endpoint', moto.endpoint, '--stage', name] };
  };
  // The CLI's own clients: the release's first batch refuses its first two entries, the second fails whole.
  let batches = 0;
  let failOn = '';
  const send = SQSClient.prototype.send;
  const spy = vi.spyOn(SQSClient.prototype, 'send').mockImplementation(async function (
    this: SQSClient,
    ...args: Parameters<SQSClient['send']>
  ) {
    const [command] = args;
    const original = send as (...a: unknown[]) => Promise<Record<string, unknown>>;
    if (!(command instanceof ChangeMessageVisibilityBatchCommand) || command.input.QueueUrl !== failOn)
      return original.apply(this, args);
    batches += 1;
    if (batches > 1)
      throw Object.assign(new Error(expired), { name: 'ExpiredToken', $fault: 'client', $metadata: {} });
    const entries = command.input.Entries ?? [];
    const out = await original.call(
      this,
      new ChangeMessageVisibilityBatchCommand({ ...command.input, Entries: entries.slice(2) }),
    );
    const [code, message] = reason.split(': ');
    return {
      ...out,
      Failed: entries.slice(0, 2).map((e) => ({ Id: e.Id, SenderFault: true, Code: code, Message: message })),
    };
  } as SQSClient['send']);
  try {
    const list = await setUp('relfaillist', 'liquidations');
    failOn = list.dlq;
    batches = 0;
    const json = await cli('dlq', 'list', '--queue', 'liquidations', '--json', ...list.at);
    expect(batches).toBe(2);
    // Before: exit 1 with the error alone on stderr, nothing on stdout.
    expect(json.code, json.stderr).toBe(1);
    const listed = JSON.parse(json.stdout) as {
      messages: { messageId: string }[];
      notReleased?: { queue: string; messageId: string; reason: string }[];
      stopped?: { queue: string; error: string }[];
    };
    expect(listed.messages.map((m) => m.messageId).sort()).toEqual([...list.ids].sort());
    expect(listed.notReleased?.map((n) => [n.queue, n.reason])).toEqual([
      ['liquidations', reason],
      ['liquidations', reason],
    ]);
    expect(listed.stopped).toEqual([{ queue: 'liquidations', error: stopped }]);

    const discard = await setUp('relfaildisc', 'liquidations');
    failOn = discard.dlq;
    batches = 0;
    const text = await cli(
      'dlq',
      'discard',
      '--queue',
      'liquidations',
      '--message-id',
      'not-there',
      ...discard.at,
    );
    expect(batches).toBe(2);
    // Before: the error alone, the two refused entries unsaid.
    expect(text.code, text.stderr).toBe(1);
    expect(text.stdout.trimEnd().split('\n')).toEqual([
      'not found in liquidations: not-there',
      `liquidations: releasing 2 messages it held: ${reason} (they come back once their visibility timeout runs out, 30 s)`,
      `STOPPED by ${stopped}`,
    ]);

    // The look in the other queues: the id is in auctionSteps, whose release fails.
    const look = await setUp('relfaillook', 'auctionSteps');
    failOn = look.dlq;
    batches = 0;
    const id = look.ids[3]!;
    const looked = await cli(
      'dlq',
      'discard',
      '--queue',
      'liquidations',
      '--message-id',
      id,
      '--json',
      ...look.at,
    );
    expect(batches).toBe(2);
    // Before: the error alone; where the id is and the refused entries unsaid.
    expect(looked.code, looked.stderr).toBe(1);
    const out = JSON.parse(looked.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({
      queue: 'liquidations',
      discarded: [],
      notFound: [id],
      elsewhere: { [id]: 'auctionSteps' },
      stopped: `looking in the other queues for those not found: auctionSteps: ${stopped}`,
    });
    expect((out.notReleased as { queue: string }[]).map((n) => n.queue)).toEqual([
      'auctionSteps',
      'auctionSteps',
    ]);
  } finally {
    spy.mockRestore();
  }
}, 60_000);

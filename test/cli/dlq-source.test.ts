import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import { main } from '../../cli/main.ts';
import {
  acceptSourceElsewhere,
  acceptSourceOwn,
  deadLetterText,
  discardedText,
  renderRedrive,
} from '../../cli/ops/dlq.ts';
import {
  type AwsClients,
  createAwsClients,
  createLocalResources,
  localClientConfig,
} from '../../shared/adapters/aws/index.ts';
import { SqsQueueTransport } from '../../shared/adapters/aws/sqs-queue.ts';
import type { Deployment, TargetKind } from '../../shared/local/deployment.ts';
import {
  type DeadLetter,
  discardDeadLetters,
  discardNotItsDeadLetters,
  listDeadLetters,
  MOST_PER_RUN,
  NOT_ITS_PER_MAX,
  notItsLimitLine,
  readDeadLetters,
  redriveDeadLetters,
} from '../../shared/local/dlq.ts';
import { QUEUES, TICK_BUS } from '../../shared/topology.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/**
 * `dlq redrive` sends on a dead letter only from where the stack's own dead letters come (security49b-dlq-source): a
 * dead-letter queue takes moves from any queue of the account that names it its dead-letter queue (the stack cannot
 * deny them: its RedriveAllowPolicy would name the work queue, a circular reference), and a redrive sends what it
 * finds on to the work queue as the operator.
 *
 * Each dead letter here reaches its queue as on AWS: received past its queue's maxReceiveCount, SQS (moto) moves it.
 * AWS marks such a move with the DeadLetterQueueSourceArn attribute, which moto 5 does not set (pinned below): the
 * client adds it as AWS would (SDK middleware, as test/support/aws-faults.ts injects faults), to messages received
 * from a queue other than the one they were sent to, only when the receive asks for it. Everything else is moto's.
 */

const WORK_MAX_RECEIVES = QUEUES.find((q) => q.id === 'liquidations')!.deadLetter!.maxReceiveCount;

let moto: MotoServer;
let clients: AwsClients;
/** Where each message was sent (its MessageId: SQS's move keeps it), by queue URL. */
const sentTo = new Map<string, string>();

/** A moto queue URL's ARN (http://host/<account>/<name>). */
const arnOfUrl = (url: string): string => {
  const [account, name] = url.split('/').slice(-2);
  return `arn:aws:sqs:us-east-1:${account}:${name}`;
};

beforeAll(async () => {
  moto = await startMoto();
  clients = createAwsClients(localClientConfig(moto.endpoint));
}, 60_000);
afterAll(async () => {
  clients?.destroy();
  await moto?.stop();
});

const SOURCE_AS_AWS = 'deadLetterSourceAsAws';

/** AWS's DeadLetterQueueSourceArn on the test's client, until `remove` or the test's end. */
function sourceAsAws(): { remove: () => void } {
  clients.sqs.middlewareStack.add(
    ((
      next: (a: unknown) => Promise<{ output: Record<string, unknown> }>,
      context: { commandName?: string },
    ) =>
      async (args: { input: Record<string, unknown> }) => {
        const out = await next(args);
        const { input } = args;
        const url = input.QueueUrl as string;
        if (context.commandName === 'SendMessageCommand') sentTo.set(out.output.MessageId as string, url);
        if (context.commandName === 'SendMessageBatchCommand')
          for (const e of (out.output.Successful ?? []) as { MessageId: string }[])
            sentTo.set(e.MessageId, url);
        const asked = (input.MessageSystemAttributeNames ?? []) as string[];
        if (
          context.commandName === 'ReceiveMessageCommand' &&
          (asked.includes('All') || asked.includes('DeadLetterQueueSourceArn'))
        )
          for (const m of (out.output.Messages ?? []) as Message[]) {
            const from = sentTo.get(m.MessageId ?? '');
            if (from !== undefined && from !== url)
              m.Attributes = { ...m.Attributes, DeadLetterQueueSourceArn: arnOfUrl(from) };
          }
        return out;
      }) as never,
    { step: 'initialize', name: SOURCE_AS_AWS },
  );
  const remove = () => void clients.sqs.middlewareStack.remove(SOURCE_AS_AWS);
  onTestFinished(remove);
  return { remove };
}

/** Receives `url` until SQS has moved what it held to its dead-letter queue (each receive counts one). */
async function receivePastMax(url: string): Promise<void> {
  for (;;) {
    const out = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }),
    );
    if ((out.Messages ?? []).length === 0) return;
  }
}

/** Sends `body` to `url` (a dead-letter queue: a letter sent straight to it); its MessageId. */
const send = async (url: string, body: string): Promise<string> =>
  (await clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }))).MessageId!;

/** A dead letter from `queue`: `body` sent to it, then received past its maxReceiveCount; its MessageId. */
async function deadLetterFrom(queue: string, body: string): Promise<string> {
  const messageId = await send(queue, body);
  await receivePastMax(queue);
  return messageId;
}

/** A liquidation record whose position is gone: a message naming it is sent back (it names a record). */
async function liquidationRecord(table: string, id: string): Promise<void> {
  await clients.dynamo.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        id: { S: id },
        positionId: { S: `${id}-gone` },
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

/** A command's streams, its stderr kept. */
const io = () => {
  let stderr = '';
  return {
    io: { stdout: { write: () => true }, stderr: { write: (t: string) => (stderr += t) } },
    err: () => stderr,
  };
};

async function deployment(stage: string, kind: TargetKind): Promise<Deployment> {
  const names = await createLocalResources(clients, stage);
  return {
    kind,
    stage,
    region: 'us-east-1',
    endpoint: moto.endpoint,
    clients,
    names,
    close: () => {},
  } as Deployment;
}

/** A queue of the account (not the stack's) naming `deadLetterUrl` its dead-letter queue at its first receive. */
async function intruder(name: string, deadLetterUrl: string): Promise<string> {
  const dlq = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: deadLetterUrl, AttributeNames: ['QueueArn'] }),
  );
  const created = await clients.sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.Attributes!.QueueArn, maxReceiveCount: 1 }),
      },
    }),
  );
  return created.QueueUrl!;
}

const bodies = async (url: string): Promise<string[]> => {
  const out = await clients.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
  );
  return (out.Messages ?? []).map((m) => m.Body ?? '').sort();
};

it('moto moves a message by the redrive policy without DeadLetterQueueSourceArn (why `local` takes a letter without it)', async () => {
  // When moto sets it as AWS does, this fails: drop the local exception in dlq.ts `unexpectedSource`.
  const d = await deployment('dlqsrcmoto', 'local');
  const work = d.names.queues.liquidations.url;
  await deadLetterFrom(work, 'moved');
  const out = await clients.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: d.names.queues.liquidations.dlqUrl!,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
      MessageSystemAttributeNames: ['All'],
    }),
  );
  expect(out.Messages?.map((m) => m.Body)).toEqual(['moved']);
  // Moved by the redrive policy (its work queue's receives, and this one), not sent there.
  expect(Number(out.Messages![0]!.Attributes!.ApproximateReceiveCount)).toBe(WORK_MAX_RECEIVES + 1);
  expect(out.Messages![0]!.Attributes!.DeadLetterQueueSourceArn).toBeUndefined();
});

/**
 * Stage `stage` on `aws`, its liquidations' DLQ holding a letter of each kind, each naming a record: the stack's own
 * (`ours:0`, its consumer failed it past maxReceiveCount), another queue's (`theirs:0`, moved from `other`, a queue of
 * the account naming the DLQ its own) and one sent to the DLQ (`direct:0`, by a principal its policy allows).
 */
async function lettersOfEachKind(stage: string) {
  sourceAsAws();
  const d = await deployment(stage, 'aws');
  const work = d.names.queues.liquidations.url;
  const dlq = d.names.queues.liquidations.dlqUrl!;
  for (const id of ['ours:0', 'theirs:0', 'direct:0'])
    await liquidationRecord(d.names.tables.liquidations, id);
  await deadLetterFrom(work, '{"liquidationId":"ours:0"}');
  const other = await intruder(`${stage}-intruder`, dlq);
  const theirs = await deadLetterFrom(other, '{"liquidationId":"theirs:0"}');
  const direct = await send(dlq, '{"liquidationId":"direct:0"}');
  return { d, work, other, theirs, direct };
}

it("sends on only the dead letters SQS moved from the work queue: another queue's and one sent straight to the DLQ stay, said by id (security49b-dlq-source)", async () => {
  const { d, work, other, theirs: forged, direct } = await lettersOfEachKind('dlqsrcaws');
  const outcome = await redriveDeadLetters(d, 'liquidations');
  const discard = (id: string) =>
    `backstop dlq discard --queue liquidations --message-id ${id} --target aws --stage dlqsrcaws --region us-east-1`;
  expect(outcome).toEqual({
    moved: 1,
    failed: expect.arrayContaining([
      {
        messageId: forged,
        reason: `dlq/not-its-dead-letter: SQS moved it here from ${arnOfUrl(other)}, not from liquidations (${arnOfUrl(work)}): another queue names this one its dead-letter queue; not sent on to liquidations, left in the DLQ: read it (dlq list), then ${discard(forged)} removes it`,
      },
      {
        messageId: direct,
        reason: `dlq/not-its-dead-letter: sent to the dead-letter queue directly, not moved there from liquidations by SQS (no DeadLetterQueueSourceArn): none of the stack's sends there; not sent on to liquidations, left in the DLQ: read it (dlq list), then ${discard(direct)} removes it`,
      },
    ]),
  });
  expect(outcome.failed).toHaveLength(2);
  // Said by id in the text, with the reason.
  const text = renderRedrive([{ ...outcome, queue: 'liquidations' }], d);
  expect(text).toContain('liquidations: 1 sent back, 2 left in the DLQ\n');
  expect(text).toContain(`  ${forged}: dlq/not-its-dead-letter: SQS moved it here from ${arnOfUrl(other)}`);
  expect(text).toContain(`  ${direct}: dlq/not-its-dead-letter: sent to the dead-letter queue directly`);
  // Only the stack's own reached the work queue; the two others are still in the DLQ.
  expect(await bodies(work)).toEqual(['{"liquidationId":"ours:0"}']);
  expect((await listDeadLetters(d, 'liquidations')).map((l) => l.body).sort()).toEqual([
    '{"liquidationId":"direct:0"}',
    '{"liquidationId":"theirs:0"}',
  ]);
}, 60_000);

// ops50-redrive-max-own: the letters refused as not the work queue's counted towards --max, so that many of them
// (put there by another principal) used up a redrive's budget before it reached the stack's own.
it("counts towards --max only the letters a redrive sends back, not those it leaves as another queue's", async () => {
  sourceAsAws();
  const d = await deployment('dlqsrcmax', 'aws');
  const work = d.names.queues.liquidations.url;
  const dlq = d.names.queues.liquidations.dlqUrl!;
  await liquidationRecord(d.names.tables.liquidations, 'ours:0');
  // Three sent straight to the DLQ first (received first), then the stack's own, moved by SQS.
  const forged: string[] = [];
  for (const n of [1, 2, 3]) forged.push(await send(dlq, `{"liquidationId":"forged${n}:0"}`));
  await deadLetterFrom(work, '{"liquidationId":"ours:0"}');
  const outcome = await redriveDeadLetters(d, 'liquidations', 1);
  // Before: none sent back, the one --max allows spent on a forged letter.
  expect(outcome.moved).toBe(1);
  expect(await bodies(work)).toEqual(['{"liquidationId":"ours:0"}']);
  // Each refusal still said, by id.
  expect(outcome.failed.map((f) => f.messageId).sort()).toEqual([...forged].sort());
  for (const f of outcome.failed) expect(f.reason).toMatch(/^dlq\/not-its-dead-letter: /);
  expect(outcome.notReached).toBeUndefined();
}, 60_000);

// ops50b-redrive-not-its-bound: outside --max, the letters refused as another queue's were read to SQS's count as the run
// began, however many, and --json listed each.
it("stops once it has left ten times --max letters as another queue's, saying so and how to discard them", async () => {
  sourceAsAws();
  const d = await deployment('dlqsrcbound', 'aws');
  const work = d.names.queues.liquidations.url;
  const dlq = d.names.queues.liquidations.dlqUrl!;
  await liquidationRecord(d.names.tables.liquidations, 'ours:0');
  // Twelve sent straight to the DLQ first (received first), then the stack's own, moved by SQS.
  for (let n = 0; n < 12; n += 1) await send(dlq, `{"liquidationId":"forged${n}:0"}`);
  await deadLetterFrom(work, '{"liquidationId":"ours:0"}');
  const acceptSources = [arnOfUrl(`${work}-old`)];
  const outcome = await redriveDeadLetters(d, 'liquidations', 1, { acceptSources });
  // Before: all twelve read and listed, the own one sent back.
  expect(outcome.moved).toBe(0);
  expect(outcome.failed).toHaveLength(10);
  for (const f of outcome.failed) expect(f.reason).toMatch(/^dlq\/not-its-dead-letter: /);
  const discard = `backstop dlq discard --queue liquidations --not-its-dead-letter --accept-source ${acceptSources[0]} --target aws --stage dlqsrcbound --region us-east-1`;
  expect(outcome.notItsLimit).toBe(
    `stopped after leaving 10 letters as not liquidations's (dlq/not-its-dead-letter), 10 times --max, at one more: it and any past it not reached; ${discard} removes such letters among the first 1000 it reads, each body printed (the stack's own it reads count towards 1000 and are kept: some such letters may be left), then redrive again, and again while it stops so`,
  );
  expect(outcome.stopped).toBeUndefined();
  const text = renderRedrive([{ ...outcome, queue: 'liquidations' }], d);
  expect(text).toContain(
    `liquidations: 0 sent back, 13 left in the DLQ (about 3 of them not reached)\n  ${outcome.notItsLimit}\n`,
  );
  expect(text).not.toContain('past --max, held by another reader');
  // All thirteen still there.
  expect(await listDeadLetters(d, 'liquidations')).toHaveLength(13);
}, 60_000);

// dlq51-not-its-edge: the run stopped at the tenth such letter of --max 1 and said "those past them not reached" though
// the DLQ held no more of them, nor any other: the bound is now met at an eleventh, which it leaves unjudged.
it("at exactly ten times --max letters as another queue's, says nothing not reached, and sends on its own past them", async () => {
  sourceAsAws();
  for (const own of [false, true]) {
    const d = await deployment(own ? 'dlqsrcedgeown' : 'dlqsrcedge', 'aws');
    const work = d.names.queues.liquidations.url;
    const dlq = d.names.queues.liquidations.dlqUrl!;
    await liquidationRecord(d.names.tables.liquidations, 'ours:0');
    // Ten sent straight to the DLQ (received first), then, in the second DLQ, the stack's own moved by SQS.
    for (let n = 0; n < NOT_ITS_PER_MAX; n += 1) await send(dlq, `{"liquidationId":"forged${n}:0"}`);
    if (own) {
      await deadLetterFrom(work, '{"liquidationId":"ours:0"}');
    }
    const outcome = await redriveDeadLetters(d, 'liquidations', 1);
    expect(outcome.failed, `own: ${own}`).toHaveLength(NOT_ITS_PER_MAX);
    for (const f of outcome.failed) expect(f.reason).toMatch(/^dlq\/not-its-dead-letter: /);
    // Before: notItsLimit, "those past them not reached", and the stack's own past them left unread.
    expect(outcome.notItsLimit, `own: ${own}`).toBeUndefined();
    expect(outcome.notReached).toBeUndefined();
    expect(outcome.moved).toBe(own ? 1 : 0);
    const text = renderRedrive([{ ...outcome, queue: 'liquidations' }], d);
    expect(text).toContain(`liquidations: ${own ? 1 : 0} sent back, 10 left in the DLQ\n`);
    expect(text).not.toContain('not reached');
    expect(await bodies(work)).toEqual(own ? ['{"liquidationId":"ours:0"}'] : []);
    expect(await listDeadLetters(d, 'liquidations')).toHaveLength(NOT_ITS_PER_MAX);
  }
}, 60_000);

// review50-ops2-not-its-advice: the bound's discard was said to remove "them", the letters left, where it reads the first
// --max letters, the stack's own among them; and past a discard's top (a redrive's --max 100000 stops at a million) it
// printed a --max the discard refuses, exit 2.
it("says what the bound's discard does: such letters among the first it reads, its --max one it takes", async () => {
  const d = await deployment('dlqsrcadvice', 'aws');
  const line = notItsLimitLine(d, 'liquidations', NOT_ITS_PER_MAX * MOST_PER_RUN);
  expect(line).toContain(
    `backstop dlq discard --queue liquidations --not-its-dead-letter --max ${MOST_PER_RUN} --target aws --stage dlqsrcadvice --region us-east-1 removes such letters among the first ${MOST_PER_RUN} it reads, each body printed (the stack's own it reads count towards ${MOST_PER_RUN} and are kept: some such letters may be left)`,
  );
  // Within what a discard takes (before, --max 1000000, which it refuses, exit 2).
  expect(Number(/--max (\d+)/.exec(line)![1])).toBeLessThanOrEqual(100_000);
  const refused = io();
  expect(
    await main(
      ['dlq', 'discard', '--queue', 'liquidations', '--not-its-dead-letter', '--max', '100001'],
      refused.io,
    ),
  ).toBe(2);
  expect(refused.err()).toMatch(/--max: 100001 is outside 1\.\.100000/);
  // review50-ops2-not-its-stopped-too: the release failing as the bounded run ended put its STOPPED line in the
  // bound's place, the discard unsaid.
  const bounded = notItsLimitLine(d, 'liquidations', 10);
  const text = renderRedrive(
    [
      {
        queue: 'liquidations',
        moved: 0,
        failed: [],
        notItsLimit: bounded,
        stopped: { error: 'releasing 1 message it held: ThrottlingException: Rate exceeded', notReached: 3 },
      },
    ],
    d,
  );
  expect(text).toContain(`\n  ${bounded}\n  STOPPED by releasing 1 message it held`);
  expect(notItsLimitLine(d, 'liquidations', 5_000)).toContain('--not-its-dead-letter --max 5000 ');
  expect(notItsLimitLine(d, 'liquidations', 10)).toContain('--not-its-dead-letter --target aws');
});

// ops50-dlq-accept-source: the check compares DeadLetterQueueSourceArn with the work queue's ARN exactly, so the letters
// of a work queue renamed by a stack change (a new queue, the DLQ kept) are refused as another queue's. An operator who
// knows the old ARN names it; nothing is inferred.
it("sends on the letters of a work queue's older name only when --accept-source names it, and says so", async () => {
  sourceAsAws();
  const d = await deployment('dlqsrcren', 'aws');
  const dlq = d.names.queues.liquidations.dlqUrl!;
  for (const id of ['old:0', 'theirs:0']) await liquidationRecord(d.names.tables.liquidations, id);
  // The work queue before the stack change (another name, the same DLQ), and another queue of the account.
  const old = await intruder('dlqsrcren-liquidations-old', dlq);
  await deadLetterFrom(old, '{"liquidationId":"old:0"}');
  const other = await intruder('dlqsrcren-intruder', dlq);
  const forged = await deadLetterFrom(other, '{"liquidationId":"theirs:0"}');
  // Without it, both stay.
  const refused = await listDeadLetters(d, 'liquidations');
  expect(refused.filter((l) => l.redriveRefuses !== undefined)).toHaveLength(2);
  const acceptSources = [arnOfUrl(old)];
  // The listing with it shows what the redrive with it does.
  const letters = await listDeadLetters(d, 'liquidations', 100, { acceptSources });
  const listed = byBody(letters);
  expect(listed['{"liquidationId":"old:0"}']).toEqual({
    movedFrom: 'dlqsrcren-liquidations-old',
    redriveRefuses: undefined,
  });
  expect(listed['{"liquidationId":"theirs:0"}']!.redriveRefuses).toMatch(/^dlq\/not-its-dead-letter: /);
  // What --accept-source let through is marked, in the redrive's words (ops50b-list-accepted); before, a plain
  // "moved from" beside the work queue's own.
  const oldLetter = letters.find((l) => l.body === '{"liquidationId":"old:0"}')!;
  expect(oldLetter.acceptedSource).toBe(arnOfUrl(old));
  expect(letters.find((l) => l.body === '{"liquidationId":"theirs:0"}')!.acceptedSource).toBeUndefined();
  expect(refused.every((l) => l.acceptedSource === undefined)).toBe(true);
  expect(deadLetterText(oldLetter, 'aws')).toContain(
    "(listings count too), moved from dlqsrcren-liquidations-old, sent back as liquidations's by a redrive (--accept-source)\n",
  );
  const outcome = await redriveDeadLetters(d, 'liquidations', 1000, { acceptSources });
  expect(outcome).toMatchObject({
    moved: 1,
    failed: [{ messageId: forged }],
    acceptedSources: { [arnOfUrl(old)]: 1 },
  });
  expect(await bodies(d.names.queues.liquidations.url)).toEqual(['{"liquidationId":"old:0"}']);
  expect(renderRedrive([{ ...outcome, queue: 'liquidations' }], d)).toContain(
    `liquidations: 1 sent back, 1 left in the DLQ\n  1 letter moved from ${arnOfUrl(old)} sent back as liquidations's (--accept-source)\n`,
  );
}, 60_000);

it('takes --accept-source only with a work queue named, and only queue ARNs', async () => {
  const arn = 'arn:aws:sqs:us-east-1:123456789012:backstop-prod-liquidations-old';
  for (const [argv, said] of [
    [
      ['dlq', 'redrive', '--accept-source', arn],
      /--accept-source: only with --queue liquidations or --queue auctionSteps/,
    ],
    [
      ['dlq', 'redrive', '--queue', 'tickDeadLetters', '--accept-source', arn],
      /only with --queue liquidations/,
    ],
    [
      ['dlq', 'list', '--queue', 'liquidations', '--accept-source', 'backstop-prod-liquidations-old'],
      /is not an SQS queue's ARN/,
    ],
    [
      ['dlq', 'discard', '--queue', 'liquidations', '--message-id', 'm', '--accept-source', arn],
      /--accept-source only with --not-its-dead-letter/,
    ],
    [
      ['dlq', 'discard', '--queue', 'liquidations', '--message-id', 'm', '--not-its-dead-letter'],
      /--message-id or --not-its-dead-letter, not both/,
    ],
    [['dlq', 'discard', '--not-its-dead-letter'], /--queue is required/],
    [['dlq', 'redrive', '--not-its-dead-letter'], /an option of dlq discard/],
  ] as const) {
    const run = io();
    expect(await main([...argv], run.io)).toBe(2);
    expect(run.err()).toMatch(said);
  }
});

// review50-ops2-partition-table: the DLQ's partition was the target region's by a table of prefixes, `aws` for any other:
// a partition it did not list (a new sovereign cloud's, aws-eusc) refused every valid ARN, exit 2, with no way past.
// Held to the DLQ's own ARN's partition, account and region instead.
it("holds --accept-source's ARN to the DLQ's own ARN's partition, account and region, whatever the partition", () => {
  const dlq = 'arn:aws-eusc:sqs:eusc-de-east-1:123456789012:prod-liquidations-dlq';
  // Before: refused as of partition aws-eusc beside a DLQ of partition aws.
  expect(
    acceptSourceElsewhere(
      'liquidations',
      dlq,
      'arn:aws-eusc:sqs:eusc-de-east-1:123456789012:prod-liquidations-old',
    ),
  ).toBeUndefined();
  expect(
    acceptSourceElsewhere(
      'liquidations',
      'arn:aws:sqs:us-east-1:123456789012:d',
      'arn:aws:sqs:us-east-1:123456789012:o',
    ),
  ).toBeUndefined();
  for (const [arn, place] of [
    [
      'arn:aws:sqs:eusc-de-east-1:123456789012:old',
      'partition aws, account 123456789012, region eusc-de-east-1',
    ],
    [
      'arn:aws-eusc:sqs:eusc-de-west-1:123456789012:old',
      'partition aws-eusc, account 123456789012, region eusc-de-west-1',
    ],
    [
      'arn:aws-eusc:sqs:eusc-de-east-1:210987654321:old',
      'partition aws-eusc, account 210987654321, region eusc-de-east-1',
    ],
  ] as const)
    expect(acceptSourceElsewhere('liquidations', dlq, arn)).toBe(
      `--accept-source: "${arn}" is of ${place}; the dead-letter queue of liquidations is of partition aws-eusc, account 123456789012, region eusc-de-east-1: SQS moves a letter only to a dead-letter queue of its own partition, account and region, so none came from there (an ARN of another stage, account, region or partition?)`,
    );
});

// last50-accept-source-own: the work queue's own ARN was taken as an --accept-source, and its own letters were then
// labelled as let through by it ("(--accept-source)"). Refused: compared exactly, as the redrive compares a source.
it("refuses the work queue's own ARN as an --accept-source, and nothing else by it", () => {
  const own = 'arn:aws:sqs:us-east-1:123456789012:prod-liquidations';
  expect(acceptSourceOwn('liquidations', own, own)).toBe(
    `--accept-source: "${own}": that is liquidations's own ARN: its letters are taken without --accept-source (which names an older name of liquidations, as dlq list's NOT REDRIVEN line gives it)`,
  );
  for (const arn of [
    'arn:aws:sqs:us-east-1:123456789012:prod-liquidations-old',
    'arn:aws:sqs:us-east-1:210987654321:prod-liquidations',
    'arn:aws:sqs:eu-west-1:123456789012:prod-liquidations',
  ])
    expect(acceptSourceOwn('liquidations', own, arn)).toBeUndefined();
});

// ops50-dlq-discard-selected: dlq discard took ids alone (several, comma-separated): many letters another principal put
// in a DLQ had to be copied from dlq list one by one. It now takes those a redrive would leave, by the redrive's rule.
it("discards the letters a redrive would leave as not its work queue's, and only those", async () => {
  sourceAsAws();
  const d = await deployment('dlqsrcdisc', 'aws');
  const work = d.names.queues.liquidations.url;
  const dlq = d.names.queues.liquidations.dlqUrl!;
  await deadLetterFrom(work, '{"liquidationId":"ours:0"}');
  const old = await intruder('dlqsrcdisc-liquidations-old', dlq);
  await deadLetterFrom(old, '{"liquidationId":"old:0"}');
  const forged: string[] = [];
  for (const n of [1, 2]) forged.push(await send(dlq, `{"liquidationId":"forged${n}:0"}`));
  const other = await intruder('dlqsrcdisc-intruder', dlq);
  await deadLetterFrom(other, '{"liquidationId":"theirs:0"}');
  const outcome = await discardNotItsDeadLetters(d, 'liquidations', 1000, {
    acceptSources: [arnOfUrl(old)],
  });
  expect(
    outcome.discarded
      .filter((x) => x.sourceArn === null)
      .map((x) => x.messageId)
      .sort(),
  ).toEqual([...forged].sort());
  // tidy50-dlq-discard-source: each with where it came from, the evidence of whose it is (before: id and body alone).
  expect(outcome.discarded.map(({ body, sourceArn }) => ({ body, sourceArn }))).toEqual(
    expect.arrayContaining([
      { body: '{"liquidationId":"forged1:0"}', sourceArn: null },
      { body: '{"liquidationId":"forged2:0"}', sourceArn: null },
      { body: '{"liquidationId":"theirs:0"}', sourceArn: arnOfUrl(other) },
    ]),
  );
  expect(outcome.discarded).toHaveLength(3);
  const text = (body: string) => discardedText(outcome.discarded.find((x) => x.body === body)!);
  expect(text('{"liquidationId":"forged1:0"}')).toMatch(
    /^discarded \S+\n {2}sent straight to it \(no DeadLetterQueueSourceArn: moved from no queue\)\n {2}body: \{"liquidationId":"forged1:0"\}\n$/,
  );
  expect(text('{"liquidationId":"theirs:0"}')).toContain(
    `\n  moved from ${arnOfUrl(other)} (its DeadLetterQueueSourceArn)\n  body: {"liquidationId":"theirs:0"}\n`,
  );
  expect(outcome.notFound).toEqual([]);
  // The work queue's own and, named by --accept-source, its older name's stay.
  expect((await listDeadLetters(d, 'liquidations')).map((l) => l.body).sort()).toEqual([
    '{"liquidationId":"old:0"}',
    '{"liquidationId":"ours:0"}',
  ]);
}, 60_000);

// last50-dlq-discard-id-source: a discard by --message-id printed id and body alone, where --not-its-dead-letter printed
// each letter's source (tidy50-dlq-discard-source). Said alike now; on an emulator only for a letter naming one.
it('says where each letter it discards by id came from, "sent straight to it" only where a move names its source', async () => {
  const aws = sourceAsAws();
  const d = await deployment('dlqsrcbyid', 'aws');
  const work = d.names.queues.liquidations.url;
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const moved = await deadLetterFrom(work, '{"liquidationId":"ours:0"}');
  const direct = await send(dlq, '{"liquidationId":"direct:0"}');
  const outcome = await discardDeadLetters(d, 'liquidations', [moved, direct]);
  // Before: { messageId, body } alone.
  expect(outcome.discarded.map(({ body, sourceArn }) => ({ body, sourceArn }))).toEqual(
    expect.arrayContaining([
      { body: '{"liquidationId":"ours:0"}', sourceArn: arnOfUrl(work) },
      { body: '{"liquidationId":"direct:0"}', sourceArn: null },
    ]),
  );
  expect(outcome.discarded).toHaveLength(2);
  const text = (body: string) => discardedText(outcome.discarded.find((x) => x.body === body)!);
  expect(text('{"liquidationId":"ours:0"}')).toBe(
    `discarded ${moved}\n  moved from ${arnOfUrl(work)} (its DeadLetterQueueSourceArn)\n  body: {"liquidationId":"ours:0"}\n`,
  );
  expect(text('{"liquidationId":"direct:0"}')).toBe(
    `discarded ${direct}\n  sent straight to it (no DeadLetterQueueSourceArn: moved from no queue)\n  body: {"liquidationId":"direct:0"}\n`,
  );
  aws.remove();
  // On an emulator a letter naming no source may be a move (moto names none, pinned above): nothing said of it.
  const local = await deployment('dlqsrcbyidlocal', 'local');
  const sent = await send(local.names.queues.liquidations.dlqUrl!, 'poison');
  const onEmulator = await discardDeadLetters(local, 'liquidations', [sent]);
  expect(onEmulator.discarded).toEqual([{ messageId: sent, body: 'poison' }]);
  expect(discardedText(onEmulator.discarded[0]!)).toBe(`discarded ${sent}\n  body: poison\n`);
}, 60_000);

/** A listing's letters by body: where SQS moved each from and why a redrive would leave it. */
const byBody = (letters: readonly DeadLetter[]) =>
  Object.fromEntries(
    letters.map((l) => [l.body, { movedFrom: l.movedFrom, redriveRefuses: l.redriveRefuses }]),
  );

// ops49b-dlq-list-source: dlq list showed neither where a letter came from nor that a redrive would leave it: the
// operator learnt it from the redrive's refusal.
it('lists where SQS moved each dead letter from, and flags those dlq redrive leaves, by its own judgment', async () => {
  const { d, work, other } = await lettersOfEachKind('dlqsrclist');
  const listed = await listDeadLetters(d, 'liquidations');
  const letters = byBody(listed);
  expect(letters).toEqual({
    '{"liquidationId":"ours:0"}': { movedFrom: work.split('/').pop(), redriveRefuses: undefined },
    '{"liquidationId":"theirs:0"}': {
      movedFrom: 'dlqsrclist-intruder',
      redriveRefuses: expect.stringMatching(/^dlq\/not-its-dead-letter: SQS moved it here from /),
    },
    '{"liquidationId":"direct:0"}': {
      movedFrom: null,
      redriveRefuses: expect.stringMatching(
        /^dlq\/not-its-dead-letter: sent to the dead-letter queue directly/,
      ),
    },
  });
  const text = (body: string) => deadLetterText(listed.find((l) => l.body === body)!, 'aws');
  expect(text('{"liquidationId":"ours:0"}')).not.toContain('NOT REDRIVEN');
  expect(text('{"liquidationId":"theirs:0"}')).toContain(
    `(listings count too), moved from dlqsrclist-intruder\n    reason: `,
  );
  expect(text('{"liquidationId":"theirs:0"}')).toContain(
    `\n    NOT REDRIVEN: dlq/not-its-dead-letter: SQS moved it here from ${arnOfUrl(other)}, not from liquidations`,
  );
  expect(text('{"liquidationId":"direct:0"}')).toContain(
    '(listings count too), sent straight to it (moved from no queue)\n',
  );
  // The redrive's refusals are the listing's flags, word for word.
  const outcome = await redriveDeadLetters(d, 'liquidations');
  expect(outcome.moved).toBe(1);
  expect(Object.fromEntries(outcome.failed.map((f) => [f.messageId, f.reason]))).toEqual(
    Object.fromEntries(listed.filter((l) => l.redriveRefuses).map((l) => [l.messageId, l.redriveRefuses])),
  );
}, 60_000);

it("lists the dead letters without the flag, and says why, when the DLQ's ARN cannot be read (ops49b-dlq-list-source)", async () => {
  sourceAsAws();
  const refuse = 'refuseQueueArn';
  const d = await deployment('dlqsrcarn', 'aws');
  const dlq = d.names.queues.liquidations.dlqUrl!;
  const other = await intruder('dlqsrcarn-intruder', dlq);
  await deadLetterFrom(other, 'theirs');
  // A caller without sqs:GetQueueAttributes on the DLQ.
  clients.sqs.middlewareStack.add(
    ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
      if (context.commandName === 'GetQueueAttributesCommand')
        throw Object.assign(new Error('not authorized to perform: sqs:getqueueattributes'), {
          name: 'AccessDenied',
          $metadata: { httpStatusCode: 403 },
        });
      return next(args);
    }) as never,
    { step: 'initialize', name: refuse },
  );
  onTestFinished(() => void clients.sqs.middlewareStack.remove(refuse));
  const listing = await readDeadLetters(d, 'liquidations');
  expect(listing.messages.map((m) => [m.body, m.movedFrom, m.redriveRefuses])).toEqual([
    ['theirs', 'dlqsrcarn-intruder', undefined],
  ]);
  expect(listing.stopped).toBe(
    "reading the queue's ARN, to judge where its letters came from: AccessDenied: not authorized to perform: sqs:getqueueattributes (listed without whether dlq redrive would send them on)",
  );
}, 60_000);

it('puts on the bus no tick SQS moved into tickDeadLetters from a queue; those EventBridge and Lambda send go (security49b-dlq-source)', async () => {
  sourceAsAws();
  const d = await deployment('dlqsrctick', 'aws');
  const sink = d.names.queues.tickDeadLetters.url;
  const tick = (sequence: number) =>
    JSON.stringify({
      source: TICK_BUS.source,
      'detail-type': TICK_BUS.detailType,
      detail: { symbol: 'ETH-USD', markPrice: '1500', sequence },
    });
  // EventBridge's undelivered event: sent to the sink.
  await send(sink, tick(1));
  const other = await intruder('dlqsrctick-intruder', sink);
  const forged = await deadLetterFrom(other, tick(2));
  const outcome = await redriveDeadLetters(d, 'tickDeadLetters');
  expect(outcome).toEqual({
    moved: 1,
    failed: [
      {
        messageId: forged,
        reason: `dlq/not-its-dead-letter: SQS moved it here from ${arnOfUrl(other)}, a queue that names tickDeadLetters its dead-letter queue: none of the stack's does (EventBridge and margin-check send their dead letters); not put on the bus, left in the DLQ: read it (dlq list), then backstop dlq discard --queue tickDeadLetters --message-id ${forged} --target aws --stage dlqsrctick --region us-east-1 removes it`,
      },
    ],
  });
  const left = await new SqsQueueTransport(clients.sqs, { url: sink }).depth();
  expect(left.visible + left.inFlight).toBe(1);
}, 60_000);

it.each(['local', 'localstack'] as const)(
  'on an emulator (%s) sends on a letter its work queue moved unmarked (as moto does), and still refuses another queue’s',
  async (kind) => {
    const aws = sourceAsAws();
    const d = await deployment(`dlqsrc${kind}`, kind);
    const work = d.names.queues.liquidations.url;
    const dlq = d.names.queues.liquidations.dlqUrl!;
    await liquidationRecord(d.names.tables.liquidations, 'ours:0');
    await liquidationRecord(d.names.tables.liquidations, 'theirs:0');
    aws.remove();
    // moto's own move, unmarked.
    await deadLetterFrom(work, '{"liquidationId":"ours:0"}');
    sourceAsAws();
    const other = await intruder(`dlqsrc${kind}-intruder`, dlq);
    await deadLetterFrom(other, '{"liquidationId":"theirs:0"}');
    // Listed as the redrive judges them (ops49b-dlq-list-source): moto's move names no source, and is taken.
    const listed = await listDeadLetters(d, 'liquidations');
    expect(byBody(listed)).toEqual({
      '{"liquidationId":"ours:0"}': { movedFrom: null, redriveRefuses: undefined },
      '{"liquidationId":"theirs:0"}': {
        movedFrom: `dlqsrc${kind}-intruder`,
        redriveRefuses: expect.stringMatching(/^dlq\/not-its-dead-letter: /),
      },
    });
    expect(deadLetterText(listed.find((l) => l.movedFrom === null)!, kind)).toContain(
      'no queue named as its source (sent straight to it, or moved by the emulator, which names none)\n',
    );
    const outcome = await redriveDeadLetters(d, 'liquidations');
    expect(outcome.moved).toBe(1);
    expect(outcome.failed.map((f) => f.reason.split(':')[0])).toEqual(['dlq/not-its-dead-letter']);
    expect(await bodies(work)).toEqual(['{"liquidationId":"ours:0"}']);
  },
  60_000,
);

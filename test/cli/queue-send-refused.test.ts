import { PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { adaptersOf } from '../../cli/ops/common.ts';
import { createAwsAdapters, type ResourceNames } from '../../shared/adapters/aws/index.ts';
import { liquidationItem, tickIndexUpdates } from '../../shared/adapters/aws/liquidations.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import type { Deployment } from '../../shared/local/deployment.ts';
import { QueueSendRefusedError } from '../../shared/local/queue-senders.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';
import { cli, useOperatorEmulator } from '../support/cli.ts';

/**
 * security49b-send-refused: a stack deployed with queueSendersOnly (the default since session 49) refuses an operator's
 * send to a work queue unless the caller is listed in queueSenderPrincipals. `dlq redrive` said so
 * (`dlq/send-refused`); `liquidations overdue --resend`, `feed resume` and `seed providers` (its wake of the sleeping
 * auctions) showed AWS's refusal alone, cut at 300 characters. Moto enforces no queue policy: the client refuses as
 * AWS does, for the queue under test alone, everything else moto's.
 */
const emulator = useOperatorEmulator('sendrefused');

const DENIAL = (queue: string) =>
  `User: arn:aws:sts::123456789012:assumed-role/operator/x is not authorized to perform: sqs:sendmessage on resource: arn:aws:sqs:eu-west-1:123456789012:${queue} with an explicit deny in a resource-based policy`;

/** SQS refusing every send to `url` as its policy would (AccessDenied, 403). */
function queueRefuses(url: string): void {
  const send = SQSClient.prototype.send;
  vi.spyOn(SQSClient.prototype, 'send').mockImplementation(function (this: SQSClient, command: unknown) {
    if (
      (command instanceof SendMessageCommand || command instanceof SendMessageBatchCommand) &&
      command.input.QueueUrl === url
    )
      return Promise.reject(
        Object.assign(new Error(DENIAL(url.split('/').pop()!)), {
          name: 'AccessDenied',
          $fault: 'client',
          $metadata: { httpStatusCode: 403 },
        }),
      );
    return (send as (c: unknown) => Promise<unknown>).call(this, command);
  } as never);
}
afterEach(() => {
  vi.restoreAllMocks();
});

const advice = (queue: string) =>
  `a stack deployed with backstop:queueSendersOnly (the default) takes messages on ${queue} from its functions and backstop:queueSenderPrincipals alone: run it as a role listed there, or list this caller's role (its ARN as \`aws iam get-role\` gives it) and deploy again (docs/DEPLOY.md, "Who may send to the queues")`;

const queued = (id: string, atMs: number, tickKey = 'ETH-USD#7'): LiquidationRecord => ({
  id,
  positionId: id.split(':')[0]!,
  symbol: 'ETH-USD',
  side: 'LONG',
  state: 'QUEUED',
  tickKey,
  triggerMark: parsePrice('1440'),
  remainingSize: 100_000_000n,
  marketFills: [],
  history: [{ atMs, state: 'QUEUED' }],
  version: 0,
});

async function put(names: ResourceNames, l: LiquidationRecord): Promise<void> {
  await emulator.clients.dynamo.send(
    new PutItemCommand({ TableName: names.tables.liquidations, Item: liquidationItem(l) }),
  );
}

describe('an operator send the queue policy refuses says whom the queue takes (security49b-send-refused)', () => {
  it('liquidations overdue --resend', async () => {
    const { names, at } = await emulator.newStage('ov');
    await put(names, queued('o1:0', Date.now() - 3 * 3_600_000));
    queueRefuses(names.queues.liquidations.url);
    const run = await cli('liquidations', 'overdue', '--resend', ...at);
    expect(run.code).toBe(1);
    const queue = names.queues.liquidations.url.split('/').pop()!;
    expect(run.stderr).toBe(
      `backstop: sqs/send-refused: AccessDenied (${DENIAL(queue)}): ${advice('liquidations')}\n`,
    );
  });

  it('feed resume (it sends again what a tick of the old numbering started), nothing resumed', async () => {
    const { names, at } = await emulator.newStage('fr');
    const adapters = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });
    // A tick still starting liquidations: resume takes it over, sending its QUEUED ones again first.
    await adapters.markets.acceptTick(
      'ETH-USD',
      { sequence: 7, markPrice: parsePrice('1440'), timestampMs: Date.now() },
      undefined,
      true,
    );
    const started = queued('f1:0', Date.now());
    await put(names, started);
    // The tick's index of what it started (as margin-check's begin writes it).
    for (const Update of tickIndexUpdates(names.tables.liquidations, [started]))
      await emulator.clients.dynamo.send(new UpdateItemCommand(Update));
    queueRefuses(names.queues.liquidations.url);
    const run = await cli('feed', 'resume', '--symbol', 'ETH-USD', '--from-sequence', '1', ...at);
    expect(run.code).toBe(1);
    const queue = names.queues.liquidations.url.split('/').pop()!;
    expect(run.stderr).toBe(
      `backstop: sqs/send-refused: AccessDenied (${DENIAL(queue)}): ${advice('liquidations')}\n`,
    );
    // Refused before the rebase: the market's sequence is as it was.
    expect((await adapters.markets.get('ETH-USD'))?.pendingSequence).toBe(7);
  });

  it("the CLI's auction queue too (seed providers' wake of the sleeping auctions), send and batch alike", async () => {
    const { stage, names } = await emulator.newStage('sp');
    const deployment = {
      kind: 'local',
      stage,
      region: 'us-east-1',
      endpoint: emulator.moto.endpoint,
      clients: emulator.clients,
      names,
      close: () => {},
    } as Deployment;
    queueRefuses(names.queues.auctionSteps.url);
    const { auctionQueue, liquidationQueue } = adaptersOf(deployment);
    const queue = names.queues.auctionSteps.url.split('/').pop()!;
    const said = `sqs/send-refused: AccessDenied (${DENIAL(queue)}): ${advice('auctionSteps')}`;
    await expect(auctionQueue.send('{"x":1}')).rejects.toThrow(new QueueSendRefusedError(said));
    await expect(auctionQueue.sendBatch(['{"x":1}'])).rejects.toThrow(new QueueSendRefusedError(said));
    // The other queue sends as before, and other errors are thrown as they were.
    await liquidationQueue.send('{"x":1}');
    expect((await liquidationQueue.depth()).visible).toBe(1);
  });
});

import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type AwsClients,
  createAwsClients,
  createLocalResources,
  localClientConfig,
} from '../../shared/adapters/aws/index.ts';
import type { Deployment } from '../../shared/local/deployment.ts';
import { listDeadLetters, redriveDeadLetters } from '../../shared/local/dlq.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

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

async function stage(name: string, bodies: string[]): Promise<Deployment> {
  const names = await createLocalResources(clients, name);
  shortPolls = 0;
  for (const body of bodies)
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: names.queues.liquidations.dlqUrl!, MessageBody: body }),
    );
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
    'liquidation a:0 not found',
    'liquidation b:0 not found',
  ]);
});

import {
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import type { Deployment } from '../../shared/local/deployment.ts';
import { listDeadLetters, redriveDeadLetters } from '../../shared/local/dlq.ts';

/**
 * SQS short polling (ReceiveMessage with WaitTimeSeconds 0) samples a subset of the queue's servers: "If the
 * number of messages in the queue is extremely small, you might not receive any messages in a particular
 * ReceiveMessage response" (SQS developer guide, "Short and long polling"). Long polling (WaitTimeSeconds > 0)
 * queries every server. A DLQ on AWS usually holds a handful of messages: exactly that case.
 *
 * The fake below is an SQS queue with that documented behaviour: a short poll of a small queue answers with no
 * message on its first try, a long poll answers with what is there.
 */
function sqsWithShortPolling(bodies: string[]) {
  const dlq = bodies.map((body, i) => ({ MessageId: `m${i}`, ReceiptHandle: `r${i}`, Body: body }));
  const sent: string[] = [];
  let shortPolls = 0;
  const send = async (command: unknown) => {
    if (command instanceof ReceiveMessageCommand) {
      const input = command.input;
      const short = (input.WaitTimeSeconds ?? 0) === 0;
      if (short && shortPolls++ === 0) return { Messages: [] as Message[] };
      return { Messages: dlq.slice(0, input.MaxNumberOfMessages ?? 1) };
    }
    if (command instanceof SendMessageCommand) {
      sent.push(command.input.MessageBody!);
      return {};
    }
    if (command instanceof DeleteMessageCommand) {
      const i = dlq.findIndex((m) => m.ReceiptHandle === command.input.ReceiptHandle);
      if (i >= 0) dlq.splice(i, 1);
      return {};
    }
    return {};
  };
  const deployment = {
    kind: 'aws',
    stage: 'prod',
    region: 'us-east-1',
    clients: { sqs: { send }, dynamo: { send: async () => ({}) } },
    names: {
      tables: { liquidations: 'liquidations', positions: 'positions', auctions: 'auctions' },
      queues: {
        liquidations: { url: 'https://sqs/liquidations', dlqUrl: 'https://sqs/liquidations-dlq' },
        auctionSteps: { url: 'https://sqs/auction', dlqUrl: 'https://sqs/auction-dlq' },
        tickDeadLetters: { url: 'https://sqs/ticks-dlq' },
      },
    },
  } as unknown as Deployment;
  return { deployment, dlq, sent };
}

// Found by a review of the operator workflow in session 25: both receive loops short-polled, so a DLQ holding a
// few messages could be reported empty on AWS.
describe('dlq list and redrive on a queue short polls may answer empty', () => {
  it('reports every message sent back while the DLQ still holds them all', async () => {
    const { deployment, dlq, sent } = sqsWithShortPolling([
      '{"liquidationId":"a:0"}',
      '{"liquidationId":"b:0"}',
      '{"liquidationId":"c:0"}',
    ]);
    const outcome = await redriveDeadLetters(deployment, 'liquidations');
    expect({ moved: outcome.moved, sent: sent.length, left: dlq.length }).toEqual({
      moved: 3,
      sent: 3,
      left: 0,
    });
  });

  it('lists every message a small DLQ holds', async () => {
    const { deployment } = sqsWithShortPolling(['{"liquidationId":"a:0"}', '{"liquidationId":"b:0"}']);
    const listed = await listDeadLetters(deployment, 'liquidations');
    expect(listed.map((m) => m.reason)).toEqual(['liquidation a:0 not found', 'liquidation b:0 not found']);
  });
});

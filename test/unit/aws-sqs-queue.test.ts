import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { QueueSendError, SqsQueueTransport } from '../../shared/adapters/aws/sqs-queue.ts';
import { unsentOf } from '../../shared/ports/index.ts';

/** An SQS client whose SendMessageBatch answers the entries `failing` says as Failed (server side), the rest sent. */
function sqsOf(failing: (body: string) => boolean) {
  const sent: string[] = [];
  const calls: number[] = [];
  const sqs = {
    send: async (command: unknown) => {
      if (!(command instanceof SendMessageBatchCommand)) throw new Error('unexpected command');
      const entries = command.input.Entries ?? [];
      calls.push(entries.length);
      const failed = entries.filter((e) => failing(e.MessageBody ?? ''));
      sent.push(...entries.filter((e) => !failed.includes(e)).map((e) => e.MessageBody ?? ''));
      return {
        Successful: [],
        Failed: failed.map((e) => ({ Id: e.Id, Code: 'InternalError', SenderFault: false })),
      };
    },
  } as unknown as SQSClient;
  return { sqs, sent, calls };
}

// wakes43-count-once: the adapter threw on a failed entry without saying which of the call's entries went, so a
// wake counted none of them, though SQS's answer names the failed ones.
describe('SqsQueueTransport.sendBatch names the entries it did not send', () => {
  it('the failed entries, and those of the later SendMessageBatch calls it did not begin', async () => {
    const { sqs, sent, calls } = sqsOf((body) => body === 'm3' || body === 'm7');
    const queue = new SqsQueueTransport(sqs, { url: 'https://sqs/q', batchRetries: 0 });
    const bodies = Array.from({ length: 25 }, (_, i) => `m${i}`);
    const error = await queue.sendBatch(bodies).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueSendError);
    expect(unsentOf(error)).toEqual([3, 7, ...Array.from({ length: 15 }, (_, i) => 10 + i)]);
    expect(calls).toEqual([10]);
    expect(sent).toHaveLength(8);
  });

  it('a failure in the last call: its failed entries alone', async () => {
    const { sqs } = sqsOf((body) => body === 'm12');
    const queue = new SqsQueueTransport(sqs, { url: 'https://sqs/q', batchRetries: 0 });
    const error = await queue
      .sendBatch(Array.from({ length: 15 }, (_, i) => `m${i}`))
      .catch((e: unknown) => e);
    expect(unsentOf(error)).toEqual([12]);
  });
});

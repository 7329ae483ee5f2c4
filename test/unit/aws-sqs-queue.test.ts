import { Readable } from 'node:stream';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { type AwsClientConfig, clientOptions } from '../../shared/adapters/aws/clients.ts';
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

/**
 * An SQS client of `config` whose HTTP handler answers every ReceiveMessage empty, and records the request timeout
 * each request was sent with and the wait it asked for.
 */
function emptyQueueClient(config: AwsClientConfig) {
  const seen: { wait: number; requestTimeout: number | undefined }[] = [];
  const sqs = new SQSClient({
    ...clientOptions(config),
    requestHandler: {
      handle: async (request: { body?: string | Uint8Array }, options: { requestTimeout?: number } = {}) => {
        const text = typeof request.body === 'string' ? request.body : new TextDecoder().decode(request.body);
        seen.push({
          wait: (JSON.parse(text) as { WaitTimeSeconds: number }).WaitTimeSeconds,
          requestTimeout: options.requestTimeout,
        });
        return {
          response: {
            statusCode: 200,
            headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'r' },
            body: Readable.from([Buffer.from('{}')]),
          },
        };
      },
    } as never,
  });
  return { sqs, seen };
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

// timeouts48-long-poll: a long poll (WaitTimeSeconds) was sent with the client's request timeout, which runs until the
// answer's headers: on the functions' AWS_TIMEOUTS (5 s) a 20 s wait failed every empty poll as a TimeoutError.
describe('SqsQueueTransport.receive: a long poll gets its wait on top of the request timeout', () => {
  const config: AwsClientConfig = {
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    timeouts: { connectionMs: 1_000, requestMs: 900 },
  };

  it("a long poll: the wait plus the client's request timeout", async () => {
    const { sqs, seen } = emptyQueueClient(config);
    const queue = new SqsQueueTransport(sqs, {
      url: 'https://sqs.us-east-1.amazonaws.com/1/q',
      longPoll: { waitSeconds: 20, clientConfig: config },
    });
    expect(await queue.receive(10, 30)).toEqual([]);
    // Before: 900 ms, the client's, for a wait of 20 s.
    expect(seen).toEqual([{ wait: 20, requestTimeout: 20_900 }]);
  });

  it("a short poll: the client's own", async () => {
    const { sqs, seen } = emptyQueueClient(config);
    const queue = new SqsQueueTransport(sqs, { url: 'https://sqs.us-east-1.amazonaws.com/1/q' });
    expect(await queue.receive(10, 30)).toEqual([]);
    expect(seen).toEqual([{ wait: 0, requestTimeout: undefined }]);
  });
});

import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import {
  type CrashHook,
  MAX_MESSAGE_BYTES,
  MAX_RECEIVE_MESSAGES,
  type QueueTransport,
  type ReceivedMessage,
} from '../../ports/index.ts';
import { type AwsClientConfig, longPollOptions } from './clients.ts';
import { AdapterInputError, noCrash } from './codec.ts';

/**
 * QueueTransport on an SQS standard queue. Batches are split into SendMessageBatch calls of at most 10
 * entries and 256 KiB; entries that fail for a server-side reason are resent (with backoff) up to
 * `batchRetries` times, and any entry still failing, or refused as the sender's fault, throws QueueSendError.
 */

/** Entries of one SendMessageBatch. */
export const SQS_MAX_BATCH = 10;
/** Bodies of one SendMessageBatch together (SQS's batch limit, which happens to equal one message's). */
export const SQS_MAX_BATCH_BYTES = 256 * 1024;
export const SQS_MAX_DELAY_SECONDS = 900;

export interface SendFailure {
  readonly index: number;
  readonly code: string;
  readonly message: string;
  readonly senderFault: boolean;
}

export class QueueSendError extends Error {
  override readonly name = 'QueueSendError';
  /** The entries not sent (indices into the call's bodies; ports' unsentOf): every other one went. */
  readonly unsent: readonly number[];
  constructor(
    message: string,
    readonly failures: readonly SendFailure[],
    unsent: readonly number[] = failures.map((f) => f.index),
  ) {
    super(message);
    this.unsent = unsent;
  }
}

export interface SqsQueueOptions {
  readonly url: string;
  /** Defaults to the last segment of the URL. */
  readonly name?: string;
  /**
   * Long polling on receive (absent: short poll, the default, right for emulators and the local runner): its wait, and
   * the config the client was built with, whose request timeout each poll gets with its wait on top (longPollOptions;
   * timeouts48-long-poll: a timeout below the wait, AWS_TIMEOUTS' 5 s under a 20 s wait, failed every empty poll).
   */
  readonly longPoll?: { readonly waitSeconds: number; readonly clientConfig: AwsClientConfig };
  /** Resends of failed batch entries before giving up (default 3). */
  readonly batchRetries?: number;
  readonly crash?: CrashHook;
  /** Crash point prefix: `${crashPrefix}.send|sendBatch|receive|delete|changeVisibility` (default: the name). */
  readonly crashPrefix?: string;
}

const checkDelay = (delaySeconds: number): void => {
  if (!Number.isInteger(delaySeconds) || delaySeconds < 0 || delaySeconds > SQS_MAX_DELAY_SECONDS) {
    throw new AdapterInputError(
      `queue/bad-delay: ${delaySeconds} (0..${SQS_MAX_DELAY_SECONDS} whole seconds)`,
    );
  }
};

const tooLarge = (what: string, bytes: number): AdapterInputError =>
  new AdapterInputError(`queue/message-too-large: ${what} is ${bytes} bytes, at most ${MAX_MESSAGE_BYTES}`);

/** Splits bodies into SQS batches: at most 10 entries and 256 KiB of bodies each. */
export function splitBatches(bodies: readonly string[]): { index: number; body: string }[][] {
  const batches: { index: number; body: string }[][] = [];
  let current: { index: number; body: string }[] = [];
  let bytes = 0;
  bodies.forEach((body, index) => {
    const size = Buffer.byteLength(body, 'utf8');
    if (size > MAX_MESSAGE_BYTES) throw tooLarge(`entry ${index}`, size);
    if (current.length === SQS_MAX_BATCH || bytes + size > SQS_MAX_BATCH_BYTES) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push({ index, body });
    bytes += size;
  });
  if (current.length > 0) batches.push(current);
  return batches;
}

export class SqsQueueTransport implements QueueTransport {
  readonly name: string;
  readonly url: string;
  private readonly crash: CrashHook;
  private readonly crashPrefix: string;

  constructor(
    private readonly sqs: SQSClient,
    private readonly options: SqsQueueOptions,
  ) {
    this.url = options.url;
    this.name = options.name ?? options.url.split('/').pop() ?? options.url;
    this.crash = options.crash ?? noCrash;
    this.crashPrefix = options.crashPrefix ?? this.name;
  }

  async send(body: string, delaySeconds = 0): Promise<void> {
    checkDelay(delaySeconds);
    const size = Buffer.byteLength(body, 'utf8');
    if (size > MAX_MESSAGE_BYTES) throw tooLarge('the body', size);
    await this.sqs.send(
      new SendMessageCommand({ QueueUrl: this.url, MessageBody: body, DelaySeconds: delaySeconds }),
    );
    this.crash(`${this.crashPrefix}.send`);
  }

  async sendBatch(bodies: readonly string[]): Promise<void> {
    const batches = splitBatches(bodies);
    for (const [at, batch] of batches.entries()) {
      try {
        await this.sendOneBatch(batch);
      } catch (error) {
        // Its failed entries, and the later calls' entries, not begun: the caller counts what went.
        if (!(error instanceof QueueSendError) || at === batches.length - 1) throw error;
        const later = batches.slice(at + 1).flatMap((b) => b.map((e) => e.index));
        throw new QueueSendError(error.message, error.failures, [...error.unsent, ...later]);
      }
      this.crash(`${this.crashPrefix}.sendBatch`);
    }
  }

  private async sendOneBatch(batch: readonly { index: number; body: string }[]): Promise<void> {
    let pending = batch;
    const retries = this.options.batchRetries ?? 3;
    for (let attempt = 0; ; attempt++) {
      const entries: SendMessageBatchRequestEntry[] = pending.map((e) => ({
        Id: String(e.index),
        MessageBody: e.body,
      }));
      const out = await this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.url, Entries: entries }));
      const failed = out.Failed ?? [];
      if (failed.length === 0) return;
      const failures: SendFailure[] = failed.map((f) => ({
        index: Number(f.Id),
        code: f.Code ?? 'unknown',
        message: f.Message ?? '',
        senderFault: f.SenderFault ?? false,
      }));
      const summary = failures.map((f) => `#${f.index} ${f.code}`).join(', ');
      if (failures.some((f) => f.senderFault)) {
        throw new QueueSendError(`queue/send-refused: ${this.name}: ${summary}`, failures);
      }
      if (attempt >= retries) {
        throw new QueueSendError(
          `queue/send-failed: ${this.name} after ${retries} retries: ${summary}`,
          failures,
        );
      }
      const again = new Set(failures.map((f) => f.index));
      pending = pending.filter((e) => again.has(e.index));
      await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt));
    }
  }

  async receive(maxMessages: number, visibilityTimeoutSeconds: number): Promise<readonly ReceivedMessage[]> {
    if (!Number.isSafeInteger(maxMessages) || maxMessages < 1 || maxMessages > MAX_RECEIVE_MESSAGES) {
      throw new AdapterInputError(`queue/bad-max-messages: ${maxMessages} (1-${MAX_RECEIVE_MESSAGES})`);
    }
    const wait = this.options.longPoll?.waitSeconds ?? 0;
    const out = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.url,
        MaxNumberOfMessages: maxMessages,
        VisibilityTimeout: visibilityTimeoutSeconds,
        WaitTimeSeconds: wait,
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      }),
      this.options.longPoll ? longPollOptions(this.options.longPoll.clientConfig, wait) : {},
    );
    const messages = (out.Messages ?? []).map((m) => {
      if (!m.MessageId || m.ReceiptHandle === undefined || m.Body === undefined) {
        throw new Error(`queue/bad-message: ${this.name} returned a message without id, handle or body`);
      }
      return {
        messageId: m.MessageId,
        body: m.Body,
        receiptHandle: m.ReceiptHandle,
        receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '1'),
        sentAtMs: Number(m.Attributes?.SentTimestamp ?? '0'),
      };
    });
    // A receive is a side effect too: the messages are now in flight and their receive count grew.
    if (messages.length > 0) this.crash(`${this.crashPrefix}.receive`);
    return messages;
  }

  async delete(receiptHandle: string): Promise<void> {
    await this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.url, ReceiptHandle: receiptHandle }));
    this.crash(`${this.crashPrefix}.delete`);
  }

  async changeVisibility(receiptHandle: string, visibilityTimeoutSeconds: number): Promise<void> {
    await this.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.url,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: visibilityTimeoutSeconds,
      }),
    );
    this.crash(`${this.crashPrefix}.changeVisibility`);
  }

  async depth(): Promise<{ readonly visible: number; readonly inFlight: number; readonly delayed: number }> {
    const out = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.url,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    const a = out.Attributes ?? {};
    return {
      visible: Number(a.ApproximateNumberOfMessages ?? '0'),
      inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? '0'),
      delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? '0'),
    };
  }
}

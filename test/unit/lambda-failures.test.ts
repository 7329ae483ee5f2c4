import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { NewerWriterError, RECORD_SCHEMA } from '../../shared/adapters/aws/writer-schema.ts';
import { ManualClock } from '../../shared/adapters/embedded/clock.ts';
import { EmbeddedQueue } from '../../shared/adapters/embedded/queue.ts';
import { type DeferralKind, recordingDeferrals } from '../../shared/lambda/deferral.ts';
import {
  failureOf,
  failureReason,
  logFailure,
  noteFailure,
  processBatch,
  readMessage,
  retryBackoffSeconds,
  scheduleRetry,
} from '../../shared/lambda/failures.ts';
import { logger, maxReceivesFromEnv } from '../../shared/lambda/runtime.ts';
import { METRICS } from '../../shared/metrics.ts';
import { ConditionFailedError, type ProcessingFailure, VenueError } from '../../shared/ports/index.ts';
import { sqsRecord as runnerRecord } from '../../shared/runner/index.ts';
import { PoisonMessageError, parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { LiquidationBusyError } from '../../shared/services/liquidation.ts';
import { maxReceivesEnv, QUEUES } from '../../shared/topology.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';

/** What the consumers record on a liquidation or auction when a delivery fails (shown by `backstop dlq list`). */

const cancelled = Object.assign(new Error('Transaction cancelled, please refer cancellation reasons'), {
  name: 'TransactionCanceledException',
  CancellationReasons: [{ Code: 'None' }, { Code: 'TransactionConflict' }],
});

const sqsRecord = (receiveCount?: string): SQSRecord =>
  ({ attributes: receiveCount === undefined ? {} : { ApproximateReceiveCount: receiveCount } }) as SQSRecord;

describe('failureReason', () => {
  const cases: Record<string, [unknown, string]> = {
    'a plain Error: its message': [
      new Error('liquidation/position-missing: p1'),
      'liquidation/position-missing: p1',
    ],
    'a named error: name and message': [
      new VenueError('venue/timeout: p1:0:market', 'timeout'),
      'VenueError: venue/timeout: p1:0:market',
    ],
    'a message that starts with the name: once': [
      new ConditionFailedError('ConditionFailedError x'),
      'ConditionFailedError x',
    ],
    'a cancelled transaction: with its reason codes': [
      cancelled,
      'TransactionCanceledException: Transaction cancelled, please refer cancellation reasons [None,TransactionConflict]',
    ],
    "a cancelled transaction whose message lists its codes (DynamoDB's): once": [
      Object.assign(
        new Error(
          'Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]',
        ),
        {
          name: 'TransactionCanceledException',
          CancellationReasons: [{ Code: 'None' }, { Code: 'ConditionalCheckFailed' }],
        },
      ),
      'TransactionCanceledException: Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]',
    ],
    'an empty message: the name': [new ConditionFailedError(''), 'ConditionFailedError'],
    'a thrown string': ['boom', 'string: boom'],
    'several lines: one': [new Error('a\n  b'), 'a b'],
  };
  for (const [name, [error, reason]] of Object.entries(cases)) {
    it(name, () => expect(failureReason(error)).toBe(reason));
  }

  it('cuts a long message to 300 characters', () => {
    const reason = failureReason(new Error('x'.repeat(5000)));
    expect(reason).toHaveLength(300);
    expect(reason.endsWith('…')).toBe(true);
  });
});

describe('failureOf', () => {
  it('takes the attempt from ApproximateReceiveCount, 0 when absent or not a count', () => {
    const error = new Error('e');
    expect(failureOf(error, sqsRecord('5'), 1_000)).toEqual({ reason: 'e', attempt: 5, atMs: 1_000 });
    expect(failureOf(error, sqsRecord(), 1_000).attempt).toBe(0);
    expect(failureOf(error, sqsRecord('x'), 1_000).attempt).toBe(0);
  });
});

describe('noteFailure', () => {
  const failure: ProcessingFailure = { reason: 'e', attempt: 1, atMs: 1 };

  it('records the failure on the record', async () => {
    const recorded: [string, ProcessingFailure][] = [];
    await noteFailure('liquidation', 'p1:0', failure, async (id, f) => {
      recorded.push([id, f]);
    });
    expect(recorded).toEqual([['p1:0', failure]]);
  });

  it('a failure to record never replaces the error being handled (the message is retried anyway)', async () => {
    await expect(
      noteFailure('auction', 'p1:0:auction', failure, async () => {
        throw new ConditionFailedError('auctions/not-found: p1:0:auction');
      }),
    ).resolves.toBeUndefined();
  });
});

describe('logFailure', () => {
  it("logs a newer writer's record (a rolling deploy) at WARN, saying it waits for the new version", () => {
    const error = vi.spyOn(logger, 'error').mockImplementation(() => {});
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => {});
    try {
      logFailure(new NewerWriterError('Auctions', 'a1', RECORD_SCHEMA + 1), 'auction step failed');
      expect(error).not.toHaveBeenCalled();
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]![0]).toContain('newer Backstop');
    } finally {
      error.mockRestore();
      warn.mockRestore();
    }
  });

  it('logs a failure at ERROR and a deferral (another delivery holds the orders) at INFO', () => {
    const error = vi.spyOn(logger, 'error').mockImplementation(() => {});
    const info = vi.spyOn(logger, 'info').mockImplementation(() => {});
    try {
      logFailure(new VenueError('venue/timeout: p1:0:market', 'timeout'), 'liquidation failed');
      expect(error).toHaveBeenCalledTimes(1);
      expect(info).not.toHaveBeenCalled();
      logFailure(new LiquidationBusyError('liquidation/busy: p1:0', 1000), 'liquidation failed');
      expect(error).toHaveBeenCalledTimes(1);
      expect(info).toHaveBeenCalledWith("another delivery places this liquidation's orders; deferred", {
        reason: 'liquidation/busy: p1:0',
      });
    } finally {
      error.mockRestore();
      info.mockRestore();
    }
  });
});

describe('processBatch', () => {
  const batch = (...ids: string[]): SQSEvent => ({
    Records: ids.map(
      (id) =>
        ({
          messageId: id,
          body: id,
          eventSource: 'aws:sqs',
          attributes: { ApproximateReceiveCount: '1' },
        }) as unknown as SQSRecord,
    ),
  });
  const busy = () => new LiquidationBusyError('liquidation/busy: p1:0', 5_000);
  const failing =
    (outcomes: Record<string, Error | undefined>) =>
    async (record: SQSRecord): Promise<void> => {
      const error = outcomes[record.body];
      if (error) throw error;
    };

  it('reports failed records for SQS to redeliver, the rest done', async () => {
    const response = await processBatch(batch('a', 'b'), failing({ b: new Error('throttled') }));
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'b' }]);
  });

  it('fails the invocation when every record failed (an error Lambda counts, and alarms on)', async () => {
    const error = new Error('throttled');
    await expect(processBatch(batch('a', 'b'), failing({ a: busy(), b: error }))).rejects.toMatchObject({
      name: 'FullBatchFailureError',
      recordErrors: [expect.any(LiquidationBusyError), error],
    });
  });

  it('does not fail the invocation when every failure was a deferral: a duplicate delivery is not an error', async () => {
    for (const processInParallel of [true, false]) {
      const response = await processBatch(batch('a', 'b'), failing({ a: busy(), b: busy() }), {
        processInParallel,
      });
      expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'a' }, { itemIdentifier: 'b' }]);
    }
  });

  it("does not fail the invocation when every failure was a newer writer's record: a rolling deploy must not page (review44-newer-writer-batch)", async () => {
    const newer = () => new NewerWriterError('Liquidations', 'p1:0', RECORD_SCHEMA + 1);
    for (const outcomes of [{ a: newer() }, { a: newer(), b: busy() }]) {
      const response = await processBatch(batch(...Object.keys(outcomes)), failing(outcomes));
      expect(response.batchItemFailures).toEqual(
        Object.keys(outcomes).map((itemIdentifier) => ({ itemIdentifier })),
      );
    }
    // Any other failure among them still fails it.
    await expect(
      processBatch(batch('a', 'b'), failing({ a: newer(), b: new Error('throttled') })),
    ).rejects.toMatchObject({ name: 'FullBatchFailureError' });
  });
});

describe('processBatch with a deadline', () => {
  const identity = { region: 'us-east-1', accountId: '000000000000' };

  it('stops starting records as the invocation runs short of time: they go back as new messages, no receive counted', async () => {
    const clock = new ManualClock(1_000_000);
    const queue = new EmbeddedQueue({ name: 'auctionSteps', clock });
    for (const body of ['a', 'b', 'c']) await queue.send(body);
    const messages = await queue.receive(3, 60);
    const event: SQSEvent = {
      Records: messages.map((m) => runnerRecord(m, 'arn', identity, clock.nowMs())),
    };
    // 45 s left when the batch starts; the first step takes 30 s.
    let remainingMs = 45_000;
    const started: string[] = [];
    const response = await processBatch(
      event,
      async (record) => {
        started.push(record.body);
        remainingMs -= 30_000;
      },
      {
        processInParallel: false,
        deadline: { remainingMs: () => remainingMs, reserveMs: 20_000, queue, queueId: 'auctionSteps' },
      },
    );
    expect(started).toEqual(['a']);
    // Nothing failed: the batch is done with as SQS sees it (the runner deletes all three).
    expect(response.batchItemFailures).toEqual([]);
    for (const m of messages) await queue.delete(m.receiptHandle);
    // b and c are new messages, received for the first time.
    const again = await queue.receive(3, 60);
    expect(again.map((m) => [m.body, m.receiveCount]).sort()).toEqual([
      ['b', 1],
      ['c', 1],
    ]);
  });

  it('fails the records it could not send again: they come back when their visibility runs out', async () => {
    const clock = new ManualClock(1_000_000);
    const queue = new EmbeddedQueue({ name: 'auctionSteps', clock });
    for (const body of ['a', 'b', 'c']) await queue.send(body);
    const messages = await queue.receive(3, 60);
    const failing = Object.assign(Object.create(queue), {
      sendBatch: async () => {
        throw new Error('SQS unavailable');
      },
    });
    let remainingMs = 45_000;
    const telemetry = new RecordingTelemetry();
    const error = vi.spyOn(logger, 'error').mockImplementation(() => {});
    const response = await processBatch(
      { Records: messages.map((m) => runnerRecord(m, 'arn', identity, clock.nowMs())) },
      async () => {
        remainingMs -= 30_000;
      },
      {
        processInParallel: false,
        deadline: {
          remainingMs: () => remainingMs,
          reserveMs: 20_000,
          queue: failing,
          queueId: 'auctionSteps',
          telemetry,
        },
      },
    );
    expect(response.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(
      messages.slice(1).map((m) => m.messageId),
    );
    // Counted and logged as failed records of their queue, which alarms (audit, session 36: they were silent).
    expect(telemetry.counts.get(`${METRICS.RecordFailures.name}:auctionSteps`)).toBe(2);
    expect(error).toHaveBeenCalledWith(
      'records not started could not be sent again; they come back after the visibility timeout',
      expect.objectContaining({ records: 2 }),
    );
    error.mockRestore();
  });

  it('always starts the first record, however short the time (a reserve as long as the timeout stalls nothing)', async () => {
    const clock = new ManualClock(1_000_000);
    const queue = new EmbeddedQueue({ name: 'auctionSteps', clock });
    for (const body of ['a', 'b']) await queue.send(body);
    const messages = await queue.receive(2, 60);
    const started: string[] = [];
    await processBatch(
      { Records: messages.map((m) => runnerRecord(m, 'arn', identity, clock.nowMs())) },
      async (record) => {
        started.push(record.body);
      },
      {
        processInParallel: false,
        deadline: { remainingMs: () => 5_000, reserveMs: 60_000, queue, queueId: 'auctionSteps' },
      },
    );
    expect(started).toEqual(['a']);
  });
});

describe('scheduleRetry', () => {
  const identity = { region: 'us-east-1', accountId: '000000000000' };

  /** A failed n-th receive: when its message is visible again, and how the handler deferred it. */
  async function retryOf(error: unknown, receives: number, maxReceives?: number) {
    const clock = new ManualClock(1_000_000);
    const queue = new EmbeddedQueue({ name: 'liquidations', clock });
    await queue.send('m');
    let message = (await queue.receive(1, 361))[0]!;
    for (let n = 1; n < receives; n++) {
      await queue.changeVisibility(message.receiptHandle, 0);
      message = (await queue.receive(1, 361))[0]!;
    }
    expect(message.receiveCount).toBe(receives);
    const deferred = new Map<string, DeferralKind>();
    const record = runnerRecord(message, 'arn', identity, clock.nowMs());
    await recordingDeferrals(deferred, () =>
      scheduleRetry('liquidations', queue, record, error, maxReceives),
    );
    let seconds = 0;
    while ((await queue.receive(1, 361)).length === 0) {
      clock.advance(1_000);
      seconds += 1;
    }
    return { seconds, kind: deferred.get(message.receiptHandle) };
  }

  it('backs a failed receive off on its queue schedule, later each time, then leaves the visibility timeout', async () => {
    const schedule = QUEUES.find((q) => q.id === 'liquidations')?.deadLetter?.retryBackoffSeconds ?? [];
    expect(schedule.length).toBeGreaterThan(0);
    for (const [i, backoff] of schedule.entries()) {
      expect(await retryOf(new Error('ProvisionedThroughputExceededException'), i + 1)).toEqual({
        seconds: backoff,
        kind: 'backoff',
      });
      if (i > 0) expect(backoff).toBeGreaterThan(schedule[i - 1]!);
    }
    expect(await retryOf(new Error('throttled'), schedule.length + 1)).toEqual({
      seconds: 361,
      kind: undefined,
    });
  });

  it("brings the last receive's failure back within a second, for its next receive to dead-letter it", async () => {
    const schedule = QUEUES.find((q) => q.id === 'liquidations')?.deadLetter?.retryBackoffSeconds ?? [];
    const last = schedule.length + 1;
    expect(await retryOf(new Error('throttled'), last, last)).toEqual({ seconds: 1, kind: 'backoff' });
    // Before the last receive, the schedule; past it (ApproximateReceiveCount is approximate), at once too.
    expect(await retryOf(new Error('throttled'), 2, last)).toEqual({ seconds: schedule[1], kind: 'backoff' });
    expect(retryBackoffSeconds('liquidations', last + 1, last)).toBe(0);
    // A configured count below the schedule's length cuts it short.
    expect(retryBackoffSeconds('liquidations', 2, 2)).toBe(0);
    expect(retryBackoffSeconds('liquidations', 1, 2)).toBe(schedule[0]);
  });

  it("makes a record another delivery's lease holds wait for that lease, whatever its receive count", async () => {
    expect(await retryOf(new LiquidationBusyError('liquidation/busy: p1:0', 12_500), 1)).toEqual({
      seconds: 13,
      kind: 'wait',
    });
  });

  it('counts a failed record by its queue (Lambda counts no error when its batch partly succeeds), not a deferral', async () => {
    const clock = new ManualClock(1_000_000);
    const queue = new EmbeddedQueue({ name: 'auctionSteps', clock });
    await queue.send('m');
    const message = (await queue.receive(1, 361))[0]!;
    const record = runnerRecord(message, 'arn', identity, clock.nowMs());
    const telemetry = new RecordingTelemetry();
    await scheduleRetry('auctionSteps', queue, record, new Error('throttled'), undefined, telemetry);
    await scheduleRetry('liquidations', queue, record, new Error('throttled'), undefined, telemetry);
    await scheduleRetry('liquidations', queue, record, new Error('throttled'), undefined, telemetry);
    await scheduleRetry(
      'liquidations',
      queue,
      record,
      new LiquidationBusyError('liquidation/busy: p1:0', 1_000),
      undefined,
      telemetry,
    );
    expect(Object.fromEntries(telemetry.counts)).toEqual({
      [`${METRICS.RecordFailures.name}:auctionSteps`]: 1,
      [`${METRICS.RecordFailures.name}:liquidations`]: 2,
    });
  });

  it("counts a newer writer's record apart from failures (a rolling deploy must not page), on the same backoff", async () => {
    const clock = new ManualClock(1_000_000);
    const queue = new EmbeddedQueue({ name: 'liquidations', clock });
    await queue.send('m');
    const message = (await queue.receive(1, 361))[0]!;
    const record = runnerRecord(message, 'arn', identity, clock.nowMs());
    const telemetry = new RecordingTelemetry();
    const newer = new NewerWriterError('Liquidations', 'p1:0', RECORD_SCHEMA + 1);
    await scheduleRetry('liquidations', queue, record, newer, undefined, telemetry);
    expect(Object.fromEntries(telemetry.counts)).toEqual({
      [`${METRICS.NewerWriterRetries.name}:liquidations`]: 1,
    });
    // Not a deferral: its receives run out as any failure's do, so a rollback's records reach the DLQ (alarmed).
    expect(await retryOf(newer, 1)).toEqual({
      seconds: retryBackoffSeconds('liquidations', 1),
      kind: 'backoff',
    });
  });

  it('has no backoff for a receive count that is missing or not a count', () => {
    for (const count of [0, -1, Number.NaN, 1.5])
      expect(retryBackoffSeconds('liquidations', count)).toBeUndefined();
    expect(retryBackoffSeconds('tickDeadLetters', 1)).toBeUndefined();
    expect(retryBackoffSeconds('auctionSteps', 1)).toBe(retryBackoffSeconds('liquidations', 1));
  });
});

describe('maxReceivesFromEnv', () => {
  it("reads a queue's receive count from its variable, the topology's when unset, none without a DLQ", () => {
    const topology = QUEUES.find((q) => q.id === 'liquidations')?.deadLetter?.maxReceiveCount;
    expect(topology).toBeGreaterThan(1);
    expect(maxReceivesFromEnv('liquidations', {})).toBe(topology);
    expect(maxReceivesFromEnv('auctionSteps', { [maxReceivesEnv('auctionSteps')]: '3' })).toBe(3);
    expect(maxReceivesFromEnv('liquidations', { [maxReceivesEnv('auctionSteps')]: '3' })).toBe(topology);
    expect(maxReceivesFromEnv('tickDeadLetters', {})).toBeUndefined();
  });

  it('refuses a value that is not a whole number of receives, naming the variable', () => {
    for (const raw of ['0', '-2', '2.5', 'five'])
      expect(() => maxReceivesFromEnv('liquidations', { [maxReceivesEnv('liquidations')]: raw })).toThrow(
        new RegExp(`QUEUE_LIQUIDATIONS_MAX_RECEIVES must be a whole number.*"${raw}"`),
      );
  });
});

// Found by a review of the logs and alarms in session 26: a body that did not parse failed before the consumers'
// error path, so no line named it and each receive waited out the whole visibility timeout (30 minutes to the
// dead-letter alarm).
describe('readMessage', () => {
  const identity = { region: 'us-east-1', accountId: '000000000000' };

  it('logs a body that is no message with its id, and brings it back within a second to run out its receives', async () => {
    const clock = new ManualClock(1_000_000);
    const queue = new EmbeddedQueue({ name: 'liquidations', clock });
    await queue.send('{"liquidationId": 42}');
    const message = (await queue.receive(1, 361))[0]!;
    const record = runnerRecord(message, 'arn', identity, clock.nowMs());
    const error = vi.spyOn(logger, 'error').mockImplementation(() => {});
    const deferred = new Map<string, DeferralKind>();
    const telemetry = new RecordingTelemetry();
    try {
      await expect(
        recordingDeferrals(deferred, () =>
          readMessage('liquidations', queue, record, parseLiquidationMessage, telemetry),
        ),
      ).rejects.toBeInstanceOf(PoisonMessageError);
      // Counted as a failed record of its queue, which alarms (audit, session 36: it was not).
      expect(telemetry.counts.get(`${METRICS.RecordFailures.name}:liquidations`)).toBe(1);
      expect(error).toHaveBeenCalledWith(
        'message cannot be read; it goes to the dead-letter queue',
        expect.objectContaining({ messageId: record.messageId, receiveCount: '1' }),
      );
    } finally {
      error.mockRestore();
    }
    expect(deferred.get(message.receiptHandle)).toBe('backoff');
    expect(await queue.receive(1, 361)).toEqual([]);
    clock.advance(1_000);
    expect((await queue.receive(1, 361)).map((m) => m.body)).toEqual([message.body]);
  });

  it('reads a message of its queue', async () => {
    const clock = new ManualClock(1_000_000);
    const queue = new EmbeddedQueue({ name: 'liquidations', clock });
    await queue.send('{"liquidationId":"liq-1"}');
    const record = runnerRecord((await queue.receive(1, 361))[0]!, 'arn', identity, clock.nowMs());
    const telemetry = new RecordingTelemetry();
    expect(await readMessage('liquidations', queue, record, parseLiquidationMessage, telemetry)).toEqual({
      liquidationId: 'liq-1',
    });
    expect(telemetry.total(METRICS.RecordFailures.name)).toBe(0);
  });
});

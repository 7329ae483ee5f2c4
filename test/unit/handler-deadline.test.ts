import type { Context, SQSEvent } from 'aws-lambda';
import { expect, it, vi } from 'vitest';
import { createPipeline } from '../support/pipeline.ts';

/**
 * A consumer's invocation runs until its work ends or Lambda's own timeout ends it (and its environment). An audit of
 * the handlers in session 36 found middy's default early timeout answering a TimeoutError 5 ms before the deadline:
 * Lambda takes that for an invocation that ended with an error and keeps the environment, whose record work, never
 * stopped, resumes in its next invocation (a venue order placed after the order lease the work held had run out).
 * The function's wiring and the service are swapped for a stand-in whose work ends when the test says.
 */
const p = createPipeline();
const work: { release: () => void; done: string[] } = { release: () => {}, done: [] };
vi.mock('../../shared/lambda/wiring.ts', () => ({
  wiring: () => ({
    adapters: { ...p.adapters, clock: p.clock },
    config: p.config,
    settlement: {},
    maxReceives: {},
  }),
}));
vi.mock('../../shared/services/liquidation.ts', async (importOriginal) => ({
  ...(await importOriginal<object>()),
  processLiquidation: async (message: { liquidationId: string }) => {
    await new Promise<void>((resolve) => (work.release = resolve)); // a slow venue call
    work.done.push(message.liquidationId);
    return { liquidationId: message.liquidationId, state: 'SETTLED_MARKET' };
  },
}));

it('the liquidation consumer does not answer before its work ends, past the deadline too', async () => {
  const { handler } = await import('../../functions/liquidation-consumer/index.ts');
  await p.adapters.liquidationQueue.send(JSON.stringify({ liquidationId: 'p1:1' }));
  const [m] = await p.adapters.liquidationQueue.receive(1, 360);
  const event = {
    Records: [
      {
        messageId: m!.messageId,
        receiptHandle: m!.receiptHandle,
        body: m!.body,
        attributes: { ApproximateReceiveCount: '1' },
        messageAttributes: {},
        eventSource: 'aws:sqs',
      },
    ],
  } as unknown as SQSEvent;
  const context = {
    functionName: 'liquidation-consumer',
    awsRequestId: 'r1',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:liquidation-consumer',
    memoryLimitInMB: '1024',
    // At the deadline's edge: middy's early timeout (5 ms before it) would answer on its next timer.
    getRemainingTimeInMillis: () => 5,
  } as unknown as Context;
  let answer: string | undefined;
  // Timers under the test's control: the early timeout's would be due at once, before the 10 ms run below.
  vi.useFakeTimers();
  const invocation = handler(event, context).then(
    (response) => (answer = JSON.stringify(response)),
    (error: Error) => (answer = `error ${error.name}`),
  );
  await vi.advanceTimersByTimeAsync(10);
  vi.useRealTimers();
  expect(answer).toBeUndefined();
  expect(work.done).toEqual([]);
  work.release();
  await invocation;
  expect(work.done).toEqual(['p1:1']);
  expect(answer).toBe(JSON.stringify({ batchItemFailures: [] }));
});

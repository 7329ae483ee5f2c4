import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DEADLINE_WARNING_MS,
  log,
  logger,
  logIfTimingOut,
  MIDDY_OPTIONS,
  powertoolsTelemetry,
  publishMetrics,
  publishMetricsSoFar,
  withInvocationLogKeys,
  withRecordKeys,
} from '../../shared/lambda/runtime.ts';

describe('record keys on log lines', () => {
  afterEach(() => vi.restoreAllMocks());

  it("keeps each record's correlation id on its own lines while a batch's records interleave", async () => {
    const info = vi.spyOn(logger, 'info').mockImplementation(() => {});
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => {});
    const telemetry = powertoolsTelemetry();
    let releaseA = () => {};
    const aWaits = new Promise<void>((resolve) => {
      releaseA = resolve;
    });
    const a = withRecordKeys({ correlation_id: 'A', receiveCount: '1' }, async () => {
      log.info('a starts');
      await aWaits;
      telemetry.warn('a ends', { extra: 1 });
    });
    const b = withRecordKeys({ correlation_id: 'B' }, async () => {
      telemetry.info('b runs');
      releaseA();
    });
    await Promise.all([a, b]);
    log.info('outside');
    const lines = [...info.mock.calls, ...warn.mock.calls].map(([message, fields]) => [message, fields]);
    expect(lines).toEqual([
      ['a starts', { correlation_id: 'A', receiveCount: '1' }],
      ['b runs', { correlation_id: 'B' }],
      ['outside', {}],
      ['a ends', { correlation_id: 'A', receiveCount: '1', extra: 1 }],
    ]);
  });
});

/**
 * Noticed in session 25 (operator-flow): the local runner hosts every function in one process, and Powertools keeps
 * the Lambda context on the shared logger, so a line carried the name of whichever invocation started last.
 */
describe('invocation keys on log lines', () => {
  afterEach(() => vi.restoreAllMocks());

  it('names its own function and request on each line while two invocations interleave in one process', async () => {
    const sink = (logger as unknown as { console: Console }).console;
    const printed: string[] = [];
    for (const level of ['info', 'warn', 'error'] as const)
      vi.spyOn(sink, level).mockImplementation((line: string) => void printed.push(line));
    let releaseA = () => {};
    const aWaits = new Promise<void>((resolve) => {
      releaseA = resolve;
    });
    const handlerOf = (body: () => Promise<void>) =>
      withInvocationLogKeys(middy(body).use(injectLambdaContext(logger)));
    const context = (functionName: string, awsRequestId: string) =>
      ({
        functionName,
        awsRequestId,
        functionVersion: '$LATEST',
        invokedFunctionArn: `arn:aws:lambda:eu-west-1:000000000000:function:${functionName}`,
        memoryLimitInMB: '512',
      }) as Context;
    const a = handlerOf(async () => {
      log.info('a starts');
      await aWaits;
      powertoolsTelemetry().warn('a ends');
    })({}, context('margin-check', 'req-a'));
    const b = handlerOf(async () => {
      log.error('b runs');
      releaseA();
    })({}, context('auction', 'req-b'));
    await Promise.all([a, b]);
    const lines = printed
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .map(({ message, function_name, function_request_id, function_arn }) => [
        message,
        function_name,
        function_request_id,
        String(function_arn).split(':').at(-1),
      ]);
    // Before: 'a ends' said auction / req-b, the context b's invocation put on the logger.
    expect(lines).toEqual([
      ['a starts', 'margin-check', 'req-a', 'margin-check'],
      ['b runs', 'auction', 'req-b', 'auction'],
      ['a ends', 'margin-check', 'req-a', 'margin-check'],
    ]);
  });
});

// Found by a review of the observability contract in session 28: metrics were published at the end of the
// invocation only, so a batch that timed out lost the metrics of the records it had finished.
describe('publishing metrics as records finish', () => {
  afterEach(() => vi.restoreAllMocks());

  function emf() {
    const metrics = new Metrics({ namespace: 'Test', serviceName: 'test' });
    const sink = (metrics as unknown as { console: Console }).console;
    const printed = vi.spyOn(sink, 'log').mockImplementation(() => {});
    const warned = vi.spyOn(sink, 'warn').mockImplementation(() => {});
    return { metrics, printed, warned };
  }

  it('publishes what is stored at once, and nothing (without a warning) when nothing is', async () => {
    const { metrics, printed, warned } = emf();
    metrics.addMetric('RecordDone', MetricUnit.Count, 1);
    publishMetricsSoFar(metrics);
    expect(printed).toHaveBeenCalledTimes(1);
    expect(JSON.parse(String(printed.mock.calls[0]![0]))).toMatchObject({ RecordDone: 1 });
    publishMetricsSoFar(metrics);
    // The middleware at the end of the invocation: nothing left, nothing printed, no warning.
    await publishMetrics(metrics).after({});
    await publishMetrics(metrics).onError({});
    expect(printed).toHaveBeenCalledTimes(1);
    metrics.addMetric('Late', MetricUnit.Count, 2);
    await publishMetrics(metrics).onError({});
    expect(printed).toHaveBeenCalledTimes(2);
    expect(warned).not.toHaveBeenCalled();
  });

  // Review, session 36: with middy's early timeout off (MIDDY_OPTIONS), Lambda ends an invocation that runs out of
  // time with its stored metrics (a tick's TicksAccepted, a record's counts): they are published just before.
  it('publishes what is stored just before the deadline of an invocation still running; nothing once it ended', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const { metrics, printed } = emf();
      const context = { getRemainingTimeInMillis: () => 1_000 };
      const running = { context };
      const middleware = publishMetrics(metrics);
      await middleware.before(running);
      metrics.addMetric('TicksAccepted', MetricUnit.Count, 1);
      await vi.advanceTimersByTimeAsync(1_000 - DEADLINE_WARNING_MS - 1);
      expect(printed).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      expect(printed).toHaveBeenCalledTimes(1);
      expect(JSON.parse(String(printed.mock.calls[0]![0]))).toMatchObject({ TicksAccepted: 1 });
      // An invocation that ends in time publishes at its end, and its deadline's timer is gone.
      const ended = { context };
      await middleware.before(ended);
      metrics.addMetric('TicksAccepted', MetricUnit.Count, 1);
      await middleware.after(ended);
      expect(printed).toHaveBeenCalledTimes(2);
      metrics.addMetric('Later', MetricUnit.Count, 1);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(printed).toHaveBeenCalledTimes(2);
    } finally {
      vi.useRealTimers();
    }
  });
});

/**
 * Noticed in session 29: when an invocation times out, the handler's catch (which logs the tick it failed on) never
 * runs, and Lambda's own timeout line names no tick. Since session 36 middy never gives up early (MIDDY_OPTIONS: its
 * early TimeoutError let Lambda keep the environment with the work frozen in it, to resume in the next invocation):
 * the line is logged just before Lambda's deadline, and the invocation runs until Lambda ends it.
 */
describe('a line for the work an invocation times out on', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  const context = (remainingMs: number) =>
    ({
      functionName: 'margin-check',
      awsRequestId: 'req-timeout',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:margin-check',
      memoryLimitInMB: '1024',
      getRemainingTimeInMillis: () => remainingMs,
    }) as unknown as Context;

  it("logs the work's keys at ERROR, under its invocation's keys, near the deadline; nothing when it ends in time; middy never answers early", async () => {
    vi.useFakeTimers();
    const error = vi.spyOn(logger, 'error').mockImplementation(() => {});
    let release = () => {};
    const handler = withInvocationLogKeys(
      middy(async (event: { hang: boolean }, lambdaContext: Context) => {
        const stop = logIfTimingOut(lambdaContext, 'tick timed out', { symbol: 'ETH-USD', sequence: 7 });
        try {
          if (event.hang) await new Promise<void>((resolve) => (release = resolve));
          return 'done';
        } finally {
          stop();
        }
      }, MIDDY_OPTIONS),
    );
    await expect(handler({ hang: false }, context(60_000))).resolves.toBe('done');
    await vi.advanceTimersByTimeAsync(120_000);
    expect(error).not.toHaveBeenCalled();

    let settled: string | undefined;
    const hung = handler({ hang: true }, context(1_000)).then(
      (value) => (settled = `resolved ${value}`),
      (e: Error) => (settled = `rejected ${e.name}`),
    );
    await vi.advanceTimersByTimeAsync(1_000 - DEADLINE_WARNING_MS - 1);
    expect(error).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(error.mock.calls).toEqual([
      [
        'tick timed out',
        expect.objectContaining({
          function_name: 'margin-check',
          function_request_id: 'req-timeout',
          symbol: 'ETH-USD',
          sequence: 7,
        }),
      ],
    ]);
    // Past the deadline, middy has not answered for it (Lambda ends the invocation, and the environment with it).
    await vi.advanceTimersByTimeAsync(60_000);
    expect(settled).toBeUndefined();
    release();
    await hung;
    expect(settled).toBe('resolved done');
    expect(error).toHaveBeenCalledTimes(1);
  });
});

import { describe, expect, it } from 'vitest';
import { createEmbeddedAdapters, EmbeddedQueue, ManualClock } from '../../shared/adapters/embedded/index.ts';
import { METRICS } from '../../shared/metrics.ts';
import type { QueueTransport } from '../../shared/ports/index.ts';
import { type DeadLetterQueues, gaugeDeadLetters } from '../../shared/services/dead-letter-gauge.ts';
import { deadLetteredQueues, FUNCTIONS } from '../../shared/topology.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';

/**
 * Nothing called the dead-letter queues, and SQS reports a queue's metrics only while it is active: the dead-letter
 * alarms, reading SQS's count alone, could clear and never age while letters waited to expire. liquidation-watch
 * reports what each holds (DeadLetters) every run (dlq45-depth-gauge).
 */

function stage() {
  const clock = new ManualClock(1_000_000);
  const adapters = createEmbeddedAdapters({ clock });
  const tickDeadLetters = new EmbeddedQueue({ name: 'tickDeadLetters', clock });
  const queues = {
    liquidations: adapters.liquidationDeadLetters,
    auctionSteps: adapters.auctionDeadLetters,
    tickDeadLetters,
  } satisfies DeadLetterQueues;
  return { clock, adapters, tickDeadLetters, queues };
}

/** Receives `queue`'s message until its redrive moves it to its dead-letter queue (each receive failed). */
async function deadLetter(queue: QueueTransport, receives: number): Promise<void> {
  for (let i = 0; i <= receives; i += 1) await queue.receive(10, 0);
}

const gauges = (t: RecordingTelemetry) =>
  Object.fromEntries(
    t.observations
      .filter((o) => o.metric === METRICS.DeadLetters.name)
      .map((o) => [o.dimensions?.Queue, o.value] as const),
  );

describe('gaugeDeadLetters: what each dead-letter queue holds, every run (dlq45-depth-gauge)', () => {
  it('reports each queue, empty ones as 0, by the id of the queue whose dead letters it keeps', async () => {
    const { queues } = stage();
    const telemetry = new RecordingTelemetry();
    expect(await gaugeDeadLetters(queues, telemetry)).toEqual({
      held: { liquidations: 0, auctionSteps: 0, tickDeadLetters: 0 },
      unread: [],
    });
    expect(gauges(telemetry)).toEqual({ liquidations: 0, auctionSteps: 0, tickDeadLetters: 0 });
    expect(telemetry.total(METRICS.DeadLetterReadFailures.name)).toBe(0);
    // The queues the topology keeps dead letters for, each once.
    expect(Object.keys(queues).sort()).toEqual(
      deadLetteredQueues()
        .map((q) => q.id)
        .sort(),
    );
  });

  it('counts the letters a redrive moved, those a listing holds out of sight and a delayed one', async () => {
    const { adapters, queues, tickDeadLetters } = stage();
    // Two liquidation messages that failed every receive, moved by the queue's redrive.
    await adapters.liquidationQueue.send('{"liquidationId":"a"}');
    await adapters.liquidationQueue.send('{"liquidationId":"b"}');
    await deadLetter(adapters.liquidationQueue, 5);
    expect((await adapters.liquidationDeadLetters.depth()).visible).toBe(2);
    // A `dlq list` holds what it shows out of sight (in flight): still held.
    await adapters.liquidationDeadLetters.receive(1, 30);
    expect(await adapters.liquidationDeadLetters.depth()).toEqual({ visible: 1, inFlight: 1, delayed: 0 });
    await tickDeadLetters.send('{"detail":{}}', 60);
    const telemetry = new RecordingTelemetry();
    const report = await gaugeDeadLetters(queues, telemetry);
    expect(report.held).toEqual({ liquidations: 2, auctionSteps: 0, tickDeadLetters: 1 });
    expect(gauges(telemetry)).toEqual(report.held);
    // A gauge: one data point per queue and run, by Queue alone.
    expect(telemetry.observations.map((o) => Object.keys(o.dimensions ?? {}))).toEqual([
      ['Queue'],
      ['Queue'],
      ['Queue'],
    ]);
  });

  it('counts and logs a queue it cannot read, never throws, and still reports the others', async () => {
    const { queues } = stage();
    const broken = {
      ...queues,
      auctionSteps: {
        depth: () => Promise.reject(new Error('AccessDenied: sqs:GetQueueAttributes')),
      },
    } satisfies DeadLetterQueues;
    const telemetry = new RecordingTelemetry();
    const report = await gaugeDeadLetters(broken, telemetry);
    expect(report).toEqual({ held: { liquidations: 0, tickDeadLetters: 0 }, unread: ['auctionSteps'] });
    expect(gauges(telemetry)).toEqual({ liquidations: 0, tickDeadLetters: 0 });
    expect(telemetry.total(METRICS.DeadLetterReadFailures.name)).toBe(1);
    expect(telemetry.warnings).toEqual([
      'dead-letter queue not read: its DeadLetters is not reported this run',
    ]);
  });

  it('is read by liquidation-watch, whose grant covers every queue that keeps dead letters', () => {
    const watch = FUNCTIONS.find((f) => f.id === 'liquidationWatch')!;
    expect(
      watch.grants
        .filter((g) => g.access === 'depth')
        .map((g) => g.deadLetters)
        .sort(),
    ).toEqual(
      deadLetteredQueues()
        .map((q) => q.id)
        .sort(),
    );
    // And no other function's.
    expect(FUNCTIONS.filter((f) => f.grants.some((g) => g.access === 'depth')).map((f) => f.id)).toEqual([
      'liquidationWatch',
    ]);
  });
});

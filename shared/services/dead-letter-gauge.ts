import { METRICS } from '../metrics.ts';
import type { QueueTransport, Telemetry } from '../ports/index.ts';
import type { QueueId } from '../topology.ts';

/** The queue that keeps each queue's dead letters (its dead-letter queue, or a sink itself), by that queue's id. */
export type DeadLetterQueues = Readonly<Partial<Record<QueueId, Pick<QueueTransport, 'depth'>>>>;

export interface DeadLetterGauge {
  /** What each queue read holds: visible, in flight and delayed. */
  readonly held: Readonly<Partial<Record<QueueId, number>>>;
  /** The queues whose read failed: no DeadLetters for them this run. */
  readonly unread: readonly QueueId[];
}

/**
 * Reports what each dead-letter queue holds as `DeadLetters` (a gauge by Queue, 0 when empty), which the dead-letter
 * depth alarms read beside SQS's own count and the aging alarms alone: SQS reports a queue's metrics only while it is active ("for up to six hours if
 * it contains any messages or if any action accesses it"), and whether a queue that holds messages but that nothing
 * calls stays active no page of AWS's settles; without this, nothing calls the dead-letter queues, and a depth page
 * could clear and the aging page never come while the letters wait to expire (dlq45-depth-gauge). The read is itself
 * an action on the queue. In flight and delayed count too: a `dlq list` hides what it shows for 30 s. A queue that
 * cannot be read is counted (`DeadLetterReadFailures`, alarmed) and logged, and the others still reported: never
 * thrown, so the watch's other work runs whatever this finds.
 */
export async function gaugeDeadLetters(
  queues: DeadLetterQueues,
  telemetry: Telemetry,
): Promise<DeadLetterGauge> {
  const held: Partial<Record<QueueId, number>> = {};
  const unread: QueueId[] = [];
  const entries = Object.entries(queues) as [QueueId, Pick<QueueTransport, 'depth'>][];
  await Promise.all(
    entries.map(async ([queue, transport]) => {
      try {
        const { visible, inFlight, delayed } = await transport.depth();
        const count = visible + inFlight + delayed;
        held[queue] = count;
        telemetry.observe(METRICS.DeadLetters.name, count, { Queue: queue });
      } catch (error) {
        unread.push(queue);
        telemetry.count(METRICS.DeadLetterReadFailures.name);
        telemetry.warn('dead-letter queue not read: its DeadLetters is not reported this run', {
          queue,
          error: String(error),
        });
      }
    }),
  );
  return { held, unread: unread.sort() };
}

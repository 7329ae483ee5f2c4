import type { ResourceNames } from '../../shared/adapters/aws/resources.ts';
import { QUEUES, TABLES } from '../../shared/topology.ts';

/**
 * Made-up names of every table, queue (a queue's dead-letter queue too: `http://local/<queue>-dlq`) and the bus, for
 * the local stack's function environment (shared/local/stack.ts `functionEnvironment`) without an emulator.
 */
export const fakeResourceNames = (): ResourceNames => ({
  tables: Object.fromEntries(TABLES.map((t) => [t.id, `local-${t.id}`])) as ResourceNames['tables'],
  queues: Object.fromEntries(
    QUEUES.map((q) => [
      q.id,
      {
        url: `http://local/${q.id}`,
        arn: `arn:local:${q.id}`,
        ...(q.deadLetter ? { dlqUrl: `http://local/${q.id}-dlq`, dlqArn: `arn:local:${q.id}-dlq` } : {}),
      },
    ]),
  ) as ResourceNames['queues'],
  busName: 'backstop-local-ticks',
  tickQueueUrl: 'http://local/tick-local',
  tickQueueArn: 'arn:local:tick-local',
});

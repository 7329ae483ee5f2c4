import { afterEach, expect, it } from 'vitest';
import type { ResourceNames } from '../../shared/adapters/aws/resources.ts';
import { DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import { resetWiring, wiring } from '../../shared/lambda/wiring.ts';
import { functionEnvironment } from '../../shared/local/stack.ts';
import { deadLetteredQueues, deadLetterQueueEnv, QUEUES, TABLES } from '../../shared/topology.ts';

// Found reviewing dlq45-depth-gauge in session 45: every function's cold start read the dead-letter queues' URLs,
// which liquidation-watch alone uses, so every function's environment had to carry them (some 300 bytes of 4 KB
// each) and any function meeting an environment without them failed its cold start (review45-dlq-watch-env).

const names = {
  tables: Object.fromEntries(TABLES.map((t) => [t.id, `t-${t.id}`])),
  queues: Object.fromEntries(
    QUEUES.map((q) => [
      q.id,
      {
        url: `http://local/${q.id}`,
        arn: `arn:${q.id}`,
        ...(q.deadLetter ? { dlqUrl: `http://local/${q.id}-dlq`, dlqArn: `arn:${q.id}-dlq` } : {}),
      },
    ]),
  ),
  busName: 'bus',
  tickQueueUrl: 'http://local/ticks',
  tickQueueArn: 'arn:ticks',
} as unknown as ResourceNames;

const environment = () =>
  functionEnvironment('dev', names, 'http://localhost:5000', 'us-east-1', {
    riskConfig: DEFAULT_RISK_CONFIG_INPUT,
  });

afterEach(() => resetWiring());

it("builds a function's wiring without the dead-letter queues' URLs, which only liquidation-watch's read needs", () => {
  const env = environment();
  // The work queues' dead-letter queues: the tick sink's URL is its own queue's, which every function has.
  const own = deadLetteredQueues()
    .filter((q) => q.deadLetter)
    .map((q) => deadLetterQueueEnv(q.id));
  expect(own).toEqual(['QUEUE_LIQUIDATIONS_DLQ_URL', 'QUEUE_AUCTION_STEPS_DLQ_URL']);
  for (const name of own) delete env[name];
  const built = wiring(env);
  expect(built.adapters).toBeDefined();
  // liquidation-watch's read still needs them, and says which is missing.
  expect(() => built.deadLetters()).toThrow(/QUEUE_LIQUIDATIONS_DLQ_URL/);
});

it("gives liquidation-watch the queue keeping each queue's dead letters, once per container", () => {
  const built = wiring(environment());
  const queues = built.deadLetters();
  expect(Object.keys(queues).sort()).toEqual(
    deadLetteredQueues()
      .map((q) => q.id)
      .sort(),
  );
  expect(built.deadLetters()).toBe(queues);
});

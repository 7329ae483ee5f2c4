import { afterEach, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import { resetWiring, wiring } from '../../shared/lambda/wiring.ts';
import { functionEnvironment } from '../../shared/local/stack.ts';
import { METRICS } from '../../shared/metrics.ts';
import { gaugeDeadLetters } from '../../shared/services/dead-letter-gauge.ts';
import { deadLetteredQueues, deadLetterQueueEnv } from '../../shared/topology.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';
import { fakeResourceNames } from '../support/resource-names.ts';

// Found reviewing dlq45-depth-gauge in session 45: every function's cold start read the dead-letter queues' URLs,
// which liquidation-watch alone uses, so every function's environment had to carry them (some 300 bytes of 4 KB
// each) and any function meeting an environment without them failed its cold start (review45-dlq-watch-env).

const names = fakeResourceNames();

const environment = () =>
  functionEnvironment('dev', names, 'http://localhost:5000', 'us-east-1', {
    riskConfig: DEFAULT_RISK_CONFIG_INPUT,
  });

afterEach(() => resetWiring());

it("builds a function's wiring without the dead-letter queues' URLs, which only liquidation-watch's read needs", async () => {
  const env = environment();
  // The work queues' dead-letter queues: the tick sink's URL is its own queue's, which every function has.
  const own = deadLetteredQueues()
    .filter((q) => q.deadLetter)
    .map((q) => deadLetterQueueEnv(q.id));
  expect(own).toEqual(['QUEUE_LIQUIDATIONS_DLQ_URL', 'QUEUE_AUCTION_STEPS_DLQ_URL']);
  for (const name of own) delete env[name];
  const built = wiring(env);
  expect(built.adapters).toBeDefined();
  // liquidation-watch's read of each still needs its URL, and says which is missing.
  const queues = built.deadLetters();
  await expect(queues.liquidations!.depth()).rejects.toThrow(/QUEUE_LIQUIDATIONS_DLQ_URL/);
  await expect(queues.auctionSteps!.depth()).rejects.toThrow(/QUEUE_AUCTION_STEPS_DLQ_URL/);
});

// Found in session 45's final re-read: the watch's first call of deadLetters() threw on a missing URL, and with it
// the whole run (no overdue report, no stalled step sent again), where the gauge's design is that a queue it cannot
// read is counted and logged, and the run goes on: the deploy's moment when the watch's new code meets its previous
// environment (docs/DEPLOY.md, session 40's upgrade) (final45-watch-dlq-env).
it('counts a dead-letter queue whose URL is missing as unread, the rest of the run going on', async () => {
  const env = environment();
  delete env[deadLetterQueueEnv('liquidations')];
  delete env[deadLetterQueueEnv('auctionSteps')];
  const { liquidations, auctionSteps } = wiring(env).deadLetters();
  const telemetry = new RecordingTelemetry();
  expect(await gaugeDeadLetters({ liquidations, auctionSteps }, telemetry)).toEqual({
    held: {},
    unread: ['auctionSteps', 'liquidations'],
  });
  expect(telemetry.total(METRICS.DeadLetterReadFailures.name)).toBe(2);
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

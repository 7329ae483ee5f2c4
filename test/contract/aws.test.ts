import { afterAll, beforeAll } from 'vitest';
import {
  type AwsClients,
  createAwsAdapters,
  createAwsClients,
  createAwsQueueTransports,
  createLocalResources,
  localClientConfig,
  type ResourceNames,
} from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';
import { contractSuite } from './suite.ts';

/**
 * The AWS adapters against moto (real DynamoDB and SQS APIs, real time). Each test gets its own stage
 * (fresh tables and queues, created while the previous test runs), so tests never see each other's data.
 */

let moto: MotoServer | undefined;
let clients: AwsClients | undefined;
let stages = 0;
/** The next test's stage, created while the current test runs. */
let nextStage: Promise<ResourceNames> | undefined;

const prepareStage = (c: AwsClients): Promise<ResourceNames> => {
  const stage = createLocalResources(c, `contract${stages++}`);
  stage.catch(() => undefined);
  return stage;
};

beforeAll(async () => {
  moto = await startMoto();
  clients = createAwsClients(localClientConfig(moto.endpoint));
});

afterAll(async () => {
  await nextStage?.catch(() => undefined);
  clients?.destroy();
  await moto?.stop();
});

contractSuite(
  'aws (moto)',
  async ({ crashHook }) => {
    if (!clients) throw new Error('moto did not start');
    const names = await (nextStage ?? prepareStage(clients));
    nextStage = prepareStage(clients);
    const adapters = createAwsAdapters({
      clients,
      names,
      clock: systemClock,
      ...(crashHook ? { crashHook } : {}),
    });
    const queues = createAwsQueueTransports(clients, names);
    const { liquidations, auctionSteps } = queues.deadLetters;
    if (!liquidations || !auctionSteps) throw new Error('work queues without dead-letter queues');
    return {
      adapters,
      transactor: adapters.transactor,
      deadLetters: { liquidations, auctionSteps },
      advance: () => {},
      close: async () => {},
    };
  },
  // Each property run costs tens of API calls; SQS time is real, so waits poll up to 5 s.
  { propertyRuns: 25, eventuallyMs: 5_000 },
);

import { afterAll, beforeAll } from 'vitest';
import {
  type AwsAdapters,
  type AwsClients,
  createAwsAdapters,
  createAwsClients,
  createLocalResources,
  localClientConfig,
} from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { type MotoServer, startMoto } from '../../shared/local/moto.ts';

/**
 * A moto server per test file: `const moto = await startMoto()` in beforeAll, `await moto.stop()` in afterAll.
 * The implementation is shared with `backstop local up` (shared/local/moto.ts).
 */
export { MotoNotInstalledError, type MotoServer, startMoto } from '../../shared/local/moto.ts';

/** One stage's resources on the file's emulator, and the real adapters over them. */
export interface MotoStage {
  readonly clients: AwsClients;
  readonly names: Awaited<ReturnType<typeof createLocalResources>>;
  readonly adapters: AwsAdapters;
}

/**
 * Starts a moto server for the test file (its beforeAll and afterAll) and returns what makes a fresh stage on it,
 * named `prefix` and a number: each test gets tables and queues of its own.
 */
export function motoStages(prefix: string): {
  readonly stage: () => Promise<MotoStage>;
  readonly endpoint: () => string;
} {
  let moto: MotoServer | undefined;
  let count = 0;
  beforeAll(async () => {
    moto = await startMoto();
  });
  afterAll(async () => {
    await moto?.stop();
  });
  const endpoint = (): string => {
    if (!moto) throw new Error('motoStages: the emulator starts in beforeAll; ask for a stage inside a test');
    return moto.endpoint;
  };
  return {
    endpoint,
    stage: async () => {
      const clients = createAwsClients(localClientConfig(endpoint()));
      const names = await createLocalResources(clients, `${prefix}${count++}`);
      return { clients, names, adapters: createAwsAdapters({ clients, names, clock: systemClock }) };
    },
  };
}

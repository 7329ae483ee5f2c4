import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { errorText } from '../../error-text.ts';
import { VenueError } from '../../ports/index.ts';
import { VENUE_KEY_ENV } from '../../topology.ts';
import { type AwsClientConfig, clientConfigFromEnv, clientOptions, withTimeouts } from '../aws/clients.ts';

/**
 * The venue's API key, as an exchange adapter reads it (docs/VENUE.md, "The secret"): from the Secrets Manager secret
 * VENUE_KEY_ENV names (the stack's backstop:venueSecret, granted to liquidation-consumer and auction alone), at the
 * adapter's first call, never when it is built (every function builds the venue; four never trade nor may read it).
 */
export interface VenueKey {
  /**
   * The secret's string (an adapter parses its JSON): read once per container and kept; a read that fails is not
   * kept (the next call reads again) and throws VenueError('unavailable'), counted and alarmed as a venue failure.
   */
  get(): Promise<string>;
  /**
   * The key again after the exchange refused `refused` (rotated since it was read): read anew once, however many
   * calls were refused it at once; a read made since answers at once.
   */
  refresh(refused: string): Promise<string>;
}

let instrument: ((client: SecretsManagerClient) => void) | undefined;

/**
 * Tests: called with each key reader's Secrets Manager client when it is built (the emulator runs' IAM check sees its
 * calls: test/support/grants.ts), as instrumentAwsClients is with the wiring's clients.
 */
export function instrumentVenueKeyClients(hook: ((client: SecretsManagerClient) => void) | undefined): void {
  instrument = hook;
}

/** A read gets this many attempts (each 5 s at most on AWS): about 10 s, one venue call's share (docs/VENUE.md). */
const READ_ATTEMPTS = 2;

/**
 * The key of the secret `env[VENUE_KEY_ENV]` names. Builds nothing and reads nothing until the first get(): a missing
 * variable or region then fails that call (as VenueError('unavailable')), not the container's start. `clientConfig`:
 * the client's settings (an emulator's, in tests); by default the function's (clientConfigFromEnv). A secret named
 * by ARN is read in the ARN's region.
 */
export function secretsManagerVenueKey(
  env: NodeJS.ProcessEnv,
  clientConfig?: () => AwsClientConfig,
): VenueKey {
  let client: SecretsManagerClient | undefined;
  let held: Promise<string> | undefined;

  const fetchKey = async (): Promise<string> => {
    const secretId = env[VENUE_KEY_ENV];
    if (!secretId)
      throw new Error(`${VENUE_KEY_ENV} is not set (deployed without backstop:venueSecret: docs/DEPLOY.md)`);
    if (!client) {
      const config = clientConfig?.() ?? clientConfigFromEnv(env);
      const region = /^arn:[^:]+:secretsmanager:([^:]+):/.exec(secretId)?.[1] ?? config.region;
      const secretConfig = { ...config, region, maxAttempts: READ_ATTEMPTS };
      client = withTimeouts(new SecretsManagerClient(clientOptions(secretConfig)), secretConfig);
      instrument?.(client);
    }
    const answer = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    if (answer.SecretString === undefined) throw new Error(`${secretId} holds no string (a binary secret)`);
    return answer.SecretString;
  };

  const read = (): Promise<string> => {
    const reading: Promise<string> = fetchKey().catch((error: unknown) => {
      // Not kept: the next call reads again. The message names the secret and the cause, never a value.
      if (held === reading) held = undefined;
      throw new VenueError(
        `venue/unavailable: the venue's key could not be read: ${errorText(error)}`,
        'unavailable',
      );
    });
    held = reading;
    return reading;
  };

  return {
    get: () => held ?? read(),
    refresh: async (refused) => {
      const before = held;
      const current = await before?.catch(() => undefined);
      // Another call read it again since `refused` was read: that read answers.
      if (current !== undefined && current !== refused) return current;
      if (held === before) held = undefined;
      return held ?? read();
    },
  };
}

/**
 * A key given as it is, never read from anywhere: a contract test's stub of the exchange, or a testnet's key from a
 * file (docs/VENUE.md, "Testing it"). The adapter reads it as it reads secretsManagerVenueKey's.
 */
export const fixedVenueKey = (secret: string): VenueKey => ({
  get: async () => secret,
  refresh: async () => secret,
});

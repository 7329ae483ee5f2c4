import { createServer, request, type Server } from 'node:http';
import {
  CreateSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientOptions, localClientConfig } from '../../shared/adapters/aws/clients.ts';
import { secretsManagerVenueKey } from '../../shared/adapters/venue/key.ts';
import { MOTO_HOST } from '../../shared/local/moto.ts';
import { startLocalStack } from '../../shared/local/stack.ts';
import { VenueError } from '../../shared/ports/index.ts';
import { localVenueSecretName, VENUE_KEY_ENV } from '../../shared/topology.ts';
import { motoStages } from '../support/moto.ts';

/**
 * The reader an exchange adapter takes its API key with (docs/VENUE.md, "The secret"), with the real AWS SDK against
 * moto's Secrets Manager: read at the first call and kept, a failed read thrown as VenueError('unavailable') and not
 * kept, read again once after the exchange refuses the key. Reads are counted by a proxy in front of moto.
 */

const moto = motoStages('venuekey');

/** A proxy to moto counting GetSecretValue requests (what the adapter's container would send Secrets Manager). */
let proxy: Server;
let proxyEndpoint: string;
let reads = 0;
beforeAll(async () => {
  const target = new URL(moto.endpoint());
  proxy = createServer((req, res) => {
    if (req.headers['x-amz-target'] === 'secretsmanager.GetSecretValue') reads += 1;
    const forward = request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, MOTO_HOST, resolve));
  const address = proxy.address() as { port: number };
  proxyEndpoint = `http://${MOTO_HOST}:${address.port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => proxy?.close(() => resolve()));
});

let count = 0;
/** A secret of its own on moto, in `region`; its ARN and a client to change it. */
async function secret(value: string, region = 'us-east-1') {
  const client = new SecretsManagerClient(clientOptions(localClientConfig(moto.endpoint(), region)));
  const name = `backstop/venue-key-${count++}`;
  const created = await client.send(new CreateSecretCommand({ Name: name, SecretString: value }));
  return { name, arn: created.ARN!, client };
}

/** The reader as a trader's container builds it, on the proxy (the function's region: us-east-1). */
const keyOf = (secretId: string | undefined) =>
  secretsManagerVenueKey(secretId === undefined ? {} : { [VENUE_KEY_ENV]: secretId }, () =>
    localClientConfig(proxyEndpoint),
  );

async function unavailable(read: Promise<unknown>): Promise<VenueError> {
  const error = await read.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VenueError);
  expect((error as VenueError).kind).toBe('unavailable');
  return error as VenueError;
}

describe('the venue key reader (Secrets Manager, real SDK, moto)', () => {
  it('reads nothing when built, reads at the first call, once for concurrent calls, and keeps it', async () => {
    const { arn, client } = await secret('{"apiKey":"k1","apiSecret":"s1"}');
    const start = reads;
    const key = keyOf(arn);
    expect(reads).toBe(start);
    const first = await Promise.all(Array.from({ length: 10 }, () => key.get()));
    expect(first).toEqual(Array(10).fill('{"apiKey":"k1","apiSecret":"s1"}'));
    expect(reads - start).toBe(1);
    // Rotated on Secrets Manager: the container keeps what it read until the exchange refuses it.
    await client.send(new PutSecretValueCommand({ SecretId: arn, SecretString: 'rotated' }));
    expect(await key.get()).toBe('{"apiKey":"k1","apiSecret":"s1"}');
    expect(reads - start).toBe(1);
  });

  it('reads a secret by name, and one named by ARN in its own region', async () => {
    const byName = await secret('by name');
    expect(await keyOf(byName.name).get()).toBe('by name');
    const elsewhere = await secret('in eu-west-1', 'eu-west-1');
    expect(elsewhere.arn).toContain(':eu-west-1:');
    expect(await keyOf(elsewhere.arn).get()).toBe('in eu-west-1');
  });

  it('a failed read is a VenueError unavailable, not kept: the next call reads again', async () => {
    const name = `backstop/venue-key-${count++}`;
    const key = keyOf(name);
    const error = await unavailable(key.get());
    expect(error.message).toMatch(/venue\/unavailable: the venue's key could not be read: ResourceNotFound/);
    const client = new SecretsManagerClient(clientOptions(localClientConfig(moto.endpoint())));
    await client.send(new CreateSecretCommand({ Name: name, SecretString: 'now there' }));
    expect(await key.get()).toBe('now there');
  });

  it('a trader deployed without the setting fails its first call, not its start', async () => {
    const key = secretsManagerVenueKey({});
    const error = await unavailable(key.get());
    expect(error.message).toContain(`${VENUE_KEY_ENV} is not set`);
    // No region either (the reader builds its client at the first read): a venue failure too.
    await unavailable(secretsManagerVenueKey({ [VENUE_KEY_ENV]: 'backstop/venue-key' }).get());
  });

  it('a binary secret is no key', async () => {
    const client = new SecretsManagerClient(clientOptions(localClientConfig(moto.endpoint())));
    const name = `backstop/venue-key-${count++}`;
    await client.send(new CreateSecretCommand({ Name: name, SecretBinary: new Uint8Array([1, 2, 3]) }));
    expect((await unavailable(keyOf(name).get())).message).toContain('holds no string');
  });

  it('after the exchange refuses the key, reads it again once, however many calls were refused', async () => {
    const { arn, client } = await secret('old');
    const key = keyOf(arn);
    expect(await key.get()).toBe('old');
    await client.send(new PutSecretValueCommand({ SecretId: arn, SecretString: 'new' }));
    const start = reads;
    const again = await Promise.all(Array.from({ length: 5 }, () => key.refresh('old')));
    expect(again).toEqual(Array(5).fill('new'));
    expect(reads - start).toBe(1);
    // A call refused with the old key after the re-read takes the new one without reading.
    expect(await key.refresh('old')).toBe('new');
    expect(await key.get()).toBe('new');
    expect(reads - start).toBe(1);
    // The new key refused too (rotated again): read again.
    await client.send(new PutSecretValueCommand({ SecretId: arn, SecretString: 'newer' }));
    expect(await key.refresh('new')).toBe('newer');
    expect(reads - start).toBe(2);
  });
});

// venue47-local-key: `backstop local up` never set VENUE_KEY_ID, so an exchange adapter run on the local stack (against
// its stub or testnet) failed its key's first read, and every order with it.
describe("a local stack given the venue's key", () => {
  it('stores it in the emulator and names it in VENUE_KEY_ID, where the reader a trader builds finds it', async () => {
    const stage = 'venuelocal';
    const up = async (venueKey?: string) => {
      const stack = await startLocalStack({
        endpoint: moto.endpoint(),
        stage,
        ...(venueKey === undefined ? {} : { venueKey }),
      });
      try {
        // As the wiring builds an adapter's reader: from the function's own environment, on the emulator.
        const id = process.env[VENUE_KEY_ENV];
        expect(stack.env[VENUE_KEY_ENV]).toBe(id);
        return { id, key: id === undefined ? undefined : await secretsManagerVenueKey(process.env).get() };
      } finally {
        await stack.stop();
      }
    };
    expect(await up('{"apiKey":"local","apiSecret":"s1"}')).toEqual({
      id: localVenueSecretName(stage),
      key: '{"apiKey":"local","apiSecret":"s1"}',
    });
    // The stage again on the same emulator: the new key over the one it kept.
    expect(await up('{"apiKey":"local","apiSecret":"s2"}')).toEqual({
      id: localVenueSecretName(stage),
      key: '{"apiKey":"local","apiSecret":"s2"}',
    });
    // Without one, no function is told of a key (the last stack's variable does not outlive it).
    expect(await up()).toEqual({ id: undefined, key: undefined });
  }, 120_000);
});

import { createServer, type Server, type Socket } from 'node:net';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AWS_TIMEOUTS,
  clientConfigFromEnv,
  createAwsClients,
  EMULATOR_TIMEOUTS,
} from '../../shared/adapters/aws/clients.ts';

/** A server that accepts connections and never answers: a stalled socket. */
async function silentServer(): Promise<{ readonly endpoint: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('AWS clients', () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  it('fail an attempt that takes longer than the request timeout (retried, then the error)', async () => {
    const server = await silentServer();
    const clients = createAwsClients({
      region: 'us-east-1',
      endpoint: server.endpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 2,
      timeouts: { connectionMs: 1_000, requestMs: 100 },
    });
    cleanup = async () => {
      clients.destroy();
      await server.close();
    };
    const call = clients.dynamo.send(
      new GetItemCommand({ TableName: 't', Key: { pk: { S: 'x' } }, ConsistentRead: true }),
    );
    await expect(call).rejects.toMatchObject({ name: 'TimeoutError' });
    // The SDK retried the timed-out attempt as a transient fault.
    expect(clients.counter.attemptsSnapshot()).toEqual({ 'dynamodb.GetItem': 2 });
  });

  it('from the Lambda environment: tight timeouts on AWS, patient ones on an emulator', () => {
    expect(clientConfigFromEnv({ AWS_REGION: 'eu-west-1' })).toEqual({
      region: 'eu-west-1',
      timeouts: AWS_TIMEOUTS,
    });
    expect(
      clientConfigFromEnv({ AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: 'http://127.0.0.1:5000' }),
    ).toEqual({ region: 'us-east-1', endpoint: 'http://127.0.0.1:5000', timeouts: EMULATOR_TIMEOUTS });
    expect(() => clientConfigFromEnv({})).toThrow(/AWS_REGION/);
  });
});

import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperatorInputError } from '../../cli/ops/common.ts';
import { callerOf } from '../../cli/ops/seed.ts';
import { createAwsClients } from '../../shared/adapters/aws/clients.ts';
import type { Deployment } from '../../shared/local/deployment.ts';

// STS unreachable: a port that accepts nothing (a server opened and closed again, so no one listens on it).
let deadEndpoint = '';
beforeAll(async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  deadEndpoint = `http://127.0.0.1:${port}`;
});

const clients = () =>
  createAwsClients({
    region: 'us-east-1',
    endpoint: deadEndpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
const opened: ReturnType<typeof clients>[] = [];
afterAll(() => {
  for (const c of opened) c.destroy();
});
const deploymentWithoutSts = (): Deployment => {
  const c = clients();
  opened.push(c);
  return { clients: c } as unknown as Deployment;
};

const captured = () => {
  const written: string[] = [];
  return {
    io: { stdout: { write: () => true }, stderr: { write: (t: string) => written.push(t) } },
    text: () => written.join(''),
  };
};

describe('the caller journaled with a fund movement, when STS cannot say who it is', () => {
  it('refuses a withdrawal before anything moves', async () => {
    const { io } = captured();
    const refused = callerOf(deploymentWithoutSts(), 'withdraw', io as never);
    await expect(refused).rejects.toBeInstanceOf(OperatorInputError);
    await expect(refused).rejects.toThrow(
      /fund withdraw refused: the caller could not be identified for the journal .*nothing moved/,
    );
  });

  it('lets a deposit go on unnamed when --operator declares who asks, and says so', async () => {
    const { io, text } = captured();
    expect(await callerOf(deploymentWithoutSts(), 'deposit', io as never, 'jane')).toBeUndefined();
    expect(text()).toMatch(
      /the caller could not be identified .*the deposit is journaled without it, its operator as --operator declares/,
    );
  });

  // admin51-declared-operator: every deposit declares who asks; with no caller and no --operator there is nobody to.
  it('refuses a deposit before anything moves when no --operator declares who asks', async () => {
    const { io, text } = captured();
    const refused = callerOf(deploymentWithoutSts(), 'deposit', io as never);
    await expect(refused).rejects.toBeInstanceOf(OperatorInputError);
    await expect(refused).rejects.toThrow(
      /^fund deposit refused: the caller could not be identified \(.*\) and no --operator says who asks: run it again with --operator <who>; nothing moved$/,
    );
    expect(text()).toBe('');
  });
});

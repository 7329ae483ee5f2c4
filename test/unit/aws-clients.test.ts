import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { refreshFailure } from '../../cli/ops/common.ts';
import { heldPutMayHeal } from '../../cli/ops/events.ts';
import {
  AWS_TIMEOUTS,
  clientConfigFromEnv,
  createAwsClients,
  EMULATOR_TIMEOUTS,
  localClientConfig,
} from '../../shared/adapters/aws/clients.ts';
import {
  CONNECT_TIMEOUT_ENV,
  cliCredentials,
  openDeployment,
  REQUEST_TIMEOUT_ENV,
} from '../../shared/local/deployment.ts';
import { startLocalStack } from '../../shared/local/stack.ts';

/** A server that accepts connections and never answers: a stalled socket. `connections`: how many it took. */
async function silentServer(): Promise<{
  readonly endpoint: string;
  readonly connections: () => number;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * An HTTP server that answers a GET at once and each POST with its headers and the first bytes of its body, then
 * nothing more: a connection that died after the first byte. `stalled` lists the POSTs so held, when each stalled.
 * `then: 'reset'`: the connection is closed there instead, the answer cut short.
 */
async function stallAfterHeaders(then: 'stall' | 'reset' = 'stall'): Promise<{
  readonly endpoint: string;
  readonly stalled: string[];
  close(): Promise<void>;
}> {
  const stalled: string[] = [];
  const server = createHttpServer((request: IncomingMessage, response) => {
    request.resume();
    request.on('end', () => {
      if (request.method !== 'POST') {
        response.end('ok');
        return;
      }
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'content-length': '4096' });
      response.write('{"Item":', () => {
        stalled.push(`${request.headers['x-amz-target'] ?? request.url}`);
        if (then === 'reset') response.socket?.destroy();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    stalled,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
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

describe('AWS clients: an answer that stops after its headers (timeouts48-body-stall)', () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  it("the functions' clients: the attempt fails as a timeout and is retried, where it waited with no limit", async () => {
    const server = await stallAfterHeaders();
    // As clientConfigFromEnv builds it, with explicit credentials and a short timeout.
    const clients = createAwsClients({
      region: 'us-east-1',
      endpoint: server.endpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 2,
      timeouts: { connectionMs: 1_000, requestMs: 200 },
    });
    cleanup = async () => {
      clients.destroy();
      await server.close();
    };
    const call = clients.dynamo.send(
      new GetItemCommand({ TableName: 't', Key: { pk: { S: 'x' } }, ConsistentRead: true }),
    );
    // Before: pending for ever (the request timeout ends at the headers), this test failing on its own timeout.
    await expect(call).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(server.stalled).toEqual(['DynamoDB_20120810.GetItem', 'DynamoDB_20120810.GetItem']);
    expect(clients.counter.attemptsSnapshot()).toEqual({ 'dynamodb.GetItem': 2 });
  });

  // review48-timeouts-lost-body: the SDK's deserializer stamps an error it meets reading the body with the answer's
  // status, a 200, so a watch took the stall (or a reset mid-answer) for AWS's word on the request: lasting.
  it.each(['stall', 'reset'] as const)(
    'an answer lost after its headers (%s): a watch reads again, a held put is sent again',
    async (then) => {
      const server = await stallAfterHeaders(then);
      const clients = createAwsClients({
        region: 'us-east-1',
        endpoint: server.endpoint,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        maxAttempts: 1,
        timeouts: { connectionMs: 1_000, requestMs: 200 },
      });
      cleanup = async () => {
        clients.destroy();
        await server.close();
      };
      const error = await clients.dynamo
        .send(new GetItemCommand({ TableName: 't', Key: { pk: { S: 'x' } } }))
        .catch((e: unknown) => e);
      expect(error).toMatchObject(then === 'stall' ? { name: 'TimeoutError' } : { code: 'ECONNRESET' });
      // Before: lasting (the 200 read as an AWS error of the caller's), the hold's put not sent again.
      expect(refreshFailure(error)).toMatchObject({ lasting: false });
      expect(heldPutMayHeal(error)).toBe(true);
    },
  );

  it("the CLI's clients: a deployed stack's outputs read on such a connection fail as a timeout", async () => {
    const server = await stallAfterHeaders();
    cleanup = () => server.close();
    const open = openDeployment({
      kind: 'localstack',
      endpoint: server.endpoint,
      stage: 'stalled',
      env: { [CONNECT_TIMEOUT_ENV]: '1000', [REQUEST_TIMEOUT_ENV]: '200' },
    });
    await expect(open).rejects.toMatchObject({ name: 'TimeoutError' });
    // The SDK's three attempts, each held after its headers.
    expect(server.stalled).toHaveLength(3);
  });
});

describe("local up's own clients (timeouts48-local-up)", () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  it('have the emulator timeouts by default', () => {
    expect(localClientConfig('http://127.0.0.1:5000').timeouts).toEqual(EMULATOR_TIMEOUTS);
  });

  it('a stack started on an emulator that never answers fails as a timeout, where it waited for ever', async () => {
    const server = await silentServer();
    cleanup = () => server.close();
    const start = startLocalStack({
      endpoint: server.endpoint,
      stage: 'silent',
      timeouts: { connectionMs: 1_000, requestMs: 100 },
    });
    await expect(start).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(server.connections()).toBeGreaterThanOrEqual(1);
  });
});

describe("the default credential chain's clients (timeouts48-credential-clients)", () => {
  const saved = { ...process.env };
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  });

  /**
   * A profile of `aws sso login`, its session cached and valid, in process.env: the SDK asks SSO (`sso`: a server that
   * never answers) for the role's credentials.
   */
  async function ssoProfile(): Promise<{ readonly sso: Awaited<ReturnType<typeof silentServer>> }> {
    const sso = await silentServer();
    const dir = mkdtempSync(join(tmpdir(), 'backstop-sso-'));
    cleanup = async () => {
      await sso.close();
      rmSync(dir, { recursive: true, force: true });
    };
    const startUrl = 'https://backstop-test.awsapps.com/start';
    writeFileSync(
      join(dir, 'config'),
      `[profile operator]\nsso_start_url = ${startUrl}\nsso_region = us-east-1\n` +
        'sso_account_id = 123456789012\nsso_role_name = Operator\nregion = us-east-1\n',
    );
    const cache = join(dir, '.aws', 'sso', 'cache');
    mkdirSync(cache, { recursive: true });
    writeFileSync(
      join(cache, `${createHash('sha1').update(startUrl).digest('hex')}.json`),
      JSON.stringify({ accessToken: 'token', expiresAt: new Date(Date.now() + 3_600_000).toISOString() }),
    );
    for (const name of [
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_SESSION_TOKEN',
      'AWS_ENDPOINT_URL',
    ])
      delete process.env[name];
    Object.assign(process.env, {
      HOME: dir,
      AWS_CONFIG_FILE: join(dir, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
      AWS_PROFILE: 'operator',
      AWS_ENDPOINT_URL_SSO: sso.endpoint,
    });
    return { sso };
  }

  it("an SSO profile's credentials read on a connection that never answers fail as a timeout", async () => {
    const { sso } = await ssoProfile();
    const service = await silentServer();
    // As openDeployment builds the CLI's config on AWS.
    const timeouts = { connectionMs: 1_000, requestMs: 100 };
    const clients = createAwsClients({
      region: 'us-east-1',
      endpoint: service.endpoint,
      credentials: cliCredentials(timeouts),
      maxAttempts: 1,
      timeouts,
    });
    const earlier = cleanup;
    cleanup = async () => {
      clients.destroy();
      await service.close();
      await earlier?.();
    };
    const call = clients.dynamo.send(new GetItemCommand({ TableName: 't', Key: { pk: { S: 'x' } } }));
    // Before: the SSO client had no timeout, and the call waited for ever on its first request.
    await expect(call).rejects.toThrow(/requestTimeout/);
    expect(sso.connections()).toBeGreaterThanOrEqual(1);
    // The call itself never went: no credentials to sign it with.
    expect(service.connections()).toBe(0);
  });

  // providers49-credential-stall: the chain's clients had the request and connection timeouts, not the body's stall
  // (withTimeouts' middleware cannot reach them), so an SSO answer that stopped after its headers held the call.
  it("an SSO profile's credentials whose answer stops after its headers fail as a timeout", async () => {
    await ssoProfile();
    const stalled: string[] = [];
    const sso = createHttpServer((request, response) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' });
      response.write('{"roleCredentials":', () => stalled.push(request.url ?? ''));
    });
    await new Promise<void>((resolve) => sso.listen(0, '127.0.0.1', resolve));
    const address = sso.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    process.env.AWS_ENDPOINT_URL_SSO = `http://127.0.0.1:${address.port}`;
    const service = await silentServer();
    const timeouts = { connectionMs: 1_000, requestMs: 200 };
    const clients = createAwsClients({
      region: 'us-east-1',
      endpoint: service.endpoint,
      credentials: cliCredentials(timeouts),
      maxAttempts: 1,
      timeouts,
    });
    const earlier = cleanup;
    cleanup = async () => {
      clients.destroy();
      sso.closeAllConnections();
      await new Promise<void>((resolve) => sso.close(() => resolve()));
      await service.close();
      await earlier?.();
    };
    const call = clients.dynamo.send(new GetItemCommand({ TableName: 't', Key: { pk: { S: 'x' } } }));
    // Before: pending for ever, this test failing on its own timeout.
    await expect(call).rejects.toThrow(/timed out after 200 ms of inactivity/);
    expect(stalled.length).toBeGreaterThanOrEqual(1);
    expect(stalled[0]).toMatch(/^\/federation\/credentials/);
    expect(service.connections()).toBe(0);
  });

  // review48-timeouts-runtime-sdk: the chain is the CLI's own (openDeployment), no longer clientOptions'.
  it('openDeployment --target aws: its clients read such credentials with the CLI timeouts', async () => {
    const { sso } = await ssoProfile();
    const service = await silentServer();
    process.env.AWS_ENDPOINT_URL_CLOUDFORMATION = service.endpoint;
    const earlier = cleanup;
    cleanup = async () => {
      await service.close();
      await earlier?.();
    };
    const open = openDeployment({
      kind: 'aws',
      stage: 'sso',
      region: 'us-east-1',
      env: { [CONNECT_TIMEOUT_ENV]: '1000', [REQUEST_TIMEOUT_ENV]: '100' },
    });
    await expect(open).rejects.toThrow(/requestTimeout/);
    expect(sso.connections()).toBeGreaterThanOrEqual(1);
    expect(service.connections()).toBe(0);
  });
});

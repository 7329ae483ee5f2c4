import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A moto server (all AWS services on one port) for one test file: `const moto = await startMoto()` in
 * beforeAll, `await moto.stop()` in afterAll. Each file gets its own server on a free 127.0.0.1 port, so
 * files run in parallel without sharing state; `reset()` clears every service between tests if needed.
 * Prefers the project's pinned moto in .venv (scripts/setup-emulator.sh), then the machine's python3 moto.
 */

export class MotoNotInstalledError extends Error {
  override readonly name = 'MotoNotInstalledError';
}

export interface MotoServer {
  readonly endpoint: string;
  readonly port: number;
  /** POST /moto-api/reset: forgets every table, queue and bus. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const START_DEADLINE_MS = 20_000;

function motoCommand(): { command: string; args: string[] } {
  const venv = join(ROOT, '.venv', 'bin', 'moto_server');
  if (existsSync(venv)) return { command: venv, args: [] };
  const probe = spawnSync('python3', ['-c', 'import moto, flask'], { stdio: 'ignore' });
  if (probe.status === 0) return { command: 'python3', args: ['-m', 'moto.server'] };
  throw new MotoNotInstalledError('moto[server] is not installed: run bash scripts/setup-emulator.sh');
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });

const answers = async (endpoint: string): Promise<boolean> => {
  try {
    const res = await fetch(`${endpoint}/moto-api/data.json`, { signal: AbortSignal.timeout(1_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
};

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

async function launch(): Promise<MotoServer | undefined> {
  const { command, args } = motoCommand();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(command, [...args, '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  const kill = () => {
    if (!exited(child)) child.kill('SIGTERM');
  };
  process.once('exit', kill);

  const deadline = Date.now() + START_DEADLINE_MS;
  while (!(await answers(endpoint))) {
    if (exited(child)) {
      process.off('exit', kill);
      // Most likely the port was taken between probing and binding: the caller tries another.
      if (/address already in use/i.test(stderr)) return undefined;
      throw new Error(`moto server exited (${child.exitCode}): ${stderr.trim()}`);
    }
    if (Date.now() > deadline) {
      kill();
      throw new Error(`moto server did not answer on ${endpoint} within ${START_DEADLINE_MS} ms: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    endpoint,
    port,
    reset: async () => {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset failed: HTTP ${res.status}`);
      await res.body?.cancel();
    },
    stop: async () => {
      process.off('exit', kill);
      if (exited(child)) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await done;
    },
  };
}

export async function startMoto(): Promise<MotoServer> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const server = await launch();
    if (server) return server;
  }
  throw new Error('moto server: no free port after 3 attempts');
}

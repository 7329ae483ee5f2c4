import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A moto server (all AWS services on one port) on 127.0.0.1, for `backstop local up` and the tests. Prefers
 * the project's pinned moto in .venv (scripts/setup-emulator.sh), then the machine's python3 moto. A test
 * file starts its own server on a free port (`await startMoto()`), so files run in parallel without sharing
 * state; `reset()` clears every service.
 */

export class MotoNotInstalledError extends Error {
  override readonly name = 'MotoNotInstalledError';
}

/** The requested port is taken (only raised for an explicit port; a free port is retried instead). */
export class MotoPortInUseError extends Error {
  override readonly name = 'MotoPortInUseError';
}

export interface MotoServer {
  readonly endpoint: string;
  readonly port: number;
  /** Process id of the server (recorded by `local up`). */
  readonly pid: number;
  /** POST /moto-api/reset: forgets every table, queue and bus. */
  reset(): Promise<void>;
  /** False once the server process has exited (stopped, or died). */
  running(): boolean;
  stop(): Promise<void>;
}

export interface MotoOptions {
  /** Port to listen on; 0 or absent: a free port. */
  readonly port?: number;
  /** Longest wait for the server to answer (default 20 s). */
  readonly startDeadlineMs?: number;
  /**
   * Its own process group: a Ctrl-C in the terminal then reaches only the parent, which stops its work
   * before the emulator (local up); the parent still stops it on exit.
   */
  readonly ownProcessGroup?: boolean;
  /** The checkout whose .venv runs it (default this one's; a test gives another). */
  readonly root?: string;
  /**
   * The python that runs it, as `motoCommand` found it (local up's early check): not probed again. Without it,
   * found once for every port tried (cli50-moto-probe-once).
   */
  readonly command?: MotoCommand;
}

export const MOTO_HOST = '127.0.0.1';
export const SETUP_HINT = 'run: bash scripts/setup-emulator.sh';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const START_DEADLINE_MS = 20_000;

/**
 * What the launcher imports: a moto without them (5.2.1 has no MotoRequestHandler) cannot run it, whatever
 * `import moto, flask` says (onboard49-moto-probe). scripts/setup-emulator.sh checks the same lines, joined by "; ".
 */
export const MOTO_IMPORTS = `import sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app`;

/**
 * moto's server (werkzeug, one thread per connection) with DynamoDB calls serialized. moto evaluates
 * conditions and writes without locks, and a failed TransactWriteItems restores a copy of the table taken
 * when it started, erasing what other calls committed meanwhile: concurrent conditional writes (the ledger's
 * optimistic concurrency) then lose updates. One DynamoDB call at a time makes each call atomic, as on AWS;
 * other services stay concurrent (an SQS long poll must not hold the lock).
 */
export const MOTO_LAUNCHER = `
${MOTO_IMPORTS}
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def serialized(environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        with lock:
            return list(app(environ, start_response))
    return app(environ, start_response)
run_simple(sys.argv[1], int(sys.argv[2]), serialized, threaded=True, request_handler=MotoRequestHandler)
`;

export interface MotoCommand {
  readonly command: string;
  readonly args: (host: string, port: number) => string[];
}

/** Moto's server run by `python`, one `motoCommand` found (a detached local up's child is given its parent's). */
export const motoCommandOf = (python: string): MotoCommand => ({
  command: python,
  args: (host, port) => ['-c', MOTO_LAUNCHER, host, String(port)],
});

/**
 * The python that runs moto's server: .venv first, then the machine's python3 if it has moto (a probe: python3 importing
 * what the launcher imports, a second or so).
 */
export function motoCommand(root = ROOT): MotoCommand {
  if (existsSync(join(root, '.venv', 'bin', 'moto_server')))
    return motoCommandOf(join(root, '.venv', 'bin', 'python'));
  if (spawnSync('python3', ['-c', MOTO_IMPORTS], { stdio: 'ignore' }).status === 0)
    return motoCommandOf('python3');
  const other = spawnSync('python3', ['-c', 'import moto; print(moto.__version__)'], { encoding: 'utf8' });
  const version = other.status === 0 ? other.stdout.trim() : undefined;
  throw new MotoNotInstalledError(
    version === undefined
      ? `the local AWS emulator (moto[server]) is not installed: ${SETUP_HINT}`
      : `the local AWS emulator (moto[server]) is not installed, and the machine's moto ${version} cannot run it: ${SETUP_HINT}`,
  );
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, MOTO_HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });

/** True when a moto server answers on `endpoint` (its state endpoint, within a second). */
export async function motoAnswers(endpoint: string, timeoutMs = 1_000): Promise<boolean> {
  try {
    // The dashboard's page: a constant 10 KB. (data.json serializes every table and queue: with a replay's
    // gigabytes it took longer than any timeout, and a stack's leftover emulator was taken for something else.)
    const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

async function launch(
  port: number,
  explicitPort: boolean,
  options: MotoOptions & { readonly command: MotoCommand },
): Promise<MotoServer | undefined> {
  const deadlineMs = options.startDeadlineMs ?? START_DEADLINE_MS;
  const { command, args } = options.command;
  const endpoint = `http://${MOTO_HOST}:${port}`;
  if (explicitPort && (await motoAnswers(endpoint, 500))) {
    throw new MotoPortInUseError(`port ${port} is in use (another moto server answers there)`);
  }
  const child = spawn(command, args(MOTO_HOST, port), {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
    detached: options.ownProcessGroup ?? false,
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000);
  });
  // A spawn failure (ENOENT) is reported through exitCode below; without a listener it would be thrown.
  child.on('error', (error) => {
    stderr += String(error);
  });
  const kill = () => {
    if (!exited(child)) child.kill('SIGTERM');
  };
  process.once('exit', kill);

  // By the monotonic clock: a step of the machine's gave up at once or waited an hour (tidy50-local-deadline-clock).
  const deadline = performance.now() + deadlineMs;
  while (!(await answersFrom(endpoint, child))) {
    if (exited(child) || child.pid === undefined) {
      process.off('exit', kill);
      if (/address already in use/i.test(stderr)) {
        if (explicitPort)
          throw new MotoPortInUseError(`port ${port} is in use: pass another --port (0: any)`);
        // The free port was taken between probing and binding: the caller tries another.
        return undefined;
      }
      const last = stderr.trim().split('\n').pop() ?? '';
      // A .venv of another moto, or missing a module: the setup's to fix, not a bug (onboard49-moto-probe).
      if (/^(ImportError|ModuleNotFoundError)\b/.test(last))
        throw new MotoNotInstalledError(
          `the local AWS emulator (moto[server]) cannot start: ${last}: ${SETUP_HINT}`,
        );
      throw new Error(`moto server exited (${child.exitCode}): ${last}`);
    }
    if (performance.now() > deadline) {
      kill();
      process.off('exit', kill);
      throw new Error(`moto server did not answer on ${endpoint} within ${deadlineMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    endpoint,
    port,
    pid: child.pid ?? 0,
    running: () => !exited(child),
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

/** Answers only if our child is still the one listening (not a server that was there before). */
const answersFrom = async (endpoint: string, child: ChildProcess): Promise<boolean> =>
  !exited(child) && (await motoAnswers(endpoint));

/** Starts a moto server on `options.port`, or on a free port (retried if another process takes it first). */
export async function startMoto(given: MotoOptions = {}): Promise<MotoServer> {
  const options = { ...given, command: given.command ?? motoCommand(given.root) };
  if (options.port) {
    const server = await launch(options.port, true, options);
    if (server) return server;
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    const server = await launch(await freePort(), false, options);
    if (server) return server;
  }
  throw new Error('moto server: no free port after 3 attempts');
}

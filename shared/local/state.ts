import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { positionIndexShardsSchema } from '../adapters/aws/position-layout.ts';
import { writeFileAtomic } from './atomic-file.ts';

/**
 * What `backstop local up` records in `.backstop/local.json` while it runs, so the other commands find the
 * emulator (endpoint, stage) and the configuration the functions run with, and `local down` finds the
 * process. Written once the stack is ready, removed when it stops. BACKSTOP_STATE_DIR moves the folder
 * (tests use a temporary one so they never touch a developer's running stack).
 */

export const localRecordSchema = z.strictObject({
  /** The `local up` process (runner and emulator owner). */
  pid: z.number().int().positive(),
  motoPid: z.number().int().nonnegative(),
  endpoint: z.string().regex(/^https?:\/\/\S+$/),
  stage: z.string().min(1),
  region: z.string().min(1),
  startedAt: z.string(),
  /** Risk configuration input the handlers run with (absent: the defaults). */
  riskConfig: z.unknown().optional(),
  /** Index shards per market the handlers run with (absent: one each). */
  positionIndexShards: positionIndexShardsSchema.optional(),
  /** Log file of a detached run. */
  log: z.string().optional(),
});
export type LocalRecord = z.infer<typeof localRecordSchema>;

export class LocalStateError extends Error {
  override readonly name = 'LocalStateError';
}

export const LOCAL_FILE = 'local.json';
export const LOCAL_LOG = 'local.log';

export const stateDir = (env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string =>
  env.BACKSTOP_STATE_DIR ?? join(cwd, '.backstop');

export const localRecordPath = (dir: string): string => join(dir, LOCAL_FILE);

export function readLocalRecord(dir: string): LocalRecord | undefined {
  let text: string;
  try {
    text = readFileSync(localRecordPath(dir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LocalStateError(`local/unreadable: ${localRecordPath(dir)}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new LocalStateError(`local/corrupt: ${localRecordPath(dir)} is not JSON (delete it)`);
  }
  const parsed = localRecordSchema.safeParse(json);
  if (!parsed.success) {
    throw new LocalStateError(
      `local/corrupt: ${localRecordPath(dir)} is not a local stack record (delete it)`,
    );
  }
  return parsed.data;
}

/** Writes the record atomically (a reader never sees half a file). */
export function writeLocalRecord(dir: string, record: LocalRecord): void {
  mkdirSync(dir, { recursive: true });
  const path = localRecordPath(dir);
  writeFileAtomic(path, `${JSON.stringify(record, null, 2)}\n`, temporaryPath(path));
}

/** Removes the record if it is `pid`'s (a newer stack's record is left alone). */
export function removeLocalRecord(dir: string, pid: number): void {
  try {
    if (readLocalRecord(dir)?.pid !== pid) return;
  } catch {
    return;
  }
  rmSync(localRecordPath(dir), { force: true });
}

/** Whether a process exists (signal 0 checks without signalling): only ESRCH says none (EPERM: another user's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Where a pid names a process: one pid namespace of one boot of one machine. A state folder shared by a container
 * and its host (or two containers on a volume, or machines over NFS) holds files named by the pids of each.
 */
export interface HostParts {
  readonly hostname: string;
  /** `/proc/self/ns/pid`'s link (`pid:[4026531836]`): a container has its own; a host's is alike on every machine. */
  readonly pidNamespace?: string;
  /** `/proc/sys/kernel/random/boot_id`: new at each boot. */
  readonly bootId?: string;
}

/** This process's host parts; /proc is Linux's, elsewhere the hostname alone. */
export function readHostParts(): HostParts {
  const optional = (read: () => string): string | undefined => {
    try {
      return read().trim() || undefined;
    } catch {
      return undefined;
    }
  };
  const pidNamespace = optional(() => readlinkSync('/proc/self/ns/pid'));
  const bootId = optional(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
  return {
    hostname: hostname(),
    ...(pidNamespace === undefined ? {} : { pidNamespace }),
    ...(bootId === undefined ? {} : { bootId }),
  };
}

/** `parts` as 16 hex digits, fit for a file name (a hostname may hold anything). */
export function hostIdentity(parts: HostParts = readHostParts()): string {
  return createHash('sha256')
    .update(JSON.stringify([parts.hostname, parts.pidNamespace ?? '', parts.bootId ?? '']))
    .digest('hex')
    .slice(0, 16);
}

let thisHost: string | undefined;
/** This process's `hostIdentity`, read once. */
export const currentHost = (): string => (thisHost ??= hostIdentity());

/**
 * The temporary file of an atomic write of `path`, named by its writer (pid and host) so that the lock's sweep can
 * tell a leftover of a writer killed before its rename (local45-tmp-leftover).
 */
export const temporaryPath = (path: string, host: string = currentHost()): string =>
  `${path}.${process.pid}-${host}.tmp`;

import { randomUUID } from 'node:crypto';
import {
  closeSync,
  constants,
  copyFileSync,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { withinSequenceJump } from '../domain/tick.ts';
import { writeFileAtomic } from './atomic-file.ts';
import type { Deployment } from './deployment.ts';
import { currentHost, isAlive, LOCAL_FILE, temporaryPath } from './state.ts';

/**
 * The last tick sequence the operator commands sent per target and market (`.backstop/sequences.json`). A replay's
 * ticks may still be queued when the next command asks the market for its last sequence: without this record an
 * `inject tick` (or a second replay) right after it would reuse a sequence still on its way, and margin-check would
 * refuse one of the two as out of order. Best effort, per machine: the market's own record still counts.
 */

export const SEQUENCES_FILE = 'sequences.json';

/** -1: a feed resumed from 0 (`feed resume`) has sent nothing of its new numbering yet. */
const sequenceSchema = z.number().int().min(-1);

/** The record's key: one target (kind, endpoint or region, the bus: its ARN, with the account, when known), one market. */
export const sentSequenceKey = (deployment: Deployment, symbol: string): string =>
  [
    deployment.kind,
    deployment.endpoint ?? deployment.region,
    deployment.names.busArn ?? deployment.names.busName,
    symbol,
  ].join('|');

function read(dir: string): Record<string, number> {
  let text: string;
  try {
    text = readFileSync(join(dir, SEQUENCES_FILE), 'utf8');
  } catch {
    return {};
  }
  // A corrupt record, or entry, is only a lost hint: the market's own sequence still holds. An entry that does not
  // read drops itself, not the other markets' (a resume to -1 once dropped them all).
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
  const record: Record<string, number> = {};
  for (const [key, value] of Object.entries(parsed)) {
    const sequence = sequenceSchema.safeParse(value);
    if (sequence.success) record[key] = sequence.data;
  }
  return record;
}

export function lastSentSequence(dir: string, key: string): number | undefined {
  return read(dir)[key];
}

/** Records `sequence` as sent (keeps the highest); written whole, through a rename. */
export function recordSentSequence(dir: string, key: string, sequence: number): void {
  update(dir, (record) => {
    if ((record[key] ?? -1) >= sequence) return false;
    record[key] = sequence;
    return true;
  });
}

/**
 * Whether the record's `sent` may be continued by a market whose next sequence is `next`: the tick after it must be
 * within `maxJump` of the market's last (`next - 1`), as margin-check measures. Measured from `next`, a record at the
 * bound gave a tick one past it, held as tick/sequence-jump (seq43-jump-bound).
 */
export function continuesSent(sent: number, next: number, maxJump: number): boolean {
  return withinSequenceJump(sent + 1, next - 1, maxJump);
}

/**
 * Takes `count` sequences from `from` on, past any this record shows sent, and records them before they are sent:
 * an inject and a replay that read the record together once took the same next sequence, and margin-check refused
 * the replay's tick as a duplicate without a word (walk43b-sequence-claim). A recorded one whose next tick would be a
 * jump (`continuesSent`: a mistyped `--sequence`, a market rebased down) is not continued: the claim takes its place,
 * or the next claimer would take the same sequences. Returns the first sequence taken.
 */
export function claimSequences(
  dir: string,
  key: string,
  from: number,
  count: number,
  maxJump: number,
): number {
  let first = from;
  update(dir, (record) => {
    const sent = record[key];
    const continued = sent !== undefined && continuesSent(sent, from, maxJump);
    if (continued) first = Math.max(from, sent + 1);
    const last = first + count - 1;
    if (continued && sent >= last) return false;
    record[key] = last;
    return true;
  });
  return first;
}

/**
 * The market's sequence was set back (`feed resume`): what these commands sent before counts no more, and the
 * next sent tick follows the resumed sequence, not the old numbering.
 */
export function resetSentSequence(dir: string, key: string, sequence: number): void {
  update(dir, (record) => {
    if (record[key] === undefined) return false;
    record[key] = sequence;
    return true;
  });
}

/** How long a writer waits for another's lock, and the age past which a lock is a dead writer's. */
const LOCK_WAIT_MS = 2_000;
const LOCK_STALE_MS = 10_000;
const LOCK_POLL_MS = 5;
/**
 * The age past which another host's file beside the lock is a dead writer's (its pid means nothing here). A live
 * writer's are seconds old (a waiter touches its token every LOCK_WAIT_MS, an aside or a temporary lives for one
 * call): an hour leaves room for two machines' clocks apart (over NFS the server stamps the files) and for a writer
 * stopped a while (Ctrl-Z); a dead one's files blocked nobody meanwhile.
 */
const OTHER_HOST_STALE_MS = 60 * 60_000;

/**
 * Read, change and write the record under a lock file: replays of several markets at once (one process each) wrote
 * it together, each through the same temporary file, and one's rename found the file already renamed by another
 * (ENOENT: that replay died mid-crash) or wrote over the other's market (session 40, 40 markets). A lock a dead
 * process left, or one held past the wait, is taken over: the record is a hint, never worth a stuck command.
 */
function update(dir: string, change: (record: Record<string, number>) => boolean): void {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, SEQUENCES_FILE);
  const lock = `${path}.lock`;
  const release = acquireLock(lock);
  try {
    const record = read(dir);
    if (!change(record)) return;
    writeFileAtomic(path, `${JSON.stringify(record, null, 2)}\n`, temporaryPath(path));
  } finally {
    release();
  }
}

/**
 * Takes the lock file and returns its release. The lock holds a token of its own, and the release removes it only if
 * it still holds that token: a writer paused past the takeover (LOCK_WAIT_MS) once deleted the lock another writer
 * had taken over since, letting a third in beside it (seq43-lock-owner). Every step that could meet another writer's
 * is one atomic call (lock44-release-atomic): the token is written to a file of this taker's before a no-clobber link
 * makes it the lock (a lock is never empty), and a release or a takeover first renames the lock to a name of its own,
 * then looks at what it moved, and links back what was not its to remove. The token names its writer's host
 * (`currentHost`), read by the sweep. Exported for its test, which injects `host`.
 */
export function acquireLock(lock: string, host: string = currentHost()): () => void {
  const token = `${process.pid}-${host}-${randomUUID()}`;
  const mine = `${lock}.${token}`;
  try {
    writeFileSync(mine, token, { flag: 'wx' });
    let written = Date.now();
    // The wait is for one lock: a waiter's own wait once counted, so one that had waited 2 s while others took the
    // lock turn by turn took over a lock taken a moment before, both holding (review44-lock-wait-per-lock).
    let waiting: { lock: SeenLock; sinceMs: number } | undefined;
    for (;;) {
      let linked: boolean;
      try {
        // A lock made of a token file written long ago would read as a dead writer's at once.
        if (Date.now() - written > LOCK_WAIT_MS) written = touch(mine);
        linked = linkNoClobber(mine, lock);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        // Swept: a waiter paused past OTHER_HOST_STALE_MS reads as dead to another host's sweep. Written again, it
        // waits on; the command once failed with ENOENT (local45-token-rewritten). A folder gone fails here.
        writeFileSync(mine, token);
        written = Date.now();
        continue;
      }
      if (linked) {
        sweepDeadWriters(lock, host);
        return () => releaseLock(lock, token);
      }
      const seen = look(lock);
      if (seen === undefined) continue; // released meanwhile
      if (!waiting || !sameLock(waiting.lock, seen)) waiting = { lock: seen, sinceMs: Date.now() };
      if (Date.now() - waiting.sinceMs >= LOCK_WAIT_MS || Date.now() - seen.mtimeMs > LOCK_STALE_MS) {
        removeIfStill(lock, `${mine}.takeover`, (moved) => sameLock(moved, seen));
        continue;
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, LOCK_POLL_MS);
    }
  } finally {
    rmSync(mine, { force: true }); // the lock, once linked, is a name of its own
  }
}

/**
 * A writer's file beside `lock`, after `<lock>.`: its token file, or a lock it moved aside (`.takeover`, `.release`).
 * Groups: the pid, the host (none in the names of the versions before session 45).
 */
const WRITER_FILE =
  /^(\d+)-(?:([0-9a-f]{16})-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:\.takeover|\.release)?$/;

/** A leftover of an atomic write of the state folder's files (`temporaryPath`; older versions: no host). */
const TEMPORARY_FILE = new RegExp(
  `^(?:${[SEQUENCES_FILE, LOCAL_FILE].map((file) => file.replaceAll('.', '\\.')).join('|')})` +
    '\\.(\\d+)(?:-([0-9a-f]{16}))?\\.tmp$',
);

/**
 * Removes what writers now gone left in the lock's folder (small44-lock-sweep): a command killed while it waited
 * left its token file, one killed between its write and its rename its temporary file (local45-tmp-leftover); none
 * blocks anybody, but they stayed in the state folder. Run by the lock's holder; the lock itself and other names are
 * never touched. Housekeeping: a failure is let be.
 */
function sweepDeadWriters(lock: string, host: string): void {
  const dir = dirname(lock);
  const prefix = `${basename(lock)}.`;
  try {
    for (const name of readdirSync(dir)) {
      const writer = name.startsWith(prefix)
        ? WRITER_FILE.exec(name.slice(prefix.length))
        : TEMPORARY_FILE.exec(name);
      if (writer && writerGone(join(dir, name), Number(writer[1]), writer[2], host))
        rmSync(join(dir, name), { force: true });
    }
  } catch {
    // the next holder sweeps again
  }
}

/**
 * Whether the writer of `file` (`pid` on `fileHost`) is gone. A pid names a process only on its own host (pid
 * namespace and boot): judged here, another host's pid read as nobody's, and a live waiter in a container lost its
 * token (its command failed with ENOENT), or as a process of this host, and a dead one's stayed
 * (local45-lock-pid-namespace). So only this host's files are judged by pid; another host's, or an older version's
 * (no host), by age alone (`OTHER_HOST_STALE_MS`): asking that host is no simpler than waiting.
 */
function writerGone(file: string, pid: number, fileHost: string | undefined, host: string): boolean {
  if (fileHost === host) return !isAlive(pid);
  try {
    // ctime too: a rename moves it (an aside keeps the lock's mtime), as a write and a touch do.
    const { mtimeMs, ctimeMs } = statSync(file);
    return Date.now() - Math.max(mtimeMs, ctimeMs) > OTHER_HOST_STALE_MS;
  } catch {
    return false;
  }
}

/** Sets `file`'s mtime to now (the clock the lock's age is read by); returns now. */
function touch(file: string): number {
  const now = Date.now();
  utimesSync(file, now / 1000, now / 1000);
  return now;
}

/** A lock that reads as another's is left as it is; one that reads as ours is moved, checked again, removed. */
function releaseLock(lock: string, token: string): void {
  if (look(lock)?.token !== token) return; // taken over (or released by a takeover's holder): not ours
  removeIfStill(lock, `${lock}.${token}.release`, (moved) => moved.token === token);
}

interface SeenLock {
  readonly ino: number;
  readonly mtimeMs: number;
  readonly token: string;
}

/** `to` made a name of `from` unless `to` exists: false when another holds it. */
function linkNoClobber(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (!NO_HARD_LINKS.has(code ?? '')) throw error;
  }
  // A filesystem without hard links (vfat, exFAT, some shared folders): an exclusive copy, as open(wx) and a write
  // did before (review44-lock-no-hard-links). A copy that fails is removed (libuv), so no empty lock is left.
  try {
    copyFileSync(from, to, constants.COPYFILE_EXCL);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** What `link` answers on a filesystem that has no hard links. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** One lock file's identity and token, read through one descriptor (a lock replaced meanwhile is not mixed in). */
function look(file: string): SeenLock | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const { ino, mtimeMs } = fstatSync(fd);
    return { ino, mtimeMs, token: readFileSync(fd, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

/** The same file: an inode number alone may be reused by the next lock, and an old empty lock has no token. */
const sameLock = (a: SeenLock, b: SeenLock): boolean =>
  a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.token === b.token;

/**
 * Moves the lock aside (atomic: what was moved is this call's alone to judge), removes it if `ours` says so, and
 * otherwise links it back. Left open: a lock replaced between the caller's look and the move, and a third writer
 * taking the free name before the link back; the third keeps it (no clobber) beside the replacer. Files have no
 * compare-and-delete; it takes a writer stalled past the takeover and two others within the same microseconds.
 */
function removeIfStill(lock: string, aside: string, ours: (moved: SeenLock) => boolean): void {
  try {
    renameSync(lock, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // released or taken over and released
    throw error;
  }
  try {
    const moved = look(aside);
    if (moved && !ours(moved)) linkNoClobber(aside, lock);
  } finally {
    rmSync(aside, { force: true });
  }
}

import { copyFileSync, fstatSync, ftruncateSync, renameSync, statSync, truncateSync } from 'node:fs';

/**
 * `local up` appends to the state folder's logs (metrics.log, and local.log with --detach) run after run: a log past
 * this size is moved to `<name>.1` (over an older `.1`), at the next start and while it runs, so at most two of each
 * are kept.
 */
export const LOG_ROTATE_BYTES = 50 * 1024 * 1024;

/** Rotates each of `files` larger than `maxBytes`. Housekeeping: a log that cannot be moved is said, never fatal. */
export function rotateLogs(
  files: readonly string[],
  warn: (message: string) => void,
  maxBytes = LOG_ROTATE_BYTES,
): void {
  for (const file of files) {
    try {
      if (statSync(file).size <= maxBytes) continue;
      renameSync(file, `${file}.1`); // replaces an older .1 in one step
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // no log yet
      warn(`${file} could not be moved to ${file}.1 (${(error as Error).message}): it keeps growing`);
    }
  }
}

/** How often a running `local up` looks at the size of the log it writes through its stdout and stderr. */
export const LOG_CHECK_MS = 10_000;

/**
 * Keeps `file`, which this process writes through descriptors it cannot reopen (a detached `local up`'s stdout and
 * stderr are local.log), within `maxBytes` while it runs (local45-log-rotation-running): looked at every `every`
 * (LOG_CHECK_MS), and past the bound copied to `<file>.1` and emptied. A rename would leave the descriptors on `.1`.
 * They append (O_APPEND), so the next line lands at the start of the emptied file, not past a hole; the copy and the
 * truncate are synchronous, as this process's writes to a file are, so none of its lines falls between them (no
 * other process writes there). A failure is said once and tried again at each look. A file deleted while it runs
 * is still written through `descriptor` (its stdout), out of every folder's sight: emptied through it past the bound
 * (local46-deleted-log), as its disk space is not given back until local up ends; also when another file has been
 * made at its path since, which is left alone (review46-log-recreated). Returns the stop.
 */
export function rotateWhileRunning(
  file: string,
  warn: (message: string) => void,
  {
    maxBytes = LOG_ROTATE_BYTES,
    every = everyCheck,
    descriptor = 1,
  }: { maxBytes?: number; every?: Every; descriptor?: number } = {},
): () => void {
  let warned = false;
  return every(() => {
    // Deleted, whatever is at its path now (a file made there since is not the one written: review46-log-recreated).
    if (emptyIfDeleted(descriptor, maxBytes)) return;
    try {
      if (statSync(file).size <= maxBytes) return;
      copyFileSync(file, `${file}.1`);
      truncateSync(file, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      if (warned) return;
      warned = true;
      warn(`${file} could not be moved to ${file}.1 (${(error as Error).message}): it keeps growing`);
    }
  });
}

/**
 * Whether the file behind `descriptor` is one no folder holds any more (no link left), emptied then past `maxBytes`.
 * Judged on the descriptor, not the path: a file made at the path since (`touch`, a tool's log) is another.
 */
function emptyIfDeleted(descriptor: number, maxBytes: number): boolean {
  try {
    const stats = fstatSync(descriptor);
    if (!stats.isFile() || stats.nlink !== 0) return false;
    if (stats.size > maxBytes) ftruncateSync(descriptor, 0);
    return true;
  } catch {
    // Housekeeping: a descriptor that cannot be read or emptied is left as it is (the path is looked at as before).
    return false;
  }
}

/** Runs `check` now and then until the returned stop; tests inject their own trigger. */
export type Every = (check: () => void) => () => void;

const everyCheck: Every = (check) => {
  const timer = setInterval(check, LOG_CHECK_MS);
  timer.unref(); // never what keeps local up running
  return () => clearInterval(timer);
};

import { renameSync, statSync } from 'node:fs';

/**
 * `local up` appends to the state folder's logs (metrics.log, and local.log with --detach) run after run: a log past
 * this size is moved to `<name>.1` at the next start (over an older `.1`), so at most two of each are kept.
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

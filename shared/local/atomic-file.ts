import { renameSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Writes `path` whole (a reader never sees half a file): the text goes to a file beside it, renamed over it. The
 * file beside is removed when the write or the rename fails (tmp45-temp-dirs: it was left in the folder).
 */
export function writeFileAtomic(path: string, text: string, aside = `${path}.${process.pid}.tmp`): void {
  try {
    writeFileSync(aside, text);
    renameSync(aside, path);
  } catch (error) {
    try {
      rmSync(aside, { force: true });
    } catch {
      // Housekeeping: the caller is told why the write failed, not why the cleanup did (review45-tmp-cleanup-masks).
    }
    throw error;
  }
}

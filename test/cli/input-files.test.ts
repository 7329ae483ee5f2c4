import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { MAX_JSON_FILE_BYTES, UsageError } from '../../cli/args.ts';
import { MAX_VENUE_KEY_BYTES, venueKeyOption } from '../../cli/ops/local.ts';
import { MAX_SEED_FILE_BYTES } from '../../cli/ops/seed.ts';
import { cli } from '../support/cli.ts';

/**
 * security48b-input-size: the files an option names are read whole into memory, so each is a regular file within a
 * bound, refused (exit 2, nothing read) otherwise. Sparse files: as large as they say, costing no disk.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'backstop-input-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sized = (name: string, bytes: number): string => {
  const file = path.join(dir, name);
  writeFileSync(file, '');
  truncateSync(file, bytes);
  return file;
};

const venueKeyRefusal = (file: string): string => {
  try {
    venueKeyOption(file, 'my-exchange');
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error('not refused');
};

it('refuses an option file past its bound, before reading it', async () => {
  const config = sized('risk.json', MAX_JSON_FILE_BYTES + 1);
  const run = await cli('simulate', '--config', config);
  expect(run.code).toBe(2);
  expect(run.stderr).toBe(
    `backstop: --config: cannot read ${config} (larger than ${MAX_JSON_FILE_BYTES} bytes)\n`,
  );
  const key = sized('key.json', MAX_VENUE_KEY_BYTES + 1);
  expect(venueKeyRefusal(key)).toBe(
    `--venue-key: cannot read ${key} (larger than ${MAX_VENUE_KEY_BYTES} bytes)`,
  );
  const book = sized('book.csv', MAX_SEED_FILE_BYTES + 1);
  const seeded = await cli('seed', 'positions', '--file', book, '--target', 'local', '--stage', 'nowhere');
  expect(seeded.code).toBe(2);
  expect(seeded.stderr).toBe(
    `backstop: --file: cannot read ${book} (larger than ${MAX_SEED_FILE_BYTES} bytes)\n`,
  );
  // At the bound, read (and judged on what it holds).
  const key2 = sized('key2.json', MAX_VENUE_KEY_BYTES);
  expect(venueKeyOption(key2, 'my-exchange')).toHaveLength(MAX_VENUE_KEY_BYTES);
});

it('refuses a device or a FIFO, which would block or never end, without opening it', async () => {
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  for (const file of ['/dev/zero', fifo, dir]) {
    const run = await cli('simulate', '--config', file);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`backstop: --config: cannot read ${file} (not a regular file)\n`);
    expect(venueKeyRefusal(file)).toBe(`--venue-key: cannot read ${file} (not a regular file)`);
    const seeded = await cli('seed', 'positions', '--file', file, '--target', 'local', '--stage', 'nowhere');
    expect(seeded.stderr).toBe(`backstop: --file: cannot read ${file} (not a regular file)\n`);
  }
});

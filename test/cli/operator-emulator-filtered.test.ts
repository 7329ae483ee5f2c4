import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * A run that filters a file's operator tests out (`-t`) still collects the file and runs none of its hooks: the
 * emulator's folder, made at collection, stayed in the OS temp dir (final45-filtered-temp-dirs). A vitest of its own,
 * with its own temp dir, runs a file of them filtered to nothing and must leave that dir empty.
 */
const ROOT = path.join(import.meta.dirname, '..', '..');
const temp = mkdtempSync(path.join(tmpdir(), 'backstop-filtered45-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

describe('the operator emulator', () => {
  it('makes no folder for a file whose tests a run filters out', () => {
    const run = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'),
        'run',
        'test/cli/fund-withdraw.test.ts',
        '-t',
        'no test is named this',
      ],
      { cwd: ROOT, env: { ...process.env, TMPDIR: temp }, encoding: 'utf8' },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(readdirSync(temp).filter((name) => name.startsWith('backstop-'))).toEqual([]);
  }, 60_000);
});

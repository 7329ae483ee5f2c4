import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * A cheap guard against temporary folders left in the OS temp dir (tmp45-temp-dirs: the bench's worker bundle and
 * three test files left hundreds): a source file that makes one must also remove something. It reads the file as a
 * whole, so a second folder in a file that removes the first still slips by; the convention it backs is one list of
 * the file's folders removed in afterAll, or a try/finally around the folder's use.
 */

const ROOT = path.join(import.meta.dirname, '..', '..');
const FOLDERS = ['bench', 'cli', 'functions', 'infra', 'report', 'scripts', 'shared', 'test'];
const MAKES = /\bmkdtemp(?:Sync)?\(/;
const REMOVES = /\b(?:rmSync|rm|rmdirSync)\(/;

function sources(): string[] {
  return FOLDERS.flatMap((folder) =>
    readdirSync(path.join(ROOT, folder), { recursive: true, encoding: 'utf8' })
      .filter((f) => /\.(?:ts|mts|js|mjs)$/.test(f) && !f.split(path.sep).includes('node_modules'))
      .map((f) => path.join(folder, f)),
  );
}

describe('temporary folders', () => {
  it('are removed by every file that makes one', () => {
    const files = sources().filter((f) => f !== path.join('test', 'unit', 'temp-dirs.test.ts'));
    const making = files.filter((f) => MAKES.test(readFileSync(path.join(ROOT, f), 'utf8')));
    // The scan sees the files it is meant for (the bench and the tests make folders).
    expect(making).toContain(path.join('bench', 'replay.ts'));
    expect(making.filter((f) => !REMOVES.test(readFileSync(path.join(ROOT, f), 'utf8')))).toEqual([]);
  });
});

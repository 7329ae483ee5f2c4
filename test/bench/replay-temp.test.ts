import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { benchReplay } from '../../bench/replay.ts';

/**
 * The parallel replay bundles its worker into a directory of the OS temp dir: it is removed when the legs end,
 * succeeded or failed (every bench run left one behind, 105 of them in /tmp by session 45). TMPDIR points the
 * replay at a directory of this test's own, so other processes' temp files do not count.
 */

let root: string;
let temp: string;
let prices: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'backstop-replay-temp-'));
  prices = join(root, 'eth-crash.csv');
  const rows = Array.from({ length: 30 }, (_, i) => `${1584003720 + i * 60},${(200 - i * 4).toFixed(2)}`);
  writeFileSync(prices, `time,close\n${rows.join('\n')}\n`);
  temp = join(root, 'tmp');
});

beforeEach(() => {
  mkdirSync(temp);
  vi.stubEnv('TMPDIR', temp);
});

afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(temp, { recursive: true, force: true });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('benchReplay in worker threads', () => {
  it('removes the worker bundle once the legs have run', async () => {
    const replay = await benchReplay({ files: [prices, prices], positions: 20, parallel: true });
    expect(replay.legs).toHaveLength(2);
    expect(replay.legs.map((l) => l.errors)).toEqual([0, 0]);
    expect(readdirSync(temp)).toEqual([]);
  });

  it('removes it when a leg fails', async () => {
    await expect(
      benchReplay({ files: [prices, join(root, 'missing.csv')], positions: 20, parallel: true }),
    ).rejects.toThrow(/prices\/unreadable/);
    expect(readdirSync(temp)).toEqual([]);
  });
});

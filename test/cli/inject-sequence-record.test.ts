import type * as fs from 'node:fs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SEQUENCES_FILE } from '../../shared/local/sent-sequences.ts';
import { injectTick, useOperatorEmulator } from '../support/cli.ts';

/**
 * `inject tick` records the sequence it sends in the sent-sequences record once: a claimed sequence is recorded by
 * its claim (walk43b-sequence-claim), a given one after it is sent. Counted on the record's file calls: each taking
 * of its lock is one link to the lock's name, each write one rename onto the record.
 */

const calls = { locks: 0, writes: 0 };

vi.mock('node:fs', async (original) => {
  const actual = await original<typeof import('node:fs')>();
  return {
    ...actual,
    linkSync: ((from: fs.PathLike, to: fs.PathLike) => {
      if (String(to).endsWith(`${SEQUENCES_FILE}.lock`)) calls.locks += 1;
      return actual.linkSync(from, to);
    }) as typeof actual.linkSync,
    renameSync: ((from: fs.PathLike, to: fs.PathLike) => {
      if (String(to).endsWith(`${path.sep}${SEQUENCES_FILE}`)) calls.writes += 1;
      return actual.renameSync(from, to);
    }) as typeof actual.renameSync,
  };
});

const emulator = useOperatorEmulator('inject-sequence-record');

afterEach(() => {
  calls.locks = 0;
  calls.writes = 0;
});

/** What the record holds for the stage's bus (its keys name the bus). */
const recorded = (busName: string): number[] => {
  const record = JSON.parse(readFileSync(path.join(emulator.dir, 'state', SEQUENCES_FILE), 'utf8')) as Record<
    string,
    number
  >;
  return Object.entries(record)
    .filter(([key]) => key.includes(`|${busName}|`))
    .map(([, sequence]) => sequence);
};

describe('inject tick records its sequence once', () => {
  it('a sequence it numbers: claimed (recorded) before it is sent, not recorded again after', async () => {
    const { names, at } = await emulator.newStage('claimed');
    const run = await injectTick('ETH-USD', '1500', '--wait', '0', ...at);
    expect(run.code).toBe(0);
    const sequence = JSON.parse(run.stdout).entry.Detail.sequence as number;
    expect(recorded(names.busName)).toEqual([sequence]);
    expect(calls).toEqual({ locks: 1, writes: 1 });
  });

  it('a sequence given (--sequence): recorded once it is sent', async () => {
    const { names, at } = await emulator.newStage('given');
    const run = await injectTick('ETH-USD', '1500', '--sequence', '42', '--wait', '0', ...at);
    expect(run.code).toBe(0);
    expect(recorded(names.busName)).toEqual([42]);
    expect(calls).toEqual({ locks: 1, writes: 1 });
  });
});

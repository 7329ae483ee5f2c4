import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../shared/local/atomic-file.ts';
import { recordSentSequence, SEQUENCES_FILE } from '../../shared/local/sent-sequences.ts';
import { LOCAL_FILE, writeLocalRecord } from '../../shared/local/state.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'backstop-atomic45-'));
  dirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A folder where `name` is a non-empty folder: renaming a file over it fails. */
function blocked(name: string): string {
  const dir = tempDir();
  mkdirSync(path.join(dir, name, 'inside'), { recursive: true });
  return dir;
}

// tmp45-temp-dirs: a write or rename that failed left `<file>.<pid>.tmp` in the state folder.
describe('files written aside and renamed', () => {
  it('replace the file whole and leave nothing beside it', () => {
    const dir = tempDir();
    const file = path.join(dir, 'f.json');
    writeFileSync(file, 'old');
    writeFileAtomic(file, 'new');
    expect(readFileSync(file, 'utf8')).toBe('new');
    expect(readdirSync(dir)).toEqual(['f.json']);
  });

  it("leave nothing beside the local stack's record when the rename fails", () => {
    const dir = blocked(LOCAL_FILE);
    const record = {
      pid: process.pid,
      motoPid: process.pid,
      endpoint: 'http://127.0.0.1:1',
      stage: 'local',
      region: 'us-east-1',
      startedAt: new Date().toISOString(),
    };
    expect(() => writeLocalRecord(dir, record)).toThrow();
    expect(readdirSync(dir)).toEqual([LOCAL_FILE]);
  });

  it('leave nothing beside the sent sequences when the rename fails (the lock released too)', () => {
    const dir = blocked(SEQUENCES_FILE);
    expect(() => recordSentSequence(dir, 'embedded|local|bus|ETH-USD', 7)).toThrow();
    expect(readdirSync(dir)).toEqual([SEQUENCES_FILE]);
  });

  // review45-tmp-cleanup-masks: the removal of the file aside threw in place of the write's own error.
  it("rethrow the write's own error when the file aside cannot be removed", () => {
    const dir = tempDir();
    const file = path.join(dir, 'f.json');
    // A folder where the file aside goes: the write fails, and so does removing it (rm without recursive).
    mkdirSync(path.join(dir, `f.json.${process.pid}.tmp`, 'inside'), { recursive: true });
    let thrown: NodeJS.ErrnoException | undefined;
    try {
      writeFileAtomic(file, 'new');
    } catch (error) {
      thrown = error as NodeJS.ErrnoException;
    }
    expect({ code: thrown?.code, syscall: thrown?.syscall }).toEqual({ code: 'EISDIR', syscall: 'open' });
    expect(readdirSync(dir)).toEqual([`f.json.${process.pid}.tmp`]);
  });
});

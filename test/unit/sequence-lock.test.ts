import type * as fs from 'node:fs';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { acquireLock } from '../../shared/local/sent-sequences.ts';

/**
 * The sent-sequences record's lock under injected interleavings: the test runs another writer's takeover at a chosen
 * point of a release or a takeover, through hooks on the file calls (no sleeps, no second process).
 */

type Hook = (file: string) => void;
const hooks: { afterRead?: Hook; afterStat?: Hook; failWrite?: boolean } = {};

vi.mock('node:fs', async (original) => {
  const actual = await original<typeof import('node:fs')>();
  const fire = (name: 'afterRead' | 'afterStat', file: unknown) => {
    const hook = hooks[name];
    if (hook && typeof file === 'string') hook(file);
  };
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
  const wrapped = {
    ...actual,
    readFileSync: ((file: fs.PathOrFileDescriptor, options?: unknown) => {
      const out = actual.readFileSync(file, options as never);
      fire('afterRead', typeof file === 'number' ? fdPaths.get(file) : file);
      return out;
    }) as typeof actual.readFileSync,
    statSync: ((file: fs.PathLike, options?: unknown) => {
      const out = actual.statSync(file, options as never);
      fire('afterStat', file);
      return out;
    }) as typeof actual.statSync,
    fstatSync: ((fd: number, options?: unknown) => {
      const out = actual.fstatSync(fd, options as never);
      fire('afterStat', fdPaths.get(fd));
      return out;
    }) as typeof actual.fstatSync,
    openSync: ((file: fs.PathLike, flags?: unknown, mode?: unknown) => {
      const fd = actual.openSync(file, flags as never, mode as never);
      fdPaths.set(fd, String(file));
      return fd;
    }) as typeof actual.openSync,
    writeSync: ((...args: Parameters<typeof actual.writeSync>) => {
      if (hooks.failWrite) throw enospc();
      return actual.writeSync(...args);
    }) as typeof actual.writeSync,
    writeFileSync: ((...args: Parameters<typeof actual.writeFileSync>) => {
      if (hooks.failWrite) throw enospc();
      return actual.writeFileSync(...args);
    }) as typeof actual.writeFileSync,
  };
  return { ...wrapped, default: wrapped };
});
const fdPaths = new Map<number, string>();

const dirs: string[] = [];
function lockPath(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'backstop-lock44-'));
  dirs.push(dir);
  return path.join(dir, 'sequences.json.lock');
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  delete hooks.afterRead;
  delete hooks.afterStat;
  delete hooks.failWrite;
});

/** Runs `action` once, at the first call the hook sees on `lock` (or a file named after it), with the hooks off. */
function once(lock: string, action: () => void): Hook {
  let done = false;
  return (file) => {
    if (done || !file.startsWith(lock)) return;
    done = true;
    const saved = { ...hooks };
    delete hooks.afterRead;
    delete hooks.afterStat;
    try {
      action();
    } finally {
      Object.assign(hooks, { afterRead: saved.afterRead, afterStat: saved.afterStat });
    }
  };
}

/** A lock its holder left 60 s ago (a dead writer's), which the next writer takes over at once. */
const ageLock = (lock: string) =>
  utimesSync(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));

describe('lock44-release-atomic: the sequence lock under injected interleavings', () => {
  it("a takeover landing between the release's check and its delete keeps its lock", () => {
    const lock = lockPath();
    const paused = acquireLock(lock);
    ageLock(lock); // its holder paused past the stale age: the next writer takes it over
    let taker: (() => void) | undefined;
    let takersToken = '';
    hooks.afterRead = once(lock, () => {
      taker = acquireLock(lock);
      takersToken = readFileSync(lock, 'utf8');
    });
    paused(); // before: read its own token, then deleted the lock the taker had put there meanwhile
    expect(taker).toBeDefined();
    expect(existsSync(lock)).toBe(true);
    expect(readFileSync(lock, 'utf8')).toBe(takersToken);
    taker!();
    expect(existsSync(lock)).toBe(false);
    expect(readdirSync(path.dirname(lock))).toEqual([]);
  });

  it("a release after a takeover puts the taker's lock back", () => {
    const lock = lockPath();
    const paused = acquireLock(lock);
    ageLock(lock);
    const taker = acquireLock(lock); // took the paused writer's lock over
    const takersToken = readFileSync(lock, 'utf8');
    paused();
    expect(readFileSync(lock, 'utf8')).toBe(takersToken);
    taker();
    expect(readdirSync(path.dirname(lock))).toEqual([]);
  });

  it("puts a taker's lock back without clobbering a third writer's, taken while it was aside", () => {
    const lock = lockPath();
    const paused = acquireLock(lock);
    ageLock(lock);
    let taker: (() => void) | undefined;
    let third: (() => void) | undefined;
    let thirdsToken = '';
    let reads = 0;
    hooks.afterRead = (file) => {
      if (!file.startsWith(lock)) return;
      reads++;
      const saved = hooks.afterRead;
      delete hooks.afterRead;
      try {
        // The release's look saw its own lock; a takeover replaces it before the release moves it aside.
        if (reads === 1) taker = acquireLock(lock);
        // The release has moved the taker's lock aside to read it: the name is free for that instant.
        else if (reads === 2) {
          expect(existsSync(lock)).toBe(false);
          third = acquireLock(lock);
          thirdsToken = readFileSync(lock, 'utf8');
        }
      } finally {
        hooks.afterRead = saved;
      }
    };
    paused();
    delete hooks.afterRead;
    expect(third).toBeDefined();
    expect(readFileSync(lock, 'utf8')).toBe(thirdsToken);
    third!();
    taker!(); // its lock was lost in that instant (the window left open): nobody else's is removed
    expect(readdirSync(path.dirname(lock))).toEqual([]);
  });

  it("a takeover of a dead writer's lock never deletes the lock another writer took over first", () => {
    const lock = lockPath();
    acquireLock(lock); // its holder died
    ageLock(lock);
    let other: (() => void) | undefined;
    let otherReleased = false;
    let looks = 0;
    hooks.afterStat = (file) => {
      if (file !== lock) return;
      looks++;
      const saved = hooks.afterStat;
      delete hooks.afterStat;
      try {
        // First look: judged stale; another writer takes it over before this one acts on it.
        if (looks === 1) other = acquireLock(lock);
        // A later look: the other still holds it, and lets go.
        else if (other && !otherReleased) {
          other();
          otherReleased = true;
        }
      } finally {
        hooks.afterStat = saved;
      }
    };
    const mine = acquireLock(lock);
    // Before: deleted the other's fresh lock and took one beside it, both holding.
    expect(other).toBeDefined();
    expect(otherReleased).toBe(true);
    mine();
    expect(existsSync(lock)).toBe(false);
  });

  it('a lock whose token could not be written is not left behind', () => {
    const lock = lockPath();
    hooks.failWrite = true;
    expect(() => acquireLock(lock)).toThrow(/ENOSPC/);
    delete hooks.failWrite;
    // Before: an empty lock file, which every writer waited 2 s for and then took over.
    expect(readdirSync(path.dirname(lock))).toEqual([]);
    const next = acquireLock(lock);
    expect(readFileSync(lock, 'utf8')).not.toBe('');
    next();
  });
});

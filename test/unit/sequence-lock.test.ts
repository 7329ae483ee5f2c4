import type * as fs from 'node:fs';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { acquireLock, recordSentSequence } from '../../shared/local/sent-sequences.ts';
import {
  currentHost,
  hostIdentity,
  readHostParts,
  temporaryPath,
  writeLocalRecord,
} from '../../shared/local/state.ts';

/**
 * The sent-sequences record's lock under injected interleavings: the test runs another writer's takeover at a chosen
 * point of a release or a takeover, through hooks on the file calls (no sleeps, no second process).
 */

type Hook = (file: string) => void;
const hooks: {
  afterRead?: Hook;
  afterStat?: Hook;
  failWrite?: boolean;
  linkError?: string;
  failRename?: boolean;
  failedRenames?: string[];
} = {};

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
    // A writer killed between its write and its rename.
    renameSync: ((...args: Parameters<typeof actual.renameSync>) => {
      if (hooks.failRename && String(args[0]).endsWith('.tmp')) {
        hooks.failedRenames?.push(path.basename(String(args[0])));
        throw new Error('killed before the rename');
      }
      return actual.renameSync(...args);
    }) as typeof actual.renameSync,
    // A filesystem without hard links (vfat, exFAT, some shared folders) refuses every link.
    linkSync: ((...args: Parameters<typeof actual.linkSync>) => {
      if (hooks.linkError)
        throw Object.assign(new Error(`${hooks.linkError}: operation not permitted, link`), {
          code: hooks.linkError,
        });
      return actual.linkSync(...args);
    }) as typeof actual.linkSync,
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
  delete hooks.linkError;
  delete hooks.failRename;
  delete hooks.failedRenames;
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** The clock the lock reads (Date.now), moved on by `skew.ms` without waiting. */
const skew = { ms: 0 };
function skewClock(): void {
  skew.ms = 0;
  const real = Date.now.bind(Date);
  vi.spyOn(Date, 'now').mockImplementation(() => real() + skew.ms);
}

/** Runs `step(n)` at the n-th look at `lock` itself (after its stat), with the hooks off meanwhile. */
function atLooks(lock: string, step: (n: number) => void): Hook {
  let looks = 0;
  return (file) => {
    if (file !== lock) return;
    looks++;
    const saved = hooks.afterStat;
    delete hooks.afterStat;
    try {
      step(looks);
    } finally {
      hooks.afterStat = saved;
    }
  };
}

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

describe('review44: the wait is for one lock, and a filesystem without hard links still locks', () => {
  it('review44-lock-wait-per-lock: a writer that waited past 2 s never takes over a lock another has just taken', () => {
    const lock = lockPath();
    skewClock();
    const first = acquireLock(lock);
    let second: (() => void) | undefined;
    let secondsToken = '';
    let secondReleased = false;
    hooks.afterStat = atLooks(lock, (n) => {
      if (n === 1) {
        // The waiter saw the first's lock; the first lets go, a second writer takes the lock at once, and the
        // waiter has been waiting past LOCK_WAIT_MS (others took the lock turn by turn meanwhile).
        first();
        second = acquireLock(lock);
        secondsToken = readFileSync(lock, 'utf8');
        skew.ms += 2_001;
      } else if (n === 3 && second) {
        // The second, a few milliseconds into its lock, still holds it, and lets go.
        expect(readFileSync(lock, 'utf8')).toBe(secondsToken);
        second();
        secondReleased = true;
      }
    });
    const waiter = acquireLock(lock);
    delete hooks.afterStat;
    // Before: past its own deadline, the waiter took over the second's fresh lock at its next look, both holding.
    expect(secondReleased).toBe(true);
    waiter();
    expect(readdirSync(path.dirname(lock))).toEqual([]);
  });

  it('review44-lock-wait-per-lock: a lock held past the wait by the same writer is still taken over', () => {
    const lock = lockPath();
    skewClock();
    const stuck = acquireLock(lock);
    hooks.afterStat = atLooks(lock, (n) => {
      if (n === 2) skew.ms += 2_001; // the same lock, seen again past LOCK_WAIT_MS: its holder is stuck
    });
    const next = acquireLock(lock);
    delete hooks.afterStat;
    const nextsToken = readFileSync(lock, 'utf8');
    stuck(); // its lock is the next's now: left as it is
    expect(readFileSync(lock, 'utf8')).toBe(nextsToken);
    next();
    expect(readdirSync(path.dirname(lock))).toEqual([]);
  });

  it("review44-lock-wait-per-lock: a lock taken after a long wait reads as fresh, not as a dead writer's", () => {
    const lock = lockPath();
    skewClock();
    const first = acquireLock(lock);
    hooks.afterStat = atLooks(lock, (n) => {
      if (n === 1) {
        first();
        skew.ms += 11_000; // the waiter waited past LOCK_STALE_MS (a lock passed from writer to writer)
      }
    });
    const waiter = acquireLock(lock);
    delete hooks.afterStat;
    // Before: its lock kept the mtime of the token file written when it began to wait, 11 s old: the next writer
    // took it over at once as a dead writer's.
    expect(Date.now() - statSync(lock).mtimeMs).toBeLessThan(2_000);
    waiter();
  });

  for (const code of ['EPERM', 'ENOTSUP', 'ENOSYS']) {
    it(`review44-lock-no-hard-links: locks where link fails with ${code}, and puts a lock back there too`, () => {
      const lock = lockPath();
      hooks.linkError = code;
      // Before: every inject and replay failed ("internal error: EPERM ... link"); open(wx) had worked there.
      const paused = acquireLock(lock);
      const pausedToken = readFileSync(lock, 'utf8');
      expect(pausedToken).not.toBe('');
      expect(readdirSync(path.dirname(lock))).toEqual([path.basename(lock)]);
      ageLock(lock);
      let taker: (() => void) | undefined;
      let takersToken = '';
      hooks.afterRead = once(lock, () => {
        taker = acquireLock(lock); // a takeover between the release's check and its move
        takersToken = readFileSync(lock, 'utf8');
      });
      paused();
      delete hooks.afterRead;
      expect(takersToken).not.toBe(pausedToken);
      expect(readFileSync(lock, 'utf8')).toBe(takersToken); // put back, by a copy
      taker!();
      expect(readdirSync(path.dirname(lock))).toEqual([]);
    });
  }
});

/** A pid no process has (above Linux's largest pid_max, 2^22): kill(pid, 0) answers ESRCH. */
const DEAD_PID = 99_999_999;
const uuid = '0b6f1c2e-5d3a-4e7b-9c1f-2a8d4e6b0c31';
/** Injected identities: this writer's host, and another pid namespace's (a container's, or its host's). */
const HERE = '1111111111111111';
const THERE = '2222222222222222';
/** Past the age at which another host's files are a dead writer's (an hour). */
const PAST_OTHER_HOST_STALE_MS = 60 * 60_000 + 1_000;

describe("local45-token-rewritten: a waiter whose token file another host's sweep removed", () => {
  // A waiter paused over an hour (Ctrl-Z) reads as dead to another host's sweep, which removes its token file; on
  // waking it failed with ENOENT: at its link, or at its touch once its wait passed LOCK_WAIT_MS.
  for (const [at, ms] of [
    ['link', 0],
    ['touch', 2_001],
  ] as const)
    it(`writes its token again and takes the lock (at its ${at})`, () => {
      const lock = lockPath();
      skewClock();
      const holder = acquireLock(lock);
      hooks.afterStat = atLooks(lock, (n) => {
        if (n !== 1) return;
        for (const name of readdirSync(path.dirname(lock)))
          if (name !== path.basename(lock)) rmSync(path.join(path.dirname(lock), name));
        holder();
        skew.ms += ms;
      });
      const waiter = acquireLock(lock);
      delete hooks.afterStat;
      expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${process.pid}-`));
      expect(readdirSync(path.dirname(lock))).toEqual([path.basename(lock)]);
      waiter();
      expect(readdirSync(path.dirname(lock))).toEqual([]);
    });
});

describe('small44-lock-sweep: a writer that takes the lock removes what killed waiters left', () => {
  it("removes a dead process's token and aside files, and keeps a live one's, the lock and other files", () => {
    const lock = lockPath();
    const dir = path.dirname(lock);
    const name = path.basename(lock);
    const dead = [
      `${name}.${DEAD_PID}-${HERE}-${uuid}`,
      `${name}.${DEAD_PID}-${HERE}-${uuid}.takeover`,
      `${name}.${DEAD_PID}-${HERE}-${uuid}.release`,
    ];
    const kept = [
      `${name}.${process.pid}-${HERE}-${uuid}`, // a live waiter's token
      'sequences.json',
      `other.lock.${DEAD_PID}-${HERE}-${uuid}`, // another lock's: not this one's to judge
      `${name}.${DEAD_PID}-${HERE}-${uuid}.notes`,
    ];
    for (const file of [...dead, ...kept]) writeFileSync(path.join(dir, file), 'x');
    expect(() => process.kill(DEAD_PID, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));

    const release = acquireLock(lock, HERE);
    // Before: every file stayed, and .backstop/ filled up with a killed command's tokens.
    expect(readdirSync(dir).sort()).toEqual([...kept, name].sort());
    release();
    expect(readdirSync(dir).sort()).toEqual([...kept].sort());
  });
});

describe("local45-lock-pid-namespace: a pid is judged only on its own host's files", () => {
  it("keeps another host's files however its pids read here, until they are an hour old", () => {
    const lock = lockPath();
    const dir = path.dirname(lock);
    const name = path.basename(lock);
    const thisHostsDead = `${name}.${DEAD_PID}-${HERE}-${uuid}`;
    const thisHostsLive = `${name}.${process.pid}-${HERE}-${uuid}`;
    const otherHosts = [
      // A live waiter in a container whose pid no process of this one has: before, removed, and its command
      // failed with ENOENT at its next touch or link.
      `${name}.${DEAD_PID}-${THERE}-${uuid}`,
      // A dead writer's aside whose pid is a live process here (this one): before, kept for good.
      `${name}.${process.pid}-${THERE}-${uuid}.takeover`,
      // An older version's token, which names no host.
      `${name}.${DEAD_PID}-${uuid}`,
    ];
    for (const file of [thisHostsDead, thisHostsLive, ...otherHosts])
      writeFileSync(path.join(dir, file), 'x');

    acquireLock(lock, HERE)();
    expect(readdirSync(dir).sort()).toEqual([thisHostsLive, ...otherHosts].sort());

    // An hour on, untouched: their writers are gone, whatever the pids say; this host's live one is still judged by
    // its pid.
    skewClock();
    skew.ms = PAST_OTHER_HOST_STALE_MS;
    acquireLock(lock, HERE)();
    expect(readdirSync(dir)).toEqual([thisHostsLive]);
  });

  it("names this process's host by its pid namespace, its boot and its hostname", () => {
    const parts = { hostname: 'box', pidNamespace: 'pid:[4026531836]', bootId: 'b0' };
    const id = hostIdentity(parts);
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(hostIdentity({ ...parts })).toBe(id);
    // A container on the same machine (its own namespace), the same machine rebooted, another machine of the
    // same name: each another host.
    expect(hostIdentity({ ...parts, pidNamespace: 'pid:[4026532201]' })).not.toBe(id);
    expect(hostIdentity({ ...parts, bootId: 'b1' })).not.toBe(id);
    expect(hostIdentity({ ...parts, hostname: 'other' })).not.toBe(id);
    expect(hostIdentity({ hostname: 'box' })).not.toBe(id); // no /proc (macOS, Windows): the hostname alone

    const read = (get: () => string) => {
      try {
        return get().trim();
      } catch {
        return undefined;
      }
    };
    const here = readHostParts();
    expect(here.hostname).toBe(hostname());
    expect(here.pidNamespace).toBe(read(() => readlinkSync('/proc/self/ns/pid')));
    expect(here.bootId).toBe(read(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')));
    expect(currentHost()).toBe(hostIdentity(here));

    // The lock's token names it.
    const lock = lockPath();
    const release = acquireLock(lock);
    expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${process.pid}-${currentHost()}-`));
    release();
  });
});

describe('local45-tmp-leftover: the lock holder removes the temporaries of writers killed before their rename', () => {
  it("removes a dead writer's sequences.json and local.json temporaries, by the same host rule", () => {
    const lock = lockPath();
    const dir = path.dirname(lock);
    const dead = [`sequences.json.${DEAD_PID}-${HERE}.tmp`, `local.json.${DEAD_PID}-${HERE}.tmp`];
    const kept = [
      `sequences.json.${process.pid}-${HERE}.tmp`, // a live writer's, between its write and its rename
      `sequences.json.${DEAD_PID}-${THERE}.tmp`, // another host's: by age
      `local.json.${DEAD_PID}.tmp`, // an older version's (no host): by age
      `notes.json.${DEAD_PID}-${HERE}.tmp`, // not the state folder's
    ];
    for (const file of [...dead, ...kept]) writeFileSync(path.join(dir, file), '{');

    // Before: every leftover stayed in .backstop/ for good.
    acquireLock(lock, HERE)();
    expect(readdirSync(dir).sort()).toEqual([...kept].sort());

    skewClock();
    skew.ms = PAST_OTHER_HOST_STALE_MS;
    acquireLock(lock, HERE)();
    expect(readdirSync(dir).sort()).toEqual(
      [`sequences.json.${process.pid}-${HERE}.tmp`, `notes.json.${DEAD_PID}-${HERE}.tmp`].sort(),
    );
  });

  it('names the temporaries of both writers of the state folder so', () => {
    const dir = path.dirname(lockPath());
    expect(temporaryPath(path.join(dir, 'x'), HERE)).toBe(path.join(dir, `x.${process.pid}-${HERE}.tmp`));
    hooks.failRename = true;
    hooks.failedRenames = [];
    expect(() => recordSentSequence(dir, 'k', 1)).toThrow(/killed before the rename/);
    expect(() =>
      writeLocalRecord(dir, {
        pid: DEAD_PID,
        motoPid: 0,
        endpoint: 'http://127.0.0.1:1',
        stage: 'dev',
        region: 'us-east-1',
        startedAt: '',
      }),
    ).toThrow(/killed before the rename/);
    expect(hooks.failedRenames.sort()).toEqual([
      `local.json.${process.pid}-${currentHost()}.tmp`,
      `sequences.json.${process.pid}-${currentHost()}.tmp`,
    ]);
    // A failed rename removes its file (tmp45-temp-dirs); only a kill leaves one, for the sweep above.
    expect(readdirSync(dir).filter((file) => file.endsWith('.tmp'))).toEqual([]);
  });
});

import {
  closeSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { rotateLogs, rotateWhileRunning } from '../../shared/local/log-rotation.ts';
import { metricsToFile } from '../../shared/local/metric-lines.ts';

// small44-log-rotation: `local up` appended to .backstop/metrics.log and local.log run after run, never rotated, so a
// developer's replays grew them without bound. Each is now moved to `<name>.1` at start once past a bound.

const dirs: string[] = [];
function stateDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'backstop-rotate44-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('small44-log-rotation: local up keeps at most two files of each log', () => {
  it('with no bound given, moves a log past 50 MB (the usage and README say so) and keeps one at it', () => {
    const dir = stateDir();
    const at = path.join(dir, 'local.log');
    const past = path.join(dir, 'metrics.log');
    // Sparse files: the sizes without the writes.
    writeFileSync(at, '');
    truncateSync(at, 50 * 1024 * 1024);
    writeFileSync(past, '');
    truncateSync(past, 50 * 1024 * 1024 + 1);
    rotateLogs([at, past], () => expect.fail('no warning expected'));
    expect(readdirSync(dir).sort()).toEqual(['local.log', 'metrics.log.1']);
  });

  it('moves a log past the bound to <name>.1, over an older .1, and leaves one within it', () => {
    const dir = stateDir();
    const metrics = path.join(dir, 'metrics.log');
    const local = path.join(dir, 'local.log');
    writeFileSync(metrics, 'x'.repeat(11));
    writeFileSync(`${metrics}.1`, 'older');
    writeFileSync(local, 'y'.repeat(10)); // at the bound: kept
    const warnings: string[] = [];
    rotateLogs([metrics, local], (message) => warnings.push(message), 10);
    expect(warnings).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(['local.log', 'metrics.log.1']);
    expect(readFileSync(`${metrics}.1`, 'utf8')).toBe('x'.repeat(11));
    expect(readFileSync(local, 'utf8')).toBe('y'.repeat(10));
    // The next run past the bound again: still two files, the older run's gone.
    writeFileSync(metrics, 'z'.repeat(12));
    rotateLogs([metrics], (message) => warnings.push(message), 10);
    expect(readdirSync(dir).sort()).toEqual(['local.log', 'metrics.log.1']);
    expect(readFileSync(`${metrics}.1`, 'utf8')).toBe('z'.repeat(12));
  });

  it('a missing log is nothing to do, and one that cannot be moved is said, not thrown', () => {
    const dir = stateDir();
    const missing = path.join(dir, 'metrics.log');
    const stuck = path.join(dir, 'local.log');
    writeFileSync(stuck, 'x'.repeat(20));
    mkdirSync(`${stuck}.1`); // a folder where the old log goes: the rename fails
    writeFileSync(path.join(`${stuck}.1`, 'keep'), '');
    const warnings: string[] = [];
    expect(() => rotateLogs([missing, stuck], (message) => warnings.push(message), 10)).not.toThrow();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${stuck} could not be moved to ${stuck}.1`);
    expect(readFileSync(stuck, 'utf8')).toBe('x'.repeat(20));
  });
});

// local45-log-rotation-running: the logs were rotated only when `local up` started, so one running for days grew them
// without bound. metrics.log is moved once its bound is written (counted), local.log looked at on a timer, here
// triggered by hand.
describe('local45-log-rotation-running: a running local up keeps its logs within the bound', () => {
  /** The timer `rotateWhileRunning` would set, as a trigger the test pulls. */
  function manualTrigger(): {
    pull: () => void;
    stopped: () => boolean;
    every: (check: () => void) => () => void;
  } {
    let check: (() => void) | undefined;
    let stopped = false;
    return {
      pull: () => check!(),
      stopped: () => stopped,
      every: (given) => {
        check = given;
        return () => {
          stopped = true;
        };
      },
    };
  }

  it('looks every 10 s on its own timer, and no more once stopped', () => {
    const dir = stateDir();
    const log = path.join(dir, 'local.log');
    const fd = openSync(log, 'a');
    vi.useFakeTimers();
    try {
      const stop = rotateWhileRunning(log, () => expect.fail('no warning expected'), {
        maxBytes: 10,
        descriptor: fd,
      });
      writeSync(fd, 'x'.repeat(11));
      vi.advanceTimersByTime(9_999);
      expect(readdirSync(dir)).toEqual(['local.log']);
      vi.advanceTimersByTime(1);
      expect(readFileSync(`${log}.1`, 'utf8')).toBe('x'.repeat(11));
      expect(readFileSync(log, 'utf8')).toBe('');
      stop();
      writeSync(fd, 'y'.repeat(11));
      vi.advanceTimersByTime(60_000);
      expect(readFileSync(log, 'utf8')).toBe('y'.repeat(11));
    } finally {
      vi.useRealTimers();
      closeSync(fd);
    }
  });

  it("empties local.log past the bound into local.log.1, and the stack's own descriptor goes on at its start", () => {
    const dir = stateDir();
    const log = path.join(dir, 'local.log');
    const fd = openSync(log, 'a'); // as the detached child's stdout and stderr
    try {
      const trigger = manualTrigger();
      const stop = rotateWhileRunning(log, () => expect.fail('no warning expected'), {
        maxBytes: 10,
        every: trigger.every,
      });
      writeSync(fd, 'line one\n'); // 9 bytes: within the bound
      trigger.pull();
      expect(readdirSync(dir)).toEqual(['local.log']);
      writeSync(fd, 'line two\n');
      // Before: nothing looked at the log while local up ran.
      trigger.pull();
      expect(readFileSync(`${log}.1`, 'utf8')).toBe('line one\nline two\n');
      expect(readFileSync(log, 'utf8')).toBe('');
      writeSync(fd, 'line three\n');
      expect(readFileSync(log, 'utf8')).toBe('line three\n'); // appended at the start: no hole
      stop();
      expect(trigger.stopped()).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  it('local46-deleted-log: a local.log deleted while local up runs is emptied through its descriptor past the bound', () => {
    const dir = stateDir();
    const log = path.join(dir, 'local.log');
    const fd = openSync(log, 'a'); // as the detached child's stdout and stderr
    try {
      const trigger = manualTrigger();
      rotateWhileRunning(log, () => expect.fail('no warning expected'), {
        maxBytes: 10,
        every: trigger.every,
        descriptor: fd,
      });
      unlinkSync(log); // an operator's rm while it runs: the lines go on into the unlinked file
      writeSync(fd, 'line one\n');
      trigger.pull();
      expect(fstatSync(fd).size).toBe(9); // within the bound: kept
      writeSync(fd, 'line two\n');
      trigger.pull();
      // Before: the deleted file grew without bound, its disk space held until local up ended.
      expect(fstatSync(fd).size).toBe(0);
      expect(readdirSync(dir)).toEqual([]); // nothing made in its place
    } finally {
      closeSync(fd);
    }
  });

  it('review46-log-recreated: a deleted local.log is emptied through its descriptor even with a new file at its path', () => {
    const dir = stateDir();
    const log = path.join(dir, 'local.log');
    const fd = openSync(log, 'a'); // as the detached child's stdout and stderr
    try {
      const trigger = manualTrigger();
      rotateWhileRunning(log, () => expect.fail('no warning expected'), {
        maxBytes: 10,
        every: trigger.every,
        descriptor: fd,
      });
      unlinkSync(log); // an operator's rm while it runs
      writeFileSync(log, 'theirs\n'); // and a file made at the path since (a touch, a tool's log)
      writeSync(fd, 'line one\nline two\n');
      trigger.pull();
      // Before: the path's small file was looked at, and the unlinked one grew without bound.
      expect(fstatSync(fd).size).toBe(0);
      expect(readdirSync(dir)).toEqual(['local.log']); // the other file neither moved nor emptied
      expect(readFileSync(log, 'utf8')).toBe('theirs\n');
      writeFileSync(log, 'x'.repeat(20)); // past the bound too: not this process's to rotate
      trigger.pull();
      expect(readdirSync(dir)).toEqual(['local.log']);
      expect(readFileSync(log, 'utf8')).toBe('x'.repeat(20));
    } finally {
      closeSync(fd);
    }
  });

  it('a log that cannot be moved is said once, not at every look', () => {
    const dir = stateDir();
    const log = path.join(dir, 'local.log');
    writeFileSync(log, 'x'.repeat(20));
    mkdirSync(`${log}.1`);
    const warnings: string[] = [];
    const trigger = manualTrigger();
    rotateWhileRunning(log, (message) => warnings.push(message), { maxBytes: 10, every: trigger.every });
    trigger.pull();
    trigger.pull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${log} could not be moved to ${log}.1`);
    expect(readFileSync(log, 'utf8')).toBe('x'.repeat(20));
  });

  it('local46-deleted-log: a metrics.log deleted while local up runs is opened anew past the bound', async () => {
    const dir = stateDir();
    const file = path.join(dir, 'metrics.log');
    const blob = (n: number) =>
      `{"_aws":{"Timestamp":${n},"CloudWatchMetrics":[]},"service":"backstop-local"}`;
    const line = blob(1).length + 1;
    const stdout = new Writable({ write: (_chunk, _encoding, done) => done() });
    const warnings: string[] = [];
    const metrics = metricsToFile(file, stdout, (message) => warnings.push(message), 1.5 * line);
    stdout.write(`${blob(1)}\n`);
    unlinkSync(file); // deleted while it runs
    stdout.write(`${blob(2)}\n`); // past the bound: nothing to move
    stdout.write(`${blob(3)}\n`);
    await metrics.close();
    // Before: "could not be moved" said, and every later line written where no folder shows.
    expect(warnings).toEqual([]);
    expect(readFileSync(file, 'utf8')).toBe(`${blob(3)}\n`);
    expect(readdirSync(dir)).toEqual(['metrics.log']);
  });

  // The constant's pin (LOG_ROTATE_BYTES, 50 MB) covered this default too, rotateLogs' alone is tested above.
  it('with no bound given, keeps metrics.log at 50 MB and moves it once a line takes it past', async () => {
    const dir = stateDir();
    const file = path.join(dir, 'metrics.log');
    const blob = (n: number) =>
      `{"_aws":{"Timestamp":${n},"CloudWatchMetrics":[]},"service":"backstop-local"}`;
    const line = blob(1).length + 1; // the same length for n < 10
    writeFileSync(file, '');
    truncateSync(file, 50 * 1024 * 1024 - line); // sparse: the size without the writes
    const stdout = new Writable({ write: (_chunk, _encoding, done) => done() });
    const metrics = metricsToFile(file, stdout, () => expect.fail('no warning expected'));
    stdout.write(`${blob(1)}\n`); // 50 MB: kept
    stdout.write(`${blob(2)}\n`); // past it: moved, this line with it
    stdout.write(`${blob(3)}\n`);
    await metrics.close();
    expect(statSync(`${file}.1`).size).toBe(50 * 1024 * 1024 + line);
    expect(readFileSync(file, 'utf8')).toBe(`${blob(3)}\n`);
  });

  it('moves metrics.log to metrics.log.1 once its bound is written, every line kept in order', async () => {
    const dir = stateDir();
    const file = path.join(dir, 'metrics.log');
    const blob = (n: number) =>
      `{"_aws":{"Timestamp":${n},"CloudWatchMetrics":[]},"service":"backstop-local"}`;
    const line = blob(1).length + 1; // the same length for n < 10
    writeFileSync(file, `${blob(0)}\n`); // a run before this one's
    const stdout = new Writable({ write: (_chunk, _encoding, done) => done() });
    const metrics = metricsToFile(file, stdout, () => expect.fail('no warning expected'), 2.5 * line);
    stdout.write(`${blob(1)}\n`);
    stdout.write(`${blob(2)}\n`); // three lines in the file: past the bound
    stdout.write(`${blob(3)}\n`);
    await metrics.close();
    // Before: one file, every line in it.
    expect(readFileSync(`${file}.1`, 'utf8')).toBe(`${blob(0)}\n${blob(1)}\n${blob(2)}\n`);
    expect(readFileSync(file, 'utf8')).toBe(`${blob(3)}\n`);
  });
});

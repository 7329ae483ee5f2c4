import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOG_ROTATE_BYTES, rotateLogs } from '../../shared/local/log-rotation.ts';

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
  it('the default bound is 50 MB', () => {
    expect(LOG_ROTATE_BYTES).toBe(50 * 1024 * 1024);
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

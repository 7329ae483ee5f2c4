import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.ts';

/** `npm run demo` writes report.html, and `npm run demo -- --report FILE` another file (it was "given twice"). */

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const dir = mkdtempSync(path.join(tmpdir(), 'backstop-demo-'));
const cwd = process.cwd();

afterAll(() => {
  process.chdir(cwd);
  rmSync(dir, { recursive: true, force: true });
});

describe('the demo command', () => {
  it('writes report.html in the working directory when no --report is given', async () => {
    process.chdir(dir);
    try {
      const result = await cli('demo', '--positions', '300');
      expect(result.stderr).toContain('report written to report.html');
      expect(result.code).toBe(0);
      expect(existsSync(path.join(dir, 'report.html'))).toBe(true);
    } finally {
      process.chdir(cwd);
    }
  });

  it('takes --report after `npm run demo --`', async () => {
    const report = path.join(dir, 'other.html');
    const { stderr } = await run(
      'npm',
      ['run', '-s', 'demo', '--', '--positions', '300', '--report', report],
      { cwd: repoRoot },
    );
    expect(stderr).toContain(`report written to ${report}`);
    expect(existsSync(report)).toBe(true);
  });

  it('says in its help that it writes report.html, then gives the options of simulate', async () => {
    const { code, stdout } = await cli('demo', '--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^backstop demo \(npm run demo\): simulate, writing its report to report\.html/);
    expect(stdout).toContain('Usage: backstop simulate [options]');
  });

  it('refuses --report given twice, as every option', async () => {
    const result = await cli('demo', '--report', 'a.html', '--report', 'b.html');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--report: given twice/);
  });
});

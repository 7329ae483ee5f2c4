import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The HTML report in a real browser (Debian's chromium, headless, no network): it loads without a console or
 * page error, every chart has drawn a canvas of non-zero size, and a screenshot lands in test-results/.
 */

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('HTML report in headless Chromium', () => {
  let browser: Browser;
  let dir: string | undefined;
  let report: string;

  beforeAll(async () => {
    // Not skipped when missing: a report that nobody renders is not tested. CI installs Debian's chromium.
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
    dir = mkdtempSync(path.join(tmpdir(), 'report-'));
    report = path.join(dir, 'report.html');
    const cli = path.join(repoRoot, 'cli', 'main.ts');
    await run(
      process.execPath,
      ['--import', 'tsx', cli, 'simulate', '--positions', '3000', '--report', report],
      {
        cwd: repoRoot,
      },
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  });

  afterAll(async () => {
    try {
      await browser?.close();
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is one self-contained file: the plotting library and the data inline, nothing fetched', () => {
    const html = readFileSync(report, 'utf8');
    expect(statSync(report).size).toBeGreaterThan(500_000);
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+href=/);
    expect(html).toContain('id="report-data"');
  });

  it('loads without errors and renders every chart', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => {
      if (!r.url().startsWith('file:')) requests.push(r.url());
    });
    await page.goto(pathToFileURL(report).href);
    await page.waitForSelector('body[data-charts-ready]', { timeout: 20_000 });

    const charts = await page.$$eval('.chart', (els) =>
      els.map((el) => {
        const canvas = el.querySelector('canvas, svg');
        const box = canvas?.getBoundingClientRect();
        return { id: el.id, width: box?.width ?? 0, height: box?.height ?? 0 };
      }),
    );
    expect(charts.map((c) => c.id)).toEqual([
      'chart-price',
      'chart-layers-waterfall',
      'chart-layers-no-auction',
      'chart-layers-market-only',
      'chart-fund',
      'chart-slippage',
      'chart-loss',
      'chart-baddebt',
    ]);
    for (const c of charts) {
      expect(c.width, c.id).toBeGreaterThan(0);
      expect(c.height, c.id).toBeGreaterThan(0);
    }
    // A drawn chart has coloured pixels, not a blank canvas.
    const painted = await page.$$eval('.chart canvas', (canvases) =>
      canvases.map((canvas) => {
        // No DOM library in the test's tsconfig: the canvas is typed by what is used here.
        const c = canvas as unknown as {
          width: number;
          height: number;
          getContext(kind: '2d'): {
            getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
          } | null;
        };
        const data =
          c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? new Uint8ClampedArray();
        let colored = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i + 3]! > 0 && (data[i]! < 200 || data[i + 1]! < 200 || data[i + 2]! < 200)) colored++;
        }
        return colored;
      }),
    );
    // Every chart drew on a canvas (a renderer switched to SVG would leave this list, and the check, empty).
    expect(painted).toHaveLength(charts.length);
    for (const n of painted) expect(n).toBeGreaterThan(500);
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);

    mkdirSync(path.join(repoRoot, 'test-results'), { recursive: true });
    const shot = path.join(repoRoot, 'test-results', 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(50_000);
    await page.close();
  });
});

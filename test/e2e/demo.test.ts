import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { readPriceFile } from '../../shared/prices/file.ts';
import { type SimulationResult, slippageSummary, summaryJson } from '../../shared/sim/results.ts';
import { prepareSimulation, simulate } from '../../shared/sim/setup.ts';

/**
 * The main job end to end: the real 12-13 March 2020 crash files through the backstop's own services on the
 * embedded engine, waterfall against market-only on identical inputs, and the CLI as a script would use it.
 */

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const dataFile = (name: string): string => path.resolve(repoRoot, '..', 'shared', 'data', name);
/** Small books keep the suite fast; the defaults of the fund and providers scale with the book. */
const POSITIONS = 4000;

/** Each file, its market, and whether market-only leaves bad debt on it at this size (ETH's first leg: none). */
const FILES: readonly [file: string, symbol: string, marketOnlyBadDebt: boolean][] = [
  ['eth-usdt-perp-2020-03-12-leg1-1m.csv', 'ETH-USD', false],
  ['eth-usdt-perp-2020-03-12-leg2-1m.csv', 'ETH-USD', true],
  ['btc-usdt-perp-2020-03-12-leg1-1m.csv', 'BTC-USD', true],
  ['btc-usdt-perp-2020-03-12-leg2-1m.csv', 'BTC-USD', true],
];

const p99 = (r: SimulationResult): number => slippageSummary(r.slippageSamples).p99;

for (const [file, symbol, marketOnlyBadDebt] of FILES) {
  describe(`${file} through both strategies`, () => {
    let waterfall: SimulationResult;
    let marketOnly: SimulationResult;

    beforeAll(async () => {
      const prepared = prepareSimulation({
        prices: { name: file, points: readPriceFile(dataFile(file)) },
        symbol,
        positions: POSITIONS,
        seed: 1,
      });
      waterfall = await simulate(prepared, 'waterfall');
      marketOnly = await simulate(prepared, 'market-only');
    });

    it('finishes every liquidation, conserves money exactly and never takes the fund below zero', () => {
      for (const r of [waterfall, marketOnly]) {
        expect({ strategy: r.strategy, nonTerminal: r.nonTerminal, errors: r.errors }).toEqual({
          strategy: r.strategy,
          nonTerminal: 0,
          errors: {},
        });
        expect(summaryJson(r).conservationError).toBe('0');
        expect(r.insuranceFund.min).toBeGreaterThanOrEqual(0n);
        expect(r.liquidations).toBeGreaterThan(0);
      }
    });

    it('never fills at a zero price on the waterfall', () => {
      expect(waterfall.zeroPriceFills).toBe(0);
    });

    it('leaves less bad debt and less slippage on the waterfall than market-only', () => {
      expect(marketOnly.badDebt > 0n).toBe(marketOnlyBadDebt);
      if (marketOnlyBadDebt) expect(waterfall.badDebt).toBeLessThan(marketOnly.badDebt);
      else expect(waterfall.badDebt).toBe(0n);
      expect(p99(marketOnly)).toBeGreaterThan(0);
      expect(p99(waterfall)).toBeLessThan(p99(marketOnly));
      // The waterfall's market layer never sells beyond the slippage bound (3 %).
      expect(slippageSummary(waterfall.slippageSamples).max).toBeLessThanOrEqual(300);
    });
  });
}

describe('the CLI as scripts use it', () => {
  const node = process.execPath;
  const cliArgs = ['--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), 'simulate'];

  it('prints byte-identical JSON for the same seed, twice', async () => {
    const args = [...cliArgs, '--positions', '1500', '--seed', '7', '--json'];
    const [a, b] = await Promise.all([
      run(node, args, { cwd: repoRoot }),
      run(node, args, { cwd: repoRoot }),
    ]);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout.endsWith('}\n')).toBe(true);
    const parsed = JSON.parse(a.stdout);
    for (const key of [
      'ticks',
      'positions',
      'liquidations',
      'settledBy',
      'cancelled',
      'nonTerminal',
      'badDebt',
    ]) {
      expect(parsed).toHaveProperty(key);
    }
    for (const key of ['insuranceFund', 'slippageBps', 'zeroPriceFills', 'conservationError']) {
      expect(parsed).toHaveProperty(key);
    }
    expect(parsed.seed).toBe(7);
  });

  it('exits 2 with one line on stderr and no stack trace for a bad argument', async () => {
    const failure = await run(node, [...cliArgs, '--positions', 'lots'], { cwd: repoRoot }).then(
      () => undefined,
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stdout).toBe('');
    expect(failure?.stderr).toBe('backstop: --positions: "lots" is not a whole number\n');
  });

  it('runs through the bin launcher from any directory', async () => {
    const { stdout } = await run(node, [path.join(repoRoot, 'bin', 'backstop.mjs'), 'simulate', '--help'], {
      cwd: path.resolve(repoRoot, '..'),
    });
    expect(stdout).toMatch(/^Usage: backstop simulate/);
  });
});

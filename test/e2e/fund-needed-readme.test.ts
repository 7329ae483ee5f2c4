import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderFundNeeded } from '../../cli/table.ts';
import { QUOTE_SCALE } from '../../shared/domain/units.ts';
import { type FundNeeded, findFundNeeded } from '../../shared/sim/fund-needed.ts';
import type { Strategy } from '../../shared/sim/results.ts';
import { prepareSimulation, simulate } from '../../shared/sim/setup.ts';

/**
 * README's fund sizing ("Your risk configuration, and the fund it needs") held to the runs: the demo's book (seed 1,
 * 20,000 positions), `simulate --fund-needed` as the CLI runs it, and the other strategies' figures by the property
 * that defines them (their run leaves nothing, one unit less some).
 */

const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const prose = readme.replace(/\s+/g, ' ');
const USD = QUOTE_SCALE;

describe("README's fund sizing on the demo's book", () => {
  const prepared = prepareSimulation({});
  const badDebtAt = async (strategy: Strategy, whole: bigint) =>
    (await simulate({ ...prepared, fundStart: whole * USD }, strategy)).badDebt;
  let found: FundNeeded;

  beforeAll(async () => {
    found = await findFundNeeded(
      async (fund) => {
        const r = await simulate({ ...prepared, fundStart: fund }, 'waterfall');
        return {
          fund,
          badDebt: r.badDebt,
          badDebtUncovered: r.badDebtUncovered,
          fundMin: r.insuranceFund.min,
        };
      },
      { resolution: USD, floor: prepared.config.insurance.floor, start: prepared.fundStart },
    );
  });

  it("prints README's rows for the waterfall, in a few runs, monotone", () => {
    const table = renderFundNeeded(
      {
        scenario: prepared.scenario,
        symbol: prepared.symbol,
        strategy: 'waterfall',
        seed: prepared.seed,
        ticks: prepared.points.length,
        positions: prepared.book.length,
        quote: 'USD',
      },
      found,
      undefined,
      0,
    );
    const block = /```\n( +fund needed \(USD\)[^`]*)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    expect(table).toContain(block!);
    expect(found.runs.length).toBeLessThanOrEqual(4);
    expect(found.notMonotone).toEqual([]);
    expect(prose).toContain(
      `${(Number(found.figures.noBadDebt.fund!) / 1e6).toLocaleString('en-US')} USD of fund spares them`,
    );
  });

  it('needs for market-only and no-auction what README says', async () => {
    const marketOnly = /Market-only needs ([\d,]+) USD for both/.exec(prose)?.[1];
    const need = BigInt(marketOnly!.replaceAll(',', ''));
    expect(await badDebtAt('market-only', need)).toBe(0n);
    expect(await badDebtAt('market-only', need - 1n)).toBeGreaterThan(0n);
    expect(prose).toContain('no-auction none (its fees come before its shortfalls)');
    expect(await badDebtAt('no-auction', 0n)).toBe(0n);
  });
});

import { basename } from 'node:path';
import { readPriceFile } from '../shared/prices/file.ts';
import { prepareSimulation, simulate } from '../shared/sim/setup.ts';
import { significant } from './timing.ts';

/**
 * Part 2: replay throughput of the crash engine (the Lambdas' services on the embedded adapters, simulated time):
 * each ETH leg of 12 March 2020 replayed with its own book of `positions`, waterfall strategy. Time is the
 * replay alone (book generation and file parsing are reported apart); ticks include the ticks after the last
 * price that the engine runs until every liquidation is terminal.
 */

export const ETH_LEGS = [
  '../shared/data/eth-usdt-perp-2020-03-12-leg1-1m.csv',
  '../shared/data/eth-usdt-perp-2020-03-12-leg2-1m.csv',
] as const;

export interface ReplayLeg {
  readonly file: string;
  readonly priceTicks: number;
  readonly drainTicks: number;
  readonly liquidations: number;
  readonly settledBy: Readonly<Record<string, number>>;
  readonly errors: number;
  readonly seconds: number;
  readonly prepareSeconds: number;
}

export interface ReplayResult {
  readonly positions: number;
  readonly ticks: number;
  readonly liquidations: number;
  /** Replay time of both legs together. */
  readonly seconds: number;
  readonly ticksPerSecond: number;
  readonly liquidationsPerSecond: number;
  readonly legs: readonly ReplayLeg[];
}

export interface ReplayOptions {
  readonly files: readonly string[];
  readonly positions: number;
  readonly log?: (line: string) => void;
}

export async function benchReplay(options: ReplayOptions): Promise<ReplayResult> {
  const legs: ReplayLeg[] = [];
  for (const file of options.files) {
    const t0 = performance.now();
    const points = readPriceFile(file);
    const prepared = prepareSimulation({
      symbol: 'ETH-USD',
      prices: { name: basename(file), points },
      positions: options.positions,
    });
    const t1 = performance.now();
    const result = await simulate(prepared, 'waterfall');
    const seconds = (performance.now() - t1) / 1000;
    const errors = Object.values(result.errors).reduce((a, b) => a + b, 0);
    legs.push({
      file: basename(file),
      priceTicks: result.ticks,
      drainTicks: result.drainTicks,
      liquidations: result.liquidations,
      settledBy: { ...result.settledBy, cancelled: result.cancelled },
      errors,
      seconds: significant(seconds),
      prepareSeconds: significant((t1 - t0) / 1000),
    });
    options.log?.(
      `replay ${basename(file)}: ${result.ticks}+${result.drainTicks} ticks, ${result.liquidations} liquidations in ${seconds.toFixed(2)} s`,
    );
  }
  const ticks = legs.reduce((a, l) => a + l.priceTicks + l.drainTicks, 0);
  const liquidations = legs.reduce((a, l) => a + l.liquidations, 0);
  const seconds = legs.reduce((a, l) => a + l.seconds, 0);
  return {
    positions: options.positions,
    ticks,
    liquidations,
    seconds: significant(seconds),
    ticksPerSecond: significant(ticks / seconds),
    liquidationsPerSecond: significant(liquidations / seconds),
    legs,
  };
}

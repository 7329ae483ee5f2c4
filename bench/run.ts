// First: sets the handlers' log level before their modules load.
import './quiet.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiCallsResult } from './aws.ts';
import type { LatencyResult } from './latency.ts';
import { machineInfo, withEndLoad } from './machine.ts';
import { benchEvaluations, benchMarginCheck } from './margin.ts';
import { benchReplay, ETH_LEGS } from './replay.ts';
import { type BenchResults, judgeTargets, renderMarkdown } from './results.ts';
import { significant } from './timing.ts';

/**
 * `npm run bench`: the four performance parts of issue 8, results to bench/results.json and bench/RESULTS.md.
 *   BENCH_SHORT=1       small sizes (CI and the smoke test): the same code paths in well under a minute
 *   BENCH_OUT_DIR=dir   where to write the results (default: this folder)
 *   BENCH_SKIP_AWS=1    skip parts 3 and 4 (they start a moto server: bash scripts/setup-emulator.sh)
 *   BENCH_DATA_DIR=dir  the price files (default: ../shared/data beside the repository)
 *   BENCH_REPLAY_SERIAL=1  replay the legs one after the other (default: one worker thread per leg)
 */

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');

interface Sizes {
  readonly books: readonly number[];
  readonly crossed: readonly number[];
  readonly budgetMs: number;
  readonly evaluations: { positions: number; runMs: number; runs: number };
  readonly replayPositions: number;
  readonly noCrossTicks: number;
  readonly callsCrossed: readonly number[];
  readonly perLayer: number;
  readonly latency: { positions: number; ticks: number };
}

const FULL: Sizes = {
  books: [10_000, 100_000, 1_000_000],
  crossed: [0, 10, 1000],
  budgetMs: 1500,
  evaluations: { positions: 10_000, runMs: 1000, runs: 7 },
  replayPositions: 100_000,
  noCrossTicks: 20,
  callsCrossed: [1, 10, 100],
  perLayer: 20,
  latency: { positions: 1200, ticks: 4 },
};

const SHORT: Sizes = {
  books: [1_000, 10_000, 100_000],
  crossed: [0, 10, 100],
  budgetMs: 100,
  evaluations: { positions: 10_000, runMs: 150, runs: 3 },
  replayPositions: 2_000,
  noCrossTicks: 3,
  callsCrossed: [1, 5],
  perLayer: 3,
  latency: { positions: 30, ticks: 2 },
};

const started = performance.now();
const log = (line: string): void => {
  process.stderr.write(
    `[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`,
  );
};

export async function runBenchmarks(env: NodeJS.ProcessEnv = process.env): Promise<BenchResults> {
  const short = env.BENCH_SHORT === '1';
  const sizes = short ? SHORT : FULL;
  const machine = machineInfo(short ? 'short' : 'full', new Date());
  log(
    `${machine.mode} run on ${machine.cpu}, ${machine.cores} cores, load ${machine.loadAverageStart.join(' ')}`,
  );

  // Part 1 first: it wants the quietest process (no emulator, small heap).
  const evaluations = benchEvaluations(sizes.evaluations);
  log(
    `evaluations per second: best ${Math.round(evaluations.best)}, median ${Math.round(evaluations.median)}`,
  );
  const marginCheck = await benchMarginCheck({
    books: sizes.books,
    crossed: sizes.crossed,
    budgetMs: sizes.budgetMs,
    log,
  });

  const dataDir = env.BENCH_DATA_DIR ?? resolve(ROOT, '..', 'shared', 'data');
  const replay = await benchReplay({
    files: ETH_LEGS.map((f) => join(dataDir, f)),
    positions: sizes.replayPositions,
    // One worker per leg on a multi-core machine (the target is for 2 cores); BENCH_REPLAY_SERIAL=1: one thread.
    parallel: machine.cores >= 2 && env.BENCH_REPLAY_SERIAL !== '1',
    log,
  });

  let apiCalls: ApiCallsResult | null = null;
  let latencyMs: LatencyResult | null = null;
  if (env.BENCH_SKIP_AWS === '1') log('parts 3 and 4 skipped (BENCH_SKIP_AWS=1)');
  else {
    // Loaded only now: the Lambda modules bring Powertools' tracer, whose async hooks slow every await of the
    // in-process parts above about threefold.
    const aws = await import('./aws-run.ts');
    ({ apiCalls, latencyMs } = await aws.runAwsParts(sizes, log));
  }

  return {
    marginCheck: marginCheck.map((row) => ({
      ...row,
      indexMsPerTick: significant(row.indexMsPerTick),
      scanMsPerTick: significant(row.scanMsPerTick),
      ratio: significant(row.ratio),
    })),
    evaluationsPerSecond: Math.round(evaluations.best),
    replay,
    apiCalls,
    latencyMs,
    machine: { ...withEndLoad(machine), evaluationRunsPerSecond: evaluations.runs.map((x) => Math.round(x)) },
  };
}

async function main(): Promise<void> {
  const results = await runBenchmarks();
  const outDir = resolve(process.env.BENCH_OUT_DIR ?? HERE);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, 'RESULTS.md'), renderMarkdown(results));
  for (const t of judgeTargets(results)) {
    log(
      `target ${t.met === undefined ? 'not judged' : t.met ? 'met   ' : 'MISSED'}: ${t.name}: ${t.measured} (${t.goal})`,
    );
  }
  log(`results written to ${join(outDir, 'results.json')} and RESULTS.md`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    // The SDK's keep-alive sockets and the emulator's child can hold the loop open: the run is over.
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}

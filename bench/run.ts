// First: sets the handlers' log level before their modules load.
import './quiet.ts';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_IDS, type BenchIds } from './ids.ts';
import { machineInfo, withEndLoad } from './machine.ts';
import { benchEvaluations, benchMarginCheck } from './margin.ts';
import { benchReplay, ETH_LEGS, type ReplayScalePoint, scalePointOf } from './replay.ts';
import { type BenchResults, judgeTargets, renderMarkdown } from './results.ts';
import { significant } from './timing.ts';

/**
 * `npm run bench`: the four performance parts of issue 8, results to bench/results.json and bench/RESULTS.md.
 *   BENCH_SHORT=1       small sizes (CI and the smoke test): the same code paths in well under a minute
 *   BENCH_OUT_DIR=dir   where to write the results (default: this folder; a short run: <tmpdir>/backstop-bench-short)
 *   BENCH_PARTS=a,b     run only these parts (margin, replay, calls, latency); the others keep their previous
 *                       results in the output folder, each part dated in machine.parts
 *   BENCH_IDS=uuid      part 3's records carry a real exchange's ids (UUIDs, 8-digit tick numbers: the default);
 *                       `short` the tests' (`calls-00003`, ticks from 1), as part 3 measured before session 52
 *   BENCH_SKIP_AWS=1    skip parts 3 and 4 (they start a moto server: bash scripts/setup-emulator.sh)
 *   BENCH_DATA_DIR=dir  the price files (default: ../shared/data beside the repository)
 *   BENCH_REPLAY_SERIAL=1  replay the legs one after the other (default: one worker thread per leg)
 *   BENCH_PROFILE=1     profile each replay leg and report its thread's time by layer of the code
 */

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');

interface Sizes {
  readonly books: readonly number[];
  readonly crossed: readonly number[];
  readonly budgetMs: number;
  readonly evaluations: { positions: number; runMs: number; runs: number };
  readonly replayPositions: number;
  /** Smaller books replayed too, for how the replay's time grows with the book. */
  readonly replayScaling: readonly number[];
  readonly noCrossTicks: number;
  readonly callsCrossed: readonly number[];
  readonly perLayer: number;
  readonly latency: { bursts: number; positionsPerBurst: number };
}

const FULL: Sizes = {
  books: [10_000, 100_000, 1_000_000],
  crossed: [0, 10, 1000],
  budgetMs: 1500,
  evaluations: { positions: 10_000, runMs: 1000, runs: 7 },
  replayPositions: 100_000,
  replayScaling: [25_000, 50_000],
  noCrossTicks: 20,
  callsCrossed: [1, 10, 100],
  perLayer: 20,
  latency: { bursts: 20, positionsPerBurst: 50 },
};

const SHORT: Sizes = {
  books: [1_000, 10_000, 100_000],
  crossed: [0, 10, 100],
  budgetMs: 100,
  evaluations: { positions: 10_000, runMs: 150, runs: 3 },
  replayPositions: 2_000,
  replayScaling: [500, 1_000],
  noCrossTicks: 3,
  callsCrossed: [1, 5],
  perLayer: 3,
  latency: { bursts: 2, positionsPerBurst: 15 },
};

const started = performance.now();
const loadAverage = (): number[] => loadavg().map((l) => Number(l.toFixed(2)));
const log = (line: string): void => {
  process.stderr.write(
    `[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`,
  );
};

export type Part = 'margin' | 'replay' | 'calls' | 'latency';
export const PARTS: readonly Part[] = ['margin', 'replay', 'calls', 'latency'];

type Results = { -readonly [K in keyof BenchResults]: BenchResults[K] };

/** The previous results of the same mode in `outDir`, whose parts a partial run keeps. */
function previousResults(outDir: string, mode: 'full' | 'short'): Results | undefined {
  const file = join(outDir, 'results.json');
  if (!existsSync(file)) return undefined;
  try {
    const previous = JSON.parse(readFileSync(file, 'utf8')) as Results;
    return previous.machine?.mode === mode ? previous : undefined;
  } catch {
    return undefined;
  }
}

function selectedParts(env: NodeJS.ProcessEnv): Part[] {
  const asked = env.BENCH_PARTS?.split(',').map((p) => p.trim()) ?? [...PARTS];
  const unknown = asked.filter((p) => !PARTS.includes(p as Part));
  if (unknown.length > 0)
    throw new Error(`bench/bad-parts: ${unknown.join(', ')} (parts: ${PARTS.join(', ')})`);
  const parts = asked as Part[];
  return env.BENCH_SKIP_AWS === '1' ? parts.filter((p) => p !== 'calls' && p !== 'latency') : parts;
}

/** The ids part 3's records carry (BENCH_IDS, default uuid: what a real deployment's items weigh). */
export function benchIdsOf(env: NodeJS.ProcessEnv): BenchIds {
  const asked = env.BENCH_IDS?.trim() || 'uuid';
  if (!BENCH_IDS.includes(asked as BenchIds))
    throw new Error(`bench/bad-ids: ${asked} (ids: ${BENCH_IDS.join(', ')})`);
  return asked as BenchIds;
}

/**
 * Runs the selected parts in order and writes results.json after each one, so a failure keeps what was measured;
 * parts not run keep their previous results (same mode), each with the date it was measured. Returns the failures.
 */
export async function runBenchmarks(env: NodeJS.ProcessEnv, outDir: string): Promise<string[]> {
  const short = env.BENCH_SHORT === '1';
  const sizes = short ? SHORT : FULL;
  const parts = selectedParts(env);
  const ids = benchIdsOf(env);
  const machine = machineInfo(short ? 'short' : 'full', new Date());
  log(
    `${machine.mode} run of ${parts.join(', ')} on ${machine.cpu}, ${machine.cores} cores, load ${machine.loadAverageStart.join(' ')}`,
  );
  const previous = previousResults(outDir, machine.mode);
  const results: Results = {
    marginCheck: previous?.marginCheck ?? [],
    evaluationsPerSecond: previous?.evaluationsPerSecond ?? 0,
    replay: previous?.replay ?? null,
    apiCalls: previous?.apiCalls ?? null,
    latencyMs: previous?.latencyMs ?? null,
    machine: {
      ...machine,
      evaluationRunsPerSecond: previous?.machine.evaluationRunsPerSecond ?? [],
      parts: { ...previous?.machine.parts },
    },
  };
  mkdirSync(outDir, { recursive: true });
  const save = () => writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  const failures: string[] = [];

  for (const part of parts) {
    try {
      await runPart(part, sizes, env, machine.cores, ids, results);
      results.machine.parts[part] = {
        date: new Date().toISOString(),
        loadAverage: loadAverage(),
        cpu: results.machine.cpu,
      };
      save();
    } catch (error) {
      failures.push(`${part}: ${error instanceof Error ? error.message : String(error)}`);
      log(`part ${part} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  }
  results.machine = withEndLoad(results.machine);
  save();
  writeFileSync(join(outDir, 'RESULTS.md'), renderMarkdown(results));
  return failures;
}

async function runPart(
  part: Part,
  sizes: Sizes,
  env: NodeJS.ProcessEnv,
  cores: number,
  ids: BenchIds,
  results: Results,
) {
  switch (part) {
    case 'margin': {
      // First: it wants the quietest process (no emulator, small heap, no Lambda modules loaded).
      const evaluations = benchEvaluations(sizes.evaluations);
      log(
        `evaluations per second: best ${Math.round(evaluations.best)}, median ${Math.round(evaluations.median)}`,
      );
      const rows = await benchMarginCheck({
        books: sizes.books,
        crossed: sizes.crossed,
        budgetMs: sizes.budgetMs,
        log,
      });
      results.marginCheck = rows.map((row) => ({
        ...row,
        indexMsPerTick: significant(row.indexMsPerTick),
        scanMsPerTick: significant(row.scanMsPerTick),
        ratio: significant(row.ratio),
      }));
      results.evaluationsPerSecond = Math.round(evaluations.best);
      results.machine = {
        ...results.machine,
        evaluationRunsPerSecond: evaluations.runs.map((x) => Math.round(x)),
      };
      return;
    }
    case 'replay': {
      const dataDir = env.BENCH_DATA_DIR ?? resolve(ROOT, '..', 'shared', 'data');
      const replayOf = (positions: number, profile: boolean) =>
        benchReplay({
          files: ETH_LEGS.map((f) => join(dataDir, f)),
          positions,
          // One worker per leg on a multi-core machine (the target is for 2 cores).
          parallel: cores >= 2 && env.BENCH_REPLAY_SERIAL !== '1',
          profile,
          log,
        });
      const replay = await replayOf(sizes.replayPositions, env.BENCH_PROFILE === '1');
      const smaller: ReplayScalePoint[] = [];
      for (const positions of sizes.replayScaling)
        smaller.push(scalePointOf(await replayOf(positions, false)));
      results.replay = { ...replay, scaling: [...smaller, scalePointOf(replay)] };
      return;
    }
    case 'calls': {
      // Loaded only now: the Lambda modules bring Powertools' tracer, whose async hooks slow every await of the
      // in-process parts about threefold.
      const aws = await import('./aws-run.ts');
      results.apiCalls = await aws.runApiCalls(sizes, ids, log);
      return;
    }
    case 'latency': {
      const aws = await import('./aws-run.ts');
      results.latencyMs = await aws.runLatency(sizes, log);
      return;
    }
  }
}

/**
 * This folder for full runs, whose results are the ones committed and cited; a short run's go to a temporary
 * folder (a walk through the docs in session 37 found one rewriting the committed full-size results).
 */
export const defaultOutDir = (env: NodeJS.ProcessEnv): string =>
  env.BENCH_SHORT === '1' ? join(tmpdir(), 'backstop-bench-short') : HERE;

async function main(): Promise<void> {
  // Exit handlers (the emulator's child process) run on Ctrl-C or a kill too.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const outDir = resolve(process.env.BENCH_OUT_DIR ?? defaultOutDir(process.env));
  const failures = await runBenchmarks(process.env, outDir);
  const results = JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as BenchResults;
  for (const t of judgeTargets(results)) {
    log(
      `target ${t.met === undefined ? 'not judged' : t.met ? 'met   ' : 'MISSED'}: ${t.name}: ${t.measured} (${t.goal})`,
    );
  }
  log(`results written to ${join(outDir, 'results.json')} and RESULTS.md`);
  if (failures.length > 0) throw new Error(`bench/failed parts:\n${failures.join('\n')}`);
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

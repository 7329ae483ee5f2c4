import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { buildSync } from 'esbuild';
import { readPriceFile } from '../shared/prices/file.ts';
import { prepareSimulation, simulate } from '../shared/sim/setup.ts';
import { type CodeLayer, timeByLayer } from './layers.ts';
import { significant } from './timing.ts';

/**
 * Part 2: replay throughput of the crash engine (the Lambdas' services on the embedded adapters, simulated time):
 * each ETH leg of 12 March 2020 replayed with its own book of `positions`, waterfall strategy. Per leg, `seconds`
 * is the replay alone (book generation and file parsing are `prepareSeconds`); the total is the wall time of it
 * all. Ticks include the ticks after the last price that the engine runs until every liquidation is terminal.
 */

/** The two legs of the 12 March 2020 crash, files of ../shared/data (read-only, never copied here). */
export const ETH_LEGS = [
  'eth-usdt-perp-2020-03-12-leg1-1m.csv',
  'eth-usdt-perp-2020-03-12-leg2-1m.csv',
] as const;

export interface ReplayLeg {
  readonly file: string;
  readonly priceTicks: number;
  readonly drainTicks: number;
  readonly liquidations: number;
  readonly settledBy: Readonly<Record<string, number>>;
  readonly errors: number;
  readonly seconds: number;
  /**
   * CPU time of the leg's thread during the replay (user + system; the garbage collector's helper threads are
   * not in it): steadier than `seconds` on a shared machine, so the figure to compare across runs.
   */
  readonly cpuSeconds: number;
  readonly prepareSeconds: number;
  /**
   * With BENCH_PROFILE=1: the replay's time by layer of the code (bench/layers.ts), the self time of V8's CPU
   * profile of the leg's thread. Samples are timed on the wall clock, so with two legs on two cores they also
   * hold the moments the thread waited for one: read the shares, and compare seconds of unprofiled runs (the
   * profiler slows the leg by a few per cent).
   */
  readonly secondsByLayer?: Readonly<Record<CodeLayer, number>>;
}

export interface ReplayResult {
  readonly positions: number;
  readonly ticks: number;
  readonly liquidations: number;
  /** Wall time of the whole replay (all legs; in parallel when `parallel`), book generation included. */
  readonly seconds: number;
  /**
   * CPU time of the whole process over the replay (user + system): the legs' threads and the helper threads
   * of the garbage collector and the compiler, which share the cores with them. The wall time cannot be less
   * than this divided by the cores.
   */
  readonly processCpuSeconds: number;
  readonly ticksPerSecond: number;
  readonly liquidationsPerSecond: number;
  /** Legs ran in parallel worker threads, one per leg. */
  readonly parallel: boolean;
  readonly legs: readonly ReplayLeg[];
  /**
   * The same replay over smaller books, then this one: how its time grows with the book (the fund and the
   * providers' capital scale with the book's open interest, the venue's depth does not, so a bigger book is a
   * harder crash: more of it falls through to ADL and the last resort, the dearest paths).
   */
  readonly scaling?: readonly ReplayScalePoint[];
}

/** One book size of the scaling series: both legs together. */
export interface ReplayScalePoint {
  readonly positions: number;
  readonly liquidations: number;
  /** Liquidations by how they were settled, both legs together. */
  readonly settledBy: Readonly<Record<string, number>>;
  readonly seconds: number;
  readonly processCpuSeconds: number;
  /** The legs' threads' CPU together. */
  readonly legsCpuSeconds: number;
  /** legsCpuSeconds per liquidation, microseconds. */
  readonly cpuMicrosPerLiquidation: number;
}

export function scalePointOf(replay: ReplayResult): ReplayScalePoint {
  const settledBy: Record<string, number> = {};
  for (const leg of replay.legs) {
    for (const [how, n] of Object.entries(leg.settledBy)) settledBy[how] = (settledBy[how] ?? 0) + n;
  }
  const legsCpuSeconds = replay.legs.reduce((a, l) => a + l.cpuSeconds, 0);
  return {
    positions: replay.positions,
    liquidations: replay.liquidations,
    settledBy,
    seconds: replay.seconds,
    processCpuSeconds: replay.processCpuSeconds,
    legsCpuSeconds: significant(legsCpuSeconds),
    cpuMicrosPerLiquidation:
      replay.liquidations > 0 ? significant((legsCpuSeconds * 1e6) / replay.liquidations) : 0,
  };
}

export interface ReplayOptions {
  readonly files: readonly string[];
  readonly positions: number;
  readonly parallel: boolean;
  /** Profile each leg's replay and report its time by layer (secondsByLayer). */
  readonly profile?: boolean;
  readonly log?: (line: string) => void;
}

export interface LegOptions {
  /** Report the replay's time by layer, from a CPU profile of it. */
  readonly profile?: boolean;
  /** The esbuild bundle this code runs from, if any: its module comments name the module of each line. */
  readonly bundlePath?: string;
}

/** Replays one leg with its own book; seconds count the replay alone. */
export async function replayLeg(
  file: string,
  positions: number,
  options: LegOptions = {},
): Promise<ReplayLeg> {
  const t0 = performance.now();
  const points = readPriceFile(file);
  const prepared = prepareSimulation({
    symbol: 'ETH-USD',
    prices: { name: basename(file), points },
    positions,
  });
  const profiler = options.profile ? await startProfiler() : undefined;
  const t1 = performance.now();
  const cpu0 = process.threadCpuUsage();
  const result = await simulate(prepared, 'waterfall');
  const cpu = process.threadCpuUsage(cpu0);
  const seconds = (performance.now() - t1) / 1000;
  const profile = profiler ? await stopProfiler(profiler) : undefined;
  return {
    file: basename(file),
    priceTicks: result.ticks,
    drainTicks: result.drainTicks,
    liquidations: result.liquidations,
    settledBy: { ...result.settledBy, cancelled: result.cancelled },
    errors: Object.values(result.errors).reduce((a, b) => a + b, 0),
    seconds: significant(seconds),
    cpuSeconds: significant((cpu.user + cpu.system) / 1e6),
    prepareSeconds: significant((t1 - t0) / 1000),
    ...(profile ? { secondsByLayer: timeByLayer(profile, bundleOf(options.bundlePath)) } : {}),
  };
}

const bundleOf = (path: string | undefined) =>
  path ? { url: pathToFileURL(path).href, source: readFileSync(path, 'utf8') } : undefined;

async function startProfiler(): Promise<Session> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return session;
}

async function stopProfiler(session: Session) {
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  return profile;
}

/**
 * The worker as one esbuild bundle, the form the Lambdas ship in (NodejsFunction bundles with esbuild): tsx's
 * transform keeps every function's name, a defineProperty for each closure created, 4 % of a replay.
 */
function bundleWorker(dir: string): string {
  const outfile = join(dir, 'replay-worker.mjs');
  buildSync({
    entryPoints: [fileURLToPath(new URL('./replay-worker.ts', import.meta.url))],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    logLevel: 'error',
    // Dependencies written as CommonJS call require(): give the ES module one.
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
  });
  return outfile;
}

/** Runs a leg in a worker thread, from the bundle. */
function replayInWorker(
  bundle: string,
  file: string,
  positions: number,
  profile: boolean,
): Promise<ReplayLeg> {
  return new Promise((resolve, reject) => {
    const options: LegOptions = { profile, bundlePath: bundle };
    const worker = new Worker(bundle, { workerData: { file, positions, options }, execArgv: [] });
    let leg: ReplayLeg | undefined;
    worker.once('message', (message: ReplayLeg) => {
      leg = message;
    });
    worker.once('error', reject);
    worker.once('exit', (code) =>
      leg ? resolve(leg) : reject(new Error(`bench/replay-worker: ${basename(file)} exited with ${code}`)),
    );
  });
}

/**
 * Replays every leg, one worker thread per leg when `parallel` (the target is for a 2-core machine: the legs are
 * independent, each single-threaded); `seconds` is the wall time of them all.
 */
export async function benchReplay(options: ReplayOptions): Promise<ReplayResult> {
  // The bundle's directory goes when the legs end, failed or not: every run left one in the OS temp dir.
  const dir = options.parallel ? mkdtempSync(join(tmpdir(), 'backstop-replay-')) : undefined;
  try {
    return await replayAll(options, dir === undefined ? undefined : bundleWorker(dir));
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

async function replayAll(options: ReplayOptions, bundle: string | undefined): Promise<ReplayResult> {
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const legs: ReplayLeg[] = [];
  if (bundle) {
    // Every worker ends before the bundle is removed: a failed leg does not pull the file from under the others.
    const settled = await Promise.allSettled(
      options.files.map((f) => replayInWorker(bundle, f, options.positions, options.profile === true)),
    );
    for (const s of settled) {
      if (s.status === 'rejected') throw s.reason;
      legs.push(s.value);
    }
  } else {
    for (const f of options.files) {
      legs.push(await replayLeg(f, options.positions, { profile: options.profile === true }));
    }
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  for (const leg of legs) {
    options.log?.(
      `replay ${leg.file}: ${leg.priceTicks}+${leg.drainTicks} ticks, ${leg.liquidations} liquidations in ${leg.seconds} s`,
    );
  }
  const ticks = legs.reduce((a, l) => a + l.priceTicks + l.drainTicks, 0);
  const liquidations = legs.reduce((a, l) => a + l.liquidations, 0);
  return {
    positions: options.positions,
    ticks,
    liquidations,
    seconds: significant(seconds),
    processCpuSeconds: significant((cpu.user + cpu.system) / 1e6),
    ticksPerSecond: significant(ticks / seconds),
    liquidationsPerSecond: significant(liquidations / seconds),
    parallel: options.parallel,
    legs,
  };
}

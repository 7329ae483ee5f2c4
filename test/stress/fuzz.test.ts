import fc from 'fast-check';
import { describe, it } from 'vitest';
import {
  type ArbOptions,
  adlHeavyArb,
  type CrowdArbOptions,
  crowdArb,
  nearFullArb,
  RunawayError,
  runScenario,
  type Scenario,
  scenarioArb,
  twoMarketsArb,
  withLotArb,
} from '../support/fuzz-harness.ts';

/**
 * Whole-pipeline property tests (found by the pipeline fuzzing review, session 27, which ran about 20,000
 * scenarios clean): random books, providers, fund, risk knobs, price paths, venue and queue faults, crashes at
 * every named point, late redrives and concurrent consumers, each run to quiescence and checked against every
 * invariant (test/support/invariants.ts) and the harness's own (terminal states, slippage, provider capital).
 * A few runs per property here; FUZZ_RUNS=150 (and FUZZ_SEED, FUZZ_SIZE=large) for a longer hunt.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 6);
const SEED = Number(process.env.FUZZ_SEED ?? 20240404);
/** FUZZ_LOTS=1: every property's scenarios on an exchange with a lot (withLotArb); unset, the scenarios as before. */
const LOTS = !!process.env.FUZZ_LOTS;

/** Runs a property checked, and the runaways it skipped. */
interface Tally {
  checked: number;
  skipped: number;
  /** Checked runs whose marks left the cent, and their auction fills at a rounded bid (markUnit). */
  offCentRuns: number;
  roundedBids: number;
  /** Runs with a lot (withLotArb), their auction fills taking a part under a lot, and sub-lot remainders left. */
  lotRuns: number;
  underFills: number;
  subLotEnded: number;
}

async function property(s: Scenario, tally: Tally): Promise<boolean> {
  let r: Awaited<ReturnType<typeof runScenario>>;
  try {
    r = await runScenario(s);
  } catch (error) {
    // A slow bleed outlasts the bound: skip. A rest closed a sliver per slice, by the last resort one book level
    // per cooldown, or by auctions that each end at their fill cap on a crowd's dust-sized lots (about 0.002 % of
    // the position per slice, with no book and no one to deleverage: the only liquidity there is).
    if (error instanceof RunawayError) {
      tally.skipped += 1;
      fc.pre(false);
    }
    throw error;
  }
  tally.checked += 1;
  if (r.offCent.marks > 0) tally.offCentRuns += 1;
  tally.roundedBids += r.offCent.roundedBids;
  if (s.lot) tally.lotRuns += 1;
  tally.underFills += r.lots.underFills;
  tally.subLotEnded += r.lots.subLotEnded;
  const all = [...r.violations, ...r.extra];
  if (all.length > 0) throw new Error(`${all.slice(0, 8).join('\n')}\n(trace ${r.trace.join(',')})`);
  return true;
}

/**
 * The share of a property's runs that may be skipped as runaways, beyond SKIP_ALLOWANCE runs (one or two of the
 * default 6 are chance). A skipped run checks nothing, and fast-check only gives up after 100 skips a run: a change
 * that made most scenarios run away would pass unseen. At FUZZ_RUNS=100 (seed 20240404, session 43) 3 to 11 % of
 * each property's runs were skipped, and 19 % of the crowds' on both sides (dust-sized lots: slow bleeds).
 */
const MAX_SKIPPED_SHARE = 0.2;
const CROWD_MAX_SKIPPED_SHARE = 0.35;
const SKIP_ALLOWANCE = 2;

const run =
  <O extends ArbOptions>(
    o: O,
    arb: (o: O) => fc.Arbitrary<Scenario> = scenarioArb,
    runs = RUNS,
    maxSkippedShare = MAX_SKIPPED_SHARE,
  ) =>
  async () => {
    const tally: Tally = {
      checked: 0,
      skipped: 0,
      offCentRuns: 0,
      roundedBids: 0,
      lotRuns: 0,
      underFills: 0,
      subLotEnded: 0,
    };
    await fc.assert(
      fc.asyncProperty(LOTS ? withLotArb(arb(o)) : arb(o), (s) => property(s, tally)),
      {
        numRuns: runs,
        seed: SEED,
        verbose: 0,
        // Shrinking a failing scenario can outlast the test's timeout, which would report nothing: stop first and
        // report the counterexample shrunk so far (a clean run this slow fails too, saying it was interrupted).
        plugins: [fc.interruptAfterTimeLimit(PROPERTY_LIMIT_MS, { failOnInterrupt: true })],
      },
    );
    const total = tally.checked + tally.skipped;
    if (process.env.FUZZ_RUNS)
      console.log(
        `seed ${SEED}: ${tally.checked} checked, ${tally.skipped} skipped; ${tally.offCentRuns} runs with marks off ` +
          `the cent, ${tally.roundedBids} auction fills at a rounded bid` +
          (tally.lotRuns > 0
            ? `; ${tally.lotRuns} runs with a lot, ${tally.underFills} auction fills taking a part under it, ${tally.subLotEnded} slices left under it`
            : ''),
      );
    if (tally.skipped > maxSkippedShare * total + SKIP_ALLOWANCE)
      throw new Error(
        `${tally.skipped} of ${total} runs skipped as runaways (${((tally.skipped / total) * 100).toFixed(1)} %; ` +
          `at most ${maxSkippedShare * 100} % and ${SKIP_ALLOWANCE} runs) at seed ${SEED}: FUZZ_SEED=${SEED} ` +
          `FUZZ_RUNS=${RUNS}${process.env.FUZZ_SIZE ? ` FUZZ_SIZE=${process.env.FUZZ_SIZE}` : ''} reproduces them`,
      );
  };

const TEST_TIMEOUT_MS = 600_000;
const PROPERTY_LIMIT_MS = TEST_TIMEOUT_MS - 60_000;

fc.configureGlobal({ baseSize: (process.env.FUZZ_SIZE as fc.Size) ?? 'medium' });

describe('fuzz: whole pipeline', () => {
  it('no faults, no crashes', run({ crashes: false, faults: false }), TEST_TIMEOUT_MS);
  it('venue and queue faults, no crashes', run({ crashes: false }), TEST_TIMEOUT_MS);
  it('crashes, no faults', run({ faults: false }), TEST_TIMEOUT_MS);
  it('crashes and faults', run({}), TEST_TIMEOUT_MS);
  it('concurrent consumers, crashes and faults', run({ concurrent: true }), TEST_TIMEOUT_MS);
  it('ADL-heavy crashes through many counterparties', run({}, adlHeavyArb), TEST_TIMEOUT_MS);
});

/**
 * Both markets tick at once in every step and move together, over providers quoting both and one small fund
 * (session 40): their settlements share the fund's floor and cap, their auctions the providers' capital.
 */
describe('fuzz: two markets crashing together', () => {
  it('crashes and faults', run({}, twoMarketsArb), TEST_TIMEOUT_MS);
  it('concurrent consumers, crashes and faults', run({ concurrent: true }, twoMarketsArb), TEST_TIMEOUT_MS);
});

/**
 * Feed gaps with the stale-mark guard on in every run (the other properties draw it for half of theirs): nothing
 * acts on a mark older than maxMarkAgeSeconds, and the work goes on once ticks come back (session 30: a frozen plan
 * applied on a stale mark; about 900 runs with crashes, faults and concurrent consumers clean since).
 */
const staleMarksArb = (o: ArbOptions) =>
  scenarioArb(o).map((s) => ({ ...s, knobs: { ...s.knobs, marks: 'as-configured' as const } }));
/** More runs: about one in ten meets an auction step or a settlement in a gap, and the runs are small. */
const STALE_RUNS = RUNS * 5;
describe('fuzz: stale marks', () => {
  it('feed gaps, crashes and faults', run({}, staleMarksArb, STALE_RUNS), TEST_TIMEOUT_MS);
  it(
    'feed gaps with concurrent consumers',
    run({ concurrent: true }, staleMarksArb, STALE_RUNS),
    TEST_TIMEOUT_MS,
  );
});

/**
 * Crowds of 100 to 1,200 providers with dust-sized lots and lots per market (the per-step and per-auction fill
 * caps), operator changes to them through the admin service while auctions sleep, both sides in one run (found
 * two defects of the per-auction cap in session 29; about 2,500 runs clean since). Fewer runs: each is larger.
 */
const CROWD_RUNS = Math.max(1, Math.ceil(RUNS / 3));
describe('fuzz: crowds of providers', () => {
  it(
    'both sides, crashes and faults',
    run<CrowdArbOptions>({ bothSides: true }, crowdArb, CROWD_RUNS, CROWD_MAX_SKIPPED_SHARE),
    TEST_TIMEOUT_MS,
  );
  it(
    'operator bursts alongside concurrent consumers',
    run<CrowdArbOptions>({ burst: true, bothSides: true }, crowdArb, CROWD_RUNS, CROWD_MAX_SKIPPED_SHARE),
    TEST_TIMEOUT_MS,
  );
  it(
    'near-full auctions (a lot of 1,000 dust and a fraction)',
    run({}, nearFullArb, CROWD_RUNS),
    TEST_TIMEOUT_MS,
  );
});

/**
 * The exchange's lot in the risk configuration and the venue (session 51, lot51-consumer-knows-lot): positions open
 * as whole lots and every order, slice and auction fill keeps them whole; some runs open positions off the lot (as
 * before their market had one), whose part under a lot the auction and ADL take, or which end as
 * waterfall/sub-lot-remainder, the only unfinished liquidations allowed (the harness's lot checks).
 */
describe('fuzz: the exchange lot', () => {
  it(
    'crashes and faults',
    run({}, (o) => withLotArb(scenarioArb(o))),
    TEST_TIMEOUT_MS,
  );
  it(
    'two markets, concurrent consumers, crashes and faults',
    run({ concurrent: true }, (o) => withLotArb(twoMarketsArb(o))),
    TEST_TIMEOUT_MS,
  );
  it(
    'crowds of providers, both sides',
    run<CrowdArbOptions>(
      { bothSides: true },
      (o) => withLotArb(crowdArb(o)),
      CROWD_RUNS,
      CROWD_MAX_SKIPPED_SHARE,
    ),
    TEST_TIMEOUT_MS,
  );
});

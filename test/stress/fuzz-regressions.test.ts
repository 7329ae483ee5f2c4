import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runScenario, type Scenario } from '../support/fuzz-harness.ts';

/**
 * Scenarios the pipeline fuzz once failed on, kept as they were found (fuzz-corpus/<what>-<seed>.json): each runs
 * clean to quiescence against every invariant. docs/RELIABILITY.md has their rows:
 * - index-read-before-record: fuzz-oracle-read (a miss judged from the tick's record, not its index read);
 * - adl-confirm-stale: adl-confirm-stale-mark (a confirming ADL round on a mark 121 s old);
 * - redrive-too-soon: fuzz-redrive-too-soon (dead letters redriven while the book was still recovering), and
 *   last-resort-outraced (since session 33 its waiting slices, outraced by their siblings, no longer dead-letter);
 * - refreeze-lockstep: refreeze-lockstep (two deliveries planning again in turn until both dead-lettered).
 */
const corpus = new URL('./fuzz-corpus/', import.meta.url);
const files = readdirSync(corpus).filter((f) => f.endsWith('.json'));

describe('fuzz: the scenarios it once failed on', () => {
  it('has its corpus', () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
  });

  it.each(files)(
    '%s runs clean',
    async (file) => {
      const scenario = JSON.parse(readFileSync(new URL(file, corpus), 'utf8')) as Scenario;
      // One slices a position finely (5 % per slice, no dust: about 225 slices): no runaway, though beyond the fuzz's bound.
      const finelySliced = file.startsWith('redrive-too-soon-');
      const r = await runScenario(scenario, finelySliced ? { slowBleedSlices: 300 } : {});
      expect([...r.violations, ...r.extra]).toEqual([]);
      expect(r.errors.filter((e) => /TypeError|RangeError|ReferenceError/.test(e))).toEqual([]);
    },
    120_000,
  );
});

/**
 * The harness itself: a step's spike is a wick, and the step's own tick moves from the mark before it (StepSpec:
 * "then this step's tick confirms or reverts"). ed18d82 priced the tick from the market's mark at that moment, so a
 * spike within the band (accepted: a mark) carried the tick with it in every property, and the corpus above (four of
 * its six scenarios spike) no longer replayed the path it was found on (session 40 review).
 */
describe('fuzz harness: a spike is a wick', () => {
  it("prices the step's tick from the mark before the spike", async () => {
    const base = JSON.parse(
      readFileSync(new URL('index-read-before-record-909031.json', corpus), 'utf8'),
    ) as Scenario;
    const scenario: Scenario = {
      ...base,
      markets: 1,
      prices: [base.prices[0]!],
      positions: [],
      providers: [],
      crashes: [],
      crashRate: 0,
      dupRate: 0,
      venue: { ...base.venue, faultRate: 0 },
      steps: [
        {
          ...base.steps[0]!,
          sym: 0,
          moveBps: 0,
          spike: 100, // within the 15 % band: accepted, the market's mark for a second
          newPositions: [],
          admin: { kind: 'none' },
          replayOld: 0,
          twin: 0,
          jitterMs: 0,
          indexBps: 0,
          steal: 0,
          redrive: false,
          emptyBook: false,
        },
      ],
    };
    const r = await runScenario(scenario);
    const ticks = (r.p as unknown as { ticksLog: [string, string][] }).ticksLog.map(([, v]) => v);
    // The market's opening prints at the start price (the first waits for the second), the spike 1 % above, then
    // the step's tick: moveBps 0 from the mark before the spike, so back at the start price.
    const start = ticks[1]!.split(' ')[0]!;
    expect(ticks[1]).toBe(`${start} accepted`);
    expect(ticks[2]).toMatch(/ accepted$/);
    expect(ticks[2]).not.toBe(ticks[1]);
    expect(ticks[3]).toBe(`${start} accepted`);
  }, 120_000);
});

/**
 * The harness itself: marks off the cent (markUnit, session 44). On whole cents mark x (1e6 - d) / 1e6 is always
 * exact, so a fill's rounding at its bid was never exercised; on a grid of 7 PriceE8 the bids round, and the run
 * stays clean (the venue's book keeps its own tick).
 */
describe('fuzz harness: marks off the cent', () => {
  it('rounds auction bids on a 7 PriceE8 grid, and the run stays clean', async () => {
    const base = JSON.parse(
      readFileSync(new URL('refreeze-lockstep-162734.json', corpus), 'utf8'),
    ) as Scenario;
    // Consumers one at a time: the harness checks each auction fill against its bid at the commit's mark.
    const knobs = { ...base.knobs, concurrent: false };
    const onCents = await runScenario({ ...base, knobs });
    expect(onCents.offCent).toEqual({ marks: 0, roundedBids: 0 });
    const r = await runScenario({ ...base, knobs, markUnit: 7 });
    expect([...r.violations, ...r.extra]).toEqual([]);
    expect(r.offCent.marks).toBeGreaterThan(0);
    expect(r.offCent.roundedBids).toBeGreaterThan(0);
  }, 120_000);
});

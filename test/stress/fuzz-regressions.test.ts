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

import { randomUUID } from 'node:crypto';

/**
 * The ids part 3's records and ticks carry (`BENCH_IDS`): `uuid`, a real exchange's (UUIDs of 36 characters for
 * positions, traders and providers, tick sequences of 8 digits), or `short`, the tests' (`calls-00003`, `lp-bench`,
 * ticks numbered from 1). Every item that holds an id or a tick number is larger with the first, and a write unit
 * covers 1 KB (docs/PERFORMANCE.md section 3). Apart from stage.ts, which loads the Lambda modules: run.ts and
 * results.ts read these before part 3 runs.
 */
export type BenchIds = 'short' | 'uuid';
export const BENCH_IDS: readonly BenchIds[] = ['uuid', 'short'];

/** What the ids a run assumed were (a write unit a KB of item). */
export const IDS_ASSUMED: Readonly<Record<BenchIds, string>> = {
  uuid: "a real exchange's ids (BENCH_IDS=uuid): position, trader and provider ids of 36 characters (UUIDs), liquidation ids of 38, tick sequences of 8 digits",
  short:
    "the tests' short ids (BENCH_IDS=short): position ids of 11 to 15 characters, tick sequences of 1 to 3 digits; a real exchange's items are larger",
};

/** A record's id: `prefix-00042`, or a UUID. */
export const benchId = (ids: BenchIds, prefix: string, index: number): string =>
  ids === 'uuid' ? randomUUID() : `${prefix}-${String(index).padStart(5, '0')}`;

/** The sequence before a stage's first tick: 8-digit numbers after it, as a feed's, or 1, 2, 3... */
export const sequenceBefore = (ids: BenchIds): number => (ids === 'uuid' ? 10_000_000 : 0);

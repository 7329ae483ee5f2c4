import { defineConfig } from 'vitest/config';

// The money domain's own unit tests, the only tests `npm run mutate` (Stryker) runs against each mutant:
// fast, pure, and named after the shared/domain module they pin (reconciliation is the journal audit's, adl-events
// pins adl.ts's kept events).
export const MUTATE_TESTS = [
  'accounting',
  'adl',
  'adl-events',
  'adl-threshold',
  'auction',
  'auction-costs',
  'clearing',
  'fills',
  'fund-statement',
  'insurance',
  'margin',
  'provider-fills',
  'reconciliation',
  'sizing',
  'units',
  'waterfall',
].map((name) => `test/unit/${name}.test.ts`);

export default defineConfig({
  test: {
    include: MUTATE_TESTS,
    testTimeout: 60_000,
  },
});

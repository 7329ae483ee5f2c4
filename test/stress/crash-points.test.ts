import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { InjectedCrash } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { recordFigures } from '../support/invariants.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * Scenario 2, crash points: the process dies right after each side effect in turn (the embedded adapters' crash
 * hook), on the paths test/services does not cover: the auction (an empty book, providers that take part of
 * the lots, a reset, an exhausted auction whose rest goes to ADL) and the insurance + ADL path (a gap through
 * bankruptcy with a fund too small). EventBridge retries a tick that died; SQS redelivers a message that died
 * after its visibility timeout. Each run must end with every effect applied exactly once.
 */

/** Shorter auctions than the defaults (30 s steps, 10 min tail, one reset) keep each run to seconds. */
const config = parseRiskConfig({
  ...DEFAULT_RISK_CONFIG_INPUT,
  auction: {
    ...DEFAULT_RISK_CONFIG_INPUT.auction,
    curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 30 },
    tailSeconds: 600,
    maxResets: 1,
  },
  insurance: { drawCapPerWindow: '30', windowSeconds: 3600, floor: '10' },
});

interface World {
  readonly name: string;
  readonly crashTo: string;
  build(p: Pipeline): Promise<void>;
}

const WORLDS: readonly World[] = [
  {
    // Empty book: both longs go to auction. lp-1 takes at most 20 of the 30-lot; the rest resets, exhausts and
    // is closed against the short by ADL. The 10-lot clears whole.
    name: 'auction',
    crashTo: '184',
    async build(p) {
      await p.fund('1000');
      await p.provider('lp-1', '100000', '0.02', '20');
      await p.open('LONG', '10', '200', '200');
      await p.open('LONG', '30', '200', '450');
      await p.open('SHORT', '50', '200', '2000');
      p.venue.faults.emptyBooks.add('ETH-USD');
    },
  },
  {
    // A gap through bankruptcy on a live book: the fund pays 20 (its floor is 10), ADL takes the rest.
    name: 'adl',
    crashTo: '175',
    async build(p) {
      await p.fund('30');
      await p.open('LONG', '10', '200', '200');
      await p.open('LONG', '20', '200', '400');
      await p.open('SHORT', '10', '200', '400');
      await p.open('SHORT', '6', '200', '300');
    },
  },
];

/** What must not depend on where the process died: states, money per layer, journal totals, provider capital. */
function outcome(p: Pipeline, journal: readonly { amount: bigint }[]) {
  const liquidations = p.adapters.liquidations.all();
  const totals: Record<string, bigint> = {};
  for (const l of liquidations) {
    for (const [key, value] of Object.entries(l.settlement ?? {})) {
      const scaled = value.includes('.') ? value : `${value}.0`;
      // Sizes have 8 decimals, money 6: summing the decimal strings exactly as 1e-8 units covers both.
      const [whole, fraction = ''] = scaled.split('.');
      totals[key] = (totals[key] ?? 0n) + BigInt(`${whole}${fraction.padEnd(8, '0')}`);
    }
  }
  return {
    states: liquidations.map((l) => l.state).sort(),
    totals,
    journalEntries: journal.length,
    journalSum: journal.reduce((t, e) => t + e.amount, 0n),
  };
}

async function run(world: World, crashAt?: number) {
  let count = 0;
  let armed = false;
  let crashedAt: string | undefined;
  const trace: string[] = [];
  const p = createPipeline({
    config,
    crashHook: (point) => {
      // Receives and deletes are Lambda's own polling, not side effects of the handlers.
      if (!armed || /\.(receive|delete|changeVisibility)$/.test(point)) return;
      trace.push(point);
      count += 1;
      if (count === crashAt) {
        crashedAt = point;
        throw new InjectedCrash(point);
      }
    },
  });
  await p.tick('ETH-USD', '200', { sequence: 1 });
  await world.build(p);
  armed = true;
  try {
    await p.tick('ETH-USD', world.crashTo, { sequence: 2 });
  } catch (error) {
    expect(error).toBeInstanceOf(InjectedCrash);
    await p.tick('ETH-USD', world.crashTo, { sequence: 2 }); // EventBridge retries the same event
  }
  await p.drain();
  armed = false;
  const report = await p.check();
  const journal = await p.adapters.ledger.journal(INSURANCE_ACCOUNT);
  const provider = (await p.adapters.providers.get('lp-1'))?.capital;
  return { p, report, trace, crashedAt, provider, ...outcome(p, journal) };
}

/**
 * Known bugs (reported to the lead), recognised by their exact symptoms so that every other crash point stays
 * strictly checked; each has a failing test below that passes once it is fixed.
 * - auction-step-lost: auction.ts commits step k -> k+1, then sends the message for k+1. A death in between
 *   leaves the auction RUNNING with no message: the redelivered step-k message is judged stale and dropped.
 * - frozen-plan-stale: liquidation.ts freezes its settlement inputs (SETTLING: the fund state it read and the ADL
 *   counterparties' versions) before its ledger movements and final commit. A death in between lets another
 *   liquidation draw the fund or deleverage the same counterparties; the frozen plan can then never apply:
 *   the ledger refuses its debit (below floor, draw cap), or its commit fails on the counterparties' versions
 *   after its debit was paid (liquidation/too-many-transitions). The message ends in the dead-letter queue,
 *   the position stays LIQUIDATING, and in the second case the fund has paid out for no settlement.
 */
type KnownBug = 'auction-step-lost' | 'frozen-plan-stale';

function knownBug(r: Awaited<ReturnType<typeof run>>): KnownBug | undefined {
  const v = r.report.violations;
  if (v.length === 1 && /^stranded: .* is AUCTION with no message in flight$/.test(v[0] ?? ''))
    return 'auction-step-lost';
  const rest = v.filter((x) => !/^conservation: /.test(x));
  if (
    rest.length === 2 &&
    /^dead letters: 1 messages/.test(rest[0] ?? '') &&
    /^stranded: .* is SETTLING with no message in flight$/.test(rest[1] ?? '') &&
    r.p.errors.some((e) => /ledger\/(below-floor|draw-cap)|liquidation\/too-many-transitions/.test(e))
  )
    return 'frozen-plan-stale';
  return undefined;
}

describe('scenario 2: a crash after every side effect, auction and ADL paths', () => {
  it.each(WORLDS.map((w) => [w.name, w] as const))(
    '%s path: redelivery finishes the work exactly once whichever side effect dies',
    async (_name, world) => {
      const clean = await run(world);
      expect(clean.report.violations).toEqual([]);
      const states = clean.states;
      if (world.name === 'auction') {
        expect(states).toEqual(expect.arrayContaining(['SETTLED_AUCTION', 'SETTLED_ADL']));
        expect(clean.report.figures.auctionFills).toBeGreaterThan(0);
      } else {
        expect(states).toContain('SETTLED_ADL');
        expect(clean.report.figures.insurancePaid).toBeGreaterThan(0n);
        expect(clean.report.figures.adlCovered).toBeGreaterThan(0n);
      }

      const points: Record<string, number> = {};
      const known: Record<string, number[]> = {};
      for (let i = 1; i <= clean.trace.length; i++) {
        const crashed = await run(world, i);
        const at = `crash #${i} (${crashed.crashedAt})`;
        expect(crashed.crashedAt, at).toBe(clean.trace[i - 1]);
        points[crashed.crashedAt!] = (points[crashed.crashedAt!] ?? 0) + 1;
        const bug = knownBug(crashed);
        if (bug) {
          // Only between a step commit and its message, or between a freeze and the settlement.
          expect(['transactor.commit', 'ledger.apply'], at).toContain(crashed.crashedAt);
          known[bug] = [...(known[bug] ?? []), i];
          continue;
        }
        expect(crashed.report.violations, at).toEqual([]);
        // Redelivery may reorder liquidations that compete for the fund: who paid what may move, totals may not.
        expect(crashed.states, at).toEqual(clean.states);
        expect(crashed.totals, at).toEqual(clean.totals);
        expect(crashed.journalEntries, at).toBe(clean.journalEntries);
        expect(crashed.journalSum, at).toBe(clean.journalSum);
        expect(crashed.provider, at).toBe(clean.provider);
      }
      recordFigures(`2-crash-points-${world.name}`, {
        sideEffects: clean.trace.length,
        crashRuns: clean.trace.length,
        crashPoints: points,
        knownBugRuns: known,
        terminalStates: states,
        figures: clean.report.figures,
      });
    },
  );
});

describe('scenario 2: known bugs (these tests pass while the bug is there; flip to it() once fixed)', () => {
  it.fails.each([
    ['auction-step-lost', WORLDS[0]!],
    ['frozen-plan-stale', WORLDS[1]!],
  ] as const)('BUG %s: no crash point leaves work stranded', async (bug, world) => {
    const clean = await run(world);
    for (let i = 1; i <= clean.trace.length; i++) {
      const crashed = await run(world, i);
      expect(knownBug(crashed), `crash #${i}: ${crashed.report.violations.join('; ')}`).not.toBe(bug);
    }
  });
});

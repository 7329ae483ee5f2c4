import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import type { Fill } from '../../shared/domain/model.ts';
import { InjectedCrash, type LiquidationRecord } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { recordFigures } from '../support/invariants.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * Scenario 2, crash points: the process dies right after each side effect in turn (the embedded adapters' crash
 * hook), on the paths test/services does not cover: the auction (an empty book, providers that take part of
 * the lots, a reset, an exhausted auction whose rest goes to ADL) and the insurance + ADL path (a gap through
 * bankruptcy with a fund too small). EventBridge retries a tick that died; SQS redelivers a message that died
 * after its visibility timeout. Each run must end with every effect applied exactly once.
 *
 * A death can delay a priced execution, which then happens at the later time's price: between the claim of a
 * liquidation (EXECUTING, its order fixed) and its market order, the other liquidation's order reaches the book
 * first (the venue's impact changes both fills); between scheduling an auction's next step and committing the
 * current one, the step runs again at its redelivery, on the curve's later price. Such a run must still close the
 * same sizes through the same layers with the same states and journal entries; its money may differ from the
 * uncrashed run only through those fill prices. Every other crash point must end exactly like the uncrashed run.
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
    // Empty book: both longs go to auction. lp-1 takes at most 20 of an auction: 20 of the 30-lot and the whole
    // 10-lot. The 30-lot's last 10 and its shortfall go to the fund (cap 30) and ADL of the short.
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
    for (const [key, value] of Object.entries(l.settlement ?? {})) totals[key] = (totals[key] ?? 0n) + value;
  }
  const auctionFills = (l: LiquidationRecord): readonly Fill[] =>
    p.adapters.auctions.all().find((a) => a.liquidationId === l.id)?.fills ?? [];
  const fills = (withPrices: boolean) =>
    liquidations
      .map((l) => {
        const show = (fs: readonly Fill[]) =>
          fs.map((f) => (withPrices ? `${f.size}@${f.price}` : `${f.size}`));
        return `${l.id} market [${show(l.marketFills)}] auction [${show(auctionFills(l))}]`;
      })
      .sort();
  return {
    states: liquidations.map((l) => l.state).sort(),
    totals,
    journalEntries: journal.length,
    journalSum: journal.reduce((t, e) => t + e.amount, 0n),
    /** Every market and auction fill, size and price, per liquidation. */
    fills: fills(true),
    /** The same fills, sizes only. */
    fillSizes: fills(false),
  };
}

const SIZE_TOTALS = ['marketClosedSize', 'auctionClosedSize', 'adlClosedSize'] as const;

/**
 * The priced execution a death at `point` defers, if any, read from the records at the moment it struck:
 * 'order' when the commit just claimed a liquidation (QUEUED -> EXECUTING) whose order is not placed yet,
 * 'step' when an auction step's next message was just sent and the step itself is not committed yet.
 */
type Deferred = 'order' | 'step';

function deferredBy(p: Pipeline, point: string): Deferred | undefined {
  if (point === 'transactor.commit') {
    const group = p.observer.groups.at(-1);
    const claimed = group?.writes.some(
      (w) =>
        w.kind === 'liquidation' &&
        (w.after as LiquidationRecord).state === 'EXECUTING' &&
        (w.before as LiquidationRecord | undefined)?.state === 'QUEUED',
    );
    return claimed ? 'order' : undefined;
  }
  if (point === 'auctionQueue.send') {
    const sent = p.adapters.auctionQueue.pending().at(-1);
    const message = sent ? (JSON.parse(sent.body) as { auctionId: string; step: number }) : undefined;
    const auction = p.adapters.auctions.all().find((a) => a.id === message?.auctionId);
    return auction?.state === 'RUNNING' && message && message.step === auction.step + 1 ? 'step' : undefined;
  }
  return undefined;
}

async function run(world: World, crashAt?: number) {
  let count = 0;
  let armed = false;
  let crashedAt: string | undefined;
  let deferred: Deferred | undefined;
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
        deferred = deferredBy(p, point);
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
  return { p, report, trace, crashedAt, deferred, provider, ...outcome(p, journal) };
}

type Run = Awaited<ReturnType<typeof run>>;

/** The uncrashed run of a world and one run per crash point (each side effect in turn), computed once. */
const runs = new Map<string, Promise<{ clean: Run; crashed: Run[] }>>();
function crashRuns(world: World) {
  let value = runs.get(world.name);
  if (!value) {
    value = (async () => {
      const clean = await run(world);
      const crashed: Run[] = [];
      for (let i = 1; i <= clean.trace.length; i++) crashed.push(await run(world, i));
      return { clean, crashed };
    })();
    runs.set(world.name, value);
  }
  return value;
}

/**
 * Symptoms of two fixed bugs, kept as regression checks (the scenario test fails on any violation; these name it).
 * - auction-step-lost: auction.ts committed step k -> k+1, then sent the message for k+1. A death in between left
 *   the auction RUNNING with no message: the redelivered step-k message was judged stale and dropped.
 * - frozen-plan-stale: liquidation/freeze.ts froze its settlement inputs (SETTLING) before its ledger movements and
 *   final commit. A death in between let another liquidation draw the fund or deleverage the same counterparties; the
 *   frozen plan could then never apply (a refused debit, or a commit failing on the counterparties' versions after
 *   the debit was paid): dead-lettered, the position stuck LIQUIDATING.
 */
type FixedBug = 'auction-step-lost' | 'frozen-plan-stale';

function symptom(r: Run): FixedBug | undefined {
  const v = r.report.violations;
  if (v.some((x) => /^stranded: .* is AUCTION with no message in flight$/.test(x)))
    return 'auction-step-lost';
  if (
    v.some((x) => /^stranded: .* is SETTLING with no message in flight$/.test(x)) ||
    r.p.errors.some((e) => /ledger\/(below-floor|draw-cap)|liquidation\/too-many-transitions/.test(e))
  )
    return 'frozen-plan-stale';
  return undefined;
}

describe('scenario 2: a crash after every side effect, auction and ADL paths', () => {
  it.each(WORLDS.map((w) => [w.name, w] as const))(
    '%s path: redelivery finishes the work exactly once whichever side effect dies',
    async (_name, world) => {
      const { clean, crashed: all } = await crashRuns(world);
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

      // One crashed run per side effect of the clean run: a crash hook no longer called would crash nothing.
      expect(clean.trace.length).toBeGreaterThan(0);
      expect(all).toHaveLength(clean.trace.length);
      const points: Record<string, number> = {};
      const repriced: Record<string, number[]> = {};
      let exact = 0;
      for (const [index, crashed] of all.entries()) {
        const i = index + 1;
        const at = `crash #${i} (${crashed.crashedAt}${crashed.deferred ? `, defers the ${crashed.deferred}` : ''})`;
        expect(crashed.crashedAt, at).toBe(clean.trace[i - 1]);
        points[crashed.crashedAt!] = (points[crashed.crashedAt!] ?? 0) + 1;
        expect(crashed.report.violations, at).toEqual([]);
        // The only failure is the injected death: nothing fails while redelivering.
        expect(
          crashed.p.errors.filter((e) => !e.endsWith(`: ${crashed.crashedAt}`)),
          at,
        ).toEqual([]);
        expect(crashed.p.errors.length, at).toBeLessThanOrEqual(1);
        // Redelivery may reorder liquidations that compete for the fund: who paid what may move, totals may not.
        expect(crashed.states, at).toEqual(clean.states);
        expect(crashed.journalEntries, at).toBe(clean.journalEntries);
        expect(crashed.fillSizes, at).toEqual(clean.fillSizes);
        for (const key of SIZE_TOTALS) expect(crashed.totals[key], `${at}: ${key}`).toBe(clean.totals[key]);
        if (crashed.fills.join() !== clean.fills.join()) {
          // A deferred execution filled at other prices: only a death that deferred one may do that.
          expect(crashed.deferred, `${at}: fills ${crashed.fills} differ from ${clean.fills}`).toBeDefined();
          repriced[crashed.deferred!] = [...(repriced[crashed.deferred!] ?? []), i];
          continue;
        }
        // The same fills: the same money, exactly.
        expect(crashed.totals, at).toEqual(clean.totals);
        expect(crashed.journalSum, at).toBe(clean.journalSum);
        expect(crashed.provider, at).toBe(clean.provider);
        exact += 1;
      }
      recordFigures(`2-crash-points-${world.name}`, {
        sideEffects: clean.trace.length,
        crashRuns: all.length,
        crashPoints: points,
        exactlyLikeClean: exact,
        repricedByDeferral: repriced,
        terminalStates: states,
        figures: clean.report.figures,
      });
    },
  );
});

describe('scenario 2: fixed bugs stay fixed', () => {
  it.each([
    ['auction-step-lost', WORLDS[0]!],
    ['frozen-plan-stale', WORLDS[1]!],
  ] as const)('%s: no crash point leaves work stranded', async (bug, world) => {
    const { crashed } = await crashRuns(world);
    expect(crashed.length).toBeGreaterThan(0);
    for (const [index, r] of crashed.entries()) {
      expect(symptom(r), `crash #${index + 1}: ${r.report.violations.join('; ')}`).not.toBe(bug);
    }
  });
});

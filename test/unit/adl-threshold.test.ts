import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AdlCandidate, givesWithoutClosing, topEntriesForAdl } from '../../shared/domain/adl.ts';
import {
  type AdlOrder,
  AdlThreshold,
  adlLeverageKey,
  LEVERAGE_KEY_SCALE,
  UNBOUNDED_LEVERAGE_KEY,
} from '../../shared/domain/adl-threshold.ts';
import type { Side } from '../../shared/domain/model.ts';

/** A side's two ADL orders as an index serves them (ties by id), the most profitable / leveraged first. */
function orders(side: readonly AdlCandidate[], ofSide: Side): Record<AdlOrder, AdlCandidate[]> {
  const sortBy = (key: (c: AdlCandidate) => bigint) =>
    [...side].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.id < b.id ? -1 : 1));
  return {
    entry: sortBy((c) => (ofSide === 'LONG' ? c.entryPrice : -c.entryPrice)),
    leverage: sortBy((c) => -adlLeverageKey(c.size, c.collateral)),
  };
}

/** Runs a search page by page, as the service does; returns its result and how many positions it read. */
function search(
  side: readonly AdlCandidate[],
  ofSide: Side,
  mark: bigint,
  count: number,
  page: number,
  withoutClosing = false,
) {
  const deleveraged: Side = ofSide === 'LONG' ? 'SHORT' : 'LONG';
  const lists = orders(side, ofSide);
  const threshold = new AdlThreshold<AdlCandidate>(mark, deleveraged, count, withoutClosing);
  let at = 0;
  for (;;) {
    for (const order of ['entry', 'leverage'] as const) {
      const slice = lists[order].slice(at, at + page);
      threshold.offer(order, slice, at + page >= lists[order].length);
    }
    at += page;
    if (threshold.done()) return { ...threshold.result(), read: Math.min(at, side.length) };
  }
}

const markArb = fc.bigInt({ min: 100_000_000_000n, max: 10_000_000_000_000n });
const sideArb = (ofSide: Side, mark: bigint) =>
  fc.uniqueArray(
    fc.record({
      id: fc.string({ minLength: 1, maxLength: 4 }),
      side: fc.constant(ofSide),
      size: fc.bigInt({ min: 1n, max: 1_000_000_000n }),
      // Often on the same few prices and collaterals: ties in both orders.
      entryPrice: fc.oneof(
        fc.constantFrom(mark, mark / 2n, (mark * 3n) / 2n),
        fc.bigInt({ min: mark / 2n, max: (mark * 3n) / 2n }),
      ),
      collateral: fc.oneof(fc.constantFrom(0n, 1n, 1_000_000n), fc.bigInt({ min: 0n, max: 10_000_000_000n })),
      // Profit an earlier ADL took lowers a score below the orders' bounds (they know nothing of it).
      adlProfitGiven: fc.oneof(
        { arbitrary: fc.constant(0n), weight: 3 },
        { arbitrary: fc.bigInt({ min: 1n, max: 100_000_000_000n }), weight: 1 },
      ),
    }),
    { selector: (c) => c.id, maxLength: 40 },
  );

describe('exact ADL top from two mark-independent orders (threshold search)', () => {
  // With no size to close, only the positions that can give rank, past any number that cannot.
  it.each([
    { ranks: 'the whole side', withoutClosing: false },
    { ranks: 'the positions that give without closing', withoutClosing: true },
  ])(
    'finds topEntriesForAdl over $ranks, and says when it holds all of it (property)',
    ({ withoutClosing }) => {
      fc.assert(
        fc.property(
          markArb
            .chain((mark) =>
              fc.record({
                mark: fc.constant(mark),
                ofSide: fc.constantFrom<Side>('LONG', 'SHORT'),
                count: fc.integer({ min: 1, max: 12 }),
                page: fc.integer({ min: 1, max: 7 }),
              }),
            )
            .chain((s) => fc.record({ s: fc.constant(s), side: sideArb(s.ofSide, s.mark) })),
          ({ s, side }) => {
            const deleveraged: Side = s.ofSide === 'LONG' ? 'SHORT' : 'LONG';
            const got = search(side, s.ofSide, s.mark, s.count, s.page, withoutClosing);
            const ranked = withoutClosing ? side.filter((c) => givesWithoutClosing(c, s.mark)) : side;
            const exact = topEntriesForAdl(ranked, s.mark, deleveraged, s.count);
            expect(got.entries.map((e) => e.candidate.id)).toEqual(exact.map((e) => e.candidate.id));
            const rankable = topEntriesForAdl(ranked, s.mark, deleveraged, ranked.length).length;
            expect(got.complete).toBe(rankable <= s.count);
          },
        ),
        { numRuns: 500 },
      );
    },
  );

  it('reads a prefix of a large side, not all of it', () => {
    const mark = 100_00000000n;
    const side: AdlCandidate[] = Array.from({ length: 20_000 }, (_, i) => ({
      id: `s${i}`,
      side: 'SHORT',
      size: 100_000_000n,
      entryPrice: (101n + BigInt((i * 37) % 50)) * 100_000_000n,
      collateral: (5n + BigInt((i * 53) % 200)) * 1_000_000n,
    }));
    const got = search(side, 'SHORT', mark, 90, 500);
    expect(got.entries).toHaveLength(90);
    expect(got.entries.map((e) => e.candidate.id)).toEqual(
      topEntriesForAdl(side, mark, 'LONG', 90).map((e) => e.candidate.id),
    );
    expect(got.read).toBeLessThan(side.length / 4);
  });

  it('stops at once when the most profitable unseen position is not in profit', () => {
    const mark = 100n;
    const side: AdlCandidate[] = [
      { id: 'a', side: 'LONG', size: 10n, entryPrice: 90n, collateral: 5n },
      { id: 'b', side: 'LONG', size: 10n, entryPrice: 100n, collateral: 1n },
      { id: 'c', side: 'LONG', size: 10n, entryPrice: 120n, collateral: 1n },
    ];
    const threshold = new AdlThreshold<AdlCandidate>(mark, 'SHORT', 5);
    threshold.offer('entry', [side[0]!, side[1]!], false);
    threshold.offer('leverage', [side[1]!], false);
    expect(threshold.done()).toBe(true);
    expect(threshold.result()).toMatchObject({ complete: true });
    expect(threshold.result().entries.map((e) => e.candidate.id)).toEqual(['a']);
  });

  it('keys leverage from above: ceil(size * scale / collateral), no collateral above every finite key', () => {
    expect(adlLeverageKey(3n, 2n)).toBe((3n * LEVERAGE_KEY_SCALE + 1n) / 2n);
    expect(adlLeverageKey(1n, 3n) * 3n).toBeGreaterThanOrEqual(LEVERAGE_KEY_SCALE);
    expect(adlLeverageKey(1n, 0n)).toBe(UNBOUNDED_LEVERAGE_KEY);
    expect(adlLeverageKey(10n ** 30n, 1n)).toBe(UNBOUNDED_LEVERAGE_KEY);
    expect(UNBOUNDED_LEVERAGE_KEY.toString().length).toBeLessThanOrEqual(38);
  });
});

// Stryker's survivors (session 50): the exact decision where the doubles cannot tell, fields beyond 2^53, a frontier
// not known yet or unbounded, the other side's positions, a passed-over frontier, one order read to its end.
describe('threshold search: each decision at its edge', () => {
  // Longs (ADL against a short) at a mark of 2,000, entered at 1,000. A size equal to its collateral keys leverage
  // exactly (1e12), so the bound at F's frontiers is F's own score; C2, a unit of size more, scores 1e-12 above it
  // (within the doubles' margin: only the exact comparison tells).
  const MARK = 2_000n * 10n ** 8n;
  const ENTRY = 1_000n * 10n ** 8n;
  const long = (id: string, size: bigint, collateral: bigint, entryPrice = ENTRY): AdlCandidate => ({
    id,
    side: 'LONG',
    size,
    entryPrice,
    collateral,
  });
  const F = long('f', 10n ** 12n, 10n ** 12n);
  const C1 = long('c1', 2n * 10n ** 12n, 10n ** 12n);
  const C2 = long('c2', 10n ** 12n + 1n, 10n ** 12n);
  const offerBoth = (t: AdlThreshold<AdlCandidate>, page: AdlCandidate[]) => {
    t.offer('entry', page, false);
    t.offer('leverage', page, false);
  };

  it('is done when the one beyond the top scores above the bound by less than the doubles can tell', () => {
    const t = new AdlThreshold<AdlCandidate>(MARK, 'SHORT', 1);
    offerBoth(t, [C1, C2, F]);
    expect(t.done()).toBe(true);
    expect(t.result()).toMatchObject({ complete: false, entries: [{ candidate: { id: 'c1' } }] });
  });

  it('is not done when the one beyond the top only ties the bound: an unseen tie could come first by its id', () => {
    const t = new AdlThreshold<AdlCandidate>(MARK, 'SHORT', 1);
    offerBoth(t, [C1, F]);
    expect(t.done()).toBe(false);
  });

  it('weighs the one beyond the top, not one inside it', () => {
    // The top 2 of C1, C2 and F: F, beyond it, only ties the bound, though C1 is far above it.
    const t = new AdlThreshold<AdlCandidate>(MARK, 'SHORT', 2);
    offerBoth(t, [C1, C2, F]);
    expect(t.done()).toBe(false);
  });

  it('decides exactly when a field is beyond 2^53 (no estimate), with or without one beyond the top', () => {
    const huge = (id: string, size: bigint) => long(id, size, 10n ** 12n);
    const few = new AdlThreshold<AdlCandidate>(MARK, 'SHORT', 1);
    offerBoth(few, [huge('h', 10n ** 16n)]);
    expect(few.done()).toBe(false);
    const many = new AdlThreshold<AdlCandidate>(MARK, 'SHORT', 1);
    offerBoth(many, [huge('h1', 3n * 10n ** 16n), huge('h2', 2n * 10n ** 16n), huge('h3', 10n ** 16n)]);
    expect(many.done()).toBe(true);
    expect(many.result().entries.map((e) => e.candidate.id)).toEqual(['h1']);
  });

  it('is not done before both orders have a frontier', () => {
    for (const order of ['entry', 'leverage'] as const) {
      const t = new AdlThreshold<AdlCandidate>(MARK, 'SHORT', 1);
      t.offer(order, [C1, C2], false);
      expect(t.done()).toBe(false);
    }
  });

  it('bounds nothing while the leverage order is still at positions without collateral', () => {
    // 'a' (no collateral, out of profit) heads the leverage order; y and z (no collateral: infinite scores) head
    // the entry order. 'b', unseen, has no collateral either and ranks first by its id.
    const t = new AdlThreshold<AdlCandidate>(MARK, 'SHORT', 1);
    t.offer('entry', [long('z', 10n ** 8n, 0n, ENTRY / 2n), long('y', 10n ** 8n, 0n, ENTRY)], false);
    t.offer('leverage', [long('a', 10n ** 8n, 0n, 3n * ENTRY)], false);
    expect(t.done()).toBe(false);
  });

  it("passes over the deleveraged side's own positions: they move no frontier", () => {
    const t = new AdlThreshold<AdlCandidate>(MARK, 'SHORT', 1);
    const short = { ...long('s', 10n ** 8n, 10n ** 8n, 3n * ENTRY), side: 'SHORT' as const };
    t.offer('entry', [short], false);
    t.offer('leverage', [short], false);
    expect(t.done()).toBe(false);
    expect(t.result().entries).toEqual([]);
  });

  it('moves the entry frontier past a position passed over for giving nothing without closing', () => {
    const t = new AdlThreshold<AdlCandidate>(MARK, 'SHORT', 5, true);
    // F gives; 'o' is out of profit at the mark, so no unseen position is in profit.
    t.offer('entry', [F, long('o', 10n ** 8n, 10n ** 8n, MARK)], false);
    t.offer('leverage', [F], false);
    expect(t.done()).toBe(true);
    expect(t.result()).toMatchObject({ complete: true, entries: [{ candidate: { id: 'f' } }] });
  });

  it.each(['entry', 'leverage'] as const)(
    'has seen the whole side once the %s order alone is read to its end',
    (order) => {
      const t = new AdlThreshold<AdlCandidate>(MARK, 'SHORT', 5);
      t.offer(order, [C1, C2, F], true);
      t.offer(order === 'entry' ? 'leverage' : 'entry', [C1], false);
      expect(t.done()).toBe(true);
      expect(t.result()).toMatchObject({ complete: true });
      expect(t.result().entries).toHaveLength(3);
    },
  );

  it('stops at once for shorts when the most profitable unseen one is not in profit', () => {
    const short = (id: string, entryPrice: bigint): AdlCandidate => ({
      id,
      side: 'SHORT',
      size: 10n ** 8n,
      entryPrice,
      collateral: 10n ** 8n,
    });
    const t = new AdlThreshold<AdlCandidate>(MARK, 'LONG', 5);
    t.offer('entry', [short('p', 3n * ENTRY), short('q', MARK)], false);
    t.offer('leverage', [short('p', 3n * ENTRY)], false);
    expect(t.done()).toBe(true);
    expect(t.result()).toMatchObject({ complete: true, entries: [{ candidate: { id: 'p' } }] });
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pnlE16, settleClose } from '../../shared/domain/accounting.ts';
import {
  type AdlCandidate,
  AdlError,
  allocateAdl,
  asAdlCandidate,
  canDeleverage,
  compareScoresDesc,
  estimateScore,
  givesWithoutClosing,
  profitGivenAfter,
  rankCandidate,
  rankForAdl,
  topEntriesForAdl,
  topForAdl,
} from '../../shared/domain/adl.ts';
import type { Side } from '../../shared/domain/model.ts';
import { base, maxBig, minBig, NOTIONAL_TO_QUOTE, price, usd } from '../../shared/domain/units.ts';

const RUNS = { numRuns: 300 };
const MARK = price('2000');
const cand = (id: string, side: Side, size: string, entry: string, collateral: string): AdlCandidate => ({
  id,
  side,
  size: base(size),
  entryPrice: price(entry),
  collateral: usd(collateral),
});

describe('rankForAdl', () => {
  const book = [
    cand('a', 'SHORT', '1', '2200', '220'), // (200/220) * (2000/420) = 4.33
    cand('b', 'SHORT', '1', '2100', '50'), // (100/50) * (2000/150) = 26.7
    cand('c', 'SHORT', '2', '2100', '100'), // (200/100) * (4000/300) = 26.7, ties with b
    cand('d', 'SHORT', '1', '1900', '100'), // losing
    cand('e', 'SHORT', '1', '2000', '100'), // flat at the mark
    cand('f', 'LONG', '1', '1500', '100'), // same side as the deleveraged long
    cand('g', 'SHORT', '0', '2500', '100'), // flat (no size)
    cand('h', 'SHORT', '1', '2100', '0'), // no collateral: infinite leverage
  ];

  it('keeps only opposite-side positions in profit, highest score first, ties by id', () => {
    expect(rankForAdl(book, MARK, 'LONG').map((c) => c.id)).toEqual(['h', 'b', 'c', 'a']);
  });

  it('ranks longs against a deleveraged short', () => {
    const longs = [
      cand('x', 'LONG', '1', '1900', '100'), // (100/100) * (2000/200) = 10
      cand('y', 'LONG', '1', '1500', '100'), // (500/100) * (2000/600) = 16.7
      cand('z', 'LONG', '1', '2100', '100'), // losing
    ];
    const ranked = rankForAdl([...longs, ...book], MARK, 'SHORT');
    // f and y are the same position: equal scores, id order
    expect(ranked.map((c) => c.id)).toEqual(['f', 'y', 'x']);
    expect(ranked[0]!.unrealizedPnl).toBe(usd('500'));
  });

  it('is independent of the input order', () => {
    const reversed = [...book].reverse();
    expect(rankForAdl(reversed, MARK, 'LONG')).toEqual(rankForAdl(book, MARK, 'LONG'));
  });

  it('reuses its own rankings at the same mark, and ranks again a copy changed since, or another mark', () => {
    const ranked = rankForAdl(book, MARK, 'LONG');
    const again = rankForAdl(ranked, MARK, 'LONG');
    expect(again).toEqual(ranked);
    expect(again[0]!.score).toBe(ranked[0]!.score); // reused, not recomputed
    // b's copy with more collateral (its ranking spread along) scores below a: it must not keep b's score.
    const changed = ranked.map((c) => (c.id === 'b' ? { ...c, collateral: usd('1000') } : c));
    const fresh = book.map((c) => (c.id === 'b' ? { ...c, collateral: usd('1000') } : c));
    expect(rankForAdl(changed, MARK, 'LONG')).toEqual(rankForAdl(fresh, MARK, 'LONG'));
    expect(rankForAdl(changed, MARK, 'LONG').map((c) => c.id)).toEqual(['h', 'c', 'a', 'b']);
    // At another mark the scores are another's.
    const other = price('1900');
    const same = book.filter((c) => ranked.some((r) => r.id === c.id));
    expect(rankForAdl(ranked, other, 'LONG')).toEqual(rankForAdl(same, other, 'LONG'));
    expect(() => rankForAdl([ranked[0]!, ranked[0]!], MARK, 'LONG')).toThrow('adl/duplicate-id');
  });

  it.each([
    { name: 'duplicate id', list: [book[0]!, book[0]!], reason: 'adl/duplicate-id' },
    { name: 'zero entry', list: [{ ...book[0]!, entryPrice: 0n }], reason: 'adl/bad-candidate' },
  ])('rejects $name', ({ list, reason }) => {
    expect(() => rankForAdl(list, MARK, 'LONG')).toThrow(AdlError);
    expect(() => rankForAdl(list, MARK, 'LONG')).toThrow(reason);
  });
});

describe('allocateAdl: table', () => {
  const b = cand('b', 'SHORT', '1', '2100', '50');
  const c = cand('c', 'SHORT', '2', '2100', '100');
  const x = cand('x', 'SHORT', '1', '2010', '1000'); // 10 profit, low score
  const y = cand('y', 'SHORT', '1', '2500', '10'); // 500 profit, high score
  const long = (size: string) => ({ side: 'LONG' as const, size: base(size) });

  it.each([
    {
      name: 'nominal deficit: one counterparty fills at the bankruptcy price',
      input: { deficit: usd('50'), bankruptPosition: long('1'), ranked: [b, c] },
      fills: [{ id: 'b', size: '1', price: '2050', given: '50', haircut: '0' }],
      uncovered: '0',
    },
    {
      name: 'pro rata to the closed size',
      input: { deficit: usd('75'), bankruptPosition: long('1.5'), ranked: [b, c] },
      fills: [
        { id: 'b', size: '1', price: '2050', given: '50', haircut: '0' },
        { id: 'c', size: '0.5', price: '2050', given: '25', haircut: '0' },
      ],
      uncovered: '0',
    },
    {
      name: 'rounding remainder to the top-ranked',
      input: { deficit: 100n, bankruptPosition: long('3'), ranked: [c, b] },
      fills: [
        { id: 'b', size: '1', price: '2000.000034', given: '0.000034', haircut: '0' },
        { id: 'c', size: '2', price: '2000.000033', given: '0.000066', haircut: '0' },
      ],
      uncovered: '0',
    },
    {
      name: 'a capped counterparty gives only its profit; the rest moves up the ranking',
      input: { deficit: usd('200'), bankruptPosition: long('2'), ranked: [x, y] },
      fills: [
        { id: 'y', size: '1', price: '2190', given: '190', haircut: '0' },
        { id: 'x', size: '1', price: '2010', given: '10', haircut: '0' },
      ],
      uncovered: '0',
    },
    {
      name: 'no size left: a haircut on profit in rank order, never beyond a collateral',
      input: { deficit: usd('15'), bankruptPosition: long('0'), ranked: [x, y] },
      fills: [
        { id: 'y', size: '0', price: '2000', given: '10', haircut: '10' },
        { id: 'x', size: '0', price: '2000', given: '5', haircut: '5' },
      ],
      uncovered: '0',
    },
    {
      name: 'deficit over capacity: uncovered is bad debt',
      input: { deficit: usd('1000'), bankruptPosition: long('0'), ranked: [x, y] },
      fills: [
        // y's haircut stops at its collateral (10), x's at its profit (10)
        { id: 'y', size: '0', price: '2000', given: '10', haircut: '10' },
        { id: 'x', size: '0', price: '2000', given: '10', haircut: '10' },
      ],
      uncovered: '980',
    },
    {
      name: 'closes beyond the closed profit take the rest of the profit as a haircut',
      input: { deficit: usd('600'), bankruptPosition: long('0.5'), ranked: [y] },
      // 250 from the close; the haircut stops at collateral 10 + 250 realized - 250 given
      fills: [{ id: 'y', size: '0.5', price: '2500', given: '260', haircut: '10' }],
      uncovered: '340',
    },
    {
      name: 'zero deficit: closes at the mark, nothing given',
      input: { deficit: 0n, bankruptPosition: long('1'), ranked: [b] },
      fills: [{ id: 'b', size: '1', price: '2000', given: '0', haircut: '0' }],
      uncovered: '0',
    },
  ])('$name', ({ input, fills, uncovered }) => {
    const r = allocateAdl({ ...input, mark: MARK });
    expect(
      r.fills.map((f) => ({ id: f.id, size: f.size, price: f.price, given: f.pnlGiven, haircut: f.haircut })),
    ).toEqual(
      fills.map((f) => ({
        id: f.id,
        size: base(f.size),
        price: price(f.price),
        given: usd(f.given),
        haircut: usd(f.haircut),
      })),
    );
    expect(r.uncovered).toBe(usd(uncovered));
    expect(r.covered).toBe(input.deficit - usd(uncovered));
  });

  it('reports the size the opposite side cannot take', () => {
    const r = allocateAdl({ deficit: 0n, bankruptPosition: long('5'), ranked: [b, c], mark: MARK });
    expect(r.closedSize).toBe(base('3'));
    expect(r.unmatchedSize).toBe(base('2'));
  });

  it('rejects a negative deficit or size', () => {
    expect(() => allocateAdl({ deficit: -1n, bankruptPosition: long('1'), ranked: [b], mark: MARK })).toThrow(
      'adl/bad-input',
    );
    expect(() =>
      allocateAdl({ deficit: 0n, bankruptPosition: { side: 'LONG', size: -1n }, ranked: [b], mark: MARK }),
    ).toThrow('adl/bad-input');
  });
});

// --- properties -----------------------------------------------------------------------------------------

const sideArb = fc.constantFrom<Side>('LONG', 'SHORT');
const markArb = fc.bigInt({ min: 100_000_000_000n, max: 10_000_000_000_000n }); // 1k .. 100k USD
const candidatesArb = (mark: bigint) =>
  fc
    .uniqueArray(
      fc.record({
        id: fc.string({ minLength: 1, maxLength: 4 }),
        side: sideArb,
        size: fc.oneof(
          { arbitrary: fc.constant(0n), weight: 1 },
          { arbitrary: fc.bigInt({ min: 1n, max: 1_000_000_000n }), weight: 6 },
        ),
        // entries within +-50 % of the mark, often exactly at it (flat)
        entryPrice: fc.oneof(fc.constant(mark), fc.bigInt({ min: mark / 2n, max: (mark * 3n) / 2n })),
        collateral: fc.bigInt({ min: 0n, max: 10_000_000_000n }),
        // profit an earlier ADL took (often none)
        adlProfitGiven: fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 3 },
          { arbitrary: fc.bigInt({ min: 0n, max: 100_000_000_000n }), weight: 1 },
        ),
      }),
      { selector: (c) => c.id, minLength: 1, maxLength: 12 },
    )
    .map((list) =>
      list.map(
        ({ adlProfitGiven, ...c }): AdlCandidate =>
          adlProfitGiven === undefined ? c : { ...c, adlProfitGiven },
      ),
    );
const scenarioArb = markArb.chain((mark) =>
  fc.record({
    mark: fc.constant(mark),
    candidates: candidatesArb(mark),
    side: sideArb,
    size: fc.oneof(
      { arbitrary: fc.constant(0n), weight: 1 },
      { arbitrary: fc.bigInt({ min: 1n, max: 2_000_000_000n }), weight: 4 },
    ),
    deficit: fc.oneof(
      { arbitrary: fc.constant(0n), weight: 1 },
      { arbitrary: fc.bigInt({ min: 1n, max: 1_000_000n }), weight: 2 },
      { arbitrary: fc.bigInt({ min: 1n, max: 100_000_000_000n }), weight: 3 },
    ),
  }),
);

/** Profit ADL can take at the mark (E16): the position's, less what ADL took before. */
const profitLeft16 = (c: AdlCandidate, mark: bigint) =>
  pnlE16(c.side, c.size, c.entryPrice, mark) - (c.adlProfitGiven ?? 0n) * NOTIONAL_TO_QUOTE;

/**
 * The brief's definition: (pnl / M) * (P / |P - bankruptcy|), bankruptcy = E -/+ M/q, as one rational (pnl
 * less what ADL took before).
 */
const definitionScore = (c: AdlCandidate, mark: bigint) => {
  const m16 = c.collateral * NOTIONAL_TO_QUOTE;
  const qBk = c.side === 'LONG' ? c.size * c.entryPrice - m16 : c.size * c.entryPrice + m16; // q * bankruptcy
  const distance = c.size * mark - qBk; // q * (P - bankruptcy)
  return {
    num: profitLeft16(c, mark) * mark * c.size,
    den: m16 * (distance < 0n ? -distance : distance),
  };
};

/** Ids canDeleverage accepts: the same filter as the ranking's. */
const canDeleverageAll = (candidates: readonly AdlCandidate[], mark: bigint, side: Side) =>
  candidates
    .filter((c) => canDeleverage(c, mark, side))
    .map((c) => c.id)
    .sort();

describe('ADL: properties', () => {
  it('ranking: opposite side in profit only, ordered by the exact score, then id', () => {
    fc.assert(
      fc.property(scenarioArb, ({ mark, candidates, side }) => {
        const ranked = rankForAdl(candidates, mark, side);
        const expectedIds = candidates
          .filter((c) => c.side !== side && c.size > 0n && profitLeft16(c, mark) > 0n)
          .map((c) => c.id)
          .sort();
        expect(ranked.map((c) => c.id).sort()).toEqual(expectedIds);
        // A ranked list passed again (the ADL queue's order) keeps its order, as does its reverse once ranked.
        expect(rankForAdl(ranked, mark, side)).toEqual(ranked);
        expect(rankForAdl([...ranked].reverse(), mark, side)).toEqual(ranked);
        expect(canDeleverageAll(candidates, mark, side)).toEqual(expectedIds);
        for (let i = 1; i < ranked.length; i++) {
          const order = compareScoresDesc(
            definitionScore(ranked[i - 1]!, mark),
            definitionScore(ranked[i]!, mark),
          );
          expect(order <= 0).toBe(true);
          if (order === 0) expect(ranked[i - 1]!.id < ranked[i]!.id).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('allocation: sum given == min(deficit, capacity) exactly, each within its profit, closes greedy', () => {
    fc.assert(
      fc.property(scenarioArb, ({ mark, candidates, side, size, deficit }) => {
        const r = allocateAdl({ deficit, bankruptPosition: { side, size }, ranked: candidates, mark });
        const ranked = rankForAdl(candidates, mark, side);
        const byId = new Map(ranked.map((c) => [c.id, c]));
        // Each gives at most its profit, and at most its collateral plus the profit of what it closes.
        let sizeLeft = size;
        const capacity = ranked.reduce((a, c) => {
          const take = minBig(c.size, sizeLeft);
          sizeLeft -= take;
          // the closed size's profit less its share (rounded up) of what ADL took before
          const given = c.adlProfitGiven ?? 0n;
          const closed =
            take === 0n
              ? 0n
              : maxBig(
                  0n,
                  pnlE16(c.side, take, c.entryPrice, mark) / NOTIONAL_TO_QUOTE -
                    (given * take + c.size - 1n) / c.size,
                );
          return a + minBig(c.unrealizedPnl, maxBig(0n, c.collateral + closed));
        }, 0n);
        const given = r.fills.reduce((a, f) => a + f.pnlGiven, 0n);
        expect(given).toBe(minBig(deficit, capacity));
        expect(r.covered).toBe(given);
        expect(r.uncovered).toBe(deficit - given);
        const rankSize = ranked.reduce((a, c) => a + c.size, 0n);
        expect(r.closedSize).toBe(minBig(size, rankSize));
        expect(r.fills.reduce((a, f) => a + f.size, 0n)).toBe(r.closedSize);
        expect(r.unmatchedSize).toBe(size - r.closedSize);
        let previousRank = -1;
        let partialSeen = false;
        for (const f of r.fills) {
          const c = byId.get(f.id);
          expect(c).toBeDefined(); // never a same-side, losing or flat position
          if (!c) continue;
          const rank = ranked.indexOf(c);
          expect(rank > previousRank).toBe(true); // in rank order
          previousRank = rank;
          expect(f.pnlGiven >= 0n && f.pnlGiven <= c.unrealizedPnl).toBe(true);
          expect(f.haircut >= 0n && f.haircut <= f.pnlGiven).toBe(true);
          expect(f.size <= c.size).toBe(true);
          // the closed part never realizes a loss: what it gives stays within its profit at the mark
          const closedProfit16 = pnlE16(c.side, f.size, c.entryPrice, mark);
          expect((f.pnlGiven - f.haircut) * NOTIONAL_TO_QUOTE <= closedProfit16).toBe(true);
          if (f.size > 0n) {
            expect(partialSeen).toBe(false); // only the last closing counterparty is partial
            if (f.size < c.size) partialSeen = true;
          }
        }
      }),
      RUNS,
    );
  });

  it('over any number of ADLs at one mark, a counterparty gives at most the profit it had left', () => {
    // A haircut leaves the profit unrealized: without adlProfitGiven every later ADL took it again, out of the
    // counterparty's collateral (4 deficits took 100 USD from a short with 25 USD of profit).
    const roundsArb = fc.array(
      fc.record({
        size: fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 500_000_000n })),
        deficit: fc.bigInt({ min: 1n, max: 100_000_000_000n }),
      }),
      { minLength: 1, maxLength: 6 },
    );
    fc.assert(
      fc.property(scenarioArb, roundsArb, ({ mark, candidates, side }, rounds) => {
        const current = new Map(candidates.map((c) => [c.id, c]));
        const given = new Map<string, bigint>();
        for (const round of rounds) {
          const r = allocateAdl({
            deficit: round.deficit,
            bankruptPosition: { side, size: round.size },
            ranked: [...current.values()],
            mark,
          });
          for (const f of r.fills) {
            const c = current.get(f.id)!;
            given.set(f.id, (given.get(f.id) ?? 0n) + f.pnlGiven);
            if (f.size === c.size) {
              current.delete(f.id);
              continue;
            }
            // As the settlement writes it: the closed size's profit realized, what it gave taken out.
            const realized = pnlE16(c.side, f.size, c.entryPrice, mark) / NOTIONAL_TO_QUOTE;
            const collateral = c.collateral + realized - f.pnlGiven;
            expect(collateral >= 0n).toBe(true);
            current.set(f.id, {
              ...c,
              size: c.size - f.size,
              collateral,
              adlProfitGiven: profitGivenAfter(c, f.size, f.haircut, mark),
            });
          }
        }
        for (const c of candidates) {
          const left = maxBig(0n, profitLeft16(c, mark) / NOTIONAL_TO_QUOTE);
          expect(given.get(c.id) ?? 0n).toBeLessThanOrEqual(left);
        }
      }),
      RUNS,
    );
  });

  it('allocation does not depend on the order of the candidates', () => {
    fc.assert(
      fc.property(scenarioArb, ({ mark, candidates, side, size, deficit }) => {
        const a = allocateAdl({ deficit, bankruptPosition: { side, size }, ranked: candidates, mark });
        const b = allocateAdl({
          deficit,
          bankruptPosition: { side, size },
          ranked: [...candidates].reverse(),
          mark,
        });
        expect(b).toEqual(a);
      }),
      RUNS,
    );
  });

  it('an allocation that a prefix of the ranking settles whole is the allocation on the whole ranking', () => {
    // The settlement plans on the fewest of the ADL queue that give the plan (planOnPrefix relies on this).
    fc.assert(
      fc.property(scenarioArb, fc.nat(12), ({ mark, candidates, side, size, deficit }, cut) => {
        const ranked = rankForAdl(candidates, mark, side);
        const input = { deficit, bankruptPosition: { side, size }, mark };
        const onPrefix = allocateAdl({ ...input, ranked: ranked.slice(0, cut) });
        if (onPrefix.unmatchedSize === 0n && onPrefix.uncovered === 0n)
          expect(onPrefix).toEqual(allocateAdl({ ...input, ranked }));
      }),
      RUNS,
    );
  });

  it('scores compare by their doubles only when far apart: the order is the exact one, near ties included', () => {
    const ratioArb = fc.record({
      num: fc.bigInt({ min: 1n, max: 10n ** 40n }),
      den: fc.bigInt({ min: 0n, max: 10n ** 40n }),
    });
    const withApprox = (r: { num: bigint; den: bigint }) => ({ ...r, approx: Number(r.num) / Number(r.den) });
    const nearArb = ratioArb.chain((a) =>
      fc.record({
        a: fc.constant(a),
        // b within a few units of a on either side: doubles equal or closer than their error
        b: fc
          .record({ dn: fc.bigInt({ min: -3n, max: 3n }), dd: fc.bigInt({ min: -3n, max: 3n }) })
          .map(({ dn, dd }) => ({
            num: a.num + dn > 0n ? a.num + dn : a.num,
            den: a.den + dd >= 0n ? a.den + dd : a.den,
          })),
      }),
    );
    // (n + 1) / n against (m + 1) / m for huge n, m: the exact order is n's against m's, the doubles' a coin toss.
    const barelyAboveOneArb = fc
      .tuple(fc.bigInt({ min: 2n ** 55n, max: 2n ** 62n }), fc.bigInt({ min: 2n ** 55n, max: 2n ** 62n }))
      .map(([n, m]) => ({ a: { num: n + 1n, den: n }, b: { num: m + 1n, den: m } }));
    fc.assert(
      fc.property(
        fc.oneof(nearArb, barelyAboveOneArb, fc.record({ a: ratioArb, b: ratioArb })),
        ({ a, b }) => {
          expect(compareScoresDesc(withApprox(a), withApprox(b))).toBe(compareScoresDesc(a, b));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('topForAdl keeps exactly the first count of the ranking, ties and near ties included', () => {
    // Clones (equal scores, other ids) and near clones (one unit of collateral apart) around random candidates,
    // and fields beyond 2^53 (no estimate: the exact score decides).
    const bookArb = markArb.chain((mark) =>
      fc.record({
        mark: fc.constant(mark),
        side: sideArb,
        count: fc.nat(14),
        candidates: candidatesArb(mark).chain((list) =>
          fc
            .array(
              fc.record({ of: fc.nat(list.length - 1), kind: fc.constantFrom('clone', 'near', 'huge') }),
              {
                maxLength: 12,
              },
            )
            .map((extra) => [
              ...list,
              ...extra.map(({ of, kind }, i) => {
                const c = list[of]!;
                if (kind === 'clone') return { ...c, id: `clone-${i}` };
                if (kind === 'near') return { ...c, id: `near-${i}`, collateral: c.collateral + 1n };
                return {
                  ...c,
                  id: `huge-${i}`,
                  size: c.size * 2n ** 60n,
                  collateral: c.collateral * 2n ** 60n,
                };
              }),
            ]),
        ),
      }),
    );
    fc.assert(
      fc.property(bookArb, ({ mark, side, count, candidates }) => {
        const shuffled = [...candidates].reverse();
        expect(topForAdl(shuffled, mark, side, count)).toEqual(
          rankForAdl(candidates, mark, side).slice(0, count),
        );
        // Each ranking with the very candidate object it was made from.
        for (const { ranked, candidate } of topEntriesForAdl(shuffled, mark, side, count)) {
          expect(candidate).toBe(shuffled.find((c) => c.id === ranked.id));
        }
      }),
      RUNS,
    );
  });
});

// Found by a review of the money arithmetic in session 26: the open part kept the earlier give less its share
// rounded down while the closed part was charged its share rounded up, so one unit was counted twice.
describe('ADL: profit given before splits exactly between the closed and the open part', () => {
  it('a counterparty with 3000 USD of profit gives all of it over two rounds', () => {
    const mark = price('1000');
    // SHORT 3 ETH from 2000: 3000 USD profit at 1000; 1 unit of it already given by an earlier haircut.
    const c0: AdlCandidate = {
      id: 's',
      side: 'SHORT',
      size: base('3'),
      entryPrice: price('2000'),
      collateral: usd('10000'),
      adlProfitGiven: 1n,
    };
    // Round 1: a bankrupt long of 1 ETH; the deficit is exactly what the closed third can give.
    const a1 = allocateAdl({
      deficit: usd('1000') - 1n,
      bankruptPosition: { side: 'LONG', size: base('1') },
      ranked: [c0],
      mark,
    });
    expect(a1.uncovered).toBe(0n);
    const f = a1.fills[0]!;
    // Applied as liquidation/adl-rounds.ts deleverage() applies it.
    const closed = settleClose(c0, [{ price: mark, size: f.size }], 0n);
    const c1: AdlCandidate = {
      ...c0,
      size: c0.size - f.size,
      collateral: closed.remaining.collateral - f.pnlGiven,
      adlProfitGiven: profitGivenAfter(c0, f.size, f.haircut, mark),
    };
    // Round 2: a later deficit far above what is left; the remaining 2 ETH hold 2000 USD of profit.
    const a2 = allocateAdl({
      deficit: usd('100000'),
      bankruptPosition: { side: 'LONG', size: 0n },
      ranked: [c1],
      mark,
    });
    const lifetimeGiven = (c0.adlProfitGiven ?? 0n) + a1.covered + a2.covered;
    // The closed part was charged ceil(1/3) = 1 unit of the earlier give; the open part keeps 1 - 1 = 0 of it.
    expect(lifetimeGiven).toBe(usd('3000'));
  });
});

// Session 26: a position that keeps size after a slice carries the slice's deficit as negative collateral
// (accounting.ts settleSlice). Back OPEN with profit, it is no counterparty: its profit owes the deficit first
// (a review found ADL taking 750 USD from a long with 450 of equity, and a close wiping out the rest of a debt).
describe('ADL: a position carrying a deficit', () => {
  it('is never a counterparty, whatever its profit', () => {
    const mark = price('1000');
    // SHORT 2 ETH from 2000 (2000 USD of profit at 1000) that owes 100 USD; beside it one that owes nothing.
    const owing: AdlCandidate = {
      id: 'o',
      side: 'SHORT',
      size: base('2'),
      entryPrice: price('2000'),
      collateral: -usd('100'),
    };
    const clean: AdlCandidate = { ...owing, id: 'c', collateral: usd('100') };
    expect(canDeleverage(owing, mark, 'LONG')).toBe(false);
    expect(rankForAdl([owing, clean], mark, 'LONG').map((r) => r.id)).toEqual(['c']);
    const alone = allocateAdl({
      deficit: usd('500'),
      bankruptPosition: { side: 'LONG', size: base('1') },
      ranked: [owing],
      mark,
    });
    expect(alone).toMatchObject({ covered: 0n, uncovered: usd('500'), closedSize: 0n, fills: [] });
  });
});

// Boundaries of the filters and the fill's price (session 49's mutation testing found them untested).
describe('ADL: at each boundary', () => {
  const mark = price('1000');

  it('a deficit of one unit is a deficit: never a counterparty', () => {
    const owing: AdlCandidate = {
      id: 'o',
      side: 'SHORT',
      size: base('2'),
      entryPrice: price('2000'),
      collateral: -1n,
    };
    expect(rankForAdl([owing], mark, 'LONG')).toEqual([]);
    expect(
      allocateAdl({
        deficit: usd('5'),
        bankruptPosition: { side: 'LONG', size: base('1') },
        ranked: [owing],
        mark,
      }),
    ).toMatchObject({ covered: 0n, uncovered: usd('5'), closedSize: 0n, fills: [] });
  });

  it('no collateral and in profit: a counterparty (infinite leverage), though it gives nothing without closing', () => {
    const bare: AdlCandidate = {
      id: 'b',
      side: 'SHORT',
      size: base('2'),
      entryPrice: price('2000'),
      collateral: 0n,
    };
    expect(canDeleverage(bare, mark, 'LONG')).toBe(true);
    expect(givesWithoutClosing(bare, mark)).toBe(false);
  });

  it('gives without closing from exactly one unit of profit left', () => {
    // 1e-8 ETH long from 1000: at 1000 + 100 USD its profit is 1e-8 x 100 = 1e-6 USD, one unit.
    const one: AdlCandidate = { id: 'u', side: 'LONG', size: 1n, entryPrice: price('1000'), collateral: 1n };
    expect(givesWithoutClosing(one, price('1100'))).toBe(true);
    expect(givesWithoutClosing(one, price('1099.99999999'))).toBe(false);
  });

  it("a fill's price is the mark moved by the deficit per unit closed, rounded toward the mark", () => {
    // A short of 3 ETH from 1100 (300 USD of profit at 1000) takes a bankrupt long's 3 ETH and 1 USD of its
    // deficit: 1 / 3 = 0.333333333... USD per ETH, 0.33333333 toward the mark. A bankrupt short's counterparty
    // (a long from 900) sells below the mark by as much.
    const short: AdlCandidate = {
      id: 's',
      side: 'SHORT',
      size: base('3'),
      entryPrice: price('1100'),
      collateral: usd('1000'),
    };
    const ofLong = allocateAdl({
      deficit: usd('1'),
      bankruptPosition: { side: 'LONG', size: base('3') },
      ranked: [short],
      mark,
    });
    expect(ofLong.fills).toEqual([
      { id: 's', size: base('3'), price: price('1000.33333333'), pnlGiven: usd('1'), haircut: 0n },
    ]);
    const long: AdlCandidate = { ...short, id: 'l', side: 'LONG', entryPrice: price('900') };
    const ofShort = allocateAdl({
      deficit: usd('1'),
      bankruptPosition: { side: 'SHORT', size: base('3') },
      ranked: [long],
      mark,
    });
    expect(ofShort.fills).toEqual([
      { id: 'l', size: base('3'), price: price('999.66666667'), pnlGiven: usd('1'), haircut: 0n },
    ]);
  });
});

// Stryker's survivors (session 50): the checks' messages, the doubles' shortcut, the estimates, the closed part's share.
describe('ADL: refusals and exact edges', () => {
  const good = cand('g', 'SHORT', '1', '2100', '50');
  const messageOf = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(AdlError);
      expect((e as AdlError).name).toBe('AdlError');
      return (e as AdlError).message;
    }
    throw new Error('no error');
  };

  it.each([
    [{ ...good, id: '' }, 'adl/bad-candidate: empty id'],
    [{ ...good, id: 7 as unknown as string }, 'adl/bad-candidate: empty id'],
    [{ ...good, side: 'UP' as Side }, 'adl/bad-candidate: g: side UP'],
    [{ ...good, size: -1n }, 'adl/bad-candidate: g: size >= 0, entry > 0 and profit given >= 0 required'],
    [
      { ...good, adlProfitGiven: -1n },
      'adl/bad-candidate: g: size >= 0, entry > 0 and profit given >= 0 required',
    ],
    [
      { ...good, collateralUnderE16: -1n },
      'adl/bad-candidate: g: collateralUnderE16 -1 is outside [0, 1e10)',
    ],
    [
      { ...good, collateralUnderE16: NOTIONAL_TO_QUOTE },
      'adl/bad-candidate: g: collateralUnderE16 10000000000 is outside [0, 1e10)',
    ],
  ])('refuses a bad candidate, ranked or in a top: %o', (c, message) => {
    expect(messageOf(() => rankForAdl([c], MARK, 'LONG'))).toBe(message);
    expect(messageOf(() => topForAdl([c], MARK, 'LONG', 1))).toBe(message);
  });

  it('accepts the last sub-unit under the collateral', () => {
    expect(rankForAdl([{ ...good, collateralUnderE16: NOTIONAL_TO_QUOTE - 1n }], MARK, 'LONG')).toHaveLength(
      1,
    );
  });

  it('refuses a top of a bad count, at a bad mark, or with a duplicate id', () => {
    const two = [good, { ...good, id: 'h' }];
    expect(messageOf(() => topForAdl(two, MARK, 'LONG', -1))).toBe('adl/bad-input: count -1');
    expect(messageOf(() => topForAdl(two, MARK, 'LONG', 1.5))).toBe('adl/bad-input: count 1.5');
    expect(messageOf(() => topForAdl(two, 0n, 'LONG', 1))).toBe('adl/bad-input: mark 0 must be > 0');
    expect(messageOf(() => topForAdl([good, good], MARK, 'LONG', 1))).toBe('adl/duplicate-id: g');
  });

  it('refuses a ranking at a zero mark, even of nothing', () => {
    expect(messageOf(() => rankForAdl([], 0n, 'LONG'))).toBe('adl/bad-input: mark 0 must be > 0');
    expect(messageOf(() => rankForAdl([good], 0n, 'LONG'))).toBe('adl/bad-input: mark 0 must be > 0');
    expect(messageOf(() => rankCandidate(good, 0n, 'LONG'))).toBe('adl/bad-input: mark 0 must be > 0');
  });

  it("says the allocation's bad amount", () => {
    const one = { side: 'LONG' as const, size: base('1') };
    expect(
      messageOf(() => allocateAdl({ deficit: -1n, bankruptPosition: one, ranked: [], mark: MARK })),
    ).toBe('adl/bad-input: deficit -1 must be >= 0');
    expect(
      messageOf(() =>
        allocateAdl({ deficit: 0n, bankruptPosition: { side: 'LONG', size: -2n }, ranked: [], mark: MARK }),
      ),
    ).toBe('adl/bad-input: size -2 must be >= 0');
  });

  it('ranks one candidate as the ranking of it alone does', () => {
    expect(rankCandidate(good, MARK, 'LONG')).toEqual(rankForAdl([good], MARK, 'LONG')[0]);
    expect(rankCandidate(good, MARK, 'SHORT')).toBeUndefined();
    expect(rankCandidate(cand('l', 'SHORT', '1', '1900', '50'), MARK, 'LONG')).toBeUndefined();
  });

  it('scores pnlRatio x effective leverage exactly: 100/50 x 2000/150 = 80/3', () => {
    const [ranked] = rankForAdl([good], MARK, 'LONG');
    expect(ranked!.score.num * 3n).toBe(ranked!.score.den * 80n);
    expect(ranked!.score.approx).toBeCloseTo(80 / 3, 12);
  });

  it('ranks again a ranking made against the other side', () => {
    const ranked = rankForAdl([good], MARK, 'LONG');
    // Against a deleveraged short only longs count: the short g is none of them.
    expect(rankForAdl(ranked, MARK, 'SHORT')).toEqual([]);
  });

  it('orders equal scores exactly when their doubles differ by a rounding', () => {
    // 3x / 3 and x / 1 with x beyond 2^53: the same ratio, whose doubles may differ by an ulp; never far apart.
    const x = 2n ** 60n + 86n;
    const ratio = (num: bigint, den: bigint) => ({ num, den, approx: Number(num) / Number(den) });
    const a = ratio(3n * x, 3n);
    const b = ratio(x, 1n);
    expect(a.approx).not.toBe(b.approx);
    expect(compareScoresDesc(a, b)).toBe(0);
    expect(compareScoresDesc(b, a)).toBe(0);
  });

  it('estimates the score in doubles, and declines fields beyond 2^53', () => {
    const exact = rankForAdl([good], MARK, 'LONG')[0]!.score.approx!;
    expect(estimateScore(good, MARK)).toBeCloseTo(exact, 12);
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    for (const over of [{ size: max + 1n }, { entryPrice: max + 1n }, { collateral: max + 1n }])
      expect(estimateScore({ ...good, ...over }, MARK)).toBeUndefined();
    expect(estimateScore(good, max + 1n)).toBeUndefined();
    // At 2^53 - 1 itself every field converts exactly.
    for (const at of [{ size: max }, { entryPrice: max }, { collateral: max }])
      expect(estimateScore({ ...good, ...at }, MARK)).toEqual(expect.any(Number));
    expect(estimateScore({ ...good, entryPrice: max }, max)).toBe(0); // flat at the mark
    expect(estimateScore({ ...good, size: 1n, entryPrice: max }, max - 1n)).toBeGreaterThan(0);
  });

  it('estimates 0 for no candidate, infinity for a profit with no collateral', () => {
    expect(estimateScore({ ...good, collateral: -1n }, MARK)).toBe(0);
    expect(estimateScore({ ...good, collateral: 0n }, MARK)).toBe(Number.POSITIVE_INFINITY);
    expect(estimateScore(cand('l', 'SHORT', '1', '1900', '50'), MARK)).toBe(0);
    // 100 of profit, 150 taken before: nothing left. Exactly 100 taken, without collateral: nothing either (not 0/0).
    expect(estimateScore({ ...good, adlProfitGiven: usd('150') }, MARK)).toBe(0);
    expect(estimateScore({ ...good, collateral: 0n, adlProfitGiven: usd('100') }, MARK)).toBe(0);
  });

  it("keeps a position's own record when it has no sub-unit to drop", () => {
    const p = { id: 'p', collateral: usd('5'), collateralOverE16: 0n };
    expect(asAdlCandidate(p)).toEqual(p);
  });

  it('the closed part takes its share of what was given rounded up when its profit carries the extra unit', () => {
    // A short of 3 ETH 0.000001 above the mark: a unit of profit per ETH; 1 unit given before. Closing 1 ETH
    // realizes 1 unit, enough for ceil(1/3) = 1: the open part keeps nothing given.
    const thin: AdlCandidate = { ...cand('t', 'SHORT', '3', '2000.000001', '10'), adlProfitGiven: 1n };
    expect(profitGivenAfter(thin, base('1'), 0n, MARK)).toBe(0n);
    // Closed whole, nothing stays given, whatever the haircut.
    expect(profitGivenAfter(thin, base('3'), 5n, MARK)).toBe(0n);
  });
});

// lot51-consumer-knows-lot: with the market's lot, positions open in whole lots and slices leave whole lots, so ADL's
// closes must not split a counterparty by a size off the lot (its rest could then never be sold on the venue).
describe('ADL: in whole lots when every position is', () => {
  it('closes whole lots of each counterparty, leaves each whole lots, and leaves whole lots unmatched', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 6n }),
        fc.bigInt({ min: 0n, max: 50n }),
        fc.bigInt({ min: 0n, max: usd('10000') }),
        fc.array(
          fc.record({
            lots: fc.bigInt({ min: 0n, max: 20n }),
            entry: fc.bigInt({ min: price('2001'), max: price('3000') }),
            collateral: fc.bigInt({ min: 0n, max: usd('5000') }),
          }),
          { maxLength: 8 },
        ),
        (lot, lots, deficit, shorts) => {
          const ranked = shorts.map((s, i) => ({
            id: `s${i}`,
            side: 'SHORT' as const,
            size: s.lots * lot,
            entryPrice: s.entry,
            collateral: s.collateral,
          }));
          const a = allocateAdl({
            deficit,
            bankruptPosition: { side: 'LONG', size: lots * lot },
            ranked,
            mark: MARK,
          });
          for (const f of a.fills) {
            expect(f.size % lot).toBe(0n);
            const before = ranked.find((c) => c.id === f.id)!;
            expect((before.size - f.size) % lot).toBe(0n);
          }
          expect(a.closedSize % lot).toBe(0n);
          expect(a.unmatchedSize % lot).toBe(0n);
        },
      ),
      RUNS,
    );
  });
});

describe("ADL: whole lots of the market's lot, whatever the sizes (lot52-adl-whole-lots)", () => {
  const short = (id: string, size: bigint) => ({
    id,
    side: 'SHORT' as const,
    size,
    entryPrice: price('2500'),
    collateral: usd('100'),
  });
  const L = base('0.001');

  it('a part under a lot goes to no counterparty: it stays unmatched', () => {
    const take = (size: string, lot?: bigint) =>
      allocateAdl({
        deficit: 0n,
        bankruptPosition: { side: 'LONG', size: base(size) },
        ranked: [short('s1', base('0.6')), short('s2', base('1'))],
        mark: MARK,
        ...(lot === undefined ? {} : { lot }),
      });
    // s2 ranks first (the higher leverage).
    const a = take('1.6005', L);
    expect(a.fills.map((f) => [f.id, f.size])).toEqual([
      ['s2', base('1')],
      ['s1', base('0.6')],
    ]);
    expect(a).toMatchObject({ closedSize: base('1.6'), unmatchedSize: base('0.0005') });
    expect(take('1.0005', L).fills.map((f) => [f.id, f.size])).toEqual([['s2', base('1')]]);
    // Before: s1 closed 0.0005 and was left at 0.5995, off the lot. Without a lot, or of one unit, as ever.
    expect(take('1.0005').fills.map((f) => [f.id, f.size])).toEqual([
      ['s2', base('1')],
      ['s1', base('0.0005')],
    ]);
    expect(take('1.0005', 1n)).toEqual(take('1.0005'));
    // All under a lot: nobody closes.
    expect(take('0.0005', L)).toMatchObject({ fills: [], closedSize: 0n, unmatchedSize: base('0.0005') });
  });

  it("closes whole lots of each counterparty, so none's part under a lot changes, and carries the rest", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 6n }),
        fc.bigInt({ min: 1n, max: 10n ** 9n }),
        fc.bigInt({ min: 0n, max: usd('10000') }),
        fc.array(
          fc.record({
            size: fc.bigInt({ min: 0n, max: 10n ** 9n }),
            entry: fc.bigInt({ min: price('2001'), max: price('3000') }),
            collateral: fc.bigInt({ min: 0n, max: usd('5000') }),
          }),
          { maxLength: 8 },
        ),
        (lot, size, deficit, shorts) => {
          const ranked = shorts.map((s, i) => ({
            id: `s${i}`,
            side: 'SHORT' as const,
            size: s.size,
            entryPrice: s.entry,
            collateral: s.collateral,
          }));
          const input = { deficit, bankruptPosition: { side: 'LONG' as const, size }, ranked, mark: MARK };
          const a = allocateAdl({ ...input, lot });
          for (const f of a.fills) {
            expect(f.size % lot).toBe(0n);
            expect(f.size).toBeLessThanOrEqual(ranked.find((c) => c.id === f.id)!.size);
          }
          expect(a.closedSize + a.unmatchedSize).toBe(size);
          // What is carried is under a lot, or what the counterparties' whole lots could not take.
          const room = ranked.reduce((t, c) => t + (c.size - (c.size % lot)), 0n);
          expect(a.unmatchedSize < lot || a.closedSize === room).toBe(true);
          expect(a.covered + a.uncovered).toBe(deficit);
          // One unit is no lot.
          expect(allocateAdl({ ...input, lot: 1n })).toEqual(allocateAdl(input));
        },
      ),
      RUNS,
    );
  });
});

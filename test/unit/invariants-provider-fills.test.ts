import { describe, expect, it } from 'vitest';
import { bidPrice } from '../../shared/domain/clearing.ts';
import { fillEdge, type ProviderFill, recordProviderFill } from '../../shared/domain/provider-fills.ts';
import { base, notionalQuote, price, usd } from '../../shared/domain/units.ts';
import type { AuctionFill, AuctionRecord, ProviderRecord } from '../../shared/ports/index.ts';
import { checkAuctions, checkProviderFills } from '../support/invariants.ts';

/**
 * The invariant checker's oracle for a provider's fills (providers48-fills-on-record), on one auction step written by
 * hand: the step's auction write and its provider's, as the Observer logs them.
 */

const provider: ProviderRecord = {
  id: 'lp-1',
  capital: usd('100000'),
  maxDiscountPpm: 20_000n,
  maxLot: base('5'),
  symbols: ['ETH-USD'],
  version: 0,
};

const running: AuctionRecord = {
  id: 'auction-long-1:1',
  liquidationId: 'long-1:1',
  symbol: 'ETH-USD',
  direction: 'SELL',
  lot: base('0.6'),
  remainingLot: base('0.6'),
  top: price('1850'),
  startedAtMs: 1_584_050_000_000,
  resets: 0,
  step: 3,
  state: 'RUNNING',
  fills: [],
  version: 3,
};

const MARK = price('1799.99999999');
const SIZE = base('0.3');

/**
 * One step that fills half the lot at lp-1's bid at `mark` (the debt covered, it ends the auction unless `running`),
 * its provider write recording `recorded` over the fill.
 */
function step(
  options: {
    mark?: bigint;
    cost?: 'omitted';
    recorded?: Partial<ProviderFill>;
    /** The mark the auction ends at; `running`: the step leaves it running (a lot left). */
    ended?: bigint | 'running';
    /** The auction fill's own time over its provider's (`none`: no time, as a fill of an earlier version). */
    fillTime?: 'none' | Partial<Pick<AuctionFill, 'step' | 'atMs' | 'mark'>>;
  } = {},
) {
  const mark = options.mark ?? MARK;
  const at = bidPrice(provider, 'SELL', mark);
  // The provider pays size x price rounded up (clearing's cost of a SELL lot).
  const cost = notionalQuote(SIZE, at, 'ceil');
  const atMs = options.recorded?.atMs ?? 1_584_050_060_000;
  // When it was made, as the provider's record says (review52-support-fill-times-on-auction), unless `fillTime` says otherwise.
  const time =
    options.fillTime === 'none'
      ? {}
      : { step: running.step, atMs, mark: options.recorded?.mark ?? mark, ...options.fillTime };
  const fill: AuctionFill = {
    providerId: provider.id,
    price: at,
    size: SIZE,
    ...(options.cost === 'omitted' ? {} : { cost }),
    ...time,
  };
  const after: AuctionRecord = {
    ...running,
    remainingLot: running.remainingLot - SIZE,
    ...(options.ended === 'running'
      ? {}
      : { state: 'CLEARED', endedBy: 'plan', endedAtMark: options.ended ?? mark }),
    fills: [fill],
    step: running.step + 1,
    version: running.version + 1,
  };
  const recorded: ProviderFill = {
    liquidationId: running.liquidationId,
    step: running.step,
    symbol: running.symbol,
    direction: 'SELL',
    size: SIZE,
    price: at,
    cost,
    mark,
    edge: fillEdge('SELL', SIZE, mark, cost),
    atMs,
    ...options.recorded,
  };
  const filled: ProviderRecord = {
    ...provider,
    capital: provider.capital - cost,
    ...recordProviderFill(provider, {
      ...recorded,
      edge: fillEdge('SELL', recorded.size, recorded.mark, recorded.cost),
    }),
    version: 1,
  };
  const groups = [
    {
      id: 1,
      writes: [
        { kind: 'auction' as const, before: running, after },
        { kind: 'provider' as const, before: provider, after: filled },
      ],
    },
  ];
  return { groups, auctions: [after], filled, cost };
}

describe("invariants: a provider's fill on its record", () => {
  it('passes the step written as the auction writes it', () => {
    for (const ended of [undefined, 'running' as const]) {
      const { groups, auctions } = step(ended ? { ended } : {});
      expect(checkProviderFills({ groups }, auctions)).toEqual([]);
    }
  });

  // providers49-fill-mark: the edge was checked against the mark the fill recorded, whatever it was, so a step that
  // recorded another mark than its own (the auction's start, an earlier step's) passed every run.
  it.each([
    ['the auction started at, in a step that ended it', price('1850'), undefined, 2],
    ['the auction started at, in a step that left it running', price('1850'), 'running' as const, 1],
    // Its bid rounds to the same price: the mark the auction ended at tells.
    ['a unit away, in a step that ended it', MARK + 1n, undefined, 1],
  ])('flags a fill that records a mark not its step own: %s', (_name, mark, ended, count) => {
    const { groups, auctions } = step({ recorded: { mark }, ...(ended ? { ended } : {}) });
    const problems = checkProviderFills({ groups }, auctions);
    expect(problems).toHaveLength(count);
    for (const problem of problems)
      expect(problem).toMatch(/^provider fills: lp-1's fill of auction-long-1:1 step 3 records mark /);
  });

  // One mark a step: a second provider's fill recording a mark a unit off, at which its bid rounds to the same price,
  // in a step that leaves the auction running (no endedAtMark to tell): only the step's other fill tells. Recording
  // the step's mark, two providers at different bids pass.
  it("flags a step whose fills record two marks, each at its provider's bid", () => {
    const other: ProviderRecord = { ...provider, id: 'lp-2', maxDiscountPpm: 30_000n };
    const at = bidPrice(other, 'SELL', MARK);
    expect(bidPrice(other, 'SELL', MARK + 1n)).toBe(at);
    // A lot left: the step leaves the auction running.
    const size = base('0.1');
    const cost = notionalQuote(size, at, 'ceil');
    const withOther = (mark: bigint) => {
      const { groups, auctions } = step({ ended: 'running' });
      const fill = {
        providerId: other.id,
        price: at,
        size,
        cost,
        step: running.step,
        atMs: 1_584_050_060_000,
        mark,
      };
      const recorded: ProviderFill = {
        liquidationId: running.liquidationId,
        step: running.step,
        symbol: running.symbol,
        direction: 'SELL',
        size,
        price: at,
        cost,
        mark,
        edge: fillEdge('SELL', size, mark, cost),
        atMs: 1_584_050_060_000,
      };
      const filled = {
        ...other,
        capital: other.capital - cost,
        ...recordProviderFill(other, recorded),
        version: 1,
      };
      const [auction, first] = groups[0]!.writes;
      const after = {
        ...auctions[0]!,
        remainingLot: auctions[0]!.remainingLot - size,
        fills: [...auctions[0]!.fills, fill],
      };
      const writes = [
        { ...auction!, after },
        first!,
        { kind: 'provider' as const, before: other, after: filled },
      ];
      return checkProviderFills({ groups: [{ id: 1, writes }] }, [after]);
    };
    expect(withOther(MARK)).toEqual([]);
    expect(withOther(MARK + 1n)).toEqual([
      expect.stringMatching(
        /^provider fills: lp-2's fill of auction-long-1:1 step 3 records mark \d+, another of the step's /,
      ),
    ]);
  });

  it('flags a step that ended its auction at another mark than its fills record', () => {
    const { groups, auctions } = step({ ended: MARK - 100n });
    expect(checkProviderFills({ groups }, auctions)).toEqual([
      expect.stringMatching(/the step ended the auction at/),
    ]);
  });

  // review52-support-fill-times-on-auction: a step's fill records when it was made on the auction too, as on its provider.
  it.each([
    ['no time (as an earlier version wrote it)', 'none' as const],
    ['another step', { step: running.step + 1 }],
    ['another time', { atMs: 1_584_050_061_000 }],
    ['another mark', { mark: MARK - 1n }],
  ])("flags an auction fill that records %s than its provider's record", (_name, fillTime) => {
    const { groups, auctions } = step({ fillTime });
    expect(checkProviderFills({ groups }, auctions)).toEqual([
      expect.stringMatching(/^auction fill times: auction-long-1:1's fill of lp-1 at step 3 records /),
    ]);
  });

  // providers49-cost-one-rule: checkAuctions counted a fill without `cost` as size x price rounded against the
  // provider, the fills check as 0 (and as not the provider's recorded cost): two answers for one fill.
  it('counts a fill without cost as checkAuctions does: size x price rounded against the provider', () => {
    const { groups, auctions, filled, cost } = step({ cost: 'omitted' });
    expect(checkAuctions(auctions)).toEqual({ fills: 1, cost, problems: [] });
    expect(provider.capital - filled.capital).toBe(cost);
    expect(checkProviderFills({ groups }, auctions)).toEqual([]);
  });
});

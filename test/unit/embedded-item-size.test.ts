import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { itemBytes, MAX_ITEM_BYTES } from '../../shared/adapters/aws/item-size.ts';
import {
  auctionItem,
  auctionItemBytesAtMost,
  liquidationItem,
  liquidationItemBytesAtMost,
  withWriter,
} from '../../shared/adapters/aws/record-items.ts';
import { EmbeddedAuctionRepository } from '../../shared/adapters/embedded/auctions.ts';
import { EmbeddedLiquidationRepository } from '../../shared/adapters/embedded/liquidations.ts';
import { EmbeddedMarketRepository } from '../../shared/adapters/embedded/markets.ts';
import { EmbeddedPositionRepository } from '../../shared/adapters/embedded/positions.ts';
import { EmbeddedProviderRepository } from '../../shared/adapters/embedded/providers.ts';
import { EmbeddedTransactor } from '../../shared/adapters/embedded/transactor.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import { SETTLEMENT_UNITS, type SettlementAmounts } from '../../shared/domain/waterfall.ts';
import { LIQUIDATION_STATES } from '../../shared/local/status.ts';
import type {
  AuctionRecord,
  LiquidationContext,
  LiquidationEvent,
  LiquidationRecord,
  PositionRecord,
} from '../../shared/ports/index.ts';

/**
 * Found by a review of the embedded adapters in session 41 (docs/RELIABILITY.md, embedded-item-size): the
 * embedded stores took a record of any size, where DynamoDB refuses an item over 400 KB (ValidationException), so
 * a record that grows without bound (a liquidation's history and fills, an auction's fills) passed every test on
 * the embedded engine and failed only on AWS.
 */

const position: PositionRecord = {
  id: 'p1',
  traderId: 't1',
  symbol: 'ETH-USD',
  side: 'LONG',
  size: base('2'),
  entryPrice: price('200'),
  collateral: usd('20'),
  state: 'OPEN',
  version: 3,
  liquidationPrice: price('190'),
};

const liquidation = (more: Partial<LiquidationRecord> = {}): LiquidationRecord => ({
  id: 'p1:3',
  positionId: 'p1',
  symbol: 'ETH-USD',
  side: 'LONG',
  state: 'QUEUED',
  tickKey: 'ETH-USD#7',
  triggerMark: price('189'),
  remainingSize: base('2'),
  marketFills: [],
  history: [{ atMs: 7_000, state: 'QUEUED' }],
  version: 0,
  ...more,
});

const auction = (more: Partial<AuctionRecord> = {}): AuctionRecord => ({
  id: 'a1',
  liquidationId: 'p1:3',
  symbol: 'ETH-USD',
  direction: 'SELL',
  lot: base('1'),
  remainingLot: base('1'),
  top: price('198'),
  startedAtMs: 0,
  resets: 0,
  step: 0,
  state: 'RUNNING',
  fills: [],
  version: 0,
  ...more,
});

/** `count` history entries, each with a note of `noteLength` ASCII characters. */
const history = (count: number, noteLength: number): LiquidationEvent[] =>
  Array.from({ length: count }, (_, i) => ({
    atMs: 7_000 + i,
    state: 'EXECUTING' as const,
    note: 'x'.repeat(noteLength),
  }));

const FAILURE = { reason: 'Error: the venue timed out', attempt: 2, atMs: 9_000 };

const exactBytes = (l: LiquidationRecord): number => itemBytes(liquidationItem(l));
/** As a put alone (replace) writes it: with its writer's token (owned-put.ts). */
const aloneBytes = (l: LiquidationRecord): number => itemBytes(withWriter(liquidationItem(l), randomUUID()));

function stores() {
  const positions = new EmbeddedPositionRepository();
  const liquidations = new EmbeddedLiquidationRepository(positions);
  const auctions = new EmbeddedAuctionRepository();
  const transactor = new EmbeddedTransactor({
    positions,
    liquidations,
    auctions,
    providers: new EmbeddedProviderRepository(),
    markets: new EmbeddedMarketRepository(),
  });
  return { positions, liquidations, auctions, transactor };
}

const TOO_LARGE = {
  name: 'ValidationException',
  message: expect.stringMatching(/^Item size has exceeded the maximum allowed size \(liquidations p1:3: /),
};

/**
 * In a transaction DynamoDB cancels it (TransactionCanceledException) with a ValidationError at the item's index
 * of the TransactWriteItems, 'None' at the others (small43-transaction-too-large).
 */
const cancelled = (codes: readonly string[], what: RegExp) => ({
  name: 'TransactionCanceledException',
  message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes.join(', ')}]`,
  CancellationReasons: codes.map((Code) =>
    Code === 'ValidationError' ? { Code, Message: expect.stringMatching(what) } : { Code },
  ),
});
const LIQUIDATION_TOO_LARGE = /^Item size has exceeded the maximum allowed size \(liquidations p1:3: /;

/** An UpdateItem's refusal: DynamoDB words it apart from a put's (embedded44-update-wording). */
const TOO_LARGE_TO_UPDATE = (what: string) => ({
  name: 'ValidationException',
  message: expect.stringMatching(
    new RegExp(`^Item size to update has exceeded the maximum allowed size \\(${what}: `),
  ),
});

describe('the embedded stores refuse an item over 400 KB, as DynamoDB does', () => {
  it('refuses a liquidation replaced past the limit, and keeps the record as it was', async () => {
    const s = stores();
    await s.positions.create(position);
    await s.liquidations.begin(position, liquidation());
    const before = await s.liquidations.get('p1:3');
    const grown = liquidation({ history: history(4_000, 100), version: 1 });
    expect(exactBytes(grown)).toBeGreaterThan(MAX_ITEM_BYTES);
    await expect(s.liquidations.replace(grown, 0)).rejects.toMatchObject(TOO_LARGE);
    // The liquidation's put, the position's.
    await expect(
      s.liquidations.replaceWithPosition(grown, 0, { ...position, version: 5 }, 4),
    ).rejects.toMatchObject(cancelled(['ValidationError', 'None'], LIQUIDATION_TOO_LARGE));
    await expect(
      s.transactor.commit([{ kind: 'liquidation', record: grown, expectedVersion: 0 }]),
    ).rejects.toMatchObject(cancelled(['ValidationError'], LIQUIDATION_TOO_LARGE));
    // After a position's write, with the providers' epoch checked: its index among the items.
    await expect(
      s.transactor.commit(
        [
          { kind: 'position', record: { ...position, version: 5 }, expectedVersion: 4 },
          { kind: 'liquidation', record: grown, expectedVersion: 0 },
        ],
        { symbol: 'ETH-USD', epoch: 0 },
      ),
    ).rejects.toMatchObject(cancelled(['None', 'ValidationError', 'None'], LIQUIDATION_TOO_LARGE));
    expect(await s.liquidations.get('p1:3')).toBe(before);
    expect((await s.positions.get('p1'))?.version).toBe(4);
  });

  it('refuses a new liquidation past the limit: the position stays OPEN, no liquidation is listed', async () => {
    const s = stores();
    await s.positions.create(position);
    const huge = liquidation({ history: history(4_000, 100) });
    // The position's update, the liquidation's put, its tick-index item.
    await expect(s.liquidations.begin(position, huge)).rejects.toMatchObject(
      cancelled(['None', 'ValidationError', 'None'], LIQUIDATION_TOO_LARGE),
    );
    expect(await s.positions.get('p1')).toMatchObject({ state: 'OPEN', version: 3 });
    expect(await s.liquidations.get('p1:3')).toBeUndefined();
    expect(await s.liquidations.listByTick('ETH-USD#7')).toEqual([]);
  });

  it('refuses a commit whose auction is past the limit: nothing of it is written, the position included', async () => {
    const s = stores();
    await s.positions.create(position);
    await s.auctions.create(auction());
    const fills = Array.from({ length: 6_000 }, (_, i) => ({
      price: price('190'),
      size: BigInt(i + 1),
      providerId: `provider-${'p'.repeat(60)}-${i}`,
    }));
    const grown = auction({ fills, version: 1 });
    expect(itemBytes(auctionItem(grown))).toBeGreaterThan(MAX_ITEM_BYTES);
    await expect(
      s.transactor.commit([
        { kind: 'position', record: { ...position, state: 'CLOSED', version: 4 }, expectedVersion: 3 },
        { kind: 'auction', record: grown, expectedVersion: 0 },
      ]),
    ).rejects.toMatchObject(
      cancelled(
        ['None', 'ValidationError'],
        /^Item size has exceeded the maximum allowed size \(auctions a1: /,
      ),
    );
    // A put alone: DynamoDB's ValidationException.
    await expect(s.auctions.replace(grown, 0)).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringMatching(/^Item size has exceeded the maximum allowed size \(auctions a1: /),
    });
    expect(await s.positions.get('p1')).toMatchObject({ state: 'OPEN', version: 3 });
    expect(await s.auctions.get('a1')).toMatchObject({ version: 0, fills: [] });
  });

  it('measures as DynamoDB does: an item of exactly 400 KB is taken, one byte more is refused', async () => {
    // A replace is a put alone: its item carries its writer's token. Notes of 100 ASCII characters: the bound (3 bytes a character) is over the limit, the item is measured.
    const base = liquidation({ history: history(2_500, 100), version: 1 });
    const last = base.history.at(-1)!;
    const fitting = {
      ...base,
      history: [
        ...base.history.slice(0, -1),
        { ...last, note: last.note + 'y'.repeat(MAX_ITEM_BYTES - aloneBytes(base)) },
      ],
    };
    expect(aloneBytes(fitting)).toBe(MAX_ITEM_BYTES);
    expect(liquidationItemBytesAtMost(fitting)).toBeGreaterThan(MAX_ITEM_BYTES);
    const over = {
      ...fitting,
      history: [...fitting.history.slice(0, -1), { ...last, note: `${fitting.history.at(-1)!.note}z` }],
    };
    expect(aloneBytes(over)).toBe(MAX_ITEM_BYTES + 1);

    const s = stores();
    await s.positions.create(position);
    await s.liquidations.begin(position, liquidation());
    await expect(s.liquidations.replace(over, 0)).rejects.toMatchObject(TOO_LARGE);
    await s.liquidations.replace(fitting, 0);
    expect((await s.liquidations.get('p1:3'))?.history).toHaveLength(2_500);
  });

  it("counts a put alone's writer token (put-lost-answer): a liquidation that fits only without it is refused alone, taken in a transaction", async () => {
    const base = liquidation({ history: history(2_500, 100), version: 1 });
    const last = base.history.at(-1)!;
    const fitting = {
      ...base,
      history: [
        ...base.history.slice(0, -1),
        { ...last, note: last.note + 'y'.repeat(MAX_ITEM_BYTES - exactBytes(base)) },
      ],
    };
    expect(exactBytes(fitting)).toBe(MAX_ITEM_BYTES);
    expect(aloneBytes(fitting)).toBeGreaterThan(MAX_ITEM_BYTES);
    const s = stores();
    await s.positions.create(position);
    await s.liquidations.begin(position, liquidation());
    // The AWS adapter's replace puts it with a token (a UUID): DynamoDB refuses it.
    await expect(s.liquidations.replace(fitting, 0)).rejects.toMatchObject(TOO_LARGE);
    // A transaction's put carries none.
    await s.liquidations.replaceWithPosition(fitting, 0, { ...position, version: 5 }, 4);
    expect((await s.liquidations.get('p1:3'))?.version).toBe(1);
  });
});

describe("a hold's start is measured (embedded-dispute-size, session 42)", () => {
  it('refuses the hold of a liquidation of exactly 400 KB: the record stays as it was, with no hold', async () => {
    const base = liquidation({ history: history(2_500, 100), version: 1 });
    const last = base.history.at(-1)!;
    const fitting = {
      ...base,
      history: [
        ...base.history.slice(0, -1),
        { ...last, note: last.note + 'y'.repeat(MAX_ITEM_BYTES - aloneBytes(base)) },
      ],
    };
    expect(aloneBytes(fitting)).toBe(MAX_ITEM_BYTES);
    const s = stores();
    await s.positions.create(position);
    await s.liquidations.begin(position, liquidation());
    await s.liquidations.replace(fitting, 0);
    const before = await s.liquidations.get('p1:3');
    await expect(s.liquidations.recordMarkDispute('p1:3', 1_700_000_000_000)).rejects.toMatchObject(
      TOO_LARGE_TO_UPDATE('liquidations p1:3'),
    );
    expect(await s.liquidations.get('p1:3')).toBe(before);
    expect(before?.markDisputedSinceMs).toBeUndefined();
    // A failure recorded on it is an UpdateItem too (recordFailure).
    await expect(s.liquidations.recordFailure('p1:3', FAILURE)).rejects.toMatchObject(
      TOO_LARGE_TO_UPDATE('liquidations p1:3'),
    );
    expect(await s.liquidations.get('p1:3')).toBe(before);
  });

  /** Stores with auction a1 of exactly 400 KB, as a put alone (with its writer's token) stored it. */
  async function auctionAtTheBound() {
    const fills = Array.from({ length: 5_000 }, (_, i) => ({
      price: price('190'),
      size: BigInt(i + 1),
      providerId: `provider-${i}`,
    }));
    const base = auction({ fills, version: 1 });
    const last = fills.at(-1)!;
    const alone = (a: AuctionRecord) => itemBytes(withWriter(auctionItem(a), randomUUID()));
    const fitting = auction({
      fills: [
        ...fills.slice(0, -1),
        { ...last, providerId: last.providerId + 'y'.repeat(MAX_ITEM_BYTES - alone(base)) },
      ],
      version: 1,
    });
    expect(alone(fitting)).toBe(MAX_ITEM_BYTES);
    const s = stores();
    await s.auctions.create(auction());
    await s.auctions.replace(fitting, 0);
    return s;
  }

  it("refuses a failure recorded on an auction of exactly 400 KB in an UpdateItem's words", async () => {
    const s = await auctionAtTheBound();
    const before = await s.auctions.get('a1');
    await expect(s.auctions.recordFailure('a1', FAILURE)).rejects.toMatchObject(
      TOO_LARGE_TO_UPDATE('auctions a1'),
    );
    expect(await s.auctions.get('a1')).toBe(before);
  });

  it("refuses a resend's claim on an auction of exactly 400 KB in an UpdateItem's words (small44-claim-size)", async () => {
    const s = await auctionAtTheBound();
    const before = await s.auctions.get('a1');
    await expect(s.auctions.claimStepResend('a1', 0, 9_000, 0)).rejects.toMatchObject(
      TOO_LARGE_TO_UPDATE('auctions a1'),
    );
    expect(await s.auctions.get('a1')).toBe(before);
  });
});

describe('a new liquidation is measured as the AWS adapter writes it (review41-new-item-measured)', () => {
  it("takes a slice of exactly 400 KB spread from a held parent: the hold's start is not written with it", async () => {
    // A next slice spreads its parent, a hold's start included, which a new record's item leaves out
    // (newLiquidationItem; the embedded store drops it too): the bound measured it, so a slice DynamoDB takes
    // was refused.
    const base = liquidation({ history: history(2_500, 100) });
    const last = base.history.at(-1)!;
    const fitting = {
      ...base,
      history: [
        ...base.history.slice(0, -1),
        { ...last, note: last.note + 'y'.repeat(MAX_ITEM_BYTES - exactBytes(base)) },
      ],
    };
    expect(exactBytes(fitting)).toBe(MAX_ITEM_BYTES);
    const spread = { ...fitting, markDisputedSinceMs: 1_700_000_000_000 };
    expect(exactBytes(spread)).toBeGreaterThan(MAX_ITEM_BYTES);
    const s = stores();
    await s.positions.create(position);
    await s.liquidations.begin(position, spread);
    const stored = await s.liquidations.get('p1:3');
    expect(stored?.history).toHaveLength(2_500);
    expect(stored?.markDisputedSinceMs).toBeUndefined();
  });
});

// The stores build and measure an item only when its bound is over the limit: a bound below the exact size would
// let an oversized item through.
describe('the bounds of a record are never below its item as DynamoDB counts it', () => {
  // Long strings, mostly ASCII (1 byte a character, the bound's 3): an attribute the bound leaves out shows.
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.string({ unit: 'grapheme-ascii', minLength: 200, maxLength: 2000 }),
  );
  const big = fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n });
  const fill = fc.record(
    { price: big, size: big, cost: big, providerId: text },
    { requiredKeys: ['price', 'size'] },
  );
  const failure = fc.record({
    reason: fc.string({ unit: 'binary', minLength: 1, maxLength: 1000 }),
    attempt: fc.nat(),
    atMs: fc.nat(),
  });
  // Any plain data, bigints and awkward strings (a tag's look-alike "42n", a leading backslash) included.
  const { tree } = fc.letrec((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small' },
      text,
      big,
      fc.constantFrom('42n', '\\x', '\u0000\u2028', '"'),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('tree'), { maxLength: 4 }),
      fc.dictionary(text, tie('tree'), { maxKeys: 4 }),
    ),
  }));
  const context = fc
    .record({ plannedSize: big, executionMark: big, auctionId: text, settle: tree })
    .map((c) => c as unknown as LiquidationContext);

  it('a liquidation', () => {
    const record = fc.record(
      {
        id: text,
        positionId: text,
        symbol: text,
        side: fc.constantFrom('LONG' as const, 'SHORT' as const),
        state: fc.constantFrom(...LIQUIDATION_STATES),
        tickKey: text,
        triggerMark: big,
        remainingSize: big,
        marketFills: fc.array(fill, { maxLength: 5 }),
        settlement: fc.constant(undefined),
        history: fc.array(
          fc.record(
            { atMs: fc.nat(), state: fc.constantFrom(...LIQUIDATION_STATES), note: text },
            { requiredKeys: ['atMs', 'state'] },
          ),
          { maxLength: 5 },
        ),
        context,
        lastFailure: failure,
        markDisputedSinceMs: fc.nat(),
        version: fc.nat(),
      },
      {
        requiredKeys: [
          'id',
          'positionId',
          'symbol',
          'side',
          'state',
          'tickKey',
          'triggerMark',
          'remainingSize',
          'marketFills',
          'history',
          'version',
        ],
      },
    );
    fc.assert(
      fc.property(record, fc.boolean(), (r, settled) => {
        const l = (
          settled ? { ...r, settlement: liquidationItemSettlement(r.remainingSize) } : r
        ) as LiquidationRecord;
        expect(liquidationItemBytesAtMost(l)).toBeGreaterThanOrEqual(aloneBytes(l));
      }),
      // No shrinking: records of thousands of characters shrink for minutes.
      { numRuns: 500, endOnFailure: true },
    );
  });

  it('an auction', () => {
    const record = fc.record(
      {
        id: text,
        liquidationId: text,
        symbol: text,
        direction: fc.constantFrom('BUY' as const, 'SELL' as const),
        lot: big,
        remainingLot: big,
        top: big,
        startedAtMs: fc.nat(),
        resets: fc.nat(),
        step: fc.nat(),
        state: fc.constantFrom('RUNNING' as const, 'CLEARED' as const, 'EXHAUSTED' as const),
        fills: fc.array(
          fill.map((f) => ({ ...f, providerId: f.providerId ?? 'lp' })),
          { maxLength: 5 },
        ),
        lastFailure: failure,
        wakeMark: big,
        endedBy: fc.constantFrom('wake' as const, 'plan' as const),
        endedAtMark: big,
        stepDueAtMs: fc.nat(),
        // The resend claim, with its claimer's token or (an earlier version's) without (claim45-own-token).
        stepResent: fc.record(
          { step: fc.nat(), atMs: fc.nat(), claimer: text },
          { requiredKeys: ['step', 'atMs'] },
        ),
        spentIn: fc.array(text, { maxLength: 4 }),
        spentWokenTo: fc.record({
          symbol: text,
          direction: fc.constantFrom('BUY' as const, 'SELL' as const),
          id: text,
          step: fc.nat(),
          wakeMark: big,
        }),
        spentWakeBegan: fc.dictionary(text, fc.nat(), { maxKeys: 4 }),
        spentWakeSendFailed: fc.constant(true as const),
        runFrom: fc.nat(),
        version: fc.nat(),
      },
      {
        requiredKeys: [
          'id',
          'liquidationId',
          'symbol',
          'direction',
          'lot',
          'remainingLot',
          'top',
          'startedAtMs',
          'resets',
          'step',
          'state',
          'fills',
          'version',
        ],
      },
    );
    fc.assert(
      fc.property(record, (a) => {
        expect(auctionItemBytesAtMost(a)).toBeGreaterThanOrEqual(
          itemBytes(withWriter(auctionItem(a), randomUUID())),
        );
      }),
      // No shrinking: records of thousands of characters shrink for minutes.
      { numRuns: 500, endOnFailure: true },
    );
  });
});

/** A settlement whose every amount is `amount`. */
const liquidationItemSettlement = (amount: bigint): SettlementAmounts =>
  Object.fromEntries(Object.keys(SETTLEMENT_UNITS).map((k) => [k, amount])) as unknown as SettlementAmounts;

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EmbeddedInputError } from '../../shared/adapters/embedded/internal.ts';
import { EmbeddedPositionRepository } from '../../shared/adapters/embedded/positions.ts';
import { adlLeverageKey } from '../../shared/domain/adl-threshold.ts';
import type { PositionState, Side } from '../../shared/domain/model.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import {
  ConditionFailedError,
  type PositionRecord,
  type PositionRepository,
} from '../../shared/ports/index.ts';

const position = (
  id: string,
  side: Side,
  liquidationPrice: bigint,
  more: Partial<PositionRecord> = {},
): PositionRecord => ({
  id,
  traderId: `t-${id}`,
  symbol: 'ETH-USD',
  side,
  size: base('1'),
  entryPrice: price('200'),
  collateral: usd('20'),
  state: 'OPEN',
  version: 0,
  liquidationPrice,
  ...more,
});

/** Every page of a crossing query, concatenated. */
async function allPages(
  repo: PositionRepository,
  symbol: string,
  side: Side,
  mark: bigint,
  limit: number,
): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await repo.queryCrossed(symbol, side, mark, limit, cursor);
    expect(page.positions.length).toBeLessThanOrEqual(limit);
    ids.push(...page.positions.map((p) => p.id));
    cursor = page.cursor;
    pages += 1;
  } while (cursor !== undefined);
  return { ids, pages };
}

describe('embedded positions: conditional writes', () => {
  it('creates once; a second create of the id fails the condition', async () => {
    const repo = new EmbeddedPositionRepository();
    await repo.create(position('a', 'LONG', price('180')));
    await expect(repo.create(position('a', 'SHORT', price('220')))).rejects.toBeInstanceOf(
      ConditionFailedError,
    );
    expect((await repo.get('a'))?.side).toBe('LONG');
  });

  it('replace succeeds at the expected version and fails at any other', async () => {
    const repo = new EmbeddedPositionRepository();
    await repo.create(position('a', 'LONG', price('180')));
    await repo.replace(position('a', 'LONG', price('181'), { version: 1 }), 0);
    expect((await repo.get('a'))?.liquidationPrice).toBe(price('181'));
    await expect(repo.replace(position('a', 'LONG', price('182'), { version: 1 }), 0)).rejects.toBeInstanceOf(
      ConditionFailedError,
    );
    await expect(repo.replace(position('b', 'LONG', price('182'), { version: 1 }), 0)).rejects.toBeInstanceOf(
      ConditionFailedError,
    );
  });

  it.each([
    { name: 'same version', version: 0 },
    { name: 'skipping a version', version: 2 },
  ])('replace refuses a next record with $name', async ({ version }) => {
    const repo = new EmbeddedPositionRepository();
    await repo.create(position('a', 'LONG', price('180')));
    await expect(repo.replace(position('a', 'LONG', price('181'), { version }), 0)).rejects.toThrow(
      /positions\/bad-version/,
    );
  });

  it('stores copies: mutating the input or the read record cannot change stored state', async () => {
    const repo = new EmbeddedPositionRepository();
    const input = { ...position('a', 'LONG', price('180')) } as {
      -readonly [K in keyof PositionRecord]: PositionRecord[K];
    };
    await repo.create(input);
    input.size = base('99');
    const read = (await repo.get('a'))!;
    expect(read.size).toBe(base('1'));
    expect(() => {
      (read as { size: bigint }).size = 5n;
    }).toThrow(TypeError);
    expect((await repo.get('a'))?.size).toBe(base('1'));
  });
});

describe('embedded positions: crossing index', () => {
  const longs = [
    position('l1', 'LONG', price('150')),
    position('l2', 'LONG', price('190')),
    position('l3', 'LONG', price('170')),
    position('l4', 'LONG', price('190')),
    position('l5', 'LONG', price('120')),
  ];
  const shorts = [
    position('s1', 'SHORT', price('230')),
    position('s2', 'SHORT', price('210')),
    position('s3', 'SHORT', price('260')),
  ];

  it.each([
    { name: 'longs, mark under two prices', side: 'LONG' as Side, mark: '180', ids: ['l2', 'l4'] },
    { name: 'longs, mark at a price', side: 'LONG' as Side, mark: '170', ids: ['l2', 'l4', 'l3'] },
    { name: 'longs, mark just over a price', side: 'LONG' as Side, mark: '170.00000001', ids: ['l2', 'l4'] },
    { name: 'longs, no cross', side: 'LONG' as Side, mark: '195', ids: [] },
    { name: 'shorts, mark at a price', side: 'SHORT' as Side, mark: '230', ids: ['s2', 's1'] },
    { name: 'shorts, mark just under a price', side: 'SHORT' as Side, mark: '229.99999999', ids: ['s2'] },
    { name: 'shorts, no cross', side: 'SHORT' as Side, mark: '200', ids: [] },
  ])('$name: most endangered first', async ({ side, mark, ids }) => {
    const repo = new EmbeddedPositionRepository();
    repo.createMany([...longs, ...shorts]);
    const page = await repo.queryCrossed('ETH-USD', side, price(mark), 10);
    expect(page.positions.map((p) => p.id)).toEqual(ids);
    expect(page.cursor).toBeUndefined();
  });

  it('keeps markets apart', async () => {
    const repo = new EmbeddedPositionRepository();
    repo.createMany([...longs, position('b1', 'LONG', price('190'), { symbol: 'BTC-USD' })]);
    const page = await repo.queryCrossed('BTC-USD', 'LONG', price('100'), 10);
    expect(page.positions.map((p) => p.id)).toEqual(['b1']);
  });

  it('pages with a cursor, which is present only while more positions cross', async () => {
    const repo = new EmbeddedPositionRepository();
    repo.createMany(longs);
    const first = await repo.queryCrossed('ETH-USD', 'LONG', price('100'), 2);
    expect(first.positions.map((p) => p.id)).toEqual(['l2', 'l4']);
    expect(first.cursor).toBeTypeOf('string');
    const second = await repo.queryCrossed('ETH-USD', 'LONG', price('100'), 2, first.cursor);
    expect(second.positions.map((p) => p.id)).toEqual(['l3', 'l1']);
    const third = await repo.queryCrossed('ETH-USD', 'LONG', price('100'), 2, second.cursor);
    expect(third.positions.map((p) => p.id)).toEqual(['l5']);
    expect(third.cursor).toBeUndefined();
    const exact = await repo.queryCrossed('ETH-USD', 'LONG', price('150'), 4);
    expect(exact.positions).toHaveLength(4);
    expect(exact.cursor).toBeUndefined();
  });

  it('a cursor stays valid when positions leave the index between pages', async () => {
    const repo = new EmbeddedPositionRepository();
    repo.createMany(longs);
    const first = await repo.queryCrossed('ETH-USD', 'LONG', price('100'), 2);
    const l4 = (await repo.get('l4'))!;
    await repo.replace({ ...l4, state: 'LIQUIDATING', version: 1 }, 0);
    const second = await repo.queryCrossed('ETH-USD', 'LONG', price('100'), 2, first.cursor);
    expect(second.positions.map((p) => p.id)).toEqual(['l3', 'l1']);
  });

  it('a position leaves the index when it leaves OPEN and re-enters with its new price', async () => {
    const repo = new EmbeddedPositionRepository();
    repo.createMany(longs);
    const l2 = (await repo.get('l2'))!;
    await repo.replace({ ...l2, state: 'LIQUIDATING', version: 1 }, 0);
    const crossed = async () =>
      (await repo.queryCrossed('ETH-USD', 'LONG', price('160'), 10)).positions.map((p) => p.id);
    expect(await crossed()).toEqual(['l4', 'l3']);
    await repo.replace({ ...l2, state: 'OPEN', version: 2, liquidationPrice: price('165') }, 1);
    expect(await crossed()).toEqual(['l4', 'l3', 'l2']);
    await repo.replace({ ...l2, state: 'CLOSED', version: 3, liquidationPrice: price('165') }, 2);
    expect(await crossed()).toEqual(['l4', 'l3']);
  });

  it('created non-OPEN positions stay out of the index (sparse, like the GSI)', async () => {
    const repo = new EmbeddedPositionRepository();
    await repo.create(position('x', 'LONG', price('190'), { state: 'LIQUIDATING' }));
    expect((await repo.queryCrossed('ETH-USD', 'LONG', price('100'), 10)).positions).toEqual([]);
    expect(repo.scanCrossed('ETH-USD', 'LONG', price('100'))).toEqual([]);
  });

  it('orders zero and negative liquidation prices (over-collateralized longs) exactly', async () => {
    const repo = new EmbeddedPositionRepository();
    repo.createMany([position('n', 'LONG', -5n), position('z', 'LONG', 0n), position('p', 'LONG', 1n)]);
    const page = await repo.queryCrossed('ETH-USD', 'LONG', -5n, 10);
    expect(page.positions.map((p) => p.id)).toEqual(['p', 'z', 'n']);
  });

  it('createMany is all-or-nothing on a duplicate id', async () => {
    const repo = new EmbeddedPositionRepository();
    await repo.create(position('l3', 'LONG', price('1')));
    expect(() => repo.createMany(longs)).toThrow(ConditionFailedError);
    expect(repo.count).toBe(1);
    expect(await repo.get('l1')).toBeUndefined();
    expect((await repo.queryCrossed('ETH-USD', 'LONG', price('100'), 10)).positions).toHaveLength(0);
    expect(() => repo.createMany([position('d', 'LONG', 1n), position('d', 'LONG', 2n)])).toThrow(
      ConditionFailedError,
    );
    expect(await repo.get('d')).toBeUndefined();
  });

  it.each([
    { name: 'zero limit', limit: 0, cursor: undefined, reason: /positions\/bad-limit/ },
    { name: 'fractional limit', limit: 1.5, cursor: undefined, reason: /positions\/bad-limit/ },
    { name: 'garbage cursor', limit: 1, cursor: 'not-a-cursor', reason: /positions\/bad-cursor/ },
  ])('refuses bad input: $name', async ({ limit, cursor, reason }) => {
    const repo = new EmbeddedPositionRepository();
    repo.createMany(longs);
    await expect(repo.queryCrossed('ETH-USD', 'LONG', price('100'), limit, cursor)).rejects.toThrow(reason);
  });

  it('refuses a cursor of another market side', async () => {
    const repo = new EmbeddedPositionRepository();
    repo.createMany([...longs, ...shorts]);
    const page = await repo.queryCrossed('ETH-USD', 'LONG', price('100'), 1);
    await expect(repo.queryCrossed('ETH-USD', 'SHORT', price('300'), 1, page.cursor)).rejects.toBeInstanceOf(
      EmbeddedInputError,
    );
  });
});

describe('embedded positions: the index agrees with a full scan', () => {
  const states: PositionState[] = ['OPEN', 'OPEN', 'OPEN', 'LIQUIDATING', 'CLOSED'];
  const arbRecord = fc.record({
    side: fc.constantFrom<Side>('LONG', 'SHORT'),
    symbol: fc.constantFrom('ETH-USD', 'BTC-USD'),
    // A narrow price range makes ties common, which is where ordering bugs live.
    liq: fc.bigInt({ min: -3n, max: 40n }),
    state: fc.constantFrom(...states),
  });
  const arbChange = fc.record({
    index: fc.nat(),
    state: fc.constantFrom(...states),
    liq: fc.bigInt({ min: -3n, max: 40n }),
  });

  it('every page concatenated equals the scan, for random books, changes, marks and limits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbRecord, { maxLength: 60 }),
        fc.array(arbChange, { maxLength: 20 }),
        fc.bigInt({ min: -4n, max: 41n }),
        fc.integer({ min: 1, max: 7 }),
        fc.boolean(),
        async (records, changes, mark, limit, bulk) => {
          const repo = new EmbeddedPositionRepository();
          const book = records.map((r, i) =>
            position(`p${i % 7}-${i}`, r.side, r.liq, { symbol: r.symbol, state: r.state }),
          );
          if (bulk) repo.createMany(book);
          else for (const p of book) await repo.create(p);
          for (const c of changes) {
            if (book.length === 0) break;
            const current = (await repo.get(book[c.index % book.length]!.id))!;
            await repo.replace(
              { ...current, state: c.state, liquidationPrice: c.liq, version: current.version + 1 },
              current.version,
            );
          }
          for (const symbol of ['ETH-USD', 'BTC-USD']) {
            for (const side of ['LONG', 'SHORT'] as const) {
              const { ids } = await allPages(repo, symbol, side, mark, limit);
              const scanned = repo.scanCrossed(symbol, side, mark);
              expect(ids).toEqual(scanned.map((p) => p.id));
              // The scan itself against the definition (set and order), independent of the index code.
              const expected = [...(await Promise.all(book.map((p) => repo.get(p.id))))]
                .filter((p): p is PositionRecord => p !== undefined)
                .filter((p) => p.state === 'OPEN' && p.symbol === symbol && p.side === side)
                .filter((p) => (side === 'LONG' ? p.liquidationPrice >= mark : p.liquidationPrice <= mark));
              expect(new Set(ids)).toEqual(new Set(expected.map((p) => p.id)));
              const prices = scanned.map((p) => p.liquidationPrice);
              for (let i = 1; i < prices.length; i += 1) {
                if (side === 'LONG') expect(prices[i]! <= prices[i - 1]!).toBe(true);
                else expect(prices[i]! >= prices[i - 1]!).toBe(true);
              }
            }
          }
        },
      ),
      { numRuns: 250 },
    );
  });

  it('holds across chunk splits (thousands of entries, inserted one by one and in bulk)', async () => {
    const repo = new EmbeddedPositionRepository();
    const book = Array.from({ length: 5000 }, (_, i) =>
      position(`q${i}`, i % 3 === 0 ? 'SHORT' : 'LONG', BigInt((i * 7919) % 997), {
        entryPrice: price(String(150 + ((i * 31) % 101))),
        collateral: usd(String(5 + ((i * 17) % 89))),
      }),
    );
    repo.createMany(book.slice(0, 2500));
    for (const p of book.slice(2500)) await repo.create(p);
    for (let i = 0; i < 5000; i += 5) {
      const current = (await repo.get(`q${i}`))!;
      await repo.replace({ ...current, state: 'CLOSED', version: 1 }, 0);
    }
    for (const side of ['LONG', 'SHORT'] as const) {
      const { ids, pages } = await allPages(repo, 'ETH-USD', side, 500n, 333);
      expect(ids).toEqual(repo.scanCrossed('ETH-USD', side, 500n).map((p) => p.id));
      expect(pages).toBeGreaterThan(1);
      // ADL's two orders of the whole side, page after page across chunks, against a sort of the OPEN ones.
      const open = (await Promise.all(book.map((b) => repo.get(b.id)))).filter((x) => x!.state === 'OPEN');
      const ofSide = open.filter((x) => x!.side === side) as PositionRecord[];
      const byKey = (key: (x: PositionRecord) => bigint) =>
        [...ofSide]
          .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.id < b.id ? -1 : 1))
          .map((x) => x.id);
      const want = {
        entry: byKey((x) => (side === 'LONG' ? x.entryPrice : -x.entryPrice)),
        leverage: byKey((x) => -adlLeverageKey(x.size, x.collateral)),
      };
      for (const order of ['entry', 'leverage'] as const) {
        for (const limit of [1, 333, 1000, 5000]) {
          const seen: string[] = [];
          let cursor: string | undefined;
          do {
            const page = await repo.queryAdlOrder('ETH-USD', side, order, limit, cursor);
            expect(page.positions.length).toBeLessThanOrEqual(limit);
            seen.push(...page.positions.map((x) => x.id));
            cursor = page.cursor;
          } while (cursor !== undefined);
          expect(seen).toEqual(want[order]);
        }
      }
    }
  });
});

describe("ADL's orders, kept lazily", () => {
  it('skips positions that left OPEN, rebuilds once they outnumber the rest, and pages the same throughout', async () => {
    const repo = new EmbeddedPositionRepository();
    const book = Array.from({ length: 3000 }, (_, i) =>
      position(`z${i}`, 'SHORT', price('300'), {
        entryPrice: price(String(150 + ((i * 31) % 101))),
        collateral: usd(String(5 + ((i * 17) % 89))),
      }),
    );
    repo.createMany(book);
    const pages = async (order: 'entry' | 'leverage', limit: number) => {
      const ids: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await repo.queryAdlOrder('ETH-USD', 'SHORT', order, limit, cursor);
        ids.push(...page.positions.map((p) => p.id));
        expect(page.positions.every((p) => p.state === 'OPEN')).toBe(true);
        cursor = page.cursor;
      } while (cursor !== undefined);
      return ids;
    };
    const want = async (order: 'entry' | 'leverage') => {
      const open = (await Promise.all(book.map((b) => repo.get(b.id)))).filter((p) => p!.state === 'OPEN');
      const key = (p: PositionRecord) =>
        order === 'entry' ? -p.entryPrice : -adlLeverageKey(p.size, p.collateral);
      return (open as PositionRecord[])
        .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.id < b.id ? -1 : 1))
        .map((p) => p.id);
    };
    // Close in steps past the rebuild point (stale entries above 1,000 and above the live ones), reopening some.
    for (const upTo of [500, 1600, 2900]) {
      for (let i = 0; i < upTo; i++) {
        const p = (await repo.get(`z${i}`))!;
        if (p.state === 'OPEN')
          await repo.replace({ ...p, state: 'LIQUIDATING', version: p.version + 1 }, p.version);
      }
      const back = (await repo.get('z3'))!;
      if (back.state !== 'OPEN')
        await repo.replace({ ...back, state: 'OPEN', version: back.version + 1 }, back.version);
      for (const order of ['entry', 'leverage'] as const) {
        for (const limit of [7, 1000]) expect(await pages(order, limit)).toEqual(await want(order));
      }
    }
  });
});

// Found by an ADL review in session 25: createMany entered the liquidation-price index only, so a side's ADL
// orders, once read, never held positions seeded after.
describe('ADL orders after createMany', () => {
  const adlShort = (id: string): PositionRecord => ({
    id,
    traderId: `t-${id}`,
    symbol: 'ETH-USD',
    side: 'SHORT',
    size: base('1'),
    entryPrice: price('200'),
    collateral: usd('20'),
    state: 'OPEN',
    version: 0,
    liquidationPrice: price('214'),
  });

  it('holds positions bulk-created after the order was first read', async () => {
    const repo = new EmbeddedPositionRepository();
    await repo.create(adlShort('a'));
    expect((await repo.queryAdlOrder('ETH-USD', 'SHORT', 'entry', 10)).positions.map((p) => p.id)).toEqual([
      'a',
    ]);
    repo.createMany([adlShort('b')]);
    // The liquidation-price index has it...
    expect(
      (await repo.queryCrossed('ETH-USD', 'SHORT', price('300'), 10)).positions.map((p) => p.id),
    ).toEqual(['a', 'b']);
    // ...ADL's orders must too.
    expect((await repo.queryAdlOrder('ETH-USD', 'SHORT', 'entry', 10)).positions.map((p) => p.id)).toEqual([
      'a',
      'b',
    ]);
    expect((await repo.queryAdlOrder('ETH-USD', 'SHORT', 'leverage', 10)).positions.map((p) => p.id)).toEqual(
      ['a', 'b'],
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LiquidationContext } from '../../shared/ports/index.ts';
import { contextFromText, encodeContext, parseContext } from '../../shared/schemas/context.ts';

/** The liquidation context survives its JSON form exactly: bigints stay bigints, every string stays itself. */

const roundTrip = (context: LiquidationContext): LiquidationContext => parseContext(encodeContext(context));

const big = fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n });
// Strings that look like the bigint tag or start with the escape, among any others.
const text = fc.oneof(
  fc.string(),
  big.map((n) => `${n}n`),
  fc.string().map((s) => `\\${s}`),
  fc.constantFrom('42n', '-7n', '\\42n', '\\\\', '\\', 'n', '-n', '0n'),
);

const context = fc.record({
  plannedSize: big,
  executionMark: big,
  auctionId: text,
  nextLiquidationId: text,
  settle: fc.record({
    insurance: fc.record({ balance: big, windowStartMs: fc.nat(), windowDrawn: big }),
    nowMs: fc.nat(),
    mark: big,
    position: fc.record({ size: big, collateral: big, entryPrice: big, version: fc.nat() }),
    candidates: fc.array(
      fc.record({
        id: text,
        side: fc.constantFrom('LONG' as const, 'SHORT' as const),
        size: big,
        entryPrice: big,
        collateral: big,
        version: fc.nat(),
      }),
      { maxLength: 5 },
    ),
    auctionFills: fc.array(fc.record({ price: big, size: big }), { maxLength: 3 }),
  }),
});

/** The encoding as JSON.stringify writes it with a replacer: the reference for the written-out encoder. */
const BIGINT_TAG = /^-?\d+n$/;
const reference = (c: LiquidationContext): string =>
  JSON.stringify(c, (_key, value: unknown) => {
    if (typeof value === 'bigint') return `${value}n`;
    if (typeof value === 'string' && (BIGINT_TAG.test(value) || value.startsWith('\\'))) return `\\${value}`;
    return value;
  });

describe('liquidation context encoding', () => {
  it('writes the text JSON.stringify writes with the tagging replacer (undefined fields left out)', () => {
    const withHoles = context.map((c) => ({ ...c, limitPrice: undefined, lastResortAttempt: 2 }));
    fc.assert(
      fc.property(fc.oneof(context, withHoles), (c) => {
        expect(encodeContext(c)).toBe(reference(c));
      }),
    );
  });

  it('round-trips any context, ids that read like a bigint tag included', () => {
    fc.assert(
      fc.property(context, (c) => {
        expect(roundTrip(c)).toEqual(c);
      }),
    );
  });

  it('keeps a position id "42n" a string and 42n a bigint', () => {
    const c: LiquidationContext = {
      plannedSize: 42n,
      executionMark: 1n,
      nextLiquidationId: '42n',
      auctionId: '\\42n',
    };
    const decoded = roundTrip(c)!;
    expect(decoded.plannedSize).toBe(42n);
    expect(decoded.nextLiquidationId).toBe('42n');
    expect(decoded.auctionId).toBe('\\42n');
  });

  it('serves a context it encoded or parsed lately without parsing it again, and parses any other', () => {
    const c: LiquidationContext = { plannedSize: 5n, executionMark: 7n, auctionId: 'a-1' };
    const text = encodeContext(c);
    const served = contextFromText(text);
    expect(served).toEqual(c);
    expect(contextFromText(text)).toBe(served);
    const other = '{"plannedSize":"6n","executionMark":"8n","auctionId":"a-2"}';
    const parsed = contextFromText(other);
    expect(parsed).toEqual({ plannedSize: 6n, executionMark: 8n, auctionId: 'a-2' });
    expect(contextFromText(other)).toBe(parsed);
  });

  // Found by the adapter parity review, session 27: the cache served the caller's own object (and one object to
  // every reader), so changing it after the write, or changing what a read returned, changed later reads.
  it("serves a frozen copy: neither the caller's object nor a reader can change what the next read gets", () => {
    const settle = { nowMs: 1, mark: 7n, auctionFills: [{ price: 7n, size: 1n }] };
    const c = {
      plannedSize: 5n,
      executionMark: 7n,
      auctionId: 'a-3',
      settle,
    } as unknown as LiquidationContext;
    const text = encodeContext(c);
    const served = contextFromText(text);
    expect(served).not.toBe(c);
    expect(Object.isFrozen(c)).toBe(false);
    (c as { plannedSize: bigint }).plannedSize = 9n;
    settle.auctionFills[0]!.size = 9n;
    expect(contextFromText(text)).toEqual({
      ...c,
      plannedSize: 5n,
      settle: { ...settle, auctionFills: [{ price: 7n, size: 1n }] },
    });
    expect(Object.isFrozen(served.settle?.auctionFills[0])).toBe(true);
    expect(() => {
      (served as { plannedSize: bigint }).plannedSize = 9n;
    }).toThrow(TypeError);
    const parsed = contextFromText('{"plannedSize":"6n","executionMark":"8n","settle":{"auctionFills":[]}}');
    expect(Object.isFrozen(parsed.settle?.auctionFills)).toBe(true);
    // A context built by spreading one read shares its frozen parts instead of copying them again.
    const next = contextFromText(encodeContext({ ...served, plannedSize: 4n }));
    expect(next.settle).toBe(served.settle);
  });
});

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
    expect(contextFromText(text)).toBe(c);
    const other = '{"plannedSize":"6n","executionMark":"8n","auctionId":"a-2"}';
    const parsed = contextFromText(other);
    expect(parsed).toEqual({ plannedSize: 6n, executionMark: 8n, auctionId: 'a-2' });
    expect(contextFromText(other)).toBe(parsed);
  });
});

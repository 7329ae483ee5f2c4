import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG, marketConfig } from '../../shared/domain/config.ts';
import {
  evaluateTick,
  markIsStale,
  nextBandAnchor,
  rebasedTickState,
  type Tick,
  type TickRecord,
  type TickState,
  type TickVerdict,
  toTickRecord,
  withinBand,
} from '../../shared/domain/tick.ts';
import { formatPrice, parsePrice, price } from '../../shared/domain/units.ts';
import { parseTickDetail } from '../../shared/schemas/tick.ts';

const ETH = marketConfig(DEFAULT_RISK_CONFIG, 'ETH-USD');
const T0 = Date.UTC(2020, 2, 12, 21, 54);

const detail = (patch: Record<string, unknown> = {}): Record<string, unknown> => ({
  symbol: 'ETH-USD',
  markPrice: '1520.5',
  indexPrice: '1520.4',
  timestamp: '2020-03-12T21:54:00Z',
  sequence: 7,
  source: 'binance-perp',
  ...patch,
});

describe('parseTickDetail: well-formed details', () => {
  it('parses prices exactly and an ISO timestamp to epoch ms', () => {
    expect(parseTickDetail(detail())).toEqual({
      ok: true,
      tick: {
        symbol: 'ETH-USD',
        markPrice: 152_050_000_000n,
        indexPrice: 152_040_000_000n,
        timestampMs: T0,
        sequence: 7,
        source: 'binance-perp',
      },
      segment: 0,
    });
  });

  it('a continuation carries its segment (>= 1), or none when put before segments; the tick event never', () => {
    const parsed = parseTickDetail(detail({ segment: 3 }), true);
    expect(parsed.ok && parsed.segment).toBe(3);
    expect(parseTickDetail(detail(), true)).toMatchObject({ ok: true, segment: 'unknown' });
    expect(parseTickDetail(detail({ segment: 0 }), true)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('segment'),
    });
    expect(parseTickDetail(detail({ segment: 1.5 }), true)).toMatchObject({ ok: false });
    // A continuation from another margin-check version (a rolling deploy) with a field this one does not know is
    // read, the field dropped; the feed's own tick refuses it (found by a review of upgrades, session 28).
    expect(parseTickDetail(detail({ segment: 2, cursorHint: 'x' }), true)).toMatchObject({
      ok: true,
      segment: 2,
    });
    expect(parseTickDetail(detail({ cursorHint: 'x' }))).toMatchObject({
      ok: false,
      reason: expect.stringContaining('cursorHint'),
    });
    expect(parseTickDetail(detail({ segment: 2 }))).toMatchObject({
      ok: false,
      reason: expect.stringContaining('segment'),
    });
  });

  it.each([
    ['epoch ms', { timestamp: T0 }, T0],
    ['ISO with an offset', { timestamp: '2020-03-12T22:54:00+01:00' }, T0],
    ['ISO with milliseconds', { timestamp: '2020-03-12T21:54:00.250Z' }, T0 + 250],
    ['epoch zero', { timestamp: 0 }, 0],
  ])('timestamp as %s', (_name, patch, ms) => {
    const parsed = parseTickDetail(detail(patch));
    expect(parsed.ok && parsed.tick.timestampMs).toBe(ms);
  });

  it('indexPrice is optional and stays absent', () => {
    const { indexPrice: _, ...rest } = detail();
    const parsed = parseTickDetail(rest);
    expect(parsed.ok).toBe(true);
    expect(parsed.ok && 'indexPrice' in parsed.tick).toBe(false);
  });

  it('accepts the smallest price and 8 decimals', () => {
    const parsed = parseTickDetail(detail({ markPrice: '0.00000001', indexPrice: '123.12345678' }));
    expect(parsed.ok && [parsed.tick.markPrice, parsed.tick.indexPrice]).toEqual([1n, 12_312_345_678n]);
  });
});

describe('parseTickDetail: malformed details', () => {
  const cases: [string, unknown, RegExp][] = [
    [
      'price as a JSON number',
      detail({ markPrice: 1520.5 }),
      /^tick\/malformed: markPrice: .*expected string/,
    ],
    ['NaN', detail({ markPrice: 'NaN' }), /markPrice: "NaN" is not a finite number/],
    ['Infinity', detail({ indexPrice: 'Infinity' }), /indexPrice: "Infinity" is not a finite number/],
    ['exponent', detail({ markPrice: '1e3' }), /markPrice: exponent notation/],
    ['negative', detail({ markPrice: '-1520.5' }), /markPrice: must not be negative/],
    ['zero', detail({ markPrice: '0' }), /markPrice: must be greater than zero/],
    ['too many decimals', detail({ markPrice: '1520.123456789' }), /markPrice: .*9 decimals, at most 8/],
    ['80+ digits', detail({ markPrice: '9'.repeat(85) }), /markPrice: Too big/],
    ['whitespace', detail({ markPrice: ' 1520.5' }), /markPrice: " 1520.5": surrounding whitespace/],
    ['plus sign', detail({ indexPrice: '+1520.5' }), /indexPrice: .*explicit "\+" sign/],
    ['empty price', detail({ markPrice: '' }), /markPrice: Too small/],
    ['comma', detail({ markPrice: '1,520.5' }), /markPrice: .*not a plain decimal/],
    ['null index', detail({ indexPrice: null }), /indexPrice: .*expected string/],
    [
      'missing markPrice',
      detail({ markPrice: undefined }),
      /markPrice: .*expected string, received undefined/,
    ],
    ['missing symbol', detail({ symbol: undefined }), /symbol: /],
    ['missing sequence', detail({ sequence: undefined }), /sequence: /],
    ['extra field', detail({ confidence: '0.01' }), /\(root\): Unrecognized key: "confidence"/],
    ['misspelt field', detail({ indexprice: '1' }), /Unrecognized key: "indexprice"/],
    ['negative sequence', detail({ sequence: -1 }), /sequence: Too small/],
    ['fractional sequence', detail({ sequence: 1.5 }), /sequence: .*expected int/],
    ['unsafe sequence', detail({ sequence: 2 ** 53 }), /sequence: /],
    ['sequence as string', detail({ sequence: '7' }), /sequence: .*expected number/],
    [
      'free-text timestamp',
      detail({ timestamp: 'March 12, 2020' }),
      /timestamp: .*not an ISO 8601 date-time/,
    ],
    ['ISO without zone', detail({ timestamp: '2020-03-12T21:54:00' }), /timestamp: .*not an ISO 8601/],
    ['impossible date', detail({ timestamp: '2020-02-30T21:54:00Z' }), /timestamp: .*not an ISO 8601/],
    ['negative epoch', detail({ timestamp: -1 }), /timestamp: epoch milliseconds must be an integer/],
    ['fractional epoch', detail({ timestamp: 1.5 }), /timestamp: epoch milliseconds/],
    [
      'boolean timestamp',
      detail({ timestamp: true }),
      /timestamp: expected an ISO 8601 string or epoch milliseconds/,
    ],
    ['empty symbol', detail({ symbol: '' }), /symbol: /],
    ['symbol with a slash', detail({ symbol: 'ETH/USD' }), /symbol: letters, digits/],
    ['empty source', detail({ source: '' }), /source: Too small/],
    ['null', null, /^tick\/malformed: \(root\): .*expected object/],
    ['array', [detail()], /\(root\): .*expected object, received array/],
    ['string', JSON.stringify(detail()), /\(root\): .*expected object/],
  ];

  it.each(cases)('%s', (_name, input, reason) => {
    const parsed = parseTickDetail(input);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reason).toMatch(reason);
    expect(!parsed.ok && parsed.reason).toMatch(/^tick\/malformed: /);
  });

  it('reports every problem', () => {
    const parsed = parseTickDetail(detail({ markPrice: '1e3', sequence: -1 }));
    expect(!parsed.ok && parsed.reason).toMatch(/markPrice: .*; sequence: /);
  });

  it('does not throw on a hostile object', () => {
    const hostile = {
      get symbol(): string {
        throw new Error('boom');
      },
    };
    const parsed = parseTickDetail(hostile);
    expect(parsed).toEqual({ ok: false, reason: expect.stringMatching(/^tick\/malformed: /) });
  });
});

describe('parseTickDetail: fuzzing', () => {
  /** Independent oracle for a price string: plain digits, at most 8 decimals, at most 32 chars, > 0. */
  // At most 30 digits once scaled (units.ts MAX_SCALED_DIGITS: DynamoDB numbers hold 38).
  const scaledDigitsOk = (v: string): boolean => {
    const [whole = '', fraction = ''] = v.split('.');
    return BigInt(whole + fraction.padEnd(8, '0')) < 10n ** 30n;
  };
  const priceOk = (v: unknown): boolean =>
    typeof v === 'string' &&
    v.length <= 32 &&
    /^\d+(\.\d{1,8})?$/.test(v) &&
    /[1-9]/.test(v) &&
    scaledDigitsOk(v);
  const symbolOk = (v: unknown): boolean =>
    typeof v === 'string' && v.length <= 32 && /^[A-Za-z0-9._-]+$/.test(v);
  const sourceOk = (v: unknown): boolean => typeof v === 'string' && v.length >= 1 && v.length <= 64;
  const sequenceOk = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

  const junk = fc.oneof(
    fc.jsonValue(),
    fc.constantFrom(null, true, Number.NaN, Number.POSITIVE_INFINITY, -0, 1e21, {}, []),
  );
  /** Mostly well-formed values, so that whole details are well-formed often enough. */
  const mostly = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<unknown>) =>
    fc.oneof({ arbitrary: good, weight: 6 }, { arbitrary: bad, weight: 1 });
  const priceValue = mostly(
    fc.bigInt({ min: 0n, max: 10n ** 24n }).map(formatPrice),
    fc.oneof(
      fc.bigInt({ min: 1n, max: 10n ** 12n }).map((v) => `${formatPrice(v)}${v % 10n}`), // maybe 9 decimals
      fc.bigInt({ min: 1n, max: 10n ** 12n }).map((v) => `-${formatPrice(v)}`),
      fc.constantFrom(
        'NaN',
        'Infinity',
        '-Infinity',
        '1e3',
        '1E-3',
        '0x1F',
        '1.',
        '.5',
        ' 1',
        '1 ',
        '+1',
        '',
        '0.000000000',
      ),
      fc.stringMatching(/^[1-9]\d{30,90}$/),
      fc.stringMatching(/^[0-9.eE+-]{1,12}$/),
      fc.double(),
      fc.string({ maxLength: 40 }),
    ),
  );
  const symbolValue = mostly(
    fc.constantFrom('ETH-USD', 'BTC-USD', 'x'),
    fc.oneof(fc.constantFrom('ETH/USD', '', 'a'.repeat(33)), fc.string({ maxLength: 40 }), junk),
  );
  const sourceValue = mostly(
    fc.string({ minLength: 1, maxLength: 64 }),
    fc.oneof(fc.constantFrom('', 's'.repeat(65)), fc.string({ maxLength: 70 }), junk),
  );
  const sequenceValue = mostly(
    fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
    fc.oneof(fc.constantFrom(-1, 1.5, 2 ** 53, Number.NaN, '3'), fc.integer(), junk),
  );
  /** Timestamps labelled with the epoch ms they stand for, or undefined when malformed. */
  const timestampValue: fc.Arbitrary<[unknown, number | undefined]> = fc.oneof(
    {
      arbitrary: fc.integer({ min: 0, max: 253_402_300_799_999 }).map((ms): [unknown, number] => [ms, ms]),
      weight: 3,
    },
    {
      arbitrary: fc
        .integer({ min: 0, max: 253_402_300_799_999 })
        .map((ms): [unknown, number] => [new Date(ms).toISOString(), ms]),
      weight: 3,
    },
    fc.constantFrom<[unknown, undefined]>(
      [-1, undefined],
      [1.5, undefined],
      [8.64e15 + 1, undefined],
      ['2020-13-01T00:00:00Z', undefined],
      ['2020-03-12 21:54:00Z', undefined],
      ['1584050040000', undefined],
      [null, undefined],
    ),
    // A string without a "T" cannot be an ISO 8601 date-time.
    fc
      .string({ maxLength: 30 })
      .filter((s) => !s.includes('T'))
      .map((s): [unknown, undefined] => [s, undefined]),
  );

  const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { freq: 8, nil: undefined });
  const arbDetail = fc.record({
    symbol: maybe(symbolValue),
    markPrice: maybe(priceValue),
    indexPrice: maybe(priceValue),
    timestamp: maybe(timestampValue),
    sequence: maybe(sequenceValue),
    source: maybe(sourceValue),
    // An extra (unknown) key in one detail out of six.
    extra: fc.oneof(
      { arbitrary: fc.constant(undefined), weight: 5 },
      { arbitrary: fc.tuple(fc.constantFrom('confidence', 'mark', 'symbol_', 'Symbol'), junk), weight: 1 },
    ),
  });

  it('never throws on arbitrary JSON and rejects it with a reason', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const parsed = parseTickDetail(value);
        expect(parsed.ok).toBe(false);
        expect(!parsed.ok && parsed.reason).toMatch(/^tick\/malformed: \S/);
      }),
      { numRuns: 300 },
    );
  });

  it('accepts exactly the well-formed details, with the exact values', () => {
    let accepted = 0;
    fc.assert(
      fc.property(arbDetail, (d) => {
        const input: Record<string, unknown> = {};
        if (d.symbol !== undefined) input.symbol = d.symbol;
        if (d.markPrice !== undefined) input.markPrice = d.markPrice;
        if (d.indexPrice !== undefined) input.indexPrice = d.indexPrice;
        if (d.timestamp !== undefined) input.timestamp = d.timestamp[0];
        if (d.sequence !== undefined) input.sequence = d.sequence;
        if (d.source !== undefined) input.source = d.source;
        if (d.extra !== undefined) input[d.extra[0]] = d.extra[1];

        const wellFormed =
          symbolOk(d.symbol) &&
          priceOk(d.markPrice) &&
          (d.indexPrice === undefined || priceOk(d.indexPrice)) &&
          d.timestamp?.[1] !== undefined &&
          sequenceOk(d.sequence) &&
          sourceOk(d.source) &&
          d.extra === undefined;

        const parsed = parseTickDetail(input);
        expect(parsed.ok).toBe(wellFormed);
        if (parsed.ok) {
          accepted++;
          expect(parsed.tick.markPrice).toBe(parsePrice(d.markPrice as string));
          expect(parsed.tick.indexPrice).toBe(
            d.indexPrice === undefined ? undefined : parsePrice(d.indexPrice as string),
          );
          expect(parsed.tick.timestampMs).toBe(d.timestamp?.[1]);
          expect(parsed.tick.sequence).toBe(d.sequence);
        } else {
          expect(parsed.reason).toMatch(/^tick\/malformed: \S/);
        }
      }),
      { numRuns: 500 },
    );
    // The generators must reach the accepting side too, or the property proves little.
    expect(accepted).toBeGreaterThan(25);
  });
});

// --- evaluateTick ---------------------------------------------------------------------------------------

const NOW = T0 + 10_000;
const LAST: TickRecord = { sequence: 10, markPrice: price('100'), timestampMs: T0 };
const TRIPPED: TickRecord = { sequence: 11, markPrice: price('323'), timestampMs: T0 + 1000 };
const OPEN: TickState = {
  lastTick: LAST,
  breaker: { reason: 'tick/price-band', trippedAtMs: NOW, tick: TRIPPED },
};

const tick = (patch: Partial<Tick> = {}): Tick => ({
  symbol: 'ETH-USD',
  markPrice: price('100'),
  timestampMs: T0 + 2000,
  sequence: 12,
  source: 'test',
  ...patch,
});

type Expected =
  | 'accept'
  | 'reverted'
  | 'persisted'
  | 'first-confirmed'
  | `${string}/${string}:trip`
  | `${string}/${string}`;

function summary(v: TickVerdict): Expected {
  if (v.verdict === 'accept') {
    if (!v.closeBreaker) return 'accept';
    if (v.reason === 'tick/first-confirmed') return 'first-confirmed';
    return v.reason === 'tick/breaker-reverted' ? 'reverted' : 'persisted';
  }
  return v.tripBreaker ? `${v.reason}:trip` : v.reason;
}

describe('evaluateTick: every reason at its boundary', () => {
  const s = (seconds: number) => seconds * 1000;
  const cases: [string, Tick, TickState, Expected, number?][] = [
    ['first tick of a market', tick({ markPrice: price('5000') }), {}, 'tick/unconfirmed:trip'],
    [
      'first tick confirmed within the band (15 %)',
      tick({ markPrice: price('115') }),
      { breaker: { reason: 'tick/unconfirmed', trippedAtMs: NOW, tick: LAST } },
      'first-confirmed',
    ],
    [
      'first tick not confirmed past the band: the new print waits instead',
      tick({ markPrice: price('115.01') }),
      { breaker: { reason: 'tick/unconfirmed', trippedAtMs: NOW, tick: LAST } },
      'tick/breaker-open:trip',
    ],
    [
      'a redelivered first tick never confirms itself',
      tick({ sequence: 10 }),
      { breaker: { reason: 'tick/unconfirmed', trippedAtMs: NOW, tick: LAST } },
      'tick/duplicate',
    ],
    ['unknown symbol', tick({ symbol: 'DOGE-USD' }), { lastTick: LAST }, 'tick/unknown-symbol'],
    ['zero mark', tick({ markPrice: 0n }), { lastTick: LAST }, 'tick/non-positive'],
    ['negative mark', tick({ markPrice: -1n }), { lastTick: LAST }, 'tick/non-positive'],
    ['zero index', tick({ indexPrice: 0n }), { lastTick: LAST }, 'tick/non-positive'],
    ['same sequence', tick({ sequence: 10 }), { lastTick: LAST }, 'tick/duplicate'],
    [
      'duplicate wins over too-old',
      tick({ sequence: 10, timestampMs: T0 }),
      { lastTick: LAST },
      'tick/duplicate',
      T0 + s(3600),
    ],
    ['older sequence', tick({ sequence: 9 }), { lastTick: LAST }, 'tick/out-of-order'],
    [
      'newer sequence, older timestamp',
      tick({ timestampMs: T0 - 1 }),
      { lastTick: LAST },
      'tick/out-of-order',
    ],
    ['newer sequence, same timestamp', tick({ timestampMs: T0 }), { lastTick: LAST }, 'accept'],
    ['future: at the skew limit', tick({ timestampMs: NOW + s(5) }), { lastTick: LAST }, 'accept'],
    ['future: one ms over', tick({ timestampMs: NOW + s(5) + 1 }), { lastTick: LAST }, 'tick/future'],
    ['too old: at the age limit', tick(), { lastTick: LAST }, 'accept', T0 + 2000 + s(60)],
    ['too old: one ms over', tick(), { lastTick: LAST }, 'tick/too-old', T0 + 2000 + s(60) + 1],
    // indexBand 10 %: index 100 allows marks in [90, 110].
    [
      'index band: at +10 %',
      tick({ markPrice: price('110'), indexPrice: price('100') }),
      { lastTick: { ...LAST, markPrice: price('110') } },
      'accept',
    ],
    [
      'index band: over +10 %',
      tick({ markPrice: price('110.00000001'), indexPrice: price('100') }),
      {},
      'tick/index-band',
    ],
    [
      'index band: at -10 %',
      tick({ markPrice: price('90'), indexPrice: price('100') }),
      { lastTick: { ...LAST, markPrice: price('90') } },
      'accept',
    ],
    [
      'index band: under -10 %',
      tick({ markPrice: price('89.99999999'), indexPrice: price('100') }),
      {},
      'tick/index-band',
    ],
    // priceBand 15 %: last 100 allows marks in [85, 115].
    ['price band: at +15 %', tick({ markPrice: price('115') }), { lastTick: LAST }, 'accept'],
    [
      'price band: over +15 %',
      tick({ markPrice: price('115.00000001') }),
      { lastTick: LAST },
      'tick/price-band:trip',
    ],
    ['price band: at -15 %', tick({ markPrice: price('85') }), { lastTick: LAST }, 'accept'],
    [
      'price band: under -15 %',
      tick({ markPrice: price('84.99999999') }),
      { lastTick: LAST },
      'tick/price-band:trip',
    ],
    // Breaker open: last accepted 100, tripped by 323 (seq 11).
    ['breaker: back within the band of the last mark', tick({ markPrice: price('115') }), OPEN, 'reverted'],
    [
      'breaker: within the band of the tripping tick, breakerConfirmSeconds (5 s) after it',
      tick({ markPrice: price('274.55'), timestampMs: TRIPPED.timestampMs + s(5) }),
      OPEN,
      'persisted',
      NOW + s(5),
    ],
    [
      'breaker: at the upper edge of the tripping band, 5 s after it',
      tick({ markPrice: price('371.45'), timestampMs: TRIPPED.timestampMs + s(5) }),
      OPEN,
      'persisted',
      NOW + s(5),
    ],
    [
      'breaker: stamped 5 s after the held print, but the breaker tripped here only 1 ms short of 5 s ago',
      tick({ markPrice: price('323'), timestampMs: TRIPPED.timestampMs + s(5) }),
      OPEN,
      'tick/breaker-confirming',
      NOW + s(5) - 1,
    ],
    [
      'breaker: stamped ahead (within the skew) counts only up to now',
      tick({ markPrice: price('323'), timestampMs: TRIPPED.timestampMs + s(8) }),
      { ...OPEN, breaker: { ...OPEN.breaker!, trippedAtMs: T0 } },
      'tick/breaker-confirming',
      TRIPPED.timestampMs + s(5) - 1,
    ],
    [
      'breaker: agreeing with the tripping tick 1 ms short of 5 s: held, the breaker left as it is',
      tick({ markPrice: price('323'), timestampMs: TRIPPED.timestampMs + s(5) - 1 }),
      OPEN,
      'tick/breaker-confirming',
    ],
    [
      'breaker: the same bad print again at its own timestamp (a burst) never confirms it',
      tick({ markPrice: price('323'), timestampMs: TRIPPED.timestampMs }),
      OPEN,
      'tick/breaker-confirming',
    ],
    [
      'breaker: a revert needs no wait',
      tick({ markPrice: price('100'), timestampMs: TRIPPED.timestampMs }),
      OPEN,
      'reverted',
    ],
    [
      'breaker: just outside both bands',
      tick({ markPrice: price('274.54999999') }),
      OPEN,
      'tick/breaker-open:trip',
    ],
    ['breaker: between the bands', tick({ markPrice: price('200') }), OPEN, 'tick/breaker-open:trip'],
    [
      'breaker: redelivered bad print',
      tick({ sequence: 11, markPrice: price('323') }),
      OPEN,
      'tick/duplicate',
    ],
    [
      'breaker: numbered before the bad print, stamped before the last tick',
      tick({ sequence: 10.5, timestampMs: T0 - 1 }),
      OPEN,
      'tick/out-of-order',
    ],
    // The feed's print after a bad one numbered ahead of it: it may revert the breaker, or re-arm it, not confirm it.
    ['breaker: numbered before the bad print, reverting', tick({ sequence: 10.5 }), OPEN, 'reverted'],
    [
      'breaker: numbered before the bad print, stamped before it (the bad stamp is no floor), reverting',
      tick({ sequence: 10.5, timestampMs: T0 + 500 }),
      OPEN,
      'reverted',
    ],
    [
      'breaker: numbered before the bad print, agreeing with neither mark: re-arms',
      tick({ sequence: 10.5, markPrice: price('200') }),
      OPEN,
      'tick/breaker-open:trip',
    ],
    [
      'breaker: numbered before the bad print, agreeing with it: re-arms, never confirms',
      tick({ sequence: 10.5, markPrice: price('323'), timestampMs: T0 + 9000 }),
      OPEN,
      'tick/breaker-open:trip',
    ],
    [
      'breaker: a bad index still rejects first',
      tick({ markPrice: price('115'), indexPrice: price('300') }),
      OPEN,
      'tick/index-band',
    ],
    [
      'breaker without a last tick: a first print confirmed',
      tick({ markPrice: price('300') }),
      { breaker: { reason: 'tick/price-band', trippedAtMs: NOW, tick: TRIPPED } },
      'first-confirmed',
    ],
  ];

  it.each(cases)('%s', (_name, t, state, expected, now = NOW) => {
    expect(summary(evaluateTick(t, state, ETH, now))).toBe(expected);
  });

  it('breakerConfirmSeconds 0 follows an agreeing print at once', () => {
    const atOnce = { ...ETH, breakerConfirmSeconds: 0 };
    const burst = tick({ markPrice: price('323'), timestampMs: TRIPPED.timestampMs });
    expect(summary(evaluateTick(burst, OPEN, atOnce, NOW))).toBe('persisted');
  });

  it('says why an agreeing print is held', () => {
    const v = evaluateTick(tick({ markPrice: price('320') }), OPEN, ETH, NOW + 1000);
    expect(v).toEqual({
      verdict: 'reject',
      reason: 'tick/breaker-confirming',
      tripBreaker: false,
      detail: 'mark 320 agrees with the held 323, held 1000 ms: the move is followed once it persists 5 s',
    });
  });

  it('rejects a tick for a market that is not configured', () => {
    expect(summary(evaluateTick(tick(), { lastTick: LAST }, undefined, NOW))).toBe('tick/unknown-symbol');
  });

  it('explains a rejection in human terms', () => {
    const v = evaluateTick(tick({ markPrice: price('120') }), { lastTick: LAST }, ETH, NOW);
    expect(v).toEqual({
      verdict: 'reject',
      reason: 'tick/price-band',
      tripBreaker: true,
      detail: 'mark 120 vs last 100',
    });
  });

  it('toTickRecord keeps what the market state needs', () => {
    expect(toTickRecord(tick({ indexPrice: price('99') }), NOW)).toEqual({
      sequence: 12,
      markPrice: price('100'),
      indexPrice: price('99'),
      timestampMs: T0 + 2000,
    });
    expect('indexPrice' in toTickRecord(tick(), NOW)).toBe(false);
  });

  it('toTickRecord records a tick stamped ahead of the clock at the clock (future-tick-blocks)', () => {
    // Accepted 4.9 s ahead (within the skew): the next print, correctly stamped a second later, is newer than it.
    const ahead = toTickRecord(tick({ timestampMs: NOW + 4_900 }), NOW);
    expect(ahead.timestampMs).toBe(NOW);
    expect(
      evaluateTick(tick({ sequence: 13, timestampMs: NOW + 1_000 }), { lastTick: ahead }, ETH, NOW + 1_000),
    ).toEqual({ verdict: 'accept', closeBreaker: false });
  });
});

describe('evaluateTick: properties', () => {
  it('withinBand is the exact |a - ref| <= band * ref', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 16n }),
        fc.bigInt({ min: 1n, max: 10n ** 16n }),
        fc.bigInt({ min: 0n, max: 1_000_000n }),
        (a, ref, band) => {
          const diff = a > ref ? a - ref : ref - a;
          // Compare as rationals: diff / ref <= band / 1e6.
          expect(withinBand(a, ref, band)).toBe(diff * 1_000_000n <= band * ref);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('with no breaker, a fresh in-order tick is accepted iff within the price band, else trips', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 14n }),
        fc.bigInt({ min: 1n, max: 10n ** 14n }),
        (last, mark) => {
          const v = evaluateTick(
            tick({ markPrice: mark }),
            { lastTick: { ...LAST, markPrice: last } },
            ETH,
            NOW,
          );
          const inBand = withinBand(mark, last, ETH.priceBand);
          expect(summary(v)).toBe(inBand ? 'accept' : 'tick/price-band:trip');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a print that tripped the breaker can never confirm itself', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 14n }), fc.nat({ max: 10 }), (mark, back) => {
        const bad: TickRecord = { sequence: 11, markPrice: mark, timestampMs: T0 + 1000 };
        const state: TickState = { lastTick: LAST, breaker: { reason: 'x', trippedAtMs: NOW, tick: bad } };
        const v = evaluateTick(tick({ sequence: 11 - back, markPrice: mark }), state, ETH, NOW);
        expect(v.verdict).toBe('reject');
      }),
      { numRuns: 200 },
    );
  });
});

// --- Real crash data --------------------------------------------------------------------------------------

describe('ETH-USDT perp, 12-13 March 2020, leg 2 (1-minute closes)', () => {
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const file = path.resolve(repoRoot, '..', 'shared', 'data', 'eth-usdt-perp-2020-03-12-leg2-1m.csv');

  it('waits for the second close, rejects the 323.00 print with tick/price-band, closes the breaker on the next close, and nothing else', () => {
    const rows = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(','));
    expect(rows).toHaveLength(287);

    // Each minute's close as an event detail (timestamp: the end of the minute), plus the 02:39 high after its close.
    const details: Record<string, unknown>[] = [];
    for (const [openMs, openUtc, , high, , close] of rows) {
      const timestamp = Number(openMs) + 60_000;
      details.push({
        symbol: 'ETH-USD',
        markPrice: close,
        timestamp,
        sequence: details.length,
        source: 'binance',
      });
      if (openUtc === '2020-03-13T02:39:00Z') {
        expect(high).toBe('323.00');
        details.push({
          symbol: 'ETH-USD',
          markPrice: high,
          timestamp,
          sequence: details.length,
          source: 'binance',
        });
      }
    }

    let state: TickState = {};
    const rejected: { sequence: number; mark: string; verdict: Expected }[] = [];
    const verdicts: Expected[] = [];
    for (const d of details) {
      const parsed = parseTickDetail(d);
      if (!parsed.ok) throw new Error(parsed.reason);
      const t = parsed.tick;
      // The event arrives a second after its timestamp.
      const verdict = evaluateTick(t, state, ETH, t.timestampMs + 1000);
      verdicts.push(summary(verdict));
      if (verdict.verdict === 'accept') {
        const lastTick = toTickRecord(t, t.timestampMs + 1000);
        state = verdict.closeBreaker || !state.breaker ? { lastTick } : { ...state, lastTick };
      } else {
        rejected.push({ sequence: t.sequence, mark: formatPrice(t.markPrice), verdict: summary(verdict) });
        if (verdict.tripBreaker) {
          state = {
            ...state,
            breaker: {
              reason: verdict.reason,
              trippedAtMs: t.timestampMs,
              tick: toTickRecord(t, t.timestampMs + 1000),
            },
          };
        }
      }
    }

    const badIndex = details.findIndex((d) => d.markPrice === '323.00');
    expect(rejected).toEqual([
      {
        sequence: 0,
        mark: formatPrice(price(String(details[0]?.markPrice))),
        verdict: 'tick/unconfirmed:trip',
      },
      { sequence: badIndex, mark: '323', verdict: 'tick/price-band:trip' },
    ]);
    expect(verdicts[1]).toBe('first-confirmed');
    // The next real close (02:40, 110.61) is within the band of the last accepted mark (117.44): the print was bad.
    expect(details[badIndex + 1]?.markPrice).toBe('110.61');
    expect(verdicts[badIndex + 1]).toBe('reverted');
    expect(verdicts.filter((v) => v === 'accept')).toHaveLength(details.length - 4);
    expect(state.breaker).toBeUndefined();
    expect(state.lastTick?.markPrice).toBe(price('110.61'));
  });
});

describe('markIsStale', () => {
  it('is fresh up to maxMarkAgeSeconds inclusive, stale a millisecond later, whatever the mark time', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4e12 }), fc.integer({ min: 61, max: 86_400 }), (atMs, maxAge) => {
        const market = { maxMarkAgeSeconds: maxAge };
        expect(markIsStale(atMs, atMs, market)).toBe(false);
        expect(markIsStale(atMs, atMs + maxAge * 1000, market)).toBe(false);
        expect(markIsStale(atMs, atMs + maxAge * 1000 + 1, market)).toBe(true);
        // A mark stamped ahead of the clock (skew within maxClockSkewSeconds) is fresh.
        expect(markIsStale(atMs + 5000, atMs, market)).toBe(false);
      }),
    );
  });
});

// --- window band ------------------------------------------------------------------------------------------

describe('evaluateTick: the band over a window of time (priceWindowSeconds)', () => {
  const WINDOWED = { ...ETH, priceWindowSeconds: 60 };
  const ANCHOR = { markPrice: price('100'), timestampMs: T0 };
  // A walk: 100 opened the window, 112 was accepted (within 15 % of both), the next print is 1 s later.
  const WALKED: TickState = {
    lastTick: { sequence: 11, markPrice: price('112'), timestampMs: T0 + 500 },
    bandAnchor: ANCHOR,
  };
  const at = (mark: string, timestampMs = T0 + 1000) => tick({ markPrice: price(mark), timestampMs });

  it.each([
    ['within the band of the last and of the window', '115', T0 + 1000, 'accept'],
    [
      'within the band of the last, 1 ms past the window band',
      '115.00000001',
      T0 + 1000,
      'tick/window-band:trip',
    ],
    [
      'a walk within the band of the last but 24 % from the window',
      '124',
      T0 + 1000,
      'tick/window-band:trip',
    ],
    ['the same print once the window has passed (60 s)', '124', T0 + 60_000, 'accept'],
    ['1 ms before the window has passed', '124', T0 + 59_999, 'tick/window-band:trip'],
  ] as const)('%s', (_name, mark, timestampMs, expected) => {
    expect(summary(evaluateTick(at(mark, timestampMs), WALKED, WINDOWED, T0 + 60_000))).toBe(expected);
  });

  it('is off at 0 (the default): a walk is judged per print', () => {
    expect(marketConfig(DEFAULT_RISK_CONFIG, 'ETH-USD').priceWindowSeconds).toBe(0);
    expect(summary(evaluateTick(at('124'), WALKED, ETH, NOW))).toBe('accept');
  });

  it('says how far and how long before', () => {
    const v = evaluateTick(at('124'), WALKED, WINDOWED, NOW);
    expect(v).toMatchObject({
      reason: 'tick/window-band',
      tripBreaker: true,
      detail: 'mark 124 vs 100 1000 ms before, within the 60 s window',
    });
  });

  it('a print back within the last mark but outside the window does not revert the breaker', () => {
    const open: TickState = {
      ...WALKED,
      breaker: {
        reason: 'tick/window-band',
        trippedAtMs: NOW,
        tick: { sequence: 12, markPrice: price('124'), timestampMs: T0 + 1000 },
      },
    };
    // 118: within 15 % of the last (112) but 18 % from the window's 100, and 1 s after the held print.
    expect(
      summary(
        evaluateTick(
          tick({ sequence: 13, markPrice: price('118'), timestampMs: T0 + 2000 }),
          open,
          WINDOWED,
          NOW,
        ),
      ),
    ).toBe('tick/breaker-confirming');
    // 110: within both: the walk reverted.
    expect(
      summary(
        evaluateTick(
          tick({ sequence: 13, markPrice: price('110'), timestampMs: T0 + 2000 }),
          open,
          WINDOWED,
          NOW,
        ),
      ),
    ).toBe('reverted');
    // 125, 5 s after the held print: the move persisted.
    expect(
      summary(
        evaluateTick(
          tick({ sequence: 13, markPrice: price('125'), timestampMs: T0 + 6000 }),
          open,
          WINDOWED,
          NOW + 5000,
        ),
      ),
    ).toBe('persisted');
  });

  describe('nextBandAnchor', () => {
    const accepted = (mark: string, timestampMs: number) => ({
      sequence: 20,
      markPrice: price(mark),
      timestampMs,
    });
    const plain = { verdict: 'accept', closeBreaker: false } as const;

    it('opens a window at the first accepted mark, and keeps it while the window lasts', () => {
      expect(nextBandAnchor({}, accepted('100', T0), plain, WINDOWED)).toEqual(ANCHOR);
      expect(nextBandAnchor({ bandAnchor: ANCHOR }, accepted('110', T0 + 59_999), plain, WINDOWED)).toBe(
        ANCHOR,
      );
    });

    it('opens the next window once the window has passed, at the mark it ended on', () => {
      const ended = { lastTick: { sequence: 19, markPrice: price('114'), timestampMs: T0 + 59_000 } };
      expect(
        nextBandAnchor({ ...ended, bandAnchor: ANCHOR }, accepted('125', T0 + 60_000), plain, WINDOWED),
      ).toEqual({ markPrice: price('114'), timestampMs: T0 + 60_000 });
    });

    it('a confirmed move opens a new window; a revert keeps the old one', () => {
      const persisted = { verdict: 'accept', closeBreaker: true, reason: 'tick/breaker-persisted' } as const;
      const reverted = { verdict: 'accept', closeBreaker: true, reason: 'tick/breaker-reverted' } as const;
      expect(nextBandAnchor({ bandAnchor: ANCHOR }, accepted('125', T0 + 6000), persisted, WINDOWED)).toEqual(
        {
          markPrice: price('125'),
          timestampMs: T0 + 6000,
        },
      );
      expect(nextBandAnchor({ bandAnchor: ANCHOR }, accepted('110', T0 + 2000), reverted, WINDOWED)).toBe(
        ANCHOR,
      );
    });

    it('is none for a market without a window', () => {
      expect(nextBandAnchor({ bandAnchor: ANCHOR }, accepted('110', T0 + 1000), plain, ETH)).toBeUndefined();
    });
  });
});

describe('evaluateTick: sequence jumps (maxSequenceJump)', () => {
  const JUMP = ETH.maxSequenceJump;
  const held = (sequence: number, timestampMs = T0 + 2000, heldAtMs = NOW): TickState['heldJump'] => ({
    tick: { sequence, markPrice: price('100'), timestampMs },
    heldAtMs,
  });
  const hold = (v: TickVerdict) => v.verdict === 'reject' && v.holdJump === true;

  it('holds a tick numbered more than maxSequenceJump above the last, and judges one at the bound as usual', () => {
    const far = evaluateTick(tick({ sequence: 10 + JUMP + 1 }), { lastTick: LAST }, ETH, NOW);
    expect(far).toEqual({
      verdict: 'reject',
      reason: 'tick/sequence-jump',
      tripBreaker: false,
      holdJump: true,
      detail: `sequence ${10 + JUMP + 1} is ${JUMP + 1} above 10 (at most ${JUMP}): held until a print continues from it`,
    });
    expect(summary(evaluateTick(tick({ sequence: 10 + JUMP }), { lastTick: LAST }, ETH, NOW))).toBe('accept');
    // The largest sequence a feed can send.
    expect(
      hold(evaluateTick(tick({ sequence: Number.MAX_SAFE_INTEGER }), { lastTick: LAST }, ETH, NOW)),
    ).toBe(true);
  });

  it('measures the jump from the breaker’s tick when it is higher; a first print has nothing to jump from', () => {
    expect(summary(evaluateTick(tick({ sequence: 11 + JUMP }), OPEN, ETH, NOW))).not.toBe(
      'tick/sequence-jump',
    );
    expect(hold(evaluateTick(tick({ sequence: 12 + JUMP }), OPEN, ETH, NOW))).toBe(true);
    expect(summary(evaluateTick(tick({ sequence: Number.MAX_SAFE_INTEGER }), {}, ETH, NOW))).toBe(
      'tick/unconfirmed:trip',
    );
  });

  it('is no ordering floor: the old numbering goes on being accepted while a jump is held', () => {
    const state: TickState = { lastTick: LAST, heldJump: held(10 + 5 * JUMP) };
    expect(summary(evaluateTick(tick({ sequence: 11 }), state, ETH, NOW))).toBe('accept');
  });

  it('follows a print that continues from the held one once it has persisted, by both clocks, and the mark is stale', () => {
    const j = 10 + 5 * JUMP;
    // The market's last print is maxMarkAgeSeconds old, and 1 ms, by the time the continuations come.
    const stale = { ...LAST, timestampMs: NOW + 5000 - ETH.maxMarkAgeSeconds * 1000 - 1 };
    const state: TickState = { lastTick: stale, heldJump: held(j, T0 + 2000, NOW) };
    const next = (sequence: number, timestampMs: number) => tick({ sequence, timestampMs });
    // While the market's own feed is alive (its mark fresh), not followed, however long it persists.
    const live: TickState = { ...state, lastTick: { ...stale, timestampMs: stale.timestampMs + 1 } };
    expect(evaluateTick(next(j + 1, T0 + 7000), live, ETH, NOW + 5000)).toMatchObject({
      reason: 'tick/sequence-confirming',
      continueJump: true,
      detail: expect.stringContaining("followed once the market's mark is stale"),
    });
    // 5 s after it by its stamp and by our clock: judged as usual (here accepted, within the band).
    expect(summary(evaluateTick(next(j + 1, T0 + 7000), state, ETH, NOW + 5000))).toBe('accept');
    expect(summary(evaluateTick(next(j + JUMP, T0 + 7000), state, ETH, NOW + 5000))).toBe('accept');
    // Too soon by either clock: refused, and the held tick stays (no hold of this one).
    const early = evaluateTick(next(j + 1, T0 + 6999), state, ETH, NOW + 5000);
    expect(summary(early)).toBe('tick/sequence-confirming');
    expect(hold(early)).toBe(false);
    expect(summary(evaluateTick(next(j + 1, T0 + 7000), state, ETH, NOW + 4999))).toBe(
      'tick/sequence-confirming',
    );
    // Then judged by the band as any print: a continuation far from the last mark trips the breaker.
    expect(
      summary(
        evaluateTick(
          tick({ sequence: j + 1, timestampMs: T0 + 7000, markPrice: price('130') }),
          state,
          ETH,
          NOW + 5000,
        ),
      ),
    ).toBe('tick/price-band:trip');
  });

  it('a redelivery of the held tick changes nothing; any jump that does not continue from it replaces it', () => {
    const j = 10 + 5 * JUMP;
    const state: TickState = { lastTick: LAST, heldJump: held(j) };
    const again = evaluateTick(tick({ sequence: j }), state, ETH, NOW);
    expect(summary(again)).toBe('tick/sequence-jump');
    expect(hold(again)).toBe(false);
    expect(again.verdict === 'reject' && again.detail).toMatch(/: held already$/);
    // Its stamp was clamped to our clock when held: a copy stamped later is still the held print.
    expect(summary(evaluateTick(tick({ sequence: j, timestampMs: T0 + 2500 }), state, ETH, NOW))).toBe(
      'tick/sequence-jump',
    );
    // review52-feed-held-number-reused: another print under its number (another mark, or stamped before it) is a number
    // reused, refused as one under the last tick's number, neither held nor judged (before, `tick/sequence-jump`:
    // "held already", which it was not).
    for (const other of [
      tick({ sequence: j, markPrice: price('101') }),
      tick({ sequence: j, timestampMs: T0 + 1999 }),
    ]) {
      const reused = evaluateTick(other, state, ETH, NOW);
      expect(reused).toEqual({
        verdict: 'reject',
        reason: 'tick/duplicate',
        tripBreaker: false,
        detail: expect.stringContaining(`sequence ${j} is the held print's (mark 100 at ${T0 + 2000})`),
      });
    }
    // Behind the market's numbering as well.
    const behind: TickState = { lastTick: LAST, heldJump: held(5, T0 + 20_000) };
    const ahead = T0 + 20_000 + ETH.maxClockSkewSeconds * 1000;
    const atBehind = (markPrice: string) =>
      summary(
        evaluateTick(
          tick({ sequence: 5, timestampMs: ahead, markPrice: price(markPrice) }),
          behind,
          ETH,
          NOW + 30_000,
        ),
      );
    expect([atBehind('100'), atBehind('99')]).toEqual(['tick/sequence-behind', 'tick/duplicate']);
    // Below it (a glitch held above a feed restarted on a new numbering must not keep that feed out), or beyond it.
    for (const sequence of [j - 1, 10 + JUMP + 1, j + JUMP + 1])
      expect(hold(evaluateTick(tick({ sequence }), state, ETH, NOW))).toBe(true);
  });

  it('a print continuing from the held jump marks it continued; for the span after, no other jump replaces it', () => {
    const j = 10 + 5 * JUMP;
    const early = evaluateTick(
      tick({ sequence: j + 1, timestampMs: T0 + 3000 }),
      { lastTick: LAST, heldJump: held(j) },
      ETH,
      NOW + 1000,
    );
    expect(early).toMatchObject({ reason: 'tick/sequence-confirming', continueJump: true });
    const continued: TickState = { lastTick: LAST, heldJump: { ...held(j)!, continuedAtMs: NOW + 1000 } };
    const glitch = tick({ sequence: Number.MAX_SAFE_INTEGER });
    const within = evaluateTick(glitch, continued, ETH, NOW + 1000 + 4_999);
    expect([summary(within), hold(within)]).toEqual(['tick/sequence-jump', false]);
    expect(hold(evaluateTick(glitch, continued, ETH, NOW + 1000 + 5_000))).toBe(true);
  });

  it('judges a jump from a feed resumed from 0 (its last tick numbered -1)', () => {
    const resumed: TickState = { lastTick: { ...LAST, sequence: -1 } };
    expect(hold(evaluateTick(tick({ sequence: Number.MAX_SAFE_INTEGER }), resumed, ETH, NOW))).toBe(true);
    expect(summary(evaluateTick(tick({ sequence: 0 }), resumed, ETH, NOW))).toBe('accept');
  });

  it('a market may allow any jump', () => {
    const any = { ...ETH, maxSequenceJump: Number.MAX_SAFE_INTEGER };
    expect(
      summary(evaluateTick(tick({ sequence: Number.MAX_SAFE_INTEGER }), { lastTick: LAST }, any, NOW)),
    ).toBe('accept');
  });
});

describe("evaluateTick: sequences behind (the market's numbering ahead of its feed)", () => {
  const SKEW = ETH.maxClockSkewSeconds * 1000;
  const SPAN = ETH.breakerConfirmSeconds * 1000;
  // The market recorded a print numbered 500, ahead of its feed (at 11 and on).
  const AHEAD: TickRecord = { sequence: 500, markPrice: price('100'), timestampMs: T0 };
  const later = NOW + 20_000;
  const feed = (sequence: number, timestampMs: number, mark = '100') =>
    tick({ sequence, timestampMs, markPrice: price(mark) });

  it('a print below the last stamped within the skew of it is out of order, one stamped beyond is held', () => {
    const state: TickState = { lastTick: AHEAD };
    expect(summary(evaluateTick(feed(11, T0 + SKEW), state, ETH, later))).toBe('tick/out-of-order');
    expect(evaluateTick(feed(11, T0 + SKEW + 1), state, ETH, later)).toEqual({
      verdict: 'reject',
      reason: 'tick/sequence-behind',
      tripBreaker: false,
      holdJump: true,
      detail:
        'sequence 11 is below 500 but stamped after every print of that numbering: held until a print continues from it',
    });
    // A duplicate of the last stays one, and the old rules (the resume's end) still hold first.
    expect(summary(evaluateTick(feed(500, T0 + SKEW + 1), state, ETH, later))).toBe('tick/duplicate');
    const resumed: TickState = { lastTick: AHEAD, resumedAfterMs: T0 + 3 * SKEW };
    expect(summary(evaluateTick(feed(11, T0 + 2 * SKEW), resumed, ETH, later))).toBe('tick/out-of-order');
  });

  it('a print continuing from the held one moves the market onto its numbering once it persisted and the mark is stale', () => {
    // The mark (the print ahead, stamped T0) is stale from T0 + maxMarkAgeSeconds + 1 ms.
    const staleAt = T0 + ETH.maxMarkAgeSeconds * 1000 + 1;
    const heldAt = staleAt - 10_000;
    const state: TickState = {
      lastTick: AHEAD,
      heldJump: { tick: { sequence: 11, markPrice: price('100'), timestampMs: heldAt }, heldAtMs: heldAt },
    };
    // Too soon by either clock.
    const soon = evaluateTick(feed(12, heldAt + SPAN - 1), state, ETH, staleAt);
    expect(soon).toMatchObject({ reason: 'tick/sequence-confirming', continueJump: true });
    expect(summary(evaluateTick(feed(12, heldAt + SPAN), state, ETH, heldAt + SPAN - 1))).toBe(
      'tick/sequence-confirming',
    );
    // Persisted, but the market's mark is still fresh: its own feed may still print.
    expect(evaluateTick(feed(12, heldAt + SPAN), state, ETH, staleAt - 1)).toMatchObject({
      reason: 'tick/sequence-confirming',
      continueJump: true,
      detail: expect.stringContaining("followed once the market's mark is stale (120 s)"),
    });
    const moved = evaluateTick(feed(12, heldAt + SPAN), state, ETH, staleAt);
    expect(moved).toMatchObject({
      verdict: 'reject',
      reason: 'tick/sequence-behind',
      rebase: { sequence: 11, resumedAfterMs: T0 + SKEW },
    });
    if (moved.verdict !== 'reject' || !moved.rebase) throw new Error('no rebase');
    // Judged again on the rebased market: as any print (here accepted, or tripping the breaker far from the mark).
    const rebased = rebasedTickState(state, moved.rebase);
    expect(rebased).toEqual({ lastTick: { ...AHEAD, sequence: 11 }, resumedAfterMs: T0 + SKEW });
    expect(summary(evaluateTick(feed(12, heldAt + SPAN), rebased, ETH, staleAt))).toBe('accept');
    expect(summary(evaluateTick(feed(12, heldAt + SPAN, '130'), rebased, ETH, staleAt))).toBe(
      'tick/price-band:trip',
    );
    // The old numbering's prints are refused by their stamps.
    expect(summary(evaluateTick(feed(501, T0 + SKEW), rebased, ETH, staleAt))).toBe('tick/out-of-order');
  });

  // feed49-resume-unknown-kinds: the refusal traces of every kind a market state keeps were of the numbering left,
  // a kind this version does not know included (before: kept).
  it('leaves no refusal trace of any kind on the rebased market', () => {
    const opaque = { unreadable: 'x', stored: { S: 'x' } };
    const state = {
      lastTick: AHEAD,
      refusals: {},
      unreadableRefusals: { 'tick/too-old': opaque },
      unknownRefusals: { 'tick/later-reason': opaque },
    };
    expect(rebasedTickState(state, { sequence: 11, resumedAfterMs: T0 })).toEqual({
      lastTick: { ...AHEAD, sequence: 11 },
      resumedAfterMs: T0,
    });
  });

  it('is measured from the breaker’s tick too: a print far ahead that tripped it', () => {
    const tripped: TickRecord = { sequence: 900, markPrice: price('300'), timestampMs: T0 + 1_000 };
    const state: TickState = {
      lastTick: { ...LAST, timestampMs: T0 },
      breaker: { reason: 'tick/price-band', trippedAtMs: NOW, tick: tripped },
    };
    // Below the last tick, within the skew of the breaker's tick's stamp: out of order; beyond it: held. (Between
    // the last tick and the breaker's, a print reverts or re-arms the breaker: see the boundaries above.)
    expect(summary(evaluateTick(feed(5, T0 + 1_000 + SKEW), state, ETH, later))).toBe('tick/out-of-order');
    expect(summary(evaluateTick(feed(5, T0 + 1_001 + SKEW), state, ETH, later))).toBe('tick/sequence-behind');
    const rebased = rebasedTickState(
      { ...state, heldJump: { tick: { ...tripped, sequence: 5 }, heldAtMs: later } },
      { sequence: 5, resumedAfterMs: T0 + 1_000 + SKEW },
    );
    expect(rebased.breaker?.tick.sequence).toBe(5);
    expect(rebased.lastTick?.sequence).toBe(5);
    expect(rebased.heldJump).toBeUndefined();
  });

  it('never holds a print of the recorded numbering, whatever the skew it was stamped with (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: SKEW }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.integer({ min: 1, max: 400 }),
        fc.integer({ min: 0, max: 60_000 }),
        (ahead, age, back, wait) => {
          // The last print, stamped `ahead` of our clock when it was accepted, and recorded at most at that clock.
          const acceptedAt = T0;
          const stamp = acceptedAt + ahead;
          const state: TickState = { lastTick: toTickRecord(feed(500, stamp), acceptedAt) };
          // An earlier print of its numbering: stamped at or before it, however late it comes.
          const earlier = feed(500 - back, stamp - Math.min(age, 30_000));
          const v = evaluateTick(earlier, state, ETH, acceptedAt + wait);
          expect(['tick/out-of-order', 'tick/too-old']).toContain(summary(v));
        },
      ),
      { numRuns: 300 },
    );
  });
});

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatPrice } from '../../shared/domain/units.ts';
import { readPriceFile } from '../../shared/prices/file.ts';
import {
  PRICE_COLUMNS,
  PriceFileError,
  parsePriceFile,
  parseTime,
  TIME_COLUMNS,
} from '../../shared/prices/parse.ts';

const DATA = path.resolve(import.meta.dirname, '..', '..', '..', 'shared', 'data');
const T = Date.UTC(2020, 2, 12, 9, 2);

function failure(fn: () => unknown): PriceFileError {
  try {
    fn();
  } catch (error) {
    if (error instanceof PriceFileError) return error;
    throw error;
  }
  throw new Error('expected a PriceFileError');
}

describe('header layouts', () => {
  const times: Record<(typeof TIME_COLUMNS)[number], string> = {
    timestamp: '2020-03-12T09:02:00Z',
    time: '1584003720',
    ts: '1584003720000',
    open_time_ms: '1584003720000',
    open_time_utc: '2020-03-12T09:02:00Z',
    period_start_utc: '2020-03-12 09:02:00',
  };
  for (const timeColumn of TIME_COLUMNS) {
    for (const priceColumn of PRICE_COLUMNS) {
      it(`reads ${timeColumn} + ${priceColumn}`, () => {
        const text = `volume,${timeColumn.toUpperCase()},${priceColumn}\n1,${times[timeColumn]},169.51\n`;
        expect(parsePriceFile(text)).toEqual([{ timestampMs: T, price: 16_951_000_000n }]);
      });
    }
  }

  it('prefers the first listed time column (open_time_ms over open_time_utc) and close over price', () => {
    const text = 'open_time_utc,open_time_ms,price,close\n2001-01-01T00:00:00Z,1584003720000,1,169.79\n';
    expect(parsePriceFile(text)).toEqual([{ timestampMs: T, price: 16_979_000_000n }]);
  });

  it('skips blank and comment lines, a BOM and CRLF endings, and strips quotes', () => {
    const text = '\uFEFF# source: test\r\ntime,close\r\n\r\n"1584003720","169.5"\r\n# end\r\n';
    expect(parsePriceFile(text)).toEqual([{ timestampMs: T, price: 16_950_000_000n }]);
  });
});

describe('Binance klines (no header, 12 columns)', () => {
  const row = (ms: number, close: string) =>
    `${ms},169.51,169.79,169.12,${close},3538.297,${ms + 59_999},600000.1,1200,1700.5,288000.2,0`;

  it('takes the open time and the close', () => {
    const text = `${row(T, '169.79')}\n${row(T + 60_000, '169.71')}\n`;
    expect(parsePriceFile(text)).toEqual([
      { timestampMs: T, price: 16_979_000_000n },
      { timestampMs: T + 60_000, price: 16_971_000_000n },
    ]);
  });

  it('reads open times in microseconds (newer dumps)', () => {
    expect(parsePriceFile(`${row(T * 1000, '1')}\n`)[0]?.timestampMs).toBe(T);
  });

  it('refuses a headerless file that is not 12 columns', () => {
    const e = failure(() => parsePriceFile('1584003720000,169.5\n'));
    expect(e.reason).toBe('prices/no-time-column');
    expect(e.line).toBe(1);
  });
});

describe('times', () => {
  const cases: [string, string, number][] = [
    ['ISO with Z', '2020-03-12T09:02:00Z', T],
    ['ISO with an offset', '2020-03-12T10:02:00+01:00', T],
    ['ISO with a compact offset', '2020-03-12T04:02:00-0500', T],
    ['ISO without offset is UTC', '2020-03-12T09:02:00', T],
    ['ISO without seconds', '2020-03-12T09:02Z', T],
    ['ISO with milliseconds', '2020-03-12T09:02:00.250Z', T + 250],
    ['epoch seconds', '1584003720', T],
    ['epoch seconds with decimals', '1584003720.5', T + 500],
    ['largest epoch seconds (just under 1e11)', '99999999999', 99_999_999_999_000],
    ['smallest epoch milliseconds (1e11)', '100000000000', 100_000_000_000],
    ['epoch milliseconds', '1584003720000', T],
    ['largest epoch milliseconds (just under 1e14)', '99999999999999', 99_999_999_999_999],
    ['smallest epoch microseconds (1e14)', '100000000000000', 100_000_000_000],
    ['epoch microseconds', '1584003720000000', T],
  ];
  for (const [name, cell, expected] of cases) {
    it(`reads ${name}`, () => expect(parseTime(cell, 1)).toBe(expected));
  }

  const bad: [string, string][] = [
    ['a calendar date that does not exist', '2020-02-30T00:00:00Z'],
    ['a word', 'yesterday'],
    ['decimals on milliseconds', '1584003720000.5'],
    ['microseconds that are not whole milliseconds', '1584003720000001'],
    ['exponent notation', '1.5e12'],
    ['a negative epoch', '-1'],
    ['a date before 1970', '1969-12-31T23:59:59Z'],
    ['sub-millisecond precision', '2020-03-12T09:02:00.0001Z'],
  ];
  for (const [name, cell] of bad) {
    it(`refuses ${name}`, () => expect(failure(() => parseTime(cell, 7)).reason).toBe('prices/bad-time'));
  }
});

describe('malformed files are refused with the line at fault', () => {
  const cases: [string, string, PriceFileError['reason'], number | undefined][] = [
    ['a bad price', 'time,close\n1584003720,169.5\n1584003780,abc\n', 'prices/bad-price', 3],
    ['a zero price', 'time,close\n1584003720,0\n', 'prices/bad-price', 2],
    ['a negative price', 'time,close\n1584003720,-1\n', 'prices/bad-price', 2],
    ['exponent notation', 'time,close\n1584003720,1e3\n', 'prices/bad-price', 2],
    ['more than 8 decimals', 'time,close\n1584003720,1.123456789\n', 'prices/bad-price', 2],
    ['an empty price', 'time,close\n1584003720,\n', 'prices/bad-price', 2],
    ['a missing column', 'time,close\n1584003720,1\n1584003780\n', 'prices/column-count', 3],
    ['an extra column', 'time,close\n1584003720,1,2\n', 'prices/column-count', 2],
    ['a repeated time', 'time,close\n1584003720,1\n1584003720,2\n', 'prices/out-of-order', 3],
    ['a time going back', 'time,close\n1584003780,1\n1584003720,2\n', 'prices/out-of-order', 3],
    ['a bad time', 'time,close\n1584003720,1\n# c\nnever,2\n', 'prices/bad-time', 4],
    ['no time column', 'date,close\n2020-03-12,1\n', 'prices/no-time-column', 1],
    ['no price column', 'time,open\n1584003720,1\n', 'prices/no-price-column', 1],
    ['no rows', 'time,close\n', 'prices/empty', undefined],
    ['an empty file', '', 'prices/empty', undefined],
  ];
  for (const [name, text, reason, line] of cases) {
    it(`refuses ${name}`, () => {
      const e = failure(() => parsePriceFile(text));
      expect(e.reason).toBe(reason);
      expect(e.line).toBe(line);
      if (line !== undefined) expect(e.message).toContain(`line ${line}:`);
    });
  }
});

describe('exact round trip (property)', () => {
  it('parses back every time and price it was given, exactly', () => {
    const rows = fc.array(
      fc.record({
        gapMs: fc.integer({ min: 1, max: 3_600_000 }),
        price: fc.bigInt({ min: 1n, max: 10n ** 15n }),
      }),
      { minLength: 1, maxLength: 30 },
    );
    fc.assert(
      fc.property(rows, fc.constantFrom('ms', 'iso'), (generated, format) => {
        let t = T;
        const expected = generated.map((r) => {
          t += r.gapMs;
          return { timestampMs: t, price: r.price };
        });
        const lines = expected.map(
          (p) =>
            `${format === 'ms' ? p.timestampMs : new Date(p.timestampMs).toISOString()},${formatPrice(p.price)}`,
        );
        expect(parsePriceFile(`timestamp,price\n${lines.join('\n')}\n`)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});

describe('files', () => {
  const real: [string, number, string, string][] = [
    ['eth-usdt-perp-2020-03-12-leg1-1m.csv', 148, '169.79', '139.29'],
    ['eth-usdt-perp-2020-03-12-leg2-1m.csv', 287, '129.43', '110.61'],
    ['btc-usdt-perp-2020-03-12-leg1-1m.csv', 287, '7381.14', '5840.24'],
    ['btc-usdt-perp-2020-03-12-leg2-1m.csv', 287, '5692.62', '4692.6'],
    ['eth-usd-spot-coinapi-2020-03-12-10m.csv', 144, '194.52', '107.52'],
  ];
  for (const [name, rows, firstClose, lastClose] of real) {
    it(`reads ${name}: ${rows} rows, 1 minute or more apart`, () => {
      // The crash files sit beside the repository (../shared/data): missing, the test says so, never skips.
      if (!existsSync(path.join(DATA, name))) throw new Error(`missing ${path.join(DATA, name)}`);
      const points = readPriceFile(path.join(DATA, name));
      expect(points).toHaveLength(rows);
      expect(formatPrice(points[0]!.price)).toBe(firstClose);
      expect(formatPrice(points[points.length - 1]!.price)).toBe(lastClose);
      for (let i = 1; i < points.length; i++) {
        expect(points[i]!.timestampMs - points[i - 1]!.timestampMs).toBeGreaterThanOrEqual(60_000);
      }
    });
  }

  it('names the file and the line of a bad row', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'prices-'));
    try {
      const file = path.join(dir, 'bad.csv');
      writeFileSync(file, 'time,close\n1584003720,1\n1584003780,x\n');
      const e = failure(() => readPriceFile(file));
      expect(e.reason).toBe('prices/bad-price');
      expect(e.message).toBe(`prices/bad-price: ${file}: line 3: price: "x" is not a plain decimal number`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a missing file and a directory as unreadable', () => {
    expect(failure(() => readPriceFile('/nonexistent/prices.csv')).reason).toBe('prices/unreadable');
    expect(failure(() => readPriceFile(tmpdir())).reason).toBe('prices/unreadable');
  });
});

import { type PriceE8, parsePrice } from '../domain/units.ts';

/**
 * Price files for replays and simulations: one price per row, in time order. Two layouts are read:
 *
 * 1. A header row naming a time column and a price column (names are case-insensitive; the first listed
 *    name present wins, so a file with both open_time_ms and open_time_utc uses open_time_ms):
 *      time:  timestamp, time, ts, open_time_ms, open_time_utc, period_start_utc
 *      price: close, price, mark
 *    Times are ISO 8601 (a date-time without an offset is UTC, as in every public dump) or epoch numbers:
 *    below 1e11 seconds (up to 3 decimals), below 1e14 milliseconds, otherwise microseconds (newer Binance
 *    dumps), whole milliseconds required.
 * 2. Binance's headerless 12-column kline layout: open time (ms or us), open, high, low, close, volume, close
 *    time, quote volume, trades, taker base, taker quote, ignore. The close is the price.
 *
 * Prices are exact PriceE8 (parsePrice: plain decimals, > 0, at most 8 decimals). Blank lines and lines
 * starting with '#' are skipped. Times must increase strictly. A bad row is rejected with its line number.
 */

export interface PricePoint {
  /** Epoch milliseconds. */
  readonly timestampMs: number;
  readonly price: PriceE8;
}

export type PriceFileReason =
  | 'prices/empty'
  | 'prices/no-time-column'
  | 'prices/no-price-column'
  | 'prices/column-count'
  | 'prices/bad-time'
  | 'prices/bad-price'
  | 'prices/out-of-order'
  | 'prices/too-large'
  | 'prices/unreadable';

export class PriceFileError extends Error {
  override readonly name = 'PriceFileError';
  constructor(
    readonly reason: PriceFileReason,
    /** 1-based line of the file, when one line is at fault. */
    readonly line: number | undefined,
    readonly detail: string,
    readonly file?: string,
  ) {
    super(
      `${reason}: ${file === undefined ? '' : `${file}: `}${line === undefined ? '' : `line ${line}: `}${detail}`,
    );
  }
}

export const TIME_COLUMNS = [
  'timestamp',
  'time',
  'ts',
  'open_time_ms',
  'open_time_utc',
  'period_start_utc',
] as const;
export const PRICE_COLUMNS = ['close', 'price', 'mark'] as const;

const KLINE_COLUMNS = 12;
const KLINE_TIME = 0;
const KLINE_CLOSE = 4;
/** Rows beyond this are refused: a price file is minutes or days of data, not an order book dump. */
export const MAX_ROWS = 2_000_000;

export interface Layout {
  readonly kind: 'header' | 'binance-kline';
  readonly timeColumn: number;
  readonly priceColumn: number;
  readonly columns: number;
}

const splitRow = (line: string): string[] =>
  line.split(',').map((cell) => {
    const t = cell.trim();
    return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).trim() : t;
  });

/** Parses the text of a price file (see the module comment for the layouts). */
export function parsePriceFile(text: string): PricePoint[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let layout: Layout | undefined;
  const points: PricePoint[] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    const lineNo = i + 1;
    const cells = splitRow(raw);
    if (!layout) {
      layout = detectLayout(cells, lineNo);
      if (layout.kind === 'header') continue;
    }
    if (cells.length !== layout.columns) {
      throw new PriceFileError(
        'prices/column-count',
        lineNo,
        `${cells.length} columns, expected ${layout.columns} (${layout.kind === 'header' ? 'as the header' : 'Binance kline'})`,
      );
    }
    const point = {
      timestampMs: parseTime(cells[layout.timeColumn]!, lineNo),
      price: parsePriceCell(cells[layout.priceColumn]!, lineNo),
    };
    const previous = points[points.length - 1];
    if (previous && point.timestampMs <= previous.timestampMs) {
      throw new PriceFileError(
        'prices/out-of-order',
        lineNo,
        `time ${new Date(point.timestampMs).toISOString()} is not after ${new Date(previous.timestampMs).toISOString()}`,
      );
    }
    if (points.length >= MAX_ROWS)
      throw new PriceFileError('prices/too-large', lineNo, `more than ${MAX_ROWS} rows`);
    points.push(point);
  }
  if (points.length === 0) throw new PriceFileError('prices/empty', undefined, 'no price rows');
  return points;
}

/** A first row whose first cell is a number is data (Binance klines); anything else is a header. */
export function detectLayout(cells: readonly string[], lineNo: number): Layout {
  if (/^\d+$/.test(cells[0] ?? '')) {
    if (cells.length !== KLINE_COLUMNS) {
      throw new PriceFileError(
        'prices/no-time-column',
        lineNo,
        `no header, and ${cells.length} columns is not Binance's ${KLINE_COLUMNS}-column kline layout`,
      );
    }
    return {
      kind: 'binance-kline',
      timeColumn: KLINE_TIME,
      priceColumn: KLINE_CLOSE,
      columns: KLINE_COLUMNS,
    };
  }
  const names = cells.map((c) => c.toLowerCase());
  const find = (wanted: readonly string[]): number => {
    for (const name of wanted) {
      const at = names.indexOf(name);
      if (at >= 0) return at;
    }
    return -1;
  };
  const timeColumn = find(TIME_COLUMNS);
  if (timeColumn < 0) {
    throw new PriceFileError(
      'prices/no-time-column',
      lineNo,
      `header needs one of ${TIME_COLUMNS.join(', ')}`,
    );
  }
  const priceColumn = find(PRICE_COLUMNS);
  if (priceColumn < 0) {
    throw new PriceFileError(
      'prices/no-price-column',
      lineNo,
      `header needs one of ${PRICE_COLUMNS.join(', ')}`,
    );
  }
  return { kind: 'header', timeColumn, priceColumn, columns: cells.length };
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;
const EPOCH = /^\d{1,16}(\.\d{1,3})?$/;
const SECONDS_BELOW = 1e11;
const MILLIS_BELOW = 1e14;
/** Largest epoch ms a Date holds. */
const MAX_EPOCH_MS = 8.64e15;

/** ISO 8601 (no offset: UTC) or epoch seconds / milliseconds / microseconds, to epoch milliseconds. */
export function parseTime(cell: string, lineNo: number): number {
  const bad = (why: string): PriceFileError =>
    new PriceFileError('prices/bad-time', lineNo, `"${cell}": ${why}`);
  if (EPOCH.test(cell)) {
    const [whole = '', fraction = ''] = cell.split('.');
    const n = Number(whole);
    let ms: number;
    if (n < SECONDS_BELOW) ms = n * 1000 + Number(fraction.padEnd(3, '0'));
    else if (fraction !== '') throw bad('only epoch seconds may have decimals');
    else if (n < MILLIS_BELOW) ms = n;
    // On the digits: above 2^53 Number() rounds, and 9007199254741001 would pass as whole milliseconds.
    else if (whole.endsWith('000')) ms = Number(whole.slice(0, -3));
    else throw bad('epoch microseconds must be whole milliseconds');
    if (!Number.isSafeInteger(ms) || ms > MAX_EPOCH_MS) throw bad('out of range');
    return ms;
  }
  const m = ISO.exec(cell);
  if (!m) throw bad('expected ISO 8601 or an epoch number');
  const [, y, mo, d, h, mi, s = '00', frac = '', zone = 'Z'] = m;
  const fraction = frac.slice(1, 4).padEnd(3, '0');
  const offset =
    zone.toUpperCase() === 'Z' ? 'Z' : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const normalized = `${y}-${mo}-${d}T${h}:${mi}:${s}.${fraction}${offset}`;
  const ms = Date.parse(normalized);
  // Date.parse rolls 2020-02-30 over to March: re-check the calendar fields of UTC inputs.
  if (!Number.isSafeInteger(ms) || ms < 0) throw bad('not a valid date-time after 1970');
  if (offset === 'Z' && new Date(ms).toISOString().slice(0, 19) !== normalized.slice(0, 19)) {
    throw bad('not a calendar date-time');
  }
  if (frac.length > 4 && !/^0*$/.test(frac.slice(4))) throw bad('finer than a millisecond');
  return ms;
}

function parsePriceCell(cell: string, lineNo: number): PriceE8 {
  try {
    return parsePrice(cell, 'price');
  } catch (error) {
    throw new PriceFileError('prices/bad-price', lineNo, (error as Error).message);
  }
}

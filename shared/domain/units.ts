/**
 * Exact fixed-point units. Every amount that moves money is a bigint scaled by a power of ten that is
 * defined here once; the type alias names the unit so a signature reads like `collateral: QuoteE6`.
 *
 *   QuoteE6  quote currency (USD) in 1e-6 units        1 USD        = 1_000_000n
 *   BaseE8   base size (ETH, BTC) in 1e-8 units        1 ETH        = 100_000_000n
 *   PriceE8  quote per base in 1e-8 units              1520.5 USD   = 152_050_000_000n
 *   Ppm      dimensionless rate in 1e-6 (parts/mill.)  0.5 %        = 5_000n
 *   Bps      dimensionless rate in 1e-4 (basis points) 0.5 %        = 50n
 *
 * size(BaseE8) * price(PriceE8) is in 1e-16 quote; dividing by NOTIONAL_TO_QUOTE (1e10) gives QuoteE6.
 * Every division names its rounding; callers choose the direction that favours the insurance fund.
 */

export type QuoteE6 = bigint;
export type BaseE8 = bigint;
export type PriceE8 = bigint;
export type Ppm = bigint;
export type Bps = bigint;

export const QUOTE_DECIMALS = 6;
export const BASE_DECIMALS = 8;
export const PRICE_DECIMALS = 8;
export const PPM_DECIMALS = 6;
export const BPS_DECIMALS = 4;

export const QUOTE_SCALE = 10n ** 6n;
export const BASE_SCALE = 10n ** 8n;
export const PRICE_SCALE = 10n ** 8n;
export const PPM_SCALE = 10n ** 6n;
export const BPS_SCALE = 10n ** 4n;
/** size(1e-8) * price(1e-8) = 1e-16 quote; / 1e10 = 1e-6 quote. */
export const NOTIONAL_TO_QUOTE = (BASE_SCALE * PRICE_SCALE) / QUOTE_SCALE;

export type Rounding = 'floor' | 'ceil';

export class UnitError extends Error {
  override readonly name = 'UnitError';
}

/** Integer division with an explicit rounding direction (toward -inf or +inf), valid for any signs. */
export function div(numerator: bigint, denominator: bigint, rounding: Rounding): bigint {
  if (denominator === 0n) throw new UnitError('units/division-by-zero');
  const q = numerator / denominator;
  // Truncation rounds toward zero: already the floor of a positive quotient and the ceiling of a negative one.
  const negative = numerator < 0n !== denominator < 0n;
  if ((rounding === 'floor') !== negative) return q;
  // Inexact: a product is cheaper than a second long division (%).
  if (q * denominator === numerator) return q;
  return negative ? q - 1n : q + 1n;
}

/** a * b / d with one rounding at the end (no intermediate loss). */
export function mulDiv(a: bigint, b: bigint, d: bigint, rounding: Rounding): bigint {
  return div(a * b, d, rounding);
}

/** Quote value of size * price, rounded as asked. */
export function notionalQuote(size: BaseE8, price: PriceE8, rounding: Rounding): QuoteE6 {
  return div(size * price, NOTIONAL_TO_QUOTE, rounding);
}

/** amount * rate, rate in ppm. */
export function applyPpm(amount: bigint, rate: Ppm, rounding: Rounding): bigint {
  return div(amount * rate, PPM_SCALE, rounding);
}

/** amount * rate, rate in bps. */
export function applyBps(amount: bigint, rate: Bps, rounding: Rounding): bigint {
  return div(amount * rate, BPS_SCALE, rounding);
}

/** `size` rounded down to a whole number of `lot`s (lot > 0). */
export const floorToLot = (size: BaseE8, lot: BaseE8): BaseE8 => div(size, lot, 'floor') * lot;
/** `size` rounded up to a whole number of `lot`s (lot > 0). */
export const ceilToLot = (size: BaseE8, lot: BaseE8): BaseE8 => div(size, lot, 'ceil') * lot;

export const minBig = (a: bigint, b: bigint): bigint => (a < b ? a : b);
export const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);
export const absBig = (a: bigint): bigint => (a < 0n ? -a : a);

export interface ParseOptions {
  /** Refuse negative values (default true: most amounts are non-negative). */
  readonly allowNegative?: boolean;
  /** Refuse zero. */
  readonly positive?: boolean;
  /** Round extra decimals instead of refusing them (off by default: extra precision is an input error). */
  readonly rounding?: Rounding;
}

const DECIMAL = /^([+-])?(\d+)(?:\.(\d+))?$/;
const MAX_INPUT_LENGTH = 80;
/**
 * Largest magnitude a parsed value may have once scaled: 30 digits. DynamoDB numbers hold 38 significant digits,
 * so a balance summing many such values still fits; a larger one would be stored nowhere, or break every later
 * write of its item (a fund balance that can no longer move).
 */
export const MAX_SCALED_DIGITS = 30;
/** A number grouped by thousands with commas and a decimal point ("1,000.50", "250,000"), as groupThousands writes. */
const GROUPED = /^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$/;
const MAX_SCALED = 10n ** BigInt(MAX_SCALED_DIGITS);

/**
 * Parses a plain decimal string ("1520.5", "-0.25") into a scaled integer.
 * Refuses NaN, Infinity, exponent notation, empty strings, separators and more decimals than the unit has.
 */
export function parseDecimal(
  input: string,
  decimals: number,
  what: string,
  options: ParseOptions = {},
): bigint {
  if (typeof input !== 'string')
    throw new UnitError(`${what}: expected a decimal string, got ${typeof input}`);
  const text = input.trim();
  if (text.length === 0) throw new UnitError(`${what}: empty value`);
  if (text.length > MAX_INPUT_LENGTH)
    throw new UnitError(`${what}: value longer than ${MAX_INPUT_LENGTH} characters`);
  if (/^[+-]?(nan|inf|infinity)$/i.test(text))
    throw new UnitError(`${what}: "${text}" is not a finite number`);
  if (/e/i.test(text)) throw new UnitError(`${what}: exponent notation is not supported ("${text}")`);
  const match = DECIMAL.exec(text);
  if (!match) {
    // An amount copied from what fund and status print ("1,000.50") is grouped: say how to write it.
    const ungrouped = GROUPED.test(text)
      ? `: write it without the thousands separators, ${text.replaceAll(',', '')}`
      : '';
    throw new UnitError(`${what}: "${text}" is not a plain decimal number${ungrouped}`);
  }
  const [, sign, whole = '0', fraction = ''] = match;
  let scaled: bigint;
  if (fraction.length > decimals) {
    if (!options.rounding) {
      throw new UnitError(`${what}: "${text}" has ${fraction.length} decimals, at most ${decimals} allowed`);
    }
    const exact = BigInt(whole + fraction);
    scaled = div(
      exact,
      10n ** BigInt(fraction.length - decimals),
      sign === '-' ? flip(options.rounding) : options.rounding,
    );
  } else {
    scaled = BigInt(whole + fraction.padEnd(decimals, '0'));
  }
  if (scaled >= MAX_SCALED)
    throw new UnitError(
      `${what}: "${text}" is too large (at most ${MAX_SCALED_DIGITS - decimals} digits before the point)`,
    );
  if (sign === '-') scaled = -scaled;
  // On the text, not the result: a negative amount rounded to 0 ("-0.1" to whole units) is still negative.
  if (sign === '-' && !options.allowNegative && /[1-9]/.test(whole + fraction))
    throw new UnitError(`${what}: must not be negative ("${text}")`);
  if (scaled === 0n && options.positive)
    throw new UnitError(`${what}: must be greater than zero ("${text}")`);
  return scaled;
}

const flip = (r: Rounding): Rounding => (r === 'floor' ? 'ceil' : 'floor');

/** Formats a scaled integer as a decimal string without trailing zeros ("1520.5", "-0.25", "0"). */
export function formatDecimal(value: bigint, decimals: number): string {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals).replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

export const parseQuote = (s: string, what = 'quote amount', o?: ParseOptions): QuoteE6 =>
  parseDecimal(s, QUOTE_DECIMALS, what, o);
export const parseBase = (s: string, what = 'base size', o?: ParseOptions): BaseE8 =>
  parseDecimal(s, BASE_DECIMALS, what, o);
export const parsePrice = (s: string, what = 'price', o?: ParseOptions): PriceE8 =>
  parseDecimal(s, PRICE_DECIMALS, what, { positive: true, ...o });
export const parsePpm = (s: string, what = 'rate', o?: ParseOptions): Ppm =>
  parseDecimal(s, PPM_DECIMALS, what, o);

export const formatQuote = (v: QuoteE6): string => formatDecimal(v, QUOTE_DECIMALS);
export const formatBase = (v: BaseE8): string => formatDecimal(v, BASE_DECIMALS);
export const formatPrice = (v: PriceE8): string => formatDecimal(v, PRICE_DECIMALS);
export const formatPpm = (v: Ppm): string => formatDecimal(v, PPM_DECIMALS);

/** 1234567 -> "1,234,567". */
export const groupThousands = (whole: bigint): string =>
  whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** An amount for people: thousands grouped, cents at least (1000.5 -> "1,000.50"), never rounded (0.004 -> "0.004"). */
export function formatQuoteGrouped(value: QuoteE6): string {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const fraction = (abs % QUOTE_SCALE)
    .toString()
    .padStart(QUOTE_DECIMALS, '0')
    .replace(/0+$/, '')
    .padEnd(2, '0');
  return `${negative ? '-' : ''}${groupThousands(abs / QUOTE_SCALE)}.${fraction}`;
}

/** Shorthands for tests and defaults: usd('1520.5'), base('0.1'), price('195'). */
export const usd = (s: string): QuoteE6 => parseQuote(s, 'usd', { allowNegative: true });
export const base = (s: string): BaseE8 => parseBase(s);
export const price = (s: string): PriceE8 => parsePrice(s);
export const ppm = (s: string): Ppm => parsePpm(s);

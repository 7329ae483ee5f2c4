import { z } from 'zod';
import { lastPriceBeforeReset, startPrice } from './auction.ts';
import {
  type BaseE8,
  div,
  formatBase,
  formatPpm,
  PPM_SCALE,
  type Ppm,
  PRICE_SCALE,
  type PriceE8,
  parseBase,
  parsePpm,
  parseQuote,
  type QuoteE6,
} from './units.ts';

/**
 * One typed, validated configuration for every rule of the risk model. Inputs are decimal strings
 * (amounts in quote units, sizes in base units, rates as fractions: "0.005" = 0.5 %), parsed into exact
 * integers. Unknown keys are errors (a misspelt key must not silently fall back to a default).
 */

const rate = (what: string, max = '1', min?: { readonly value: string; readonly why: string }) =>
  z.string().transform((s, ctx) => {
    try {
      const v = parsePpm(s, what);
      if (v > parsePpm(max)) throw new Error(`${what}: must be at most ${max}`);
      if (min && v < parsePpm(min.value))
        throw new Error(`${what}: must be at least ${min.value} (${min.why})`);
      return v;
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });
const quote = (what: string) =>
  z.string().transform((s, ctx) => {
    try {
      return parseQuote(s, what);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });
const baseSize = (what: string) =>
  z.string().transform((s, ctx) => {
    try {
      return parseBase(s, what);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });
const seconds = z.number().int().positive();

export const marketConfigSchema = z.strictObject({
  symbol: z
    .string()
    .regex(
      /^[A-Z0-9]{2,10}-[A-Z]{3,5}$/,
      'a symbol is 2 to 10 capital letters or digits, a hyphen and 3 to 5 capital letters, like ETH-USD or 1000PEPE-USDT',
    ),
  /** m: maintenance margin rate (Hyperliquid: half the initial margin at max leverage; dYdX ETH 3 %). */
  maintenanceMargin: rate('maintenanceMargin', '0.5'),
  /** Initial margin rate: partial liquidation closes until the remainder is back above it. */
  initialMargin: rate('initialMargin', '1'),
  /** Fee on the liquidated notional, paid to the insurance fund (Binance 1.25 % at low tiers, dYdX 1.5 % cap). */
  liquidationFee: rate('liquidationFee', '0.1'),
  /** Worst acceptable fill versus the mark for the market layer (dYdX's fillable price widens with insolvency). */
  slippageBound: rate('slippageBound', '0.5'),
  /**
   * Worst acceptable fill versus the mark for the last resort, when no layer could close any of a slice: wider
   * than slippageBound, never unbounded (a dump at any price is the cascade the backstop exists to stop). What
   * it leaves goes to the position's next slice, after lastResortCooldownSeconds (Hyperliquid: 30 s between
   * slices), so the book can refill; when nothing is within it, the liquidation waits (lastResortWaitSeconds).
   */
  lastResortSlippageBound: rate('lastResortSlippageBound', '0.5'),
  /**
   * Delay of the next slice after a slice that spent the liquidity: a last-resort order, or size no layer could
   * take (an SQS delay: at most 900 s).
   */
  lastResortCooldownSeconds: z.number().int().min(0).max(900),
  /**
   * Wait after a last-resort attempt that found nothing within the bound, doubled after each further one up to
   * 900 s: a book our own sells emptied refills as their impact decays.
   */
  lastResortWaitSeconds: z.number().int().min(1).max(900),
  /** Largest share of a position closed per step (dYdX 10 %/block, Hyperliquid 20 % slices, Aave 50 %). */
  maxCloseShare: rate('maxCloseShare', '1'),
  /** Smallest notional worth a slice (dYdX 1,000 USDC). */
  minSliceNotional: quote('minSliceNotional'),
  /**
   * A remainder below this size is closed in full rather than left as dust (Aave v3.3, Maker chost). 0: none; else a
   * whole number of lots (lotSize).
   */
  dustSize: baseSize('dustSize'),
  /**
   * The exchange's lot: the venue fills whole lots only and answers an order under one with no fills (docs/VENUE.md),
   * so positions open in whole lots and every slice, market order, last resort and auction fill is whole lots. Set
   * it to the exchange's lot. Absent: 1 unit (1e-8, any size: lotSizeOf), kept absent once parsed, so a
   * configuration without it keeps its RiskConfigDigest.
   */
  lotSize: baseSize('lotSize').optional(),
  /** Positions above this notional are liquidated in slices (Hyperliquid: 100k USDC). */
  sliceAboveNotional: quote('sliceAboveNotional'),
  /** A tick further than this from the last accepted mark trips the circuit breaker (Drift: 10 %). */
  priceBand: rate('priceBand', '1'),
  /**
   * A tripped breaker follows a move that persists: a print agreeing with the held one closes it only when stamped
   * at least this long after it, so a bad print repeated in one burst (a feed's retry, two prints of one
   * PutEvents) cannot confirm itself before a good print reverts it. 0: at once. Absent (a configuration older
   * than the rule): DEFAULT_BREAKER_CONFIRM_SECONDS.
   */
  breakerConfirmSeconds: z.number().int().min(0).optional(),
  /**
   * The band holds over this window of time as well as per print (tick.ts, window band): prints that walk the
   * mark each within the band of the last trip the breaker once they leave the band of the window's first mark.
   * 0 or absent: per print only. For a feed that ticks every few seconds; a replay that compresses a crash's
   * minutes into seconds trips it, as it should.
   */
  priceWindowSeconds: z.number().int().min(0).optional(),
  /**
   * A tick numbered more than this above the market's last (a feed's glitch, or a feed restarted on a new
   * numbering) is held, not recorded: recorded, it would make every later tick of the feed out of order and blind
   * the market. The next print that continues from it, breakerConfirmSeconds later, follows the new numbering;
   * any print of the old one accepted meanwhile drops it (tick.ts, sequence jumps). Absent:
   * DEFAULT_MAX_SEQUENCE_JUMP.
   */
  maxSequenceJump: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  /**
   * Before a liquidation starts, the venue's price for the close (best bid to sell, best ask to buy) must confirm the
   * mark: when the position is healthy there and it lies further than this from the mark, the liquidation waits
   * (venue-check.ts, `MarkDisputes`, alarmed) for up to venueCheckHoldSeconds, then goes on on the mark. Absent:
   * no check (a simulated venue that follows the marks cannot dispute them).
   */
  venueCheckBand: rate('venueCheckBand', '1').optional(),
  /**
   * How long a dispute holds a liquidation (absent: DEFAULT_VENUE_CHECK_HOLD_SECONDS; 0: not at all, the dispute
   * counted and overruled); a venue cannot block for ever.
   */
  venueCheckHoldSeconds: z.number().int().min(0).max(86_400).optional(),
  /** A tick further than this from its index price is rejected (Drift: mark/oracle divergence 10 %). */
  indexBand: rate('indexBand', '1'),
  /** Ticks older than this are stale (Drift: about 60 s). */
  maxTickAgeSeconds: seconds,
  /** Ticks this far in the future are refused (clock skew). */
  maxClockSkewSeconds: seconds,
  /**
   * A mark older than this is not acted on: liquidations, auction steps and ADL wait for a fresh tick (Drift: an
   * oracle is stale after about 60 s). Above maxTickAgeSeconds, so an accepted tick is fresh. Absent (a
   * configuration older than the rule): twice maxTickAgeSeconds, at least MIN_DEFAULT_MARK_AGE_SECONDS.
   */
  maxMarkAgeSeconds: seconds.optional(),
});

export const auctionConfigSchema = z.strictObject({
  /** Start price = mark * buf for a sell-side lot (Maker: 1.2-1.3); a buy-side lot starts at mark / buf. */
  buf: rate('buf', '10', { value: '1', why: 'below 1 the auction would open on the wrong side of the mark' }),
  curve: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('stairstep'), cut: rate('cut', '1'), stepSeconds: seconds }),
    z.strictObject({ kind: z.literal('linear'), tauSeconds: seconds }),
  ]),
  /** Reset when the auction is older than tail (Maker: 90-140 min). */
  tailSeconds: seconds,
  /** Reset when price / top falls below cusp (Maker: 0.4). */
  cusp: rate('cusp', '1'),
  /** Liquidation penalty (Maker chop 13 %): the auction never collects more than debt + penalty. */
  penalty: rate('penalty', '1'),
  /**
   * The auction's floor as a share of the mark: no fill below it, ever (never a zero-price fill); a buy auction's
   * cap is mark / floor. At least 1 / (1 + lastResortSlippageBound) of every market: an auction never trades
   * further from the mark than the last resort would (a deeper discount is a cost the fund pays, and ADL's close
   * at the mark would not).
   */
  floor: rate('floor', '1', {
    value: '0.000001',
    why: 'at 0 a sell auction may clear at zero, as MakerDAO did on 12 March 2020, and a buy auction at any price',
  }),
  /** Resets before the remainder goes to the fund. */
  maxResets: z.number().int().min(0).max(100),
});

export const insuranceConfigSchema = z.strictObject({
  /** Most the fund may pay out within one window (dYdX: 1M USDC per block). */
  drawCapPerWindow: quote('drawCapPerWindow'),
  windowSeconds: seconds,
  /** Balance the fund never goes below (zero at least). */
  floor: quote('floor'),
});

export const riskConfigSchema = z.strictObject({
  markets: z.array(marketConfigSchema).min(1),
  auction: auctionConfigSchema,
  insurance: insuranceConfigSchema,
});

export type MarketConfig = Omit<
  z.output<typeof marketConfigSchema>,
  | 'maxMarkAgeSeconds'
  | 'breakerConfirmSeconds'
  | 'priceWindowSeconds'
  | 'maxSequenceJump'
  | 'venueCheckHoldSeconds'
> & {
  readonly venueCheckHoldSeconds: number;
  readonly maxMarkAgeSeconds: number;
  readonly breakerConfirmSeconds: number;
  readonly priceWindowSeconds: number;
  readonly maxSequenceJump: number;
};
export type AuctionConfig = z.output<typeof auctionConfigSchema>;
export type InsuranceConfig = z.output<typeof insuranceConfigSchema>;
export type RiskConfig = Omit<z.output<typeof riskConfigSchema>, 'markets'> & {
  readonly markets: MarketConfig[];
};
export type RiskConfigInput = z.input<typeof riskConfigSchema>;

/** maxMarkAgeSeconds of a market that states none, at the least (two minutes: two ticks of a 1-minute feed). */
export const MIN_DEFAULT_MARK_AGE_SECONDS = 120;

/** breakerConfirmSeconds of a market that states none: a few prints of a 1-second feed. */
export const DEFAULT_BREAKER_CONFIRM_SECONDS = 5;

/** venueCheckHoldSeconds of a market that states none: five minutes for an operator to look at the feed. */
export const DEFAULT_VENUE_CHECK_HOLD_SECONDS = 300;

/** maxSequenceJump of a market that states none: about twelve days of a feed that ticks every second. */
export const DEFAULT_MAX_SEQUENCE_JUMP = 1_000_000;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const marketDefaults = {
  maintenanceMargin: '0.025',
  initialMargin: '0.05',
  liquidationFee: '0.01',
  slippageBound: '0.03',
  lastResortSlippageBound: '0.10',
  lastResortCooldownSeconds: 30,
  lastResortWaitSeconds: 60,
  maxCloseShare: '0.25',
  minSliceNotional: '1000',
  sliceAboveNotional: '100000',
  priceBand: '0.15',
  breakerConfirmSeconds: DEFAULT_BREAKER_CONFIRM_SECONDS,
  indexBand: '0.10',
  maxTickAgeSeconds: 60,
  maxClockSkewSeconds: 5,
  maxMarkAgeSeconds: 120,
} as const;

/** Defaults drawn from the reference systems (see docs in each field above). */
export const DEFAULT_RISK_CONFIG_INPUT: RiskConfigInput = {
  markets: [
    { symbol: 'ETH-USD', dustSize: '0.001', ...marketDefaults },
    { symbol: 'BTC-USD', dustSize: '0.0001', ...marketDefaults },
  ],
  auction: {
    buf: '1.02',
    curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 90 },
    tailSeconds: 3600,
    cusp: '0.6',
    penalty: '0.13',
    floor: '0.91',
    maxResets: 2,
  },
  insurance: { drawCapPerWindow: '1000000', windowSeconds: 3600, floor: '0' },
};

/**
 * An issue's path, followed for a market's by its symbol as given (`markets.27.maintenanceMargin (WIF-USD)`,
 * `markets.3.symbol ("eth-usd")`): in a file of 40 markets an index alone sends the operator counting.
 */
function issuePath(input: unknown, path: readonly PropertyKey[]): string {
  const joined = path.map(String).join('.') || '(root)';
  if (path[0] !== 'markets' || path.length < 2) return joined;
  const markets = (input as { markets?: unknown } | null)?.markets;
  const symbol = Array.isArray(markets)
    ? (markets[Number(path[1])] as { symbol?: unknown } | undefined)?.symbol
    : undefined;
  if (symbol === undefined) return joined;
  return `${joined} (${typeof symbol === 'string' && /^[A-Z0-9-]+$/.test(symbol) ? symbol : JSON.stringify(symbol)})`;
}

/** Validates a configuration; throws ConfigError listing every problem with its path. */
export function parseRiskConfig(input: unknown): RiskConfig {
  const result = riskConfigSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${issuePath(input, i.path)}: ${i.message}`);
    throw new ConfigError(`invalid risk config: ${problems.join('; ')}`);
  }
  const config: RiskConfig = {
    ...result.data,
    markets: result.data.markets.map((m) => ({
      ...m,
      maxMarkAgeSeconds:
        m.maxMarkAgeSeconds ?? Math.max(MIN_DEFAULT_MARK_AGE_SECONDS, 2 * m.maxTickAgeSeconds),
      breakerConfirmSeconds: m.breakerConfirmSeconds ?? DEFAULT_BREAKER_CONFIRM_SECONDS,
      priceWindowSeconds: m.priceWindowSeconds ?? 0,
      maxSequenceJump: m.maxSequenceJump ?? DEFAULT_MAX_SEQUENCE_JUMP,
      venueCheckHoldSeconds: m.venueCheckHoldSeconds ?? DEFAULT_VENUE_CHECK_HOLD_SECONDS,
    })),
  };
  const symbols = new Set<string>();
  for (const m of config.markets) {
    if (symbols.has(m.symbol))
      throw new ConfigError(`invalid risk config: market ${m.symbol} is listed twice`);
    symbols.add(m.symbol);
    if (m.maintenanceMargin <= 0n) throw new ConfigError(`${m.symbol}: maintenanceMargin must be > 0`);
    if (m.initialMargin <= m.maintenanceMargin) {
      throw new ConfigError(`${m.symbol}: initialMargin must be greater than maintenanceMargin`);
    }
    if (m.maxCloseShare <= 0n) throw new ConfigError(`${m.symbol}: maxCloseShare must be > 0`);
    refuseDustOffTheLot(m);
    if (m.lastResortSlippageBound <= 0n || m.lastResortSlippageBound < m.slippageBound) {
      throw new ConfigError(`${m.symbol}: lastResortSlippageBound must be > 0 and at least slippageBound`);
    }
    const lowestFloor = auctionFloorAtLeast(m.lastResortSlippageBound);
    if (config.auction.floor < lowestFloor) {
      throw new ConfigError(
        `${m.symbol}: auction.floor ${formatPpm(config.auction.floor)} lets an auction trade further from the mark than the last resort (lastResortSlippageBound ${formatPpm(m.lastResortSlippageBound)}): at least ${formatPpm(lowestFloor)}`,
      );
    }
    // 0 is not "off": every move would trip the breaker, every index would be refused (the market frozen).
    if (m.priceBand <= 0n) throw new ConfigError(`${m.symbol}: priceBand must be > 0 (there is no off)`);
    if (m.indexBand <= 0n) throw new ConfigError(`${m.symbol}: indexBand must be > 0 (there is no off)`);
    if (m.venueCheckBand !== undefined && m.venueCheckBand <= 0n)
      throw new ConfigError(`${m.symbol}: venueCheckBand must be > 0 (leave it out for no check)`);
    if (m.maxMarkAgeSeconds <= m.maxTickAgeSeconds) {
      throw new ConfigError(
        `${m.symbol}: maxMarkAgeSeconds (${m.maxMarkAgeSeconds}) must be above maxTickAgeSeconds (${m.maxTickAgeSeconds}): a tick accepted at its oldest would be too old to act on`,
      );
    }
    if (m.breakerConfirmSeconds >= m.maxMarkAgeSeconds) {
      throw new ConfigError(
        `${m.symbol}: breakerConfirmSeconds (${m.breakerConfirmSeconds}) must be below maxMarkAgeSeconds (${m.maxMarkAgeSeconds}): the mark would go stale before a real move could be followed`,
      );
    }
  }
  refuseMixedQuotes(config.markets);
  refuseUnreachableCurve(config.auction);
  return config;
}

/** lotSize of a market that states none: one base unit (1e-8), any size. */
export const DEFAULT_LOT_SIZE: BaseE8 = 1n;

/** A market's lot: its lotSize, or DEFAULT_LOT_SIZE when it states none. */
export const lotSizeOf = (market: Pick<MarketConfig, 'lotSize'>): BaseE8 =>
  market.lotSize ?? DEFAULT_LOT_SIZE;

/**
 * A lot is positive, and a dust (but 0, none) is a whole number of lots: every remainder is whole lots, so a dust
 * under one lot never applies, and one between two lots acts as the lot above it.
 */
function refuseDustOffTheLot(m: MarketConfig): void {
  const lot = lotSizeOf(m);
  if (lot <= 0n)
    throw new ConfigError(
      `${m.symbol}: lotSize must be > 0 (the exchange's lot, e.g. 0.001; leave it out for any size)`,
    );
  if (m.dustSize > 0n && m.dustSize % lot !== 0n) {
    const below = (m.dustSize / lot) * lot;
    const above = formatBase(below + lot);
    const effect = below === 0n ? 'never apply' : `act as ${above}`;
    const instead = below === 0n ? above : `${formatBase(below)} or ${above}`;
    throw new ConfigError(
      `${m.symbol}: dustSize ${formatBase(m.dustSize)} is not a whole number of lots (lotSize ${formatBase(lot)}): slices and remainders are whole lots, so it would ${effect}; make it ${instead} (or 0 for none)`,
    );
  }
}

/** The quote currency of a market's symbol (`ETH-USDT`: `USDT`): the currency of its prices and money. */
export const quoteOf = (symbol: string): string => symbol.slice(symbol.indexOf('-') + 1);

/** The base asset of a market's symbol (ETH of ETH-USD; the whole symbol when it has no '-'). */
export const baseOf = (symbol: string): string => symbol.split('-')[0]!;

/** The one quote currency of a parsed configuration: the currency of the insurance fund and of every amount. */
export const quoteCurrency = (config: Pick<RiskConfig, 'markets'>): string =>
  quoteOf(config.markets[0]!.symbol);

/**
 * Every market pays into and draws from one insurance fund, and the ledger, reports and alarms add amounts of all
 * markets together: USD, USDT and USDC added as if equal is wrong by their spread (a depeg makes it large). Until
 * a fund per quote currency exists, a configuration of more than one is refused, its markets named by quote.
 */
function refuseMixedQuotes(markets: readonly MarketConfig[]): void {
  const byQuote = new Map<string, string[]>();
  for (const m of markets) {
    const quote = quoteOf(m.symbol);
    const symbols = byQuote.get(quote) ?? [];
    symbols.push(m.symbol);
    byQuote.set(quote, symbols);
  }
  if (byQuote.size <= 1) return;
  const groups = [...byQuote].map(([quote, symbols]) => `${quote} (${symbols.join(', ')})`);
  throw new ConfigError(
    `invalid risk config: markets of ${byQuote.size} quote currencies, ${groups.join('; ')}: they share one insurance fund and its amounts would add ${[...byQuote.keys()].join(' and ')} as if equal; list markets of one quote currency only`,
  );
}

/**
 * The lowest auction floor a market's last-resort bound b allows: a sell auction's floor x mark at or above
 * mark x (1 - b), a buy auction's mark / floor at or below mark x (1 + b): 1 / (1 + b), rounded up (the stricter).
 */
export const auctionFloorAtLeast = (lastResortSlippageBound: Ppm): Ppm =>
  div(PPM_SCALE * PPM_SCALE, PPM_SCALE + lastResortSlippageBound, 'ceil');

/** Any mark: the check is a ratio to it (1,000 USD, far above a price's rounding). */
const REFERENCE_MARK: PriceE8 = 1_000n * PRICE_SCALE;

/**
 * A sell auction's lowest price before it must reset (the curve at its tail, or the cusp; the floor left out) must
 * come below the mark it opened at, or no bid under the mark is ever reached: every auction would walk its curve
 * and resets unfilled. The domain's own curve (lastPriceBeforeReset) at a reference mark; a buy auction mirrors it.
 */
function refuseUnreachableCurve(auction: AuctionConfig): void {
  const top = startPrice(REFERENCE_MARK, 'SELL', auction.buf);
  const lowest = lastPriceBeforeReset({ direction: 'SELL', top, startedAtMs: 0 }, REFERENCE_MARK, {
    ...auction,
    floor: 0n,
  });
  if (lowest < REFERENCE_MARK) return;
  const share = formatPpm(div(lowest * PPM_SCALE, REFERENCE_MARK, 'floor'));
  throw new ConfigError(
    `auction: the curve never comes below the mark before it resets (its lowest price is ${share} x the mark at tail or cusp): every auction would walk its curve and resets unfilled; lower buf, cut or cusp, or lengthen tailSeconds`,
  );
}

export const DEFAULT_RISK_CONFIG: RiskConfig = parseRiskConfig(DEFAULT_RISK_CONFIG_INPUT);

export function marketConfig(config: RiskConfig, symbol: string): MarketConfig {
  const market = config.markets.find((m) => m.symbol === symbol);
  if (!market) throw new ConfigError(`unknown market ${symbol}`);
  return market;
}

/** Max leverage a market allows: 1 / initial margin, rounded down. */
export const maxLeverage = (m: MarketConfig): bigint => 1_000_000n / m.initialMargin;

export type { BaseE8, Ppm, QuoteE6 };

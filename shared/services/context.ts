import type { AdlCandidate } from '../domain/adl.ts';
import type { RiskConfig } from '../domain/config.ts';
import type { InsuranceState } from '../domain/insurance.ts';
import type { Fill, Side } from '../domain/model.ts';
import type { BaseE8, PriceE8 } from '../domain/units.ts';
import type {
  Adapters,
  LiquidationRecord,
  MarketRepository,
  MarketState,
  PositionRecord,
  PositionRepository,
  Telemetry,
  Venue,
} from '../ports/index.ts';
import type { AdlSnapshots } from './adl-snapshots.ts';

/** What the liquidation and auction services need: the adapter bundle, a venue and the rules. */
export interface SettlementDeps extends Adapters {
  readonly venue: Venue;
  readonly config: RiskConfig;
  readonly telemetry: Telemetry;
  /** 'market-only' dumps every liquidation into the book whatever the price (the comparison baseline). */
  readonly strategy: 'waterfall' | 'market-only';
  /** Ledger account of the insurance fund. */
  readonly insuranceAccount: string;
  /** Attempts at the venue before the remainder goes to the auction. */
  readonly venueAttempts: number;
  /** ADL rankings kept between settlements at one mark (absent: every ADL settlement reads its whole side). */
  readonly adlSnapshots?: AdlSnapshots;
  /**
   * Waits before attempt `attempt` (2, 3, ...) of a step that lost a race on shared records (a provider's capital),
   * so concurrent losers spread out instead of colliding again. Absent: retry at once (the sequential engine).
   */
  readonly backoff?: (attempt: number) => Promise<void>;
}

/** Full-jitter exponential backoff: a random wait up to 25 ms x 2^attempt, at most 400 ms. */
export const jitteredBackoff = (attempt: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(400, 25 * 2 ** attempt)));

export const INSURANCE_ACCOUNT = 'insurance-fund';

/**
 * What a liquidation remembers between steps, beyond the record's own fields. Stored in
 * LiquidationRecord.context as JSON with bigints as decimal strings; owned by the services only.
 */
export interface LiquidationContext {
  /** Size this liquidation closes (a slice, or the whole position). */
  readonly plannedSize: BaseE8;
  /** Mark at execution (the re-check and the slippage reference) and its time. */
  readonly executionMark: PriceE8;
  readonly executionMarkAtMs?: number;
  /** Worst acceptable price of the market order (fixed at the claim, so a retry places the same order). */
  readonly limitPrice?: PriceE8;
  /** Version of the LIQUIDATING position this liquidation works on; any other version means a stale reader. */
  readonly positionVersion?: number;
  readonly auctionId?: string;
  /** Set once the settlement inputs are frozen: a retry recomputes the very same plan from them. */
  readonly settle?: {
    readonly insurance: InsuranceState;
    readonly nowMs: number;
    readonly mark: PriceE8;
    /** The liquidated position as the plan saw it. */
    readonly position: {
      readonly size: BaseE8;
      readonly collateral: bigint;
      readonly entryPrice: PriceE8;
      readonly version: number;
    };
    /** Only the counterparties the plan uses, in rank order (bounded by one transaction). */
    readonly candidates?: readonly (AdlCandidate & { readonly version: number })[];
    readonly auctionFills: readonly Fill[];
    /** Fills of the last-resort market order, once placed. */
    readonly lastResortFills?: readonly Fill[];
  };
  /** Last-resort orders that filled nothing so far: the next one's client order id ends with this number. */
  readonly lastResortAttempt?: number;
  /** The next slice of the same position, started atomically with this one's settlement. */
  readonly nextLiquidationId?: string;
}

/**
 * Bigints are stored as decimal strings tagged with a trailing "n". A string that would read as a tag (a
 * position id "42n") or that starts with the escape is stored behind a leading backslash, removed on decoding, so
 * every string comes back as itself.
 */
const BIGINT_TAG = /^-?\d+n$/;
const ESCAPE = '\\';

/** A string as stored: behind the escape when it would read as a bigint tag or starts with the escape. */
const storedString = (value: string): string =>
  (value.endsWith('n') && BIGINT_TAG.test(value)) || value.startsWith(ESCAPE) ? ESCAPE + value : value;

/**
 * The value with bigints as tagged strings and strings as stored, for a plain JSON.stringify: about twice as fast
 * as a replacer function, which costs a call per key (contexts are encoded at every transition).
 */
function tagged(value: unknown): unknown {
  switch (typeof value) {
    case 'bigint':
      return `${value}n`;
    case 'string':
      return storedString(value);
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) return value.map(tagged);
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) out[key] = tagged((value as Record<string, unknown>)[key]);
      return out;
    }
    default:
      return value;
  }
}

const decodeValue = (_key: string, value: unknown): unknown => {
  if (typeof value !== 'string') return value;
  if (value.startsWith(ESCAPE)) return value.slice(1);
  return BIGINT_TAG.test(value) ? BigInt(value.slice(0, -1)) : value;
};

export function encodeContext(context: LiquidationContext): string {
  const text = JSON.stringify(tagged(context));
  remember(text, context);
  return text;
}

export function decodeContext(record: LiquidationRecord): LiquidationContext | undefined {
  if (record.context === undefined) return undefined;
  const known = recent.get(record.context);
  if (known) return known;
  const context = parseContext(record.context);
  remember(record.context, context);
  return context;
}

/** encodeContext's inverse, always parsing (decodeContext serves what it encoded or parsed lately). */
export function parseContext(text: string): LiquidationContext {
  return JSON.parse(text, decodeValue) as LiquidationContext;
}

/**
 * Contexts this container encoded or decoded lately, by their text: a liquidation's next step reads back the
 * context its last step wrote (a settlement decoded each one about five times). Contexts are never changed
 * in place (readonly throughout), so one object can serve every reader; one encoded carries at most keys whose
 * value is undefined where its decoding has none, which no reader tells apart.
 */
const recent = new Map<string, LiquidationContext>();
const RECENT_CONTEXTS = 512;

function remember(text: string, context: LiquidationContext): void {
  if (recent.size >= RECENT_CONTEXTS) recent.delete(recent.keys().next().value as string);
  recent.set(text, context);
}

export const oppositeSide = (side: Side): Side => (side === 'LONG' ? 'SHORT' : 'LONG');
export const closeDirection = (side: Side): 'BUY' | 'SELL' => (side === 'LONG' ? 'SELL' : 'BUY');

/** Latest accepted mark for a symbol and its time; falls back to `fallback` when none is recorded. */
export async function latestMark(
  markets: MarketRepository,
  symbol: string,
  fallback: PriceE8,
  nowMs: number,
): Promise<{ readonly mark: PriceE8; readonly atMs: number }> {
  return markOfMarket(await markets.get(symbol), fallback, nowMs);
}

/** The mark of a market's last accepted tick, or `fallback` (now) before its first. */
export function markOfMarket(
  market: MarketState | undefined,
  fallback: PriceE8,
  nowMs: number,
): { readonly mark: PriceE8; readonly atMs: number } {
  const tick = market?.lastTick;
  return tick ? { mark: tick.markPrice, atMs: tick.timestampMs } : { mark: fallback, atMs: nowMs };
}

/** Every OPEN position of one side of a market, through the index (ADL candidates; rare, bounded by pages). */
export async function openPositions(
  positions: PositionRepository,
  symbol: string,
  side: Side,
  maxPages = 100,
): Promise<PositionRecord[]> {
  // Longs are "crossed" when liquidationPrice >= mark: mark 0 returns them all; shorts mirror with a huge mark.
  const everything = side === 'LONG' ? 0n : 10n ** 30n;
  const found: PositionRecord[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const result = await positions.queryCrossed(symbol, side, everything, 1000, cursor);
    found.push(...result.positions);
    cursor = result.cursor;
    if (cursor === undefined) break;
  }
  return found;
}

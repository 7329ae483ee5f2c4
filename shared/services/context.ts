import { marketConfig, type RiskConfig } from '../domain/config.ts';
import type { Side } from '../domain/model.ts';
import { markIsStale } from '../domain/tick.ts';
import type { PriceE8 } from '../domain/units.ts';
import { METRICS } from '../metrics.ts';
import type {
  Adapters,
  LiquidationContext,
  MarketRepository,
  MarketState,
  QueueTransport,
  Telemetry,
  Venue,
} from '../ports/index.ts';
import type { AdlSnapshots } from './adl-snapshots.ts';

/** What the liquidation and auction services need: the adapter bundle, a venue and the rules. */
export interface SettlementDeps extends Adapters {
  readonly venue: Venue;
  readonly config: RiskConfig;
  readonly telemetry: Telemetry;
  /** 'market-only' dumps every liquidation's whole position into the book whatever the price (the comparison baseline). */
  readonly strategy: 'waterfall' | 'market-only';
  /** Ledger account of the insurance fund. */
  readonly insuranceAccount: string;
  /** Attempts at the venue before the remainder goes to the auction. */
  readonly venueAttempts: number;
  /** ADL rankings kept between settlements at one mark (absent: every ADL settlement ranks its side again). */
  readonly adlSnapshots?: AdlSnapshots;
  /**
   * Waits before attempt `attempt` (2, 3, ...) of a step that lost a race on shared records (a provider's capital),
   * so concurrent losers spread out instead of colliding again. Absent: retry at once (the sequential engine).
   */
  readonly backoff?: (attempt: number) => Promise<void>;
  /** How long a delivery holds a liquidation's order lease (default ORDER_LEASE_MS). */
  readonly orderLeaseMs?: number;
}

/**
 * A delivery's lease on a liquidation's venue orders: longer than the timeout of every function that places them
 * (the liquidation consumer and the auction, 60 s), so a holder that died has ended when it runs out, and shorter
 * than their queues' visibility timeout (360 s), so the message of a holder that died finds it run out.
 */
export const ORDER_LEASE_MS = 90_000;

/** Full-jitter exponential backoff: a random wait up to 25 ms x 2^attempt, at most 400 ms. */
export const jitteredBackoff = (attempt: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(400, 25 * 2 ** attempt)));

export const INSURANCE_ACCOUNT = 'insurance-fund';

export type { LiquidationContext };

export const oppositeSide = (side: Side): Side => (side === 'LONG' ? 'SHORT' : 'LONG');
export const closeDirection = (side: Side): 'BUY' | 'SELL' => (side === 'LONG' ? 'SELL' : 'BUY');

/** Latest accepted mark for a symbol and its time; falls back to `fallback` when none is recorded. */
export async function latestMark(
  markets: Pick<MarketRepository, 'get'>,
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

/**
 * A decision (a re-check, a settlement's plan, an auction step, an ADL round) found its market's last mark older
 * than maxMarkAgeSeconds: acting on it could liquidate a position that is healthy at the real price, or pay and
 * deleverage at a price the market left. The message waits for a fresh tick instead (`waitForFreshMark`).
 */
export class MarkStaleError extends Error {
  override readonly name = 'MarkStaleError';
  constructor(
    readonly symbol: string,
    readonly ageMs: number,
    maxAgeSeconds: number,
  ) {
    super(
      `mark/stale: the last mark of ${symbol} is ${Math.floor(ageMs / 1000)} s old (at most ${maxAgeSeconds} s to act on)`,
    );
  }
}

/** `mark` when it is fresh enough to act on now; else throws MarkStaleError. */
export function requireFreshMark<T extends { readonly atMs: number }>(
  mark: T,
  symbol: string,
  deps: Pick<SettlementDeps, 'config' | 'clock'>,
): T {
  const market = marketConfig(deps.config, symbol);
  const now = deps.clock.nowMs();
  if (markIsStale(mark.atMs, now, market))
    throw new MarkStaleError(symbol, now - mark.atMs, market.maxMarkAgeSeconds);
  return mark;
}

/**
 * The Market dimension of a message's symbol (metrics.ts byMarket), when it names a configured market: a message of
 * an earlier version has none, and each value is a custom metric billed.
 */
export const messageMarket = (
  symbol: string | undefined,
  config: Pick<RiskConfig, 'markets'>,
): { readonly Market: string } | undefined =>
  symbol !== undefined && config.markets.some((m) => m.symbol === symbol) ? { Market: symbol } : undefined;

/**
 * How long a message waits for a fresh mark before it looks again: a feed that comes back is acted on within this,
 * and an outage costs each waiting liquidation or auction a message this often (no write, no order).
 */
export const STALE_MARK_WAIT_SECONDS = 30;

/**
 * Sends `body` again after STALE_MARK_WAIT_SECONDS: the delivery that met a stale mark ends without a failure (a
 * feed outage must not walk messages to their dead-letter queues), its message comes back, and the wait is counted
 * (`StaleMarkWaits`, alarmed).
 */
export async function waitForFreshMark(
  error: MarkStaleError,
  queue: QueueTransport,
  body: string,
  deps: Pick<SettlementDeps, 'telemetry'>,
  logKeys: Record<string, string | number>,
): Promise<void> {
  await queue.send(body, STALE_MARK_WAIT_SECONDS);
  deps.telemetry.count(METRICS.StaleMarkWaits.name, 1, { Market: error.symbol });
  deps.telemetry.info('mark too old to act on; waiting for a fresh tick', {
    ...logKeys,
    symbol: error.symbol,
    markAgeSeconds: Math.floor(error.ageMs / 1000),
  });
}

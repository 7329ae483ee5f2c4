import type { Clock, MarketRepository, OrderRequest, OrderResult, Venue } from '../../ports/index.ts';
import { SimulatedVenue, type SimulatedVenueOptions } from './simulated.ts';

/**
 * The simulated order book for a deployed or local stack: before each order it moves the book's reference to the
 * market's last accepted mark (the order's reference, or a read of the markets table), so its depth and spread
 * follow the real tick stream.
 * Client-order-id idempotency lives in memory, per container: a real exchange adapter keeps it on the exchange.
 */
export class MarkFollowingVenue implements Venue {
  /** The book it trades on (tests: its faults and its record of executions). */
  readonly book: SimulatedVenue;
  readonly #markets: MarketRepository;
  /** Time of the last mark followed, per symbol. */
  readonly #seen = new Map<string, number>();

  constructor(markets: MarketRepository, clock: Clock, options: Omit<SimulatedVenueOptions, 'clock'> = {}) {
    this.#markets = markets;
    this.book = new SimulatedVenue({ ...options, clock });
  }

  async placeIoc(order: OrderRequest): Promise<OrderResult> {
    await this.#follow(order.symbol, order.reference);
    return this.book.placeIoc(order);
  }

  async quote(
    symbol: string,
    reference?: OrderRequest['reference'],
  ): Promise<{ bid?: bigint; ask?: bigint }> {
    await this.#follow(symbol, reference);
    return this.book.quote(symbol);
  }

  /**
   * Moves the book to the caller's mark when given (no read of the markets table), else to the market's last
   * tick; once per tick, so repeated orders do not count as price moves in the volatility estimate, and only
   * forward: a caller holding an older mark does not take the book back to it.
   */
  async #follow(symbol: string, reference?: OrderRequest['reference']): Promise<void> {
    const tick = reference
      ? { markPrice: reference.mark, timestampMs: reference.atMs }
      : (await this.#markets.get(symbol))?.lastTick;
    if (!tick || tick.timestampMs <= (this.#seen.get(symbol) ?? Number.NEGATIVE_INFINITY)) return;
    this.#seen.set(symbol, tick.timestampMs);
    this.book.onTick(symbol, tick.markPrice, tick.timestampMs);
  }
}

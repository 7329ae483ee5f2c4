import type { Clock, MarketRepository, OrderRequest, OrderResult, Venue } from '../../ports/index.ts';
import { SimulatedVenue, type SimulatedVenueOptions } from './simulated.ts';

/**
 * The simulated order book for a deployed or local stack: before each order it moves the book's reference to the
 * market's last accepted mark (the order's reference, or a read of the markets table), so its depth and spread
 * follow the real tick stream.
 * Client-order-id idempotency lives in memory, per container: a real exchange adapter keeps it on the exchange.
 */
export class MarkFollowingVenue implements Venue {
  readonly #venue: SimulatedVenue;
  readonly #markets: MarketRepository;
  /** Time of the last mark followed, per symbol. */
  readonly #seen = new Map<string, number>();

  constructor(markets: MarketRepository, clock: Clock, options: Omit<SimulatedVenueOptions, 'clock'> = {}) {
    this.#markets = markets;
    this.#venue = new SimulatedVenue({ ...options, clock });
  }

  async placeIoc(order: OrderRequest): Promise<OrderResult> {
    if (order.reference) {
      // The caller read the mark already: follow it without another read of the markets table (once per tick,
      // so repeated orders do not count as price moves in the volatility estimate).
      if (this.#seen.get(order.symbol) !== order.reference.atMs) {
        this.#seen.set(order.symbol, order.reference.atMs);
        this.#venue.onTick(order.symbol, order.reference.mark, order.reference.atMs);
      }
    } else {
      await this.#follow(order.symbol);
    }
    return this.#venue.placeIoc(order);
  }

  async quote(symbol: string): Promise<{ bid?: bigint; ask?: bigint }> {
    await this.#follow(symbol);
    return this.#venue.quote(symbol);
  }

  async #follow(symbol: string): Promise<void> {
    const tick = (await this.#markets.get(symbol))?.lastTick;
    if (!tick || this.#seen.get(symbol) === tick.timestampMs) return;
    this.#seen.set(symbol, tick.timestampMs);
    this.#venue.onTick(symbol, tick.markPrice, tick.timestampMs);
  }
}

import type { Clock, MarketRepository, OrderRequest, OrderResult, Venue } from '../../ports/index.ts';
import { SimulatedVenue, type SimulatedVenueOptions } from './simulated.ts';

/**
 * The simulated order book for a deployed or local stack: before each order it moves the book's reference to the
 * market's last accepted mark (from the markets table), so its depth and spread follow the real tick stream.
 * Client-order-id idempotency lives in memory, per container: a real exchange adapter keeps it on the exchange.
 */
export class MarkFollowingVenue implements Venue {
  readonly #venue: SimulatedVenue;
  readonly #markets: MarketRepository;
  readonly #seen = new Map<string, number>();

  constructor(markets: MarketRepository, clock: Clock, options: Omit<SimulatedVenueOptions, 'clock'> = {}) {
    this.#markets = markets;
    this.#venue = new SimulatedVenue({ ...options, clock });
  }

  async placeIoc(order: OrderRequest): Promise<OrderResult> {
    await this.#follow(order.symbol);
    return this.#venue.placeIoc(order);
  }

  async quote(symbol: string): Promise<{ bid?: bigint; ask?: bigint }> {
    await this.#follow(symbol);
    return this.#venue.quote(symbol);
  }

  async #follow(symbol: string): Promise<void> {
    const tick = (await this.#markets.get(symbol))?.lastTick;
    if (!tick || this.#seen.get(symbol) === tick.sequence) return;
    this.#seen.set(symbol, tick.sequence);
    this.#venue.onTick(symbol, tick.markPrice, tick.timestampMs);
  }
}

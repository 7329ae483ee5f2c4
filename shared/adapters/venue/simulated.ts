import type { Fill } from '../../domain/model.ts';
import { type BaseE8, minBig, type PriceE8 } from '../../domain/units.ts';
import {
  type Clock,
  type OrderRequest,
  type OrderResult,
  type Venue,
  VenueError,
} from '../../ports/index.ts';
import {
  type BookShape,
  type BookSide,
  bookShape,
  decayImpact,
  depthShare,
  impactedMid,
  impactOf,
  level,
  nextVolatility,
} from './book-model.ts';
import { resolveMarketConfig, type SimulatedMarketConfig } from './config.ts';

export { DEFAULT_SIMULATED_MARKET, type SimulatedMarketConfig, VenueConfigError } from './config.ts';

/**
 * A simulated venue with one order book per symbol around a reference price (see config.ts for the model
 * and its calibration). Our own IOC orders walk the book level by level up to their limit price and move
 * the mid by the impact of what they took; that impact persists and decays back to the reference with a
 * half-life, so a cascade of forced sells deepens the crash. Deterministic: no randomness, time from the
 * Clock port (placeIoc, quote) and from onTick's nowMs.
 */

/** Fault of one order: a timeout before or after execution (then the answer is lost), a rejection, an outage. */
export type VenueFault = 'timeout' | 'timeout-after-fill' | 'reject' | 'unavailable';

export interface VenueFaults {
  /** Asked for every new order (never for a repeated clientOrderId); may use a caller's seeded PRNG. */
  plan?: ((order: OrderRequest, orderNumber: number) => VenueFault | undefined) | undefined;
  /** Cap on the size one order may fill (partial fills). */
  maxFillPerOrder?: BaseE8 | undefined;
  /** Symbols whose book is empty: orders fill nothing (status NONE) and quote() is {}. */
  readonly emptyBooks: Set<string>;
  /** Faults for the next orders, one each, in order (before `plan`). */
  readonly queued: VenueFault[];
}

export interface SimulatedVenueOptions {
  readonly clock: Clock;
  /** Overrides of the default market model for every symbol. */
  readonly defaults?: Partial<SimulatedMarketConfig>;
  /** Per-symbol overrides on top of `defaults`. */
  readonly markets?: Readonly<Record<string, Partial<SimulatedMarketConfig>>>;
}

/** What the model holds for one symbol; `mid` is reference * e^impact at `atMs`. */
export interface MarketSnapshot {
  readonly reference: PriceE8;
  readonly mid: PriceE8;
  /** EWMA of |log return| per tick. */
  readonly volatility: number;
  /** Log offset of the mid from the reference caused by our orders (negative after sells). */
  readonly impact: number;
  readonly halfSpreadPpm: number;
  readonly depthShare: number;
  readonly atMs: number;
}

interface BookState {
  readonly config: SimulatedMarketConfig;
  reference: PriceE8;
  volatility: number;
  impact: number;
  impactAtMs: number;
}

export class SimulatedVenue implements Venue {
  readonly faults: VenueFaults = { emptyBooks: new Set(), queued: [] };
  readonly #clock: Clock;
  readonly #defaults: Partial<SimulatedMarketConfig>;
  readonly #overrides: Readonly<Record<string, Partial<SimulatedMarketConfig>>>;
  readonly #books = new Map<string, BookState>();
  readonly #orders = new Map<string, OrderResult>();
  /** Base our orders bought minus sold, per symbol: the venue's own record of its executions. */
  readonly #traded = new Map<string, BaseE8>();
  /** Quote (price x size, 1e-16) our orders paid minus received, per symbol: the rest of that record. */
  readonly #paid = new Map<string, bigint>();
  #orderNumber = 0;
  /** Faults new orders took from `faults.queued`, ever: where injectFault's report looks. */
  #queuedTaken = 0;

  constructor(options: SimulatedVenueOptions) {
    this.#clock = options.clock;
    this.#defaults = options.defaults ?? {};
    this.#overrides = options.markets ?? {};
    resolveMarketConfig(this.#defaults);
    for (const symbol of Object.keys(this.#overrides)) this.#configFor(symbol);
  }

  /** Queues faults for the next new orders (one order each). */
  injectFaults(...faults: VenueFault[]): void {
    this.faults.queued.push(...faults);
  }

  /**
   * Queues `fault` for the next new order, and answers whether an order has taken it yet: the venue contract's proof
   * that a fault it injected took effect (a repeat of a known id takes none: venue51-fault-proved).
   */
  injectFault(fault: VenueFault): () => boolean {
    const position = this.#queuedTaken + this.faults.queued.length;
    this.faults.queued.push(fault);
    return () => this.#queuedTaken > position;
  }

  /**
   * Sets the external reference price (e.g. the replayed candle's close) and updates the volatility EWMA
   * with its log return; our impact decays to nowMs. The first tick of a symbol opens its book.
   */
  onTick(symbol: string, mark: PriceE8, nowMs: number): void {
    if (typeof mark !== 'bigint' || mark <= 0n)
      throw new VenueError(`venue/bad-mark: ${symbol} ${mark}`, 'rejected');
    const book = this.#books.get(symbol);
    if (!book) {
      this.#books.set(symbol, {
        config: this.#configFor(symbol),
        reference: mark,
        volatility: 0,
        impact: 0,
        impactAtMs: nowMs,
      });
      return;
    }
    this.#decay(book, nowMs);
    book.volatility = nextVolatility(book.volatility, book.reference, mark, book.config.volHalfLifeTicks);
    book.reference = mark;
  }

  async placeIoc(order: OrderRequest): Promise<OrderResult> {
    const known = this.#orders.get(order.clientOrderId);
    if (known) return known;
    checkOrder(order);
    const book = this.#books.get(order.symbol);
    if (!book) throw new VenueError(`venue/unknown-symbol: ${order.symbol} has no book`, 'rejected');
    this.#orderNumber += 1;
    const queued = this.faults.queued.shift();
    if (queued !== undefined) this.#queuedTaken += 1;
    const fault = queued ?? this.faults.plan?.(order, this.#orderNumber);
    if (fault === 'reject') throw new VenueError(`venue/rejected: ${order.clientOrderId}`, 'rejected');
    if (fault === 'unavailable') throw new VenueError(`venue/unavailable: ${order.symbol}`, 'unavailable');
    if (fault === 'timeout') throw new VenueError(`venue/timeout: ${order.clientOrderId}`, 'timeout');
    const result = this.#execute(book, order);
    this.#orders.set(order.clientOrderId, result);
    if (fault === 'timeout-after-fill') {
      throw new VenueError(`venue/timeout: ${order.clientOrderId} (executed, answer lost)`, 'timeout');
    }
    return result;
  }

  async quote(symbol: string): Promise<{ bid?: PriceE8; ask?: PriceE8 }> {
    const book = this.#books.get(symbol);
    if (!book || this.faults.emptyBooks.has(symbol)) return {};
    const shape = this.#shape(book, this.#clock.nowMs());
    const bid = bestLevel(shape, book.config, 'bid');
    const ask = bestLevel(shape, book.config, 'ask');
    return { ...(bid && { bid }), ...(ask && { ask }) };
  }

  /** Model state of a symbol now (reports and tests); undefined before its first tick. */
  snapshot(symbol: string): MarketSnapshot | undefined {
    const book = this.#books.get(symbol);
    if (!book) return undefined;
    const now = this.#clock.nowMs();
    const shape = this.#shape(book, now);
    return {
      reference: book.reference,
      mid: shape.mid,
      volatility: book.volatility,
      impact: book.impact,
      halfSpreadPpm: shape.halfSpreadPpm,
      depthShare: depthShare(book.volatility, book.config),
      atMs: now,
    };
  }

  /**
   * Base our orders bought minus sold on `symbol` so far, as the book executed them, not as any answer said (the
   * venue contract checks each answer against it: test/contract/venue-suite.ts).
   */
  traded(symbol: string): BaseE8 {
    return this.#traded.get(symbol) ?? 0n;
  }

  /** Quote our orders paid for what they bought minus received for what they sold on `symbol`: each fill's price x size. */
  paid(symbol: string): bigint {
    return this.#paid.get(symbol) ?? 0n;
  }

  /** The first `count` levels of each side now (tests and charts). */
  levels(symbol: string, count: number): { bids: Fill[]; asks: Fill[] } {
    const book = this.#books.get(symbol);
    if (!book || this.faults.emptyBooks.has(symbol)) return { bids: [], asks: [] };
    const shape = this.#shape(book, this.#clock.nowMs());
    const side = (s: BookSide): Fill[] => {
      const out: Fill[] = [];
      for (let i = 0; i < count; i += 1) {
        const l = level(shape, book.config, s, i);
        if (!l) break;
        out.push(l);
      }
      return out;
    };
    return { bids: side('bid'), asks: side('ask') };
  }

  /** Walks the book from the best level while the price is within the limit; moves the mid by the impact. */
  #execute(book: BookState, order: OrderRequest): OrderResult {
    const none: OrderResult = { clientOrderId: order.clientOrderId, fills: [], status: 'NONE' };
    if (this.faults.emptyBooks.has(order.symbol)) return none;
    const cap = this.faults.maxFillPerOrder;
    const wanted = cap === undefined ? order.size : minBig(cap, order.size);
    const side: BookSide = order.direction === 'SELL' ? 'bid' : 'ask';
    const shape = this.#shape(book, this.#clock.nowMs());
    const fills: Fill[] = [];
    let filled = 0n;
    for (let i = 0; filled < wanted; i += 1) {
      const l = level(shape, book.config, side, i);
      if (!l) break;
      if (side === 'bid' ? l.price < order.limitPrice : l.price > order.limitPrice) break;
      // Level sizes are whole lots; what is left of the order is taken in whole lots too (an audit, session 36).
      const wholeLots = wanted - filled - ((wanted - filled) % book.config.lotSize);
      if (wholeLots === 0n) break;
      const take = minBig(l.size, wholeLots);
      if (take <= 0n) continue;
      const last = fills[fills.length - 1];
      // Adjacent levels can round to the same tick: report one fill per price.
      if (last?.price === l.price) fills[fills.length - 1] = { price: l.price, size: last.size + take };
      else fills.push({ price: l.price, size: take });
      filled += take;
    }
    if (filled === 0n) return none;
    book.impact += impactOf(shape, side, filled, book.config.impactRetention);
    const signed = order.direction === 'BUY' ? filled : -filled;
    this.#traded.set(order.symbol, this.traded(order.symbol) + signed);
    const notional = fills.reduce((total, f) => total + f.price * f.size, 0n);
    this.#paid.set(
      order.symbol,
      this.paid(order.symbol) + (order.direction === 'BUY' ? notional : -notional),
    );
    return {
      clientOrderId: order.clientOrderId,
      fills,
      status: filled === order.size ? 'FILLED' : 'PARTIAL',
    };
  }

  #shape(book: BookState, nowMs: number): BookShape {
    this.#decay(book, nowMs);
    return bookShape(
      impactedMid(book.reference, book.impact, book.config.priceTick),
      book.volatility,
      book.config,
    );
  }

  #decay(book: BookState, nowMs: number): void {
    if (nowMs <= book.impactAtMs) return;
    book.impact = decayImpact(book.impact, nowMs - book.impactAtMs, book.config.impactHalfLifeSeconds);
    book.impactAtMs = nowMs;
  }

  #configFor(symbol: string): SimulatedMarketConfig {
    return resolveMarketConfig({ ...this.#defaults, ...this.#overrides[symbol] });
  }
}

function bestLevel(shape: BookShape, config: SimulatedMarketConfig, side: BookSide): PriceE8 | undefined {
  for (let i = 0; ; i += 1) {
    const l = level(shape, config, side, i);
    if (!l) return undefined;
    if (l.size > 0n) return l.price;
  }
}

function checkOrder(order: OrderRequest): void {
  const bad = (why: string): never => {
    throw new VenueError(`venue/bad-order: ${order.clientOrderId}: ${why}`, 'rejected');
  };
  if (typeof order.clientOrderId !== 'string' || order.clientOrderId.length === 0)
    bad('clientOrderId is empty');
  if (order.direction !== 'BUY' && order.direction !== 'SELL') bad(`direction ${String(order.direction)}`);
  if (typeof order.size !== 'bigint' || order.size <= 0n) bad('size must be a positive BaseE8');
  if (typeof order.limitPrice !== 'bigint' || order.limitPrice <= 0n)
    bad('limitPrice must be a positive PriceE8');
}

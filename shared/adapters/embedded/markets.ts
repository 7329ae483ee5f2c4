import {
  type AcceptedTick,
  ConditionFailedError,
  type MarketRepository,
  type MarketState,
} from '../../ports/index.ts';
import { fire, frozenCopy, type HookRef, requireId } from './internal.ts';

/**
 * Market state per symbol. Semantics pinned here (the AWS adapter must match):
 * - acceptTick: condition "stored lastTick.sequence === expectedLastSequence" (undefined: no tick yet);
 *   sets lastTick, and sets pendingSequence to the tick's sequence when `pending`, removes it otherwise.
 * - clearPending: removes pendingSequence only when it equals `sequence`; otherwise a no-op (no hook).
 * - tripBreaker: the first trip wins; tripping a tripped breaker is a no-op (redelivered ticks).
 * - resetBreaker: removes the breaker; a no-op when none.
 */
export class EmbeddedMarketRepository implements MarketRepository {
  readonly #states = new Map<string, MarketState>();
  readonly #hook: HookRef;

  constructor(hook: HookRef = {}) {
    this.#hook = hook;
  }

  async get(symbol: string): Promise<MarketState | undefined> {
    return this.#states.get(symbol);
  }

  async acceptTick(
    symbol: string,
    tick: AcceptedTick,
    expectedLastSequence: number | undefined,
    pending: boolean,
  ): Promise<void> {
    requireId(symbol, 'markets');
    const current = this.#states.get(symbol);
    const stored = current?.lastTick?.sequence;
    if (stored !== expectedLastSequence) {
      throw new ConditionFailedError(
        `markets/sequence-mismatch: ${symbol} last sequence is ${stored ?? 'none'}, not ${expectedLastSequence ?? 'none'}`,
      );
    }
    this.#set({
      ...current,
      symbol,
      lastTick: tick,
      pendingSequence: pending ? tick.sequence : undefined,
    });
    fire(this.#hook, 'markets.acceptTick');
  }

  async clearPending(symbol: string, sequence: number): Promise<void> {
    const current = this.#states.get(symbol);
    if (current?.pendingSequence !== sequence) return;
    this.#set({ ...current, pendingSequence: undefined });
    fire(this.#hook, 'markets.clearPending');
  }

  async tripBreaker(symbol: string, reason: string, tick: AcceptedTick, atMs: number): Promise<void> {
    requireId(symbol, 'markets');
    const current = this.#states.get(symbol);
    if (current?.breaker) return;
    this.#set({ ...current, symbol, breaker: { reason, trippedAtMs: atMs, tick } });
    fire(this.#hook, 'markets.tripBreaker');
  }

  async resetBreaker(symbol: string): Promise<void> {
    const current = this.#states.get(symbol);
    if (!current?.breaker) return;
    this.#set({ ...current, breaker: undefined });
    fire(this.#hook, 'markets.resetBreaker');
  }

  #set(state: MarketState): void {
    this.#states.set(state.symbol, frozenCopy(state));
  }
}

import { sleep as realSleep } from '../backoff.ts';
import type { TickVerdict } from '../domain/tick.ts';
import type { MarketRepository, MarketState } from '../ports/index.ts';

/**
 * What became of a tick an operator put on the bus. Margin-check leaves a trace of a tick only when it accepts it
 * (the market's last tick) or its breaker holds it (a trip, or a market's first print waiting for a second); a
 * tick it refuses otherwise (a duplicate, too old, out of the index band...) changes nothing. So the fate of a
 * tick is read from the market record, and a refusal that leaves no trace is foretold by the domain's own rule
 * (evaluateTick) on the market as it stood when the tick was sent.
 */
export type TickFate =
  | { readonly outcome: 'accepted' }
  /** The breaker holds it: `reason` is why (tick/unconfirmed: a market's first print, which waits for a second). */
  | { readonly outcome: 'held'; readonly reason: string }
  /** Refused without a trace, as margin-check judges it on the market as it stood. */
  | { readonly outcome: 'refused'; readonly reason: string; readonly detail: string }
  /** Not on the market record after the wait: the stack is not running, or it refused the tick since. */
  | { readonly outcome: 'not-handled'; readonly waitedMs: number }
  /** Not waited for (--wait 0): what margin-check should make of it (`reason`: why the breaker would hold it). */
  | { readonly outcome: 'sent'; readonly expected: 'accept' }
  | { readonly outcome: 'sent'; readonly expected: 'hold'; readonly reason: string };

/** The tick's fate as the market record shows it, if it shows one. */
export function fateOnRecord(state: MarketState | undefined, sequence: number): TickFate | undefined {
  if (state?.lastTick?.sequence === sequence) return { outcome: 'accepted' };
  if (state?.breaker?.tick.sequence === sequence) return { outcome: 'held', reason: state.breaker.reason };
  return undefined;
}

export interface AwaitFateOptions {
  readonly markets: Pick<MarketRepository, 'get'>;
  readonly symbol: string;
  readonly sequence: number;
  /** What margin-check makes of the tick on the market as it was when sent (domain/tick.ts evaluateTick). */
  readonly verdict: TickVerdict;
  readonly waitMs: number;
  readonly pollMs: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Waits (up to waitMs) for the market record to show the tick; a refusal that leaves no trace is not waited for. */
export async function awaitTickFate(options: AwaitFateOptions): Promise<TickFate> {
  const { verdict } = options;
  if (verdict.verdict === 'reject' && !verdict.tripBreaker)
    return { outcome: 'refused', reason: verdict.reason, detail: verdict.detail };
  if (options.waitMs <= 0)
    return verdict.verdict === 'accept'
      ? { outcome: 'sent', expected: 'accept' }
      : { outcome: 'sent', expected: 'hold', reason: verdict.reason };
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? realSleep;
  const start = now();
  for (;;) {
    const fate = fateOnRecord(await options.markets.get(options.symbol), options.sequence);
    if (fate) return fate;
    const waited = now() - start;
    if (waited >= options.waitMs) return { outcome: 'not-handled', waitedMs: waited };
    await sleep(Math.min(options.pollMs, options.waitMs - waited));
  }
}

import type { SettlementDeps } from '../../shared/services/context.ts';
import type { MarginCheckDeps } from '../../shared/services/margin-check.ts';

/** How many microtasks a call waits before it runs (0: at once). */
export type Pause = () => number;

/** Every method of `target` first yields pause() microtasks, then runs on the real object. */
function delayed<T extends object>(target: T, pause: Pause): T {
  return new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        for (let n = pause(); n > 0; n--) await Promise.resolve();
        return (value as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
}

/** The deps with every port delayed by `pause` (interleavings of concurrent consumers). */
export function delayedDeps<D extends SettlementDeps | MarginCheckDeps>(deps: D, pause: Pause): D {
  const out: Record<string, unknown> = { ...deps };
  for (const key of [
    'reader',
    'positions',
    'markets',
    'liquidations',
    'auctions',
    'providers',
    'ledger',
    'transactor',
    'liquidationQueue',
    'auctionQueue',
    'venue',
  ]) {
    const port = (deps as unknown as Record<string, unknown>)[key];
    if (port && typeof port === 'object') out[key] = delayed(port, pause);
  }
  return out as D;
}

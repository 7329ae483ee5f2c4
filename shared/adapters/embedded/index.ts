import type { Adapters, Clock, CrashHook, MarketState } from '../../ports/index.ts';
import { QUEUES, type QueueId } from '../../topology.ts';
import { EmbeddedAuctionRepository } from './auctions.ts';
import { ManualClock } from './clock.ts';
import type { HookRef } from './internal.ts';
import { EmbeddedLedger } from './ledger.ts';
import { EmbeddedLiquidationRepository } from './liquidations.ts';
import { EmbeddedMarketRepository } from './markets.ts';
import { EmbeddedPositionRepository } from './positions.ts';
import { EmbeddedProviderRepository } from './providers.ts';
import { EmbeddedQueue } from './queue.ts';
import { EmbeddedTransactor } from './transactor.ts';

export { EmbeddedAuctionRepository } from './auctions.ts';
export { ClockError, ManualClock, systemClock } from './clock.ts';
export { EmbeddedInputError } from './internal.ts';
export { EmbeddedLedger, LedgerIdempotencyConflictError } from './ledger.ts';
export { EmbeddedLiquidationRepository } from './liquidations.ts';
export { EmbeddedMarketRepository } from './markets.ts';
export { EmbeddedPositionRepository } from './positions.ts';
export { EmbeddedProviderRepository } from './providers.ts';
export {
  EmbeddedQueue,
  type EmbeddedQueueOptions,
  QueueError,
  type QueueFaults,
  QueueSendError,
} from './queue.ts';

export interface EmbeddedAdaptersOptions {
  /** Time for queue delays and visibility (default: a ManualClock at 0). */
  readonly clock?: Clock;
  /** Called right after every side effect with '<adapter>.<method>', e.g. 'liquidations.begin'. */
  readonly crashHook?: CrashHook;
  /** Receives before a message moves to its dead-letter queue (default: the topology's, 5). */
  readonly maxReceiveCount?: Partial<Record<'liquidations' | 'auctionSteps', number>>;
}

export interface EmbeddedAdapters extends Adapters {
  readonly positions: EmbeddedPositionRepository;
  readonly markets: EmbeddedMarketRepository;
  readonly liquidations: EmbeddedLiquidationRepository;
  readonly auctions: EmbeddedAuctionRepository;
  readonly providers: EmbeddedProviderRepository;
  readonly ledger: EmbeddedLedger;
  readonly transactor: EmbeddedTransactor;
  readonly liquidationQueue: EmbeddedQueue;
  readonly auctionQueue: EmbeddedQueue;
  readonly liquidationDeadLetters: EmbeddedQueue;
  readonly auctionDeadLetters: EmbeddedQueue;
  /** Installs (or removes) the crash hook of every adapter of this bundle. */
  setCrashHook(hook: CrashHook | undefined): void;
}

/**
 * The in-process adapter bundle. Crash points are '<adapter>.<method>' with the bundle's property names:
 * positions.create|createMany|replace,
 * markets.acceptTick|clearPending|tripBreaker|resetBreaker|coverWakeMark|replaceWakeMark|bumpProvidersEpoch|markSpentWake|
 *   recordRegistrationWake,
 * liquidations.begin|replace|replaceWithPosition, auctions.create|replace, providers.put, ledger.apply,
 * transactor.commit,
 * liquidationQueue.send|sendBatch|receive|delete|changeVisibility (auctionQueue likewise).
 */
/** The records of `ids` that exist, each id read once, without yielding (a batch reader's BatchGetItem). */
function peekEach<T>(ids: readonly string[], peek: (id: string) => T | undefined): T[] {
  const found: T[] = [];
  for (const id of new Set(ids)) {
    const record = peek(id);
    if (record) found.push(record);
  }
  return found;
}

export function createEmbeddedAdapters(options: EmbeddedAdaptersOptions = {}): EmbeddedAdapters {
  const hook: HookRef = { current: options.crashHook };
  const clock = options.clock ?? new ManualClock(0);
  const positions = new EmbeddedPositionRepository(hook);
  const queuePair = (id: QueueId & ('liquidations' | 'auctionSteps'), label: string) => {
    const maxReceiveCount =
      options.maxReceiveCount?.[id] ?? QUEUES.find((q) => q.id === id)?.deadLetter?.maxReceiveCount ?? 5;
    const deadLetters = new EmbeddedQueue({
      name: `${id}-dlq`,
      clock,
      hook,
      hookLabel: `${label}DeadLetters`,
    });
    const queue = new EmbeddedQueue({
      name: id,
      clock,
      hook,
      hookLabel: label,
      deadLetter: { queue: deadLetters, maxReceiveCount },
    });
    return [queue, deadLetters] as const;
  };
  const [liquidationQueue, liquidationDeadLetters] = queuePair('liquidations', 'liquidationQueue');
  const [auctionQueue, auctionDeadLetters] = queuePair('auctionSteps', 'auctionQueue');
  const liquidations = new EmbeddedLiquidationRepository(positions, hook);
  const auctions = new EmbeddedAuctionRepository(hook);
  const providers = new EmbeddedProviderRepository(hook);
  const markets = new EmbeddedMarketRepository(hook);
  return {
    reader: {
      // Synchronous reads inside: one await per call, as one BatchGetItem.
      liquidationPositionAndMarket: async (liquidationId, positionId, symbol) => ({
        liquidation: await liquidations.get(liquidationId),
        position: positions.peek(positionId),
        market: await markets.get(symbol),
      }),
      positionAndMarket: async (positionId, symbol) => ({
        position: positions.peek(positionId),
        market: await markets.get(symbol),
      }),
      auctionAndMarket: async (auctionId, symbol) => ({
        auction: await auctions.get(auctionId),
        market: await markets.get(symbol),
      }),
      markets: async (symbols) => {
        const found: MarketState[] = [];
        for (const symbol of new Set(symbols)) {
          const m = await markets.get(symbol);
          if (m) found.push(m);
        }
        return found;
      },
      positions: async (ids) => peekEach(ids, (id) => positions.peek(id)),
      liquidations: async (ids) => peekEach(ids, (id) => liquidations.peek(id)),
    },
    positions,
    markets,
    liquidations,
    auctions,
    providers,
    ledger: new EmbeddedLedger(hook, (id) => liquidations.versionOf(id)),
    transactor: new EmbeddedTransactor({ positions, liquidations, auctions, providers, markets }, hook),
    liquidationQueue,
    auctionQueue,
    liquidationDeadLetters,
    auctionDeadLetters,
    clock,
    setCrashHook: (next) => {
      hook.current = next;
    },
  };
}

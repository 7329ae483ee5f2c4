import type {
  Clock,
  MarketRepository,
  OrderRequest,
  OrderResult,
  PositionRecord,
  ProviderRecord,
  ProvidersEpochCheck,
  QueueTransport,
  ReceivedMessage,
  Transactor,
  Venue,
  Write,
} from '../ports/index.ts';

/**
 * Decorators that let the simulation watch the services without changing them: each forwards every call to
 * the real embedded adapter and records what the engine needs (when queued work falls due, what every
 * commit changed, which market orders filled at what mark). The services see the ports, nothing else.
 */

/** A min-heap of due times (epoch ms). */
export class DueTimes {
  readonly #items: number[] = [];

  push(at: number): void {
    const items = this.#items;
    items.push(at);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const here = items[i]!;
      if (items[parent]! <= here) break;
      items[i] = items[parent]!;
      items[parent] = here;
      i = parent;
    }
  }

  /** Earliest due time after dropping those at or before `now` (already handled by a drain at `now`). */
  nextAfter(now: number): number | undefined {
    while (this.#items.length > 0 && this.#items[0]! <= now) this.#pop();
    return this.#items[0];
  }

  #pop(): void {
    const items = this.#items;
    const last = items.pop()!;
    if (items.length === 0) return;
    items[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < items.length && items[l]! < items[m]!) m = l;
      if (r < items.length && items[r]! < items[m]!) m = r;
      if (m === i) break;
      const here = items[i]!;
      items[i] = items[m]!;
      items[m] = here;
      i = m;
    }
  }
}

/**
 * A queue that tells the engine when its messages become visible: at send + delay, and at receive +
 * visibility timeout (a message that was not deleted comes back then), so simulated time can jump from one
 * due instant to the next instead of polling every second.
 */
export class WatchedQueue implements QueueTransport {
  readonly name: string;

  constructor(
    private readonly inner: QueueTransport,
    private readonly clock: Clock,
    private readonly due: DueTimes,
  ) {
    this.name = inner.name;
  }

  async send(body: string, delaySeconds = 0): Promise<void> {
    await this.inner.send(body, delaySeconds);
    this.due.push(this.clock.nowMs() + delaySeconds * 1000);
  }

  async sendBatch(bodies: readonly string[]): Promise<void> {
    await this.inner.sendBatch(bodies);
    this.due.push(this.clock.nowMs());
  }

  async receive(maxMessages: number, visibilityTimeoutSeconds: number): Promise<readonly ReceivedMessage[]> {
    const received = await this.inner.receive(maxMessages, visibilityTimeoutSeconds);
    if (received.length > 0) this.due.push(this.clock.nowMs() + visibilityTimeoutSeconds * 1000);
    return received;
  }

  delete(receiptHandle: string): Promise<void> {
    return this.inner.delete(receiptHandle);
  }

  async changeVisibility(receiptHandle: string, visibilityTimeoutSeconds: number): Promise<void> {
    await this.inner.changeVisibility(receiptHandle, visibilityTimeoutSeconds);
    this.due.push(this.clock.nowMs() + visibilityTimeoutSeconds * 1000);
  }

  depth(): ReturnType<QueueTransport['depth']> {
    return this.inner.depth();
  }
}

/** One committed write with the record it replaced (undefined for a creation). */
export interface ObservedWrite {
  readonly write: Write;
  readonly before: PositionRecord | ProviderRecord | undefined;
}

/** Synchronous reads of the stores a transactor writes (the embedded ones: no call yields in between). */
export interface StorePeek {
  peek(id: string): PositionRecord | ProviderRecord | undefined;
}

/** A transactor that reports every successful commit, with the previous version of each position and provider. */
export class ObservedTransactor implements Transactor {
  constructor(
    private readonly inner: Transactor,
    private readonly positions: StorePeek,
    private readonly providers: StorePeek,
    private readonly onCommit: (writes: readonly ObservedWrite[]) => void,
  ) {}

  async commit(writes: readonly Write[], providersUnchanged?: ProvidersEpochCheck): Promise<void> {
    const before: ObservedWrite[] = [];
    for (const write of writes) {
      const previous =
        write.kind === 'position'
          ? this.positions.peek(write.record.id)
          : write.kind === 'provider'
            ? this.providers.peek(write.record.id)
            : undefined;
      before.push({ write, before: previous });
    }
    await this.inner.commit(writes, providersUnchanged);
    this.onCommit(before);
  }
}

/** A market order as executed, with the mark the service priced it against. */
export interface ObservedOrder {
  readonly order: OrderRequest;
  readonly result: OrderResult;
  readonly mark: bigint | undefined;
  readonly atMs: number;
}

/** A venue that reports each first execution of a client order id (a repeated id returns the first result). */
export class ObservedVenue implements Venue {
  readonly #seen = new Set<string>();

  constructor(
    private readonly inner: Venue,
    private readonly markets: MarketRepository,
    private readonly clock: Clock,
    private readonly onOrder: (order: ObservedOrder) => void,
  ) {}

  async placeIoc(order: OrderRequest): Promise<OrderResult> {
    // The mark the service priced the order against is the last accepted tick's (context.latestMark).
    const mark = (await this.markets.get(order.symbol))?.lastTick?.markPrice;
    const result = await this.inner.placeIoc(order);
    if (!this.#seen.has(order.clientOrderId)) {
      this.#seen.add(order.clientOrderId);
      this.onOrder({ order, result, mark, atMs: this.clock.nowMs() });
    }
    return result;
  }

  quote(symbol: string, reference?: OrderRequest['reference']): ReturnType<Venue['quote']> {
    return this.inner.quote(symbol, reference);
  }
}

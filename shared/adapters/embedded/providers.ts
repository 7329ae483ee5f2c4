import { ConditionFailedError, type ProviderRecord, type ProviderRepository } from '../../ports/index.ts';
import { fire, frozenCopy, type HookRef, requireId } from './internal.ts';

/**
 * Backstop providers. `put` with expectedVersion undefined creates (the id must be absent); otherwise the
 * stored version must equal expectedVersion. The port fixes no version step for providers, so none is
 * enforced here. `list(symbol)` returns the providers quoting that symbol, ordered by id.
 */
export class EmbeddedProviderRepository implements ProviderRepository {
  readonly #records = new Map<string, ProviderRecord>();
  /** list's answers until a write changes them: every auction step lists, a fill writes. */
  readonly #bySymbol = new Map<string, readonly ProviderRecord[]>();
  readonly #hook: HookRef;

  constructor(hook: HookRef = {}) {
    this.#hook = hook;
  }

  async list(symbol: string): Promise<readonly ProviderRecord[]> {
    let listed = this.#bySymbol.get(symbol);
    if (!listed) {
      listed = Object.freeze(
        [...this.#records.values()]
          .filter((p) => p.symbols.includes(symbol))
          .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
      );
      this.#bySymbol.set(symbol, listed);
    }
    return listed;
  }

  async get(id: string): Promise<ProviderRecord | undefined> {
    return this.#records.get(id);
  }

  /** Synchronous read, for observers that look at the stores between calls. */
  peek(id: string): ProviderRecord | undefined {
    return this.#records.get(id);
  }

  async put(provider: ProviderRecord, expectedVersion: number | undefined): Promise<void> {
    this.checkWrite(provider, expectedVersion);
    this.store(provider);
    fire(this.#hook, 'providers.put');
  }

  /** Condition of `put`, checked without writing (transactions use it). */
  checkWrite(provider: ProviderRecord, expectedVersion: number | undefined): void {
    requireId(provider?.id, 'providers');
    const current = this.#records.get(provider.id);
    if (expectedVersion === undefined) {
      if (current) throw new ConditionFailedError(`providers/exists: ${provider.id}`);
    } else if (current?.version !== expectedVersion) {
      throw new ConditionFailedError(
        `providers/version-mismatch: ${provider.id} is at version ${current?.version ?? 'none'}, not ${expectedVersion}`,
      );
    }
  }

  /** Stores a checked record (a frozen deep copy). */
  store(provider: ProviderRecord): void {
    const previous = this.#records.get(provider.id);
    for (const symbol of [...(previous?.symbols ?? []), ...provider.symbols]) this.#bySymbol.delete(symbol);
    this.#records.set(provider.id, frozenCopy(provider));
  }
}

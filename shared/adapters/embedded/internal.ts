import { type CrashHook, type ProcessingFailure, processingFailureProblem } from '../../ports/index.ts';
import type { Item } from '../aws/codec.ts';
import { itemBytes, MAX_ITEM_BYTES } from '../aws/item-size.ts';

/**
 * Helpers shared by the embedded adapters: the crash hook they fire after each side effect, deep frozen
 * copies (a caller mutating its object must not change stored state, as with DynamoDB) and input checks.
 */

/** Bad input to an embedded adapter (a caller bug, not a failed condition): reason like 'positions/bad-limit'. */
export class EmbeddedInputError extends Error {
  override readonly name = 'EmbeddedInputError';
}

/**
 * DynamoDB's refusal of an item over MAX_ITEM_BYTES written alone (a ValidationException, "Item size has exceeded
 * the maximum allowed size", or "Item size to update has ..." for an UpdateItem): nothing of the write is stored. In
 * a transaction it cancels it (checkInTransaction).
 */
export class ItemTooLargeError extends Error {
  override readonly name = 'ValidationException';
}

/** A cancelled transaction's reason for one of its items, as DynamoDB gives it ('None': that item passed). */
export interface CancellationReason {
  readonly Code: string;
  readonly Message?: string;
}

/**
 * DynamoDB's cancellation of a TransactWriteItems (TransactionCanceledException): one reason per item of the
 * transaction, in its order. Nothing of the transaction is stored.
 */
export class TransactionCanceledError extends Error {
  override readonly name = 'TransactionCanceledException';
  readonly CancellationReasons: readonly CancellationReason[];
  constructor(reasons: readonly CancellationReason[]) {
    super(
      `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
    );
    this.CancellationReasons = reasons;
  }
}

/**
 * Runs the check of a transaction's item at `index` of its `items()` (as the AWS adapter orders them): an item over
 * the limit cancels the transaction, as DynamoDB does (a ValidationError at its index), where a write alone is
 * refused with a ValidationException.
 */
export function checkInTransaction<T>(index: number, items: () => number, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof ItemTooLargeError)) throw error;
    throw new TransactionCanceledError(
      Array.from({ length: items() }, (_, i) =>
        i === index ? { Code: 'ValidationError', Message: error.message } : { Code: 'None' },
      ),
    );
  }
}

/** DynamoDB's words for an item over the limit: a put's (PutItem, a transaction's Put) and an UpdateItem's. */
const TOO_LARGE = {
  put: 'Item size has exceeded the maximum allowed size',
  update: 'Item size to update has exceeded the maximum allowed size',
} as const;

/**
 * Refuses, as DynamoDB would, a write whose item (as the AWS adapter writes it) is over MAX_ITEM_BYTES. `atMost`:
 * an upper bound of its size, read off the record; the item is built and measured only when that is over the limit.
 * `operation`: the AWS adapter's request for this write, whose refusal DynamoDB words apart.
 */
export function requireItemSize(
  atMost: number,
  item: () => Item,
  what: string,
  id: string,
  operation: keyof typeof TOO_LARGE = 'put',
): void {
  if (atMost <= MAX_ITEM_BYTES) return;
  const bytes = itemBytes(item());
  if (bytes > MAX_ITEM_BYTES)
    throw new ItemTooLargeError(
      `${TOO_LARGE[operation]} (${what} ${id}: ${bytes} bytes, at most ${MAX_ITEM_BYTES})`,
    );
}

/** Mutable holder so every adapter of one bundle sees the hook a test installs later. */
export interface HookRef {
  current?: CrashHook | undefined;
}

/** Fires the crash hook right after a side effect; an InjectedCrash it throws propagates to the caller. */
export function fire(hook: HookRef, point: string): void {
  hook.current?.(point);
}

export { frozenCopy } from '../../frozen.ts';

export function requireId(id: unknown, what: string): asserts id is string {
  if (typeof id !== 'string' || id.length === 0)
    throw new EmbeddedInputError(`${what}: id must be a non-empty string`);
}

/** Versions are positive integers (or zero) and a replacement carries exactly `expectedVersion + 1`. */
export function requireVersionBump(
  next: { readonly version: number },
  expectedVersion: number,
  what: string,
): void {
  if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
    throw new EmbeddedInputError(`${what}/bad-version: expectedVersion ${expectedVersion} is not a version`);
  }
  if (next.version !== expectedVersion + 1) {
    throw new EmbeddedInputError(
      `${what}/bad-version: the new record must carry version ${expectedVersion + 1}, got ${next.version}`,
    );
  }
}

export function requireFailure(failure: ProcessingFailure, what: string): void {
  const problem = processingFailureProblem(failure);
  if (problem) throw new EmbeddedInputError(`${what}/bad-failure: ${problem}`);
}

/** map.get(key), first storing make() when absent. */
export function getOrCreate<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

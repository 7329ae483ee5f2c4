import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Fill, SetAside, Unreadable } from '../../domain/model.ts';
import { ConditionFailedError, type ProcessingFailure, processingFailureProblem } from '../../ports/index.ts';

/**
 * DynamoDB attribute codecs. Money, sizes and prices are bigints stored as N: the SDK carries N as a decimal
 * string, exact up to 38 digits, so no JS number ever holds an amount. Counters (versions, sequences, epoch
 * ms) are safe integers.
 */

export type Item = Record<string, AttributeValue>;

/** An item that does not decode: a bug or a foreign writer, never retried into success. */
export class CorruptItemError extends Error {
  override readonly name = 'CorruptItemError';
}

/** Bad input handed to an adapter (for example a next record whose version is not expected + 1). */
export class AdapterInputError extends Error {
  override readonly name = 'AdapterInputError';
}

export const S = (value: string): AttributeValue => ({ S: value });

export const N = (value: bigint | number): AttributeValue => {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new AdapterInputError(`adapter/not-an-integer: ${value}`);
  }
  return { N: value.toString() };
};

const attr = (item: Item, name: string): AttributeValue => {
  const value = item[name];
  if (value === undefined) throw new CorruptItemError(`adapter/missing-attribute: ${name}`);
  return value;
};

export function readS(item: Item, name: string): string {
  const value = attr(item, name);
  if (value.S === undefined) throw new CorruptItemError(`adapter/not-a-string: ${name}`);
  return value.S;
}

export function readBig(item: Item, name: string): bigint {
  const value = attr(item, name);
  if (value.N === undefined || !/^-?\d+$/.test(value.N)) {
    throw new CorruptItemError(`adapter/not-an-integer: ${name}`);
  }
  return BigInt(value.N);
}

export function readInt(item: Item, name: string): number {
  const big = readBig(item, name);
  const value = Number(big);
  if (!Number.isSafeInteger(value)) throw new CorruptItemError(`adapter/unsafe-integer: ${name}`);
  return value;
}

export const optS = (item: Item, name: string): string | undefined =>
  item[name] === undefined ? undefined : readS(item, name);
export const optBig = (item: Item, name: string): bigint | undefined =>
  item[name] === undefined ? undefined : readBig(item, name);
export const optInt = (item: Item, name: string): number | undefined =>
  item[name] === undefined ? undefined : readInt(item, name);

export function readMap(item: Item, name: string): Item {
  const value = attr(item, name);
  if (value.M === undefined) throw new CorruptItemError(`adapter/not-a-map: ${name}`);
  return value.M;
}

export function readList(item: Item, name: string): AttributeValue[] {
  const value = attr(item, name);
  if (value.L === undefined) throw new CorruptItemError(`adapter/not-a-list: ${name}`);
  return value.L;
}

export const readMaps = (item: Item, name: string): Item[] =>
  readList(item, name).map((v) => {
    if (v.M === undefined) throw new CorruptItemError(`adapter/not-a-map: ${name}[]`);
    return v.M;
  });

/** Names the part that did not read: `recent[2]: adapter/...`. */
export function within<T>(where: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof CorruptItemError) throw new CorruptItemError(`${where}: ${error.message}`);
    throw error;
  }
}

/** `read()`, or `otherwise(why)` when what it reads does not (CorruptItemError); any other error is thrown. */
export function readOr<T, U>(read: () => T, otherwise: (why: string) => U): T | U {
  try {
    return read();
  } catch (error) {
    if (!(error instanceof CorruptItemError)) throw error;
    return otherwise(error.message);
  }
}

/**
 * A display-only value (a position's ADL events, a provider's fills, a refusal trace): one this version cannot read
 * (a later version's shape, an edit by hand) never fails the read of its item, which the money path makes: it is
 * kept as stored with why, to be written back unchanged and shown as unreadable. Absent: undefined.
 */
export const optReadable = <T>(
  value: AttributeValue | undefined,
  read: (value: AttributeValue) => T,
): T | Unreadable | undefined =>
  value === undefined
    ? undefined
    : readOr(
        () => read(value),
        (why) => ({ unreadable: why, stored: value }),
      );

/**
 * Values set aside as unreadable (recordOrSetAside), each as stored. Stored as something other than a list (a later
 * version's shape, an edit by hand): kept whole, to be written back as it was, not wrapped in a list
 * (providers49-set-aside-not-a-list).
 */
export function optSetAside(
  item: Item,
  name: string,
  read: (value: AttributeValue) => unknown,
): SetAside | undefined {
  const value = item[name];
  if (value === undefined) return undefined;
  if (value.L === undefined) return { unreadable: `adapter/not-a-list: ${name}`, stored: value };
  return value.L.map(
    (stored): Unreadable =>
      readOr(
        () => {
          read(stored);
          // Set aside by this version because it did not read then: one that reads now was edited since.
          return { unreadable: 'set aside as unreadable', stored };
        },
        (why) => ({ unreadable: why, stored }),
      ),
  );
}

/** An unreadable value's attribute: as it was stored. */
export const storedAttr = (value: Unreadable): AttributeValue => value.stored as AttributeValue;

/** A set-aside's attribute (optSetAside's): one kept whole as it was stored, a list as a list; none when empty. */
export function setAsideAttr(name: string, aside: SetAside | undefined): Item {
  if (aside === undefined) return {};
  if ('unreadable' in aside) return { [name]: storedAttr(aside) };
  return aside.length > 0 ? { [name]: { L: aside.map(storedAttr) } } : {};
}

export const fillAttr = (fill: Fill & { readonly providerId?: string }): AttributeValue => ({
  M: {
    price: N(fill.price),
    size: N(fill.size),
    ...(fill.cost === undefined ? {} : { cost: N(fill.cost) }),
    ...(fill.providerId === undefined ? {} : { providerId: S(fill.providerId) }),
  },
});

export const readFill = (m: Item): Fill => {
  const fill = { price: readBig(m, 'price'), size: readBig(m, 'size') };
  return m.cost === undefined ? fill : { ...fill, cost: readBig(m, 'cost') };
};

export const strings = (values: readonly string[]): AttributeValue => ({ L: values.map(S) });

export const readStrings = (item: Item, name: string): string[] =>
  readList(item, name).map((v) => {
    if (v.S === undefined) throw new CorruptItemError(`adapter/not-a-string: ${name}[]`);
    return v.S;
  });

/** A lastFailure map; bad input (empty or oversized reason, non-integer counters) is refused. */
export function failureAttr(what: string, f: ProcessingFailure): AttributeValue {
  const problem = processingFailureProblem(f);
  if (problem) throw new AdapterInputError(`${what}/bad-failure: ${problem}`);
  return { M: { reason: S(f.reason), attempt: N(f.attempt), atMs: N(f.atMs) } };
}

export function optFailure(item: Item): ProcessingFailure | undefined {
  if (item.lastFailure === undefined) return undefined;
  const m = readMap(item, 'lastFailure');
  return { reason: readS(m, 'reason'), attempt: readInt(m, 'attempt'), atMs: readInt(m, 'atMs') };
}

/** A next record must carry the expected version + 1 (ports: optimistic concurrency). */
export function checkNextVersion(what: string, next: number, expected: number): void {
  if (next !== expected + 1) {
    throw new AdapterInputError(`${what}/bad-version: next version ${next} must be ${expected} + 1`);
  }
}

const errorName = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null ? (error as { name?: string }).name : undefined;

export const isConditionalCheckFailed = (error: unknown): boolean =>
  errorName(error) === 'ConditionalCheckFailedException';

/**
 * A failed condition, with the item as it stood (ReturnValuesOnConditionCheckFailure ALL_OLD; none when absent);
 * undefined for any other error.
 */
export const failedCondition = (error: unknown): { readonly item?: Item } | undefined => {
  if (!isConditionalCheckFailed(error)) return undefined;
  const item = (error as { Item?: Item }).Item;
  return item ? { item } : {};
};

/** Codes of a cancelled TransactWriteItems, in item order ('None' for items that passed); else undefined. */
export function cancellationCodes(error: unknown): string[] | undefined {
  if (errorName(error) !== 'TransactionCanceledException') return undefined;
  const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.map((r) => r.Code ?? 'None');
}

/** Cancellation reasons of a transaction that wrote nothing and may simply run again. */
const TRANSIENT_CANCELLATIONS = new Set(['None', 'TransactionConflict', 'ThrottlingError']);

/** Attempts of a transaction cancelled by conflicts before the caller sees the cancellation. */
export const TRANSACTION_ATTEMPTS = 5;

/**
 * Runs a TransactWriteItems again, after full-jitter backoff, while it is cancelled only because another
 * transaction held one of its items (or by throttling): the SDK does not retry a TransactionCanceledException,
 * and concurrent starts of one tick share its index items, so a crash's burst of them would otherwise fail
 * whole invocations. A cancelled transaction wrote nothing, so running it again is safe.
 */
export async function retryingConflicts<T>(
  transact: () => Promise<T>,
  attempts = TRANSACTION_ATTEMPTS,
  pause: (ms: number) => Promise<unknown> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transact();
    } catch (error) {
      const codes = cancellationCodes(error) ?? [];
      const transient = codes.some((c) => c !== 'None') && codes.every((c) => TRANSIENT_CANCELLATIONS.has(c));
      if (!transient || attempt >= attempts) throw error;
      await pause(Math.random() * Math.min(400, 20 * 2 ** attempt));
    }
  }
}

/** Runs a conditional write; a failed condition becomes ConditionFailedError(reason). */
export async function conditional<T>(reason: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isConditionalCheckFailed(error)) throw new ConditionFailedError(reason);
    const codes = cancellationCodes(error);
    // Only condition failures map to ConditionFailedError; TransactionConflict and throttling stay transient.
    if (codes?.includes('ConditionalCheckFailed')) throw new ConditionFailedError(`${reason} (${codes})`);
    throw error;
  }
}

/** Opaque pagination cursor: the LastEvaluatedKey as base64url JSON. */
export const encodeCursor = (key: Item): string => Buffer.from(JSON.stringify(key)).toString('base64url');

export function decodeCursor(cursor: string): Item {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a map');
    return parsed as Item;
  } catch {
    throw new AdapterInputError('adapter/bad-cursor: not a cursor returned by this adapter');
  }
}

/** Default crash hook: no injected crashes. */
export const noCrash = (_point: string): void => {};

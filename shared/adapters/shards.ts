/**
 * Stable shard assignments the adapter families share (no SDK here: the embedded adapters import it too).
 */

import { fnv1a } from '../domain/hash.ts';
import { type LiquidationRecord, liquidationStartedAtMs, type OpenListingPosition } from '../ports/index.ts';

/** Shards of a tick's index of the liquidations it began (AWS: items of the liquidations table, liquidations.ts). */
export const TICK_INDEX_SHARDS = 256;
export const TICK_INDEX_PREFIX = '~tick~';

/** The id of a tick's index item `shard`. */
export const tickIndexShardId = (tickKey: string, shard: number): string =>
  `${TICK_INDEX_PREFIX}${tickKey}~${shard}`;

/** The tick-index item that lists a liquidation of a tick. */
export const tickIndexItemId = (tickKey: string, liquidationId: string): string =>
  tickIndexShardId(tickKey, fnv1a(liquidationId) % TICK_INDEX_SHARDS);

/**
 * New liquidations grouped by the tick-index item each joins: one more item per group in a transaction that
 * creates them (DynamoDB's TransactWriteItems counts it against its 100 items; the embedded transactor counts the
 * same).
 */
export function tickIndexItems(
  liquidations: readonly { readonly id: string; readonly tickKey: string }[],
): Map<string, string[]> {
  const byItem = new Map<string, string[]>();
  for (const l of liquidations) {
    const id = tickIndexItemId(l.tickKey, l.id);
    const ids = byItem.get(id);
    if (ids) ids.push(l.id);
    else byItem.set(id, [l.id]);
  }
  return byItem;
}

/**
 * Shards of the index of open liquidations (AWS: the liquidations table's sparse OPEN_LIQUIDATIONS_INDEX). A crash
 * starts hundreds of liquidations a second per market, and an index partition takes 1,000 writes a second, whose
 * throttling would throttle the table's own writes: 16 partitions keep well below it.
 */
export const OPEN_INDEX_SHARDS = 16;

/** The open-index partition key of shard `shard`. */
export const openShardKey = (shard: number): string => `open#${shard}`;

/** The shard of the open index a liquidation is listed under while it is open. */
export const openShardNumberOf = (liquidationId: string): number => fnv1a(liquidationId) % OPEN_INDEX_SHARDS;

/** The open-index partition a liquidation is listed under while it is open. */
export const openShardOf = (liquidationId: string): string => openShardKey(openShardNumberOf(liquidationId));

/** A liquidation's place in the open listing (openStartedBefore): its shard, its start, its id. */
export interface OpenListingKey {
  readonly shard: number;
  readonly startedAtMs: number;
  readonly id: string;
}

export const openListingKeyOf = (l: LiquidationRecord): OpenListingKey => ({
  shard: openShardNumberOf(l.id),
  startedAtMs: liquidationStartedAtMs(l),
  id: l.id,
});

/** The listing's order: shard, then start, then id (as the index's keys and then the table's). */
export const compareListingKeys = (a: OpenListingKey, b: OpenListingKey): number =>
  a.shard - b.shard || a.startedAtMs - b.startedAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Whether `key` is listed after `position` (a shard's start, or after a key of it). */
export const comesAfter = (key: OpenListingKey, position: OpenListingPosition): boolean =>
  key.shard > position.shard ||
  (key.shard === position.shard &&
    (position.after === undefined || compareListingKeys(key, { shard: key.shard, ...position.after }) > 0));

/** Rejects a listing position no listing gave (a shard out of range, a start that is no integer). */
export const isListingPosition = (position: OpenListingPosition): boolean =>
  Number.isInteger(position.shard) &&
  position.shard >= 0 &&
  position.shard < OPEN_INDEX_SHARDS &&
  (position.after === undefined ||
    (Number.isSafeInteger(position.after.startedAtMs) && position.after.id.length > 0));

/**
 * Stable shard assignments the adapter families share (no SDK here: the embedded adapters import it too).
 */

import { fnv1a } from '../domain/hash.ts';

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

/** The shard a listing of the open index begins at for `rotation` (openStartedBefore): any integer, any sign. */
export const firstOpenShard = (rotation: number): number =>
  ((Math.trunc(rotation) % OPEN_INDEX_SHARDS) + OPEN_INDEX_SHARDS) % OPEN_INDEX_SHARDS;

/** The open-index partition key of shard `shard`. */
export const openShardKey = (shard: number): string => `open#${shard}`;

/** The open-index partition a liquidation is listed under while it is open. */
export const openShardOf = (liquidationId: string): string =>
  openShardKey(fnv1a(liquidationId) % OPEN_INDEX_SHARDS);

import { z } from 'zod';
import { fnv1a } from '../../domain/hash.ts';
import type { Side } from '../../domain/model.ts';
import { POSITION_INDEX_SHARDS_ENV } from '../../topology.ts';

/**
 * How a market side's OPEN positions spread over the partitions of the positions table's three indexes
 * (liquidation price, ADL's two orders): partition `liqKey` = `${symbol}#${side}#${shard}`, the shard a hash of
 * the position id. One shard by default; a GSI partition takes about 1,000 writes a second, so a market that
 * opens, changes or starts liquidating more positions than that a second needs more. Readers query every
 * shard and merge them (each shard adds a Query to a page).
 *
 * Every function both reads and writes positions, and a deploy updates them one by one: a position written in a
 * shard that a reader still on the old count does not query is invisible to it (no tick would liquidate it). So
 * a market's count has two sides, `{"read": 4, "write": 1}`: raising it is two deploys, readers first (read 4,
 * write 1), then both (4). A plain number is both. A writer using at most the readers' count is always safe.
 */

export const MAX_POSITION_INDEX_SHARDS = 16;

const SYMBOL = /^[A-Z0-9]{2,10}-[A-Z]{3,5}$/;

const shardCount = z.number().int().min(1).max(MAX_POSITION_INDEX_SHARDS);

/** A market's shards: one count for reads and writes, or reads ahead of writes while a count is raised. */
const marketShardsSchema = z.union([
  shardCount,
  z
    .strictObject({ read: shardCount, write: shardCount })
    .refine((s) => s.write <= s.read, 'write must be at most read: readers must query every shard written'),
]);
export type MarketShards = z.input<typeof marketShardsSchema>;

export const positionIndexShardsSchema = z
  .record(z.string(), marketShardsSchema)
  .superRefine((value, ctx) => {
    for (const symbol of Object.keys(value)) {
      if (!SYMBOL.test(symbol)) {
        ctx.addIssue({ code: 'custom', path: [symbol], message: 'not a market symbol like ETH-USD' });
      }
    }
  });

export class PositionLayoutError extends Error {
  override readonly name = 'PositionLayoutError';
}

export class PositionIndexLayout {
  private readonly shardsBySymbol: ReadonlyMap<string, { readonly read: number; readonly write: number }>;

  /** `shardsBySymbol`: markets with their own shard counts; every other market has `otherMarkets` (one). */
  constructor(
    shardsBySymbol: Readonly<Record<string, MarketShards>> = {},
    private readonly otherMarkets = 1,
  ) {
    if (!Number.isInteger(otherMarkets) || otherMarkets < 1 || otherMarkets > MAX_POSITION_INDEX_SHARDS) {
      throw new PositionLayoutError(
        `position index shards: ${otherMarkets} is not 1 to ${MAX_POSITION_INDEX_SHARDS}`,
      );
    }
    const parsed = positionIndexShardsSchema.safeParse(shardsBySymbol);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`);
      throw new PositionLayoutError(`position index shards: ${problems.join('; ')}`);
    }
    this.shardsBySymbol = new Map(
      Object.entries(parsed.data).map(([symbol, n]) => [
        symbol,
        typeof n === 'number' ? { read: n, write: n } : n,
      ]),
    );
  }

  /** Shards a market's positions are written in. */
  writeShards(symbol: string): number {
    return this.shardsBySymbol.get(symbol)?.write ?? this.otherMarkets;
  }

  /** Shards a read of a market queries (at least those written). */
  readShards(symbol: string): number {
    return this.shardsBySymbol.get(symbol)?.read ?? this.otherMarkets;
  }

  /** The index partition of a position: its market side's shard for its id. */
  keyOf(position: { readonly id: string; readonly symbol: string; readonly side: Side }): string {
    return partitionKey(
      position.symbol,
      position.side,
      fnv1a(position.id) % this.writeShards(position.symbol),
    );
  }

  /** Every index partition a read of a market side queries, shard 0 first. */
  keys(symbol: string, side: Side): string[] {
    return Array.from({ length: this.readShards(symbol) }, (_, shard) => partitionKey(symbol, side, shard));
  }
}

const partitionKey = (symbol: string, side: Side, shard: number): string => `${symbol}#${side}#${shard}`;

/** One shard for every market. */
export const SINGLE_SHARD_LAYOUT = new PositionIndexLayout();

/** The layout from POSITION_INDEX_SHARDS (JSON, symbol to shards); one shard per market when unset. */
export function positionLayoutFromEnv(env: NodeJS.ProcessEnv = process.env): PositionIndexLayout {
  const raw = env[POSITION_INDEX_SHARDS_ENV];
  if (raw === undefined || raw === '') return SINGLE_SHARD_LAYOUT;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new PositionLayoutError(`${POSITION_INDEX_SHARDS_ENV} is not JSON: ${raw}`);
  }
  return new PositionIndexLayout(value as Record<string, MarketShards>);
}

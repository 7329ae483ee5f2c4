import { randomUUID } from 'node:crypto';
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  type Put,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { PriceE8 } from '../../domain/units.ts';
import {
  type AuctionFill,
  type AuctionRecord,
  type AuctionRepository,
  ConditionFailedError,
  type CrashHook,
  type ProcessingFailure,
  type Sleeper,
} from '../../ports/index.ts';
import { AUCTION_WAKE_INDEX } from '../../topology.ts';
import {
  AdapterInputError,
  CorruptItemError,
  checkNextVersion,
  conditional,
  failedCondition,
  failureAttr,
  type Item,
  isConditionalCheckFailed,
  N,
  noCrash,
  optBig,
  optFailure,
  optInt,
  optS,
  readBig,
  readFill,
  readInt,
  readMap,
  readMaps,
  readS,
  readStrings,
  S,
} from './codec.ts';
import { putOwned } from './owned-put.ts';
import { auctionItem, stepResentAttr, wakeKeyOf } from './record-items.ts';
import { fencedPut } from './writer-schema.ts';

export { auctionItem };

/** Puts of one replace that may meet a claim made since its read (claimStepResend) before it gives up. */
const CLAIM_ATTEMPTS = 3;

/**
 * Auctions table, pk `id`: one item per Dutch auction, replaced whole under a version condition. A sleeping
 * RUNNING auction carries `wakeKey` and `wakeMark`, the keys of the sparse `byWakeMark` index. An item put by
 * create or replace carries the `writer` token of that call (owned-put.ts), which reads ignore; a transaction's
 * put needs none (TransactWriteItems is idempotent on the ClientRequestToken the SDK makes once per call). The resend
 * claim carries its own token inside it (`stepResent.claimer`: claimStepResend), so neither overwrites the other's.
 */

const DIRECTIONS = ['BUY', 'SELL'] as const;
const STATES = ['RUNNING', 'CLEARED', 'EXHAUSTED'] as const;
const ENDERS = ['wake', 'plan'] as const;

const oneOf = <T extends string>(item: Item, name: string, allowed: readonly T[]): T => {
  const value = readS(item, name);
  if (!(allowed as readonly string[]).includes(value))
    throw new CorruptItemError(`adapter/bad-${name}: ${value}`);
  return value as T;
};

/**
 * An auction's fill. When it was made (step, atMs, mark: display only, written together) is read whole or not at all:
 * one that does not read (an edit by hand) never fails the auction's steps; the fill reads without it, as one of
 * before session 52 (review52-support-fill-times-on-auction).
 */
function readAuctionFill(m: Item): AuctionFill {
  const fill = { ...readFill(m), providerId: readS(m, 'providerId') };
  if (m.step === undefined && m.atMs === undefined && m.mark === undefined) return fill;
  try {
    return { ...fill, step: readInt(m, 'step'), atMs: readInt(m, 'atMs'), mark: readBig(m, 'mark') };
  } catch (error) {
    if (error instanceof CorruptItemError) return fill;
    throw error;
  }
}

export const auctionFromItem = (item: Item): AuctionRecord => {
  const lastFailure = optFailure(item);
  const wakeMark = optBig(item, 'wakeMark');
  const endedBy = item.endedBy === undefined ? undefined : oneOf(item, 'endedBy', ENDERS);
  const endedAtMark = optBig(item, 'endedAtMark');
  const stepDueAtMs = optInt(item, 'stepDueAtMs');
  const runFrom = optInt(item, 'runFrom');
  const spentIn = item.spentIn === undefined ? undefined : readStrings(item, 'spentIn');
  const wokenTo = item.spentWokenTo === undefined ? undefined : readMap(item, 'spentWokenTo');
  const spentWokenTo = wokenTo && {
    symbol: readS(wokenTo, 'symbol'),
    direction: oneOf(wokenTo, 'direction', DIRECTIONS),
    id: readS(wokenTo, 'id'),
    step: readInt(wokenTo, 'step'),
    wakeMark: readBig(wokenTo, 'wakeMark'),
  };
  const began = item.spentWakeBegan === undefined ? undefined : readMap(item, 'spentWakeBegan');
  const spentWakeBegan =
    began && Object.fromEntries(Object.keys(began).map((symbol) => [symbol, readInt(began, symbol)]));
  const resent = item.stepResent === undefined ? undefined : readMap(item, 'stepResent');
  const claimer = resent && optS(resent, 'claimer');
  const stepResent = resent && {
    step: readInt(resent, 'step'),
    atMs: readInt(resent, 'atMs'),
    ...(claimer === undefined ? {} : { claimer }),
  };
  return {
    id: readS(item, 'id'),
    liquidationId: readS(item, 'liquidationId'),
    symbol: readS(item, 'symbol'),
    direction: oneOf(item, 'direction', DIRECTIONS),
    lot: readBig(item, 'lot'),
    remainingLot: readBig(item, 'remainingLot'),
    top: readBig(item, 'top'),
    startedAtMs: readInt(item, 'startedAtMs'),
    resets: readInt(item, 'resets'),
    step: readInt(item, 'step'),
    state: oneOf(item, 'state', STATES),
    fills: readMaps(item, 'fills').map(readAuctionFill),
    ...(lastFailure === undefined ? {} : { lastFailure }),
    ...(wakeMark === undefined ? {} : { wakeMark }),
    ...(endedBy === undefined ? {} : { endedBy }),
    ...(endedAtMark === undefined ? {} : { endedAtMark }),
    ...(stepDueAtMs === undefined ? {} : { stepDueAtMs }),
    ...(stepResent === undefined ? {} : { stepResent }),
    ...(spentIn === undefined ? {} : { spentIn }),
    ...(spentWokenTo === undefined ? {} : { spentWokenTo }),
    ...(spentWakeBegan === undefined ? {} : { spentWakeBegan }),
    ...(item.spentWakeSendFailed?.BOOL === true ? { spentWakeSendFailed: true as const } : {}),
    ...(runFrom === undefined ? {} : { runFrom }),
    version: readInt(item, 'version'),
  };
};

export class DynamoAuctionRepository implements AuctionRepository {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
    private readonly crash: CrashHook = noCrash,
  ) {}

  async get(id: string): Promise<AuctionRecord | undefined> {
    const out = await this.dynamo.send(
      new GetItemCommand({ TableName: this.table, Key: { id: S(id) }, ConsistentRead: true }),
    );
    return out.Item ? auctionFromItem(out.Item) : undefined;
  }

  async create(auction: AuctionRecord): Promise<void> {
    await conditional('auctions/exists', () =>
      putOwned(this.dynamo, {
        TableName: this.table,
        Item: auctionItem(auction),
        ConditionExpression: 'attribute_not_exists(id)',
      }),
    );
    this.crash('auctions.create');
  }

  /**
   * A Put of the whole record on the version read, keeping the resend claim stored (stepResent: claimStepResend writes
   * it alone, no version moved): one made after the caller's read would be dropped, and the watch's next run send the
   * step again, counted even if late (watch45-resend-claim-kept). The Put is also conditional on the claim the record
   * carries; a failure on it alone (the version still the one read) puts again with the stored claim, and throws (not
   * ConditionFailedError) when the claim moved before each of CLAIM_ATTEMPTS puts.
   */
  async replace(next: AuctionRecord, expectedVersion: number): Promise<void> {
    checkNextVersion('auctions', next.version, expectedVersion);
    let record = next;
    for (let attempt = 1; ; attempt++) {
      try {
        await putOwned(this.dynamo, this.replacePut(record, expectedVersion));
        break;
      } catch (error) {
        const stored = failedCondition(error)?.item;
        if (!stored || readInt(stored, 'version') !== expectedVersion)
          throw isConditionalCheckFailed(error) ? new ConditionFailedError('auctions/version') : error;
        // Claims come once an hour a step (and a give-back): a few attempts. Then no conflict: the version never moved,
        // and a caller takes a conflict for another's write (wakeSpent ends, sending nothing: review45-watch-claim-churn).
        if (attempt >= CLAIM_ATTEMPTS)
          throw new Error(
            `auctions/claim-moved: ${next.id}'s resend claim changed before each of ${CLAIM_ATTEMPTS} puts at version ${expectedVersion}`,
          );
        const { stepResent: _read, ...rest } = record;
        const claim = auctionFromItem(stored).stepResent;
        record = claim === undefined ? rest : { ...rest, stepResent: claim };
      }
    }
    this.crash('auctions.replace');
  }

  /**
   * The Put of replace: on the version read and the claim the record carries, its claimer's token too (none: none
   * stored), so the put writes back the very claim stored and a retried claim still finds its token (claim45-own-token).
   */
  private replacePut(next: AuctionRecord, expectedVersion: number): Put {
    const claim = next.stepResent;
    const claimer =
      claim?.claimer === undefined
        ? 'attribute_not_exists(stepResent.claimer)'
        : 'stepResent.claimer = :claimer';
    return fencedPut({
      TableName: this.table,
      Item: auctionItem(next),
      ConditionExpression: claim
        ? `version = :expected AND stepResent.step = :claimStep AND stepResent.atMs = :claimAt AND ${claimer}`
        : 'version = :expected AND attribute_not_exists(stepResent)',
      ExpressionAttributeValues: {
        ':expected': N(expectedVersion),
        ...(claim ? { ':claimStep': N(claim.step), ':claimAt': N(claim.atMs) } : {}),
        ...(claim?.claimer === undefined ? {} : { ':claimer': S(claim.claimer) }),
      },
    });
  }

  /** UpdateItem of lastFailure alone, on an existing item: no version condition, so no step is fought. */
  async recordFailure(id: string, failure: ProcessingFailure): Promise<void> {
    await conditional(`auctions/not-found: ${id}`, () =>
      this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { id: S(id) },
          UpdateExpression: 'SET lastFailure = :failure',
          ConditionExpression: 'attribute_exists(id)',
          ExpressionAttributeValues: { ':failure': failureAttr('auctions', failure) },
        }),
      ),
    );
    this.crash('auctions.recordFailure');
  }

  /**
   * UpdateItem of stepResent alone (no version condition): an older Put that drops it costs one twin more. It knows its
   * own write by a token of the call inside the claim (`claimer`), never `writer`, which other writes of the item own
   * (claim45-own-token): the condition also holds on a claim holding that token (its own, applied, whose answer was
   * lost, kept by any replace since), and the retry sets it again, but only while the auction still runs at that step:
   * one moved on since answers undefined, as a claim sent then would, and the watch sends no twin of a step taken
   * (watch46-retry-moved-on). It reads nothing back (ALL_OLD would answer every attribute) and names only
   * AUCTION_RESEND_CLAIM_ATTRIBUTES, all liquidation-watch's grant lets it touch (watch45-auctions-permission).
   */
  async claimStepResend(
    id: string,
    step: number,
    atMs: number,
    lastBeforeMs: number,
  ): Promise<string | undefined> {
    for (const [name, value] of [
      ['step', step],
      ['time', atMs],
      ['time', lastBeforeMs],
    ] as const)
      if (!Number.isSafeInteger(value) || value < 0)
        throw new AdapterInputError(`auctions/bad-${name}: ${value} is not an integer >= 0`);
    // Made before send: every retry of the call carries it.
    const claimer = randomUUID();
    try {
      await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { id: S(id) },
          UpdateExpression: 'SET stepResent = :resent',
          ConditionExpression:
            '#state = :running AND step = :step AND (attribute_not_exists(stepResent) OR stepResent.step <> :step OR stepResent.atMs <= :before OR stepResent.claimer = :claimer)',
          ExpressionAttributeNames: { '#state': 'state' },
          ExpressionAttributeValues: {
            ':resent': stepResentAttr({ step, atMs, claimer }),
            ':running': S('RUNNING'),
            ':step': N(step),
            ':before': N(lastBeforeMs),
            ':claimer': S(claimer),
          },
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error)) return undefined;
      throw error;
    }
    this.crash('auctions.claimStepResend');
    return claimer;
  }

  /**
   * UpdateItem of the claim's time alone, to 0, conditional on the claim holding `claimer`: another run's claim, or one
   * a previous version's write left without a token, stands (watch46-give-back-own). Its retry after a lost answer finds
   * the token still there and sets 0 again. Names only `id` and `stepResent`, within the watch's grant.
   */
  async giveBackStepResend(id: string, claimer: string): Promise<boolean> {
    if (typeof claimer !== 'string' || claimer === '')
      throw new AdapterInputError(`auctions/bad-claimer: ${String(claimer)} is no claim's token`);
    try {
      await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { id: S(id) },
          UpdateExpression: 'SET stepResent.atMs = :zero',
          ConditionExpression: 'stepResent.claimer = :claimer',
          ExpressionAttributeValues: { ':zero': N(0), ':claimer': S(claimer) },
        }),
      );
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
    this.crash('auctions.giveBackStepResend');
    return true;
  }

  /**
   * Reads only what it returns: the sleepers reached, in wake order (paged, up to limit + 1), then, unless one
   * more than the limit was reached, the nearest one not reached (a query of one item).
   */
  async sleepers(
    symbol: string,
    direction: 'BUY' | 'SELL',
    mark: PriceE8 | undefined,
    limit: number,
    after?: Sleeper,
  ): Promise<{ readonly due: readonly Sleeper[]; readonly next: PriceE8 | undefined }> {
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new AdapterInputError(`auctions/bad-limit: a limit is an integer >= 1, got ${limit}`);
    const sell = direction === 'SELL';
    const query = (reached: boolean, max: number, start?: Record<string, AttributeValue>) =>
      this.dynamo.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: AUCTION_WAKE_INDEX,
          KeyConditionExpression:
            mark === undefined
              ? 'wakeKey = :key'
              : `wakeKey = :key AND wakeMark ${reached ? (sell ? '<=' : '>=') : sell ? '>' : '<'} :mark`,
          ExpressionAttributeValues: {
            ':key': S(wakeKeyOf(symbol, direction)),
            ...(mark === undefined ? {} : { ':mark': N(mark) }),
          },
          ScanIndexForward: sell,
          Limit: max,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
    const sleeperOf = (item: Item): Sleeper => ({
      id: readS(item, 'id'),
      step: readInt(item, 'step'),
      wakeMark: readBig(item, 'wakeMark'),
    });
    const reached: Sleeper[] = [];
    // After a sleeper: DynamoDB's paging from its keys in the index (it need not be there any more).
    let start: Record<string, AttributeValue> | undefined = after && {
      wakeKey: S(wakeKeyOf(symbol, direction)),
      wakeMark: N(after.wakeMark),
      id: S(after.id),
    };
    do {
      const out = await query(true, limit + 1 - reached.length, start);
      for (const item of out.Items ?? []) reached.push(sleeperOf(item));
      start = out.LastEvaluatedKey;
    } while (start && reached.length <= limit);
    if (reached.length > limit) return { due: reached.slice(0, limit), next: reached[limit]?.wakeMark };
    if (mark === undefined) return { due: reached, next: undefined };
    const [nearest] = (await query(false, 1)).Items ?? [];
    return { due: reached, next: nearest ? readBig(nearest, 'wakeMark') : undefined };
  }
}

import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { SETTLEMENT_UNITS, type SettlementAmounts } from '../../domain/waterfall.ts';
import {
  type AuctionFill,
  type AuctionRecord,
  isOpenLiquidation,
  type LiquidationRecord,
  liquidationStartedAtMs,
} from '../../ports/index.ts';
import { encodeContext } from '../../schemas/context.ts';
import { openShardOf } from '../shards.ts';
import { failureAttr, fillAttr, type Item, N, S, strings } from './codec.ts';
import { SCHEMA_ATTR, schemaStamp } from './writer-schema.ts';

/**
 * The DynamoDB items of the records that grow (a liquidation's fills and history, an auction's fills), apart from
 * the adapters' commands: no runtime import of the SDK, so the embedded stores measure an item as DynamoDB would
 * (itemBytes) without loading it.
 */

export const SETTLEMENT_KEYS = Object.keys(SETTLEMENT_UNITS) as (keyof SettlementAmounts)[];

/**
 * Settlement amounts the first versions did not write (before 27f9b99, 2 December): 0 when absent, as they were
 * then (no last resort, nothing carried); every other amount is required. Every version since 40249db (6 December,
 * before the writer-schema fence) reads them so: this one writes them only when not 0 (cost52-settlement-zeros),
 * 37 bytes less on a settled liquidation, whose every write is a write unit a KB.
 */
export const SETTLEMENT_KEYS_ADDED: ReadonlySet<keyof SettlementAmounts> = new Set([
  'lastResortClosedSize',
  'carriedSize',
]);

/*
 * Upper bounds of itemBytes(liquidationItem(l)) and itemBytes(auctionItem(a)), read off the record without building
 * its item: the embedded stores measure an item exactly only when its bound is over DynamoDB's limit (building and
 * measuring every item added about a third to the crash replay). The bound walks the record itself as JSON at its
 * most (jsonBytesAtMost), so an attribute a later version adds is counted without a change here; only the
 * attributes an item derives from the record (index keys) are added by name.
 * test/unit/embedded-item-size.test.ts holds each bound above the exact size.
 */

/** The most an N value of up to 38 digits counts (1 per two digits, plus 1). */
const NUMBER_BYTES = 21;
/** A bigint past 38 digits (DynamoDB refuses it anyway) counts in full. */
const LARGEST = 10n ** 38n;

/**
 * At least the bytes DynamoDB counts for a value, and the UTF-8 bytes of its JSON as encodeContext writes it
 * (bigints as "123n", a string maybe behind a backslash), walked without encoding. A string's JSON is at most 6
 * bytes a UTF-16 unit (\u0000 escapes; UTF-8's most is 3), plus quotes and escape; a name is counted as a string
 * (DynamoDB: its UTF-8 bytes); a list or map 3 and 1 an element, as DynamoDB counts them.
 */
function jsonBytesAtMost(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return 6 * value.length + 4;
    case 'bigint':
      return value < LARGEST && value > -LARGEST ? 2 * NUMBER_BYTES : value.toString().length + 3;
    case 'number':
      return 24;
    case 'boolean':
      return 5;
    case 'object': {
      if (value === null) return 4;
      let total = 3;
      if (Array.isArray(value)) {
        for (const e of value) total += 1 + jsonBytesAtMost(e);
        return total;
      }
      for (const key in value)
        total += 6 * key.length + 6 + jsonBytesAtMost((value as Record<string, unknown>)[key]);
      return total;
    }
    default:
      return 4;
  }
}

/** The writer's schema every item carries (writer-schema.ts). */
const STAMP_BYTES = SCHEMA_ATTR.length + NUMBER_BYTES;

/**
 * The token of the call that last wrote an item alone (owned-put.ts `putOwned`: a create or replace of an auction, a
 * liquidation, a position or a provider; `updateItemOwned`: a position's reprice, a liquidation's mark dispute): the
 * retry of a write whose answer was lost finds its own write by it. A transaction's puts carry none (the stored item
 * then has none), and the other UpdateItems (recordFailure) keep what is stored. The auction's resend claim keeps its
 * token inside itself (`stepResent.claimer`: claim45-own-token), so no write takes another's token for its own.
 */
export const WRITER_ATTR = 'writer';
/** A writer token's length (a UUID), so the embedded stores measure an item as the adapter writes it. */
export const WRITER_TOKEN_LENGTH = 36;
const WRITER_BYTES = WRITER_ATTR.length + WRITER_TOKEN_LENGTH;
/** A writer token's stand-in, of its size: what the embedded stores measure an item put alone with. */
export const SIZED_WRITER = '-'.repeat(WRITER_TOKEN_LENGTH);

/** An item as a put alone writes it, with its writer's token. */
export const withWriter = (item: Item, writer: string): Item => ({ ...item, [WRITER_ATTR]: S(writer) });

/**
 * At least itemBytes(withWriter(liquidationItem(l), writer)), without building the item: the record, its open
 * index's keys and a writer token.
 */
export const liquidationItemBytesAtMost = (l: LiquidationRecord): number =>
  jsonBytesAtMost(l) +
  STAMP_BYTES +
  WRITER_BYTES +
  'openShard'.length +
  3 * 'open#'.length +
  24 +
  'startedAtMs'.length +
  NUMBER_BYTES;

/**
 * At least itemBytes(withWriter(auctionItem(a), writer)), without building the item: the record, its wake index's key and a
 * writer token.
 */
export const auctionItemBytesAtMost = (a: AuctionRecord): number =>
  jsonBytesAtMost(a) +
  STAMP_BYTES +
  WRITER_BYTES +
  'wakeKey'.length +
  3 * (a.symbol.length + 1 + a.direction.length);

export function liquidationItem(l: LiquidationRecord): Item {
  return {
    id: S(l.id),
    positionId: S(l.positionId),
    symbol: S(l.symbol),
    side: S(l.side),
    state: S(l.state),
    tickKey: S(l.tickKey),
    triggerMark: N(l.triggerMark),
    remainingSize: N(l.remainingSize),
    marketFills: { L: l.marketFills.map(fillAttr) },
    ...(l.settlement === undefined ? {} : { settlement: settlementAttr(l.settlement) }),
    history: {
      L: l.history.map(
        (e): AttributeValue => ({
          M: { atMs: N(e.atMs), state: S(e.state), ...(e.note === undefined ? {} : { note: S(e.note) }) },
        }),
      ),
    },
    ...(l.context === undefined ? {} : { context: S(encodeContext(l.context)) }),
    ...(l.lastFailure === undefined ? {} : { lastFailure: failureAttr('liquidations', l.lastFailure) }),
    ...(l.markDisputedSinceMs === undefined ? {} : { markDisputedSinceMs: N(l.markDisputedSinceMs) }),
    // Listed in the open index while work remains; neither key moves meanwhile (the index is written twice).
    ...(isOpenLiquidation(l)
      ? { openShard: S(openShardOf(l.id)), startedAtMs: N(liquidationStartedAtMs(l)) }
      : {}),
    version: N(l.version),
    ...schemaStamp(),
  };
}

/** Settlement amounts as scaled integers, like every other amount of the record; those read as 0 when absent, if 0. */
function settlementAttr(s: SettlementAmounts): AttributeValue {
  const M: Item = {};
  for (const key of SETTLEMENT_KEYS) if (s[key] !== 0n || !SETTLEMENT_KEYS_ADDED.has(key)) M[key] = N(s[key]);
  return { M };
}

/** An auction's fill: fillAttr's, and when it was made where the record says (AuctionFill). */
const auctionFillAttr = (f: AuctionFill): AttributeValue => {
  const fill = fillAttr(f);
  if (f.step === undefined && f.atMs === undefined && f.mark === undefined) return fill;
  return {
    M: {
      ...fill.M,
      ...(f.step === undefined ? {} : { step: N(f.step) }),
      ...(f.atMs === undefined ? {} : { atMs: N(f.atMs) }),
      ...(f.mark === undefined ? {} : { mark: N(f.mark) }),
    },
  };
};

export const auctionItem = (a: AuctionRecord): Item => ({
  id: S(a.id),
  liquidationId: S(a.liquidationId),
  symbol: S(a.symbol),
  direction: S(a.direction),
  lot: N(a.lot),
  remainingLot: N(a.remainingLot),
  top: N(a.top),
  startedAtMs: N(a.startedAtMs),
  resets: N(a.resets),
  step: N(a.step),
  state: S(a.state),
  fills: { L: a.fills.map(auctionFillAttr) },
  ...(a.lastFailure === undefined ? {} : { lastFailure: failureAttr('auctions', a.lastFailure) }),
  ...(a.wakeMark === undefined ? {} : { wakeMark: N(a.wakeMark) }),
  ...(a.endedBy === undefined ? {} : { endedBy: S(a.endedBy) }),
  ...(a.endedAtMark === undefined ? {} : { endedAtMark: N(a.endedAtMark) }),
  ...(a.stepDueAtMs === undefined ? {} : { stepDueAtMs: N(a.stepDueAtMs) }),
  ...(a.stepResent === undefined ? {} : { stepResent: stepResentAttr(a.stepResent) }),
  ...(a.spentIn === undefined ? {} : { spentIn: strings(a.spentIn) }),
  ...(a.spentWokenTo === undefined
    ? {}
    : {
        spentWokenTo: {
          M: {
            symbol: S(a.spentWokenTo.symbol),
            direction: S(a.spentWokenTo.direction),
            id: S(a.spentWokenTo.id),
            step: N(a.spentWokenTo.step),
            wakeMark: N(a.spentWokenTo.wakeMark),
          },
        },
      }),
  ...(a.spentWakeBegan === undefined
    ? {}
    : {
        spentWakeBegan: {
          M: Object.fromEntries(
            Object.entries(a.spentWakeBegan).map(([symbol, epoch]) => [symbol, N(epoch)]),
          ),
        },
      }),
  ...(a.spentWakeSendFailed ? { spentWakeSendFailed: { BOOL: true } } : {}),
  ...(a.runFrom === undefined ? {} : { runFrom: N(a.runFrom) }),
  ...(a.wakeMark === undefined || a.state !== 'RUNNING'
    ? {}
    : { wakeKey: S(wakeKeyOf(a.symbol, a.direction)) }),
  version: N(a.version),
  ...schemaStamp(),
});

/** The resend claim's map: its step and time, and the claiming call's token when known (claim45-own-token). */
export const stepResentAttr = (claim: NonNullable<AuctionRecord['stepResent']>): AttributeValue => ({
  M: {
    step: N(claim.step),
    atMs: N(claim.atMs),
    ...(claim.claimer === undefined ? {} : { claimer: S(claim.claimer) }),
  },
});

export const wakeKeyOf = (symbol: string, direction: 'BUY' | 'SELL'): string => `${symbol}#${direction}`;

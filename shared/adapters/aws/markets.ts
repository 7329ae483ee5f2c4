import { randomUUID } from 'node:crypto';
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import type { PriceE8 } from '../../domain/units.ts';
import {
  type AcceptedTick,
  type BreakerConfirming,
  ConditionFailedError,
  type CrashHook,
  type DroppedRefusal,
  highestSequence,
  isTracedRefusal,
  isUnreadableRefusal,
  type JudgedJump,
  type JudgedMarket,
  type JumpContinued,
  type MarketReadGuard,
  type MarketRepository,
  type MarketState,
  type PendingTick,
  type PrintAsRead,
  type RefusalNote,
  type RefusalTrace,
  type RefusalTraces,
  type RegistrationWake,
  TRACED_REFUSALS,
  type TracedRefusal,
  type UnknownRefusalTrace,
  type UnknownRefusalTraces,
  type UnreadableRefusalTrace,
  type UnreadableRefusalTraces,
} from '../../ports/index.ts';
import {
  AdapterInputError,
  CorruptItemError,
  failedCondition,
  type Item,
  isConditionalCheckFailed,
  N,
  noCrash,
  optBig,
  optInt,
  optReadable,
  optS,
  readBig,
  readInt,
  readMap,
  readOr,
  readS,
  S,
} from './codec.ts';

/**
 * Markets table, pk `symbol`. `lastSequence` sits beside the `lastTick` map so acceptTick is one conditional
 * update on a top-level attribute; `pendingSequence` and `breaker` are present only while set, as are the
 * wake marks of the sleeping auctions, `wakeMarkSELL` and `wakeMarkBUY`, a held sequence jump, `heldJump`, and a
 * registration's wake going on in continuations, `registrationWake`.
 * Counters written by ADD: `providersEpoch`, `wakeCovers{SELL,BUY}`, `lastResortFills{SELL,BUY}`; `spentWakeEpoch` only
 * rises (a conditional SET). The `lastTick`, `breaker` and `heldJump` maps carry the `writer` token of the call that
 * wrote them (see writerToken), `heldJump` also the `continuedWriter` of its last continuation written with a note
 * (CONTINUED_WRITER), which reads ignore; so do the top-level tokens of the writes with no map of their own
 * (`rebaseWriter`, SEGMENT_WRITER_ATTR, wakeWriterAttr, EPOCH_WRITER_ATTR, fillsWriterAttr), each left in place until
 * its next write. Each refusal trace is a map of its own, `refusal:<reason>` (refusalAttr): one kind's note never waits
 * on another's.
 */

/** MarketState.providersEpoch: bumped by admin (ADD), checked by the transactor (ConditionCheck). */
export const PROVIDERS_EPOCH_ATTR = 'providersEpoch';
/** MarketState.spentWakeEpoch: marked once the record of a spent provider's wake keeps the epoch its bump left. */
const SPENT_WAKE_EPOCH_ATTR = 'spentWakeEpoch';

/** MarketState.registrationWake: a map written whole, with the `writer` of the write (lost answers, see writerToken). */
const REGISTRATION_WAKE_ATTR = 'registrationWake';

const registrationWakeAttr = (wake: RegistrationWake, writer: string): AttributeValue => ({
  M: {
    epoch: N(wake.epoch),
    part: N(wake.part),
    ...(wake.wokenTo === undefined
      ? {}
      : {
          wokenTo: {
            M: {
              direction: S(wake.wokenTo.direction),
              id: S(wake.wokenTo.id),
              step: N(wake.wokenTo.step),
              wakeMark: N(wake.wokenTo.wakeMark),
            },
          },
        }),
    ...(wake.done ? { done: { BOOL: true } } : {}),
    ...(wake.sendFailed ? { sendFailed: { BOOL: true } } : {}),
    writer: S(writer),
  },
});

function readRegistrationWake(m: Item): RegistrationWake {
  const wokenTo = m.wokenTo === undefined ? undefined : readMap(m, 'wokenTo');
  const direction = wokenTo && optS(wokenTo, 'direction');
  if (wokenTo && direction !== 'BUY' && direction !== 'SELL')
    throw new CorruptItemError(`adapter/bad-direction: ${direction}`);
  return {
    epoch: readInt(m, 'epoch'),
    part: readInt(m, 'part'),
    ...(wokenTo === undefined
      ? {}
      : {
          wokenTo: {
            direction: direction as 'BUY' | 'SELL',
            id: readS(wokenTo, 'id'),
            step: readInt(wokenTo, 'step'),
            wakeMark: readBig(wokenTo, 'wakeMark'),
          },
        }),
    ...(m.done?.BOOL === true ? { done: true } : {}),
    ...(m.sendFailed?.BOOL === true ? { sendFailed: true as const } : {}),
  };
}

/** The pending tick is the last tick: its sequence and recorded stamp (another numbering may reuse the number). */
const PENDING_TICK = 'pendingSequence = :seq AND lastTick.timestampMs = :ts';

const lastResortFillsAttr = (direction: 'BUY' | 'SELL'): string => `lastResortFills${direction}`;
const wakeAttr = (direction: 'BUY' | 'SELL'): string => `wakeMark${direction}`;
const coversAttr = (direction: 'BUY' | 'SELL'): string => `wakeCovers${direction}`;

/**
 * In `heldJump`: the token of the last continuation written with its note (writerToken), beside the hold's `writer`
 * (review50-feed-jump-own-by-value).
 */
const CONTINUED_WRITER = 'continuedWriter';
/** The token of the last claimSegment that wrote (writerToken). */
const SEGMENT_WRITER_ATTR = 'pendingSegmentWriter';
/** The token of the side's last replaceWakeMark that wrote (coverWakeMark writes none: its covers only need to grow). */
const wakeWriterAttr = (direction: 'BUY' | 'SELL'): string => `wakeMarkWriter${direction}`;
/** The token of the last bumpProvidersEpoch (addOnce). */
const EPOCH_WRITER_ATTR = 'providersEpochWriter';
/** The token of the side's last countLastResortFill (addOnce). */
const fillsWriterAttr = (direction: 'BUY' | 'SELL'): string => `lastResortFillsWriter${direction}`;

function requireWakeMark(mark: PriceE8): void {
  if (typeof mark !== 'bigint' || mark <= 0n)
    throw new AdapterInputError(`markets/bad-wake-mark: a wake mark is a positive price, got ${mark}`);
}

const tickAttr = (tick: AcceptedTick, writer?: string): AttributeValue => ({
  M: {
    sequence: N(tick.sequence),
    markPrice: N(tick.markPrice),
    timestampMs: N(tick.timestampMs),
    ...(tick.indexPrice === undefined ? {} : { indexPrice: N(tick.indexPrice) }),
    ...(writer === undefined ? {} : { writer: S(writer) }),
  },
});

/**
 * A token of one acceptTick, tripBreaker, holdSequenceJump, rebaseSequence, recordRegistrationWake, claimSegment,
 * replaceWakeMark, bumpProvidersEpoch or countLastResortFill call, written with what it writes.
 * UpdateItem has no idempotency token: the SDK retries a write whose answer was lost (a timeout, a reset
 * connection) by sending the very same request again, whose condition then fails on the write it made itself.
 * The stored item (ALL_OLD) then holds this call's token, while a concurrent duplicate delivery of the same tick
 * (EventBridge is at-least-once), which wrote the same tick, holds its own: only the first is this call's write,
 * the second is a race it lost.
 * Made once per call, before `send`, so every retry of the request carries it.
 */
const writerToken = (): string => randomUUID();

/** The `writer` of a stored map (lastTick, breaker), if any. */
const writerOf = (
  item: Item | undefined,
  map: 'lastTick' | 'breaker' | 'heldJump' | typeof REGISTRATION_WAKE_ATTR,
): string | undefined => item?.[map]?.M?.writer?.S;

/** Where a write keeps its token: the `writer` of a map it writes, or a top-level attribute of its own. */
type TokenAt = 'breaker' | 'heldJump' | typeof REGISTRATION_WAKE_ATTR | { readonly attr: string };

const tokenAt = (item: Item | undefined, at: TokenAt): string | undefined =>
  typeof at === 'string' ? writerOf(item, at) : item?.[at.attr]?.S;

const readTick = (m: Item): AcceptedTick => {
  const indexPrice = optBig(m, 'indexPrice');
  return {
    sequence: readInt(m, 'sequence'),
    markPrice: readBig(m, 'markPrice'),
    timestampMs: readInt(m, 'timestampMs'),
    ...(indexPrice === undefined ? {} : { indexPrice }),
  };
};

/**
 * The breaker's confirming trace: a trace no rule reads (MarketState.breaker.confirming), so one that does not read (a
 * later version's shape, an edit by hand) is left out rather than failing every read of the market, and with it every
 * tick while the breaker holds (final47-breaker-trace-unreadable). Notes made while it is stored fail their
 * condition (best effort): a replay waiting on one stalls, naming the breaker.
 */
function optConfirming(breaker: Item): { confirming?: BreakerConfirming } {
  if (breaker.confirming === undefined) return {};
  return readOr(
    () => {
      const confirming = readMap(breaker, 'confirming');
      return { confirming: { sequence: readInt(confirming, 'sequence'), atMs: readInt(confirming, 'atMs') } };
    },
    () => ({}),
  );
}

/**
 * MarketState.refusals: a top-level map per kind, so a note is one SET that needs no parent map. Every accepted tick
 * writes the market's item, and a write costs a unit a KB of the item: the traces are kept short (short keys, no
 * detail: about 90 bytes a kind noted).
 */
const REFUSAL_ATTR_PREFIX = 'refusal:';
/** A kind's trace attribute (a kind this version does not know has one too: optRefusals). */
export const refusalAttr = (reason: TracedRefusal | string): string => `${REFUSAL_ATTR_PREFIX}${reason}`;

function readRefusalTrace(m: Item): RefusalTrace {
  const resumedAfterMs = optInt(m, 'resumed');
  return {
    sequence: readInt(m, 'seq'),
    timestampMs: readInt(m, 'stamp'),
    atMs: readInt(m, 'at'),
    count: readInt(m, 'count'),
    sinceMs: readInt(m, 'since'),
    // Absent on a trace of session 48's first commits: one note in its second.
    notesInSecond: optInt(m, 'n') ?? 1,
    ...(resumedAfterMs === undefined ? {} : { resumedAfterMs }),
  };
}

/**
 * The refusal traces. One that does not read (a trace no rule reads, as optConfirming's) is kept opaque, as stored
 * (feed48c-trace-unreadable): left out, a note met it as absent and failed its condition on it, a write each refusal
 * of the kind, and no expiry removed it.
 */
function optRefusals(item: Item): {
  refusals?: RefusalTraces;
  unreadableRefusals?: UnreadableRefusalTraces;
  unknownRefusals?: UnknownRefusalTraces;
} {
  const refusals: { [K in TracedRefusal]?: RefusalTrace } = {};
  const unreadable: { [K in TracedRefusal]?: UnreadableRefusalTrace } = {};
  for (const reason of TRACED_REFUSALS) {
    const attr = refusalAttr(reason);
    const trace = optReadable(item[attr], () => readRefusalTrace(readMap(item, attr)));
    if (trace === undefined) continue;
    if (isUnreadableRefusal(trace)) unreadable[reason] = trace;
    else refusals[reason] = trace;
  }
  // A kind this version does not know (a later version's, during a mixed deploy or after a rollback): opaque too, for
  // the expiry to remove (more48b-trace-unknown-kind), by its age where it says it (feed49-unknown-kind-kept).
  const unknown: { [kind: string]: UnknownRefusalTrace } = {};
  for (const [attr, value] of Object.entries(item)) {
    if (!attr.startsWith(REFUSAL_ATTR_PREFIX)) continue;
    const kind = attr.slice(REFUSAL_ATTR_PREFIX.length);
    if (isTracedRefusal(kind)) continue;
    const noted = notedOf(item, attr);
    unknown[kind] = {
      unreadable: `${attr}: a refusal kind this version does not know`,
      stored: value,
      ...(noted ? { noted } : {}),
    };
  }
  return {
    ...(Object.keys(refusals).length === 0 ? {} : { refusals }),
    ...(Object.keys(unreadable).length === 0 ? {} : { unreadableRefusals: unreadable }),
    ...(Object.keys(unknown).length === 0 ? {} : { unknownRefusals: unknown }),
  };
}

/** When a trace of a kind unknown was noted, and under which rebase, as a known kind's says it (`at`, `resumed`). */
function notedOf(item: Item, attr: string): UnknownRefusalTrace['noted'] {
  try {
    const m = readMap(item, attr);
    const resumedAfterMs = optInt(m, 'resumed');
    return { atMs: readInt(m, 'at'), ...(resumedAfterMs === undefined ? {} : { resumedAfterMs }) };
  } catch (error) {
    if (!(error instanceof CorruptItemError)) throw error;
    return undefined;
  }
}

export function marketFromItem(item: Item): MarketState {
  const pendingSequence = optInt(item, 'pendingSequence');
  const pendingSegment = optInt(item, 'pendingSegment');
  const breaker = item.breaker === undefined ? undefined : readMap(item, 'breaker');
  const SELL = optBig(item, wakeAttr('SELL'));
  const BUY = optBig(item, wakeAttr('BUY'));
  const coversSell = optInt(item, coversAttr('SELL'));
  const coversBuy = optInt(item, coversAttr('BUY'));
  const resumedAfterMs = optInt(item, 'resumedAfterMs');
  const providersEpoch = optInt(item, PROVIDERS_EPOCH_ATTR);
  const spentWakeEpoch = optInt(item, SPENT_WAKE_EPOCH_ATTR);
  const fillsSell = optInt(item, lastResortFillsAttr('SELL'));
  const fillsBuy = optInt(item, lastResortFillsAttr('BUY'));
  const anchor = item.bandAnchor === undefined ? undefined : readMap(item, 'bandAnchor');
  const heldJump = item.heldJump === undefined ? undefined : readMap(item, 'heldJump');
  const registrationWake =
    item[REGISTRATION_WAKE_ATTR] === undefined
      ? undefined
      : readRegistrationWake(readMap(item, REGISTRATION_WAKE_ATTR));
  return {
    symbol: readS(item, 'symbol'),
    ...(anchor === undefined
      ? {}
      : {
          bandAnchor: {
            markPrice: readBig(anchor, 'markPrice'),
            timestampMs: readInt(anchor, 'timestampMs'),
          },
        }),
    ...(resumedAfterMs === undefined ? {} : { resumedAfterMs }),
    ...optRefusals(item),
    ...(providersEpoch === undefined ? {} : { providersEpoch }),
    ...(spentWakeEpoch === undefined ? {} : { spentWakeEpoch }),
    ...(registrationWake === undefined ? {} : { registrationWake }),
    ...(fillsSell === undefined && fillsBuy === undefined
      ? {}
      : {
          lastResortFills: {
            ...(fillsSell === undefined ? {} : { SELL: fillsSell }),
            ...(fillsBuy === undefined ? {} : { BUY: fillsBuy }),
          },
        }),
    ...(item.lastTick === undefined ? {} : { lastTick: readTick(readMap(item, 'lastTick')) }),
    ...(heldJump === undefined
      ? {}
      : {
          heldJump: {
            tick: readTick(readMap(heldJump, 'tick')),
            heldAtMs: readInt(heldJump, 'heldAtMs'),
            ...(heldJump.continuedAtMs === undefined
              ? {}
              : { continuedAtMs: readInt(heldJump, 'continuedAtMs') }),
          },
        }),
    ...(pendingSequence === undefined ? {} : { pendingSequence }),
    ...(pendingSegment === undefined ? {} : { pendingSegment }),
    ...(breaker === undefined
      ? {}
      : {
          breaker: {
            reason: readS(breaker, 'reason'),
            trippedAtMs: readInt(breaker, 'trippedAtMs'),
            tick: readTick(readMap(breaker, 'tick')),
            ...optConfirming(breaker),
          },
        }),
    ...(SELL === undefined && BUY === undefined
      ? {}
      : { wakeMarks: { ...(SELL === undefined ? {} : { SELL }), ...(BUY === undefined ? {} : { BUY }) } }),
    ...(coversSell === undefined && coversBuy === undefined
      ? {}
      : {
          wakeCovers: {
            ...(coversSell === undefined ? {} : { SELL: coversSell }),
            ...(coversBuy === undefined ? {} : { BUY: coversBuy }),
          },
        }),
  };
}

/**
 * The condition that the print at `path` is `print` as read (its sequence, mark and stamp), or that there is none;
 * its values are added to `values` under `:<name>…`.
 */
function samePrintCondition(
  path: 'lastTick' | 'breaker.#tick' | 'heldJump.#tick',
  name: string,
  print: PrintAsRead | undefined,
  values: Record<string, AttributeValue>,
): string {
  if (print === undefined) return `attribute_not_exists(${path.split('.')[0]})`;
  values[`:${name}Seq`] = N(print.sequence);
  values[`:${name}Mark`] = N(print.markPrice);
  values[`:${name}Ts`] = N(print.timestampMs);
  return `${path}.#seq = :${name}Seq AND ${path}.markPrice = :${name}Mark AND ${path}.timestampMs = :${name}Ts`;
}

/** The condition that the last tick and the breaker's tick are the prints a judgment read. */
const judgedOnCondition = (judged: JudgedMarket, values: Record<string, AttributeValue>): string =>
  `${samePrintCondition('lastTick', 'judgedLast', judged.lastTick, values)} AND ${samePrintCondition(
    'breaker.#tick',
    'judgedBreaker',
    judged.breakerTick,
    values,
  )}`;

/** The attribute names a condition uses (DynamoDB refuses names an expression does not use). */
function namesUsedBy(condition: string): Pick<UpdateItemCommandInput, 'ExpressionAttributeNames'> {
  const names = {
    ...(condition.includes('#tick') ? { '#tick': 'tick' } : {}),
    ...(condition.includes('#seq') ? { '#seq': 'sequence' } : {}),
  };
  return Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {};
}

/** namesUsedBy, with `names` (those of a note folded in, which its SET uses too). */
const withNames = (
  condition: string,
  names: Record<string, string>,
): Pick<UpdateItemCommandInput, 'ExpressionAttributeNames'> => {
  const all = { ...namesUsedBy(condition).ExpressionAttributeNames, ...names };
  return Object.keys(all).length > 0 ? { ExpressionAttributeNames: all } : {};
};

/**
 * A refusal note's SET and condition (noteRefusal's, or folded into a hold or a continuation of a held jump), its values
 * and names added to `values` and `names`. Conditional on the market's resumedAfterMs as judged, so no note lands after
 * a rebase it did not see (any version's: every rebase writes resumedAfterMs), and on the stored trace of the kind being
 * numbered lower or noted before that rebase; one that did not read, on its being still exactly as read (a path into it
 * compares nothing sound).
 */
function noteParts(
  { reason, trace, replacing }: RefusalNote,
  values: Record<string, AttributeValue>,
  names: Record<string, string>,
): { set: string; condition: string } {
  const resumed = trace.resumedAfterMs;
  values[':trace'] = {
    M: {
      seq: N(trace.sequence),
      // The tick's own stamp (RefusalNote), whatever a held print records.
      stamp: N(trace.timestampMs),
      at: N(trace.atMs),
      count: N(trace.count),
      since: N(trace.sinceMs),
      n: N(trace.notesInSecond),
      ...(resumed === undefined ? {} : { resumed: N(resumed) }),
    },
  };
  names['#trace'] = refusalAttr(reason);
  if (resumed !== undefined) values[':resumed'] = N(resumed);
  const rebase = resumed === undefined ? 'attribute_not_exists(resumedAfterMs)' : 'resumedAfterMs = :resumed';
  let stored: string;
  if (replacing !== undefined) {
    values[':stored'] = replacing.stored as AttributeValue;
    stored = '#trace = :stored';
  } else {
    values[':traceSeq'] = N(trace.sequence);
    // Exactly what currentRefusals calls stale is noted over: a condition refusing one the caller judged stale failed
    // on every fresh read, and a hold or continuation riding with it too (review49-feed-note-livelock).
    stored =
      resumed === undefined
        ? '(attribute_not_exists(#trace) OR #trace.seq < :traceSeq OR attribute_exists(#trace.resumed))'
        : '(attribute_not_exists(#trace) OR #trace.seq < :traceSeq OR ' +
          'attribute_not_exists(#trace.resumed) OR #trace.resumed <> :resumed)';
  }
  return { set: '#trace = :trace', condition: `${rebase} AND ${stored}` };
}

/** A stored number that is an integer, exactly (a bigint); anything else, undefined. */
const exactInteger = (value: AttributeValue | undefined): bigint | undefined =>
  value?.N !== undefined && /^-?\d+$/.test(value.N) ? BigInt(value.N) : undefined;

/** Whether a stored held jump (a failed write's, ALL_OLD) holds `print`: its number, mark and stamp. */
const holdsPrint = (jump: Item | undefined, print: PrintAsRead): jump is Item => {
  const stored = jump?.tick?.M;
  return (
    exactInteger(stored?.sequence) === BigInt(print.sequence) &&
    exactInteger(stored?.markPrice) === print.markPrice &&
    exactInteger(stored?.timestampMs) === BigInt(print.timestampMs)
  );
};

/**
 * Whether `item` (a failed write's, ALL_OLD) refuses the note for certain: noteParts' condition, judged here so that
 * no note goes alone after a write that failed on it too (feed51-jump-double-refusal). Unsure (a part that does not
 * read, a trace replaced since it was read as unreadable), false: the note alone then decides, as before.
 */
function refusesNote(item: Item, { reason, trace, replacing }: RefusalNote): boolean {
  const resumed = trace.resumedAfterMs;
  // The market's rebase as judged.
  if (resumed === undefined) {
    if (item.resumedAfterMs !== undefined) return true;
  } else {
    if (item.resumedAfterMs === undefined) return true;
    const rebased = exactInteger(item.resumedAfterMs);
    if (rebased === undefined) return false;
    if (rebased !== BigInt(resumed)) return true;
  }
  // The stored trace of the kind.
  const stored = item[refusalAttr(reason)];
  if (replacing !== undefined) return stored === undefined;
  const m = stored?.M;
  const seq = exactInteger(m?.seq);
  if (m === undefined || seq === undefined || seq < BigInt(trace.sequence)) return false;
  // Numbered as high: refused unless it says another rebase than the note's.
  if (resumed === undefined) return m.resumed === undefined;
  return exactInteger(m.resumed) === BigInt(resumed);
}

export class DynamoMarketRepository implements MarketRepository {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
    private readonly crash: CrashHook = noCrash,
  ) {}

  async get(symbol: string): Promise<MarketState | undefined> {
    const out = await this.dynamo.send(
      new GetItemCommand({ TableName: this.table, Key: { symbol: S(symbol) }, ConsistentRead: true }),
    );
    return out.Item ? marketFromItem(out.Item) : undefined;
  }

  /** pending: sets pendingSequence to this tick's sequence; not pending: removes any pending mark. */
  async acceptTick(
    symbol: string,
    tick: AcceptedTick,
    expectedLastSequence: number | undefined,
    pending: boolean,
    guard?: MarketReadGuard,
  ): Promise<MarketState> {
    const writer = writerToken();
    const values: Record<string, AttributeValue> = {
      ':tick': tickAttr(tick, writer),
      ':seq': N(tick.sequence),
    };
    const anchor = guard?.bandAnchor;
    if (anchor) {
      values[':anchor'] = { M: { markPrice: N(anchor.markPrice), timestampMs: N(anchor.timestampMs) } };
    }
    const names: Record<string, string> = {};
    // The item may exist without a tick (a breaker tripped first), so test the attribute, not the key.
    const conditions = [
      expectedLastSequence === undefined ? 'attribute_not_exists(lastSequence)' : 'lastSequence = :expected',
    ];
    if (expectedLastSequence !== undefined) values[':expected'] = N(expectedLastSequence);
    if (guard) {
      // The breaker's print whole: a resume may have numbered another print as it
      // (review52-feed-breaker-guard-whole-print).
      conditions.push(samePrintCondition('breaker.#tick', 'guardBreaker', guard.breakerTick, values));
      if (guard.breakerTick !== undefined) Object.assign(names, { '#tick': 'tick', '#seq': 'sequence' });
      if (guard.pendingSequence === undefined) conditions.push('attribute_not_exists(pendingSequence)');
      else {
        conditions.push('pendingSequence = :pendingSeq');
        values[':pendingSeq'] = N(guard.pendingSequence);
      }
      if (guard.lastTick) {
        conditions.push('lastTick.markPrice = :lastMark AND lastTick.timestampMs = :lastTs');
        values[':lastMark'] = N(guard.lastTick.markPrice);
        values[':lastTs'] = N(guard.lastTick.timestampMs);
      }
    }
    let written: MarketState;
    try {
      const out = await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { symbol: S(symbol) },
          UpdateExpression: `SET lastTick = :tick, lastSequence = :seq${anchor ? ', bandAnchor = :anchor' : ''}${pending ? ', pendingSequence = :seq REMOVE pendingSegment' : ' REMOVE pendingSequence, pendingSegment'}, heldJump${guard?.closeBreaker ? ', breaker' : ''}`,
          ConditionExpression: conditions.join(' AND '),
          ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      written = marketFromItem(out.Attributes ?? {});
    } catch (error) {
      // The SDK's retry of a write whose answer was lost fails on that very write: it is this one's, not a race.
      // The same tick written by another call (a concurrent duplicate delivery) is a race lost (writerToken).
      const failed = failedCondition(error);
      if (!failed) throw error;
      if (!failed.item || writerOf(failed.item, 'lastTick') !== writer)
        throw new ConditionFailedError('markets/sequence');
      written = marketFromItem(failed.item);
    }
    this.crash('markets.acceptTick');
    return written;
  }

  async clearPending(symbol: string, tick: PendingTick): Promise<void> {
    // Another tick (or none) pending: nothing to clear.
    const done = await this.updateIf({
      TableName: this.table,
      Key: { symbol: S(symbol) },
      UpdateExpression: 'REMOVE pendingSequence, pendingSegment',
      ConditionExpression: PENDING_TICK,
      ExpressionAttributeValues: { ':seq': N(tick.sequence), ':ts': N(tick.timestampMs) },
    });
    if (done) this.crash('markets.clearPending');
  }

  async claimSegment(symbol: string, tick: PendingTick, segment: number): Promise<boolean> {
    if (!Number.isSafeInteger(segment) || segment < 1)
      throw new AdapterInputError(
        `markets/bad-segment: a continuation segment is an integer >= 1, got ${segment}`,
      );
    // The retry of a claim whose answer was lost finds the segment claimed by itself: this call's claim (read as
    // another's, the continuation re-sent all its tick started). Another delivery of the segment holds its own token.
    const writer = writerToken();
    const done = await this.updateOwned(
      {
        TableName: this.table,
        Key: { symbol: S(symbol) },
        UpdateExpression: `SET pendingSegment = :segment, ${SEGMENT_WRITER_ATTR} = :writer`,
        ConditionExpression: `${PENDING_TICK} AND (attribute_not_exists(pendingSegment) OR pendingSegment < :segment)`,
        ExpressionAttributeValues: {
          ':seq': N(tick.sequence),
          ':ts': N(tick.timestampMs),
          ':segment': N(segment),
          ':writer': S(writer),
        },
      },
      { attr: SEGMENT_WRITER_ATTR },
      writer,
    );
    if (done) this.crash('markets.claimSegment');
    return done;
  }

  /**
   * Holds a tick that jumped the sequence (domain/tick.ts); a lost answer's retry is known by its writer token. A note
   * given goes in the same write (feed49-jump-one-write).
   */
  async holdSequenceJump(
    symbol: string,
    tick: AcceptedTick,
    atMs: number,
    judged: JudgedJump,
    note?: RefusalNote,
  ): Promise<boolean> {
    const writer = writerToken();
    const values: Record<string, AttributeValue> = {
      ':held': { M: { tick: tickAttr(tick), heldAtMs: N(atMs), writer: S(writer) } },
    };
    const conditions = [
      samePrintCondition('heldJump.#tick', 'held', judged.heldTick, values),
      judgedOnCondition(judged, values),
    ];
    // Its last continuation as read: one since keeps the held jump for its span (feed51-hold-over-continuation).
    if (judged.heldTick !== undefined) {
      if (judged.heldContinuedAtMs === undefined)
        conditions.push('attribute_not_exists(heldJump.continuedAtMs)');
      else {
        values[':heldContinued'] = N(judged.heldContinuedAtMs);
        conditions.push('heldJump.continuedAtMs = :heldContinued');
      }
    }
    const names: Record<string, string> = {};
    const noted = note && noteParts(note, values, names);
    if (noted) conditions.push(noted.condition);
    const condition = conditions.join(' AND ');
    const done = await this.updateOwned(
      {
        TableName: this.table,
        Key: { symbol: S(symbol) },
        UpdateExpression: `SET heldJump = :held${noted ? `, ${noted.set}` : ''}`,
        ConditionExpression: condition,
        ...withNames(condition, names),
        ExpressionAttributeValues: values,
      },
      'heldJump',
      writer,
    );
    if (done) this.crash('markets.holdSequenceJump');
    return done;
  }

  /**
   * One write, the note folded in, conditional on no later continuation having landed (never set back: its own lost
   * answer's retry, or a print judged before another and written after it: review50-feed-jump-continued-back,
   * feed51-jump-continued-back-alone); on its failure the item as the condition met it (ALL_OLD) says which part
   * failed, and no write is spent on a part that cannot land (feed50-jump-note-failed). The note's condition failed
   * (judged from the item, refusesNote), the continuation goes alone when still held and none as late stands, and no
   * note after it, also when the jump is no longer held (feed51-jump-double-refusal). A lost answer's retry fails on
   * this call's own write, known by its token (`continuedWriter`), not by its values, which a twin judged on the same
   * read at the same millisecond writes too: written, nothing more (feed50-jump-note-lost-answer,
   * review50-feed-jump-own-by-value). Without a note, the retry lands again (its own time). The held jump is known by
   * its print as read, not its number alone: after a rebase, or a feed restarted on its old numbers, another print held
   * under that number is no jump this print continued (feed52-jump-continued-other-print).
   */
  async continueSequenceJump(
    symbol: string,
    heldTick: PrintAsRead,
    atMs: number,
    note?: RefusalNote,
  ): Promise<JumpContinued> {
    const names: Record<string, string> = { '#tick': 'tick', '#seq': 'sequence' };
    // The held print as read, whole: its number alone may be another print's (feed52-jump-continued-other-print).
    const heldValues: Record<string, AttributeValue> = {};
    const held = samePrintCondition('heldJump.#tick', 'held', heldTick, heldValues);
    const values: Record<string, AttributeValue> = { ':at': N(atMs), ...heldValues };
    const notLater = '(attribute_not_exists(heldJump.continuedAtMs) OR heldJump.continuedAtMs <= :at)';
    const writer = note && writerToken();
    const noted = note && noteParts(note, values, names);
    if (writer) values[':writer'] = S(writer);
    let item: Item | undefined;
    try {
      await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { symbol: S(symbol) },
          UpdateExpression: `SET heldJump.continuedAtMs = :at${
            noted ? `, heldJump.${CONTINUED_WRITER} = :writer, ${noted.set}` : ''
          }`,
          ConditionExpression: `${held} AND ${notLater}${noted ? ` AND ${noted.condition}` : ''}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    } catch (error) {
      const failed = failedCondition(error);
      if (!failed) throw error;
      item = failed.item ?? {};
    }
    const jump = item?.heldJump?.M;
    if (item === undefined || (writer && jump?.[CONTINUED_WRITER]?.S === writer)) {
      this.crash('markets.continueSequenceJump');
      return 'written';
    }
    const refused = note !== undefined && refusesNote(item, note);
    if (!holdsPrint(jump, heldTick)) return refused ? 'note-refused' : 'not-held';
    const stored = jump.continuedAtMs?.N;
    // Continued later (or a time that does not read: no write sets it back over it either).
    if (stored !== undefined && !(Number(stored) <= atMs))
      return refused ? 'note-refused' : 'continued-later';
    // Held, not continued later: the note's condition failed (without a note, nothing else can have), though
    // refusesNote may not tell (a trace that does not read), and written alone it would fail again. The continuation
    // alone, unless one as late stands (a twin's); still only when none later landed since. Held no more by then, the
    // note still fails: note-refused either way.
    if (note && (stored === undefined || Number(stored) < atMs)) {
      const alone = await this.updateIf({
        TableName: this.table,
        Key: { symbol: S(symbol) },
        UpdateExpression: 'SET heldJump.continuedAtMs = :at',
        ConditionExpression: `${held} AND ${notLater}`,
        ExpressionAttributeNames: { '#tick': 'tick', '#seq': 'sequence' },
        ExpressionAttributeValues: { ':at': N(atMs), ...heldValues },
      });
      if (alone) this.crash('markets.continueSequenceJump');
    }
    return note ? 'note-refused' : 'continued-later';
  }

  /**
   * Trips the breaker, or re-arms it with a later tick (domain/tick.ts: a market that keeps moving is followed
   * after two agreeing prints). Unjudged, a redelivered or older tick never moves it back; judged on the breaker as
   * read, any tick re-arms it (a print of the feed numbered below a bad one ahead of it).
   */
  async tripBreaker(
    symbol: string,
    reason: string,
    tick: AcceptedTick,
    atMs: number,
    judged?: JudgedMarket,
  ): Promise<boolean> {
    const writer = writerToken();
    const values: Record<string, AttributeValue> = {
      ':breaker': { M: { reason: S(reason), trippedAtMs: N(atMs), tick: tickAttr(tick), writer: S(writer) } },
    };
    let condition: string;
    if (judged) {
      // Judged on the last tick and the breaker as read: then any tick re-arms it (evaluateTick: a print numbered
      // below a bad one ahead of the feed). A trip judged before another landed was judged on the wrong breaker.
      condition = judgedOnCondition(judged, values);
    } else {
      // Unjudged, re-armed only by a later tick: a redelivered or older one never moves it back.
      condition = '(attribute_not_exists(breaker) OR breaker.#tick.#seq < :seq)';
      values[':seq'] = N(tick.sequence);
    }
    // The retry of a trip whose answer was lost finds its own breaker: tripped, by this call. The same trip by
    // another call (a concurrent duplicate of the tripping tick) is not this one's (writerToken).
    const done = await this.updateOwned(
      {
        TableName: this.table,
        Key: { symbol: S(symbol) },
        UpdateExpression: 'SET breaker = :breaker',
        ConditionExpression: condition,
        ...namesUsedBy(condition),
        ExpressionAttributeValues: values,
      },
      'breaker',
      writer,
    );
    if (done) this.crash('markets.tripBreaker');
    return done;
  }

  /** A trace only (no rule reads it): a lost answer's retry finds it written, and does nothing. */
  async noteBreakerConfirming(
    symbol: string,
    breakerTick: PrintAsRead,
    confirming: BreakerConfirming,
  ): Promise<void> {
    const values: Record<string, AttributeValue> = {
      ':confirming': { M: { sequence: N(confirming.sequence), atMs: N(confirming.atMs) } },
      ':confirmingSeq': N(confirming.sequence),
    };
    const condition = `${samePrintCondition('breaker.#tick', 'held', breakerTick, values)} AND (attribute_not_exists(breaker.confirming) OR breaker.confirming.#seq < :confirmingSeq)`;
    const done = await this.updateIf({
      TableName: this.table,
      Key: { symbol: S(symbol) },
      UpdateExpression: 'SET breaker.confirming = :confirming',
      ConditionExpression: condition,
      ...namesUsedBy(condition),
      ExpressionAttributeValues: values,
    });
    if (done) this.crash('markets.noteBreakerConfirming');
  }

  /**
   * A trace only (no rule reads it): a lost answer's retry finds it written, and does nothing. Conditional as
   * noteParts says.
   */
  async noteRefusal(
    symbol: string,
    reason: TracedRefusal,
    trace: RefusalTrace,
    replacing?: UnreadableRefusalTrace,
  ): Promise<void> {
    const values: Record<string, AttributeValue> = {};
    const names: Record<string, string> = {};
    const note = noteParts({ reason, trace, ...(replacing ? { replacing } : {}) }, values, names);
    const done = await this.updateIf({
      TableName: this.table,
      Key: { symbol: S(symbol) },
      UpdateExpression: `SET ${note.set}`,
      ConditionExpression: note.condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
    if (done) this.crash('markets.noteRefusal');
  }

  async dropRefusals(symbol: string, traces: readonly DroppedRefusal[]): Promise<void> {
    if (traces.length === 0) return;
    // One write for them all, each only as read: a note since (a fresh trace) fails it, and the next accepted tick
    // drops those still expired. One that did not read, or of a kind unknown, only while still exactly as read.
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = {};
    const conditions: string[] = [];
    traces.forEach(({ reason, trace }, i) => {
      names[`#t${i}`] = refusalAttr(reason);
      if (isUnreadableRefusal(trace)) {
        values[`:v${i}`] = trace.stored as AttributeValue;
        conditions.push(`#t${i} = :v${i}`);
        return;
      }
      names['#at'] = 'at';
      values[`:s${i}`] = N(trace.sequence);
      values[`:a${i}`] = N(trace.atMs);
      conditions.push(`#t${i}.seq = :s${i} AND #t${i}.#at = :a${i}`);
    });
    const done = await this.updateIf({
      TableName: this.table,
      Key: { symbol: S(symbol) },
      UpdateExpression: `REMOVE ${traces.map((_, i) => `#t${i}`).join(', ')}`,
      ConditionExpression: conditions.join(' AND '),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
    if (done) this.crash('markets.dropRefusals');
  }

  async rebaseSequence(
    symbol: string,
    sequence: number,
    expected: MarketState,
    resumedAfterMs: number,
  ): Promise<MarketState> {
    const last = expected.lastTick?.sequence;
    const breaker = expected.breaker?.tick.sequence;
    const pending = expected.pendingSequence;
    const top = highestSequence(expected);
    if (top < 0 || top <= sequence) {
      throw new ConditionFailedError(`markets/not-rebased: ${symbol} has no last tick above ${sequence}`);
    }
    const sets = [
      ...(last === undefined ? [] : ['lastSequence = :seq', 'lastTick.#seq = :seq']),
      ...(breaker === undefined ? [] : ['breaker.#tick.#seq = :seq']),
      'resumedAfterMs = :resumed',
    ];
    const values: Record<string, AttributeValue> = { ':seq': N(sequence), ':resumed': N(resumedAfterMs) };
    if (pending !== undefined) values[':pending'] = N(pending);
    // The prints as read, not their numbers alone: after a resume or a rebase another print may carry one.
    const condition = `${judgedOnCondition(
      { lastTick: expected.lastTick, breakerTick: expected.breaker?.tick },
      values,
    )} AND ${pending === undefined ? 'attribute_not_exists(pendingSequence)' : 'pendingSequence = :pending'}`;
    // Every trace is of the numbering left, whatever its kind or content: removed in the rebase's own write, so whatever
    // it removes was written before the rebase (a note judged after it is written after it), and no condition on the
    // traces is needed, none that could fail the rebase. A kind unknown noted between the read and the write is not
    // named here: it stays, stale by its `resumed` to its own version, and this one's next accepted tick removes it.
    const traces = [
      ...TRACED_REFUSALS.map(refusalAttr),
      ...Object.keys(expected.unknownRefusals ?? {}).map(refusalAttr),
    ];
    // The SDK's retry of a rebase whose answer was lost fails on the rebase itself: known by its writer token.
    const writer = writerToken();
    values[':writer'] = S(writer);
    let stored: Item;
    try {
      const out = await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { symbol: S(symbol) },
          // A held sequence jump was judged against the old numbering: the resumed feed starts without it.
          // A pending tick read with the state is taken over (its caller re-sent what it started), as acceptTick does.
          // A print the breaker refused while confirming was of the numbering left: its trace goes too.
          // The refusal traces too (a version before them leaves them: readers know them stale by resumedAfterMs),
          // of every kind read, a kind this version does not know included (feed49-resume-unknown-kinds).
          UpdateExpression: `SET ${sets.join(', ')}, rebaseWriter = :writer REMOVE heldJump, pendingSequence, pendingSegment${breaker === undefined ? '' : ', breaker.confirming'}, ${traces.map((_, i) => `#refusal${i}`).join(', ')}`,
          ConditionExpression: condition,
          ExpressionAttributeNames: {
            '#seq': 'sequence',
            ...(breaker === undefined ? {} : { '#tick': 'tick' }),
            ...Object.fromEntries(traces.map((attr, i) => [`#refusal${i}`, attr])),
          },
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      stored = out.Attributes ?? {};
    } catch (error) {
      const failed = failedCondition(error);
      if (!failed) throw error;
      if (failed.item?.rebaseWriter?.S !== writer)
        throw new ConditionFailedError(`markets/not-rebased: ${symbol} changed since it was read`);
      stored = failed.item;
    }
    this.crash('markets.rebaseSequence');
    return marketFromItem(stored);
  }

  async resetBreaker(symbol: string): Promise<void> {
    const done = await this.updateIf({
      TableName: this.table,
      Key: { symbol: S(symbol) },
      UpdateExpression: 'REMOVE breaker',
      ConditionExpression: 'attribute_exists(breaker)',
    });
    if (done) this.crash('markets.resetBreaker');
  }

  async coverWakeMark(
    symbol: string,
    direction: 'BUY' | 'SELL',
    wakeMark: PriceE8,
    likelyCovered = false,
  ): Promise<void> {
    requireWakeMark(wakeMark);
    const names = { '#wake': wakeAttr(direction), '#covers': coversAttr(direction) };
    const values = { ':wake': N(wakeMark), ':one': N(1) };
    const covering = direction === 'SELL' ? '<=' : '>=';
    const notCovering = direction === 'SELL' ? '>' : '<';
    // One write either way: the mark set with the count, or the count alone while the mark covers it. Whichever
    // the caller's read suggests goes first; the other follows when the mark moved in between.
    const set = (): Promise<boolean> =>
      this.updateIf({
        TableName: this.table,
        Key: { symbol: S(symbol) },
        UpdateExpression: 'SET #wake = :wake ADD #covers :one',
        ConditionExpression: `attribute_not_exists(#wake) OR #wake ${notCovering} :wake`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      });
    const count = (): Promise<boolean> =>
      this.updateIf({
        TableName: this.table,
        Key: { symbol: S(symbol) },
        UpdateExpression: 'ADD #covers :one',
        ConditionExpression: `#wake ${covering} :wake`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      });
    const order = likelyCovered ? [count, set] : [set, count];
    // Each failure means a concurrent writer moved the mark across this one: a handful of tries settle it.
    for (let attempt = 0; attempt < 3; attempt++) {
      for (const write of order) {
        if (await write()) {
          this.crash('markets.coverWakeMark');
          return;
        }
      }
    }
    throw new ConditionFailedError(`markets/wake-contended: ${symbol} ${direction} ${wakeMark}`);
  }

  async bumpProvidersEpoch(symbol: string): Promise<number> {
    const epoch = await this.addOnce(symbol, PROVIDERS_EPOCH_ATTR, EPOCH_WRITER_ATTR);
    this.crash('markets.bumpProvidersEpoch');
    return epoch;
  }

  async markSpentWake(symbol: string, epoch: number): Promise<void> {
    const marked = await this.updateIf({
      TableName: this.table,
      Key: { symbol: S(symbol) },
      UpdateExpression: 'SET #spent = :epoch',
      ConditionExpression: 'attribute_not_exists(#spent) OR #spent < :epoch',
      ExpressionAttributeNames: { '#spent': SPENT_WAKE_EPOCH_ATTR },
      ExpressionAttributeValues: { ':epoch': N(epoch) },
    });
    if (marked) this.crash('markets.markSpentWake');
  }

  async recordRegistrationWake(
    symbol: string,
    wake: RegistrationWake,
    expectedPart: number | undefined,
  ): Promise<boolean> {
    const writer = writerToken();
    const written = await this.updateOwned(
      {
        TableName: this.table,
        Key: { symbol: S(symbol) },
        UpdateExpression: 'SET #wake = :wake',
        ConditionExpression:
          expectedPart === undefined
            ? 'attribute_not_exists(#wake) OR #wake.epoch < :epoch'
            : '#wake.epoch = :epoch AND #wake.part = :part',
        ExpressionAttributeNames: { '#wake': REGISTRATION_WAKE_ATTR },
        ExpressionAttributeValues: {
          ':wake': registrationWakeAttr(wake, writer),
          ':epoch': N(wake.epoch),
          ...(expectedPart === undefined ? {} : { ':part': N(expectedPart) }),
        },
      },
      REGISTRATION_WAKE_ATTR,
      writer,
    );
    if (written) this.crash('markets.recordRegistrationWake');
    return written;
  }

  async countLastResortFill(symbol: string, direction: 'BUY' | 'SELL'): Promise<void> {
    await this.addOnce(symbol, lastResortFillsAttr(direction), fillsWriterAttr(direction));
    this.crash('markets.countLastResortFill');
  }

  async replaceWakeMark(
    symbol: string,
    direction: 'BUY' | 'SELL',
    expected: PriceE8,
    next: PriceE8 | undefined,
    covers: number | undefined,
  ): Promise<boolean> {
    if (next !== undefined) requireWakeMark(next);
    // The retry of a replace whose answer was lost finds the mark replaced by itself: replaced, by this call.
    const writer = writerToken();
    const done = await this.updateOwned(
      {
        TableName: this.table,
        Key: { symbol: S(symbol) },
        UpdateExpression: `${next === undefined ? 'REMOVE #wake SET' : 'SET #wake = :next,'} #writer = :writer`,
        ConditionExpression: `#wake = :expected AND ${
          covers === undefined ? 'attribute_not_exists(#covers)' : '#covers = :covers'
        }`,
        ExpressionAttributeNames: {
          '#wake': wakeAttr(direction),
          '#covers': coversAttr(direction),
          '#writer': wakeWriterAttr(direction),
        },
        ExpressionAttributeValues: {
          ':expected': N(expected),
          ':writer': S(writer),
          ...(next === undefined ? {} : { ':next': N(next) }),
          ...(covers === undefined ? {} : { ':covers': N(covers) }),
        },
      },
      { attr: wakeWriterAttr(direction) },
      writer,
    );
    if (done) this.crash('markets.replaceWakeMark');
    return done;
  }

  /**
   * A conditional update that writes `writer` (writerToken) at `at`: true when this call wrote it, including an SDK
   * retry whose answer was lost (its condition then fails on this call's own write). A stored token of this call
   * means its write was applied, whatever came after it; a later write of another call that replaced the token
   * hides it (false, as before).
   */
  private async updateOwned(input: UpdateItemCommandInput, at: TokenAt, writer: string): Promise<boolean> {
    try {
      await this.dynamo.send(
        new UpdateItemCommand({ ...input, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }),
      );
      return true;
    } catch (error) {
      const failed = failedCondition(error);
      if (!failed) throw error;
      return tokenAt(failed.item, at) === writer;
    }
  }

  /**
   * Adds 1 to `counter` once per call, creating the item if needed, and returns the count it left. An ADD alone is
   * counted again by the SDK's retry of a write whose answer was lost; so the call's token (writerToken) is set at
   * `tokenAttr` with the count, on the condition that the stored one is not it: the retry of an applied count fails
   * on its own token, and returns the count as it stood (ALL_OLD). Two calls carry two tokens: both count. Left:
   * another call's count landing between this call's and its retry replaces the token, and the retry counts again
   * (as every retry did before).
   */
  private async addOnce(symbol: string, counter: string, tokenAttr: string): Promise<number> {
    const writer = writerToken();
    try {
      const out = await this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { symbol: S(symbol) },
          UpdateExpression: 'SET #writer = :writer ADD #count :one',
          ConditionExpression: 'attribute_not_exists(#writer) OR #writer <> :writer',
          ExpressionAttributeNames: { '#count': counter, '#writer': tokenAttr },
          ExpressionAttributeValues: { ':one': N(1), ':writer': S(writer) },
          ReturnValues: 'UPDATED_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return readInt(out.Attributes ?? {}, counter);
    } catch (error) {
      // The condition fails only on this call's own token: its count, applied.
      const failed = failedCondition(error);
      if (!failed?.item || failed.item[tokenAttr]?.S !== writer) throw error;
      return readInt(failed.item, counter);
    }
  }

  /**
   * An update whose failed condition means "nothing to do": false instead of an error. A lost answer's retry also
   * reads false though the write stands: kept for the writes whose answer nobody acts on (only their crash hook is
   * skipped): clearPending, continueSequenceJump alone (a retry of it lands again), noteBreakerConfirming, noteRefusal,
   * dropRefusals, resetBreaker, markSpentWake, and coverWakeMark (whose set, read as
   * not done, is followed by a count: the covers only need to change).
   */
  private async updateIf(input: UpdateItemCommandInput): Promise<boolean> {
    try {
      await this.dynamo.send(new UpdateItemCommand(input));
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }
}

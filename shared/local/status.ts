import { type AttributeValue, type DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { CorruptItemError, N, S } from '../adapters/aws/codec.ts';
import { DynamoLedger } from '../adapters/aws/ledger.ts';
import { readSettlement } from '../adapters/aws/liquidations.ts';
import { marketFromItem } from '../adapters/aws/markets.ts';
import { BATCH_GET_MAX, batchGetConsistent } from '../adapters/aws/reader.ts';
import { scanPages } from '../adapters/aws/scan.ts';
import { SqsQueueTransport } from '../adapters/aws/sqs-queue.ts';
import { OPEN_INDEX_SHARDS, openShardKey } from '../adapters/shards.ts';
import { DEFAULT_RISK_CONFIG, quoteCurrency, quoteOf, type RiskConfig } from '../domain/config.ts';
import { windowLengthMs, windowStartFor } from '../domain/insurance.ts';
import { isTerminal, type LiquidationState, type PositionState } from '../domain/model.ts';
import { markIsStale } from '../domain/tick.ts';
import { formatPrice, formatQuote } from '../domain/units.ts';
import type { SettlementAmounts } from '../domain/waterfall.ts';
import { iso } from '../domain/words.ts';
import { errorText, firstLine } from '../error-text.ts';
import {
  type AccountBalance,
  type ChartFindings,
  currentRefusals,
  highestSequence,
  type Ledger,
  type MarketState,
  type RefusalTrace,
} from '../ports/index.ts';
import { checkFundForWithdrawal, type FundCheck, withdrawalRefusal } from '../services/admin.ts';
import { INSURANCE_ACCOUNT } from '../services/context.ts';
import { auctionIdOf } from '../services/liquidation.ts';
import { NEXT_SLICE_NOTE, tickKeyOf } from '../services/margin-check.ts';
import { aboveDrawCap } from '../services/reconcile.ts';
import { OPEN_LIQUIDATIONS_INDEX } from '../topology.ts';
import {
  type AdviceTarget,
  backstopCommand,
  type Deployment,
  type DeploymentNames,
  withTargetFlags,
} from './deployment.ts';
import { sequenceAfter } from './ticks.ts';

/**
 * One snapshot of a deployment for operators and scripts (`backstop status --json`). The shape is stable:
 * every state is present (0 when empty), amounts are decimal strings, times ISO 8601.
 *
 * Counting positions, liquidations and auctions by state Scans those tables whole: a read unit per 4 KB of items
 * read (8 KB eventually consistent, as these are), whatever the projection (DEPLOY.md prices it for a book). A single
 * read counts; `--watch` counts again every STATUS_COUNT_EVERY_MS and says the counts' age (`counted`), judging
 * `stranded` in between from the open liquidations' index (strandedNow); `replay --hold` scans only the liquidations
 * (collectLiquidationWork). Nothing on the liquidation path ever scans (it queries the sparse index).
 */

// Records keyed by every state: the compiler flags a state added to the model and missing here.
const POSITION_STATE_SET: Record<PositionState, true> = { OPEN: true, LIQUIDATING: true, CLOSED: true };
const LIQUIDATION_STATE_SET: Record<LiquidationState, true> = {
  QUEUED: true,
  EXECUTING: true,
  MARKET_EXECUTED: true,
  AUCTION: true,
  SETTLING: true,
  SETTLED_MARKET: true,
  SETTLED_AUCTION: true,
  SETTLED_INSURANCE: true,
  SETTLED_ADL: true,
  CANCELLED: true,
};
export const POSITION_STATES = Object.keys(POSITION_STATE_SET) as PositionState[];
export const LIQUIDATION_STATES = Object.keys(LIQUIDATION_STATE_SET) as LiquidationState[];
export const AUCTION_STATES = ['RUNNING', 'CLEARED', 'EXHAUSTED'] as const;
/** Journal entries shown in the status (the newest last). */
export const LAST_ENTRIES = 5;

export interface QueueDepth {
  /** Visible messages (ApproximateNumberOfMessages). */
  readonly depth: number;
  /** Received, not yet deleted (ApproximateNumberOfMessagesNotVisible). */
  readonly inFlight: number;
  /** Sent with a delay not yet over (auction steps). */
  readonly delayed: number;
}

export interface JournalLine {
  readonly sequence: number;
  readonly kind: string;
  readonly amount: string;
  readonly balanceAfter: string;
  readonly reference: string;
  readonly at: string;
  /** Who moved it (JournalEntry.actor), when the journal names someone. */
  readonly actor?: string;
}

export interface MarketStatus {
  readonly lastSequence: number | null;
  /**
   * The sequence a tick published now should carry (sequenceAfter: past the last accepted, the breaker's, the print
   * the breaker refused last while confirming (breaker.confirming) and the pending tick; now in epoch ms for a market
   * with none, by AWS's time as `inject` numbers such a market's first tick (agreedNowMs: the machine's clock to the
   * millisecond while AWS's answers say it agrees, else their lower bound, up to a second behind; it was always that
   * lower bound: ops50-next-sequence)): what a plain PutEvents, or a feed that lost its count, numbers by (README's
   * examples/tick.json recipe, docs/FEED.md).
   */
  readonly nextSequence: number;
  readonly mark: string | null;
  readonly at: string | null;
  /** How old the mark is (work waits for a fresh one past the market's maxMarkAgeSeconds). */
  readonly markAgeSeconds: number | null;
  /** The market's maxMarkAgeSeconds: null when the deployed risk configuration is not known here. */
  readonly maxMarkAgeSeconds: number | null;
  /** Whether the mark is too old to act on (markIsStale): null when the bound is not known, or there is no mark. */
  readonly markStale: boolean | null;
  readonly pendingSequence: number | null;
  readonly breaker: {
    readonly reason: string;
    readonly trippedAt: string;
    readonly mark: string;
    /**
     * The latest print refused while the breaker confirms the move it holds (tick/breaker-confirming), as margin-check
     * noted it (breaker.confirming); absent: none noted.
     */
    readonly confirming?: { readonly sequence: number; readonly at: string };
  } | null;
  /**
   * A tick numbered off the market's sequence, held until a print continues from it (null: none); behind: numbered
   * below the market's last or its breaker's tick (with a later stamp), else far above it.
   */
  readonly heldJump: { readonly sequence: number; readonly heldAt: string; readonly behind?: boolean } | null;
  /**
   * Per refusal that records nothing else (tick/too-old, tick/out-of-order, ...: TRACED_REFUSALS), the latest tick
   * refused so and how many of the kind since `since`, as margin-check noted them (refusal traces), since the market's
   * latest rebase; absent: none.
   */
  readonly refused?: { readonly [reason: string]: RefusedStatus };
}

export interface RefusedStatus {
  readonly sequence: number;
  readonly at: string;
  readonly count: number;
  readonly since: string;
}

export interface StatusReport {
  readonly target: {
    readonly kind: string;
    readonly stage: string;
    readonly region: string;
    readonly endpoint: string | null;
  };
  readonly at: string;
  readonly positions: Record<PositionState, number>;
  readonly liquidations: {
    readonly byState: Record<LiquidationState, number>;
    readonly total: number;
    readonly nonTerminal: number;
    /** Settled, but ADL still owes rounds on the deficit (counted in nonTerminal: their work is not done). */
    readonly owingAdlRounds: number;
    /**
     * What the settlements recorded, summed (USD): the fees the fund earned, the shortfalls below the bankruptcy
     * price and who bore them: the fund, ADL's counterparties, nobody (bad debt left uncovered).
     */
    readonly losses: {
      readonly fees: string;
      readonly shortfall: string;
      readonly fundPaid: string;
      readonly adlCovered: string;
      readonly uncoveredBadDebt: string;
      /** Settlements no version can read (left out of the sums): an operator looks at them. */
      readonly unreadable: number;
    };
  };
  readonly auctions: {
    readonly byState: Record<(typeof AUCTION_STATES)[number], number>;
    readonly open: number;
  };
  /** Work queues (ticks: the local tick queue, emulator only) and dead-letter queues (`...Dlq`, tickDeadLetters). */
  readonly queues: Record<string, QueueDepth>;
  /** Messages in every dead-letter queue together. */
  readonly dlqMessages: number;
  /** No message waits in any work queue (visible, in flight or delayed). */
  readonly drained: boolean;
  /**
   * Liquidations not terminal while no work queue holds a message, but for the QUEUED ones a tick is still starting
   * (strandedCount): nothing will move them (a purged queue, dead letters gone); `backstop liquidations overdue --all
   * --resend` resumes them. 0 while any message waits in the liquidations' or auction steps' queue (not the local tick
   * queue's, which moves none of them: status49-tick-queue). Judged now on every read: a count's Scan, or between
   * --watch's counts the open index (status47-stranded-live, `strandedAtLeast`). A single read's judgment is one look;
   * `status --watch` says it only once its refreshes have found the work stranded for STRANDED_CONFIRM_MS, one after
   * another, and shows it as `strandedUnconfirmed` until then (stranded48-confirm).
   */
  readonly stranded: number;
  /**
   * Every liquidation is terminal (no ADL round owed), no auction is open, no tick waits and none is still starting
   * the liquidations it crossed: what is left in the work queues (an ended auction's planned steps, up to 900 s
   * away) changes nothing when it runs.
   */
  readonly settled: boolean;
  readonly insuranceFund: {
    readonly account: string;
    readonly balance: string;
    /** The balance item's sequence: the last journal entry it counts. */
    readonly sequence: number;
    /**
     * The balance reconciles with the journal, judged as a withdrawal judges it (services/admin.ts
     * `checkFundForWithdrawal`: from ledger-reconcile's checkpoint, never the whole journal); `verdict` says why not.
     */
    readonly reconciled: boolean;
    /**
     * judgeReconciliation's: `unreconciled`, the balance and the journal disagree; `not-audited`, the journal is not
     * audited up to the balance's entry (more past the checkpoint than a check reads); `not-indexed`, the journal's
     * index lacks entries. Either of the last two is not judged.
     */
    readonly verdict: 'reconciled' | 'unreconciled' | 'not-audited' | 'not-indexed';
    /** balance - the journal's sum, once audited up to the balance's entry: else `not judged`. */
    readonly difference: string;
    /**
     * What was judged (status46-journal-bounded): the audit went on from ledger-reconcile's checkpoint (`checkpoint`,
     * its entry; null when none is stored yet, from the first entry), read `read` entries past it (20,000 at most,
     * WITHDRAWAL_AUDIT_MAX_ENTRIES) and chains through entry `through`.
     */
    readonly audit: { readonly checkpoint: number | null; readonly read: number; readonly through: number };
    /** Lowest balance the journal shows through audit.through (the checkpoint carries it), 0 before the first entry. */
    readonly minBalance: string;
    /** What the audit found wrong when unreconciled (at most 20, then a line with how many more). */
    readonly problems: readonly string[];
    /**
     * Journal entries the fund's chart of accounts refuses (a kind it does not name, a sign against its kind: they move
     * no money wrongly, so `reconciled` does not count them), as ledger-reconcile's checkpoint counted them and this
     * read's check found past it, through `audit.through`: nothing more is read for them. null when none was found.
     * Counted from entry `countedAfter` + 1 on (a checkpoint stored before session 52 counted none before its own; a
     * `{"full": true}` run of ledger-reconcile counts from the first). `fund statement` over the range names them.
     */
    readonly chartRefused: {
      readonly count: number;
      readonly firstSequence: number;
      readonly lastSequence: number;
      readonly countedAfter: number;
    } | null;
    /**
     * The newest LAST_ENTRIES entries, newest last: one read of the journal's index, newest first (it may lag the
     * balance by a moment), never the journal.
     */
    readonly lastEntries: readonly JournalLine[];
    /**
     * The current draw window's draws against the cap, and the floor (ux45-status-draw-window): cap, floor and
     * window length null when the configuration is not known; `drawn` is then the stored window's, from `since`.
     */
    readonly drawWindow?: {
      readonly drawn: string;
      readonly since: string;
      readonly cap: string | null;
      readonly windowSeconds: number | null;
      readonly floor: string | null;
      /**
       * The window drawn above the cap while it lasts (a cap lowered within it: ledger-reconcile pages for it, no
       * withdrawal is refused for it, and `reconciled` does not count it); null when not, or the cap is not known.
       */
      readonly problem: string | null;
    };
    /**
     * Whether a withdrawal now is refused for the journal (the same check as `reconciled`; the draw cap is no
     * withdrawal's): `code` and `reason` are its refusal's, null when it goes (the floor is not judged here); the
     * commands `reason` names carry the target's flags, as `fund withdraw` prints them (ops47-json-advice).
     */
    readonly withdrawals: {
      readonly refused: boolean;
      readonly code: string | null;
      readonly reason: string | null;
    };
  };
  /** Per market: the last accepted tick and the circuit breaker (null when closed). */
  readonly markets: Record<string, MarketStatus>;
  readonly breakersOpen: number;
  /**
   * The quote currency of every amount: the configuration's when known, else the one the listed markets share;
   * null when neither says (amounts are then shown as the built-in configuration's, USD). Last: a key added later.
   */
  readonly quote: string | null;
  /**
   * When positions, liquidations, auctions and `settled` were counted (they Scan their tables: see
   * STATUS_COUNT_EVERY_MS): `at` is the report's own for a single read; `status --watch` counts again every 5 minutes
   * and shows the last counts in between, `ageSeconds` old (status46-watch-scans); their `settled` is cleared by what
   * each refresh reads live (not settled while a message waits, a tick is starting work or the open index lists
   * work), never raised (review46-watch-stale-judgements). `stranded` is judged on every refresh: between counts from
   * the open liquidations' index (status47-stranded-live).
   */
  readonly counted: { readonly at: string; readonly ageSeconds: number };
  /**
   * `stranded` is a lower bound: a --watch refresh between counts found that many stranded among the
   * STRANDED_LOOK_MAX open liquidations it read, and the open index lists more (the next count has the figure). False
   * on a count, and whenever `stranded` is 0: none stranded among those read is said 0, never "at least 0"
   * (status48-at-least-zero; the unread ones are judged by the next count), as while `strandedUnconfirmed` is above 0
   * (review48-stranded-at-least-unconfirmed: the text says a look's STRANDED_LOOK_MAX as at least that). Last: a key
   * added later.
   */
  readonly strandedAtLeast: boolean;
  /**
   * `status --watch` only (stranded48-confirm): work its refreshes have found stranded, one after another, for less
   * than STRANDED_CONFIRM_MS (`strandedForSeconds`), `stranded` 0 meanwhile: SQS's counts may read 0 for a moment
   * while a message moves the work. 0 on a single read, and once confirmed (the figure is then `stranded`).
   */
  readonly strandedUnconfirmed: number;
  /**
   * How long `status --watch`'s refreshes have found work stranded, one after another (0 at the first that did); null
   * while none finds it, and on a single read, whose `stranded` is one look (stranded48-confirm).
   */
  readonly strandedForSeconds: number | null;
}

/**
 * A settled liquidation whose context still carries `adlRound` (services/liquidation/adl-rounds.ts: ADL's further
 * rounds on a deficit one transaction of counterparties did not cover). The context is stored as JSON text.
 */
const owesAdlRounds = (item: Record<string, AttributeValue>): boolean =>
  item.context?.S?.includes('"adlRound":') ?? false;

/**
 * A QUEUED record a tick re-sends while it is pending (resendStarted): not a next slice, which carries its first
 * slice's tickKey but is its previous slice's to send (review49-status-next-slice). `history[0].note` suffices.
 */
const tickResends = (item: Record<string, AttributeValue>): boolean =>
  item.history?.L?.[0]?.M?.note?.S?.startsWith(NEXT_SLICE_NOTE) !== true;

/**
 * Liquidations by state, the QUEUED ones by the tick that started them, the settled ones ADL still owes rounds on
 * and their settlements' amounts summed: one paginated Scan of those four attributes (status47-one-scan: the ADL
 * rounds owed were a second Scan of the whole table, and a Scan is charged by the items it reads, whatever it
 * returns).
 */
async function liquidationTotals(
  dynamo: DynamoDBClient,
  table: string,
  pending: Promise<PendingStamps> = Promise.resolve(new Map()),
): Promise<{
  readonly byState: Map<string, number>;
  readonly queuedByTick: Map<string, number>;
  readonly owingAdlRounds: number;
  readonly losses: StatusReport['liquidations']['losses'];
  /** Open records the open index does not list (UNINDEXED_KEPT_MAX at most): what a look between counts reads too. */
  readonly unindexedOpen: readonly string[];
  /**
   * Open records another market started at a pending tick's stamp (UNINDEXED_KEPT_MAX at most): a look reads them
   * before that stamp's span, which it reads last (ops50-look-stamp-shared).
   */
  readonly sharedStampOpen: readonly string[];
  /** The open records' state and version by id (a hold's looks compare them: status49-auction-moved). */
  readonly openProgress: ReadonlyMap<string, string>;
  /** The ids of those in AUCTION. */
  readonly inAuction: readonly string[];
}> {
  const byState = new Map<string, number>();
  const queuedByTick = new Map<string, number>();
  let owingAdlRounds = 0;
  const unindexedOpen: string[] = [];
  const sharedStampOpen: string[] = [];
  const openProgress = new Map<string, string>();
  const inAuction: string[] = [];
  let fees = 0n;
  let shortfall = 0n;
  let fundPaid = 0n;
  let adlCovered = 0n;
  let uncovered = 0n;
  let unreadable = 0;
  const pages = scanPages(dynamo, {
    TableName: table,
    ProjectionExpression:
      '#s, settlement, tickKey, #c, id, openShard, #v, history[0].note, startedAtMs, symbol',
    // Only records: helper items sharing the table (the liquidations' tick index) have no state.
    FilterExpression: 'attribute_exists(#s)',
    ExpressionAttributeNames: { '#s': 'state', '#c': 'context', '#v': 'version' },
  });
  // The first page asked for now, beside the live reads that give the markets' pending ticks (scanPages asks for
  // nothing until its first next(): awaited first, the Scan waited for them, review50-ops-count-waits-live).
  const [pendingAt, first] = await Promise.all([pending, pages.next()]);
  for (let page = first; !page.done; page = await pages.next()) {
    for (const item of page.value.items) {
      const state = item.state?.S ?? '(not a string)';
      byState.set(state, (byState.get(state) ?? 0) + 1);
      const owing = owesAdlRounds(item);
      if (owing) owingAdlRounds += 1;
      const id = item.id?.S;
      if (id !== undefined && (owing || !isTerminal(state as LiquidationState))) {
        openProgress.set(id, `${state} v${item.version?.N ?? '-'}`);
        if (state === 'AUCTION') inAuction.push(id);
      }
      // Written before the open index (session 38) and not listed since (review47-stranded-unindexed).
      if (
        (owing || !isTerminal(state as LiquidationState)) &&
        item.openShard === undefined &&
        item.id?.S !== undefined &&
        unindexedOpen.length < UNINDEXED_KEPT_MAX
      )
        unindexedOpen.push(item.id.S);
      // Listed in a pending tick's span, not that market's: read before the span (ops50-look-stamp-shared).
      const sharing = pendingAt.get(Number(item.startedAtMs?.N));
      if (
        (owing || !isTerminal(state as LiquidationState)) &&
        item.openShard !== undefined &&
        item.id?.S !== undefined &&
        sharing !== undefined &&
        !sharing.has(item.symbol?.S ?? '') &&
        sharedStampOpen.length < UNINDEXED_KEPT_MAX
      )
        sharedStampOpen.push(item.id.S);
      const tickKey = item.tickKey?.S;
      if (state === 'QUEUED' && tickKey !== undefined && tickResends(item))
        queuedByTick.set(tickKey, (queuedByTick.get(tickKey) ?? 0) + 1);
      const m = item.settlement?.M;
      if (!m) continue;
      let s: SettlementAmounts;
      try {
        s = readSettlement(m);
      } catch (error) {
        if (!(error instanceof CorruptItemError)) throw error;
        unreadable += 1;
        continue;
      }
      fees += s.fee;
      shortfall += s.shortfall;
      fundPaid += s.insurancePaid;
      adlCovered += s.adlCovered;
      uncovered += s.badDebt;
    }
  }
  return {
    byState,
    queuedByTick,
    owingAdlRounds,
    unindexedOpen,
    sharedStampOpen,
    openProgress,
    inAuction,
    losses: {
      fees: formatQuote(fees),
      shortfall: formatQuote(shortfall),
      fundPaid: formatQuote(fundPaid),
      adlCovered: formatQuote(adlCovered),
      uncoveredBadDebt: formatQuote(uncovered),
      unreadable,
    },
  };
}

/** Counts of one attribute's values over a whole table (paginated Scan reading that attribute only). */
export async function countByAttribute(
  dynamo: DynamoDBClient,
  table: string,
  attribute: string,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const pages = scanPages(dynamo, {
    TableName: table,
    ProjectionExpression: '#a',
    // Only records: helper items sharing the table (the liquidations' tick index) have no state.
    FilterExpression: 'attribute_exists(#a)',
    ExpressionAttributeNames: { '#a': attribute },
  });
  for await (const { items } of pages) {
    for (const item of items) {
      const value = item[attribute]?.S ?? '(not a string)';
      counts.set(value, (counts.get(value) ?? 0) + 1);
    }
  }
  return counts;
}

async function scanMarkets(dynamo: DynamoDBClient, table: string): Promise<MarketState[]> {
  const markets: MarketState[] = [];
  for await (const { items } of scanPages(dynamo, { TableName: table }))
    markets.push(...items.map(marketFromItem));
  return markets.sort((a, b) => a.symbol.localeCompare(b.symbol));
}

export async function queueDepth(sqs: SQSClient, url: string): Promise<QueueDepth> {
  const { visible, inFlight, delayed } = await new SqsQueueTransport(sqs, { url }).depth();
  return { depth: visible, inFlight, delayed };
}

/** Queue ids in the report: work queues first, then the dead-letter queues. */
export function reportQueues(names: DeploymentNames): {
  work: [string, string][];
  deadLetters: [string, string][];
} {
  const work: [string, string][] = [];
  const deadLetters: [string, string][] = [];
  if (names.tickQueueUrl) work.push(['ticks', names.tickQueueUrl]);
  work.push(['liquidations', names.queues.liquidations.url], ['auctionSteps', names.queues.auctionSteps.url]);
  for (const id of ['liquidations', 'auctionSteps'] as const) {
    const dlq = names.queues[id].dlqUrl;
    if (dlq) deadLetters.push([`${id}Dlq`, dlq]);
  }
  deadLetters.push(['tickDeadLetters', names.queues.tickDeadLetters.url]);
  return { work, deadLetters };
}

const total = (d: QueueDepth): number => d.depth + d.inFlight + d.delayed;

function fill<K extends string>(keys: readonly K[], counts: Map<string, number>): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, counts.get(k) ?? 0])) as Record<K, number>;
}

function marketStatus(
  m: MarketState,
  nowMs: number,
  config: RiskConfig | undefined,
  sequenceNowMs: number,
): MarketStatus {
  const market = config?.markets.find((c) => c.symbol === m.symbol);
  return {
    lastSequence: m.lastTick?.sequence ?? null,
    nextSequence: sequenceAfter(m, sequenceNowMs),
    mark: m.lastTick ? formatPrice(m.lastTick.markPrice) : null,
    at: m.lastTick ? iso(m.lastTick.timestampMs) : null,
    markAgeSeconds: m.lastTick ? Math.max(0, Math.floor((nowMs - m.lastTick.timestampMs) / 1000)) : null,
    maxMarkAgeSeconds: market?.maxMarkAgeSeconds ?? null,
    markStale: market && m.lastTick ? markIsStale(m.lastTick.timestampMs, nowMs, market) : null,
    pendingSequence: m.pendingSequence ?? null,
    breaker: m.breaker
      ? {
          reason: m.breaker.reason,
          trippedAt: iso(m.breaker.trippedAtMs),
          mark: formatPrice(m.breaker.tick.markPrice),
          ...(m.breaker.confirming
            ? { confirming: { sequence: m.breaker.confirming.sequence, at: iso(m.breaker.confirming.atMs) } }
            : {}),
        }
      : null,
    heldJump: m.heldJump
      ? {
          sequence: m.heldJump.tick.sequence,
          heldAt: iso(m.heldJump.heldAtMs),
          ...(m.heldJump.tick.sequence < highestSequence(m) ? { behind: true } : {}),
        }
      : null,
    ...refusedOf(m),
  };
}

/** The market's refusal traces noted since its latest rebase (currentRefusals: one from before it is stale). */
function refusedOf(m: MarketState): Pick<MarketStatus, 'refused'> {
  const traces = Object.entries(currentRefusals(m)).filter(
    (e): e is [string, RefusalTrace] => e[1] !== undefined,
  );
  if (traces.length === 0) return {};
  return {
    refused: Object.fromEntries(
      traces.map(([reason, t]) => [
        reason,
        { sequence: t.sequence, at: iso(t.atMs), count: t.count, since: iso(t.sinceMs) },
      ]),
    ),
  };
}

/**
 * How many liquidations nothing will move: those not terminal while no work queue that moves them holds a message
 * (`drained`: STRANDED_WORK_QUEUES), but for the ones a tick is still starting. Such a tick (its market's pending
 * sequence) sends their messages yet: Lambda retries its failed invocation a minute or two later on AWS
 * (margin-check resumes a pending tick whatever its age), and the
 * market's next accepted tick takes its work over; either re-sends what the tick started that is still QUEUED
 * (`resendStarted`), and nothing else. The one judgement of `status` and of a hold's end (ops46-hold-pending-tick:
 * the hold ended on work a tick was still retrying). Only that tick's QUEUED ones are left out
 * (review46-pending-tick-scope): a pending tick of any market left out every one, so work no tick would move (a
 * purged queue, another tick's, another market's) was never stranded while it lasted, and a hold never ended on it.
 * `queuedByTick`: the QUEUED liquidations a tick re-sends (not its next slices: review49-status-next-slice) by tickKey.
 */
export function strandedCount(
  nonTerminal: number,
  drained: boolean,
  markets: readonly Pick<MarketState, 'symbol' | 'pendingSequence'>[],
  queuedByTick: ReadonlyMap<string, number>,
): number {
  if (!drained) return 0;
  const starting = markets.reduce(
    (sum, m) =>
      m.pendingSequence === undefined
        ? sum
        : sum + (queuedByTick.get(tickKeyOf(m.symbol, m.pendingSequence)) ?? 0),
    0,
  );
  return Math.max(0, nonTerminal - starting);
}

/**
 * What to do for open liquidations no message is moving: a dead letter's way (why it failed, then redrive) for those
 * dead-lettered, a resend for the others (a purged queue, an expired dead letter), which no dead letter holds
 * (drill45-stranded-advice: the hold pointed only at the dead letters, with none there). The resend comes after the
 * redrive: it sends every open liquidation a message, a dead-lettered one too, which fails again while its cause
 * lasts (review45-drill-stranded-order). `overdue` needs --config on any target but local, which runs with the
 * configuration local up recorded (ux45-advice-config), named as DEPLOY.md's examples name it
 * (ops46-advice-config-name); each command carries the target's flags (ux46-advice-target). `stranded`: how many it is
 * for (one is "it").
 */
export function strandedAdvice(dlqMessages: number, target: AdviceTarget, stranded = 2): string {
  const resend = backstopCommand(
    target,
    `liquidations overdue --all --resend${target.kind === 'local' ? '' : ' --config risk.json'}`,
  );
  return dlqMessages === 0
    ? `no dead letter holds ${stranded === 1 ? 'it' : 'them'} (a purged queue, an expired dead letter): ${resend} sends each a message`
    : `${dlqMessages} in the dead-letter queues (${backstopCommand(target, 'dlq list')} says why, ${backstopCommand(target, 'dlq redrive')} sends them back once the cause is fixed); then, for those no dead letter held, ${resend} (not before: it sends the dead-lettered ones a message too, to fail again)`;
}

/**
 * How often `status --watch` counts again what needs a Scan (status46-watch-scans): positions, liquidations and
 * auctions by state, the losses, the ADL rounds owed. Each count reads those three tables whole, one Scan each: ~44,000
 * read units for a book of 1,000,000 positions and a crash's 100,000 liquidations (DEPLOY.md's assumptions), hundreds
 * of 1 MB Scan pages, where --watch counted on every refresh (2 s), back to back.
 * Five minutes: the book's totals are a trend to the on-call, and what moves within seconds in a crash (queues, dead
 * letters, breakers, the fund) is read live on every refresh; a Scan every 5 minutes is 150 times fewer than every 2 s.
 */
export const STATUS_COUNT_EVERY_MS = 5 * 60_000;

/** The counts that need a Scan, and what is judged from them, as of `atMs` (one status read's, reused by --watch). */
export interface StatusTallies {
  /** When counted, by AWS's time (shown: `counted.at`). */
  readonly atMs: number;
  /** When counted, by the watch's clock of durations: the counts' age and when to count again. */
  readonly lookMs: number;
  readonly positions: StatusReport['positions'];
  readonly liquidations: StatusReport['liquidations'];
  readonly auctions: StatusReport['auctions'];
  readonly stranded: number;
  readonly settled: boolean;
  /** The count's open records outside the open index (liquidationTotals), read by the looks until the next count. */
  readonly unindexedOpen: readonly string[];
  /** The count's open records another market started at a pending tick's stamp (liquidationTotals), read likewise. */
  readonly sharedStampOpen: readonly string[];
}

/**
 * The work the liquidations table says is left, judged as status judges it (strandedCount): what `replay --hold`
 * reads on every held tick. Scans the liquidations table once (status47-hold-one-scan: it was twice, the totals and
 * the ADL rounds owed), never the positions or auctions.
 */
export interface LiquidationWork {
  readonly liquidations: StatusReport['liquidations'];
  readonly stranded: number;
  readonly dlqMessages: number;
  /**
   * The open liquidations' progress by id (progressMoved): state and version, and, once some are stranded, their
   * auction's state, step and version for STRANDED_LOOK_MAX of those in AUCTION (status49-auction-moved).
   */
  readonly progress: ReadonlyMap<string, string>;
}

interface LiveReads {
  readonly markets: MarketState[];
  readonly queues: Record<string, QueueDepth>;
  /** No message waits in any work queue, the local tick queue's too (StatusReport.drained, `settled`). */
  readonly drained: boolean;
  /**
   * No message waits in the queues that move liquidations and auctions (STRANDED_WORK_QUEUES): what `stranded` is
   * judged on (status49-tick-queue).
   */
  readonly workDrained: boolean;
  readonly dlqMessages: number;
}

/**
 * The work queues whose messages move open liquidations and auctions: `stranded` is judged on these alone
 * (status49-tick-queue). The local tick queue (target local; on AWS a tick is EventBridge's, never queued) moves none
 * of the work a status calls stranded: a tick re-sends only the QUEUED liquidations its market's pending tick started,
 * which strandedCount leaves out as starting, and what it starts anew is new work (its market pending meanwhile, its
 * messages in the liquidations' queue after). A feed's ticks waiting there ended every run of refreshes, so locally,
 * with a feed running or a hold's held ticks, work nothing moves was never confirmed stranded.
 */
const STRANDED_WORK_QUEUES: ReadonlySet<string> = new Set(['liquidations', 'auctionSteps']);

async function liveReads(deployment: Deployment): Promise<LiveReads> {
  const { clients, names } = deployment;
  const { work, deadLetters } = reportQueues(names);
  const [markets, depths] = await Promise.all([
    scanMarkets(clients.dynamo, names.tables.markets),
    Promise.all(
      [...work, ...deadLetters].map(async ([id, url]) => [id, await queueDepth(clients.sqs, url)] as const),
    ),
  ]);
  const queues = Object.fromEntries(depths) as Record<string, QueueDepth>;
  return {
    markets,
    queues,
    drained: work.every(([id]) => total(queues[id]!) === 0),
    workDrained: work.every(([id]) => !STRANDED_WORK_QUEUES.has(id) || total(queues[id]!) === 0),
    dlqMessages: deadLetters.reduce((sum, [id]) => sum + total(queues[id]!), 0),
  };
}

/** The liquidations table's one Scan (liquidationTotals). */
type LiquidationScan = Awaited<ReturnType<typeof liquidationTotals>>;

const scanLiquidations = (
  deployment: Deployment,
  pending?: Promise<PendingStamps>,
): Promise<LiquidationScan> =>
  liquidationTotals(deployment.clients.dynamo, deployment.names.tables.liquidations, pending);

/** The markets pending a tick, by its stamp: what that tick starts carries it (liquidationStartedAtMs). */
type PendingStamps = ReadonlyMap<number, ReadonlySet<string>>;

function pendingStamps(markets: readonly MarketState[]): PendingStamps {
  const at = new Map<number, Set<string>>();
  for (const m of markets)
    if (m.pendingSequence !== undefined && m.lastTick)
      at.set(m.lastTick.timestampMs, (at.get(m.lastTick.timestampMs) ?? new Set()).add(m.symbol));
  return at;
}

/** The liquidations' counts, and those stranded judged against the queues and markets read with them. */
function judgeLiquidations(
  totals: LiquidationScan,
  live: LiveReads,
): { readonly liquidations: StatusReport['liquidations']; readonly stranded: number } {
  const liquidationTotal = [...totals.byState.values()].reduce((a, b) => a + b, 0);
  const terminal = [...totals.byState].reduce(
    (sum, [state, n]) => sum + (isTerminal(state as LiquidationState) ? n : 0),
    0,
  );
  const nonTerminal = liquidationTotal - terminal + totals.owingAdlRounds;
  return {
    liquidations: {
      byState: fill(LIQUIDATION_STATES, totals.byState),
      total: liquidationTotal,
      nonTerminal,
      owingAdlRounds: totals.owingAdlRounds,
      losses: totals.losses,
    },
    stranded: strandedCount(nonTerminal, live.workDrained, live.markets, totals.queuedByTick),
  };
}

/**
 * Liquidations a --watch refresh between counts reads at most from the open index (status47-stranded-live): one
 * BatchGetItem. Past it `stranded` is a lower bound (`strandedAtLeast`): a hundred liquidations nothing moves call for
 * the same resend as a thousand, and the next count gives the figure.
 */
export const STRANDED_LOOK_MAX = BATCH_GET_MAX;
/**
 * How long reads one after another must find work stranded before `status --watch` and `replay --hold` say it is
 * (stranded48-confirm). The work queues' counts are SQS's approximate ones (GetQueueAttributes), which AWS says "may
 * not achieve consistency until at least 1 minute after the producers stop sending messages": while messages move
 * the work, a read may count none for a moment, and one read called that work stranded (a hold ended on it). Work
 * nothing moves stays stranded, so waiting costs a minute; the minute is the one AWS names (an "at least": a longer
 * lag is not ruled out, and would show a stranded line that a message seen later clears).
 */
export const STRANDED_CONFIRM_MS = 60_000;

/** Reads one after another that found work stranded: how long since the first of them, and how many. */
export interface StrandedRun {
  readonly forMs: number;
  readonly reads: number;
}

/**
 * Follows the stranded judgments of reads made one after another (stranded48-confirm): each read's `stranded` at
 * `nowMs` gives the run it goes on with, or undefined when it found none (a message in a work queue, no open work, a
 * tick still starting it), which ends the run. A read that failed is no read: the run goes on past it. A clock set
 * back starts the run again, and so does a read that saw the work move since the last (`moved`: an open record found
 * before has changed or ended): a message moved it while the counts read none (review48-stranded-moved).
 */
export function strandedRuns(): (
  stranded: number,
  nowMs: number,
  moved?: boolean,
) => StrandedRun | undefined {
  let sinceMs: number | undefined;
  let reads = 0;
  return (stranded, nowMs, moved = false) => {
    if (stranded === 0) {
      sinceMs = undefined;
      return undefined;
    }
    if (sinceMs === undefined || nowMs < sinceMs || moved) {
      sinceMs = nowMs;
      reads = 0;
    }
    reads += 1;
    return { forMs: nowMs - sinceMs, reads };
  };
}

/** One more than a look reads: past it the look knows it read not all. */
const UNINDEXED_KEPT_MAX = STRANDED_LOOK_MAX + 1;

/** What the open index lists now, read back from the table (the look's records, only those still open). */
interface OpenLook {
  /** The QUEUED ones by their tick, as the count keeps them (strandedCount's `queuedByTick`). */
  readonly queuedByTick: ReadonlyMap<string, number>;
  readonly open: number;
  /** The index listed no more than the look read. */
  readonly complete: boolean;
  /** The open records read, by id: their state and version, and their auction's progress (workMoved). */
  readonly openRecords: ReadonlyMap<string, string>;
  /** The ids of those in AUCTION: their auctions' progress is read once the look finds work stranded. */
  readonly inAuction: readonly string[];
  /** The ids read, open or not. */
  readonly read: ReadonlySet<string>;
}

/**
 * Whether work an earlier look found open has moved by a later one (review48-stranded-moved): a record read by both
 * whose state or version changed, or its auction's state, step or version (status49-auction-moved), or one no longer
 * listed by an index both read whole (it ended). Only a message (or a tick) moves a record: SQS's counts read none
 * while one did.
 */
function workMoved(before: OpenLook, now: OpenLook): boolean {
  for (const [id, was] of before.openRecords) {
    const unread = !now.read.has(id);
    if (unread ? before.complete && now.complete : now.openRecords.get(id) !== was) return true;
  }
  return false;
}

/**
 * The spans of the open index's sort key (startedAtMs) a look Queries in each shard (status49-look-past-starting):
 * the start stamps of the markets' pending ticks alone (`starting`: what those ticks started carry their tick's
 * stamp, liquidationStartedAtMs), and the spans around them. Work started at any other time is thus listed however
 * many liquidations a tick still starting has written, and read before theirs.
 */
export function lookSpans(
  starting: readonly number[],
): readonly { readonly from: number; readonly to: number; readonly starting: boolean }[] {
  const spans: { from: number; to: number; starting: boolean }[] = [];
  let from = Number.MIN_SAFE_INTEGER;
  for (const stamp of [...new Set(starting)].sort((a, b) => a - b)) {
    if (from < stamp) spans.push({ from, to: stamp - 1, starting: false });
    spans.push({ from: stamp, to: stamp, starting: true });
    from = stamp + 1;
  }
  spans.push({ from, to: Number.MAX_SAFE_INTEGER, starting: false });
  return spans;
}

/**
 * The open liquidations (isOpenLiquidation: not terminal, or owing ADL rounds) as the sparse open index lists them
 * (KEYS_ONLY, OPEN_INDEX_SHARDS partitions, only open records in it): its first page of every shard at once, then the
 * records of STRANDED_LOOK_MAX of its keys read consistently. Bounded by the open work, never the table: on a drained
 * stack the index is empty (16 Queries of nothing). The index lags the table on AWS: one just ended may still be
 * listed (its record, read consistently, says so and it is left out), one just started may not be yet (a refresh
 * later it is; a count's eventually consistent Scan may miss it as well). `unindexed`: open records the last count
 * found the index does not list (written before it, session 38), read too. `starting`: the start stamps of the
 * markets' pending ticks (lookSpans), whose liquidations are read last: a tick still starting them is not stranded,
 * and its first STRANDED_LOOK_MAX of them filled the look, so that work stranded elsewhere was never found while it
 * lasted (status49-look-past-starting). `sharedStamp`: open records the last count found another market started at a
 * pending tick's stamp (its own tick of that stamp), read before that span: the index keeps no market, so they were
 * read last with the pending tick's and cut off by them (ops50-look-stamp-shared). Work another market starts at that
 * stamp after the count is read with the span until the next count.
 */
async function lookAtOpenWork(
  dynamo: DynamoDBClient,
  table: string,
  max: number,
  unindexed: readonly string[],
  starting: readonly number[] = [],
  sharedStamp: readonly string[] = [],
): Promise<OpenLook> {
  const spans = lookSpans(starting);
  const pages = await Promise.all(
    Array.from({ length: OPEN_INDEX_SHARDS }, (_, shard) =>
      spans.map(async (span) => ({
        span,
        page: await dynamo.send(
          new QueryCommand({
            TableName: table,
            IndexName: OPEN_LIQUIDATIONS_INDEX,
            KeyConditionExpression: 'openShard = :shard AND startedAtMs BETWEEN :from AND :to',
            ExpressionAttributeValues: {
              ':shard': S(openShardKey(shard)),
              ':from': N(span.from),
              ':to': N(span.to),
            },
            Limit: max,
          }),
        ),
      })),
    ).flat(),
  );
  const keysOf = (startingOnes: boolean) =>
    pages
      .filter(({ span }) => span.starting === startingOnes)
      .flatMap(({ page }) => (page.Items ?? []).map((item) => item.id!));
  const others = keysOf(false);
  const startingOnes = keysOf(true);
  // And those the last count found open outside the index (review47-stranded-unindexed), each once; then those it
  // found another market started at a pending tick's stamp, read before that span (ops50-look-stamp-shared).
  const inIndex = new Set([...others, ...startingOnes].map((id) => id.S));
  const listedOthers = new Set(others.map((id) => id.S));
  const early = [
    ...new Set([
      ...unindexed.filter((id) => !inIndex.has(id)),
      ...sharedStamp.filter((id) => !listedOthers.has(id)),
    ]),
  ];
  const readEarly: ReadonlySet<string | undefined> = new Set(early);
  const ids = [...others, ...early.map((id) => S(id)), ...startingOnes.filter((id) => !readEarly.has(id.S))];
  const complete = ids.length <= max && pages.every(({ page }) => page.LastEvaluatedKey === undefined);
  const keys = ids.slice(0, max).map((id) => ({ id }));
  const items = keys.length === 0 ? [] : ((await batchGetConsistent(dynamo, { [table]: keys }))[table] ?? []);
  const queuedByTick = new Map<string, number>();
  const openRecords = new Map<string, string>();
  const inAuction: string[] = [];
  let open = 0;
  for (const item of items) {
    const state = item.state?.S;
    if (state === undefined || (isTerminal(state as LiquidationState) && !owesAdlRounds(item))) continue;
    open += 1;
    openRecords.set(item.id!.S!, `${state} v${item.version?.N ?? '-'}`);
    if (state === 'AUCTION') inAuction.push(item.id!.S!);
    const tickKey = item.tickKey?.S;
    if (state === 'QUEUED' && tickKey !== undefined && tickResends(item))
      queuedByTick.set(tickKey, (queuedByTick.get(tickKey) ?? 0) + 1);
  }
  return {
    queuedByTick,
    open,
    complete,
    openRecords,
    inAuction,
    read: new Set(keys.map(({ id }) => id.S!)),
  };
}

/**
 * How far the auctions of liquidations in AUCTION have got (status49-auction-moved): each one's state, step and
 * version, by its liquidation's id, read consistently (one BatchGetItem: at most STRANDED_LOOK_MAX of them, the
 * smallest ids). An auction's steps move its record, not its liquidation's, which stays in AUCTION until the auction
 * ends: a step message moving it while SQS's counts read none was no movement to the looks, and after a minute the
 * work it moved was said stranded.
 */
async function auctionProgress(
  deployment: Deployment,
  liquidationIds: readonly string[],
): Promise<ReadonlyMap<string, string>> {
  const ids = [...liquidationIds].sort().slice(0, STRANDED_LOOK_MAX);
  if (ids.length === 0) return new Map();
  const table = deployment.names.tables.auctions;
  const keys = ids.map((id) => ({ id: S(auctionIdOf(id)) }));
  const items = (await batchGetConsistent(deployment.clients.dynamo, { [table]: keys }))[table] ?? [];
  const read = new Map(
    items.map((item) => [
      item.id?.S,
      `auction ${item.state?.S ?? '-'} step ${item.step?.N ?? '-'} v${item.version?.N ?? '-'}`,
    ]),
  );
  return new Map(ids.map((id) => [id, read.get(auctionIdOf(id)) ?? 'no auction']));
}

/** Each record's progress with its auction's where read (auctionProgress). */
function withProgress(
  records: ReadonlyMap<string, string>,
  auctions: ReadonlyMap<string, string>,
): ReadonlyMap<string, string> {
  if (auctions.size === 0) return records;
  return new Map(
    [...records].map(([id, was]) => {
      const auction = auctions.get(id);
      return [id, auction === undefined ? was : `${was}, ${auction}`];
    }),
  );
}

/**
 * Whether work has moved between two reads of its records' progress (state and version, an auction's state, step and
 * version): a record both read whose progress changed. Records only one read are left to the counts by state.
 */
export function progressMoved(
  before: ReadonlyMap<string, string>,
  now: ReadonlyMap<string, string>,
): boolean {
  for (const [id, was] of before) {
    const is = now.get(id);
    if (is !== undefined && is !== was) return true;
  }
  return false;
}

/**
 * A read the looks of `status --watch` and `replay --hold` make only once work is stranded (auctionProgress), refused
 * this caller: said as they start (ops50-watch-permission), a lasting error (the CLI's exit 1, as any access denied).
 */
export class LookPermissionError extends Error {
  override readonly name = 'LookPermissionError';
}

/** AWS's names for a request IAM (or a policy) refused: a permission missing, which no retry heals. */
const ACCESS_DENIED = /^(AccessDenied|AccessDeniedException|NotAuthorized|UnauthorizedOperation)$/;

/** A key no auction has (auctionIdOf ends in `:auction`): a read of nothing, half a read unit. */
const PERMISSION_PROBE_KEY = '~permission-probe~';

/**
 * Makes the read of the auctions table the looks need (auctionProgress, a BatchGetItem) once, as `who` starts
 * (ops50-watch-permission): it is made only once a look finds work stranded, so credentials without
 * `dynamodb:BatchGetItem` there met AccessDenied at incident time, the watch or hold ending on it. Refused, it throws
 * LookPermissionError naming the permission and the table; any other error as it was (a throttle heals: the caller
 * tries again).
 */
export async function checkLookPermissions(deployment: Deployment, who: string): Promise<void> {
  const table = deployment.names.tables.auctions;
  try {
    await batchGetConsistent(deployment.clients.dynamo, { [table]: [{ id: S(PERMISSION_PROBE_KEY) }] });
  } catch (error) {
    if (!(error instanceof Error) || !ACCESS_DENIED.test(error.name)) throw error;
    throw new LookPermissionError(
      `status/look-permission: ${who} needs dynamodb:BatchGetItem on the auctions table (${table}), refused to these credentials (${firstLine(errorText(error)).slice(0, 300)}): once work is found stranded its looks read the auctions of those in AUCTION, to see them step (status49-auction-moved); grant it (docs/DEPLOY.md, "What backstop status reads")`,
    );
  }
}

/** How many refreshes (or held looks) make the permission probe while it fails otherwise than refused. */
export const LOOK_PROBE_TRIES = 5;

/**
 * checkLookPermissions for `who`'s refreshes: made at each until one answers, at most LOOK_PROBE_TRIES times
 * (review50-ops-probe-bounded). Refused, it throws LookPermissionError; any other error (a throttle, the network, a
 * credential) is left to the refresh's own reads, which meet it as they did: thrown, it failed the whole refresh, so
 * that a probe failing so refresh after refresh showed no report at all (and failed every held look, ending the hold
 * past HOLD_BLIND_MS), made again each time without end. Past the tries, a look meeting a refusal says it as before.
 */
export function lookPermissionProbe(deployment: Deployment, who: string): () => Promise<void> {
  let tries = 0;
  let answered = false;
  return async () => {
    if (answered || tries >= LOOK_PROBE_TRIES) return;
    tries += 1;
    try {
      await checkLookPermissions(deployment, who);
      answered = true;
    } catch (error) {
      if (error instanceof LookPermissionError) throw error;
    }
  };
}

/**
 * What `replay --hold` needs on each held tick (status46-watch-scans): the liquidations' terminal state, the stranded
 * judgement and the dead letters, from the liquidations table, the markets and the queues; it scanned the positions
 * (a whole book) and the auctions and ran the fund's check every few seconds for nothing it used.
 */
export async function collectLiquidationWork(deployment: Deployment): Promise<LiquidationWork> {
  const [live, scan] = await Promise.all([liveReads(deployment), scanLiquidations(deployment)]);
  const judged = judgeLiquidations(scan, live);
  // Only while some is stranded: what the looks compare then (a BatchGetItem of the auctions table).
  const auctions = judged.stranded > 0 ? await auctionProgress(deployment, scan.inAuction) : new Map();
  return { ...judged, dlqMessages: live.dlqMessages, progress: withProgress(scan.openProgress, auctions) };
}

/**
 * The three Scanned tables' counts (in parallel). The auctions' is its own Scan, never inferred from the liquidations
 * (review48-auctions-scan-dropped): status counts what the table holds, and an empty table's Scan costs half a read unit.
 */
async function scanTallies(deployment: Deployment, pending: Promise<PendingStamps>) {
  const { dynamo } = deployment.clients;
  const [liquidations, positions, auctions] = await Promise.all([
    scanLiquidations(deployment, pending),
    countByAttribute(dynamo, deployment.names.tables.positions, 'state'),
    countByAttribute(dynamo, deployment.names.tables.auctions, 'state'),
  ]);
  return { liquidations, positions, auctions };
}

function talliesOf(
  scan: Awaited<ReturnType<typeof scanTallies>>,
  live: LiveReads,
  nowMs: number,
  lookMs: number,
): StatusTallies {
  const { liquidations, stranded } = judgeLiquidations(scan.liquidations, live);
  const openAuctions = scan.auctions.get('RUNNING') ?? 0;
  return {
    atMs: nowMs,
    lookMs,
    positions: fill(POSITION_STATES, scan.positions),
    liquidations,
    auctions: { byState: fill(AUCTION_STATES, scan.auctions), open: openAuctions },
    stranded,
    unindexedOpen: scan.liquidations.unindexedOpen,
    sharedStampOpen: scan.liquidations.sharedStampOpen,
    // A liquidation's record is written before its message is sent, and a step of an auction not RUNNING is
    // dropped; only a tick can start new work: one waiting (the local tick queue), or one whose crossed positions
    // are still being started (its market's pending sequence: a continuation, a retried invocation).
    settled:
      liquidations.nonTerminal === 0 &&
      openAuctions === 0 &&
      (live.queues.ticks ? total(live.queues.ticks) === 0 : true) &&
      live.markets.every((m) => m.pendingSequence === undefined),
  };
}

/**
 * Reads everything the status shows, in parallel. `nowMs`: AWS's time (the CLI's awsClockOf(deployment).nowMs():
 * ops49b-status-clock), by which the stored stamps are judged (a mark's age, the draw window) and the report stamped.
 * `config`: the deployed risk configuration, when known (each
 * market's mark is then judged stale or not). `checkFund`: the withdrawal's check; a caller that reads the status
 * again and again (--watch) passes one withdrawalChecker for all its reads, so a missing entry is waited for once.
 * `tallies`: counts a read before took (statusWatcher), shown with their age instead of scanning again; none: counted
 * now. `sequenceNowMs`: AWS's time as `inject` and `replay` number a market's first tick by (the CLI's
 * awsClockOf(deployment).agreedNowMs()), a market's `nextSequence` when it has no sequence yet (ops50-next-sequence).
 */
export async function collectStatus(
  deployment: Deployment,
  nowMs = Date.now(),
  config?: RiskConfig,
  checkFund: (ledger: Ledger) => Promise<FundCheck> = checkFundForWithdrawal,
  tallies?: StatusTallies,
  sequenceNowMs = nowMs,
): Promise<StatusReport> {
  return (await readStatus(deployment, nowMs, config, checkFund, tallies, nowMs, sequenceNowMs)).report;
}

async function readStatus(
  deployment: Deployment,
  nowMs: number,
  config: RiskConfig | undefined,
  checkFund: (ledger: Ledger) => Promise<FundCheck>,
  reuse: StatusTallies | undefined,
  lookMs = nowMs,
  sequenceNowMs = nowMs,
): Promise<{ readonly report: StatusReport; readonly tallies: StatusTallies; readonly look?: OpenLook }> {
  const { clients, names } = deployment;
  const ledger = new DynamoLedger(clients.dynamo, names.tables.ledger);
  const reading = liveReads(deployment);
  const [first, { fund, check }, scan] = await Promise.all([
    reading,
    fundStatus(ledger, nowMs, config, checkFund),
    reuse === undefined
      ? scanTallies(
          deployment,
          reading.then((l) => pendingStamps(l.markets)),
        )
      : undefined,
  ]);
  const tallies = scan === undefined ? reuse! : talliesOf(scan, first, nowMs, lookMs);
  const reused = scan === undefined;
  const { live, stranded, strandedAtLeast, openNow, look } = reused
    ? await strandedNow(deployment, first, tallies.unindexedOpen, tallies.sharedStampOpen)
    : { live: first, stranded: tallies.stranded, strandedAtLeast: false, openNow: false };
  const { markets, queues } = live;
  // A reused count's settled was judged against the queues and markets of its read; the live ones only clear it,
  // never raise it (review46-watch-stale-judgements): work queued, a tick still starting it, or open work the open
  // index lists may be new since the count. A count's own read may call what is left in the queues settled (no-ops);
  // a reused one cannot know them.
  const settled =
    tallies.settled &&
    (!reused || (live.drained && !openNow && markets.every((m) => m.pendingSequence === undefined)));
  // Every configured market, one that never had an item too (no tick, no provider): status says it has no tick.
  const listed = new Set(markets.map((m) => m.symbol));
  const unlisted = (config?.markets ?? [])
    .filter((m) => !listed.has(m.symbol))
    .map((m) => ({ symbol: m.symbol }));
  const marketMap = Object.fromEntries(
    [...markets, ...unlisted]
      .sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0))
      .map((m) => [m.symbol, marketStatus(m, nowMs, config, sequenceNowMs)]),
  );
  const quote = quoteOfStatus(config, Object.keys(marketMap));
  // The withdrawal's own rule and words (withdraw46-status-refused), amounts in the quote status shows.
  const refusal = withdrawalRefusal(check, quote ?? quoteCurrency(DEFAULT_RISK_CONFIG));
  // Its commands with the target's flags, as the text and a refused withdrawal print them (ops47-json-advice).
  const withdrawals =
    refusal === undefined
      ? { refused: false, code: null, reason: null }
      : { refused: true, code: refusal.code, reason: withTargetFlags(refusal.reason, deployment) };
  const report: StatusReport = {
    target: {
      kind: deployment.kind,
      stage: deployment.stage,
      region: deployment.region,
      endpoint: deployment.endpoint ?? null,
    },
    at: iso(nowMs),
    positions: tallies.positions,
    liquidations: tallies.liquidations,
    auctions: tallies.auctions,
    queues,
    dlqMessages: live.dlqMessages,
    drained: live.drained,
    stranded,
    settled,
    insuranceFund: { ...fund, withdrawals },
    markets: marketMap,
    // A market's first print waits as a tripped breaker would, but it is how every market starts (no alarm).
    breakersOpen: markets.filter((m) => m.breaker && m.breaker.reason !== 'tick/unconfirmed').length,
    quote,
    counted: {
      at: iso(tallies.atMs),
      // A duration between the watch's looks: its clock of durations (AWS's, re-read from each answer, jitters by a second).
      ageSeconds: Math.max(0, Math.floor((lookMs - tallies.lookMs) / 1000)),
    },
    strandedAtLeast,
    // One look: a watch confirms it over its refreshes (statusWatcher).
    strandedUnconfirmed: 0,
    strandedForSeconds: null,
  };
  return { report, tallies, ...(look === undefined ? {} : { look }) };
}

/**
 * A --watch refresh between counts judges `stranded` now (status47-stranded-live; a count's, up to 5 minutes old,
 * showed work stranded since only at the next count): 0 while a work queue that moves the work holds a message
 * (STRANDED_WORK_QUEUES), else the open index's look (lookAtOpenWork, the pending ticks' work read last; with the open
 * records the last count found it does not list) judged by strandedCount; once it finds work stranded, the progress of
 * the auctions of those in AUCTION too (auctionProgress), which the next refresh compares (workMoved). Work found
 * stranded is judged again on the queues and markets read after the look: one a tick started between the first read
 * and the look (its market pending, or its message sent by now) is not stranded.
 * `openNow`: the look found open work (nothing is settled).
 */
async function strandedNow(
  deployment: Deployment,
  first: LiveReads,
  unindexed: readonly string[],
  sharedStamp: readonly string[] = [],
): Promise<{
  live: LiveReads;
  stranded: number;
  strandedAtLeast: boolean;
  openNow: boolean;
  look?: OpenLook;
}> {
  if (!first.workDrained) return { live: first, stranded: 0, strandedAtLeast: false, openNow: false };
  const look = await lookAtOpenWork(
    deployment.clients.dynamo,
    deployment.names.tables.liquidations,
    STRANDED_LOOK_MAX,
    unindexed,
    [...pendingStamps(first.markets).keys()],
    sharedStamp,
  );
  const judge = (live: LiveReads) =>
    strandedCount(look.open, live.workDrained, live.markets, look.queuedByTick);
  const openNow = look.open > 0 || !look.complete;
  // A lower bound only of a figure found: none stranded among those read is 0, never "at least 0"
  // (status48-at-least-zero).
  if (judge(first) === 0) return { live: first, stranded: 0, strandedAtLeast: false, openNow, look };
  const [live, auctions] = await Promise.all([
    liveReads(deployment),
    auctionProgress(deployment, look.inAuction),
  ]);
  const stranded = judge(live);
  return {
    live,
    stranded,
    strandedAtLeast: stranded > 0 && !look.complete,
    openNow: openNow || !live.drained,
    look: { ...look, openRecords: withProgress(look.openRecords, auctions) },
  };
}

/**
 * `status --watch`'s reads (status46-watch-scans): each read's queues, markets, fund and breakers live, the counts
 * that Scan the positions, liquidations and auctions tables taken again only once `countEveryMs` has passed since the
 * last (STATUS_COUNT_EVERY_MS), the last ones reused in between and their age said (`counted`). Work found stranded
 * is said so once the reads have found it for `confirmMs` one after another (STRANDED_CONFIRM_MS: confirmStranded).
 * Each read is given a clock of durations at its look (`nowMs`: the CLI's durationClock), which times the durations
 * between looks (when to count again, the counts' age, how long work has been stranded: no stored stamp is compared
 * with it, and AWS's time, re-read from each answer's Date header, would jitter by a second), and AWS's time
 * (`awsNowMs`: the stamps it judges and shows; ops49b-status-clock).
 */
export function statusWatcher(
  deployment: Deployment,
  config: RiskConfig | undefined,
  checkFund: (ledger: Ledger) => Promise<FundCheck>,
  { countEveryMs = STATUS_COUNT_EVERY_MS, confirmMs = STRANDED_CONFIRM_MS } = {},
): (nowMs: number, awsNowMs?: number, sequenceNowMs?: number) => Promise<StatusReport> {
  let last: StatusTallies | undefined;
  const strandedRun = strandedRuns();
  // The run's last look at the open work (a count's read has none): work it found that has moved since starts the
  // run again (review48-stranded-moved).
  let lastLook: OpenLook | undefined;
  // The looks' read of the auctions table, tried at the first refreshes (ops50-watch-permission, review50-ops-probe-bounded).
  const probe = lookPermissionProbe(deployment, 'status --watch');
  return async (nowMs, awsNowMs = nowMs, sequenceNowMs = awsNowMs) => {
    await probe();
    // A clock set back counts again too.
    const fresh = last !== undefined && nowMs >= last.lookMs && nowMs - last.lookMs < countEveryMs;
    const { report, tallies, look } = await readStatus(
      deployment,
      awsNowMs,
      config,
      checkFund,
      fresh ? last : undefined,
      nowMs,
      sequenceNowMs,
    );
    last = tallies;
    const moved = lastLook !== undefined && look !== undefined && workMoved(lastLook, look);
    const run = strandedRun(report.stranded, nowMs, moved);
    if (run === undefined) lastLook = undefined;
    else if (look !== undefined) lastLook = look;
    return confirmStranded(report, run, confirmMs);
  };
}

/**
 * A watch's report with its stranded work said once confirmed (stranded48-confirm): `stranded` when the run of reads
 * that found it has lasted `confirmMs`, else `strandedUnconfirmed`; how long in `strandedForSeconds`.
 */
function confirmStranded(
  report: StatusReport,
  run: StrandedRun | undefined,
  confirmMs: number,
): StatusReport {
  if (run === undefined) return report;
  const confirmed = run.forMs >= confirmMs;
  return {
    ...report,
    stranded: confirmed ? report.stranded : 0,
    // Beside a `stranded` above 0 only (status48-at-least-zero; review48-stranded-at-least-unconfirmed).
    strandedAtLeast: confirmed && report.strandedAtLeast,
    strandedUnconfirmed: confirmed ? 0 : report.stranded,
    strandedForSeconds: Math.floor(run.forMs / 1000),
  };
}

/** The configuration's quote currency, else the listed markets' when they have one (an older stack's might not). */
function quoteOfStatus(config: RiskConfig | undefined, symbols: readonly string[]): string | null {
  if (config) return quoteCurrency(config);
  const quotes = new Set(symbols.map(quoteOf));
  return quotes.size === 1 ? [...quotes][0]! : null;
}

/**
 * The fund as status shows it, from ledger-reconcile's checkpoint on (status46-journal-bounded: it read the whole
 * journal, strongly consistent, on every read, `--watch`'s every 2 s): judged by the withdrawal's own check
 * (`checkFund`: checkFundForWithdrawal, or one withdrawalChecker for all of a watch's reads), which reads the entries
 * past the checkpoint (WITHDRAWAL_AUDIT_MAX_ENTRIES at most), and the last LAST_ENTRIES read newest first.
 */
export async function fundStatus(
  ledger: Ledger,
  nowMs: number,
  config?: RiskConfig,
  checkFund: (ledger: Ledger) => Promise<FundCheck> = checkFundForWithdrawal,
): Promise<{ readonly fund: Omit<StatusReport['insuranceFund'], 'withdrawals'>; readonly check: FundCheck }> {
  const [check, latest] = await Promise.all([
    checkFund(ledger),
    ledger.latestEntries(INSURANCE_ACCOUNT, LAST_ENTRIES),
  ]);
  const { balance, verdict, audit } = check;
  // As judgeReconciliation judges it: only with the journal audited up to the balance's entry.
  const judged =
    audit.sequence === balance.sequence && (verdict.reconciled || verdict.reason !== 'not-indexed');
  return {
    check,
    fund: {
      account: INSURANCE_ACCOUNT,
      balance: formatQuote(balance.balance),
      sequence: balance.sequence,
      reconciled: verdict.reconciled,
      verdict: verdict.reconciled ? 'reconciled' : verdict.reason,
      difference: judged ? formatQuote(balance.balance - audit.sum) : 'not judged',
      audit: { checkpoint: check.start ?? null, read: check.read, through: audit.sequence },
      minBalance: formatQuote(audit.minBalance),
      problems: !verdict.reconciled && verdict.reason === 'unreconciled' ? verdict.problems : [],
      chartRefused: chartRefusedOf(check.chart),
      lastEntries: [...latest].reverse().map((e) => ({
        sequence: e.sequence,
        kind: e.kind,
        amount: formatQuote(e.amount),
        balanceAfter: formatQuote(e.balanceAfter),
        reference: e.reference,
        at: iso(e.atMs),
        ...(e.actor === undefined ? {} : { actor: e.actor }),
      })),
      drawWindow: drawWindowStatus(balance, nowMs, config),
    },
  };
}

/** The chart's findings as status shows them: null when none was found. */
const chartRefusedOf = (chart: ChartFindings): StatusReport['insuranceFund']['chartRefused'] =>
  chart.count === 0 || chart.first === undefined || chart.last === undefined
    ? null
    : {
        count: chart.count,
        firstSequence: chart.first,
        lastSequence: chart.last,
        countedAfter: chart.countedAfter,
      };

/**
 * The draws of the window a debit now counts against: none once the stored window has ended (as rollWindow judges,
 * without its checks: a stored window drawn below zero is reconcile's problem to show, not a failed status).
 */
export function drawWindowStatus(
  balance: AccountBalance,
  nowMs: number,
  config?: RiskConfig,
): NonNullable<StatusReport['insuranceFund']['drawWindow']> {
  if (!config)
    return {
      drawn: formatQuote(balance.windowDrawn),
      since: iso(balance.windowStartMs),
      cap: null,
      windowSeconds: null,
      floor: null,
      problem: null,
    };
  const { insurance } = config;
  const ended = nowMs >= balance.windowStartMs + windowLengthMs(insurance);
  const cap = { cap: insurance.drawCapPerWindow, windowSeconds: insurance.windowSeconds, nowMs };
  return {
    drawn: formatQuote(ended ? 0n : balance.windowDrawn),
    since: iso(ended ? windowStartFor(nowMs, insurance) : balance.windowStartMs),
    cap: formatQuote(insurance.drawCapPerWindow),
    windowSeconds: insurance.windowSeconds,
    floor: formatQuote(insurance.floor),
    // ledger-reconcile's own rule, from the balance item alone.
    problem: aboveDrawCap(balance, cap) ?? null,
  };
}

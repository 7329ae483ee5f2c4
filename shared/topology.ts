/**
 * The one description of what the backstop runs on: tables, queues, the tick bus, functions, their triggers
 * and their grants. The CDK stack (infra/) and the local runs (emulator resources and the local runner)
 * are both built from this, so they cannot drift apart. Pure data: no AWS SDK, no CDK.
 */

export type KeyType = 'S' | 'N';
export interface KeyDef {
  readonly name: string;
  readonly type: KeyType;
}
export interface IndexDef {
  readonly name: string;
  readonly partitionKey: KeyDef;
  readonly sortKey?: KeyDef;
  /** Attributes copied into the index (keys are always there). */
  readonly projection: 'ALL' | 'KEYS_ONLY' | readonly string[];
}
export interface TableDef {
  readonly id: TableId;
  readonly partitionKey: KeyDef;
  readonly sortKey?: KeyDef;
  readonly indexes: readonly IndexDef[];
  /** Money lives here: never deleted with the stack. */
  readonly retain: boolean;
  /**
   * Read by a Scan (ProviderRepository.list): only its readers may Scan it. Every other table is read by key and
   * index alone, so a read grant on it allows no Scan (security48-read-scan).
   */
  readonly scanned?: true;
  /**
   * Written by puts alone (each journal entry once, the balance put whole on the sequence read): a write grant on it
   * allows no UpdateItem. The operator's `fund index-journal` updates it with the operator's credentials
   * (review48-security-ledger-update).
   */
  readonly putsOnly?: true;
  readonly purpose: string;
}

export type TableId = 'positions' | 'markets' | 'liquidations' | 'auctions' | 'ledger' | 'providers';

/**
 * Positions index: partition `liqKey` = `${symbol}#${side}#${shard}`, sort `liqPrice` (N, PriceE8 integer).
 * Only OPEN positions carry these two attributes, so the index is sparse and a tick's crossing set is one
 * range query per shard: longs with liqPrice >= mark, shorts with liqPrice <= mark.
 *
 * One shard per market by default: a GSI partition takes 1,000 writes/s, and index writes happen only when a
 * position opens, changes or starts liquidating. Even the 10-11 Oct 2025 cascade (about 9.3B USD in 4 h on
 * the largest venue) is a few hundred liquidations per second per market, below one partition, and each
 * extra shard adds a Query to every tick. A market that writes more than about 800 positions a second gets
 * more shards through POSITION_INDEX_SHARDS (shared/adapters/aws/position-layout.ts).
 */
export const POSITION_INDEX = 'byLiquidationPrice';
/**
 * ADL's two orders of a side (shared/domain/adl-threshold.ts), on the same sparse partition `liqKey`: sort
 * `entryPrice` (N), and sort `adlLeverage` (N, adlLeverageKey of size and collateral), present only when OPEN.
 * Neither moves with the mark, so the exact top of the ADL ranking is a prefix of each.
 */
export const POSITION_ADL_INDEXES = { entry: 'adlByEntryPrice', leverage: 'adlByLeverage' } as const;
/**
 * Auctions index: partition `wakeKey` = `${symbol}#${direction}`, sort `wakeMark` (N, PriceE8 integer), present
 * only on RUNNING auctions asleep past a step (sparse). A tick that reaches a side's wake mark reads the
 * sleepers it reached as one range query: SELL wakeMark <= mark, BUY wakeMark >= mark.
 */
export const AUCTION_WAKE_INDEX = 'byWakeMark';

/**
 * Liquidations index: partition `openShard` (one of OPEN_INDEX_SHARDS, shared/adapters/shards.ts), sort
 * `startedAtMs` (N, the record's first event), present only while the liquidation is open (not terminal, or owing
 * ADL rounds): liquidation-watch reads the open ones started long ago without a scan. Keys only, and neither key
 * moves while the record is open, so a liquidation writes the index twice: when it starts and when it ends.
 */
export const OPEN_LIQUIDATIONS_INDEX = 'openByStart';
/**
 * Partition key prefix of liquidation-watch's cursor in the liquidations table (where its runs stand in the open
 * listing: watch44b-cursor): all that liquidation-watch may write there. Not a liquidation: no state, no tickKey,
 * none of the open index's keys.
 */
export const LIQUIDATION_WATCH_KEY_PREFIX = '~watch~';
/**
 * The attributes of an auction item liquidation-watch's claim (`claimStepResend`, an UpdateItem) names, all it may
 * touch in the auctions table (IAM dynamodb:Attributes: watch45-auctions-permission): the key, the claim (its call's
 * token inside it, not `writer`, which other writes own: claim45-own-token), the state and step its condition reads.
 * Its give-back (`giveBackStepResend`) names the key and the claim alone. IAM cannot tell a written attribute from one
 * a condition reads: the grant would let it set `state` and `step` too, never any other.
 */
export const AUCTION_RESEND_CLAIM_ATTRIBUTES = ['id', 'state', 'step', 'stepResent'] as const;

/**
 * Ledger index: partition `pk` (`ACCOUNT#<account>`), sort `journalSequence` (N), present only on journal
 * entries (sparse): a reconcile reads the entries after its checkpoint in sequence order, a page at a time.
 */
export const JOURNAL_SEQUENCE_INDEX = 'journalBySequence';
/** Partition key prefix of the reconcile's checkpoints in the ledger table: all that ledger-reconcile may write. */
export const LEDGER_AUDIT_KEY_PREFIX = 'AUDIT#';

export const TABLES: readonly TableDef[] = [
  {
    id: 'positions',
    partitionKey: { name: 'id', type: 'S' },
    indexes: [
      {
        name: POSITION_INDEX,
        partitionKey: { name: 'liqKey', type: 'S' },
        sortKey: { name: 'liqPrice', type: 'N' },
        projection: 'ALL',
      },
      {
        name: POSITION_ADL_INDEXES.entry,
        partitionKey: { name: 'liqKey', type: 'S' },
        sortKey: { name: 'entryPrice', type: 'N' },
        projection: 'ALL',
      },
      {
        name: POSITION_ADL_INDEXES.leverage,
        partitionKey: { name: 'liqKey', type: 'S' },
        sortKey: { name: 'adlLeverage', type: 'N' },
        projection: 'ALL',
      },
    ],
    retain: true,
    purpose:
      'isolated-margin positions; sparse indexes of OPEN positions by liquidation price, and by entry price and leverage for ADL',
  },
  {
    id: 'markets',
    partitionKey: { name: 'symbol', type: 'S' },
    indexes: [],
    retain: false,
    purpose: 'last accepted tick per symbol and circuit-breaker state',
  },
  {
    id: 'liquidations',
    partitionKey: { name: 'id', type: 'S' },
    indexes: [
      {
        name: OPEN_LIQUIDATIONS_INDEX,
        partitionKey: { name: 'openShard', type: 'S' },
        sortKey: { name: 'startedAtMs', type: 'N' },
        projection: 'KEYS_ONLY',
      },
    ],
    retain: true,
    purpose:
      'one item per liquidation: state, fills, settlement and history; a sparse index of the open ones',
  },
  {
    id: 'auctions',
    partitionKey: { name: 'id', type: 'S' },
    indexes: [
      {
        name: AUCTION_WAKE_INDEX,
        partitionKey: { name: 'wakeKey', type: 'S' },
        sortKey: { name: 'wakeMark', type: 'N' },
        projection: ['step'],
      },
    ],
    retain: true,
    purpose: 'Dutch auctions of the remainders the market could not absorb',
  },
  {
    id: 'ledger',
    partitionKey: { name: 'pk', type: 'S' },
    sortKey: { name: 'sk', type: 'S' },
    indexes: [
      {
        name: JOURNAL_SEQUENCE_INDEX,
        partitionKey: { name: 'pk', type: 'S' },
        sortKey: { name: 'journalSequence', type: 'N' },
        projection: 'ALL',
      },
    ],
    retain: true,
    putsOnly: true,
    purpose:
      'insurance fund: balance items, the immutable journal (the other side of each entry named by its kind: fund statement) indexed by sequence, and reconcile checkpoints',
  },
  {
    id: 'providers',
    partitionKey: { name: 'id', type: 'S' },
    indexes: [],
    retain: true,
    scanned: true,
    purpose: 'backstop liquidity providers: committed capital and standing bid terms',
  },
];

export type QueueId = 'liquidations' | 'auctionSteps' | 'tickDeadLetters';
export interface QueueDef {
  readonly id: QueueId;
  /**
   * Dead-letter queue for messages that still fail after maxReceiveCount receives. `retryBackoffSeconds[n - 1]`:
   * when a record whose n-th receive failed comes back (its consumer sets the visibility; the visibility
   * timeout past the list), except the last receive's, which comes back at once to be dead-lettered.
   */
  readonly deadLetter?: { readonly maxReceiveCount: number; readonly retryBackoffSeconds: readonly number[] };
  readonly purpose: string;
}

const RETRY_BACKOFF_SECONDS = [5, 30, 120, 300] as const;

export const QUEUES: readonly QueueDef[] = [
  {
    id: 'liquidations',
    // A throttled or timed-out call is retried in seconds, not after the visibility timeout (about 6 minutes);
    // a lasting fault spends the five receives over about 8 minutes (the backoffs, 455 s) before its dead letter
    // alarms: the last receive's failure comes back at once, for SQS to dead-letter it.
    deadLetter: { maxReceiveCount: 5, retryBackoffSeconds: RETRY_BACKOFF_SECONDS },
    purpose: 'positions that crossed their liquidation price, one message per liquidation',
  },
  {
    /**
     * The auction's clock: each step is a message with DelaySeconds (<= 900 s). SQS delays run on moto,
     * LocalStack and AWS alike, unlike EventBridge Scheduler, which moto stores but never fires.
     */
    id: 'auctionSteps',
    deadLetter: { maxReceiveCount: 5, retryBackoffSeconds: RETRY_BACKOFF_SECONDS },
    purpose: 'delayed messages that advance each Dutch auction one step',
  },
  {
    id: 'tickDeadLetters',
    purpose: 'tick events that EventBridge could not deliver to margin-check after its retries',
  },
];

/**
 * A queue with neither a dead-letter queue nor a consumer is itself a dead-letter sink (tickDeadLetters): it keeps
 * its messages for DEAD_LETTER_RETENTION_SECONDS and nothing redrives them automatically.
 */
export const isDeadLetterSink = (def: QueueDef): boolean => !def.deadLetter && !consumerOf(def.id);

/**
 * The queues whose dead letters are kept: in a dead-letter queue of their own, or in themselves (a sink). What the
 * dead-letter alarms and liquidation-watch's DeadLetters gauge cover, one each.
 */
export const deadLetteredQueues = (): readonly QueueDef[] =>
  QUEUES.filter((q) => q.deadLetter !== undefined || isDeadLetterSink(q));

/** Dead letters are kept the SQS maximum, so an operator has two weeks to redrive them. */
export const DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600;

export const TICK_BUS = {
  name: 'ticks',
  source: 'backstop.prices',
  detailType: 'PriceTick',
  /** Re-emitted by margin-check when a tick crosses more positions than one invocation starts. */
  continuationDetailType: 'PriceTickContinuation',
} as const;

/** EventBridge patterns, as the API takes them: the stack's rule and archive, and the local rule, use these. */
export type EventPatternDef = Readonly<Record<string, readonly unknown[]>>;

/** A feed's price tick: what the archive keeps (continuations are not feed ticks). */
export const TICK_PATTERN: EventPatternDef = {
  source: [TICK_BUS.source],
  'detail-type': [TICK_BUS.detailType],
};

/**
 * What invokes margin-check: ticks and its own continuations, never an archive's replay (old sequences, refused as
 * out of order, each re-reading what it started and paging TicksOutOfOrderAlarm).
 */
export const MARGIN_CHECK_PATTERN: EventPatternDef = {
  source: [TICK_BUS.source],
  'detail-type': [TICK_BUS.detailType, TICK_BUS.continuationDetailType],
  'replay-name': [{ exists: false }],
};

/**
 * A deployed stage's name (the stack Backstop-<stage>, its bus, dashboard and resource names): what the CDK app
 * accepts, and so all the operator commands may find on AWS or LocalStack (local stages may also hold hyphens).
 */
export const DEPLOYED_STAGE = {
  pattern: /^[a-z][a-z0-9]{0,11}$/,
  rule: 'lower-case letters and digits, starting with a letter, at most 12',
} as const;

/** How old a tick event may get before Lambda stops retrying margin-check on it (CDK context overrides it). */
export const DEFAULT_TICK_MAX_EVENT_AGE_SECONDS = 120;

/** Lambda's wait between a failed asynchronous invocation and its first retry. */
export const ASYNC_RETRY_DELAY_SECONDS = 60;

/**
 * Lambda retries a failed asynchronous invocation about 1 minute after the first attempt and 2 minutes after the
 * second, and drops (to the on-failure destination) an event older than its maximum age: only the retries that
 * fall within the age are configured, so the setting says what happens.
 */
export function asyncRetriesWithin(maxEventAgeSeconds: number): number {
  if (maxEventAgeSeconds >= 180) return 2;
  return maxEventAgeSeconds >= ASYNC_RETRY_DELAY_SECONDS ? 1 : 0;
}

/**
 * Seconds until Lambda retries an asynchronous event whose `attempt`th invocation failed, `ageSeconds` old (a
 * minute after the first, two after the second), or undefined: its configured retries are spent, or the retry
 * would come past its maximum age, and it goes to the on-failure destination at once.
 */
export function asyncRetryAfterSeconds(
  attempt: number,
  ageSeconds: number,
  maxEventAgeSeconds: number,
): number | undefined {
  if (attempt > asyncRetriesWithin(maxEventAgeSeconds)) return undefined;
  const delay = ASYNC_RETRY_DELAY_SECONDS * attempt;
  return asyncEventExpired(ageSeconds + delay, maxEventAgeSeconds) ? undefined : delay;
}

/** Lambda discards an asynchronous event older than its maximum age instead of invoking the function with it. */
export const asyncEventExpired = (ageSeconds: number, maxEventAgeSeconds: number): boolean =>
  Math.floor(ageSeconds) > maxEventAgeSeconds;

export type FunctionId =
  | 'marginCheck'
  | 'liquidationConsumer'
  | 'auction'
  | 'ledgerReconcile'
  | 'liquidationWatch'
  | 'admin';
export type Trigger =
  /** `deadLetters`: where EventBridge puts an event it cannot deliver and Lambda's on-failure record of one it gave up on. */
  | { readonly kind: 'tickRule'; readonly deadLetters: QueueId }
  | {
      readonly kind: 'queue';
      readonly queue: QueueId;
      readonly batchSize: number;
      readonly batchWindowSeconds: number;
      readonly maxConcurrency: number;
    }
  | { readonly kind: 'schedule'; readonly everyMinutes: number }
  | { readonly kind: 'iamInvoke' };

/** `depth`: sqs:GetQueueAttributes alone, of a `deadLetters` grant's queue: what it holds, none of its messages. */
export type Access = 'read' | 'write' | 'readWrite' | 'send' | 'consume' | 'put' | 'depth';
/** The event buses a function may put events on (`put`). */
export type BusId = typeof TICK_BUS.name;
export interface Grant {
  readonly table?: TableId;
  readonly queue?: QueueId;
  readonly bus?: BusId;
  /**
   * The queue that keeps this queue's dead letters (its dead-letter queue, or a sink itself: deadLetteredQueues), by
   * `depth` only.
   */
  readonly deadLetters?: QueueId;
  readonly access: Access;
  /** Puts only, of items whose partition key begins with this (IAM's dynamodb:LeadingKeys): a write of its own items. */
  readonly keysBeginWith?: string;
  /**
   * UpdateItems only, naming only these attributes (IAM's dynamodb:Attributes: the key's among them) and returning
   * none of the item (dynamodb:ReturnValues NONE): a write of some attributes of the table's items.
   */
  readonly attributes?: readonly string[];
}

export interface FunctionDef {
  readonly id: FunctionId;
  /** Folder under functions/ holding index.ts with an exported `handler`. */
  readonly folder: string;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  readonly trigger: Trigger;
  readonly grants: readonly Grant[];
  readonly purpose: string;
}

/**
 * A function that sends to the queue it is triggered by (a next slice, the last resort's waits, ADL rounds, an
 * auction's next step): its chains are bounded in code and longer than Lambda's recursive-loop limit (16).
 */
export const chainsThroughItsOwnQueue = (def: FunctionDef): boolean =>
  def.trigger.kind === 'queue' &&
  def.grants.some(
    (g) => g.queue === (def.trigger as { readonly queue: QueueId }).queue && g.access === 'send',
  );

/**
 * A function granted the depth of dead-letter queues (liquidation-watch): the one whose environment carries their URLs
 * (deadLetterQueueEnv), so no other function's environment or cold start depends on them (review45-dlq-watch-env).
 */
export const readsDeadLetters = (def: FunctionDef): boolean =>
  def.grants.some((g) => g.deadLetters !== undefined);

export const FUNCTIONS: readonly FunctionDef[] = [
  {
    id: 'marginCheck',
    folder: 'margin-check',
    timeoutSeconds: 30,
    memoryMb: 1024,
    trigger: { kind: 'tickRule', deadLetters: 'tickDeadLetters' },
    grants: [
      { table: 'markets', access: 'readWrite' },
      { table: 'positions', access: 'readWrite' },
      // A retried or interrupted tick reads the liquidations it started, to re-send those still QUEUED.
      { table: 'liquidations', access: 'readWrite' },
      { table: 'auctions', access: 'read' },
      { queue: 'liquidations', access: 'send' },
      { queue: 'auctionSteps', access: 'send' },
      // A tick that crosses more positions than one invocation starts re-emits itself as a continuation.
      { bus: 'ticks', access: 'put' },
    ],
    purpose:
      'validates a tick, finds the positions it crosses and enqueues their liquidations; wakes sleeping auctions',
  },
  {
    id: 'liquidationConsumer',
    folder: 'liquidation-consumer',
    timeoutSeconds: 60,
    memoryMb: 1024,
    trigger: {
      kind: 'queue',
      queue: 'liquidations',
      batchSize: 10,
      batchWindowSeconds: 1,
      maxConcurrency: 20,
    },
    grants: [
      // A new auction's first step is planned at its start: it reads the providers' bids and covers its wake
      // mark on the market.
      { table: 'markets', access: 'readWrite' },
      { table: 'positions', access: 'readWrite' },
      { table: 'liquidations', access: 'readWrite' },
      { table: 'auctions', access: 'readWrite' },
      { table: 'providers', access: 'read' },
      { table: 'ledger', access: 'readWrite' },
      { queue: 'auctionSteps', access: 'send' },
      // A settled slice sends its position's next slice; a last resort waiting for the book sends itself again.
      { queue: 'liquidations', access: 'send' },
    ],
    purpose: 'closes a position on the market within the slippage bound and hands the rest to the auction',
  },
  {
    id: 'auction',
    folder: 'auction',
    timeoutSeconds: 60,
    memoryMb: 512,
    trigger: {
      kind: 'queue',
      queue: 'auctionSteps',
      batchSize: 10,
      batchWindowSeconds: 0,
      maxConcurrency: 10,
    },
    grants: [
      { table: 'markets', access: 'readWrite' },
      { table: 'positions', access: 'readWrite' },
      { table: 'liquidations', access: 'readWrite' },
      { table: 'auctions', access: 'readWrite' },
      { table: 'providers', access: 'readWrite' },
      { table: 'ledger', access: 'readWrite' },
      { queue: 'auctionSteps', access: 'send' },
      // The settlement of an ended auction's slice sends the next slice (or the last resort's wait).
      { queue: 'liquidations', access: 'send' },
    ],
    purpose: 'steps Dutch auctions, clears them against provider bids, settles fund and ADL',
  },
  {
    id: 'ledgerReconcile',
    folder: 'ledger-reconcile',
    timeoutSeconds: 300,
    memoryMb: 512,
    trigger: { kind: 'schedule', everyMinutes: 5 },
    grants: [
      { table: 'ledger', access: 'read' },
      // Its checkpoint only: never a balance or a journal entry.
      { table: 'ledger', access: 'write', keysBeginWith: LEDGER_AUDIT_KEY_PREFIX },
    ],
    purpose:
      'checks the fund journal from its checkpoint and the balances against it; reports any difference',
  },
  {
    id: 'liquidationWatch',
    folder: 'liquidation-watch',
    timeoutSeconds: 300,
    memoryMb: 512,
    trigger: { kind: 'schedule', everyMinutes: 5 },
    grants: [
      { table: 'liquidations', access: 'read' },
      // Its cursor only (a conditional PutItem a run): never a liquidation.
      { table: 'liquidations', access: 'write', keysBeginWith: LIQUIDATION_WATCH_KEY_PREFIX },
      // A running auction whose step message was lost: its record, its market's mark, and the step sent again (its
      // claim, an UpdateItem of stepResent alone: watch44-resend-once, naming nothing else: watch45-auctions-permission).
      { table: 'auctions', access: 'read' },
      { table: 'auctions', access: 'write', attributes: AUCTION_RESEND_CLAIM_ATTRIBUTES },
      { table: 'markets', access: 'read' },
      { queue: 'auctionSteps', access: 'send' },
      // What each dead-letter queue holds (DeadLetters, read by the dead-letter alarms: dlq45-depth-gauge): a call
      // that also keeps SQS reporting the queue.
      { deadLetters: 'liquidations', access: 'depth' },
      { deadLetters: 'auctionSteps', access: 'depth' },
      { deadLetters: 'tickDeadLetters', access: 'depth' },
    ],
    purpose:
      "finds open liquidations that should have moved on by now (a lost message, a purged queue, a fault no retry reached) and reports them; sends a stalled auction step again; reports each dead-letter queue's depth",
  },
  {
    id: 'admin',
    folder: 'admin',
    // resumeFeed may re-send what a tick that crossed a whole book started (100,000 liquidations read and sent):
    // margin-check's memory, and time for it. Invoked rarely, by operators: its size costs nothing at rest.
    timeoutSeconds: 300,
    memoryMb: 1024,
    trigger: { kind: 'iamInvoke' },
    grants: [
      { table: 'ledger', access: 'readWrite' },
      { table: 'providers', access: 'readWrite' },
      { table: 'positions', access: 'readWrite' },
      // openPosition checks the position against the last mark; registerProvider wakes sleeping auctions;
      // resumeFeed rebases the market's sequence (a conditional update).
      { table: 'markets', access: 'readWrite' },
      { table: 'auctions', access: 'read' },
      { queue: 'auctionSteps', access: 'send' },
      // resumeFeed takes over a tick of the old numbering still starting liquidations: it re-sends what it started.
      { table: 'liquidations', access: 'read' },
      { queue: 'liquidations', access: 'send' },
    ],
    purpose:
      'fund deposits and withdrawals, provider registration (wakes sleeping auctions), position seeding and repricing (IAM only)',
  },
];

/** The function a queue triggers, if any. */
export const consumerOf = (queue: QueueId): FunctionDef | undefined =>
  FUNCTIONS.find((f) => f.trigger.kind === 'queue' && f.trigger.queue === queue);

/** The function the tick rule invokes (margin-check). */
export function tickRuleTarget(): FunctionDef {
  const fn = FUNCTIONS.find((f) => f.trigger.kind === 'tickRule');
  if (!fn) throw new Error('topology: no function is triggered by the tick rule');
  return fn;
}

/** SQS's default visibility timeout, for a queue no function consumes. */
const DEFAULT_VISIBILITY_SECONDS = 30;

/**
 * How long a message received for `fn` stays hidden from other receives:
 * - SQS trigger: 6 x the timeout + the batching window (the AWS guidance for Lambda event sources), so a batch is
 *   not received again while its first invocation can still run;
 * - tick rule (a local queue stands in for the asynchronous invocation): the timeout + Lambda's retry delay, when
 *   Lambda retries an invocation that timed out; inside the event's maximum age, as Lambda's retry is.
 */
export function receiveVisibilitySeconds(fn: FunctionDef): number {
  if (fn.trigger.kind === 'queue') return 6 * fn.timeoutSeconds + fn.trigger.batchWindowSeconds;
  return fn.timeoutSeconds + ASYNC_RETRY_DELAY_SECONDS;
}

/** A queue's visibility timeout, in the stack, the local stage and the local runner's receives alike. */
export const visibilityTimeoutSeconds = (queue: QueueId): number => {
  const consumer = consumerOf(queue);
  return consumer ? receiveVisibilitySeconds(consumer) : DEFAULT_VISIBILITY_SECONDS;
};

/** Environment variable that carries a resource's physical name into a function. */
export const tableEnv = (id: TableId): string =>
  `TABLE_${id.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
export const queueEnv = (id: QueueId): string =>
  `QUEUE_${id.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_URL`;
/**
 * The variable that carries the URL of the queue that keeps `id`'s dead letters: its dead-letter queue's
 * (QUEUE_<ID>_DLQ_URL), or a sink's own (queueEnv).
 */
export const deadLetterQueueEnv = (id: QueueId): string => {
  const def = QUEUES.find((q) => q.id === id);
  if (def && isDeadLetterSink(def)) return queueEnv(id);
  if (!def?.deadLetter) throw new Error(`topology: ${id} keeps no dead letters`);
  return queueEnv(id).replace(/_URL$/, '_DLQ_URL');
};
/** Receives before a queue's messages are dead-lettered (the stack's maxReceiveCount; the topology's when unset). */
export const maxReceivesEnv = (id: QueueId): string => queueEnv(id).replace(/_URL$/, '_MAX_RECEIVES');
export const TICK_BUS_ENV = 'TICK_BUS_NAME';
/**
 * The functions that place orders and ask for quotes (shared/services/liquidation/venue.ts): the only ones that may
 * read the venue's API key (docs/VENUE.md); the other four build the venue and never call it.
 */
export const VENUE_TRADERS: readonly FunctionId[] = ['liquidationConsumer', 'auction'];
/** Settings a function reads from its environment when set, and defaults otherwise. */
const OPTIONAL_SETTINGS_ENV = {
  /**
   * Where the risk configuration is (shared/lambda/runtime.ts `riskConfigFromEnv`): RISK_CONFIG_BUNDLED in the
   * stack's functions (built into their code), its JSON in code run from source (the local runner, tests).
   */
  riskConfig: 'RISK_CONFIG',
  /** Index shards per market, JSON like {"BTC-USD": 4} (shared/adapters/aws/position-layout.ts). */
  positionIndexShards: 'POSITION_INDEX_SHARDS',
  /** Positions margin-check starts per invocation before it continues the tick (default 500). */
  maxPositions: 'MARGIN_CHECK_MAX_POSITIONS',
  /** The secret holding the venue's API key (VENUE_KEY_ENV): none by default, as the simulated venue reads none. */
  venueKey: 'VENUE_KEY_ID',
} as const;
export const RISK_CONFIG_ENV = OPTIONAL_SETTINGS_ENV.riskConfig;
/** RISK_CONFIG of a deployed function: its risk configuration is the one built into its code at deploy. */
export const RISK_CONFIG_BUNDLED = 'bundled';
/**
 * The global the stack's bundler injects the risk configuration's JSON as (infra/constructs/functions.ts); the
 * runtime declares it by this name (shared/lambda/runtime.ts).
 */
export const BUNDLED_RISK_CONFIG_GLOBAL = 'BACKSTOP_RISK_CONFIG';
export const POSITION_INDEX_SHARDS_ENV = OPTIONAL_SETTINGS_ENV.positionIndexShards;
export const MAX_POSITIONS_ENV = OPTIONAL_SETTINGS_ENV.maxPositions;
/**
 * Where a trader finds the venue's API key: the Secrets Manager SecretId (its ARN, or its name), read at the adapter's
 * first call (shared/adapters/venue/key.ts). A reference, not the key: IAM gates the value. Set by the stack's
 * `backstop:venueSecret` on VENUE_TRADERS, and by `backstop local up --venue-key` (localVenueSecretName, in the
 * emulator); absent without them.
 */
export const VENUE_KEY_ENV = OPTIONAL_SETTINGS_ENV.venueKey;
/**
 * The emulator's secret a local stack keeps the venue's API key in (`backstop local up --venue-key FILE`), named to
 * its functions in VENUE_KEY_ENV as a deployed stack's backstop:venueSecret is (venue47-local-key).
 */
export const localVenueSecretName = (stage: string): string => physicalName(stage, 'venue-key');

/** Every optional variable: a run that hosts the functions in its own process clears them before it sets its own. */
export const optionalEnvNames = (): string[] => [
  ...Object.values(OPTIONAL_SETTINGS_ENV),
  ...QUEUES.filter((q) => q.deadLetter).map((q) => maxReceivesEnv(q.id)),
];

/** Physical names for a stage, used by local runs (CDK lets CloudFormation name things and exports them). */
export const physicalName = (stage: string, id: string): string => `backstop-${stage}-${id}`;

import type { Layer } from './domain/model.ts';

/**
 * The business metrics the handlers emit (Powertools Metrics, EMF through the function logs) and the
 * dashboard and alarms read. One list, so an emitted name and a graphed name cannot drift apart.
 *
 * Dimensions: Powertools adds `service` to every metric, so every function of a stage runs with the same
 * POWERTOOLS_SERVICE_NAME (metricsService(stage)) and each metric has exactly the dimension set
 * { service } or { service, <dimension> }. CloudWatch matches the whole set: a metric emitted with any
 * other extra dimension is a different metric and shows on no graph or alarm. A metric `byMarket` has a second
 * set, the first plus `Market`, in the same EMF blob: each data point counts in the total (which the alarms read:
 * an alarm cannot sum a dimension's values) and in its market's (which says which market paged).
 */

export const METRICS_NAMESPACE = 'Backstop';
/** The prefix of every stage's service name; alone, the service of code run outside a stage (tests). */
export const METRICS_SERVICE = 'backstop';
/**
 * The `service` dimension of one stage's metrics (POWERTOOLS_SERVICE_NAME of its functions). Stages share an
 * account's namespace: with one service for all, a dev stage's ticks kept prod's feed alarm quiet, and its bad
 * debt paged prod.
 */
export const metricsService = (stage: string): string => `${METRICS_SERVICE}-${stage}`;

/** The stage whose service `service` is (metricsService's inverse); undefined for any other name. */
export const stageOfService = (service: string | undefined): string | undefined =>
  service?.startsWith(`${METRICS_SERVICE}-`) && service.length > METRICS_SERVICE.length + 1
    ? service.slice(METRICS_SERVICE.length + 1)
    : undefined;

/** CloudWatch unit names as Powertools' MetricUnit spells them. */
export type MetricUnitName = 'Count' | 'Seconds' | 'None';
/** The only extra dimensions in use. */
export type MetricDimension = 'Reason' | 'Layer' | 'Market' | 'Queue';
/** The dimension that names the market a data point concerns (the Telemetry port's `Market`). */
export const MARKET_DIMENSION = 'Market' satisfies MetricDimension;

export interface MetricSpec {
  readonly name: string;
  readonly unit: MetricUnitName;
  /** Extra dimension beside `service`, if any. */
  readonly dimension?: MetricDimension;
  /**
   * Also per market: emitted under a second dimension set, the first plus Market, when the data point names its
   * market. Counters and distributions only: a gauge's total is no sum of its markets'.
   */
  readonly byMarket?: true;
  /** Gauges are graphed with Minimum/Maximum/Average; counters with Sum. */
  readonly kind: 'counter' | 'gauge' | 'distribution';
  readonly help: string;
}

export const METRICS = {
  TicksAccepted: {
    name: 'TicksAccepted',
    unit: 'Count',
    kind: 'counter',
    dimension: 'Market',
    help: "ticks that passed validation; Market = the tick's symbol (a market whose ticks stop alarms)",
  },
  TicksRejected: {
    name: 'TicksRejected',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    dimension: 'Reason',
    help: 'ticks refused; Reason = the namespaced rejection reason (e.g. tick/stale)',
  },
  PositionsChecked: {
    name: 'PositionsChecked',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'positions read from the liquidation-price index per tick',
  },
  PositionsRepriced: {
    name: 'PositionsRepriced',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'positions a tick found priced by other rules (a margin change not reindexed) and priced again',
  },
  LiquidationsEnqueued: {
    name: 'LiquidationsEnqueued',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'liquidation messages sent',
  },
  LiquidationsSettled: {
    name: 'LiquidationsSettled',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    dimension: 'Layer',
    help: 'liquidations (or parts) settled; Layer = market | auction | insurance | adl',
  },
  LiquidationsCancelled: {
    name: 'LiquidationsCancelled',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'liquidations cancelled (position back above maintenance margin)',
  },
  SlippageBps: {
    name: 'SlippageBps',
    unit: 'None',
    kind: 'distribution',
    byMarket: true,
    help: 'market-layer fill versus mark, in basis points (graphed p50/p99)',
  },
  AuctionDurationSeconds: {
    name: 'AuctionDurationSeconds',
    unit: 'Seconds',
    kind: 'distribution',
    byMarket: true,
    help: 'time from auction start to clearing',
  },
  AuctionsWoken: {
    name: 'AuctionsWoken',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'sleeping auctions woken before their planned step: by a tick (its mark reached a standing bid sooner), by another auction that spent a provider they planned on, or by a provider registered or changed; a wake in parts counts each sleeper once, whatever its retries sent again',
  },
  AuctionsSkipped: {
    name: 'AuctionsSkipped',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'remainders no provider could bid on: they went to the fund and ADL without an auction',
  },
  AuctionStepsResent: {
    name: 'AuctionStepsResent',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'running auctions whose step went unrun more than 15 minutes past its due time, sent again by liquidation-watch (every 5 minutes), counted by the auction delivery whose resent message took the step within 5 minutes of its due time (its own message lost; a step is sent again at most once an hour); the auction moves on, but the lost message is a fault to look into',
  },
  AuctionStepResendFailures: {
    name: 'AuctionStepResendFailures',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: "stalled auction steps liquidation-watch could not send again (the auction's or market's read, the claim or the send failed): the auction stays stalled, its step message already lost, until a later run's resend goes through",
  },
  AuctionWakeFailures: {
    name: 'AuctionWakeFailures',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'wakes that failed (a wake mark not recorded, sleepers not woken), once per market a delivery (a capped run tries its wake at each step): those auctions step when planned, unless a retry wakes them (the delivery that owns a spent wake fails for it; another that finds it ends quietly and counts none)',
  },
  LiquidationLateness: {
    name: 'LiquidationLateness',
    unit: 'Seconds',
    kind: 'distribution',
    byMarket: true,
    help: 'how long after it was due a liquidation message ran (sent plus its delay; 0 when on time): a backed-up or stalled consumer, retries, a redrive',
  },
  AuctionStepLateness: {
    name: 'AuctionStepLateness',
    unit: 'Seconds',
    kind: 'distribution',
    byMarket: true,
    help: "how long after it was due an auction step ran (0 when on time): a backed-up or stalled auction consumer, a redrive; a message that came before its step's commit counts its deliveries' lateness, not its waits for the commit, once it takes the step; also from an ended auction's delivery that finishes the settlement its ending step left (that delivery died or failed); none from a delivery that finds its step taken (a twin, a retry that only pays a wake)",
  },
  InsuranceFundBalance: {
    name: 'InsuranceFundBalance',
    unit: 'None',
    kind: 'gauge',
    help: 'fund balance in whole quote units (e.g. USD, not QuoteE6), emitted after each change and by reconcile',
  },
  InsuranceFundDraws: {
    name: 'InsuranceFundDraws',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'payouts from the fund',
  },
  InsuranceFundRefusals: {
    name: 'InsuranceFundRefusals',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    dimension: 'Reason',
    help: 'settlements whose shortfall the fund refused in whole or part; Reason = insurance/floor or insurance/draw-cap (ADL takes the rest)',
  },
  BadDebt: {
    name: 'BadDebt',
    unit: 'None',
    kind: 'counter',
    byMarket: true,
    help: 'loss no layer covered, in whole quote units (summed)',
  },
  AdlEvents: {
    name: 'AdlEvents',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'auto-deleveraging events',
  },
  LastResortOrders: {
    name: 'LastResortOrders',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'last-resort market orders (within the wide bound): no layer could close any of a slice',
  },
  LastResortWaits: {
    name: 'LastResortWaits',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'last-resort orders that found nothing within the bound: the liquidation waits for the book',
  },
  LastResortWaitsOutraced: {
    name: 'LastResortWaitsOutraced',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: "last-resort waits after which another slice's last resort on the same side had filled: the book came back and a sibling took it (not counted towards the dead letter)",
  },
  MarkDisputes: {
    name: 'MarkDisputes',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: "looks at a liquidation held because the venue's price for the close disputes the mark (venueCheckBand): the position is healthy there (one every 10 s per held liquidation)",
  },
  LiquidationsDisputed: {
    name: 'LiquidationsDisputed',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: "liquidations held by the venue's dispute of the mark, once each however many deliveries hold them: counted by the one write that records the hold's start on the liquidation (MarkDisputes counts every look; a hold of 0 holds none: MarkDisputesOverruled)",
  },
  MarkDisputesOverruled: {
    name: 'MarkDisputesOverruled',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'liquidations that went on on the mark after the venue had disputed it for venueCheckHoldSeconds',
  },
  StaleMarkWaits: {
    name: 'StaleMarkWaits',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'liquidation and auction messages that met a mark older than maxMarkAgeSeconds: they wait for a fresh tick',
  },
  RecordFailures: {
    name: 'RecordFailures',
    unit: 'Count',
    kind: 'counter',
    dimension: 'Queue',
    help: "queue records that failed and will be retried (not a deferral behind another delivery's order lease); Queue = liquidations or auctionSteps. Lambda counts an error only when a whole batch fails",
  },
  NewerWriterRetries: {
    name: 'NewerWriterRetries',
    unit: 'Count',
    kind: 'counter',
    dimension: 'Queue',
    help: 'queue records that met a record a newer Backstop wrote (a rolling deploy) and will be retried on the backoff; not alarmed: one still failing after its last receive is dead-lettered, which alarms',
  },
  VenueOrderFailures: {
    name: 'VenueOrderFailures',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    dimension: 'Reason',
    help: 'venue attempts that failed; Reason = timeout, unavailable or rejected (a slice whose attempts all fail goes to the auction)',
  },
  OrderLeaseDeferrals: {
    name: 'OrderLeaseDeferrals',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: "deliveries deferred because another delivery holds the liquidation's orders (duplicate deliveries)",
  },
  OrderLeaseTakeovers: {
    name: 'OrderLeaseTakeovers',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: "order leases that ran out and were taken over: a delivery died holding a liquidation's orders",
  },
  CircuitBreakerTripped: {
    name: 'CircuitBreakerTripped',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'a tick jumped past the price band and the market halted',
  },
  BreakerTraceFailures: {
    name: 'BreakerTraceFailures',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: "prints refused as tick/breaker-confirming whose trace on the breaker (breaker.confirming) could not be written: the refusal stands (only `backstop replay` reads the trace, and stops as stalled waiting on such a print); a markets table failing so fails the ticks' own writes too, which page",
  },
  RefusalTraceFailures: {
    name: 'RefusalTraceFailures',
    unit: 'Count',
    kind: 'counter',
    help: "ticks refused too old, out of order, as a duplicate, ... (TRACED_REFUSALS) whose trace on the market (refusals) could not be written, or expired traces an accepted tick could not remove (a later one does): the refusal stands (only `backstop replay` and `backstop status` read the trace; a replay waiting on such a tick stops as stalled); a markets table failing so fails the ticks' own writes too, which page",
  },
  LedgerReconcileDifference: {
    name: 'LedgerReconcileDifference',
    unit: 'None',
    kind: 'gauge',
    help: 'absolute difference between stored balances and the journal, whole quote units; 0 when healthy',
  },
  LedgerJournalProblems: {
    name: 'LedgerJournalProblems',
    unit: 'Count',
    kind: 'gauge',
    help: 'journal problems a reconcile found (a sequence gap, entries that do not chain, a balance below zero); 0 when healthy',
  },
  LedgerReconcileBacklog: {
    name: 'LedgerReconcileBacklog',
    unit: 'Count',
    kind: 'gauge',
    help: 'journal entries a reconcile run did not reach (its page budget); 0 when it keeps up',
  },
  LiquidationsContended: {
    name: 'LiquidationsContended',
    unit: 'Count',
    kind: 'counter',
    byMarket: true,
    help: 'deliveries that spent their transitions on conflicts (settlements racing for the fund, planning again) and sent the liquidation back after a short delay',
  },
  LiquidationsOverdue: {
    name: 'LiquidationsOverdue',
    unit: 'Count',
    kind: 'gauge',
    help: 'open liquidations past the longest their state may stay quiet (liquidation-watch, every 5 minutes): no message is moving them; 0 when healthy',
  },
  DeadLetters: {
    name: 'DeadLetters',
    unit: 'Count',
    kind: 'gauge',
    dimension: 'Queue',
    help: "messages a dead-letter queue holds (visible, in flight and delayed), read by liquidation-watch every 5 minutes (GetQueueAttributes); Queue = liquidations or auctionSteps (their dead-letter queues) or tickDeadLetters; 0 when empty. The dead-letter depth alarms read it beside SQS's own count, which SQS may stop reporting for a queue nothing calls, and the aging alarms alone",
  },
  DeadLetterReadFailures: {
    name: 'DeadLetterReadFailures',
    unit: 'Count',
    kind: 'counter',
    help: 'dead-letter queues liquidation-watch could not read (GetQueueAttributes failed; its log line names the queue): their DeadLetters is not reported that run',
  },
} as const satisfies Record<string, MetricSpec>;

export type MetricKey = keyof typeof METRICS;
export type MetricName = (typeof METRICS)[MetricKey]['name'];

/** Values of the Layer dimension of LiquidationsSettled, in waterfall order. */
export const LIQUIDATION_LAYERS: readonly Layer[] = ['market', 'auction', 'insurance', 'adl'];

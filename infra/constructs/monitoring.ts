import { Duration, Fn, Stack, Token, Validations } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  SingleValueWidget,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IEventBus, IRule } from 'aws-cdk-lib/aws-events';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  LIQUIDATION_LAYERS,
  MARKET_DIMENSION,
  METRICS,
  METRICS_NAMESPACE,
  type MetricSpec,
  metricsService,
} from '../../shared/metrics.ts';
import { VENUE_ERROR_KINDS } from '../../shared/ports/index.ts';
import {
  consumerOf,
  DEAD_LETTER_RETENTION_SECONDS,
  FUNCTIONS,
  type FunctionId,
  isDeadLetterSink,
  POSITION_ADL_INDEXES,
  POSITION_INDEX,
  physicalName,
  QUEUES,
  type QueueId,
  TABLES,
  type TableDef,
  type TableId,
} from '../../shared/topology.ts';
import { type InfraConfig, InfraConfigError } from '../config.ts';
import type { QueuePair } from './queues.ts';

export interface MonitoringProps {
  readonly config: InfraConfig;
  readonly queues: Record<QueueId, QueuePair>;
  readonly functions: Record<FunctionId, NodejsFunction>;
  readonly tables: Record<TableId, ITable>;
  /** The tick bus and the rule that invokes margin-check. */
  readonly tick: { readonly bus: IEventBus; readonly rule: IRule };
}

const FIVE_MINUTES = Duration.minutes(5);
/** Half the dead letters' retention: a second page with a week left (less what they spent on their work queue). */
const DEAD_LETTER_AGING_DAYS = 7;
const ONE_MINUTE = Duration.minutes(1);
const ONE_HOUR = Duration.hours(1);

/**
 * Out-of-order ticks a minute that page (two minutes running): retries and concurrent deliveries make a few; a
 * feed behind its market makes one a tick.
 */
const OUT_OF_ORDER_PER_MINUTE = 5;
/** Failed venue attempts in 5 minutes that page: one order that fails all its 3 attempts, or a venue in trouble. */
export const VENUE_FAILURES_PER_5_MINUTES = 3;
/** An auction step this late is a backed-up or stalled auction consumer (SQS delivers a due step within seconds). */
const AUCTION_STEP_LATE_SECONDS = 60;
/**
 * The oldest work-queue message's age (ApproximateAgeOfOldestMessage) that pages, for the liquidation and auction
 * step queues alike: both hold messages sent up to 900 s ahead (SQS's longest delay: an auction's next step, a last
 * resort's wait for the book). AWS documents neither whether a delayed message counts nor from when (docs/DEPLOY.md
 * "What a queue's age counts"). Aged from its send, a healthy message is at most its delay and, before the third
 * receive the metric counts, two deliveries (the function's 60 s each) each followed by its wait (a 5 s, then a 30 s
 * backoff, or a lease deferral's 90 s): 1,200 s; 1,380 s if "more than three times" lets a third delivery and its
 * 120 s backoff count. A consumer that receives nothing pages by its stall alarm (WORK_QUEUE_STALL_MINUTES), which
 * reads no age, so this one is kept clear of both (test/infra/stack.test.ts) and pages a consumer far behind or
 * receiving too little: 1,800 s after the oldest message was sent or fell due.
 * A message received three times without being deleted leaves the metric (AWS): a consumer that fails every message
 * pages by its errors, failed records and dead letters, not here.
 */
export const WORK_QUEUE_AGE_SECONDS = 30 * 60;
/**
 * Minutes running that a work queue holds a visible message and none is received, which page (its stall alarm): the
 * consumer is not polling (its event source mapping disabled or failing, its function gone or unable to read the
 * queue). Visible messages exclude delayed and in-flight ones, so a message waiting on its delay, a backoff or a
 * lease deferral is not one; Lambda's pollers long-poll and take a visible message within seconds, and a consumer at
 * its maximum concurrency receives again as an invocation ends (within its batch window and timeout, 61 s). Five
 * minutes outlast twice that and the minute the two counts' buckets may straddle, and SQS's approximate counts
 * settling (AWS asks for several minutes of zeros before taking a queue for empty).
 */
export const WORK_QUEUE_STALL_MINUTES = 5;

/**
 * Periods an alarm on a sum of sparse counts looks back, one breaching enough to page. Each count is FILLed with 0,
 * so the sum has a point at every period however AWS's metric math page is read: it says a missing value is "treated
 * as 0" in arithmetic, not at which timestamps, so an unfilled sum may have no point, or a 0, where no count has one
 * (review45-fill-readings); and alarms on AWS/DynamoDB metrics ignore missing data whatever TreatMissingData says
 * (PutMetricAlarm), so an unfilled throttle sum could hold its alarm in ALARM. FILL makes the latest period, not
 * reported yet, a 0 at every evaluation (AWS's FILL entry), so one period would never see a count reported after it;
 * three see one up to two periods (10 minutes) late, and clear 15 minutes after the last
 * (alarms45-fill-sparse-counts).
 */
const SPARSE_SUM_EVALUATION_PERIODS = 3;
export const SPARSE_SUM_MINUTES = SPARSE_SUM_EVALUATION_PERIODS * FIVE_MINUTES.toMinutes();

/** A sum of sparse counts, each FILLed with 0 (SPARSE_SUM_EVALUATION_PERIODS). */
const filledSum = (ids: readonly string[]): string => ids.map((id) => `FILL(${id}, 0)`).join(' + ');

/**
 * Minutes a dead-letter depth alarm looks back, one with a letter read enough to page: three of liquidation-watch's
 * runs (every 5 minutes), so its page holds between them while SQS is silent, a run late or lost too, and clears this
 * long after the last letter read (review45-dlq-max-readings).
 */
const DEAD_LETTER_DEPTH_MINUTES = 15;

/**
 * 5-minute periods running with a dead-letter queue liquidation-watch could not read that page (a run every 5
 * minutes): one failure is spanned by the depth alarm's DEAD_LETTER_DEPTH_MINUTES.
 */
const DEAD_LETTER_READ_FAILURE_PERIODS = 3;

/** CloudWatch's longest alarm name. */
const ALARM_NAME_MAX = 255;
/** CloudWatch's longest alarm description (PutMetricAlarm's AlarmDescription). */
export const ALARM_DESCRIPTION_MAX = 1024;

/**
 * An alarm's description as its notification shows it: what fired, then where its runbook entry is, for an on-call
 * who has never seen Backstop (oncall50-runbook-pointer). `entry`: the name the runbook spells, where one entry stands
 * for an alarm a market (`TickFeed<Market>Alarm`: a search for `TickFeedBTCUSDAlarm` finds nothing there).
 */
export function alarmDescription(description: string, id: string, entry = id): string {
  const full = `${description.replace(/\.$/, '')}. Runbook: docs/DEPLOY.md, "When an alarm fires", ${entry}`;
  if (full.length > ALARM_DESCRIPTION_MAX) {
    throw new InfraConfigError(
      `alarm ${id}'s description is longer than CloudWatch's ${ALARM_DESCRIPTION_MAX} characters`,
    );
  }
  return full;
}

/**
 * An alarm's name: `<stack>-<construct id>` (Backstop-prod-LiquidationQueueAgeAlarm), the name its notification and
 * the console show and its runbook entry goes by, instead of CloudFormation's `<stack>-Monitoring<id><hash>-<random>`.
 * Only a change of the name replaces an alarm in CloudFormation (every other property updates in place), and the
 * stack name holds the stage, so stages in one account and region never share one. An id that moves in the construct
 * tree changes the logical id and keeps the name: CloudFormation would create the new resource under the name the old
 * one still holds, so the alarms stay direct children of Monitoring (test/infra/alarm-metrics.test.ts).
 */
export function alarmName(stackName: string, id: string): string {
  const name = `${stackName}-${id}`;
  if (name.length > ALARM_NAME_MAX) {
    throw new InfraConfigError(`alarm name ${name} is longer than CloudWatch's ${ALARM_NAME_MAX} characters`);
  }
  return name;
}

/** A business metric with its exact dimension set: { service } plus the spec's dimension, if given. */
export function businessMetric(
  spec: MetricSpec,
  service: string,
  options: { statistic?: string; period?: Duration; dimension?: string; label?: string } = {},
): Metric {
  if (spec.dimension && options.dimension === undefined) {
    throw new Error(`${spec.name} is emitted with dimension ${spec.dimension}: name its value`);
  }
  const statistic = options.statistic ?? (spec.kind === 'counter' ? 'Sum' : 'Average');
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName: spec.name,
    dimensionsMap: {
      service,
      ...(spec.dimension && options.dimension !== undefined ? { [spec.dimension]: options.dimension } : {}),
    },
    statistic,
    period: options.period ?? FIVE_MINUTES,
    ...(options.label ? { label: options.label } : {}),
  });
}

/** Every value of a dimension that was ever emitted (SEARCH): Reason values are open-ended. */
const byDimension = (
  spec: MetricSpec & { dimension: string },
  statistic: string,
  service: string,
): MathExpression =>
  new MathExpression({
    expression: `SEARCH('{${METRICS_NAMESPACE},${spec.dimension},service} MetricName="${spec.name}" service="${service}"', '${statistic}', 300)`,
    usingMetrics: {},
    label: `${spec.name} by ${spec.dimension}`,
    period: FIVE_MINUTES,
  });

/**
 * Each market's series of a metric `byMarket` (SEARCH over its second dimension set: the markets with data in the
 * graph's range). Graphs only: an alarm cannot hold a SEARCH, and the alarms read the total.
 */
export const perMarket = (spec: MetricSpec, statistic: string, service: string): MathExpression => {
  if (!spec.byMarket) throw new Error(`${spec.name} is not emitted per market`);
  const names = [MARKET_DIMENSION, ...(spec.dimension ? [spec.dimension] : []), 'service'].sort();
  const labels = [MARKET_DIMENSION, ...(spec.dimension ? [spec.dimension] : [])]
    .map((name) => `\${PROP('Dim.${name}')}`)
    .join(' ');
  return new MathExpression({
    expression: `SEARCH('{${METRICS_NAMESPACE},${names.join(',')}} MetricName="${spec.name}" service="${service}"', '${statistic}', 300)`,
    usingMetrics: {},
    label: `${spec.name} ${labels}`,
    period: FIVE_MINUTES,
  });
};

const pascal = (id: string): string => id.charAt(0).toUpperCase() + id.slice(1);

const dynamoMetric = (metricName: string, dimensionsMap: Record<string, string>): Metric =>
  new Metric({
    namespace: 'AWS/DynamoDB',
    metricName,
    dimensionsMap,
    statistic: 'Sum',
    period: FIVE_MINUTES,
  });

/**
 * Read and write throttle events of a table, read throttle events of its indexes (queries: margin-check's on every
 * tick, ADL's, the journal's and the wake index's; an audit in session 36 found them in no alarm), and write
 * throttle events of its indexes (the TableName dimension alone leaves them out; a throttled index throttles the
 * writes that feed it), but the positions table's, which have their own alarm and remedy (positionIndexThrottles).
 */
const tableThrottles = (table: ITable, def: TableDef): MathExpression => {
  const { id } = def;
  // Metric ids are unique across a graph that shows every table.
  const usingMetrics: Record<string, Metric> = {
    [`r_${id}`]: dynamoMetric('ReadThrottleEvents', { TableName: table.tableName }),
    [`w_${id}`]: dynamoMetric('WriteThrottleEvents', { TableName: table.tableName }),
  };
  def.indexes.forEach((index, i) => {
    const dimensions = { TableName: table.tableName, GlobalSecondaryIndexName: index.name };
    usingMetrics[`r_${id}_i${i}`] = dynamoMetric('ReadThrottleEvents', dimensions);
    if (id !== 'positions') usingMetrics[`w_${id}_i${i}`] = dynamoMetric('WriteThrottleEvents', dimensions);
  });
  return new MathExpression({
    expression: filledSum(Object.keys(usingMetrics)),
    usingMetrics,
    label: id,
    period: FIVE_MINUTES,
  });
};

/** Write throttle events of the positions table's three indexes (a market side's partition in each). */
const positionIndexThrottles = (positions: ITable): MathExpression => {
  const indexes = [POSITION_INDEX, POSITION_ADL_INDEXES.entry, POSITION_ADL_INDEXES.leverage];
  const usingMetrics = Object.fromEntries(
    indexes.map((name, i) => [
      `i${i}`,
      dynamoMetric('WriteThrottleEvents', { TableName: positions.tableName, GlobalSecondaryIndexName: name }),
    ]),
  );
  return new MathExpression({
    expression: filledSum(indexes.map((_, i) => `i${i}`)),
    usingMetrics,
    label: 'positions indexes',
    period: FIVE_MINUTES,
  });
};

/** Dashboard and alarms; alarms notify the SNS topic when one is configured. */
export class Monitoring extends Construct {
  readonly dashboard: Dashboard;
  readonly alarms: Alarm[] = [];
  /** The markets' tick feed alarms (also in `alarms`), shown apart on the dashboard. */
  private readonly feedAlarms: Alarm[] = [];
  readonly topic: ITopic;
  /** The `service` dimension of this stage's metrics (metricsService): another stage's never reach its alarms. */
  private readonly service: string;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { config } = props;
    this.service = metricsService(config.stage);
    this.topic = this.alarmTopic(config);
    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: physicalName(config.stage, 'dashboard'),
      defaultInterval: Duration.hours(3),
    });
    this.businessAlarms(config);
    this.tickFeedAlarms(config);
    this.tickDeliveryAlarms(props);
    this.queueAlarms(props);
    this.functionAlarms(props);
    this.throttleAlarms(props);
    this.widgets(props);
  }

  /**
   * Every alarm notifies a topic: the one named by alarmTopicArn, or one of the stack's own (its ARN is an output),
   * with alarmEmail subscribed when given. Without one, a stage deployed with neither setting would change alarm
   * states with nobody told.
   */
  private alarmTopic(config: InfraConfig): ITopic {
    if (config.alarmTopicArn) {
      // Alarm actions notify topics of their own region only: another's fails the deploy half-way, at the first
      // alarm (known here when the stack has a region; an environment-agnostic synth cannot tell).
      const region = Stack.of(this).region;
      const topicRegion = config.alarmTopicArn.split(':')[3];
      if (!Token.isUnresolved(region) && topicRegion !== region)
        throw new InfraConfigError(
          `invalid CDK context: backstop:alarmTopicArn is a topic of ${topicRegion}, not of the stack's region ${region}: CloudWatch alarms notify topics of their own region only`,
        );
      return Topic.fromTopicArn(this, 'AlarmTopic', config.alarmTopicArn);
    }
    const topic = new Topic(this, 'AlarmTopic', {
      displayName: `Backstop ${config.stage} alarms`,
      enforceSSL: true,
    });
    // A topic policy replaces SNS's default one: without this statement (enforceSSL adds only a Deny) CloudWatch,
    // which publishes as its service principal, is refused and no alarm reaches anyone.
    const { account, partition, region } = Stack.of(this);
    topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          ArnLike: { 'aws:SourceArn': `arn:${partition}:cloudwatch:${region}:${account}:alarm:*` },
          StringEquals: { 'aws:SourceAccount': account },
        },
      }),
    );
    if (config.alarmEmail) topic.addSubscription(new EmailSubscription(config.alarmEmail));
    Validations.of(topic).acknowledge({
      id: 'Serverless-SNSRedrivePolicy',
      reason:
        'Its subscriptions are operators (an email, or what they subscribe to the output topic); an undelivered alarm notification stays visible as the alarm state in CloudWatch, so a dead-letter queue would add nothing.',
    });
    return topic;
  }

  /** One of this stage's business metrics (businessMetric with its service). */
  private business(spec: MetricSpec, options?: Parameters<typeof businessMetric>[2]): Metric {
    return businessMetric(spec, this.service, options);
  }

  /** Every emitted value of a dimension of this stage's metric (SEARCH). */
  private byDimension(spec: MetricSpec & { dimension: string }, statistic: string): MathExpression {
    return byDimension(spec, statistic, this.service);
  }

  /** Each market's series of this stage's metric (perMarket); counters summed. */
  private perMarket(spec: MetricSpec, statistic = spec.kind === 'counter' ? 'Sum' : 'p99'): MathExpression {
    return perMarket(spec, statistic, this.service);
  }

  private alarm(
    id: string,
    metric: IMetric,
    description: string,
    threshold: number,
    comparisonOperator: ComparisonOperator,
    options: {
      treatMissingData?: TreatMissingData;
      evaluationPeriods?: number;
      datapointsToAlarm?: number;
      /** The runbook entry's name, where it is not the id (alarmDescription). */
      runbookEntry?: string;
    } = {},
  ): Alarm {
    const alarm = new Alarm(this, id, {
      alarmName: alarmName(Stack.of(this).stackName, id),
      metric,
      threshold,
      comparisonOperator,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      ...(options.datapointsToAlarm !== undefined ? { datapointsToAlarm: options.datapointsToAlarm } : {}),
      treatMissingData: options.treatMissingData ?? TreatMissingData.NOT_BREACHING,
      alarmDescription: alarmDescription(description, id, options.runbookEntry),
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    alarm.addOkAction(new SnsAction(this.topic));
    this.alarms.push(alarm);
    return alarm;
  }

  private businessAlarms(config: InfraConfig): void {
    const GTE = ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD;
    this.alarm(
      'InsuranceFundLowAlarm',
      this.business(METRICS.InsuranceFundBalance, { statistic: 'Minimum' }),
      `Insurance fund balance below ${config.alarmInsuranceFundMin} quote units`,
      config.alarmInsuranceFundMin,
      ComparisonOperator.LESS_THAN_THRESHOLD,
      // No data means no balance change and no reconcile run: LedgerReconcileStoppedAlarm covers that.
      { treatMissingData: TreatMissingData.MISSING },
    );
    this.alarm(
      'InsuranceFloorAlarm',
      this.business(METRICS.InsuranceFundRefusals, { dimension: 'insurance/floor' }),
      'The insurance fund refused a shortfall at its floor: it has nothing left above it to pay, and ADL takes the deficits',
      1,
      GTE,
    );
    this.alarm(
      'InsuranceDrawCapAlarm',
      this.business(METRICS.InsuranceFundRefusals, { dimension: 'insurance/draw-cap' }),
      "The insurance fund refused a shortfall at its draw cap per window (drawCapPerWindow): it has money, but this window's draws are spent, and ADL takes the deficits until the next window",
      1,
      GTE,
    );
    this.alarm(
      'AdlAlarm',
      this.business(METRICS.AdlEvents),
      'Auto-deleveraging happened: the auction and the insurance fund did not cover a liquidation',
      1,
      GTE,
    );
    this.alarm(
      'BackstopLiquidityAlarm',
      this.business(METRICS.AuctionsSkipped),
      'No provider could bid on a remainder (capital or room spent): the fund and ADL took it without an auction',
      1,
      GTE,
    );
    this.alarm(
      'LastResortAlarm',
      this.business(METRICS.LastResortOrders),
      'A slice needed the last resort (a market order within the wide bound): market, auction and ADL could not take any of it',
      1,
      GTE,
    );
    this.alarm(
      'BadDebtAlarm',
      this.business(METRICS.BadDebt),
      'A loss was left that no layer covered',
      0,
      ComparisonOperator.GREATER_THAN_THRESHOLD,
    );
    this.alarm(
      'LedgerReconcileAlarm',
      this.business(METRICS.LedgerReconcileDifference, { statistic: 'Maximum' }),
      `Ledger balances differ from the journal by more than ${config.alarmLedgerDifference} quote units`,
      config.alarmLedgerDifference,
      ComparisonOperator.GREATER_THAN_THRESHOLD,
    );
    // Apart from the difference, whose tolerance must not hide a broken journal.
    this.alarm(
      'LedgerJournalAlarm',
      this.business(METRICS.LedgerJournalProblems, { statistic: 'Maximum' }),
      'The fund journal is broken: a sequence gap, entries that do not chain, or a balance below zero; or its draw window is drawn below zero or above the draw cap (a cap lowered within a window pages until that window ends); or an entry of a kind the chart of accounts does not name, or of a sign its kind never moves (paged by the run that reads it; it refuses no withdrawal). ledger-reconcile logs which; a journal whose index lacks entries (a stack from before session 27) shows as entry 1 missing: run backstop fund index-journal',
      1,
      GTE,
    );
    // Three runs in a row that did not reach the balance: the difference is not being judged at all. A run reports
    // when it ends, and a backlogged one runs long, so a 5-minute bucket may hold no report: skipped (missing), not
    // counted as a healthy run that starts the count again.
    this.alarm(
      'LedgerReconcileBacklogAlarm',
      this.business(METRICS.LedgerReconcileBacklog, { statistic: 'Minimum' }),
      'ledger-reconcile is not keeping up with the fund journal (more entries each run than its page budget): the balance is not being checked against the journal',
      1,
      GTE,
      { evaluationPeriods: 3, treatMissingData: TreatMissingData.MISSING },
    );
    // Every run reports its journal problems (0 when healthy): no report for 15 minutes is a reconcile that
    // stopped running (throttled, its schedule disabled, failing before it reports), which no other alarm shows.
    this.alarm(
      'LedgerReconcileStoppedAlarm',
      this.business(METRICS.LedgerJournalProblems, { statistic: 'SampleCount' }),
      'ledger-reconcile has not reported for 15 minutes (it runs every 5): the fund journal is not being checked',
      1,
      ComparisonOperator.LESS_THAN_THRESHOLD,
      { treatMissingData: TreatMissingData.BREACHING, evaluationPeriods: 3 },
    );
    this.alarm(
      'LiquidationsOverdueAlarm',
      this.business(METRICS.LiquidationsOverdue, { statistic: 'Maximum' }),
      'Open liquidations past the longest their state may stay quiet: no message is moving them (a purged queue, a lost message, a stale feed; liquidation-watch logs which). `backstop liquidations overdue` lists them, --resend resumes them',
      1,
      GTE,
    );
    // As for the reconcile: every run reports (0 when healthy), so no report for 15 minutes is a watch that stopped.
    this.alarm(
      'LiquidationWatchStoppedAlarm',
      this.business(METRICS.LiquidationsOverdue, { statistic: 'SampleCount' }),
      'liquidation-watch has not reported for 15 minutes (it runs every 5; runs cut short by their time budget report only while a cycle of them reads every open liquidation within the hour and stores its cursor): liquidations left with no message would go unnoticed',
      1,
      ComparisonOperator.LESS_THAN_THRESHOLD,
      { treatMissingData: TreatMissingData.BREACHING, evaluationPeriods: 3 },
    );
    // A self-heal, alarmed all the same: the auction moves on, but a step message was lost (a fault, or a bug).
    this.alarm(
      'AuctionStepsResentAlarm',
      this.business(METRICS.AuctionStepsResent),
      'liquidation-watch sent a running auction its step again and that message took the step: the step went unrun 15 minutes past its due time, its message lost (a slow commit whose delivery died before its resend, a purge, an expired dead letter). The auction moves on; its log line names it: find why its message was lost',
      1,
      GTE,
    );
    // The self-heal failing: the step's message is lost already, and nothing else pages until the liquidation is
    // overdue (its auction's tail and an hour on).
    this.alarm(
      'AuctionStepResendFailuresAlarm',
      this.business(METRICS.AuctionStepResendFailures),
      "liquidation-watch found a running auction's step stalled (its message lost) and could not send it again (a read, the claim or the send failed; its log line `stalled auction step not sent again` names the liquidation and the error): the auction stays stalled until a later run's resend goes through",
      1,
      GTE,
    );
    this.alarm(
      'AuctionWakeFailuresAlarm',
      this.business(METRICS.AuctionWakeFailures),
      'Sleeping auctions could not be woken (a wake mark not recorded, sleepers not woken): they step when planned, up to 900 s late for a mark that reached their bids',
      1,
      GTE,
    );
    // Sums of sparse counts: FILLed, one breaching period of the last SPARSE_SUM_EVALUATION_PERIODS pages
    // (alarms45-fill-sparse-counts, review45-fill-readings).
    this.alarm(
      'VenueFailuresAlarm',
      new MathExpression({
        expression: filledSum(VENUE_ERROR_KINDS),
        usingMetrics: Object.fromEntries(
          VENUE_ERROR_KINDS.map((kind) => [
            kind,
            this.business(METRICS.VenueOrderFailures, { dimension: kind }),
          ]),
        ),
        label: 'venue attempts failed',
        period: FIVE_MINUTES,
      }),
      `The venue failed ${VENUE_FAILURES_PER_5_MINUTES} or more order attempts in a 5-minute period of the last ${SPARSE_SUM_MINUTES} minutes (timeouts, unavailable, rejected): slices whose attempts all fail go to the auction, the fund and ADL instead of the market`,
      VENUE_FAILURES_PER_5_MINUTES,
      GTE,
      { evaluationPeriods: SPARSE_SUM_EVALUATION_PERIODS, datapointsToAlarm: 1 },
    );
    this.alarm(
      'AuctionStepsLateAlarm',
      this.business(METRICS.AuctionStepLateness, { statistic: 'Maximum' }),
      `An auction step (or the settlement of the auction it ended) ran more than ${AUCTION_STEP_LATE_SECONDS} s after it was due: the auction consumer is behind, a delivery died and its redelivery ran it, or steps were redriven (a wait for a fresh mark counts from when it was sent back: StaleMarkAlarm pages for the feed)`,
      AUCTION_STEP_LATE_SECONDS,
      ComparisonOperator.GREATER_THAN_THRESHOLD,
    );
    this.alarm(
      'StaleMarkAlarm',
      this.business(METRICS.StaleMarkWaits),
      "Liquidations, auction steps or ADL rounds wait because their market's last mark is older than maxMarkAgeSeconds: its feed stopped, or the breaker holds every print; they go on with the next accepted tick",
      1,
      GTE,
    );
    this.alarm(
      'MarkDisputedAlarm',
      this.business(METRICS.MarkDisputes),
      "Liquidations wait because the venue's price disputes the mark (venueCheckBand): their positions are healthy at the price the close would execute; check the feed (a bad print the breaker let through) or the venue (a manipulated book); after venueCheckHoldSeconds they go on on the mark. This counts looks (one per held liquidation every 10 s); LiquidationsDisputed counts the liquidations held, once each",
      1,
      GTE,
    );
    this.alarm(
      'CircuitBreakerAlarm',
      this.business(METRICS.CircuitBreakerTripped),
      'A market halted: a tick jumped past the price band',
      1,
      GTE,
    );
  }

  /**
   * A market whose feed stopped is one nobody margin-checks: no error, no queue, nothing else would show it. Each
   * market of the risk config alarms after `alarmTickSilenceMinutes` minutes without an accepted tick (missing
   * data is the silence itself).
   */
  private tickFeedAlarms(config: InfraConfig): void {
    // Ticks refused as out of order one after another: a source behind the market's numbering or stamps (a feed
    // restarted lower whose stamps run on is held instead: FeedNumberingAlarm); paged within two minutes, with the
    // reason (oncall50-out-of-order-cause).
    this.alarm(
      'TicksOutOfOrderAlarm',
      this.business(METRICS.TicksRejected, {
        dimension: 'tick/out-of-order',
        period: ONE_MINUTE,
      }),
      `Ticks keep arriving stamped before their market's last, or numbered behind it and stamped no later than its own numbering can still send (maxClockSkewSeconds past its last recorded print: its last accepted tick, or the one its breaker holds): a second publisher numbered behind the live feed, or a publisher whose stamps run behind (its clock); a few come of retries and redriven old ticks. A feed restarted on a lower numbering whose stamps run on is held instead (FeedNumberingAlarm, backstop feed resume), and a resume does not help these. A market whose every tick is refused is not margin-checked meanwhile: backstop status shows each kind refused`,
      OUT_OF_ORDER_PER_MINUTE,
      ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      { evaluationPeriods: 2 },
    );
    // A print off the market's numbering is held, not recorded (domain/tick.ts): a faulty or hostile feed, or a feed
    // restarted on a new numbering, which is followed once it persists; either way an operator should know.
    const rejected = (reason: string) =>
      this.business(METRICS.TicksRejected, { dimension: reason, period: FIVE_MINUTES });
    this.alarm(
      'FeedNumberingAlarm',
      new MathExpression({
        // FILLed, as VenueFailuresAlarm's (review45-fill-readings).
        expression: filledSum(['jump', 'behind', 'confirming']),
        usingMetrics: {
          jump: rejected('tick/sequence-jump'),
          behind: rejected('tick/sequence-behind'),
          // Prints continuing a held one: the alarm stays in ALARM while a feed waits to be followed.
          confirming: rejected('tick/sequence-confirming'),
        },
        label: 'ticks held off their market numbering',
        period: FIVE_MINUTES,
      }),
      `A tick was numbered off its market's sequence and held, not recorded: far ahead of it (tick/sequence-jump: a glitch, a faulty or hostile feed, or a feed restarted on a higher numbering) or behind it with a later stamp (tick/sequence-behind: the market recorded a print ahead of its feed). A feed that goes on from the held print is followed once the market's mark is stale (maxMarkAgeSeconds: its own numbering has had no print accepted that long) and the print persisted breakerConfirmSeconds; until then its prints are refused (tick/sequence-confirming) and this alarm stays on. backstop feed resume moves a market down at once; backstop status shows what is held. It pages on a held print in any of the last ${SPARSE_SUM_MINUTES} minutes`,
      1,
      ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      { evaluationPeriods: SPARSE_SUM_EVALUATION_PERIODS, datapointsToAlarm: 1 },
    );
    const minutes = config.alarmTickSilenceMinutes;
    if (minutes === 0) return;
    for (const market of config.markets) {
      const feed = this.alarm(
        `TickFeed${market.replace(/[^A-Za-z0-9]/g, '')}Alarm`,
        this.business(METRICS.TicksAccepted, { dimension: market, period: ONE_MINUTE }),
        `No tick of ${market} accepted for ${minutes} minutes: its feed stopped, or every tick is rejected (backstop status shows each kind refused and why), so its positions are not margin-checked`,
        1,
        ComparisonOperator.LESS_THAN_THRESHOLD,
        {
          treatMissingData: TreatMissingData.BREACHING,
          evaluationPeriods: minutes,
          runbookEntry: 'TickFeed<Market>Alarm',
        },
      );
      this.feedAlarms.push(feed);
    }
  }

  /**
   * A tick that neither reached margin-check nor its dead-letter queue is lost without a trace: EventBridge could
   * not deliver it or dead-letter it, or Lambda dropped it (its on-failure destination failed too). The next tick
   * checks the book again, but the operator must know the path is broken.
   */
  private tickDeliveryAlarms(props: MonitoringProps): void {
    const events = (metricName: string) =>
      new Metric({
        namespace: 'AWS/Events',
        metricName,
        // A rule on a custom bus reports with both dimensions, under its bare name; its Ref is "<bus>|<rule>"
        // (aws-cloudformation/cloudformation-coverage-roadmap#1131).
        dimensionsMap: {
          EventBusName: props.tick.bus.eventBusName,
          RuleName: Fn.select(1, Fn.split('|', props.tick.rule.ruleName)),
        },
        statistic: 'Sum',
        period: FIVE_MINUTES,
      });
    const fn = props.functions.marginCheck;
    const lambda = (metricName: string) =>
      new Metric({
        namespace: 'AWS/Lambda',
        metricName,
        dimensionsMap: { FunctionName: fn.functionName },
        statistic: 'Sum',
        period: FIVE_MINUTES,
      });
    this.alarm(
      'TickDeliveryLostAlarm',
      new MathExpression({
        // Not Lambda's AsyncEventsDropped: it also counts the events sent to the on-failure destination (the tick
        // dead-letter queue, alarmed on its own) before they are dropped. FILLed, as VenueFailuresAlarm's
        // (review45-fill-readings).
        expression: filledSum(['failed', 'notDeadLettered', 'undelivered']),
        usingMetrics: {
          failed: events('FailedInvocations'),
          notDeadLettered: events('InvocationsFailedToBeSentToDlq'),
          undelivered: lambda('DestinationDeliveryFailures'),
        },
        label: 'ticks lost',
        period: FIVE_MINUTES,
      }),
      `Ticks were lost on their way to margin-check in the last ${SPARSE_SUM_MINUTES} minutes and are not in the tick dead-letter queue either (EventBridge could not invoke or dead-letter them, or Lambda could not deliver them to it): check the rule, the function and the queue policy`,
      1,
      ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      { evaluationPeriods: SPARSE_SUM_EVALUATION_PERIODS, datapointsToAlarm: 1 },
    );
  }

  /**
   * What the queue that keeps `queue`'s dead letters holds, by either source, a minute at a time: SQS's visible count
   * (reported while the queue is active) or liquidation-watch's DeadLetters (every 5 minutes, whatever SQS reports:
   * dlq45-depth-gauge). Each FILLed with 0, so MAX has a point at every minute however a missing value in it is read
   * (review45-dlq-max-readings); the minutes between the watch's runs, and the latest one, then read 0 where SQS is
   * silent, which DEAD_LETTER_DEPTH_MINUTES spans.
   */
  private deadLettersHeld(queue: QueueId, dlq: Queue): MathExpression {
    return new MathExpression({
      expression: 'MAX([FILL(sqs, 0), FILL(watch, 0)])',
      usingMetrics: {
        sqs: dlq.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: ONE_MINUTE }),
        watch: this.business(METRICS.DeadLetters, {
          dimension: queue,
          statistic: 'Maximum',
          period: ONE_MINUTE,
        }),
      },
      label: `${queue} dead letters held`,
      period: ONE_MINUTE,
    });
  }

  private queueAlarms(props: MonitoringProps): void {
    for (const q of QUEUES) {
      const pair = props.queues[q.id];
      const deadLetters: Array<[string, Queue]> = pair.deadLetter
        ? [[`${pascal(q.id)}DlqAlarm`, pair.deadLetter]]
        : [];
      if (isDeadLetterSink(q)) deadLetters.push([`${pascal(q.id)}Alarm`, pair.queue]);
      for (const [id, dlq] of deadLetters) {
        // One minute with a letter read, by either source, in the last DEAD_LETTER_DEPTH_MINUTES pages: the watch's
        // runs, 5 minutes apart, keep the page between them while SQS is silent, one late or lost run too; it clears
        // that long after the last letter read (a redrive; or both sources silent: a stopped watch pages as
        // LiquidationWatchStoppedAlarm). Missing data has no part in it (review45-dlq-max-readings).
        this.alarm(
          id,
          this.deadLettersHeld(q.id, dlq),
          `Messages in the ${q.id} dead-letter queue in a minute of the last ${DEAD_LETTER_DEPTH_MINUTES} (SQS's count of visible ones, or liquidation-watch's DeadLetters of all it holds, read every 5 minutes): they failed every retry and wait for a redrive`,
          1,
          ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          { evaluationPeriods: DEAD_LETTER_DEPTH_MINUTES, datapointsToAlarm: 1 },
        );
        // The first alarm pages once; a dead letter left alone then expires with its retention (counted from when
        // it was first sent), the liquidation left unfinished with no message. Counted in hours with a message held,
        // not by the queue's age: a message received three times leaves the age (AWS), and each `dlq list` is a
        // receive. Hourly periods let CloudWatch evaluate the 7 days (a day at most under an hour). By the watch's
        // read alone (every 5 minutes, so every hour has its maximum while the watch runs), not metric math: no
        // reading of MAX or FILL is relied on, and the hour not reported yet is skipped as CloudWatch skips missing
        // points. An hour with no read counts as not held (the alarms' default): counted as held, a stack with empty
        // queues that SQS had not reported for the week paged at its deploy (review45-dlq-aging-deploy); a stopped
        // watch pages on its own.
        this.alarm(
          id.replace(/Alarm$/, 'AgingAlarm'),
          this.business(METRICS.DeadLetters, { dimension: q.id, statistic: 'Maximum', period: ONE_HOUR }),
          `The ${q.id} dead-letter queue has held a message every hour for ${DEAD_LETTER_AGING_DAYS} days, as liquidation-watch read it (DeadLetters; an hour it did not read starts the week again, and a stopped watch pages on its own): a dead letter expires ${DEAD_LETTER_RETENTION_SECONDS / 86_400} days after it was first sent, and its liquidation or tick is then lost with it: \`backstop dlq list\` shows when each was sent; redrive them, or settle them by hand`,
          1,
          ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          { evaluationPeriods: (DEAD_LETTER_AGING_DAYS * 86_400) / ONE_HOUR.toSeconds() },
        );
      }
    }
    // The gauge's own failure: a dead-letter queue the watch cannot read (its grant, SQS) leaves its depth page to
    // SQS's count alone and its aging page without data. One failed run changes nothing: three running page.
    this.alarm(
      'DeadLetterReadFailuresAlarm',
      this.business(METRICS.DeadLetterReadFailures),
      `liquidation-watch could not read a dead-letter queue's depth in each of its last ${DEAD_LETTER_READ_FAILURE_PERIODS} 5-minute periods (its log line \`dead-letter queue not read\` names the queue and the error): that queue's DeadLetters is not reported, so its depth alarm reads SQS's count alone, which SQS may stop reporting, and its aging alarm counts no hour`,
      1,
      ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      { evaluationPeriods: DEAD_LETTER_READ_FAILURE_PERIODS },
    );
    // How late messages run, measured by the consumer from when each was due: the queue's age cannot say it, as
    // the liquidation queue holds messages sent up to 900 s ahead (the last resort's waits for the book).
    this.alarm(
      'LiquidationsLateAlarm',
      this.business(METRICS.LiquidationLateness, {
        statistic: 'Maximum',
        period: ONE_MINUTE,
      }),
      `A liquidation message ran more than ${props.config.alarmLiquidationQueueAgeSeconds} s after it was due (a new one: after its tick) two minutes running: the consumer is behind, its records are retried, messages were redriven, or margin-check is still starting a large crossing (its continuations)`,
      props.config.alarmLiquidationQueueAgeSeconds,
      ComparisonOperator.GREATER_THAN_THRESHOLD,
      { evaluationPeriods: 2 },
    );
    // A stalled consumer reports no lateness (nothing runs): its queue shows it, by counts first, by age later.
    this.workQueueStallAlarm('LiquidationQueueStallAlarm', 'liquidations', props);
    this.workQueueStallAlarm('AuctionStepQueueStallAlarm', 'auctionSteps', props);
    this.workQueueAgeAlarm('LiquidationQueueAgeAlarm', 'liquidations', props);
    this.workQueueAgeAlarm('AuctionStepQueueAgeAlarm', 'auctionSteps', props);
  }

  /**
   * A work queue holding visible messages none of which is received, WORK_QUEUE_STALL_MINUTES running: two counts
   * SQS documents, neither an age, so how SQS ages a delayed message does not matter. A minute with no receive
   * reported is one with none. A minute with no visible count reported has no data point at all, not a 0: SQS's
   * metrics can come late, and FILL would make the latest minute, not reported yet, a 0 that holds the alarm off while
   * they do (AWS's warning on FILL in alarms); unfilled, CloudWatch evaluates the latest minutes reported
   * (review45-stall-fill-latest).
   */
  private workQueueStallAlarm(id: string, queue: QueueId, props: MonitoringProps): void {
    const consumer = consumerOf(queue);
    const q = props.queues[queue].queue;
    this.alarm(
      id,
      new MathExpression({
        // False: `visible` (0 there), not a scalar 0. AWS's IF(metric1, metric2, scalar3) table gives the scalar where
        // the condition has no point and metric2 has one, as the inner IF has every minute: the latest minute, not
        // reported yet, read 0 again. IF of three series has none where its condition has none
        // (review45-fill-if-table).
        expression: 'IF(visible > 0, IF(FILL(received, 0) == 0, visible, 0), visible)',
        usingMetrics: {
          visible: q.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: ONE_MINUTE }),
          received: q.metricNumberOfMessagesReceived({ statistic: 'Sum', period: ONE_MINUTE }),
        },
        label: `${queue} visible, none received`,
        period: ONE_MINUTE,
      }),
      `${queue} has held messages ready to receive (visible: neither delayed nor in flight) and none was received, ${WORK_QUEUE_STALL_MINUTES} minutes running: ${consumer?.folder ?? queue}'s SQS trigger is not receiving: its event source mapping disabled or failing (its State and LastProcessingResult), or the function unable to be invoked or to read the queue. A consumer that receives and fails pages by its errors and failed records instead, a throttled one (it still receives) by its throttles, and one that receives too little by its late and age alarms`,
      0,
      ComparisonOperator.GREATER_THAN_THRESHOLD,
      { evaluationPeriods: WORK_QUEUE_STALL_MINUTES },
    );
  }

  /** A work queue whose oldest message waits past WORK_QUEUE_AGE_SECONDS: what it can mean, as AWS documents it. */
  private workQueueAgeAlarm(id: string, queue: QueueId, props: MonitoringProps): void {
    const consumer = consumerOf(queue);
    this.alarm(
      id,
      props.queues[queue].queue.metricApproximateAgeOfOldestMessage({
        statistic: 'Maximum',
        period: ONE_MINUTE,
      }),
      `The oldest ${queue} message not yet received three times is over ${WORK_QUEUE_AGE_SECONDS} s old, two minutes running: ${consumer?.folder ?? queue} is far behind or receiving too little (one receiving nothing pages by its stall alarm first; its late alarm says how late messages run). Messages are sent up to 900 s ahead and AWS does not say whether a delayed message is aged from its send: if it is, this pages 900 s or more after the oldest message fell due; if not, ${WORK_QUEUE_AGE_SECONDS} s after. A message received three times without being deleted leaves this age (AWS): a consumer failing every message pages by its errors, failed records and dead letters instead`,
      WORK_QUEUE_AGE_SECONDS,
      ComparisonOperator.GREATER_THAN_THRESHOLD,
      { evaluationPeriods: 2 },
    );
  }

  private functionAlarms(props: MonitoringProps): void {
    for (const def of FUNCTIONS) {
      this.alarm(
        `${pascal(def.id)}ErrorsAlarm`,
        props.functions[def.id].metricErrors({ statistic: 'Sum', period: FIVE_MINUTES }),
        `${def.folder} threw ${props.config.alarmFunctionErrors} or more errors in 5 minutes`,
        props.config.alarmFunctionErrors,
        ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      );
      // A failed record in a batch whose other records succeed is no Lambda error (partial batch responses):
      // without its own count it would page only from the dead-letter queue, minutes of retries later.
      if (def.trigger.kind === 'queue') {
        const queue = def.trigger.queue;
        this.alarm(
          `${pascal(queue)}RecordFailuresAlarm`,
          this.business(METRICS.RecordFailures, { dimension: queue }),
          `${props.config.alarmFunctionErrors} or more ${queue} records failed in 5 minutes (${def.folder}); each is retried, and dead-lettered after maxReceiveCount receives: its logs and \`backstop dlq list\` say why`,
          props.config.alarmFunctionErrors,
          ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        );
      }
      // Throttled receives count towards maxReceiveCount (healthy messages dead-lettered) and a throttled
      // scheduled run is dropped: page before either.
      this.alarm(
        `${pascal(def.id)}ThrottlesAlarm`,
        props.functions[def.id].metricThrottles({ statistic: 'Sum', period: FIVE_MINUTES }),
        `${def.folder} was throttled (account or reserved concurrency spent): its events wait, and queue messages move towards their dead-letter queue`,
        1,
        ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      );
    }
  }

  /**
   * DynamoDB throttles one partition that takes more than it can (about 1,000 writes a second) even on demand:
   * the fund's balance item, a busy market's item, a market side's index partition. A throttled index also
   * throttles the table writes that feed it.
   */
  private throttleAlarms(props: MonitoringProps): void {
    for (const t of TABLES) {
      this.alarm(
        `${pascal(t.id)}TableThrottleAlarm`,
        tableThrottles(props.tables[t.id], t),
        `Requests to the ${t.id} table${t.id !== 'positions' && t.indexes.length > 0 ? ` or writes to its indexes (${t.indexes.map((i) => i.name).join(', ')})` : ''} were throttled in the last ${SPARSE_SUM_MINUTES} minutes: one of its items or partitions takes more than DynamoDB serves it (retried by the SDK and the queues, but slower)`,
        1,
        ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        { evaluationPeriods: SPARSE_SUM_EVALUATION_PERIODS, datapointsToAlarm: 1 },
      );
    }
    this.alarm(
      'PositionIndexThrottleAlarm',
      positionIndexThrottles(props.tables.positions),
      `Writes to the positions indexes were throttled in the last ${SPARSE_SUM_MINUTES} minutes: a market writes more positions a second than its index partitions take; give it more index shards (backstop:positionIndexShards, docs/DEPLOY.md)`,
      1,
      ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      { evaluationPeriods: SPARSE_SUM_EVALUATION_PERIODS, datapointsToAlarm: 1 },
    );
  }

  /**
   * Every metric `byMarket`, one series per market: the alarms page on the totals, and these graphs (grouped by
   * the alarms they explain) say which market it was (docs/DEPLOY.md, alarm runbook).
   */
  private marketWidgets(): void {
    const graph = (title: string, left: IMetric[], right: IMetric[] = []) =>
      new GraphWidget({ title, left, right, width: 8, height: 6 });
    const by = (spec: MetricSpec, statistic?: string) => this.perMarket(spec, statistic);
    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          '## By market\nThe market behind a page: each alarmed metric per market (markets with data in the range).',
        width: 24,
        height: 1,
      }),
    );
    this.dashboard.addWidgets(
      graph('Bad debt by market', [by(METRICS.BadDebt)]),
      graph('Fund draws and refusals, ADL by market', [
        by(METRICS.InsuranceFundDraws),
        by(METRICS.InsuranceFundRefusals),
        by(METRICS.AdlEvents),
      ]),
      graph('Breaker trips, ticks rejected by market', [
        by(METRICS.CircuitBreakerTripped),
        by(METRICS.TicksRejected),
        by(METRICS.BreakerTraceFailures),
      ]),
    );
    this.dashboard.addWidgets(
      graph('Stale-mark waits, mark disputes by market', [
        by(METRICS.StaleMarkWaits),
        by(METRICS.MarkDisputes),
        by(METRICS.LiquidationsDisputed),
        by(METRICS.MarkDisputesOverruled),
      ]),
      graph('Last resort, auctions skipped and woken by market', [
        by(METRICS.LastResortOrders),
        by(METRICS.LastResortWaits),
        by(METRICS.LastResortWaitsOutraced),
        by(METRICS.AuctionsSkipped),
        by(METRICS.AuctionsWoken),
        by(METRICS.AuctionStepsResent),
        by(METRICS.AuctionStepResendFailures),
        by(METRICS.AuctionWakeFailures),
      ]),
      graph('Venue failures, order leases, contention by market', [
        by(METRICS.VenueOrderFailures),
        by(METRICS.OrderLeaseDeferrals),
        by(METRICS.OrderLeaseTakeovers),
        by(METRICS.LiquidationsContended),
      ]),
    );
    this.dashboard.addWidgets(
      graph('Liquidations by market', [
        by(METRICS.LiquidationsEnqueued),
        by(METRICS.LiquidationsSettled),
        by(METRICS.LiquidationsCancelled),
        by(METRICS.PositionsChecked),
        by(METRICS.PositionsRepriced),
      ]),
      graph(
        'Lateness (max, s); slippage (bps) and auction duration (s), p99, by market',
        [by(METRICS.LiquidationLateness, 'Maximum'), by(METRICS.AuctionStepLateness, 'Maximum')],
        [by(METRICS.SlippageBps), by(METRICS.AuctionDurationSeconds)],
      ),
    );
  }

  private widgets(props: MonitoringProps): void {
    const m = (spec: MetricSpec, statistic?: string) => this.business(spec, statistic ? { statistic } : {});
    const graph = (title: string, left: IMetric[], right: IMetric[] = []) =>
      new GraphWidget({ title, left, right, width: 8, height: 6 });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# Backstop ${props.config.stage}\nBusiness metrics (namespace ${METRICS_NAMESPACE}), queues, functions.`,
        width: 24,
        height: 1,
      }),
    );
    this.dashboard.addWidgets(
      graph('Ticks by market, positions checked and priced again', [
        this.byDimension(METRICS.TicksAccepted, 'Sum'),
        m(METRICS.PositionsChecked),
        m(METRICS.PositionsRepriced),
      ]),
      graph('Ticks rejected by reason', [this.byDimension(METRICS.TicksRejected, 'Sum')]),
      graph('Liquidations', [m(METRICS.LiquidationsEnqueued), m(METRICS.LiquidationsCancelled)]),
      graph('Auctions woken by ticks, skipped for want of a bidder, steps sent again (or not)', [
        m(METRICS.AuctionsWoken),
        m(METRICS.AuctionWakeFailures),
        m(METRICS.AuctionStepsResent),
        m(METRICS.AuctionStepResendFailures),
        m(METRICS.AuctionsSkipped),
      ]),
    );
    this.dashboard.addWidgets(
      graph(
        'Liquidations settled by layer',
        LIQUIDATION_LAYERS.map((layer) =>
          this.business(METRICS.LiquidationsSettled, { dimension: layer, label: layer }),
        ),
      ),
      graph('Slippage (bps)', [m(METRICS.SlippageBps, 'p50'), m(METRICS.SlippageBps, 'p99')]),
      graph(
        'Auction duration; step and liquidation lateness (s)',
        [m(METRICS.AuctionDurationSeconds, 'p50'), m(METRICS.AuctionDurationSeconds, 'p99')],
        [m(METRICS.AuctionStepLateness, 'Maximum'), m(METRICS.LiquidationLateness, 'Maximum')],
      ),
    );
    this.dashboard.addWidgets(
      new SingleValueWidget({
        title: 'Insurance fund balance',
        metrics: [m(METRICS.InsuranceFundBalance, 'Minimum')],
        width: 8,
        height: 6,
      }),
      graph(
        'Fund draws and refusals, bad debt, ADL',
        [
          m(METRICS.InsuranceFundDraws),
          this.byDimension(METRICS.InsuranceFundRefusals, 'Sum'),
          m(METRICS.AdlEvents),
          m(METRICS.LastResortOrders),
          m(METRICS.LastResortWaits),
          m(METRICS.LastResortWaitsOutraced),
        ],
        [m(METRICS.BadDebt)],
      ),
      graph(
        'Safety',
        [
          m(METRICS.CircuitBreakerTripped),
          m(METRICS.BreakerTraceFailures),
          m(METRICS.RefusalTraceFailures),
          m(METRICS.StaleMarkWaits),
          m(METRICS.MarkDisputes),
          m(METRICS.LiquidationsDisputed),
          m(METRICS.MarkDisputesOverruled),
          m(METRICS.OrderLeaseDeferrals),
          m(METRICS.OrderLeaseTakeovers),
          m(METRICS.LiquidationsContended),
          this.byDimension(METRICS.VenueOrderFailures, 'Sum'),
        ],
        [
          m(METRICS.LedgerReconcileDifference, 'Maximum'),
          m(METRICS.LedgerJournalProblems, 'Maximum'),
          m(METRICS.LedgerReconcileBacklog, 'Maximum'),
          m(METRICS.LiquidationsOverdue, 'Maximum'),
        ],
      ),
    );
    this.marketWidgets();
    const depth: IMetric[] = [];
    const received: IMetric[] = [];
    const age: IMetric[] = [];
    const dlqDepth: IMetric[] = [];
    for (const q of QUEUES) {
      const pair = props.queues[q.id];
      depth.push(pair.queue.metricApproximateNumberOfMessagesVisible({ label: q.id, statistic: 'Maximum' }));
      // Beside the depth, what the stall alarms compare it with.
      if (consumerOf(q.id))
        received.push(
          pair.queue.metricNumberOfMessagesReceived({ label: `${q.id} received`, statistic: 'Sum' }),
        );
      age.push(pair.queue.metricApproximateAgeOfOldestMessage({ label: q.id, statistic: 'Maximum' }));
      const dlq = pair.deadLetter ?? (isDeadLetterSink(q) ? pair.queue : undefined);
      if (dlq) {
        dlqDepth.push(
          dlq.metricApproximateNumberOfMessagesVisible({
            label: pair.deadLetter ? `${q.id} DLQ` : q.id,
            statistic: 'Maximum',
          }),
        );
      }
    }
    this.dashboard.addWidgets(
      graph('Queue depth (visible); messages received (right)', depth, received),
      graph('Age of oldest message (s)', age),
      graph(
        'Dead-letter queue depth, and all each holds as liquidation-watch reads it; queues it could not read (right)',
        // Beside SQS's visible counts, what the dead-letter alarms read with them (dlq45-depth-gauge).
        [...dlqDepth, this.byDimension(METRICS.DeadLetters, 'Maximum')],
        [m(METRICS.DeadLetterReadFailures)],
      ),
    );
    const fns = FUNCTIONS.map((def) => ({ def, fn: props.functions[def.id] }));
    this.dashboard.addWidgets(
      graph(
        'Function errors, failed records',
        fns.map(({ def, fn }) => fn.metricErrors({ label: def.folder, statistic: 'Sum' })),
        [
          this.byDimension(METRICS.RecordFailures, 'Sum'),
          this.byDimension(METRICS.NewerWriterRetries, 'Sum'),
        ],
      ),
      graph(
        'Function throttles',
        fns.map(({ def, fn }) => fn.metricThrottles({ label: def.folder, statistic: 'Sum' })),
      ),
      graph(
        'Function duration p99 (ms)',
        fns.map(({ def, fn }) => fn.metricDuration({ label: def.folder, statistic: 'p99' })),
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'DynamoDB throttled events by table',
        TABLES.map((t) => tableThrottles(props.tables[t.id], t)),
        [positionIndexThrottles(props.tables.positions)],
      ),
    );
    // The markets' feed alarms apart from the stack's: one per market, they would crowd the stack's out of sight.
    const feeds = new Set(this.feedAlarms);
    this.dashboard.addWidgets(
      ...alarmWidgets(
        'Alarms',
        this.alarms.filter((a) => !feeds.has(a)),
      ),
      ...alarmWidgets('Tick feeds (one alarm per market)', this.feedAlarms),
    );
  }
}

/** CloudWatch's alarm status widget holds at most 100 alarms (the dashboard body structure). */
export const MAX_ALARMS_PER_WIDGET = 100;

/** `alarms` in widgets of at most MAX_ALARMS_PER_WIDGET, numbered when there are several (none: no widget). */
function alarmWidgets(title: string, alarms: readonly Alarm[]): AlarmStatusWidget[] {
  const widgets: AlarmStatusWidget[] = [];
  const count = Math.ceil(alarms.length / MAX_ALARMS_PER_WIDGET);
  for (let i = 0; i < count; i++) {
    widgets.push(
      new AlarmStatusWidget({
        title: count === 1 ? title : `${title}, ${i + 1} of ${count}`,
        alarms: alarms.slice(i * MAX_ALARMS_PER_WIDGET, (i + 1) * MAX_ALARMS_PER_WIDGET),
        width: 24,
        height: 6,
      }),
    );
  }
  return widgets;
}

import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import type { EventBus, Rule } from 'aws-cdk-lib/aws-events';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Construct } from 'constructs';
import { VENUE } from '../shared/adapters/venue/index.ts';
import { parseRiskConfig } from '../shared/domain/config.ts';
import {
  FUNCTIONS,
  type FunctionId,
  QUEUES,
  type QueueId,
  TABLES,
  type TableId,
  tickRuleTarget,
} from '../shared/topology.ts';
import { checkVenueKey, type InfraConfig } from './config.ts';
import { type AdminTrail, createAdminTrail } from './constructs/admin-trail.ts';
import { createFunctions, denyOtherInvokers, TICK_RULE_ID } from './constructs/functions.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { createQueues, type QueuePair, setQueuePolicies } from './constructs/queues.ts';
import { createTables } from './constructs/tables.ts';
import { BUS_PUTTERS, createTickBus, setTickBusPolicy } from './constructs/tick-bus.ts';
import {
  deadLetterQueueArnKey,
  deadLetterQueueUrlKey,
  functionArnKey,
  functionNameKey,
  OUTPUT_KEYS,
  queueArnKey,
  queueUrlKey,
  riskConfigDigest,
  tableArnKey,
  tableNameKey,
} from './outputs.ts';

export interface BackstopStackProps extends StackProps {
  readonly config: InfraConfig;
  /** Repository root: functions/<folder>/index.ts entries and package-lock.json live there. */
  readonly projectRoot: string;
  /**
   * The venue the functions' code trades on: VENUE (shared/adapters/venue/index.ts), built into the bundles; another
   * name only in tests of what synth requires of it (checkVenueKey).
   */
  readonly venue?: string;
}

/** Everything the backstop runs on, generated from shared/topology.ts. */
export class BackstopStack extends Stack {
  readonly tables: Record<TableId, Table>;
  readonly queues: Record<QueueId, QueuePair>;
  readonly functions: Record<FunctionId, NodejsFunction>;
  readonly tickBus: EventBus;
  readonly monitoring: Monitoring;
  /** The admin function's invocation trail, unless backstop:adminTrail is false. */
  readonly adminTrail: AdminTrail | undefined;

  constructor(scope: Construct, id: string, props: BackstopStackProps) {
    super(scope, id, props);
    const { config } = props;
    checkVenueKey(config, props.venue ?? VENUE);
    const tables = createTables(this, { positionIndexes: config.positionIndexes });
    const queues = createQueues(this, config);
    const { bus, archive } = createTickBus(this, config);
    const functions = createFunctions(this, {
      config,
      projectRoot: props.projectRoot,
      tables,
      queues,
      tickBus: bus,
    });
    // Once the functions exist: only margin-check's role may put continuations.
    setTickBusPolicy(
      bus,
      config,
      BUS_PUTTERS.map((def) => functions[def.id].role!),
    );
    const tickRule = this.node.findChild(TICK_RULE_ID) as Rule;
    // Once the functions and the tick rule exist: who may send to each queue.
    const tickTrigger = tickRuleTarget().trigger;
    setQueuePolicies(
      queues,
      config,
      Object.fromEntries(FUNCTIONS.map((def) => [def.id, functions[def.id].role!])) as Record<
        FunctionId,
        IRole
      >,
      tickTrigger.kind === 'tickRule' ? { [tickTrigger.deadLetters]: [tickRule] } : {},
    );
    for (const def of FUNCTIONS)
      if (def.trigger.kind === 'iamInvoke') denyOtherInvokers(functions[def.id], config.adminInvokers);
    const adminTrail = config.adminTrail
      ? createAdminTrail(this, {
          stage: config.stage,
          admin: functions.admin,
          retentionDays: config.adminTrailRetentionDays,
        })
      : undefined;
    const monitoring = new Monitoring(this, 'Monitoring', {
      config,
      queues,
      functions,
      tables,
      tick: { bus, rule: tickRule },
    });
    this.tables = tables;
    this.queues = queues;
    this.functions = functions;
    this.tickBus = bus;
    this.monitoring = monitoring;
    this.adminTrail = adminTrail;

    // Outputs sit directly on the stack so their logical ids are exactly the keys (no hash suffix).
    const out = (key: string, value: string, description?: string) =>
      new CfnOutput(this, key, { value, ...(description ? { description } : {}) });
    out(OUTPUT_KEYS.stage, config.stage);
    out(OUTPUT_KEYS.tickBusName, bus.eventBusName, 'put PriceTick events here');
    out(OUTPUT_KEYS.tickBusArn, bus.eventBusArn);
    out(OUTPUT_KEYS.tickArchiveName, archive.archiveName);
    out(OUTPUT_KEYS.dashboardName, monitoring.dashboard.dashboardName);
    out(OUTPUT_KEYS.alarmTopicArn, monitoring.topic.topicArn, 'alarms notify this topic: subscribe to it');
    out(
      OUTPUT_KEYS.riskConfigDigest,
      riskConfigDigest(parseRiskConfig(config.riskConfigInput)),
      "SHA-256 of the functions' risk configuration: the operator commands refuse a --config that differs",
    );
    if (adminTrail) {
      out(
        OUTPUT_KEYS.adminTrailName,
        adminTrail.trail.ref,
        "CloudTrail's Invoke data events of the admin function: who moved money through it, by invocation id",
      );
      out(OUTPUT_KEYS.adminTrailBucketName, adminTrail.bucket.bucketName, "the admin trail's log files");
    }
    for (const t of TABLES) {
      out(tableNameKey(t.id), tables[t.id].tableName);
      out(tableArnKey(t.id), tables[t.id].tableArn);
    }
    for (const q of QUEUES) {
      const pair = queues[q.id];
      out(queueUrlKey(q.id), pair.queue.queueUrl);
      out(queueArnKey(q.id), pair.queue.queueArn);
      if (pair.deadLetter) {
        out(deadLetterQueueUrlKey(q.id), pair.deadLetter.queueUrl);
        out(deadLetterQueueArnKey(q.id), pair.deadLetter.queueArn);
      }
    }
    for (const f of FUNCTIONS) {
      out(functionNameKey(f.id), functions[f.id].functionName);
      out(functionArnKey(f.id), functions[f.id].functionArn);
    }
  }
}

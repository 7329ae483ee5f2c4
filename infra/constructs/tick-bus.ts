import { Duration, Stack } from 'aws-cdk-lib';
import { type Archive, type CfnEventBus, EventBus, type EventPattern } from 'aws-cdk-lib/aws-events';
import {
  AccountPrincipal,
  AnyPrincipal,
  ArnPrincipal,
  Effect,
  type IPrincipal,
  PolicyDocument,
  PolicyStatement,
} from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { type EventPatternDef, physicalName, TICK_BUS, TICK_PATTERN } from '../../shared/topology.ts';
import type { InfraConfig } from '../config.ts';

export interface TickBus {
  readonly bus: EventBus;
  readonly archive: Archive;
}

const feedPrincipal = (p: string): IPrincipal =>
  /^\d{12}$/.test(p) ? new AccountPrincipal(p) : new ArnPrincipal(p);

/**
 * CDK's form of a topology pattern: CDK renames detailType to detail-type and passes every other key as written
 * (it has no field for replay-name).
 */
export const cdkEventPattern = ({ 'detail-type': detailType, ...rest }: EventPatternDef): EventPattern =>
  ({ ...rest, ...(detailType ? { detailType } : {}) }) as EventPattern;

/**
 * The custom bus the price feed puts ticks on. Its resource policy:
 * - allows PutEvents only from this account and the configured feed principals (any other account is
 *   refused: cross-account PutEvents needs an Allow here), and only with source TICK_BUS.source; the feed
 *   principals only PriceTick events (continuations are margin-check's, in this account);
 * - denies PutEvents with any other source to everyone, this account included, so the bus carries
 *   ticks and nothing else.
 * The bus has a fixed name (backstop-<stage>-ticks) because the feed, outside this stack, addresses it.
 */
export function createTickBus(scope: Construct, config: InfraConfig): TickBus {
  const eventBusName = physicalName(config.stage, TICK_BUS.name);
  const bus = new EventBus(scope, 'TickBus', {
    eventBusName,
    description: `Price ticks (source ${TICK_BUS.source}, detail-type ${TICK_BUS.detailType})`,
  });
  const stack = Stack.of(scope);
  const account = stack.account;
  // Built from the name: a GetAtt of the bus inside its own policy would be a circular reference.
  const busArn = stack.formatArn({ service: 'events', resource: 'event-bus', resourceName: eventBusName });
  const policy = new PolicyDocument({
    statements: [
      new PolicyStatement({
        sid: 'AllowAccountPutTicks',
        effect: Effect.ALLOW,
        principals: [new AccountPrincipal(account)],
        actions: ['events:PutEvents'],
        resources: [busArn],
        conditions: { StringEquals: { 'events:source': TICK_BUS.source } },
      }),
      // A feed puts PriceTick only: a continuation is margin-check's own, and a forged one claims a tick's segments.
      ...(config.feedPrincipals.length > 0
        ? [
            new PolicyStatement({
              sid: 'AllowFeedPutTicks',
              effect: Effect.ALLOW,
              principals: config.feedPrincipals.map(feedPrincipal),
              actions: ['events:PutEvents'],
              resources: [busArn],
              conditions: {
                StringEquals: { 'events:source': TICK_BUS.source, 'events:detail-type': TICK_BUS.detailType },
              },
            }),
          ]
        : []),
      new PolicyStatement({
        sid: 'DenyOtherSources',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['events:PutEvents'],
        resources: [busArn],
        conditions: { StringNotEquals: { 'events:source': TICK_BUS.source } },
      }),
    ],
  });
  // The bus's own Policy property rather than AWS::Events::EventBusPolicy resources: one resource, and
  // emulators that lack EventBusPolicy still create the bus.
  (bus.node.defaultChild as CfnEventBus).policy = policy;
  const archive = bus.archive('TickArchive', {
    description: 'Every price tick, for replay and audit of liquidation decisions',
    eventPattern: cdkEventPattern(TICK_PATTERN),
    retention: Duration.days(config.tickArchiveRetentionDays),
  });
  return { bus, archive };
}

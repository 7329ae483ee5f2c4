import { Duration, Stack, Token } from 'aws-cdk-lib';
import { type Archive, type CfnEventBus, EventBus, type EventPattern } from 'aws-cdk-lib/aws-events';
import {
  AccountPrincipal,
  AnyPrincipal,
  ArnPrincipal,
  Effect,
  type IPrincipal,
  type IRole,
  PolicyDocument,
  PolicyStatement,
} from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import {
  type EventPatternDef,
  FUNCTIONS,
  type FunctionDef,
  physicalName,
  TICK_BUS,
  TICK_PATTERN,
} from '../../shared/topology.ts';
import { CONTEXT_PREFIX, type InfraConfig, InfraConfigError, isAccountId } from '../config.ts';

export interface TickBus {
  readonly bus: EventBus;
  readonly archive: Archive;
}

const feedPrincipal = (p: string): IPrincipal =>
  isAccountId(p) ? new AccountPrincipal(p) : new ArnPrincipal(p);

/** The functions the topology lets put events on the bus: margin-check, for its continuations. */
export const BUS_PUTTERS: readonly FunctionDef[] = FUNCTIONS.filter((f) =>
  f.grants.some((g) => g.bus === TICK_BUS.name && g.access === 'put'),
);

/**
 * CDK's form of a topology pattern: CDK renames detailType to detail-type and passes every other key as written
 * (it has no field for replay-name).
 */
export const cdkEventPattern = ({ 'detail-type': detailType, ...rest }: EventPatternDef): EventPattern =>
  ({ ...rest, ...(detailType ? { detailType } : {}) }) as EventPattern;

/**
 * The custom bus the price feed puts ticks on, and its archive of ticks. Its resource policy is set by
 * setTickBusPolicy once the functions exist. The bus has a fixed name (backstop-<stage>-ticks) because the feed,
 * outside this stack, addresses it.
 */
export function createTickBus(scope: Construct, config: InfraConfig): TickBus {
  const bus = new EventBus(scope, 'TickBus', {
    eventBusName: physicalName(config.stage, TICK_BUS.name),
    description: `Price ticks (source ${TICK_BUS.source}, detail-type ${TICK_BUS.detailType})`,
  });
  const archive = bus.archive('TickArchive', {
    description: 'Every price tick, for replay and audit of liquidation decisions',
    eventPattern: cdkEventPattern(TICK_PATTERN),
    retention: Duration.days(config.tickArchiveRetentionDays),
  });
  return { bus, archive };
}

/**
 * The tick bus's resource policy:
 * - allows PutEvents only from this account and the configured feed principals (any other account is
 *   refused: cross-account PutEvents needs an Allow here), and only with source TICK_BUS.source; the feed
 *   principals only PriceTick events (continuations are margin-check's, in this account);
 * - denies PriceTickContinuation to every principal but the bus putters' roles (margin-check's), this account's
 *   principals included: a forged continuation claims a tick's segments;
 * - with tickPublishersOnly (on by default when there are feed principals), denies PriceTick to every principal but
 *   the feed principals (a role ARN: that role; an account id: any principal of that account), this account's
 *   included; margin-check's continuations and the rule's delivery to margin-check are not PriceTick puts;
 * - denies PutEvents with any other source to everyone, this account included, so the bus carries
 *   ticks and nothing else.
 * The putters' roles are named by reference: a role references nothing (its grants are separate policies), so the
 * bus depending on it makes no cycle.
 */
export function setTickBusPolicy(bus: EventBus, config: InfraConfig, putters: readonly IRole[]): void {
  const stack = Stack.of(bus);
  const account = stack.account;
  // Built from the name: a GetAtt of the bus inside its own policy would be a circular reference.
  const busArn = stack.formatArn({
    service: 'events',
    resource: 'event-bus',
    resourceName: physicalName(config.stage, TICK_BUS.name),
  });
  const feedRoles = config.feedPrincipals.filter((p) => !isAccountId(p));
  const feedAccounts = config.feedPrincipals.filter(isAccountId);
  if (config.tickPublishersOnly && !Token.isUnresolved(account) && feedAccounts.includes(account)) {
    throw new InfraConfigError(
      `invalid CDK context: ${CONTEXT_PREFIX}feedPrincipals names this stack's account ${account}, which lets every principal of it put PriceTick: ${CONTEXT_PREFIX}tickPublishersOnly (on by default with feed principals) would deny no one; list the feed's role ARN instead, or set ${CONTEXT_PREFIX}tickPublishersOnly=false to let every principal of this account IAM allows put ticks`,
    );
  }
  if (putters.length === 0) throw new Error('tick bus: no role may put continuations');
  const putEvents = (
    sid: string,
    effect: Effect,
    principals: IPrincipal[],
    conditions: Record<string, Record<string, unknown>>,
  ) =>
    new PolicyStatement({
      sid,
      effect,
      principals,
      actions: ['events:PutEvents'],
      resources: [busArn],
      conditions,
    });
  const policy = new PolicyDocument({
    statements: [
      putEvents('AllowAccountPutTicks', Effect.ALLOW, [new AccountPrincipal(account)], {
        StringEquals: { 'events:source': TICK_BUS.source },
      }),
      // A feed puts PriceTick only: a continuation is margin-check's own.
      ...(config.feedPrincipals.length > 0
        ? [
            putEvents('AllowFeedPutTicks', Effect.ALLOW, config.feedPrincipals.map(feedPrincipal), {
              StringEquals: { 'events:source': TICK_BUS.source, 'events:detail-type': TICK_BUS.detailType },
            }),
          ]
        : []),
      // A condition on the principal's ARN: it matches the role whichever session of it calls.
      putEvents('DenyOthersContinuations', Effect.DENY, [new AnyPrincipal()], {
        StringEquals: { 'events:detail-type': TICK_BUS.continuationDetailType },
        ArnNotEquals: { 'aws:PrincipalArn': putters.map((r) => r.roleArn) },
      }),
      // Denied unless a listed role or a principal of a listed account: a statement's conditions all hold.
      ...(config.tickPublishersOnly
        ? [
            putEvents('DenyOthersTicks', Effect.DENY, [new AnyPrincipal()], {
              StringEquals: { 'events:detail-type': TICK_BUS.detailType },
              ...(feedRoles.length > 0 ? { ArnNotEquals: { 'aws:PrincipalArn': feedRoles } } : {}),
              ...(feedAccounts.length > 0
                ? { StringNotEquals: { 'aws:PrincipalAccount': feedAccounts } }
                : {}),
            }),
          ]
        : []),
      putEvents('DenyOtherSources', Effect.DENY, [new AnyPrincipal()], {
        StringNotEquals: { 'events:source': TICK_BUS.source },
      }),
    ],
  });
  // The bus's own Policy property rather than AWS::Events::EventBusPolicy resources: one resource, and
  // emulators that lack EventBusPolicy still create the bus.
  (bus.node.defaultChild as CfnEventBus).policy = policy;
}

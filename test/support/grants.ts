import type { AwsClients } from '../../shared/adapters/aws/clients.ts';
import type { ResourceNames } from '../../shared/adapters/aws/resources.ts';
import { currentFunction } from '../../shared/runner/index.ts';
import {
  type Access,
  type BusId,
  FUNCTIONS,
  type FunctionId,
  type Grant,
  QUEUES,
  type QueueId,
  TABLES,
  type TableId,
  TICK_BUS,
  VENUE_TRADERS,
} from '../../shared/topology.ts';
import { requestAttributes } from './request-attributes.ts';

/**
 * What each function's handler touched, as IAM sees it: every DynamoDB, SQS and EventBridge call the handlers' own clients
 * make inside an invocation of the local runner, and every Secrets Manager call of the venue key's reader (its own
 * client: attachVenueKey), by function, resource and kind of access. moto does not
 * enforce IAM, so this is how the local runs check that the topology's grants (the CDK stack's policies) cover
 * every call a function makes.
 */

/**
 * `delete`: no grant covers it (the stack grants puts and updates only: infra/constructs/functions.ts). `scan`: a read
 * grant covers it on a table the topology marks `scanned` only (security48-read-scan). `update`: an UpdateItem, which a
 * write grant covers on a table not written by puts alone (`putsOnly`: review48-security-ledger-update). `call`: any
 * other call (DynamoDB's DescribeTable, PartiQL, ...; SQS's PurgeQueue, SetQueueAttributes, ...; EventBridge's other
 * than PutEvents), which no grant covers (review48-security-grants-unmapped, more48b-grants-unmapped-queues).
 * SQS's, by IAM action, on a queue (`<id>`, or `<id>-dlq` its dead-letter queue): `send` sqs:SendMessage (a batch too),
 * `depth` sqs:GetQueueAttributes, `url` sqs:GetQueueUrl, `receive` sqs:ReceiveMessage, `deleteMessage`
 * sqs:DeleteMessage, `visibility` sqs:ChangeMessageVisibility (batches too). `put`: events:PutEvents, on a bus.
 * `secret`: secretsmanager:GetSecretValue, on `venueKey` (the stage's venue secret: VENUE_TRADERS' grant,
 * infra/constructs/functions.ts `venueKeyStatements`) or another secret, granted to none; any other Secrets Manager
 * call is a `call` (providers49-grants-secrets).
 */
type Kind =
  | 'read'
  | 'scan'
  | 'write'
  | 'update'
  | 'delete'
  | 'call'
  | 'send'
  | 'put'
  | 'secret'
  | 'depth'
  | 'url'
  | 'receive'
  | 'deleteMessage'
  | 'visibility';
type QueueKind = Extract<Kind, 'send' | 'depth' | 'url' | 'receive' | 'deleteMessage' | 'visibility'>;
const SQS_KINDS: Readonly<Record<string, QueueKind>> = {
  SendMessage: 'send',
  SendMessageBatch: 'send',
  GetQueueAttributes: 'depth',
  GetQueueUrl: 'url',
  ReceiveMessage: 'receive',
  DeleteMessage: 'deleteMessage',
  DeleteMessageBatch: 'deleteMessage',
  ChangeMessageVisibility: 'visibility',
  ChangeMessageVisibilityBatch: 'visibility',
};
const QUEUE_KIND_SET: Readonly<Record<string, true>> = Object.fromEntries(
  Object.values(SQS_KINDS).map((k) => [k, true]),
);
/** CDK's queue grants (aws-sqs QueueGrants): sendMessages and consumeMessages (an SQS event source's). */
const SENDS: readonly QueueKind[] = ['send', 'depth', 'url'];
const CONSUMES: readonly QueueKind[] = ['receive', 'visibility', 'url', 'deleteMessage', 'depth'];

/** The queue keeping `id`'s dead letters: its dead-letter queue, or a sink itself. */
const keeperOf = (id: QueueId): string => (QUEUES.find((q) => q.id === id)?.deadLetter ? `${id}-dlq` : id);

/**
 * What each queue `fn`'s role may do, as infra/constructs/functions.ts grants it: `applyGrant` (send; consume; a
 * dead-letter keeper's depth alone), and `wireTrigger` (the queue triggering it, consumed by its event source; the tick
 * rule's on-failure destination, sent to: test/infra/stack.test.ts checks both in the template).
 */
function queueAccess(fn: FunctionId): Map<string, Set<QueueKind>> {
  const def = FUNCTIONS.find((f) => f.id === fn)!;
  const access = new Map<string, Set<QueueKind>>();
  const add = (queue: string, kinds: readonly QueueKind[]): void => {
    const set = access.get(queue) ?? new Set<QueueKind>();
    for (const k of kinds) set.add(k);
    access.set(queue, set);
  };
  for (const g of def.grants) {
    if (g.queue && g.access === 'send') add(g.queue, SENDS);
    if (g.queue && g.access === 'consume') add(g.queue, CONSUMES);
    if (g.deadLetters && g.access === 'depth') add(keeperOf(g.deadLetters), ['depth']);
  }
  if (def.trigger.kind === 'queue') add(def.trigger.queue, CONSUMES);
  if (def.trigger.kind === 'tickRule') add(def.trigger.deadLetters, SENDS);
  return access;
}

/** Where the recorder's middleware sits: before the SDK's retries, once a call. */
const RECORDER_STEP = { step: 'initialize', name: 'grantRecorder' } as const;

const READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);
const DELETES = new Set(['DeleteItem', 'BatchWriteItem']);

interface TransactItem {
  readonly Put?: { TableName?: string };
  readonly Update?: { TableName?: string };
  readonly Delete?: { TableName?: string };
  readonly ConditionCheck?: { TableName?: string };
}

/** One item written, as IAM authorizes it: PutItem or UpdateItem (alone, or a transaction's Put or Update). */
interface ItemWrite {
  readonly action: 'PutItem' | 'UpdateItem';
  readonly input: Record<string, unknown>;
}

/**
 * Why a grant limited by condition (keysBeginWith, attributes) does not cover `write`, as the stack's statement
 * would refuse it (infra/constructs/functions.ts); undefined: covered.
 */
export function outsideGrant(grant: Grant, write: ItemWrite): string | undefined {
  if (grant.keysBeginWith !== undefined) {
    if (write.action !== 'PutItem') return `${write.action} (puts only)`;
    // No ReturnValues checked, as the statement conditions none: ReturnValuesOnConditionCheckFailure is no IAM key
    // (dynamodb:ReturnValues is ReturnValues'), and either answers the item at the put's own key, inside the grant
    // (the checkpoint's and the cursor's fenced, owned puts ask ALL_OLD: more48b-keys-return-values).
    const keyName = TABLES.find((t) => t.id === grant.table)!.partitionKey.name;
    const key = (write.input.Item as Record<string, { S?: string }> | undefined)?.[keyName]?.S ?? '';
    return key.startsWith(grant.keysBeginWith) ? undefined : `key ${key} (not ${grant.keysBeginWith}*)`;
  }
  if (grant.attributes !== undefined) {
    if (write.action !== 'UpdateItem') return `${write.action} (updates only)`;
    const outside = requestAttributes(write.input).filter((a) => !grant.attributes!.includes(a));
    if (outside.length > 0) return `attributes ${outside.join(',')} (not granted)`;
    // dynamodb:ReturnValues NONE; and no item answered on a failed condition (no IAM key says what it returns).
    for (const field of ['ReturnValues', 'ReturnValuesOnConditionCheckFailure'])
      if (![undefined, 'NONE'].includes(write.input[field] as string | undefined))
        return `${field} ${String(write.input[field])} (NONE only)`;
  }
  return undefined;
}

export class GrantRecorder {
  /** `${function} ${kind} ${resource}`: one line per distinct use. */
  readonly uses = new Set<string>();
  /** Writes a grant limited by condition does not cover: `${function} ${table}: why`. */
  readonly outside = new Set<string>();
  #names: ResourceNames | undefined;
  #venueSecret: string | undefined;

  /**
   * The stage's physical names (set before its handlers run), and the SecretId its traders are told of the venue's
   * key (VENUE_KEY_ENV: the stack's backstop:venueSecret, `local up --venue-key`'s), absent when it has none.
   */
  forStage(names: ResourceNames, venueSecret?: string): void {
    this.#names = names;
    this.#venueSecret = venueSecret;
  }

  /** For instrumentAwsClients: records every call made inside an invocation. */
  attach(clients: AwsClients): void {
    clients.dynamo.middlewareStack.add(this.#middleware('dynamodb') as never, RECORDER_STEP);
    clients.sqs.middlewareStack.add(this.#middleware('sqs') as never, RECORDER_STEP);
    clients.events.middlewareStack.add(this.#middleware('events') as never, RECORDER_STEP);
  }

  /** For instrumentVenueKeyClients: records every call of a venue key reader's client made inside an invocation. */
  attachVenueKey(client: { readonly middlewareStack: unknown }): void {
    (client.middlewareStack as { add: (m: never, o: typeof RECORDER_STEP) => void }).add(
      this.#middleware('secretsmanager') as never,
      RECORDER_STEP,
    );
  }

  #middleware(service: string) {
    return (
      next: (args: { input: Record<string, unknown> }) => Promise<unknown>,
      context: { commandName?: string },
    ) =>
      (args: { input: Record<string, unknown> }) => {
        this.#record(service, (context.commandName ?? '').replace(/Command$/, ''), args.input);
        return next(args);
      };
  }

  #record(service: string, command: string, input: Record<string, unknown>): void {
    const fn = currentFunction();
    if (!fn || !this.#names) return;
    for (const [kind, resource] of this.#resourcesOf(service, command, input))
      this.uses.add(`${fn} ${kind} ${resource}`);
    for (const [table, write] of this.#itemWrites(command, input)) {
      const why = this.#outsideGrants(fn as FunctionId, table, write);
      if (why !== undefined) this.outside.add(`${fn} ${table}: ${why}`);
    }
  }

  /** Uses the topology does not grant, as readable lines (empty when every call is covered). */
  ungranted(): string[] {
    const allows = (fn: FunctionId, kind: Kind, resource: string): boolean => {
      const def = FUNCTIONS.find((f) => f.id === fn)!;
      const covers = (access: Access): boolean =>
        kind === 'delete' || kind === 'call'
          ? false
          : kind === 'put'
            ? access === kind
            : access === 'readWrite' || access === kind || (kind === 'read' && access === 'consume');
      if (kind in QUEUE_KIND_SET)
        return (
          queueAccess(fn)
            .get(resource)
            ?.has(kind as QueueKind) ?? false
        );
      // Reading the venue's key: granted to the traders alone, on the stage's one secret.
      if (kind === 'secret') return resource === 'venueKey' && VENUE_TRADERS.includes(fn);
      if (kind === 'scan')
        return (
          TABLES.some((t) => t.id === resource && t.scanned) &&
          def.grants.some((g) => g.table === resource && (g.access === 'read' || g.access === 'readWrite'))
        );
      if (kind === 'update')
        return (
          !TABLES.some((t) => t.id === resource && t.putsOnly) &&
          def.grants.some((g) => g.table === resource && (g.access === 'write' || g.access === 'readWrite'))
        );
      return def.grants.some((g) => (g.table === resource || g.bus === resource) && covers(g.access));
    };
    return [
      ...[...this.uses].filter((use) => {
        const [fn, kind, resource] = use.split(' ') as [FunctionId, Kind, string];
        return !allows(fn, kind, resource);
      }),
      ...this.outside,
    ];
  }

  /**
   * Why no write grant of `fn` on `table` covers `write`: none when one is table-wide, or one limited by condition
   * covers it (a write no grant names at all is `ungranted` by its use).
   */
  #outsideGrants(fn: FunctionId, table: string, write: ItemWrite): string | undefined {
    const grants = FUNCTIONS.find((f) => f.id === fn)!.grants.filter(
      (g) => g.table === table && (g.access === 'write' || g.access === 'readWrite'),
    );
    if (grants.length === 0) return undefined;
    const whys = grants.map((g) => outsideGrant(g, write));
    return whys.some((why) => why === undefined) ? undefined : whys.join('; ');
  }

  /** The items a call writes, by table id. */
  #itemWrites(command: string, input: Record<string, unknown>): [string, ItemWrite][] {
    if (command === 'PutItem' || command === 'UpdateItem')
      return [[this.#tableId(String(input.TableName)), { action: command, input }]];
    if (command !== 'TransactWriteItems') return [];
    return ((input.TransactItems as TransactItem[]) ?? []).flatMap((i): [string, ItemWrite][] => {
      const [action, item] = i.Put ? (['PutItem', i.Put] as const) : (['UpdateItem', i.Update] as const);
      return item
        ? [[this.#tableId(String(item.TableName)), { action, input: item as Record<string, unknown> }]]
        : [];
    });
  }

  #resourcesOf(service: string, command: string, input: Record<string, unknown>): [Kind, string][] {
    const table = (name: unknown): string => this.#tableId(String(name));
    if (READS.has(command)) {
      if (command === 'BatchGetItem')
        return Object.keys((input.RequestItems as object) ?? {}).map((t) => ['read', table(t)]);
      if (command === 'TransactGetItems')
        return ((input.TransactItems as { Get: { TableName: string } }[]) ?? []).map((i) => [
          'read',
          table(i.Get.TableName),
        ]);
      return [[command === 'Scan' ? 'scan' : 'read', table(input.TableName)]];
    }
    if (command === 'PutItem') return [['write', table(input.TableName)]];
    if (command === 'UpdateItem') return [['update', table(input.TableName)]];
    if (DELETES.has(command)) {
      if (command === 'BatchWriteItem')
        return Object.keys((input.RequestItems as object) ?? {}).map((t) => ['delete', table(t)]);
      return [['delete', table(input.TableName)]];
    }
    if (command === 'TransactWriteItems') {
      return ((input.TransactItems as TransactItem[]) ?? []).map((i) => {
        if (i.ConditionCheck) return ['read', table(i.ConditionCheck.TableName)];
        if (i.Delete) return ['delete', table(i.Delete.TableName)];
        if (i.Update) return ['update', table(i.Update.TableName)];
        return ['write', table(i.Put?.TableName)];
      });
    }
    // Unmapped: granted to no function (a read grant allows no DescribeTable since security48-read-scan).
    if (service === 'dynamodb')
      return [['call', `${command}:${input.TableName === undefined ? '*' : table(input.TableName)}`]];
    if (service === 'sqs') {
      const queue =
        command === 'GetQueueUrl'
          ? this.#queueNamed(String(input.QueueName))
          : input.QueueUrl === undefined
            ? '*'
            : this.#queueAt(String(input.QueueUrl));
      // Unmapped (PurgeQueue, SetQueueAttributes, ListQueues, ...): granted to none (more48b-grants-unmapped-queues).
      const kind = SQS_KINDS[command];
      return kind ? [[kind, queue]] : [['call', `${command}:${queue}`]];
    }
    if (service === 'secretsmanager') {
      if (command !== 'GetSecretValue') return [['call', `${command}:secretsmanager`]];
      const id = String(input.SecretId);
      return [['secret', id === this.#venueSecret ? 'venueKey' : `unknown-secret:${id}`]];
    }
    if (command === 'PutEvents') {
      return ((input.Entries as { EventBusName?: string }[]) ?? []).map((e) => [
        'put',
        this.#busId(e.EventBusName),
      ]);
    }
    const bus = (input.EventBusName ?? input.Name) as string | undefined;
    return [['call', `${command}:${bus === undefined ? '*' : this.#busId(bus)}`]];
  }

  #tableId(name: string): TableId | string {
    const tables = this.#names!.tables;
    return (Object.keys(tables) as TableId[]).find((id) => tables[id] === name) ?? `unknown-table:${name}`;
  }

  /** An entry without a bus name goes to the account's default bus, which no function is granted. */
  #busId(name: string | undefined): BusId | string {
    return name !== undefined && name === this.#names!.busName
      ? TICK_BUS.name
      : `unknown-bus:${name ?? 'default'}`;
  }

  /** The queue at `url`: `<id>`, or `<id>-dlq` its dead-letter queue. */
  #queueAt(url: string): string {
    const queues = this.#names!.queues;
    for (const id of Object.keys(queues) as QueueId[]) {
      if (queues[id].url === url) return id;
      if (queues[id].dlqUrl === url) return `${id}-dlq`;
    }
    return `unknown-queue:${url}`;
  }

  /** The queue named `name` (GetQueueUrl's QueueName: a URL's last segment). */
  #queueNamed(name: string): string {
    const queues = this.#names!.queues;
    const at = (url: string | undefined) => url !== undefined && url.split('/').at(-1) === name;
    for (const id of Object.keys(queues) as QueueId[]) {
      if (at(queues[id].url)) return id;
      if (at(queues[id].dlqUrl)) return `${id}-dlq`;
    }
    return `unknown-queue:${name}`;
  }
}

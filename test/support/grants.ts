import type { AwsClients } from '../../shared/adapters/aws/clients.ts';
import type { ResourceNames } from '../../shared/adapters/aws/resources.ts';
import { currentFunction } from '../../shared/runner/index.ts';
import {
  type Access,
  type BusId,
  FUNCTIONS,
  type FunctionId,
  type QueueId,
  type TableId,
  TICK_BUS,
} from '../../shared/topology.ts';

/**
 * What each function's handler touched, as IAM sees it: every DynamoDB, SQS and EventBridge call the handlers' own clients
 * make inside an invocation of the local runner, by function, resource and kind of access. moto does not
 * enforce IAM, so this is how the local runs check that the topology's grants (the CDK stack's policies) cover
 * every call a function makes.
 */

/** `delete`: no grant covers it (the stack grants puts and updates only: infra/constructs/functions.ts). */
type Kind = 'read' | 'write' | 'delete' | 'send' | 'put';
const READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);
const WRITES = new Set(['PutItem', 'UpdateItem']);
const DELETES = new Set(['DeleteItem', 'BatchWriteItem']);

interface TransactItem {
  readonly Put?: { TableName?: string };
  readonly Update?: { TableName?: string };
  readonly Delete?: { TableName?: string };
  readonly ConditionCheck?: { TableName?: string };
}

export class GrantRecorder {
  /** `${function} ${kind} ${resource}`: one line per distinct use. */
  readonly uses = new Set<string>();
  #names: ResourceNames | undefined;

  /** The stage's physical names (set before its handlers run). */
  forStage(names: ResourceNames): void {
    this.#names = names;
  }

  /** For instrumentAwsClients: records every call made inside an invocation. */
  attach(clients: AwsClients): void {
    const record = (command: string, input: Record<string, unknown>): void => {
      const fn = currentFunction();
      if (!fn || !this.#names) return;
      for (const [kind, resource] of this.#resourcesOf(command, input))
        this.uses.add(`${fn} ${kind} ${resource}`);
    };
    const middleware =
      (
        next: (args: { input: Record<string, unknown> }) => Promise<unknown>,
        context: { commandName?: string },
      ) =>
      (args: { input: Record<string, unknown> }) => {
        record((context.commandName ?? '').replace(/Command$/, ''), args.input);
        return next(args);
      };
    clients.dynamo.middlewareStack.add(middleware as never, { step: 'initialize', name: 'grantRecorder' });
    clients.sqs.middlewareStack.add(middleware as never, { step: 'initialize', name: 'grantRecorder' });
    clients.events.middlewareStack.add(middleware as never, { step: 'initialize', name: 'grantRecorder' });
  }

  /** Uses the topology does not grant, as readable lines (empty when every call is covered). */
  ungranted(): string[] {
    const allows = (fn: FunctionId, kind: Kind, resource: string): boolean => {
      const def = FUNCTIONS.find((f) => f.id === fn)!;
      const covers = (access: Access): boolean =>
        kind === 'delete'
          ? false
          : kind === 'send' || kind === 'put'
            ? access === kind
            : access === 'readWrite' || access === kind || (kind === 'read' && access === 'consume');
      return def.grants.some(
        (g) => (g.table === resource || g.queue === resource || g.bus === resource) && covers(g.access),
      );
    };
    return [...this.uses].filter((use) => {
      const [fn, kind, resource] = use.split(' ') as [FunctionId, Kind, string];
      return !allows(fn, kind, resource);
    });
  }

  #resourcesOf(command: string, input: Record<string, unknown>): [Kind, string][] {
    const table = (name: unknown): string => this.#tableId(String(name));
    if (READS.has(command)) {
      if (command === 'BatchGetItem')
        return Object.keys((input.RequestItems as object) ?? {}).map((t) => ['read', table(t)]);
      if (command === 'TransactGetItems')
        return ((input.TransactItems as { Get: { TableName: string } }[]) ?? []).map((i) => [
          'read',
          table(i.Get.TableName),
        ]);
      return [['read', table(input.TableName)]];
    }
    if (WRITES.has(command)) return [['write', table(input.TableName)]];
    if (DELETES.has(command)) {
      if (command === 'BatchWriteItem')
        return Object.keys((input.RequestItems as object) ?? {}).map((t) => ['delete', table(t)]);
      return [['delete', table(input.TableName)]];
    }
    if (command === 'TransactWriteItems') {
      return ((input.TransactItems as TransactItem[]) ?? []).map((i) => {
        if (i.ConditionCheck) return ['read', table(i.ConditionCheck.TableName)];
        if (i.Delete) return ['delete', table(i.Delete.TableName)];
        return ['write', table((i.Put ?? i.Update)?.TableName)];
      });
    }
    if (command === 'SendMessage' || command === 'SendMessageBatch')
      return [['send', this.#queueId(String(input.QueueUrl))]];
    if (command === 'PutEvents') {
      return ((input.Entries as { EventBusName?: string }[]) ?? []).map((e) => [
        'put',
        this.#busId(e.EventBusName),
      ]);
    }
    return [];
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

  #queueId(url: string): QueueId | string {
    const queues = this.#names!.queues;
    return (Object.keys(queues) as QueueId[]).find((id) => queues[id].url === url) ?? `unknown-queue:${url}`;
  }
}

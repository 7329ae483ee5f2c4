import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { AwsClients } from '../shared/adapters/aws/index.ts';
import { itemBytes } from '../shared/adapters/aws/item-size.ts';

type Item = Record<string, AttributeValue>;

import { TABLES } from '../shared/topology.ts';

/** Indexes of the positions table, each of which copies a position write (all sparse on OPEN positions). */
/** A liquidation item written as created and open, or as closed. */
function opensOrClosesIndex(item: Record<string, AttributeValue>): boolean {
  if (item.tickKey === undefined || item.state?.S === undefined) return false;
  const created = item.history?.L?.length === 1;
  return item.openShard !== undefined
    ? created
    : item.state.S.startsWith('SETTLED_') || item.state.S === 'CANCELLED';
}

const POSITION_INDEX_COPIES = TABLES.find((t) => t.id === 'positions')?.indexes.length ?? 0;

/**
 * Units one position write costs in each (sparse) index: the item's size while it carries the index keys (OPEN),
 * 1 (the entry's delete) as it leaves them (LIQUIDATING: only OPEN positions are liquidated), none when it was out
 * of them already (CLOSED after LIQUIDATING; an ADL counterparty closed whole from OPEN is undercounted by its
 * deletes, 1 unit per index). An update, unseen, counts as in them.
 */
function indexUnits(item: Record<string, AttributeValue> | undefined, units: number): number {
  if (!item || item.liqKey !== undefined) return units;
  return item.state?.S === 'LIQUIDATING' ? 1 : 0;
}

/**
 * Counts the handlers' AWS API calls and estimates the DynamoDB request units they consume, with an SDK
 * middleware on the clients the Lambda wiring builds (see instrumentAwsClients in shared/lambda/wiring.ts).
 *
 * Calls come from the project's own ApiCallCounter (one per client bundle; this sums them). Request units follow
 * DynamoDB's published rules, from the items each call writes or returns:
 *   write: ceil(item / 1 KB) WRU per item (2x inside TransactWriteItems); an update or delete counts as 1 KB;
 *          a write to the positions table also writes each of its indexes (the liquidation price and ADL's two
 *          orders, projection ALL), which are sparse (only OPEN positions carry their keys): + ceil(item / 1 KB)
 *          per index for an item in them, 1 per index for one leaving them (OPEN -> LIQUIDATING), none for one
 *          out of them before and after (LIQUIDATING -> CLOSED);
 *   read:  ceil(bytes / 4 KB) RRU, x0.5 when eventually consistent (every index query), 2x in transactions;
 *          a read that finds nothing still costs the minimum unit.
 * Item size = sum of attribute name and value sizes (strings in UTF-8 bytes, numbers about 1 byte per 2 digits
 * plus 1, lists and maps 3 bytes plus 1 per element). Failed conditional writes still consume their units.
 */

export interface Usage {
  /** API calls per `service.Operation`. */
  readonly calls: Record<string, number>;
  /** DynamoDB calls per `Operation table[+table]` (which records a unit of work touches). */
  readonly tables?: Record<string, number>;
  readonly readUnits: number;
  readonly writeUnits: number;
}

export const EMPTY_USAGE: Usage = { calls: {}, readUnits: 0, writeUnits: 0 };

export function totalCalls(u: Usage): number {
  let sum = 0;
  for (const n of Object.values(u.calls)) sum += n;
  return sum;
}

function combine(
  a: Record<string, number> | undefined,
  b: Record<string, number> | undefined,
  sign: number,
): Record<string, number> {
  const out = { ...a };
  for (const [key, n] of Object.entries(b ?? {})) {
    const v = (out[key] ?? 0) + sign * n;
    if (v === 0) delete out[key];
    else out[key] = v;
  }
  return out;
}

export function addUsage(a: Usage, b: Usage): Usage {
  return {
    calls: combine(a.calls, b.calls, 1),
    tables: combine(a.tables, b.tables, 1),
    readUnits: a.readUnits + b.readUnits,
    writeUnits: a.writeUnits + b.writeUnits,
  };
}

export function diffUsage(after: Usage, before: Usage): Usage {
  return {
    calls: combine(after.calls, before.calls, -1),
    tables: combine(after.tables, before.tables, -1),
    readUnits: after.readUnits - before.readUnits,
    writeUnits: after.writeUnits - before.writeUnits,
  };
}

/** `backstop-<stage>-positions` -> `positions`. */
const shortTable = (name: string | undefined): string => name?.split('-').pop() ?? '?';

function tablesOf(input: DynamoInput): string {
  if (input.TransactItems) {
    return input.TransactItems.map((t) => {
      const [kind, body] = Object.entries(t)[0] ?? ['?', {}];
      return `${kind}:${shortTable((body as { TableName?: string }).TableName)}`;
    }).join('+');
  }
  if (input.RequestItems) return Object.keys(input.RequestItems).map(shortTable).join('+');
  return `${shortTable(input.TableName)}${input.IndexName ? `/${input.IndexName}` : ''}`;
}

const KB = 1024;
const writeUnitsOf = (bytes: number): number => Math.max(1, Math.ceil(bytes / KB));
const readUnitsOf = (bytes: number): number => Math.max(1, Math.ceil(bytes / (4 * KB)));

interface DynamoInput {
  readonly TableName?: string;
  readonly IndexName?: string;
  readonly Item?: Item;
  readonly ConsistentRead?: boolean;
  readonly TransactItems?: readonly {
    readonly Put?: { readonly TableName?: string; readonly Item?: Item };
    readonly Update?: { readonly TableName?: string };
    readonly Delete?: { readonly TableName?: string };
    readonly ConditionCheck?: { readonly TableName?: string };
    readonly Get?: { readonly TableName?: string };
  }[];
  readonly RequestItems?: Record<string, { readonly ConsistentRead?: boolean }>;
}

interface DynamoOutput {
  readonly Item?: Item;
  readonly Items?: readonly Item[];
  readonly Responses?: Record<string, readonly Item[]> | readonly { readonly Item?: Item }[];
}

export class CapacityMeter {
  readonly #bundles: AwsClients[] = [];
  readonly #tables = new Map<string, number>();
  #readUnits = 0;
  #writeUnits = 0;

  constructor(private readonly positionsTableSuffix = '-positions') {}

  /** Counts this client bundle's calls from now on (its ApiCallCounter) and meters its DynamoDB units. */
  attach(clients: AwsClients): void {
    this.#bundles.push(clients);
    clients.dynamo.middlewareStack.add(
      ((
        next: (args: { input: DynamoInput }) => Promise<{ output: DynamoOutput }>,
        context: { commandName?: string },
      ) =>
        async (args: { input: DynamoInput }) => {
          const operation = (context.commandName ?? '').replace(/Command$/, '');
          try {
            const result = await next(args);
            this.#meter(operation, args.input, result.output);
            return result;
          } catch (error) {
            // A refused condition consumed its write units; reads that fail consume nothing we can see.
            this.#meter(operation, args.input, {});
            throw error;
          }
        }) as never,
      { step: 'initialize', name: 'benchCapacityMeter' },
    );
  }

  snapshot(): Usage {
    const calls: Record<string, number> = {};
    for (const b of this.#bundles) {
      for (const [op, n] of Object.entries(b.counter.snapshot())) calls[op] = (calls[op] ?? 0) + n;
    }
    return {
      calls,
      tables: Object.fromEntries(this.#tables),
      readUnits: this.#readUnits,
      writeUnits: this.#writeUnits,
    };
  }

  #isPositions(table: string | undefined): boolean {
    return table?.endsWith(this.positionsTableSuffix) ?? false;
  }

  /**
   * Units of one write of `bytes` (1 KB when unknown) to `table`, with its index copies for positions: `item`, when
   * written whole, says whether it is in the (sparse) indexes.
   */
  #write(
    table: string | undefined,
    bytes: number | undefined,
    factor: number,
    item?: Record<string, AttributeValue>,
  ): void {
    const units = writeUnitsOf(bytes ?? KB);
    this.#writeUnits += factor * units;
    if (this.#isPositions(table)) this.#writeUnits += POSITION_INDEX_COPIES * indexUnits(item, units);
    // A fund journal entry is copied into the ledger's sparse index by sequence (ledger-reconcile reads it).
    else if (item?.journalSequence !== undefined) this.#writeUnits += units;
    // A liquidation enters the open index (keys only, a unit) when it is created and leaves it when written closed
    // (once in these flows); its keys never move in between, so no other write touches the index.
    else if (item && opensOrClosesIndex(item)) this.#writeUnits += 1;
  }

  #meter(operation: string, input: DynamoInput, output: DynamoOutput): void {
    const target = `${operation} ${tablesOf(input)}`;
    this.#tables.set(target, (this.#tables.get(target) ?? 0) + 1);
    switch (operation) {
      case 'PutItem':
        this.#write(input.TableName, itemBytes(input.Item), 1, input.Item);
        return;
      case 'UpdateItem':
      case 'DeleteItem':
        this.#write(input.TableName, undefined, 1);
        return;
      case 'TransactWriteItems':
        for (const t of input.TransactItems ?? []) {
          if (t.Put) this.#write(t.Put.TableName, itemBytes(t.Put.Item), 2, t.Put.Item);
          else if (t.Update) this.#write(t.Update.TableName, undefined, 2);
          else if (t.Delete) this.#write(t.Delete.TableName, undefined, 2);
          else if (t.ConditionCheck) this.#writeUnits += 2;
        }
        return;
      case 'GetItem':
        this.#readUnits += readUnitsOf(itemBytes(output.Item)) * (input.ConsistentRead ? 1 : 0.5);
        return;
      case 'Query':
      case 'Scan': {
        const bytes = (output.Items ?? []).reduce((a, i) => a + itemBytes(i), 0);
        const consistent = input.ConsistentRead === true && input.IndexName === undefined;
        this.#readUnits += readUnitsOf(bytes) * (consistent ? 1 : 0.5);
        return;
      }
      case 'BatchGetItem': {
        const responses = (output.Responses ?? {}) as Record<string, readonly Item[]>;
        for (const [table, items] of Object.entries(responses)) {
          const factor = input.RequestItems?.[table]?.ConsistentRead ? 1 : 0.5;
          for (const item of items) this.#readUnits += readUnitsOf(itemBytes(item)) * factor;
        }
        return;
      }
      case 'TransactGetItems': {
        const responses = (output.Responses ?? []) as readonly { readonly Item?: Item }[];
        for (const r of responses) this.#readUnits += 2 * readUnitsOf(itemBytes(r.Item));
        return;
      }
      default:
        return;
    }
  }
}

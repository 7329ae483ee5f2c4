import type { Put } from '@aws-sdk/client-dynamodb';
import { cancellationCodes, type Item, isConditionalCheckFailed, N } from './codec.ts';

/**
 * The writer-schema fence. Positions, liquidations, auctions, providers and the ledger's items are written whole
 * (PutItem, alone or in a transaction) under a condition on what was read: during a rolling deploy an older
 * function that read an item a newer one wrote would put it back without the attributes it does not know, and
 * its version condition would pass. So every such item carries the schema of the code that wrote it
 * (SCHEMA_ATTR), and every whole-item Put of an item that may exist is conditional on a stored schema no newer
 * than its own: a newer item is left to the newer code (NewerWriterError), never written over.
 *
 * RECORD_SCHEMA: raise it (by one) in any release that adds an attribute a whole-item Put must keep, to any of
 * these items (an UpdateItem's SET of a named attribute keeps the others, and needs nothing; but one that sets an
 * attribute a Put must keep, added in that release, must also set SCHEMA_ATTR to its schema under the same fence,
 * or an older Put would drop it). Schema 1 is the first version with the fence: the versions before it write no
 * SCHEMA_ATTR and check none. Markets and the tick index are written by UpdateItem alone and carry none. Raising it
 * has a price: for the deploy's minutes the previous version refuses every item the new one wrote, and a rollback
 * refuses them for good; an attribute whose loss costs less can be left harmless to drop, with the reason
 * (test/unit/writer-schema-attributes.test.ts lists each auction and position attribute's decision).
 */
export const RECORD_SCHEMA = 1;

/** The attribute naming the schema of an item's writer. */
export const SCHEMA_ATTR = 'writerSchema';

const SCHEMA_VALUE = ':writerSchema';
const FENCE = `(attribute_not_exists(${SCHEMA_ATTR}) OR ${SCHEMA_ATTR} <= ${SCHEMA_VALUE})`;

/** The stamp every whole item carries (spread into its attribute map). */
export const schemaStamp = (): Item => ({ [SCHEMA_ATTR]: N(RECORD_SCHEMA) });

/**
 * The stored item was written by a newer Backstop: this code leaves it alone. Retryable: the message comes back
 * (SQS, EventBridge) until the newer code, live once the deploy ends, takes it. Never a version conflict (a
 * re-read would find the same item and loop).
 */
export class NewerWriterError extends Error {
  override readonly name = 'NewerWriterError';
  constructor(
    readonly table: string,
    readonly key: string,
    readonly storedSchema: number,
  ) {
    super(
      `adapter/newer-writer: ${table} ${key} was written by a newer Backstop (schema ${storedSchema} > ${RECORD_SCHEMA}); this older code leaves it for the newer to write`,
    );
  }
}

/** A Put with `condition` (none: only the fence), and no newer writer: the item as it stood comes back on a failure. */
export function fencedPut(put: Put): Put {
  return {
    ...put,
    ConditionExpression: put.ConditionExpression ? `(${put.ConditionExpression}) AND ${FENCE}` : FENCE,
    ExpressionAttributeValues: { ...put.ExpressionAttributeValues, [SCHEMA_VALUE]: N(RECORD_SCHEMA) },
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  };
}

const isFenced = (put: Put | undefined): put is Put =>
  put?.ExpressionAttributeValues?.[SCHEMA_VALUE] !== undefined;

/** The stored item's schema when newer than this code's; undefined otherwise (no item, no stamp, not newer). */
function newerSchema(stored: Item | undefined): number | undefined {
  const value = stored?.[SCHEMA_ATTR]?.N;
  if (value === undefined) return undefined;
  const schema = Number(value);
  return schema > RECORD_SCHEMA ? schema : undefined;
}

const keyOf = (item: Item): string =>
  item.id?.S !== undefined ? `id=${item.id.S}` : `pk=${item.pk?.S ?? '?'} sk=${item.sk?.S ?? '?'}`;

/**
 * Runs a write holding fencedPut items (`puts`: by their index in the transaction; a single PutItem is index 0)
 * and throws NewerWriterError when one failed on an item a newer writer stored. Any other error passes unchanged.
 */
export async function refusingNewerWriter<T>(
  write: () => Promise<T>,
  puts: readonly (Put | undefined)[],
): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const stored: (Item | undefined)[] = isConditionalCheckFailed(error)
      ? [(error as { Item?: Item }).Item]
      : cancellationCodes(error)
        ? ((error as { CancellationReasons?: { Item?: Item }[] }).CancellationReasons ?? []).map(
            (r) => r.Item,
          )
        : [];
    stored.forEach((item, index) => {
      const put = puts[index];
      const schema = newerSchema(item);
      if (isFenced(put) && schema !== undefined && put.TableName && put.Item)
        throw new NewerWriterError(put.TableName, keyOf(put.Item), schema);
    });
    throw error;
  }
}

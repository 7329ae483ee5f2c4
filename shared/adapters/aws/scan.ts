import { type DynamoDBClient, ScanCommand, type ScanCommandInput } from '@aws-sdk/client-dynamodb';
import type { Item } from './codec.ts';

/**
 * A whole table's Scan, page by page (each at most 1 MB, DynamoDB's limit): the pages' items, or with
 * `Select: 'COUNT'` an empty list and the page's count. The caller reads no page it has not asked for.
 */
export async function* scanPages(
  dynamo: DynamoDBClient,
  input: Omit<ScanCommandInput, 'ExclusiveStartKey'>,
): AsyncGenerator<{ readonly items: readonly Item[]; readonly count: number }> {
  let start: Item | undefined;
  do {
    const out = await dynamo.send(
      new ScanCommand({ ...input, ...(start === undefined ? {} : { ExclusiveStartKey: start }) }),
    );
    yield { items: out.Items ?? [], count: out.Count ?? 0 };
    start = out.LastEvaluatedKey;
  } while (start !== undefined);
}

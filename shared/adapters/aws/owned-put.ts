import { randomUUID } from 'node:crypto';
import { type DynamoDBClient, type Put, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { type Item, isConditionalCheckFailed } from './codec.ts';
import { WRITER_ATTR, withWriter } from './record-items.ts';
import { refusingNewerWriter } from './writer-schema.ts';

/**
 * A conditional PutItem sent alone (not in a transaction), knowing its own write. PutItem has no idempotency
 * token: the SDK retries a put whose answer was lost (a timeout, a reset connection) by sending the same request
 * again, whose condition then fails on the put it made itself, and the caller would take its own write for
 * another writer's (ConditionFailedError). So the item carries a token of the call (WRITER_ATTR, a UUID made
 * before `send`, so every retry carries it) and a failed condition returns the item as it stood (ALL_OLD): one
 * holding this call's token is this call's put, and succeeds. Another call's put, even of the same record, holds
 * its own token and fails as before (auction-write-lost-answer, put-lost-answer).
 *
 * A fenced put (fencedPut) is also refused with NewerWriterError over a newer writer's item, but only after the
 * token: an item this call wrote is never a newer writer's. Any other error passes unchanged (with the item as it
 * stood, so a caller may read it: liquidations' refusingMovedKey). No read on any path.
 */
export async function putOwned(dynamo: DynamoDBClient, put: Put): Promise<void> {
  if (put.Item === undefined) throw new Error('putOwned: a put without an item');
  const writer = randomUUID();
  const owned: Put = {
    ...put,
    Item: withWriter(put.Item, writer),
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  };
  await refusingNewerWriter(async () => {
    try {
      await dynamo.send(new PutItemCommand(owned));
    } catch (error) {
      if (isConditionalCheckFailed(error) && (error as { Item?: Item }).Item?.[WRITER_ATTR]?.S === writer)
        return;
      throw error;
    }
  }, [owned]);
}

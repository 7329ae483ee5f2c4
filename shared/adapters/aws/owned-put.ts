import { randomUUID } from 'node:crypto';
import {
  type DynamoDBClient,
  type Put,
  PutItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { failedCondition, S } from './codec.ts';
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
      if (wroteIt(error, writer)) return;
      throw error;
    }
  }, [owned]);
}

/** A failed condition on an item holding `writer`: the call's own write, applied, whose answer was lost. */
const wroteIt = (error: unknown, writer: string): boolean =>
  failedCondition(error)?.item?.[WRITER_ATTR]?.S === writer;

const OWNED_NAME = '#ownedWriter';
const OWNED_VALUE = ':ownedWriter';

/**
 * A conditional UpdateItem (a SET) sent alone, knowing its own write as putOwned does: it also sets WRITER_ATTR to a
 * token of the call, and a failed condition on an item holding that token is this call's update, applied, whose
 * answer was lost: it succeeds. Another call's update, or a later write that replaced the token, fails as before
 * (with the item as it stood, ALL_OLD). The token is the one of the item's last write alone, as a put's
 * (retry-audit).
 */
export async function updateItemOwned(dynamo: DynamoDBClient, update: UpdateItemCommandInput): Promise<void> {
  const expression = update.UpdateExpression;
  if (!expression?.startsWith('SET ')) throw new Error('updateItemOwned: an update that SETs');
  const writer = randomUUID();
  try {
    await dynamo.send(
      new UpdateItemCommand({
        ...update,
        UpdateExpression: `SET ${OWNED_NAME} = ${OWNED_VALUE}, ${expression.slice('SET '.length)}`,
        ExpressionAttributeNames: { ...update.ExpressionAttributeNames, [OWNED_NAME]: WRITER_ATTR },
        ExpressionAttributeValues: { ...update.ExpressionAttributeValues, [OWNED_VALUE]: S(writer) },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  } catch (error) {
    if (wroteIt(error, writer)) return;
    throw error;
  }
}

import { describe, expect, it } from 'vitest';
import type { AwsClients } from '../../shared/adapters/aws/index.ts';
import { openShardNumberOf } from '../../shared/adapters/shards.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';
import { motoStages } from '../support/moto.ts';
import { liquidation, position } from '../support/records.ts';

/**
 * DynamoDB refuses a Query whose ExclusiveStartKey lies outside its key condition's range (ValidationException "The
 * provided starting key does not match the range key predicate"); moto does not check. openStartedBefore resumes
 * from any page's `next` (the port), including one a listing with a later bound gave: a run whose cursor was stored
 * by a later-started one (watch44b-cursor), a caller with an earlier time (review44b-open-listing-range).
 */

type Args = { input: unknown };
type Av = { readonly N?: string };

/** As DynamoDB: a Query's start key must satisfy its `startedAtMs < :before` (the open listing's condition). */
function refuseStartKeysOutOfRange(clients: AwsClients): void {
  const middleware =
    (next: (args: Args) => Promise<unknown>, context: { commandName?: string }) => async (args: Args) => {
      const input = args.input as {
        ExclusiveStartKey?: Record<string, Av>;
        ExpressionAttributeValues?: Record<string, Av>;
      };
      const start = input.ExclusiveStartKey?.startedAtMs?.N;
      const before = input.ExpressionAttributeValues?.[':before']?.N;
      if (context.commandName === 'QueryCommand' && start !== undefined && before !== undefined) {
        if (Number(start) >= Number(before)) {
          const error = new Error('The provided starting key does not match the range key predicate');
          error.name = 'ValidationException';
          throw error;
        }
      }
      return next(args);
    };
  clients.dynamo.middlewareStack.add(middleware as never, {
    step: 'initialize',
    name: 'refuseStartKeysOutOfRange',
  });
}

const moto = motoStages('orange');

describe('openStartedBefore resumed past its bound (moto, with DynamoDB start-key validation)', () => {
  it('review44b-open-listing-range: a position beyond the bound lists the later shards, never a start key DynamoDB refuses', async () => {
    const { clients, adapters } = await moto.stage();
    refuseStartKeysOutOfRange(clients);
    const begun: LiquidationRecord[] = [];
    for (let i = 0; i < 40; i++) {
      const p = position({ id: `r${String(i).padStart(2, '0')}` });
      const l = liquidation({
        id: `${p.id}:1`,
        positionId: p.id,
        history: [{ atMs: i % 2 === 0 ? 1_000 : 3_000, state: 'QUEUED' }],
      });
      await adapters.positions.create(p);
      await adapters.liquidations.begin(p, l);
      begun.push(l);
    }
    // A page's `next` of a listing bounded at 4,000: after a liquidation started at 3,000 in shard 0.
    const from = { shard: 0, after: { startedAtMs: 3_000, id: '~' } };
    const listed: string[] = [];
    for await (const page of adapters.liquidations.openStartedBefore(2_000, from))
      listed.push(...page.records.map((l) => l.id));
    const expected = begun
      .filter((l) => l.history[0]!.atMs < 2_000 && openShardNumberOf(l.id) > 0)
      .map((l) => l.id);
    expect(expected.length).toBeGreaterThan(0);
    expect(listed.sort()).toEqual(expected.sort());
    clients.destroy();
  });
});

import type { BatchGetItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { batchGetConsistent, unprocessedDelayMs } from '../../shared/adapters/aws/reader.ts';

/**
 * ops47-batch-get-jitter: batchGetConsistent asked again for unprocessed keys after 50, 100, 200 ms ... exactly, so readers
 * throttled together (a crash's consumers, each reading its record and market) asked again together, round after round.
 * The waits now have equal jitter, drawn from an injected source.
 */

/** A table that leaves `unprocessed` of the keys asked for unprocessed, `rounds` times, then answers them all. */
function throttledTable(rounds: number, unprocessed = 1) {
  const calls: number[] = [];
  const dynamo = {
    send: async (command: BatchGetItemCommand) => {
      const request = command.input.RequestItems!.t!;
      const keys = request.Keys!;
      calls.push(keys.length);
      const left = calls.length <= rounds ? keys.slice(0, unprocessed) : [];
      const answered = keys.slice(left.length);
      return {
        Responses: { t: answered.map((k) => ({ ...k, found: { BOOL: true } })) },
        UnprocessedKeys: left.length > 0 ? { t: { ...request, Keys: left } } : {},
      };
    },
  } as unknown as DynamoDBClient;
  return { dynamo, calls };
}

const keys = (n: number) => Array.from({ length: n }, (_, i) => ({ id: { S: `k${i}` } }));

describe('batchGetConsistent: unprocessed keys', () => {
  it('waits an exponential backoff with equal jitter, drawn from the injected source, before each round', async () => {
    const { dynamo, calls } = throttledTable(3);
    const slept: number[] = [];
    const draws = [0, 0.5, 1 - Number.EPSILON];
    const found = await batchGetConsistent(
      dynamo,
      { t: keys(3) },
      { random: () => draws.shift()!, sleep: async (ms) => void slept.push(ms) },
    );
    expect(found.t!.map((item) => item.id!.S).sort()).toEqual(['k0', 'k1', 'k2']);
    expect(calls).toEqual([3, 1, 1, 1]);
    // Rounds 1 to 3: 50, 100, 200 ms in full, half of each fixed and half drawn.
    expect(slept).toEqual([25, 75, 200]);
  });

  it('spreads readers throttled together, and keeps at least half of each wait', async () => {
    const waits = (random: () => number) =>
      Array.from({ length: 8 }, (_, i) => unprocessedDelayMs(i + 1, random));
    const low = waits(() => 0);
    const high = waits(() => 1);
    expect(low).toEqual([25, 50, 100, 200, 400, 800, 1600, 3200]);
    expect(high).toEqual([50, 100, 200, 400, 800, 1600, 3200, 6400]);
    // Two readers drawing differently ask again at different times.
    expect(waits(() => 0.25)).not.toEqual(waits(() => 0.75));
  });

  it('gives up after its rounds, having waited each', async () => {
    const { dynamo, calls } = throttledTable(Number.POSITIVE_INFINITY);
    const slept: number[] = [];
    await expect(
      batchGetConsistent(
        dynamo,
        { t: keys(2) },
        { random: () => 0, sleep: async (ms) => void slept.push(ms) },
      ),
    ).rejects.toThrow('dynamodb/batch-get-unprocessed');
    expect(calls).toHaveLength(9);
    expect(slept).toEqual([25, 50, 100, 200, 400, 800, 1600, 3200]);
  });
});

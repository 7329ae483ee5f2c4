import type { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { providerItem, scanProviders } from '../../shared/adapters/aws/providers.ts';
import { base, usd } from '../../shared/domain/units.ts';
import type { ProviderRecord } from '../../shared/ports/index.ts';

/**
 * scanProviders (every auction step's list of providers, and `backstop providers list`): every page read, and a
 * record that does not read named (review48-providers-list-unreadable).
 */

const provider = (id: string): ProviderRecord => ({
  id,
  capital: usd('1000'),
  maxDiscountPpm: 20_000n,
  maxLot: base('1'),
  symbols: ['ETH-USD'],
  version: 0,
});

/** A table answering a page at a time, each but the last with a LastEvaluatedKey. */
function pagedTable(pages: readonly (readonly Record<string, unknown>[])[]) {
  const starts: unknown[] = [];
  const dynamo = {
    send: async (command: ScanCommand) => {
      const at = starts.length;
      starts.push(command.input.ExclusiveStartKey);
      expect(command.input.ConsistentRead).toBe(true);
      return {
        Items: pages[at],
        ...(at + 1 < pages.length ? { LastEvaluatedKey: { id: { S: `page-${at}` } } } : {}),
      };
    },
  } as unknown as DynamoDBClient;
  return { dynamo, starts };
}

const corrupt = { ...providerItem(provider('lp-bad')), capital: { S: 'lots' } };

describe('scanProviders', () => {
  it('reads every page, from where the last ended, and orders the providers by id', async () => {
    const { dynamo, starts } = pagedTable([
      [providerItem(provider('lp-3'))],
      [],
      [providerItem(provider('lp-1')), providerItem(provider('lp-2'))],
    ]);
    expect((await scanProviders(dynamo, 't')).map((p) => p.id)).toEqual(['lp-1', 'lp-2', 'lp-3']);
    expect(starts).toEqual([undefined, { id: { S: 'page-0' } }, { id: { S: 'page-1' } }]);
  });

  it('names a record that does not read: thrown for an auction step, reported and left out for a list', async () => {
    const pages = [[providerItem(provider('lp-1')), corrupt], [providerItem(provider('lp-2'))]];
    await expect(scanProviders(pagedTable(pages).dynamo, 't')).rejects.toThrow(
      'providers lp-bad: adapter/not-an-integer: capital',
    );
    const unreadable: [string, string][] = [];
    const read = await scanProviders(pagedTable(pages).dynamo, 't', (id, reason) =>
      unreadable.push([id, reason]),
    );
    expect(read.map((p) => p.id)).toEqual(['lp-1', 'lp-2']);
    expect(unreadable).toEqual([['lp-bad', 'adapter/not-an-integer: capital']]);
  });
});

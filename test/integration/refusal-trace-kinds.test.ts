import { type AttributeValue, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { refusalAttr } from '../../shared/adapters/aws/markets.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { REFUSAL_TRACE_KEPT_MS } from '../../shared/ports/index.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { handleTick, type MarginCheckDeps } from '../../shared/services/margin-check.ts';
import { motoStages } from '../support/moto.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';
import { recordUpdates } from '../support/update-expressions.ts';

/**
 * Refusal traces of kinds this version does not know (a later version's new reasons), met during a mixed deploy or
 * after a rollback:
 * - feed49-resume-unknown-kinds: `feed resume` (and margin-check's own rebase) removed only the kinds this version
 *   knows; the others, of the numbering left, stayed until the next accepted tick.
 * - feed49-unknown-kind-kept: an accepted tick removed them at once, so during a deploy of a version adding a kind,
 *   this version's functions removed that version's new traces at their next accepted tick. One that says when it
 *   was noted, as this version's traces do, is now kept as long as a known kind's.
 */

const moto = motoStages('kinds');

/** A trace as this version writes one (noteRefusal), for a kind it may not know. */
const traceItem = (atMs: number, resumed?: number): AttributeValue => ({
  M: {
    seq: { N: '7' },
    stamp: { N: String(atMs) },
    at: { N: String(atMs) },
    count: { N: '1' },
    since: { N: String(atMs) },
    n: { N: '1' },
    ...(resumed === undefined ? {} : { resumed: { N: String(resumed) } }),
  },
});

async function setUp() {
  const { clients, names, adapters } = await moto.stage();
  const telemetry = new RecordingTelemetry();
  const deps: MarginCheckDeps = {
    ...adapters,
    config: DEFAULT_RISK_CONFIG,
    telemetry,
    maxPositionsPerInvocation: 500,
  };
  const base = Date.now();
  const tick = (sequence: number, stampMs: number, nowMs = stampMs) =>
    handleTick(
      { symbol: 'ETH-USD', markPrice: parsePrice('200'), timestampMs: stampMs, sequence, source: 'test' },
      deps,
      nowMs,
    );
  await tick(1, base);
  expect(await tick(2, base + 1)).toMatchObject({ status: 'accepted' });
  const store = async (kind: string, value: AttributeValue) =>
    clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.markets,
        Key: { symbol: { S: 'ETH-USD' } },
        UpdateExpression: 'SET #t = :v',
        ExpressionAttributeNames: { '#t': refusalAttr(kind) },
        ExpressionAttributeValues: { ':v': value },
      }),
    );
  const stored = async (kind: string) =>
    (
      await clients.dynamo.send(
        new GetItemCommand({ TableName: names.tables.markets, Key: { symbol: { S: 'ETH-USD' } } }),
      )
    ).Item?.[refusalAttr(kind)];
  const admin = { ...adapters, config: DEFAULT_RISK_CONFIG, telemetry, nowMs: () => Date.now() };
  return { clients, adapters, tick, base, store, stored, admin };
}

describe('feed resume and refusal traces of kinds this version does not know (moto, real adapters)', () => {
  it('removes them in the rebase its own write, also one noted again since the read', async () => {
    const { clients, tick, base, store, stored, admin } = await setUp();
    await store('tick/later-reason', traceItem(base));
    await store('tick/later-shape', { S: 'a later shape' });
    // A later version still running notes the kind again between the resume's read and its write: of the numbering
    // left all the same (judged before the rebase), so removed with it, and the resume is not refused for it.
    let armed = true;
    const updates = recordUpdates(clients, async (expression) => {
      if (armed && expression.startsWith('SET lastSequence')) {
        armed = false;
        await store('tick/later-reason', traceItem(base + 5));
      }
    });
    expect(
      await handleAdmin({ action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 1 }, admin),
    ).toMatchObject({ ok: true, sequence: { before: 2, after: 0 } });
    // Before: both stayed until the next accepted tick.
    expect(await stored('tick/later-reason')).toBeUndefined();
    expect(await stored('tick/later-shape')).toBeUndefined();
    // The rebase, and the note made in between: no write of its own for the traces.
    expect(updates.filter((u) => !u.startsWith('SET #t = :v'))).toHaveLength(1);

    // A note of the new numbering, after the rebase, stays through the next accepted tick.
    const market = await admin.markets.get('ETH-USD');
    const resumed = market!.resumedAfterMs!;
    await store('tick/later-reason', traceItem(resumed + 10, resumed));
    expect(await tick(1, resumed + 20)).toMatchObject({ status: 'accepted' });
    expect(await stored('tick/later-reason')).toEqual(traceItem(resumed + 10, resumed));
    clients.destroy();
  });

  it('leaves a kind noted between the read and the rebase unnamed, for the next accepted tick to remove', async () => {
    const { clients, tick, base, store, stored, admin } = await setUp();
    await store('tick/later-reason', traceItem(base));
    let armed = true;
    recordUpdates(clients, async (expression) => {
      if (armed && expression.startsWith('SET lastSequence')) {
        armed = false;
        await store('tick/third-kind', traceItem(base + 5));
      }
    });
    expect(
      await handleAdmin({ action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 1 }, admin),
    ).toMatchObject({ ok: true });
    expect(await stored('tick/later-reason')).toBeUndefined();
    // Not read, so not named: stale by its `resumed` (none, where the market's now has one).
    expect(await stored('tick/third-kind')).toEqual(traceItem(base + 5));
    const resumed = (await admin.markets.get('ETH-USD'))!.resumedAfterMs!;
    expect(await tick(1, resumed + 20)).toMatchObject({ status: 'accepted' });
    expect(await stored('tick/third-kind')).toBeUndefined();
    clients.destroy();
  });
});

describe("an accepted tick and a later version's refusal kind (moto, real adapters)", () => {
  it('keeps one that says when it was noted as long as a known kind, removes one that does not at once', async () => {
    const { clients, tick, base, store, stored } = await setUp();
    await store('tick/later-reason', traceItem(base));
    // Noted under a rebase the market has not had (another numbering's): stale.
    await store('tick/later-stale', traceItem(base, base - 1000));
    // Its age in a field this version does not read.
    const ageless: AttributeValue = { M: { seq: { N: '7' }, when: { N: String(base) } } };
    await store('tick/later-ageless', ageless);
    expect(await tick(3, base + 10)).toMatchObject({ status: 'accepted' });
    // Before: removed with the others, at once.
    expect(await stored('tick/later-reason')).toEqual(traceItem(base));
    expect(await stored('tick/later-stale')).toBeUndefined();
    expect(await stored('tick/later-ageless')).toBeUndefined();
    // Within its hour, kept; past it, removed as a known kind's.
    const hour = base + REFUSAL_TRACE_KEPT_MS;
    expect(await tick(4, hour)).toMatchObject({ status: 'accepted' });
    expect(await stored('tick/later-reason')).toEqual(traceItem(base));
    expect(await tick(5, hour + 1)).toMatchObject({ status: 'accepted' });
    expect(await stored('tick/later-reason')).toBeUndefined();
    clients.destroy();
  });
});

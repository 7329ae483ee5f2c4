import { type AttributeValue, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { refusalAttr } from '../../shared/adapters/aws/markets.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { handledOnRecord } from '../../shared/local/ticks.ts';
import { METRICS } from '../../shared/metrics.ts';
import type { RefusalNote } from '../../shared/ports/index.ts';
import { handleTick, type MarginCheckDeps } from '../../shared/services/margin-check.ts';
import { loseNextAnswer } from '../support/lost-answer.ts';
import { motoStages } from '../support/moto.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';
import { recordUpdates } from '../support/update-expressions.ts';

/**
 * feed49-jump-one-write: a print held as a sequence jump, or refused while it continues the held one
 * (tick/sequence-confirming), wrote the market's item twice: the hold (or the continuation), then the refusal's note.
 * The note now goes in the same conditional write, with the tick's own stamp (the held print's is clamped to our clock,
 * and a sender knows its tick by its sequence and stamp), under the notes' own condition and rate cap.
 */

const moto = motoStages('jumpnote');

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
  const tick = (sequence: number, stampMs: number, nowMs: number) =>
    handleTick(
      { symbol: 'ETH-USD', markPrice: parsePrice('200'), timestampMs: stampMs, sequence, source: 'test' },
      deps,
      nowMs,
    );
  // A market's first print waits for a second that agrees.
  await tick(1, base, base);
  expect(await tick(2, base + 1, base + 1)).toMatchObject({ status: 'accepted' });
  const store = async (reason: Parameters<typeof refusalAttr>[0], value: AttributeValue) =>
    clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.markets,
        Key: { symbol: { S: 'ETH-USD' } },
        UpdateExpression: 'SET #t = :v',
        ExpressionAttributeNames: { '#t': refusalAttr(reason) },
        ExpressionAttributeValues: { ':v': value },
      }),
    );
  return { clients, adapters, telemetry, tick, base, store, names };
}

/** A stored trace of the kind numbered `sequence` (the shape noteRefusal writes). */
const traceItem = (sequence: number, atMs: number): AttributeValue => ({
  M: {
    seq: { N: String(sequence) },
    stamp: { N: String(atMs) },
    at: { N: String(atMs) },
    count: { N: '1' },
    since: { N: String(atMs) },
    n: { N: '1' },
  },
});

const FAR = 2 + 1_000_001;

/** A continuation with its note, in one write (with the token that knows a lost answer's retry as its own). */
const FOLDED = 'SET heldJump.continuedAtMs = :at, heldJump.continuedWriter = :writer, #trace = :trace';

describe('a refused sequence jump (moto, real adapters)', () => {
  it('costs one write, held and noted together, the note with the tick its own stamp', async () => {
    const { clients, adapters, tick, base } = await setUp();
    const updates = recordUpdates(clients);
    // Stamped 3 s ahead of margin-check's clock, within maxClockSkewSeconds (5): the held print is clamped to the clock.
    const nowMs = base + 2_000;
    const stamp = nowMs + 3_000;
    expect(await tick(FAR, stamp, nowMs)).toMatchObject({ reason: 'tick/sequence-jump' });
    // Before: two, SET heldJump = :held then SET #trace = :trace.
    expect(updates).toEqual(['SET heldJump = :held, #trace = :trace']);
    const market = await adapters.markets.get('ETH-USD');
    expect(market?.heldJump?.tick).toMatchObject({ sequence: FAR, timestampMs: nowMs });
    expect(market?.refusals?.['tick/sequence-jump']).toMatchObject({
      sequence: FAR,
      timestampMs: stamp,
      atMs: nowMs,
      count: 1,
    });
    // What a replay that sent it looks for: its sequence with its own stamp.
    expect(handledOnRecord(market).refused).toEqual([
      { sequence: FAR, timestampMs: stamp, reason: 'tick/sequence-jump' },
    ]);

    // A print continuing it too soon: the continuation and the note, one write too.
    updates.length = 0;
    expect(await tick(FAR + 1, nowMs + 1_000, nowMs + 1_000)).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    expect(updates).toEqual([FOLDED]);
    const after = await adapters.markets.get('ETH-USD');
    expect(after?.heldJump).toMatchObject({ tick: { sequence: FAR }, continuedAtMs: nowMs + 1_000 });
    expect(after?.refusals?.['tick/sequence-confirming']).toMatchObject({ sequence: FAR + 1, count: 1 });
    clients.destroy();
  });

  it('keeps the rate cap: past 10 notes a second a kind, the continuation alone', async () => {
    const { clients, adapters, tick, base } = await setUp();
    const start = base + 2_000 - ((base + 2_000) % 1000) + 1000;
    expect(await tick(FAR, start, start)).toMatchObject({ reason: 'tick/sequence-jump' });
    const updates = recordUpdates(clients);
    const second = start + 1000;
    for (let i = 1; i <= 12; i++)
      expect(await tick(FAR + i, second + i, second + i)).toMatchObject({
        reason: 'tick/sequence-confirming',
      });
    expect(updates).toHaveLength(12);
    expect(updates.filter((u) => u.includes('#trace'))).toHaveLength(10);
    expect((await adapters.markets.get('ETH-USD'))?.refusals?.['tick/sequence-confirming']).toMatchObject({
      sequence: FAR + 10,
      count: 10,
      notesInSecond: 10,
    });
    clients.destroy();
  });

  it("writes no hold when the note's condition fails, and the continuation alone, no note after it", async () => {
    const { clients, adapters, tick, base, store, telemetry } = await setUp();
    const nowMs = base + 2_000;
    const read = (await adapters.markets.get('ETH-USD'))!;
    const note: RefusalNote = {
      reason: 'tick/sequence-jump',
      trace: { sequence: FAR, timestampMs: nowMs, atMs: nowMs, count: 1, sinceMs: nowMs, notesInSecond: 1 },
    };
    // Another note of the kind, numbered higher, since the read.
    await store('tick/sequence-jump', traceItem(FAR + 5, nowMs));
    const far = { sequence: FAR, markPrice: parsePrice('200'), timestampMs: nowMs };
    const judged = {
      lastTick: read.lastTick,
      breakerTick: undefined,
      heldTick: undefined,
      heldContinuedAtMs: undefined,
    };
    expect(await adapters.markets.holdSequenceJump('ETH-USD', far, nowMs, judged, note)).toBe(false);
    expect((await adapters.markets.get('ETH-USD'))?.heldJump).toBeUndefined();
    // The hold alone lands.
    expect(await adapters.markets.holdSequenceJump('ETH-USD', far, nowMs, judged)).toBe(true);
    const confirming: RefusalNote = {
      reason: 'tick/sequence-confirming',
      trace: { ...note.trace, sequence: FAR + 1 },
    };
    await store('tick/sequence-confirming', traceItem(FAR + 9, nowMs));
    // The continuation goes alone (feed50-jump-note-failed).
    expect(await adapters.markets.continueSequenceJump('ETH-USD', far, nowMs, confirming)).toBe(
      'note-refused',
    );
    expect((await adapters.markets.get('ETH-USD'))?.heldJump?.continuedAtMs).toBe(nowMs);

    // margin-check meeting such a note between its read and its write still records the continuation, and writes no
    // note whose condition failed (feed50-jump-note-failed: before, a fourth write, failing).
    await store('tick/sequence-confirming', traceItem(FAR + 1, nowMs));
    const updates = recordUpdates(clients, async (expression) => {
      if (expression === FOLDED) await store('tick/sequence-confirming', traceItem(FAR + 20, nowMs));
    });
    expect(await tick(FAR + 2, nowMs + 1_000, nowMs + 1_000)).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    expect(updates).toEqual([FOLDED, 'SET #t = :v', 'SET heldJump.continuedAtMs = :at']);
    const market = await adapters.markets.get('ETH-USD');
    expect(market?.heldJump?.continuedAtMs).toBe(nowMs + 1_000);
    expect(market?.refusals?.['tick/sequence-confirming']?.sequence).toBe(FAR + 20);
    expect(telemetry.total(METRICS.RefusalTraceFailures.name)).toBe(0);
    clients.destroy();
  });

  // feed50-jump-note-failed: a folded continuation refused because another jump was held since wrote the continuation
  // alone (failing too) before the note: the failed write's item says which part failed.
  it('writes the note alone, no continuation, when another jump was held since the read', async () => {
    const { clients, adapters, tick, base, names } = await setUp();
    const nowMs = base + 2_000;
    expect(await tick(FAR, nowMs, nowMs)).toMatchObject({ reason: 'tick/sequence-jump' });
    const updates = recordUpdates(clients, async (expression) => {
      if (expression !== FOLDED) return;
      await clients.dynamo.send(
        new UpdateItemCommand({
          TableName: names.tables.markets,
          Key: { symbol: { S: 'ETH-USD' } },
          UpdateExpression: 'SET heldJump.#tick.#seq = :s',
          ExpressionAttributeNames: { '#tick': 'tick', '#seq': 'sequence' },
          ExpressionAttributeValues: { ':s': { N: String(FAR + 100) } },
        }),
      );
    });
    expect(await tick(FAR + 1, nowMs + 1_000, nowMs + 1_000)).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    // Before: the continuation alone too, between them (failing).
    expect(updates).toEqual([FOLDED, 'SET heldJump.#tick.#seq = :s', 'SET #trace = :trace']);
    const market = await adapters.markets.get('ETH-USD');
    expect(market?.heldJump?.continuedAtMs).toBeUndefined();
    expect(market?.refusals?.['tick/sequence-confirming']).toMatchObject({ sequence: FAR + 1, count: 1 });
    clients.destroy();
  });

  // feed51-jump-double-refusal: a folded continuation failing both its conditions (another jump held since, and a note
  // of the kind numbered higher) answered not-held, and margin-check wrote the note alone, failing on the same condition.
  it('writes no note alone when another jump was held since and the note was refused too', async () => {
    const { clients, adapters, tick, base, names, store, telemetry } = await setUp();
    const nowMs = base + 2_000;
    expect(await tick(FAR, nowMs, nowMs)).toMatchObject({ reason: 'tick/sequence-jump' });
    const updates = recordUpdates(clients, async (expression) => {
      if (expression !== FOLDED) return;
      await clients.dynamo.send(
        new UpdateItemCommand({
          TableName: names.tables.markets,
          Key: { symbol: { S: 'ETH-USD' } },
          UpdateExpression: 'SET heldJump.#tick.#seq = :s',
          ExpressionAttributeNames: { '#tick': 'tick', '#seq': 'sequence' },
          ExpressionAttributeValues: { ':s': { N: String(FAR + 100) } },
        }),
      );
      await store('tick/sequence-confirming', traceItem(FAR + 50, nowMs));
    });
    expect(await tick(FAR + 1, nowMs + 1_000, nowMs + 1_000)).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    // Before: then 'SET #trace = :trace', failing.
    expect(updates).toEqual([FOLDED, 'SET heldJump.#tick.#seq = :s', 'SET #t = :v']);
    const market = await adapters.markets.get('ETH-USD');
    expect(market?.heldJump).toMatchObject({ tick: { sequence: FAR + 100 } });
    expect(market?.heldJump?.continuedAtMs).toBeUndefined();
    expect(market?.refusals?.['tick/sequence-confirming']).toMatchObject({ sequence: FAR + 50 });
    expect(telemetry.total(METRICS.RefusalTraceFailures.name)).toBe(0);
    clients.destroy();
  });

  // feed51-jump-continued-back-alone: a continuation with no note (a second delivery of a print already noted) whose
  // answer was lost was sent again by the SDK after the next print's continuation had landed, and its retry, on no
  // condition of time, set continuedAtMs back to its own, earlier.
  it("a continuation without a note whose answer was lost, retried after the next print's, does not set it back", async () => {
    const { clients, adapters, tick, base } = await setUp();
    const nowMs = base + 2_000;
    expect(await tick(FAR, nowMs, nowMs)).toMatchObject({ reason: 'tick/sequence-jump' });
    expect(await tick(FAR + 1, nowMs + 1_000, nowMs + 1_000)).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    const alone = (expression: unknown) =>
      String(expression).startsWith('SET heldJump.continuedAtMs = :at') &&
      !String(expression).includes('#trace');
    const lost = loseNextAnswer(clients, 'UpdateItemCommand', (input) => alone(input.UpdateExpression));
    let next: unknown;
    const updates = recordUpdates(clients, async (expression) => {
      // The lost write's retry: the next print continues first.
      if (lost.lost !== 1 || next !== undefined || !alone(expression)) return;
      next = 'running';
      next = await tick(FAR + 2, nowMs + 3_000, nowMs + 3_000);
    });
    lost.armed = true;
    // Another delivery of FAR + 1, a second later: noted already, its continuation alone.
    expect(await tick(FAR + 1, nowMs + 1_000, nowMs + 2_000)).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    expect(lost.lost).toBe(1);
    expect(next).toMatchObject({ reason: 'tick/sequence-confirming' });
    // The write, its retry (recorded as it waits on the next print's write), the next print's.
    expect(updates).toEqual(['SET heldJump.continuedAtMs = :at', 'SET heldJump.continuedAtMs = :at', FOLDED]);
    const market = await adapters.markets.get('ETH-USD');
    // Before: nowMs + 2_000, the retry's.
    expect(market?.heldJump?.continuedAtMs).toBe(nowMs + 3_000);
    expect(market?.refusals?.['tick/sequence-confirming']).toMatchObject({ sequence: FAR + 2, count: 2 });
    clients.destroy();
  });

  // feed51-hold-over-continuation: a glitch judged on the held jump before a print continued it was held over it (the
  // hold's condition named the held print, not its continuation), restarting the span the continuation keeps it for.
  it('holds no glitch over a continuation that landed after its read: judged again, refused as being continued', async () => {
    const { clients, adapters, tick, base } = await setUp();
    const nowMs = base + 2_000;
    expect(await tick(FAR, nowMs, nowMs)).toMatchObject({ reason: 'tick/sequence-jump' });
    const GLITCH = FAR + 3_000_000;
    const HOLD = 'SET heldJump = :held, #trace = :trace';
    let continued: unknown;
    const updates = recordUpdates(clients, async (expression) => {
      if (expression !== HOLD || continued !== undefined) return;
      continued = 'running';
      continued = await tick(FAR + 1, nowMs + 1_000, nowMs + 1_000);
    });
    const glitch = await tick(GLITCH, nowMs + 1_000, nowMs + 1_000);
    expect(continued).toMatchObject({ reason: 'tick/sequence-confirming' });
    expect(glitch).toMatchObject({ reason: 'tick/sequence-jump' });
    expect(String((glitch as { detail?: string }).detail)).toContain(`the held ${FAR} is being continued`);
    // The hold refused, then its note alone; before, the glitch held.
    expect(updates).toEqual([HOLD, FOLDED, 'SET #trace = :trace']);
    const market = await adapters.markets.get('ETH-USD');
    expect(market?.heldJump).toMatchObject({ tick: { sequence: FAR }, continuedAtMs: nowMs + 1_000 });
    expect(market?.refusals?.['tick/sequence-jump']).toMatchObject({ sequence: GLITCH });
    clients.destroy();
  });

  // feed50-jump-note-lost-answer: the SDK's retry of a folded continuation whose answer was lost fails on its own note;
  // margin-check then wrote the continuation again and the note (failing): two writes more. Now known as its own.
  it("a folded continuation whose answer was lost is its own write: nothing written after the SDK's retry", async () => {
    const { clients, adapters, tick, base, telemetry } = await setUp();
    const nowMs = base + 2_000;
    expect(await tick(FAR, nowMs, nowMs)).toMatchObject({ reason: 'tick/sequence-jump' });
    const updates = recordUpdates(clients);
    const lost = loseNextAnswer(clients, 'UpdateItemCommand', (input) => input.UpdateExpression === FOLDED);
    lost.armed = true;
    expect(await tick(FAR + 1, nowMs + 1_000, nowMs + 1_000)).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    expect(lost.lost).toBe(1);
    // Before: then 'SET heldJump.continuedAtMs = :at' and 'SET #trace = :trace' (failing).
    expect(updates).toEqual([FOLDED, FOLDED]);
    const market = await adapters.markets.get('ETH-USD');
    expect(market?.heldJump?.continuedAtMs).toBe(nowMs + 1_000);
    expect(market?.refusals?.['tick/sequence-confirming']).toMatchObject({ sequence: FAR + 1, count: 1 });
    expect(telemetry.total(METRICS.RefusalTraceFailures.name)).toBe(0);
    clients.destroy();
  });

  // review50-feed-jump-continued-back: the SDK's retry of a folded continuation whose answer was lost, landing after
  // the next print's continuation, failed on that one's note, and the continuation alone then set the earlier time over
  // the later (the span a glitch may not replace the held jump in ended early).
  it("a lost answer's retry landing after the next print's continuation sets no earlier one over it", async () => {
    const { clients, adapters, tick, base, telemetry } = await setUp();
    const nowMs = base + 2_000;
    expect(await tick(FAR, nowMs, nowMs)).toMatchObject({ reason: 'tick/sequence-jump' });
    const folded = (input: Record<string, unknown>) =>
      String(input.UpdateExpression).startsWith('SET heldJump.continuedAtMs = :at, ') &&
      String(input.UpdateExpression).includes('#trace = :trace');
    const lost = loseNextAnswer(clients, 'UpdateItemCommand', folded);
    let next: unknown;
    const updates = recordUpdates(clients, async (expression) => {
      // The lost write's retry: the next print continues first.
      if (lost.lost !== 1 || next !== undefined || !folded({ UpdateExpression: expression })) return;
      next = 'running';
      next = await tick(FAR + 2, nowMs + 2_000, nowMs + 2_000);
    });
    lost.armed = true;
    expect(await tick(FAR + 1, nowMs + 1_000, nowMs + 1_000)).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    expect(next).toMatchObject({ reason: 'tick/sequence-confirming' });
    // The write, the next print's, the retry; before, then the continuation alone, set back.
    expect(updates.filter((u) => !folded({ UpdateExpression: u }))).toEqual([]);
    expect(updates).toHaveLength(3);
    const market = await adapters.markets.get('ETH-USD');
    expect(market?.heldJump?.continuedAtMs).toBe(nowMs + 2_000);
    expect(market?.refusals?.['tick/sequence-confirming']).toMatchObject({ sequence: FAR + 2, count: 2 });
    expect(telemetry.total(METRICS.RefusalTraceFailures.name)).toBe(0);
    clients.destroy();
  });

  // feed52-jump-continued-other-print: a continuation was matched to the held jump by its number alone, so a print judged
  // on one held jump, landing after a rebase (or a feed restarted on its old numbers) had another print held under that
  // number, marked that print continued: kept from replacement for the span by a print that never continued from it.
  it('a continuation landing after a rebase held another print of its number does not mark that print continued', async () => {
    const { clients, adapters, tick, base } = await setUp();
    const nowMs = base + 2_000;
    expect(await tick(FAR, nowMs, nowMs)).toMatchObject({ reason: 'tick/sequence-jump' });
    let other: unknown;
    const updates = recordUpdates(clients, async (expression) => {
      if (expression !== FOLDED || other !== undefined) return;
      other = 'running';
      // An operator's resume drops the held jump; the restarted feed's print of that number, stamped later, is held.
      const read = (await adapters.markets.get('ETH-USD'))!;
      await adapters.markets.rebaseSequence('ETH-USD', 0, read, nowMs + 200);
      other = await tick(FAR, nowMs + 500, nowMs + 500);
    });
    expect(await tick(FAR + 1, nowMs + 1_000, nowMs + 1_000)).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    expect(other).toMatchObject({ reason: 'tick/sequence-jump' });
    // Before: then 'SET heldJump.continuedAtMs = :at', the continuation alone, on the other print.
    expect(updates.slice(-1)).toEqual(['SET heldJump = :held, #trace = :trace']);
    const market = await adapters.markets.get('ETH-USD');
    expect(market?.heldJump).toMatchObject({ tick: { sequence: FAR, timestampMs: nowMs + 500 } });
    expect(market?.heldJump?.continuedAtMs).toBeUndefined();
    clients.destroy();
  });

  it('a continuation landing after another print of its number was held, its note holding, writes the note alone', async () => {
    const { clients, adapters, tick, base, telemetry } = await setUp();
    const nowMs = base + 2_000;
    // Still a jump above the old feed's next print (3).
    const far = FAR + 10;
    expect(await tick(far, nowMs, nowMs)).toMatchObject({ reason: 'tick/sequence-jump' });
    let other: unknown;
    const updates = recordUpdates(clients, async (expression) => {
      if (expression !== FOLDED || other !== undefined) return;
      other = 'running';
      // The old feed's next print drops the held jump; a feed restarted on the same numbers prints it again, later.
      expect(await tick(3, nowMs + 400, nowMs + 400)).toMatchObject({ status: 'accepted' });
      other = await tick(far, nowMs + 500, nowMs + 500);
    });
    expect(await tick(far + 1, nowMs + 1_000, nowMs + 1_000)).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    expect(other).toMatchObject({ reason: 'tick/sequence-jump' });
    // The other print's hold (its number noted already), then the refused continuation's note alone. Before: the folded
    // write landed on the other print, continuing it.
    expect(updates.slice(-2)).toEqual(['SET heldJump = :held', 'SET #trace = :trace']);
    const market = await adapters.markets.get('ETH-USD');
    expect(market?.heldJump).toMatchObject({ tick: { sequence: far, timestampMs: nowMs + 500 } });
    expect(market?.heldJump?.continuedAtMs).toBeUndefined();
    expect(market?.refusals?.['tick/sequence-confirming']).toMatchObject({ sequence: far + 1, count: 1 });
    expect(telemetry.total(METRICS.RefusalTraceFailures.name)).toBe(0);
    clients.destroy();
  });

  // review49-feed-note-livelock: the note's condition must refuse no trace margin-check judged stale, else the hold it
  // rides with failed on every fresh read (tick/contended, the jump never held) where a note alone was merely lost.
  it("is held, noted over a trace that says a rebase the market does not (currentRefusals' stale one)", async () => {
    const { clients, adapters, tick, base, store } = await setUp();
    const nowMs = base + 2_000;
    // Numbered higher, noted under a rebase this market (never rebased: no resumedAfterMs) does not say: stale.
    const item = traceItem(FAR + 5, nowMs - 1_000);
    await store('tick/sequence-jump', { M: { ...item.M!, resumed: { N: String(base - 60_000) } } });
    // Before: tick/contended, nothing held.
    expect(await tick(FAR, nowMs, nowMs)).toMatchObject({ reason: 'tick/sequence-jump' });
    const market = await adapters.markets.get('ETH-USD');
    expect(market?.heldJump?.tick.sequence).toBe(FAR);
    expect(market?.refusals?.['tick/sequence-jump']).toMatchObject({ sequence: FAR, count: 1 });
    clients.destroy();
  });
});

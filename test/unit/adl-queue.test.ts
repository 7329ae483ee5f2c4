import { describe, expect, it } from 'vitest';
import { rankCandidate, topForAdl } from '../../shared/domain/adl.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import type { Side } from '../../shared/domain/model.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import type { PositionRecord } from '../../shared/ports/index.ts';
import { AdlQueue, type QueuedEntry } from '../../shared/services/adl-snapshots.ts';
import { withLiquidationPrice } from '../../shared/services/margin-check.ts';

const MARK = parsePrice('150');

function short(i: number, entry: string, collateral: string, version = 0): PositionRecord {
  return withLiquidationPrice(
    {
      id: `s-${String(i).padStart(3, '0')}`,
      traderId: `t-${i}`,
      symbol: 'ETH-USD',
      side: 'SHORT' as Side,
      size: parseBase('1'),
      entryPrice: parsePrice(entry),
      collateral: parseQuote(collateral),
      state: 'OPEN',
      version,
    },
    DEFAULT_RISK_CONFIG,
  );
}

const rank = (p: PositionRecord): QueuedEntry | undefined => {
  if (p.state !== 'OPEN') return undefined;
  const ranked = rankCandidate(p, MARK, 'LONG');
  return ranked ? { ranked, candidate: { ...p, version: p.version } } : undefined;
};

/** A queue over `records` (mutable: tests change them between plans), counting the records each plan reads. */
function queueOf(records: Map<string, PositionRecord>) {
  const taken = topForAdl([...records.values()], MARK, 'LONG', records.size);
  const queue = new AdlQueue(
    MARK,
    0,
    taken.map((ranked) => ({ ranked, candidate: { ...ranked, version: records.get(ranked.id)!.version } })),
  );
  const reads: string[][] = [];
  const read = async (ids: readonly string[]) => {
    reads.push([...ids]);
    return ids.flatMap((id) => (records.has(id) ? [records.get(id)!] : []));
  };
  return { queue, reads, read };
}

/** The exact best n of the records as they are now. */
const exactHead = (records: Map<string, PositionRecord>, n: number): string[] =>
  topForAdl(
    [...records.values()].filter((p) => p.state === 'OPEN'),
    MARK,
    'LONG',
    n,
  ).map((c) => c.id);

describe('AdlQueue', () => {
  // Shorts entered from 160 to 259: the higher the entry, the more profit at 150, the higher the rank.
  const book = () =>
    new Map(Array.from({ length: 100 }, (_, i) => short(i, String(160 + i), '50')).map((p) => [p.id, p]));

  it('reads only the head a plan asks for', async () => {
    const records = book();
    const { queue, reads, read } = queueOf(records);
    const head = await queue.head(4, new Set(), read, rank);
    expect(head.map((e) => e.candidate.id)).toEqual(exactHead(records, 4));
    expect(reads.flat()).toHaveLength(4);
  });

  it('moves a record that changed since it was ranked to its rank now, and reads what rose into the head', async () => {
    const records = book();
    const { queue, reads, read } = queueOf(records);
    const best = exactHead(records, 1)[0]!;
    // ADL took most of the best one's profit: it now ranks far down.
    const was = records.get(best)!;
    records.set(best, { ...was, entryPrice: parsePrice('161'), version: was.version + 1 });
    const head = await queue.head(4, new Set(), read, rank);
    expect(head.map((e) => e.candidate.id)).toEqual(exactHead(records, 4));
    expect(head.find((e) => e.candidate.id === best)).toBeUndefined();
    expect(reads.flat()).toHaveLength(5); // the 4 it asked for, then the one that rose into the head
    // The next plan finds it where it belongs, without reading anything the first plan read.
    const seen = new Set(reads.flat());
    const deeper = await queue.head(100, seen, read, rank);
    expect(deeper.map((e) => e.candidate.id)).toEqual(exactHead(records, 100));
  });

  it('drops a record that moved below the last it held, when the side held more (others may rank above it)', async () => {
    const records = book();
    const best10 = exactHead(records, 10);
    const entries = (ids: readonly string[]) =>
      ids.map((id) => rank(records.get(id)!)!).map((e) => ({ ...e, candidate: { ...e.candidate } }));
    const partial = new AdlQueue(MARK, 0, entries(best10), false);
    const whole = new AdlQueue(MARK, 0, entries(best10), true);
    // ADL took most of the best one's profit: it ranks below the 10th now, where positions these queues never
    // held (the 11th and on) rank above it.
    const best = best10[0]!;
    const was = records.get(best)!;
    records.set(best, { ...was, entryPrice: parsePrice('161'), version: was.version + 1 });
    const read = async (ids: readonly string[]) => ids.map((id) => records.get(id)!);
    const fromPartial = await partial.head(10, new Set(), read, rank);
    expect(fromPartial.map((e) => e.candidate.id)).toEqual(best10.slice(1));
    expect(partial.length).toBe(9); // short: the next plan that needs more ranks the side again
    // A queue that held the whole side keeps it, at its rank now: nobody else could rank above it.
    const fromWhole = await whole.head(10, new Set(), read, rank);
    expect(fromWhole.map((e) => e.candidate.id)).toEqual([...best10.slice(1), best]);
  });

  it('drops records that can no longer be deleveraged (closed, gone)', async () => {
    const records = book();
    const { queue, read } = queueOf(records);
    const [first, second] = exactHead(records, 2);
    records.set(first!, { ...records.get(first!)!, state: 'CLOSED', version: 1 });
    records.delete(second!);
    const head = await queue.head(3, new Set(), read, rank);
    expect(head.map((e) => e.candidate.id)).toEqual(exactHead(records, 3));
    expect(queue.length).toBe(98);
  });

  it('never queues an id twice when two plans on one queue find the same record changed (parallel records)', async () => {
    const records = book();
    const { queue } = queueOf(records);
    const best = exactHead(records, 1)[0]!;
    const was = records.get(best)!;
    records.set(best, { ...was, entryPrice: parsePrice('161'), version: was.version + 1 });
    // Both plans read before either moves anything: their reads resolve only once both have asked.
    let release!: () => void;
    const bothAsked = new Promise<void>((resolve) => {
      release = resolve;
    });
    let asked = 0;
    const read = async (ids: readonly string[]) => {
      if (++asked === 2) release();
      await bothAsked;
      return ids.flatMap((id) => (records.has(id) ? [records.get(id)!] : []));
    };
    const [a, b] = await Promise.all([
      queue.head(4, new Set(), read, rank),
      queue.head(4, new Set(), read, rank),
    ]);
    expect(a.map((e) => e.candidate.id)).toEqual(exactHead(records, 4));
    expect(b.map((e) => e.candidate.id)).toEqual(exactHead(records, 4));
    expect(new Set(queue.ids).size).toBe(queue.length);
    expect(queue.ids.filter((id) => id === best)).toHaveLength(1);
  });

  it('gives fewer than asked when the queue holds fewer', async () => {
    const records = new Map([short(1, '170', '50'), short(2, '180', '50')].map((p) => [p.id, p]));
    const { queue, read } = queueOf(records);
    expect(await queue.head(4, new Set(), read, rank)).toHaveLength(2);
  });
});

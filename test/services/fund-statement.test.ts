import { describe, expect, it } from 'vitest';
import { EmbeddedLedger } from '../../shared/adapters/embedded/ledger.ts';
import { FUND_KINDS, type Period, SETTLED_AFTER_MS } from '../../shared/domain/fund-statement.ts';
import { usd } from '../../shared/domain/units.ts';
import type { JournalEntry, Ledger } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import {
  gapRereadDelayMs,
  readFundStatement,
  STATEMENT_GAP_REREADS,
} from '../../shared/services/fund-statement.ts';
import { runSimulation } from '../../shared/sim/engine.ts';
import { prepareSimulation } from '../../shared/sim/setup.ts';

/**
 * `backstop fund statement`'s read on the embedded ledger: through journalAfter only, a page at a time, bounded;
 * the period cut by sequence from times; breaks, an empty period, a read cut short. The CLI on moto:
 * test/cli/fund-statement.test.ts.
 */

const T0 = Date.UTC(2026, 0, 31, 23, 59, 0);

/** The ledger, with what its reads returned: journalAfter's calls and entries; any other journal read is counted. */
function counted(ledger: EmbeddedLedger) {
  const read = { calls: 0, entries: 0, other: 0 };
  const proxy = new Proxy(ledger, {
    get: (target, key) => {
      const method = Reflect.get(target, key);
      if (typeof method !== 'function') return method;
      if (['journal', 'latestEntries', 'entriesOf'].includes(String(key)))
        return (...args: unknown[]) => {
          read.other += 1;
          return method.apply(target, args);
        };
      if (key !== 'journalAfter') return method.bind(target);
      return async (...args: unknown[]) => {
        const entries = (await method.apply(target, args)) as readonly unknown[];
        read.calls += 1;
        read.entries += entries.length;
        return entries;
      };
    },
  }) as Ledger;
  return { ledger: proxy, read };
}

const move = (ledger: Ledger, key: string, kind: string, amount: string, atMs: number, floor = 0n) =>
  ledger.apply({
    account: INSURANCE_ACCOUNT,
    idempotencyKey: key,
    amount: usd(amount),
    kind,
    reference: key.split(':')[0]!,
    atMs,
    floor,
  });

/**
 * A month-end's journal: a deposit in January, then movements across midnight whose stamps are not in sequence order
 * (a settlement's plan frozen before a later one committed).
 */
async function monthEnd(ledger: EmbeddedLedger) {
  await move(ledger, 'admin:d1', 'deposit', '1000', T0 - 86_400_000); // 1
  await move(ledger, 'p1:0:fee', 'liquidation-fee', '10', T0); // 2
  await move(ledger, 'p2:0:shortfall', 'shortfall-payout', '-50', T0 + 30_000); // 3
  await move(ledger, 'p3:0:fee', 'liquidation-fee', '5', T0 + 61_000); // 4: the first stamped in February
  await move(ledger, 'p4:0:fee', 'liquidation-fee', '2', T0 + 59_000); // 5: stamped in January, committed after 4
  await move(ledger, 'admin:w1', 'withdraw', '-100', T0 + 120_000); // 6
}

const FEB = T0 + 60_000;
const byTime = (from: number | undefined, to: number | undefined): Period => ({
  from: from === undefined ? undefined : { atMs: from },
  to: to === undefined ? undefined : { atMs: to },
});

describe('the fund statement on the embedded ledger', () => {
  it('cuts January and February by sequence where the stamps cross: each entry in one month, closing = opening', async () => {
    const embedded = new EmbeddedLedger();
    await monthEnd(embedded);
    const { ledger, read } = counted(embedded);
    const january = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(undefined, FEB), {
      pageSize: 2,
    });
    expect(january.entries.map((e) => e.sequence)).toEqual([1, 2, 3]);
    expect(january).toMatchObject({ stoppedBy: 'end', next: { sequence: 4 } });
    expect(january.statement).toMatchObject({
      opening: 0n,
      closing: usd('960'),
      reconciles: true,
      breaks: [],
    });
    const february = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(FEB, FEB + 28 * 86_400_000), {
      pageSize: 2,
      nowMs: () => FEB + 86_400_000,
    });
    // Entry 5 is stamped in January but committed after February's first entry: February's, and said so.
    expect(february.entries.map((e) => e.sequence)).toEqual([4, 5, 6]);
    expect(february.statement).toMatchObject({
      opening: usd('960'),
      movements: usd('-93'),
      closing: usd('867'),
      reconciles: true,
      stampedBefore: [5],
    });
    expect(february.before?.sequence).toBe(3);
    // No `to` entry yet, and February not over: the month is open, read to the journal's end.
    expect(february).toMatchObject({ stoppedBy: 'journal', closed: false });
    // Never the whole journal: journalAfter only.
    expect(read.other).toBe(0);
    // Going on from January's next entry reads no entry before it but its predecessor.
    read.entries = 0;
    const fromNext = await readFundStatement(ledger, INSURANCE_ACCOUNT, {
      from: { sequence: january.next!.sequence },
      to: { atMs: FEB + 28 * 86_400_000 },
    });
    expect(fromNext.entries.map((e) => e.sequence)).toEqual([4, 5, 6]);
    expect(fromNext.statement.opening).toBe(february.statement.opening);
    expect(read.entries).toBe(4);
  });

  it('an entry stamped exactly at --from is in the period, one exactly at --to is not', async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    const edge = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(T0, T0 + 61_000));
    expect(edge.entries.map((e) => e.sequence)).toEqual([2, 3]);
    expect(edge.next?.sequence).toBe(4);
  });

  it('an empty period opens and closes at the balance before it', async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    // Nothing is stamped between 23:59:40 and 23:59:50 of January 31 before February's first entry.
    const empty = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(T0 + 40_000, T0 + 50_000));
    expect(empty.entries).toEqual([]);
    expect(empty).toMatchObject({ stoppedBy: 'end', before: { sequence: 3 }, next: { sequence: 4 } });
    expect(empty.statement).toMatchObject({ opening: usd('960'), closing: usd('960'), reconciles: true });
    // An empty journal: 0 to 0.
    const none = await readFundStatement(new EmbeddedLedger(), INSURANCE_ACCOUNT, byTime(T0, FEB));
    expect(none.statement).toMatchObject({ entries: 0, opening: 0n, closing: 0n, reconciles: true });
    expect(none.stoppedBy).toBe('journal');
  });

  it('stops at --max: in the period (what it covers said), or before its start', async () => {
    const embedded = new EmbeddedLedger();
    await monthEnd(embedded);
    const { ledger, read } = counted(embedded);
    const short = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(T0, undefined), {
      max: 3,
      pageSize: 2,
    });
    // A page re-reads its predecessor's last entry, and one more than --max is read: is there more?
    expect(read.entries).toBeLessThanOrEqual(3 + 1 + 1);
    expect(short).toMatchObject({ stoppedBy: 'max', phase: 'in', read: 3, lastRead: { sequence: 3 } });
    expect(short.entries.map((e) => e.sequence)).toEqual([2, 3]);
    expect(short.statement).toMatchObject({ closing: usd('960'), reconciles: true });
    const notYet = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(FEB, undefined), { max: 2 });
    expect(notYet).toMatchObject({ stoppedBy: 'max', phase: 'before', read: 2, entries: [] });
    // By sequence, the last entry read closes the period whatever the bound.
    const exact = await readFundStatement(
      ledger,
      INSURANCE_ACCOUNT,
      { from: { sequence: 2 }, to: { sequence: 3 } },
      {
        max: 3,
      },
    );
    expect(exact).toMatchObject({ stoppedBy: 'end' });
    expect(exact.entries.map((e) => e.sequence)).toEqual([2, 3]);
  });

  it('a start by time past --to-sequence: an empty period at that sequence, read in pages, the next from the entry after it', async () => {
    const embedded = new EmbeddedLedger();
    await monthEnd(embedded);
    // Entries 7 to 40 stamped in January: nothing from February 2 on until entry 41.
    const FEB2 = FEB + 86_400_000;
    for (let n = 7; n <= 40; n++) await move(embedded, `p${n}:0:fee`, 'liquidation-fee', '1', T0 + 1_000);
    await move(embedded, 'p41:0:fee', 'liquidation-fee', '1', FEB2);
    const { ledger, read } = counted(embedded);
    const mixed = await readFundStatement(
      ledger,
      INSURANCE_ACCOUNT,
      { from: { atMs: FEB2 }, to: { sequence: 3 } },
      { pageSize: 10 },
    );
    expect(mixed.entries).toEqual([]);
    // Empty at entry 3: its balance opens and closes the period, entry 4 is the next one's.
    expect(mixed).toMatchObject({ stoppedBy: 'end', before: { sequence: 3 }, next: { sequence: 4 } });
    expect(mixed.statement).toMatchObject({ opening: usd('960'), closing: usd('960'), reconciles: true });
    // No further than entry 4, in two Queries (it read on to entry 41, past entry 3 one entry a Query).
    expect([read.calls, mixed.read]).toEqual([2, 4]);
  });

  it('names a gap, and that the journal holds the entries its index does not list', async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    ledger.leaveOutOfJournalIndex(INSURANCE_ACCOUNT, [3]);
    const pause = async () => {};
    const gap = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(undefined, FEB), { pause });
    expect(gap.statement.reconciles).toBe(false);
    expect(gap.statement.breaks.map((b) => b.message)).toEqual([
      'entry 3 missing between entry 2 and entry 4, the first past the period: of this period or the next, unknown (balance 1,010.00 after entry 2, 960.00 before entry 4: -50.00 in neither statement)',
    ]);
    expect(gap.unindexed).toMatchObject({ found: 1, lowest: 3, complete: true });
    // Inside the period: the gap and what it moved.
    const whole = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(undefined, undefined), { pause });
    expect(whole.statement).toMatchObject({ reconciles: false, difference: usd('-50') });
    expect(whole.statement.breaks.map((b) => [b.type, b.sequence, b.amount])).toEqual([
      ['gap', 4, usd('-50')],
    ]);
  });

  it("names the entries the balance counts that the index does not list at the journal's end, a whole journal unindexed too", async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    // The newest entry not listed yet (the index's lag on AWS): the open period says it may be short.
    ledger.leaveOutOfJournalIndex(INSURANCE_ACCOUNT, [6]);
    // Waited for as the reconcile waits, and read again after each wait; here it never comes.
    const waited: number[] = [];
    const pause = async (ms: number) => {
      waited.push(ms);
    };
    const lagging = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(FEB, undefined), { pause });
    expect(waited).toEqual([50, 100, 200, 400, 800, 1_600, 3_200]);
    expect(lagging.stoppedBy).toBe('journal');
    expect(lagging.statement.breaks.map((b) => b.message)).toEqual([
      "entry 6 missing at the journal's end: the fund's balance, read before the journal, counts it (it is at entry 6, -100.00 from entry 5) and the journal's index by sequence does not list it (of this period or a later one, unknown)",
    ]);
    // A journal none of whose entries is indexed (a stack deployed before session 27) does not read as an empty fund.
    ledger.leaveOutOfJournalIndex(INSURANCE_ACCOUNT, [1, 2, 3, 4, 5]);
    const unindexed = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(undefined, undefined), {
      pause,
    });
    expect(unindexed.entries).toEqual([]);
    expect(unindexed.statement).toMatchObject({ reconciles: false, opening: 0n, closing: 0n });
    expect(unindexed.statement.breaks.map((b) => [b.type, b.sequence, b.amount])).toEqual([
      ['gap', 6, usd('867')],
    ]);
    expect(unindexed.unindexed).toMatchObject({ found: 6, lowest: 1, complete: true });
  });

  it("waits for the index at the journal's end: an entry it lists a moment later is in the statement", async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    ledger.leaveOutOfJournalIndex(INSURANCE_ACCOUNT, [5, 6]);
    const waited: number[] = [];
    // The index catches up during the second wait.
    const pause = async (ms: number) => {
      waited.push(ms);
      if (waited.length === 2) ledger.indexJournal(INSURANCE_ACCOUNT);
    };
    const caughtUp = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(FEB, undefined), { pause });
    expect(waited).toEqual([50, 100]);
    expect(caughtUp.entries.map((e) => e.sequence)).toEqual([4, 5, 6]);
    expect(caughtUp.statement).toMatchObject({ reconciles: true, closing: usd('867') });
    // A journal at its balance never waits, nor a period by sequence whose last entry was read.
    waited.length = 0;
    await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(undefined, undefined), { pause });
    ledger.leaveOutOfJournalIndex(INSURANCE_ACCOUNT, [6]);
    const bySequence = await readFundStatement(
      ledger,
      INSURANCE_ACCOUNT,
      { from: undefined, to: { sequence: 5 } },
      { pause },
    );
    expect(bySequence).toMatchObject({ stoppedBy: 'end', statement: { reconciles: true, lastSequence: 5 } });
    expect(waited).toEqual([]);
  });

  // statement48-index-lag: a gap within the journal was named at once, where the index (a GSI) lists a new entry a
  // moment after it commits, not always in sequence order: a statement read near the journal's end did not reconcile.
  it('reads a gap within the journal again: an entry the index lists a moment late is in the statement', async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    const waited: number[] = [];
    const pause = async (ms: number) => {
      waited.push(ms);
    };
    const random = () => 0.5;
    // Entry 3 left out of the first read that reaches it: mid-page, at a page's start, just before --to's entry.
    for (const pageSize of [1, 2, 1000]) {
      ledger.lagJournalIndex(INSURANCE_ACCOUNT, [3], 1);
      waited.length = 0;
      const january = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(undefined, FEB), {
        pageSize,
        pause,
        random,
      });
      expect(january.entries.map((e) => e.sequence)).toEqual([1, 2, 3]);
      expect(january).toMatchObject({ stoppedBy: 'end', next: { sequence: 4 } });
      expect(january.statement).toMatchObject({ reconciles: true, breaks: [] });
      expect(waited).toEqual([gapRereadDelayMs(1, random)]);
    }
    // The entry before a period by sequence, and one just before its last, late twice: read again twice.
    ledger.lagJournalIndex(INSURANCE_ACCOUNT, [3, 5], 2);
    waited.length = 0;
    const february = await readFundStatement(
      ledger,
      INSURANCE_ACCOUNT,
      { from: { sequence: 4 }, to: { sequence: 6 } },
      { pause, random },
    );
    expect(february.before?.sequence).toBe(3);
    expect(february.entries.map((e) => e.sequence)).toEqual([4, 5, 6]);
    expect(february.statement).toMatchObject({ reconciles: true, breaks: [] });
    expect(waited).toEqual([1, 2].map((n) => gapRereadDelayMs(n, random)));
    // A gap before the period (a start by time) is no break of it: not read again.
    ledger.lagJournalIndex(INSURANCE_ACCOUNT, [2], 1);
    waited.length = 0;
    await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(FEB, undefined), { pause, random });
    expect(waited).toEqual([]);
  });

  it("a gap the index still does not list when read again, which the balance counts and no look finds left out of it: the index's lag", async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    ledger.lagJournalIndex(INSURANCE_ACCOUNT, [3, 5], Number.POSITIVE_INFINITY);
    const waited: number[] = [];
    const pause = async (ms: number) => {
      waited.push(ms);
    };
    const lagging = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(undefined, undefined), {
      pause,
      random: () => 0,
    });
    // Read again within a bound for all gaps, each wait doubling (equal jitter: at least half of it).
    expect(waited).toEqual([25, 50, 100, 200, 400, 800]);
    expect(waited).toHaveLength(STATEMENT_GAP_REREADS);
    expect(lagging.entries.map((e) => e.sequence)).toEqual([1, 2, 4, 6]);
    expect(lagging.unindexed).toBeUndefined();
    expect(lagging.statement.reconciles).toBe(false);
    expect(lagging.statement.breaks.map((b) => [b.type, b.sequence, b.amount])).toEqual([
      ['lagging', 4, usd('-50')],
      ['lagging', 6, usd('2')],
    ]);
    expect(lagging.statement.breaks[0]!.message).toBe(
      "index lagging: entry 3 missing between entry 2 and entry 4: balance 1,010.00 after entry 2, 960.00 before entry 4, -50.00 not in this statement; the fund's balance (at entry 6) counts it and no look finds it left out of the index, which lists new entries a moment late: run the statement again in a minute (still not listed then: missing)",
    );
    // The same at the journal's end, once its waits are over.
    const newest = new EmbeddedLedger();
    await monthEnd(newest);
    newest.lagJournalIndex(INSURANCE_ACCOUNT, [6], Number.POSITIVE_INFINITY);
    const end = await readFundStatement(newest, INSURANCE_ACCOUNT, byTime(FEB, undefined), { pause });
    expect(end.statement.breaks.map((b) => [b.type, b.sequence, b.amount])).toEqual([
      ['lagging', 6, usd('-100')],
    ]);
    // A gap the balance does not count (set back to entry 2, by hand): missing, not late.
    ledger.writeBalanceOutsideJournal(INSURANCE_ACCOUNT, { sequence: 2, balance: usd('1010') });
    const setBack = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(undefined, undefined), {
      pause,
    });
    expect(setBack.statement.breaks.map((b) => [b.type, b.sequence])).toEqual([
      ['gap', 4],
      ['gap', 6],
    ]);
  });

  // review48-statement-lost-not-lagging: an entry gone from the journal itself was said as the index's lag.
  it('a gap the look proves gone from the journal (read whole, fewer entries than the balance counts) is missing, not lagging', async () => {
    const embedded = new EmbeddedLedger();
    await monthEnd(embedded);
    // Entry 3 deleted from the table: the index does not list it, and the look, reading the journal itself, finds
    // 5 entries where the balance counts 6.
    const lost = new Proxy(embedded, {
      get: (target, key) => {
        if (key === 'journalAfter')
          return async (account: string, after: number, limit: number) =>
            (await target.journalAfter(account, after, limit + 1))
              .filter((e) => e.sequence !== 3)
              .slice(0, limit);
        if (key === 'unindexedEntries')
          return async (account: string, maxRead: number) => {
            const look = await target.unindexedEntries(account, maxRead);
            return { ...look, read: look.read - 1 };
          };
        const method = Reflect.get(target, key);
        return typeof method === 'function' ? method.bind(target) : method;
      },
    }) as Ledger;
    const pause = async () => {};
    const read = await readFundStatement(lost, INSURANCE_ACCOUNT, byTime(undefined, undefined), { pause });
    expect(read.statement.breaks.map((b) => [b.type, b.sequence])).toEqual([['gap', 4]]);
    // Not read whole (a bound below the journal's size): the lag stays the rule.
    const bounded = await readFundStatement(lost, INSURANCE_ACCOUNT, byTime(undefined, undefined), {
      pause,
      lookMax: 2,
    });
    expect(bounded.statement.breaks.map((b) => [b.type, b.sequence])).toEqual([['lagging', 4]]);
  });

  // statement48-closed-by-time: a month read to the journal's end said `open` however long after its end.
  it("closes a period by time whose end passed long enough before, read to the balance's entry", async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    const END = FEB + 28 * 86_400_000;
    const february = (nowMs: number, period = byTime(FEB, END)) =>
      readFundStatement(ledger, INSURANCE_ACCOUNT, period, { nowMs: () => nowMs, pause: async () => {} });
    expect(await february(END + SETTLED_AFTER_MS)).toMatchObject({
      stoppedBy: 'journal',
      closed: true,
      settledAtMs: END + SETTLED_AFTER_MS,
      balanceSequence: 6,
    });
    // A moment earlier, a settlement planned before the end may still commit.
    const early = await february(END + SETTLED_AFTER_MS - 1);
    expect(early).toMatchObject({ closed: false });
    expect(early.settledAtMs).toBeUndefined();
    // From the entry after January's last: closed at once (its entry before read); from one past the journal, not
    // (the entry before the period is still to come, its balance the opening).
    for (const [from, closed] of [
      [4, true],
      [7, true],
      [8, false],
    ] as const)
      expect(
        (await february(END + SETTLED_AFTER_MS, { from: { sequence: from }, to: { atMs: END } })).closed,
      ).toBe(closed);
    // Entries the balance counts that the index does not list: one may be the period's.
    ledger.leaveOutOfJournalIndex(INSURANCE_ACCOUNT, [6]);
    expect((await february(END + SETTLED_AFTER_MS)).closed).toBe(false);
  });

  // more48c-statement-closed-breaks: a period ended (by time, or its end read) was `closed` while it listed a break;
  // an entry missing may be of the period, its stamp the true end: a run later could differ.
  it('is not closed while it lists a break, ended by time or by reading its end', async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    const END = FEB + 28 * 86_400_000;
    const pause = async () => {};
    ledger.lagJournalIndex(INSURANCE_ACCOUNT, [5], Number.POSITIVE_INFINITY);
    const february = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(FEB, END), {
      nowMs: () => END + SETTLED_AFTER_MS,
      pause,
    });
    expect(february.statement.breaks.map((b) => [b.type, b.sequence])).toEqual([['lagging', 6]]);
    expect(february).toMatchObject({
      stoppedBy: 'journal',
      ended: true,
      closed: false,
      openBecause: 'breaks',
    });
    // Its end read (entry 4, the first stamped in February), a gap just before it: of January or February, unknown.
    const lagging = new EmbeddedLedger();
    await monthEnd(lagging);
    lagging.lagJournalIndex(INSURANCE_ACCOUNT, [3], Number.POSITIVE_INFINITY);
    const january = await readFundStatement(lagging, INSURANCE_ACCOUNT, byTime(undefined, FEB), { pause });
    expect(january.statement.reconciles).toBe(false);
    expect(january).toMatchObject({ stoppedBy: 'end', ended: true, closed: false, openBecause: 'breaks' });
    // Reconciling, each closes; open ones say why.
    const clean = new EmbeddedLedger();
    await monthEnd(clean);
    const closed = await readFundStatement(clean, INSURANCE_ACCOUNT, byTime(undefined, FEB), { pause });
    expect(closed).toMatchObject({ ended: true, closed: true });
    expect(closed.openBecause).toBeUndefined();
    const open = await readFundStatement(clean, INSURANCE_ACCOUNT, byTime(FEB, END), {
      nowMs: () => FEB,
      pause,
    });
    expect(open).toMatchObject({ ended: false, closed: false, openBecause: 'journal' });
    const cut = await readFundStatement(clean, INSURANCE_ACCOUNT, byTime(undefined, undefined), {
      max: 2,
      pause,
    });
    expect(cut).toMatchObject({ stoppedBy: 'max', closed: false, openBecause: 'max' });
  });

  // statement48-max-exact: a journal of exactly --max entries read as cut short (exit 3), as one with more.
  it('reads one entry more than --max: a journal of exactly --max entries is read whole, a period ending there is closed', async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    const whole = byTime(undefined, undefined);
    for (const pageSize of [1, 4, 1000]) {
      const exact = await readFundStatement(ledger, INSURANCE_ACCOUNT, whole, { max: 6, pageSize });
      expect(exact).toMatchObject({ stoppedBy: 'journal', read: 6, statement: { reconciles: true } });
      expect(exact.entries).toHaveLength(6);
      const more = await readFundStatement(ledger, INSURANCE_ACCOUNT, whole, { max: 5, pageSize });
      expect(more).toMatchObject({ stoppedBy: 'max', read: 5, lastRead: { sequence: 5 } });
      // January's 3 entries within --max 3: the 4th read is the one past it, and closes it.
      const january = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(undefined, FEB), {
        max: 3,
        pageSize,
      });
      expect(january).toMatchObject({ stoppedBy: 'end', closed: true, next: { sequence: 4 } });
      expect(january.entries).toHaveLength(3);
    }
  });

  // statement48-empty-opening: --from-sequence on an empty journal said its opening unknown.
  it('an empty journal opens at 0, from any sequence', async () => {
    const ledger = new EmbeddedLedger();
    for (const from of [1, 2, 5]) {
      const empty = await readFundStatement(
        ledger,
        INSURANCE_ACCOUNT,
        { from: { sequence: from }, to: undefined },
        { pause: async () => {} },
      );
      expect(empty).toMatchObject({ stoppedBy: 'journal', read: 0, balanceSequence: 0 });
      expect(empty.statement).toMatchObject({ entries: 0, opening: 0n, closing: 0n, difference: 0n });
      expect(empty.statement.reconciles).toBe(true);
    }
    // A journal whose balance counts no entry while its index lists some (a balance item lost): not empty.
    await move(ledger, 'admin:d1', 'deposit', '5', T0);
    await move(ledger, 'admin:d2', 'deposit', '5', T0);
    await move(ledger, 'admin:d3', 'deposit', '5', T0);
    ledger.writeBalanceOutsideJournal(INSURANCE_ACCOUNT, { balance: 0n, sequence: 0 });
    const lost = await readFundStatement(ledger, INSURANCE_ACCOUNT, { from: { sequence: 5 }, to: undefined });
    expect(lost.statement.opening).toBeUndefined();
  });

  it('names a balance written outside the journal at the entry after it, and the entries a lost balance numbered again', async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    ledger.writeBalanceOutsideJournal(INSURANCE_ACCOUNT, { balance: usd('877') }); // +10 by hand
    await move(ledger, 'p5:0:fee', 'liquidation-fee', '1', T0 + 180_000); // 7
    const hand = await readFundStatement(ledger, INSURANCE_ACCOUNT, { from: { sequence: 5 }, to: undefined });
    expect(hand.statement).toMatchObject({ opening: usd('965'), closing: usd('878'), difference: usd('10') });
    expect(hand.statement.breaks.map((b) => b.message)).toEqual([
      "entry 7: balanceBefore 877.00 != entry 6's balanceAfter 867.00 (+10.00)",
    ]);
    // A balance item lost: the next movements are numbered from 1 again, two entries at each sequence.
    ledger.writeBalanceOutsideJournal(INSURANCE_ACCOUNT, { balance: 0n, sequence: 0 });
    await move(ledger, 'admin:d2', 'deposit', '5', T0 + 240_000);
    await move(ledger, 'admin:d3', 'deposit', '6', T0 + 241_000);
    for (const pageSize of [1, 2, 3, 1000]) {
      const twice = await readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(undefined, undefined), {
        pageSize,
      });
      // Every entry read once, the copies too, wherever a page ends.
      expect(twice.entries.map((e) => `${e.sequence}:${e.idempotencyKey}`).sort()).toEqual(
        (await ledger.journal(INSURANCE_ACCOUNT)).map((e) => `${e.sequence}:${e.idempotencyKey}`).sort(),
      );
      expect(twice.read).toBe(9);
      expect(twice.statement.breaks.filter((b) => b.type === 'duplicate').map((b) => b.sequence)).toEqual([
        1, 2,
      ]);
      expect(twice.statement.reconciles).toBe(false);
    }
  });

  it('refuses a journal holding a kind the chart does not name, naming the entry', async () => {
    const ledger = new EmbeddedLedger();
    await monthEnd(ledger);
    // Written by hand: the ledger refuses a kind its chart does not name (books52-uncharted-kind).
    ledger.writeEntryByHand({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: 'x:1',
      kind: 'rebate',
      amount: usd('1'),
      reference: 'x',
      atMs: T0 + 300_000,
    });
    await expect(readFundStatement(ledger, INSURANCE_ACCOUNT, byTime(undefined, undefined))).rejects.toThrow(
      'statement/unknown-kind: entry 7 (key x:1) has kind "rebate"',
    );
    // A period without it is stated.
    expect(
      (await readFundStatement(ledger, INSURANCE_ACCOUNT, { from: undefined, to: { sequence: 6 } })).statement
        .reconciles,
    ).toBe(true);
  });

  it("a crash replay's journal: every kind the services write is charted, and the totals are the settlements'", async () => {
    let journal: readonly JournalEntry[] = [];
    let statement: Awaited<ReturnType<typeof readFundStatement>> | undefined;
    let halves: Awaited<ReturnType<typeof readFundStatement>>[] = [];
    const run = await runSimulation({
      ...prepareSimulation({ seed: 1, positions: 1_500, fund: 0n }),
      strategy: 'waterfall',
      inspect: async (adapters) => {
        journal = await adapters.ledger.journal(INSURANCE_ACCOUNT);
        statement = await readFundStatement(adapters.ledger, INSURANCE_ACCOUNT, byTime(undefined, undefined));
        const middle = journal[Math.floor(journal.length / 2)]!.atMs;
        halves = [
          await readFundStatement(adapters.ledger, INSURANCE_ACCOUNT, byTime(undefined, middle)),
          await readFundStatement(adapters.ledger, INSURANCE_ACCOUNT, byTime(middle, undefined)),
        ];
      },
    });
    expect(run.insurancePaid).toBeGreaterThan(0n);
    expect(new Set(journal.map((e) => e.kind))).toEqual(new Set(['liquidation-fee', 'shortfall-payout']));
    expect(FUND_KINDS).toEqual(expect.arrayContaining([...new Set(journal.map((e) => e.kind))]));
    const s = statement!.statement;
    expect(s).toMatchObject({ entries: journal.length, reconciles: true, opening: 0n });
    const net = (kind: string) => s.kinds.find((k) => k.kind === kind)!.net;
    expect(net('liquidation-fee')).toBe(run.feesCollected);
    expect(-net('shortfall-payout')).toBe(run.insurancePaid);
    expect(s.totals.debit).toBe(s.totals.credit);
    // Two halves by time: together the whole, the first's closing the second's opening.
    expect(halves[0]!.statement.closing).toBe(halves[1]!.statement.opening);
    expect(halves[0]!.entries.length + halves[1]!.entries.length).toBe(journal.length);
    expect(halves.every((h) => h.statement.reconciles)).toBe(true);
  }, 120_000);
});

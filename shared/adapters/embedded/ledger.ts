import { givenBackProblem, givesBack, movedByItsPlan } from '../../domain/fund-statement.ts';
import { formatQuote, minBig } from '../../domain/units.ts';
import {
  type AccountBalance,
  type AppliedEntry,
  type AuditCheckpoint,
  type AuditToSave,
  ConditionFailedError,
  givesDrawBack,
  type JournalEntry,
  journalLimitProblem,
  journalRangeProblem,
  type Ledger,
  LedgerIdempotencyConflictError,
  type LedgerMovement,
  type MovementFence,
  MovementFencedError,
  movedSinceRead,
  movementProblem,
  UNINDEXED_LOOK_PAGE,
  type UnindexedEntries,
  unindexedLookProblem,
  whoMoved,
} from '../../ports/index.ts';
import { EmbeddedInputError, fire, getOrCreate, type HookRef, requireId } from './internal.ts';

/** Re-applying an idempotency key with a different amount: a caller bug, never a silent no-op. */
export { LedgerIdempotencyConflictError };

/**
 * Insurance-fund ledger: one balance item per account and an append-only journal. `apply` is atomic:
 *
 *   balanceAfter = balanceBefore + amount
 *   refused (ConditionFailedError) when amount < 0 and balanceAfter < floor          ('ledger/below-floor')
 *   for a debit with a drawWindow: drawn' = (windowStartMs > stored start ? 0 : drawn) - amount,
 *   refused when drawn' > cap                                                         ('ledger/draw-cap')
 *
 * A later window start opens a new window; an earlier one (a late retry) counts against the stored window,
 * the stricter reading, in the fund's favour (the AWS adapter's nextBalance does the same).
 *
 * Credits are never refused (the floor guards debits, per the port) and do not touch the draw window, except a
 * shortfall payout given back (kind SHORTFALL_PAYOUT_KIND, with a drawWindow): while its window start is the
 * stored one, drawn' = drawn - min(amount, drawn); another window's draws stay (the domain's creditBack).
 * A known (account, idempotencyKey) returns the original entry and changes nothing; with a different
 * amount it throws LedgerIdempotencyConflictError ('ledger/idempotency-conflict'). A new fee or draw given back
 * (`<key>:r<n>`) beyond what its plan moved before it is refused ('ledger/sign-against-kind'), unless its fence no
 * longer holds: then it is fenced. A new key whose fence no longer holds (the liquidation has moved past the version)
 * throws MovementFencedError ('ledger/fenced'), when the floor and the cap do not refuse it first. One with `expected`
 * applies only on exactly that sequence and balance ('ledger/moved-since-read').
 */
export class EmbeddedLedger implements Ledger {
  readonly #balances = new Map<string, AccountBalance>();
  readonly #journals = new Map<string, JournalEntry[]>();
  /** `${account}\u0000${idempotencyKey}` -> entry. */
  readonly #byKey = new Map<string, JournalEntry>();
  /** By account and reference, for entriesOf. */
  readonly #byReference = new Map<string, JournalEntry[]>();
  readonly #audits = new Map<string, AuditCheckpoint>();
  /** Sequences of entries journalAfter does not list, by account: AWS's entries without journalSequence (drills). */
  readonly #unindexed = new Map<string, Set<number>>();
  /**
   * Entries the index lists late, by account: sequence -> reads of journalAfter still to leave it out (AWS's index
   * lag: indexed, so no look finds them; drills).
   */
  readonly #lagging = new Map<string, Map<number, number>>();
  /** Accounts whose balance sequence was written outside the journal: their entries are no longer at n - 1. */
  readonly #renumbered = new Set<string>();
  /** Audit epochs begun so far (each restart begins one). */
  #epochs = 0;
  readonly #hook: HookRef;
  /** The liquidation's stored version, for fences (the same process's store: checked without yielding). */
  readonly #liquidationVersion: (id: string) => number | undefined;

  constructor(hook: HookRef = {}, liquidationVersion: (id: string) => number | undefined = () => undefined) {
    this.#hook = hook;
    this.#liquidationVersion = liquidationVersion;
  }

  async balance(account: string): Promise<AccountBalance> {
    return this.#balance(account);
  }

  async apply(movement: LedgerMovement): Promise<AppliedEntry> {
    checkMovement(movement);
    const { account, idempotencyKey, amount } = movement;
    const existing = this.#byKey.get(`${account}\u0000${idempotencyKey}`);
    if (existing) {
      if (existing.amount !== amount) {
        throw new LedgerIdempotencyConflictError(
          `ledger/idempotency-conflict: ${account} ${idempotencyKey} was applied with ${formatQuote(existing.amount)}, not ${formatQuote(amount)}`,
          existing.amount,
          amount,
        );
      }
      return { ...existing, replayed: true };
    }
    // As on AWS: a fee or a draw given back is one only within what its plan moved before it.
    if (givesBack(movement)) {
      const given = givenBackProblem(
        movement,
        movedByItsPlan(movement, this.#entriesOf(account, movement.reference)),
      );
      // A superseded plan's give-back (its liquidation planned again since, giving back under a later key) is fenced,
      // as AWS answers it: its delivery has nothing left to do, not a caller's bug to fail on.
      if (given && movement.fence) this.#checkFence(movement.fence, idempotencyKey);
      if (given) throw new EmbeddedInputError(`ledger/sign-against-kind: ${given}`);
    }
    const before = this.#balance(account);
    // First, as on AWS (nextBalance): a balance moved since the caller's check is refused whatever else holds.
    const moved = movedSinceRead(movement, before);
    if (moved) throw new ConditionFailedError(moved);
    const balanceAfter = before.balance + amount;
    let windowStartMs = before.windowStartMs;
    let windowDrawn = before.windowDrawn;
    if (amount < 0n) {
      if (balanceAfter < movement.floor) {
        throw new ConditionFailedError(
          `ledger/below-floor: ${account} would go to ${balanceAfter}, floor ${movement.floor}`,
        );
      }
      const window = movement.drawWindow;
      if (window) {
        const opensWindow = window.windowStartMs > before.windowStartMs;
        const drawn = (opensWindow ? 0n : before.windowDrawn) - amount;
        if (drawn > window.cap) {
          throw new ConditionFailedError(
            `ledger/draw-cap: ${account} would draw ${drawn} in the window, cap ${window.cap}`,
          );
        }
        if (opensWindow) windowStartMs = window.windowStartMs;
        windowDrawn = drawn;
      }
    } else if (givesDrawBack(movement, before.windowStartMs)) {
      windowDrawn -= minBig(amount, windowDrawn);
    }
    // After the floor and the cap, as on AWS: a refused debit never reaches the transaction that checks the fence.
    if (movement.fence) this.#checkFence(movement.fence, idempotencyKey);
    const entry = this.#append(movement, before, windowStartMs, windowDrawn);
    fire(this.#hook, 'ledger.apply');
    return entry;
  }

  /** The entry of `movement` on `before`, and the balance after it, stored. */
  #append(
    movement: HandWritten,
    before: AccountBalance,
    windowStartMs: number,
    windowDrawn: bigint,
  ): JournalEntry {
    const { account, idempotencyKey, amount } = movement;
    const balanceAfter = before.balance + amount;
    const sequence = before.sequence + 1;
    const entry: JournalEntry = Object.freeze({
      account,
      idempotencyKey,
      amount,
      balanceBefore: before.balance,
      balanceAfter,
      kind: movement.kind,
      reference: movement.reference,
      atMs: movement.atMs,
      sequence,
      ...whoMoved(movement),
    });
    this.#balances.set(
      account,
      Object.freeze({ account, balance: balanceAfter, sequence, windowStartMs, windowDrawn }),
    );
    getOrCreate(this.#journals, account, () => []).push(entry);
    this.#byKey.set(`${account}\u0000${idempotencyKey}`, entry);
    getOrCreate(this.#byReference, `${account}\u0000${movement.reference}`, () => []).push(entry);
    return entry;
  }

  /**
   * An entry written by hand, as a person's PutItem of a journal item and UpdateItem of the balance would on AWS: chained
   * on the balance, with none of apply's checks (its kind and sign as given). For drills and tests of what the reconcile
   * makes of a journal written outside Backstop (nothing in Backstop calls it).
   */
  writeEntryByHand(movement: HandWritten): JournalEntry {
    const before = this.#balance(movement.account);
    return this.#append(movement, before, before.windowStartMs, before.windowDrawn);
  }

  async journal(account: string): Promise<readonly JournalEntry[]> {
    // In sequence order, as the AWS ledger sorts it, once a balance written outside the journal numbers entries again.
    return [...(this.#journals.get(account) ?? [])].sort((a, b) => a.sequence - b.sequence);
  }

  async journalAfter(
    account: string,
    afterSequence: number,
    limit: number,
  ): Promise<readonly JournalEntry[]> {
    const problem = journalRangeProblem(afterSequence, limit);
    if (problem) throw new EmbeddedInputError(problem);
    const journal = this.#journals.get(account) ?? [];
    const hidden = this.#unindexed.get(account);
    const lagging = this.#lagging.get(account);
    if (lagging) return this.#listedLate(journal, lagging, afterSequence, limit, hidden);
    // Entries are appended in sequence order from 1, entry n at n - 1, until a balance written outside the journal
    // numbers them again: then by sequence, as the AWS index lists them (final46-renumbered-journal).
    if (!this.#renumbered.has(account)) {
      const start = Math.max(0, afterSequence);
      if (!hidden) return journal.slice(start, start + limit);
      return journal
        .slice(start)
        .filter((e) => !hidden.has(e.sequence))
        .slice(0, limit);
    }
    return journal
      .filter((e) => e.sequence > afterSequence && !hidden?.has(e.sequence))
      .sort((a, b) => a.sequence - b.sequence)
      .slice(0, limit);
  }

  async latestEntries(account: string, limit: number): Promise<readonly JournalEntry[]> {
    const problem = journalLimitProblem(limit);
    if (problem) throw new EmbeddedInputError(problem);
    const hidden = this.#unindexed.get(account);
    // As the AWS index lists them: by sequence (a balance set back numbers entries again), none left out of it.
    return (this.#journals.get(account) ?? [])
      .filter((e) => !hidden?.has(e.sequence))
      .sort((a, b) => b.sequence - a.sequence)
      .slice(0, limit);
  }

  async unindexedEntries(account: string, maxRead: number): Promise<UnindexedEntries> {
    const problem = unindexedLookProblem(maxRead);
    if (problem) throw new EmbeddedInputError(problem);
    const hidden = this.#unindexed.get(account) ?? new Set<number>();
    // As the AWS table holds the journal (`J#<idempotency key>`, ordered by its UTF-8 bytes) and its Query reads it:
    // by key, a page at a time, stopping after the first page that finds one (review46-look-agrees).
    const byKey = [...(this.#journals.get(account) ?? [])]
      .map((e) => ({ key: Buffer.from(e.idempotencyKey), sequence: e.sequence }))
      .sort((a, b) => Buffer.compare(a.key, b.key));
    let read = 0;
    const found: number[] = [];
    do {
      const page = byKey.slice(read, read + Math.min(UNINDEXED_LOOK_PAGE, maxRead - read));
      read += page.length;
      for (const { sequence } of page) if (hidden.has(sequence)) found.push(sequence);
    } while (read < byKey.length && found.length === 0 && read < maxRead);
    return {
      read,
      found: found.length,
      ...(found.length === 0 ? {} : { lowest: Math.min(...found) }),
      complete: read === byKey.length,
    };
  }

  /**
   * Entries left out of journalAfter's listing, as a table deployed before the index by sequence (session 27) holds
   * the entries written before it: for drills and tests of what the reconcile and a withdrawal make of it.
   */
  leaveOutOfJournalIndex(account: string, sequences: readonly number[]): void {
    const hidden = getOrCreate(this.#unindexed, account, () => new Set<number>());
    for (const sequence of sequences) hidden.add(sequence);
  }

  /**
   * Entries the index lists late: each left out of the next `reads` reads of journalAfter that reach it, then listed,
   * as AWS's index by sequence (a global secondary index) lists a new entry a moment after it commits, not always in
   * sequence order. Unlike leaveOutOfJournalIndex, they are indexed: no look for unindexed entries finds them. For
   * drills and tests of what the fund statement makes of an index that lags (nothing in Backstop calls it).
   */
  lagJournalIndex(account: string, sequences: readonly number[], reads: number): void {
    const late = getOrCreate(this.#lagging, account, () => new Map<number, number>());
    for (const sequence of sequences) late.set(sequence, reads);
  }

  /** journalAfter's listing while some entries lag: each reached by this read counts one read down. */
  #listedLate(
    journal: readonly JournalEntry[],
    lagging: Map<number, number>,
    afterSequence: number,
    limit: number,
    hidden: ReadonlySet<number> | undefined,
  ): JournalEntry[] {
    const listed: JournalEntry[] = [];
    const bySequence = [...journal].sort((a, b) => a.sequence - b.sequence);
    for (const e of bySequence) {
      if (listed.length === limit) break;
      if (e.sequence <= afterSequence || hidden?.has(e.sequence)) continue;
      const reads = lagging.get(e.sequence) ?? 0;
      if (reads > 0) {
        lagging.set(e.sequence, reads - 1);
        continue;
      }
      listed.push(e);
    }
    return listed;
  }

  /** Every entry listed by journalAfter again, as `backstop fund index-journal` does on AWS. */
  indexJournal(account: string): { readonly entries: number; readonly indexed: number } {
    const indexed = this.#unindexed.get(account)?.size ?? 0;
    this.#unindexed.delete(account);
    return { entries: this.#journals.get(account)?.length ?? 0, indexed };
  }

  async auditCheckpoint(account: string): Promise<AuditCheckpoint | undefined> {
    return this.#audits.get(account);
  }

  async saveAuditCheckpoint(
    account: string,
    audit: AuditToSave,
    from: AuditCheckpoint | undefined | 'restart',
  ): Promise<void> {
    const stored = this.#audits.get(account);
    // As on AWS: carried on only from the stored epoch and not behind it; a restart or a first one begins an epoch.
    if (from !== 'restart' && !carriesOn(stored, from, audit.sequence)) return;
    const epoch = from === 'restart' || from === undefined ? `epoch-${++this.#epochs}` : from.epoch;
    const { sequence, sum, minBalance, chart } = audit;
    this.#audits.set(
      account,
      Object.freeze({ sequence, sum, minBalance, epoch, ...(chart === undefined ? {} : { chart }) }),
    );
  }

  /**
   * The balance item written outside the journal, as an UpdateItem by hand or a restore of that item alone would on
   * AWS: for drills and tests of what the reconcile and a withdrawal make of it (nothing in Backstop calls it).
   */
  writeBalanceOutsideJournal(account: string, change: Partial<Omit<AccountBalance, 'account'>>): void {
    if (change.sequence !== undefined && change.sequence !== this.#balance(account).sequence)
      this.#renumbered.add(account);
    this.#balances.set(account, Object.freeze({ ...this.#balance(account), ...change, account }));
  }

  async entriesOf(account: string, reference: string): Promise<readonly JournalEntry[]> {
    return this.#entriesOf(account, reference);
  }

  #entriesOf(account: string, reference: string): JournalEntry[] {
    const entries = this.#byReference.get(`${account}\u0000${reference}`) ?? [];
    return entries.filter((e) => e.idempotencyKey.startsWith(`${reference}:`));
  }

  #checkFence({ liquidationId, version }: MovementFence, idempotencyKey: string): void {
    const stored = this.#liquidationVersion(liquidationId);
    if (stored !== version) {
      throw new MovementFencedError(
        `ledger/fenced: ${idempotencyKey} was planned on ${liquidationId} at version ${version}, now ${stored ?? 'absent'}`,
      );
    }
  }

  #balance(account: string): AccountBalance {
    return (
      this.#balances.get(account) ?? { account, balance: 0n, sequence: 0, windowStartMs: 0, windowDrawn: 0n }
    );
  }
}

/** What an entry written by hand gives (writeEntryByHand). */
type HandWritten = Pick<
  LedgerMovement,
  | 'account'
  | 'idempotencyKey'
  | 'amount'
  | 'kind'
  | 'reference'
  | 'atMs'
  | 'actor'
  | 'invocationId'
  | 'declaredOperator'
>;

/** A checkpoint carried on from `from` may replace `stored`: none then and none now, or the same epoch, not behind. */
function carriesOn(
  stored: AuditCheckpoint | undefined,
  from: AuditCheckpoint | undefined,
  sequence: number,
): boolean {
  if (from === undefined || stored === undefined) return from === stored;
  return stored.epoch === from.epoch && stored.sequence <= sequence;
}

function checkMovement(m: LedgerMovement): void {
  requireId(m?.account, 'ledger');
  if (typeof m.idempotencyKey !== 'string' || m.idempotencyKey.length === 0) {
    throw new EmbeddedInputError('ledger/bad-idempotency-key: must be a non-empty string');
  }
  // As on AWS: a version is never negative.
  if (m.fence && (!m.fence.liquidationId || !Number.isSafeInteger(m.fence.version) || m.fence.version < 0)) {
    throw new EmbeddedInputError('ledger/bad-fence: a liquidation id and a version (an integer >= 0)');
  }
  const problem = movementProblem(m);
  if (problem) throw new EmbeddedInputError(problem);
}

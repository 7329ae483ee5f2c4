import { randomUUID } from 'node:crypto';
import {
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { givenBackProblem, givesBack, movedByItsPlan } from '../../domain/fund-statement.ts';
import { formatQuote, minBig } from '../../domain/units.ts';
import {
  type AccountBalance,
  type AppliedEntry,
  type AuditCheckpoint,
  type AuditToSave,
  type ChartFindings,
  ConditionFailedError,
  type CrashHook,
  givesDrawBack,
  type JournalEntry,
  journalLimitProblem,
  journalRangeProblem,
  type Ledger,
  LedgerIdempotencyConflictError,
  type LedgerMovement,
  MovementFencedError,
  movedSinceRead,
  movementProblem,
  UNINDEXED_LOOK_PAGE,
  type UnindexedEntries,
  unindexedLookProblem,
  whoMoved,
} from '../../ports/index.ts';
import { JOURNAL_SEQUENCE_INDEX, LEDGER_AUDIT_KEY_PREFIX } from '../../topology.ts';
import {
  AdapterInputError,
  cancellationCodes,
  type Item,
  isConditionalCheckFailed,
  N,
  noCrash,
  readBig,
  readInt,
  readS,
  S,
} from './codec.ts';
import { fencedPut, refusingNewerWriter, schemaStamp } from './writer-schema.ts';

/**
 * Ledger table, pk/sk. Balance item `ACCOUNT#<account>` / `BALANCE`; journal entries `ACCOUNT#<account>` /
 * `J#<idempotencyKey>`, immutable. One movement is one TransactWriteItems: the journal put (absent key) and the
 * balance put conditional on the exact sequence and balance read, so the floor and draw-cap checks made on
 * that read hold at commit time. A lost race re-reads and re-checks. A key already journaled (its put's
 * condition fails, or the check refuses it now) returns its entry (same amount) or throws
 * LedgerIdempotencyConflictError (another amount: a caller bug). A movement's fence is a ConditionCheck of its
 * liquidation's version in the liquidations table, in the same transaction: one that fails answers that movement
 * with MovementFencedError (unless its key was applied before) and the others are planned again. A fee or a draw
 * given back (`<key>:r<n>`: a settlement planned again) is judged on its liquidation's entries, read after the balance
 * its transaction is conditioned on (so exactly as they are at commit): one beyond what its plan moved is refused, or
 * fenced when its fence no longer holds (a superseded plan's).
 * Entries also carry `journalSequence`, the sort key of the sparse index JOURNAL_SEQUENCE_INDEX that a reconcile
 * reads from its checkpoint, `AUDIT#<account>` / `JOURNAL`, on (never the whole journal).
 */

/** Re-applying an idempotency key with a different amount: a caller bug, never a silent no-op. */
export { LedgerIdempotencyConflictError };

/** Too many concurrent writers on one account: transient, the caller's retry will run it again. */
export class LedgerContentionError extends Error {
  override readonly name = 'LedgerContentionError';
}

/** Attempts of one movement under contention (every losing attempt saw another movement commit). */
const MAX_ATTEMPTS = 20;
const MAX_BACKOFF_MS = 400;
const BALANCE_SK = 'BALANCE';
const JOURNAL_PREFIX = 'J#';
const AUDIT_SK = 'JOURNAL';
const auditPkOf = (account: string): string => `${LEDGER_AUDIT_KEY_PREFIX}${account}`;

/**
 * The condition of a checkpoint carried on from `from` (the one its run read): still none stored, or still of
 * from's epoch and not further along than `sequence`.
 */
function carriesOn(from: AuditCheckpoint | undefined, sequence: number) {
  if (from === undefined) return { ConditionExpression: 'attribute_not_exists(pk)' };
  const sameEpoch = from.epoch === '' ? 'attribute_not_exists(epoch)' : 'epoch = :epoch';
  return {
    ConditionExpression: `${sameEpoch} AND #seq <= :seq`,
    ExpressionAttributeNames: { '#seq': 'sequence' },
    ExpressionAttributeValues: {
      ':seq': N(sequence),
      ...(from.epoch === '' ? {} : { ':epoch': S(from.epoch) }),
    },
  };
}

const pkOf = (account: string): string => `ACCOUNT#${account}`;

/** A checkpoint's chart findings as its item's attributes (each a number; first and last only when found). */
const chartItem = (chart: ChartFindings): Item => ({
  chartCount: N(chart.count),
  chartCountedAfter: N(chart.countedAfter),
  ...(chart.first === undefined ? {} : { chartFirst: N(chart.first) }),
  ...(chart.last === undefined ? {} : { chartLast: N(chart.last) }),
});

const chartFromItem = (item: Item): ChartFindings => ({
  count: readInt(item, 'chartCount'),
  countedAfter: readInt(item, 'chartCountedAfter'),
  ...(item.chartFirst === undefined ? {} : { first: readInt(item, 'chartFirst') }),
  ...(item.chartLast === undefined ? {} : { last: readInt(item, 'chartLast') }),
});

const emptyBalance = (account: string): AccountBalance => ({
  account,
  balance: 0n,
  sequence: 0,
  windowStartMs: 0,
  windowDrawn: 0n,
});

const balanceFromItem = (account: string, item: Item): AccountBalance => ({
  account,
  balance: readBig(item, 'balance'),
  sequence: readInt(item, 'sequence'),
  windowStartMs: readInt(item, 'windowStartMs'),
  windowDrawn: readBig(item, 'windowDrawn'),
});

const entryItem = (e: JournalEntry): Item => ({
  pk: S(pkOf(e.account)),
  sk: S(`${JOURNAL_PREFIX}${e.idempotencyKey}`),
  account: S(e.account),
  idempotencyKey: S(e.idempotencyKey),
  amount: N(e.amount),
  balanceBefore: N(e.balanceBefore),
  balanceAfter: N(e.balanceAfter),
  kind: S(e.kind),
  reference: S(e.reference),
  atMs: N(e.atMs),
  sequence: N(e.sequence),
  journalSequence: N(e.sequence),
  ...(e.actor === undefined ? {} : { actor: S(e.actor) }),
  ...(e.invocationId === undefined ? {} : { invocationId: S(e.invocationId) }),
  ...(e.declaredOperator === undefined ? {} : { declaredOperator: S(e.declaredOperator) }),
  ...schemaStamp(),
});

const entryFromItem = (item: Item): JournalEntry => ({
  // Each absent on an entry written before it was journaled (actor: session 41; the other two: session 51).
  ...(item.actor === undefined ? {} : { actor: readS(item, 'actor') }),
  ...(item.invocationId === undefined ? {} : { invocationId: readS(item, 'invocationId') }),
  ...(item.declaredOperator === undefined ? {} : { declaredOperator: readS(item, 'declaredOperator') }),
  account: readS(item, 'account'),
  idempotencyKey: readS(item, 'idempotencyKey'),
  amount: readBig(item, 'amount'),
  balanceBefore: readBig(item, 'balanceBefore'),
  balanceAfter: readBig(item, 'balanceAfter'),
  kind: readS(item, 'kind'),
  reference: readS(item, 'reference'),
  atMs: readInt(item, 'atMs'),
  sequence: readInt(item, 'sequence'),
});

/**
 * The balance after `movement` on `current`, or the reason it is refused.
 * Debits only: after = before + amount >= floor; in the draw window, drawn' = drawn + |amount| <= cap, where
 * a window start later than the stored one opens a new window (drawn restarts at 0) and an earlier one counts
 * against the stored window (the stricter reading, in the fund's favour).
 * A movement with `expected` is refused ('ledger/moved-since-read') unless `current` is at exactly its sequence and
 * balance; the put's condition on that read makes it exact at commit.
 * Otherwise credits are never refused. A shortfall payout given back (kind SHORTFALL_PAYOUT_KIND, with a drawWindow) whose
 * window start is the stored one gives its draw back: drawn' = drawn - min(amount, drawn); another window's
 * draws stay. The balance put is conditional on the sequence read, so `drawn` is exact at commit: never below 0.
 */
export function nextBalance(
  current: AccountBalance,
  movement: LedgerMovement,
): AccountBalance | { readonly refused: string } {
  const moved = movedSinceRead(movement, current);
  if (moved) return { refused: moved };
  const balance = current.balance + movement.amount;
  if (movement.amount >= 0n) {
    const windowDrawn = givesDrawBack(movement, current.windowStartMs)
      ? current.windowDrawn - minBig(movement.amount, current.windowDrawn)
      : current.windowDrawn;
    return { ...current, balance, sequence: current.sequence + 1, windowDrawn };
  }
  if (balance < movement.floor) return { refused: 'ledger/below-floor' };
  let { windowStartMs, windowDrawn } = current;
  if (movement.drawWindow) {
    if (movement.drawWindow.windowStartMs > windowStartMs) {
      windowStartMs = movement.drawWindow.windowStartMs;
      windowDrawn = 0n;
    }
    windowDrawn += -movement.amount;
    if (windowDrawn > movement.drawWindow.cap) return { refused: 'ledger/draw-cap' };
  }
  return { ...current, balance, sequence: current.sequence + 1, windowStartMs, windowDrawn };
}

/** The first entry of a re-applied key, if it moved the same amount. */
function sameMovement(entry: JournalEntry, movement: LedgerMovement): AppliedEntry {
  if (entry.amount !== movement.amount) {
    throw new LedgerIdempotencyConflictError(
      `ledger/idempotency-conflict: ${movement.account} ${movement.idempotencyKey} was applied with ${formatQuote(entry.amount)}, not ${formatQuote(movement.amount)}`,
      entry.amount,
      movement.amount,
    );
  }
  return { ...entry, replayed: true };
}

/** A movement waiting for its account's next transaction, and its caller. */
interface Pending {
  readonly movement: LedgerMovement;
  readonly known: AccountBalance | undefined;
  readonly resolve: (entry: AppliedEntry) => void;
  readonly reject: (error: unknown) => void;
}

/** Items one transaction carries at most: journal puts, the balance put and one fence check per liquidation. */
const MAX_TRANSACTION_ITEMS = 100;
/** Movements one transaction carries at most (unfenced: the balance put and one journal put each). */
export const MAX_MOVEMENTS_PER_TRANSACTION = 50;

export class DynamoLedger implements Ledger {
  /**
   * Movements of each account waiting for its transaction in flight to end (group commit). Concurrent
   * settlements in one process (a batch's records run in parallel; the local runner hosts every function in
   * one process) would otherwise race on the balance item, or take turns at one round trip each: those that
   * arrive while one transaction is in flight go together in the next, applied in arrival order as one after
   * the other would be. Correctness never rests on it (the conditions do).
   */
  readonly #waiting = new Map<string, Pending[]>();
  /** The highest sequence of each account this process has read or written: a `known` below it is stale. */
  readonly #seen = new Map<string, number>();

  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
    private readonly crash: CrashHook = noCrash,
    /** Where fences are checked (pk `id`, attribute `version`); a fenced movement without it is refused. */
    private readonly liquidationsTable?: string,
  ) {}

  async balance(account: string): Promise<AccountBalance> {
    const out = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { pk: S(pkOf(account)), sk: S(BALANCE_SK) },
        ConsistentRead: true,
      }),
    );
    const balance = out.Item ? balanceFromItem(account, out.Item) : emptyBalance(account);
    this.#saw(account, balance.sequence);
    return balance;
  }

  apply(movement: LedgerMovement, known?: AccountBalance): Promise<AppliedEntry> {
    if (!movement.account) return Promise.reject(new AdapterInputError('ledger/empty-account'));
    if (!movement.idempotencyKey)
      return Promise.reject(new AdapterInputError('ledger/empty-idempotency-key'));
    const fence = movement.fence;
    if (fence && !this.liquidationsTable)
      return Promise.reject(new AdapterInputError('ledger/fence-without-liquidations-table'));
    // Checked here: a bad movement in a group commit would fail the other callers' movements with it.
    if (fence && (!fence.liquidationId || !Number.isSafeInteger(fence.version) || fence.version < 0))
      return Promise.reject(new AdapterInputError('ledger/bad-fence: a liquidation id and a version'));
    const malformed = movementProblem(movement);
    if (malformed) return Promise.reject(new AdapterInputError(malformed));
    return new Promise((resolve, reject) => {
      const pending: Pending = { movement, known, resolve, reject };
      const waiting = this.#waiting.get(movement.account);
      if (waiting) waiting.push(pending);
      else {
        this.#waiting.set(movement.account, [pending]);
        void this.#drain(movement.account);
      }
    });
  }

  #saw(account: string, sequence: number): void {
    if (sequence > (this.#seen.get(account) ?? -1)) this.#seen.set(account, sequence);
  }

  /** Commits the account's waiting movements, a group per transaction, until none is left. */
  async #drain(account: string): Promise<void> {
    // Movements asked for together (in the same turn of the event loop) go in the first transaction.
    await Promise.resolve();
    for (;;) {
      const waiting = this.#waiting.get(account)!;
      if (waiting.length === 0) {
        this.#waiting.delete(account);
        return;
      }
      await this.#applyGroup(account, takeGroup(waiting));
    }
  }

  /**
   * Applies a group of movements of one account in one transaction: planned in order on one read of the
   * balance, the first movement's read when it is fresh. Every movement's caller gets its entry or its error.
   */
  async #applyGroup(account: string, group: Pending[]): Promise<void> {
    let open = group;
    const first = open[0]!.known;
    // The caller's read serves the first attempt unless this process has seen the account move on since.
    let hint =
      first?.account === account && first.sequence >= (this.#seen.get(account) ?? -1) ? first : undefined;
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS && open.length > 0; attempt++) {
        // No read of the keys first: the journal puts' conditions detect a key already applied, so a first
        // application costs one read and one transaction (or none and one, on a caller's fresh read).
        const onHint = hint !== undefined;
        const current = hint ?? (await this.balance(account));
        hint = undefined;
        // Read after the balance the transaction is conditioned on: any entry committed since fails that condition.
        const plans = await this.#plansOf(account, open);
        const { entries, refused, after } = planGroup(open, current, plans);
        // Judged on the caller's read, which may be stale: judge again on a fresh one.
        if (refused.length > 0 && onHint) continue;
        if (entries.length > 0) {
          const outcome = await this.commit(entries, current, after);
          if (outcome !== 'committed') {
            // Keys applied before (their puts' conditions failed) return their first entries. The others,
            // refused ones included, are planned again: they were judged after movements that did not apply.
            const answered = new Set<Pending>();
            for (const index of outcome.duplicates) {
              const { pending } = entries[index]!;
              if (await this.#answerIfApplied(pending)) answered.add(pending);
            }
            for (const { pending } of entries) {
              const fence = pending.movement.fence;
              if (!fence || answered.has(pending) || !outcome.fenced.has(fence.liquidationId)) continue;
              // Not applied before (its put's condition would have failed too): its plan is gone, refuse it.
              if (!(await this.#answerIfApplied(pending))) {
                pending.reject(
                  new MovementFencedError(
                    `ledger/fenced: ${pending.movement.idempotencyKey} was planned on ${fence.liquidationId} at version ${fence.version}, which has moved on`,
                  ),
                );
              }
              answered.add(pending);
            }
            open = open.filter((pending) => !answered.has(pending));
            // A stale read of the caller's, or keys found applied: read again at once, no crowd to wait for.
            if (onHint || !outcome.lostRace) continue;
            // Lost the race on the balance item: full-jitter backoff, then re-read and re-check. The base is
            // long enough to spread a crowd of containers (bursts of 50 on the emulator: settle p99 17 s at
            // 5 ms, 3.8 s at 25).
            const capMs = Math.min(MAX_BACKOFF_MS, 25 * 2 ** attempt);
            await new Promise((resolve) => setTimeout(resolve, Math.random() * capMs));
            continue;
          }
          this.#saw(account, after.sequence);
          this.crash('ledger.apply');
          for (const { pending, entry } of entries) pending.resolve(entry);
        }
        // The refusals were judged after exactly the movements that committed before them. A debit applied
        // before may be refused now (the fund has moved on): it is still a success.
        for (const { pending, reason, malformed } of refused) {
          if (await this.#answerIfApplied(pending)) continue;
          if (malformed && (await this.#answerIfFenced(pending))) continue;
          pending.reject(malformed ? new AdapterInputError(reason) : new ConditionFailedError(reason));
        }
        return;
      }
      const error = new LedgerContentionError(`ledger/contention: ${account} after ${MAX_ATTEMPTS} attempts`);
      for (const pending of open) pending.reject(error);
    } catch (error) {
      // A failed call (or a crash injected after the commit) fails every movement still open: the callers'
      // retries apply them again, once each by their keys.
      for (const pending of open) pending.reject(error);
    }
  }

  /**
   * The entries of each reference a give-back among `open` is judged on (givenBackProblem): one strongly consistent
   * Query of that liquidation's keys (entriesOf), only for a group holding a fee or a draw given back (a settlement
   * planned again); none for any other.
   */
  async #plansOf(account: string, open: readonly Pending[]): Promise<Map<string, readonly JournalEntry[]>> {
    const plans = new Map<string, readonly JournalEntry[]>();
    for (const { movement } of open)
      if (givesBack(movement) && !plans.has(movement.reference))
        plans.set(movement.reference, await this.entriesOf(account, movement.reference));
    return plans;
  }

  /**
   * When a give-back refused beyond what its plan moved is fenced on a version its liquidation has moved past (a
   * superseded plan's, the liquidation planned again since and giving back under a later key), answers its caller
   * with MovementFencedError, as its transaction would have, and returns true: its delivery has nothing left to do,
   * where a refusal as a caller's bug fails it and records `ledger/sign-against-kind` on the liquidation. One read of
   * the liquidation's version, only on such a refusal; a failed read is its caller's error too.
   */
  async #answerIfFenced(pending: Pending): Promise<boolean> {
    const { fence, idempotencyKey } = pending.movement;
    if (!fence) return false;
    try {
      const out = await this.dynamo.send(
        new GetItemCommand({
          TableName: this.liquidationsTable!,
          Key: { id: S(fence.liquidationId) },
          ProjectionExpression: '#version',
          ExpressionAttributeNames: { '#version': 'version' },
          ConsistentRead: true,
        }),
      );
      const stored = out.Item?.version?.N;
      if (stored === String(fence.version)) return false;
      pending.reject(
        new MovementFencedError(
          `ledger/fenced: ${idempotencyKey} was planned on ${fence.liquidationId} at version ${fence.version}, which has moved on`,
        ),
      );
    } catch (error) {
      pending.reject(error);
    }
    return true;
  }

  /**
   * When the movement's key was applied before, answers its caller with the first entry (or the conflict of
   * another amount) and returns true; a failed look-up is its caller's error too.
   */
  async #answerIfApplied(pending: Pending): Promise<boolean> {
    const { movement } = pending;
    try {
      const applied = await this.entry(movement.account, movement.idempotencyKey);
      if (!applied) return false;
      pending.resolve(sameMovement(applied, movement));
    } catch (error) {
      pending.reject(error);
    }
    return true;
  }

  /** Entries of an account in sequence order. */
  async journal(account: string): Promise<readonly JournalEntry[]> {
    return this.entriesWithKeyPrefix(account, '');
  }

  async journalAfter(
    account: string,
    afterSequence: number,
    limit: number,
  ): Promise<readonly JournalEntry[]> {
    const problem = journalRangeProblem(afterSequence, limit);
    if (problem) throw new AdapterInputError(problem);
    return this.sequenceIndexEntries(limit, {
      KeyConditionExpression: 'pk = :pk AND journalSequence > :after',
      ExpressionAttributeValues: { ':pk': S(pkOf(account)), ':after': N(afterSequence) },
    });
  }

  async latestEntries(account: string, limit: number): Promise<readonly JournalEntry[]> {
    const problem = journalLimitProblem(limit);
    if (problem) throw new AdapterInputError(problem);
    // The index backwards from its highest sequence: `limit` items read, not the journal.
    return this.sequenceIndexEntries(limit, {
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': S(pkOf(account)) },
      ScanIndexForward: false,
    });
  }

  /**
   * Up to `limit` journal entries from the sequence index, in its order: an index read (never strongly consistent),
   * whose page may come back short of the limit before the end.
   */
  private async sequenceIndexEntries(
    limit: number,
    query: Pick<
      QueryCommandInput,
      'KeyConditionExpression' | 'ExpressionAttributeValues' | 'ScanIndexForward'
    >,
  ): Promise<JournalEntry[]> {
    const entries: JournalEntry[] = [];
    let start: Item | undefined;
    do {
      const out = await this.dynamo.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: JOURNAL_SEQUENCE_INDEX,
          ...query,
          Limit: limit - entries.length,
          ...(start === undefined ? {} : { ExclusiveStartKey: start }),
        }),
      );
      entries.push(...(out.Items ?? []).map(entryFromItem));
      start = out.LastEvaluatedKey;
    } while (start !== undefined && entries.length < limit);
    return entries;
  }

  async unindexedEntries(account: string, maxRead: number): Promise<UnindexedEntries> {
    const problem = unindexedLookProblem(maxRead);
    if (problem) throw new AdapterInputError(problem);
    let read = 0;
    let found = 0;
    let lowest: number | undefined;
    let start: Item | undefined;
    // The journal in the table's own order (by key, not sequence), as indexJournal reads it; only the entries
    // without journalSequence come back, each page's Limit counting those read.
    do {
      const out = await this.dynamo.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :journal)',
          FilterExpression: 'attribute_not_exists(journalSequence)',
          ProjectionExpression: '#seq',
          ExpressionAttributeNames: { '#seq': 'sequence' },
          ExpressionAttributeValues: { ':pk': S(pkOf(account)), ':journal': S(JOURNAL_PREFIX) },
          Limit: Math.min(UNINDEXED_LOOK_PAGE, maxRead - read),
          // Strong: an entry indexed by index-journal a moment ago is not found again.
          ConsistentRead: true,
          ...(start === undefined ? {} : { ExclusiveStartKey: start }),
        }),
      );
      read += out.ScannedCount ?? 0;
      for (const item of out.Items ?? []) {
        found++;
        const sequence = readInt(item, 'sequence');
        if (lowest === undefined || sequence < lowest) lowest = sequence;
      }
      start = out.LastEvaluatedKey;
    } while (start !== undefined && found === 0 && read < maxRead);
    return { read, found, ...(lowest === undefined ? {} : { lowest }), complete: start === undefined };
  }

  async auditCheckpoint(account: string): Promise<AuditCheckpoint | undefined> {
    const out = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { pk: S(auditPkOf(account)), sk: S(AUDIT_SK) },
        ConsistentRead: true,
      }),
    );
    if (!out.Item) return undefined;
    return {
      sequence: readInt(out.Item, 'sequence'),
      sum: readBig(out.Item, 'sum'),
      minBalance: readBig(out.Item, 'minBalance'),
      // A checkpoint stored before epochs has none: its audit goes on as epoch ''.
      epoch: out.Item.epoch?.S ?? '',
      // One stored before session 52 counted none of the chart's findings.
      ...(out.Item.chartCountedAfter === undefined ? {} : { chart: chartFromItem(out.Item) }),
    };
  }

  async saveAuditCheckpoint(
    account: string,
    audit: AuditToSave,
    from: AuditCheckpoint | undefined | 'restart',
  ): Promise<void> {
    // A restart, or a first checkpoint, begins an epoch: a fresh id, so no read is needed (the function may only
    // put its checkpoint).
    const epoch = from === 'restart' || from === undefined ? randomUUID() : from.epoch;
    const checkpoint = {
      TableName: this.table,
      Item: {
        pk: S(auditPkOf(account)),
        sk: S(AUDIT_SK),
        sequence: N(audit.sequence),
        sum: N(audit.sum),
        minBalance: N(audit.minBalance),
        ...(epoch === '' ? {} : { epoch: S(epoch) }),
        ...(audit.chart === undefined ? {} : chartItem(audit.chart)),
        ...schemaStamp(),
      },
    };
    // Only a first checkpoint is a creation; a restart's or a carried-on one's may replace a stored one.
    const put =
      from === undefined
        ? { ...checkpoint, ...carriesOn(from, audit.sequence) }
        : fencedPut(from === 'restart' ? checkpoint : { ...checkpoint, ...carriesOn(from, audit.sequence) });
    try {
      await refusingNewerWriter(() => this.dynamo.send(new PutItemCommand(put)), [put]);
    } catch (error) {
      // A restart stored a checkpoint since this run read its own, or a concurrent run a further one: keep it.
      if (!isConditionalCheckFailed(error)) throw error;
    }
  }

  async entriesOf(account: string, reference: string): Promise<readonly JournalEntry[]> {
    const entries = await this.entriesWithKeyPrefix(account, `${reference}:`);
    return entries.filter((e) => e.reference === reference);
  }

  /** The account's entries whose idempotency keys begin with `prefix`, strongly read, in sequence order. */
  private async entriesWithKeyPrefix(account: string, prefix: string): Promise<JournalEntry[]> {
    const entries: JournalEntry[] = [];
    let start: Item | undefined;
    do {
      const out = await this.dynamo.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': S(pkOf(account)), ':prefix': S(`${JOURNAL_PREFIX}${prefix}`) },
          ConsistentRead: true,
          ...(start === undefined ? {} : { ExclusiveStartKey: start }),
        }),
      );
      entries.push(...(out.Items ?? []).map(entryFromItem));
      start = out.LastEvaluatedKey;
    } while (start !== undefined);
    return entries.sort((a, b) => a.sequence - b.sequence);
  }

  private async entry(account: string, idempotencyKey: string): Promise<JournalEntry | undefined> {
    const out = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.table,
        Key: { pk: S(pkOf(account)), sk: S(`${JOURNAL_PREFIX}${idempotencyKey}`) },
        ConsistentRead: true,
      }),
    );
    return out.Item ? entryFromItem(out.Item) : undefined;
  }

  private async commit(
    entries: readonly { readonly entry: JournalEntry; readonly pending: Pending }[],
    current: AccountBalance,
    next: AccountBalance,
  ): Promise<
    | 'committed'
    | { readonly duplicates: number[]; readonly lostRace: boolean; readonly fenced: ReadonlySet<string> }
  > {
    // One check per fenced liquidation (a transaction names an item once; takeGroup keeps one version of each).
    const fences = new Map<string, number>();
    for (const { pending } of entries) {
      const fence = pending.movement.fence;
      if (fence) fences.set(fence.liquidationId, fence.version);
    }
    const fenceIds = [...fences.keys()];
    const balanceItem: Item = {
      pk: S(pkOf(next.account)),
      sk: S(BALANCE_SK),
      balance: N(next.balance),
      sequence: N(next.sequence),
      windowStartMs: N(next.windowStartMs),
      windowDrawn: N(next.windowDrawn),
      ...schemaStamp(),
    };
    const balancePut =
      current.sequence === 0
        ? { TableName: this.table, Item: balanceItem, ConditionExpression: 'attribute_not_exists(pk)' }
        : fencedPut({
            TableName: this.table,
            Item: balanceItem,
            ConditionExpression: '#seq = :seq AND balance = :before',
            ExpressionAttributeNames: { '#seq': 'sequence' },
            ExpressionAttributeValues: { ':seq': N(current.sequence), ':before': N(current.balance) },
          });
    // The balance put's index in the transaction, after the journal puts: a newer writer's balance is refused.
    const puts = [...entries.map(() => undefined), balancePut];
    try {
      await refusingNewerWriter(
        () =>
          this.dynamo.send(
            new TransactWriteItemsCommand({
              // The SDK's retry of a commit whose answer was lost is then answered as the commit it is, not as keys
              // found applied (which would say `replayed` of money this call moved; a review in session 37).
              ClientRequestToken: randomUUID(),
              TransactItems: [
                ...entries.map(({ entry }) => ({
                  Put: {
                    TableName: this.table,
                    Item: entryItem(entry),
                    ConditionExpression: 'attribute_not_exists(sk)',
                  },
                })),
                { Put: balancePut },
                ...fenceIds.map((id) => ({
                  ConditionCheck: {
                    TableName: this.liquidationsTable!,
                    Key: { id: S(id) },
                    ConditionExpression: '#version = :version',
                    ExpressionAttributeNames: { '#version': 'version' },
                    ExpressionAttributeValues: { ':version': N(fences.get(id)!) },
                  },
                })),
              ],
            }),
          ),
        puts,
      );
      return 'committed';
    } catch (error) {
      const codes = cancellationCodes(error);
      if (!codes) throw error;
      const duplicates = entries.flatMap((_, i) => (codes[i] === 'ConditionalCheckFailed' ? [i] : []));
      const lostRace =
        codes[entries.length] === 'ConditionalCheckFailed' || codes.includes('TransactionConflict');
      const fenced = new Set(
        fenceIds.filter((_, i) => codes[entries.length + 1 + i] === 'ConditionalCheckFailed'),
      );
      if (duplicates.length === 0 && !lostRace && fenced.size === 0) throw error;
      return { duplicates, lostRace, fenced };
    }
  }
}

/**
 * The next group of an account's waiting movements, taken from `waiting`: the first ones in arrival order, at
 * most MAX_MOVEMENTS_PER_TRANSACTION and what fits in one transaction with their fence checks, up to the first
 * repeated idempotency key (a transaction writes an item once) or a second version of one fenced liquidation.
 * The repeat and everything after it wait for the next group, so each is still judged in arrival order: a
 * repeat finds its first entry there, or, if the first copy was refused, is judged after the ones before it.
 */
function takeGroup(waiting: Pending[]): Pending[] {
  const keys = new Set<string>();
  const fences = new Map<string, number>();
  let size = 0;
  let items = 1; // the balance put
  while (size < waiting.length && size < MAX_MOVEMENTS_PER_TRANSACTION) {
    const { idempotencyKey: key, fence } = waiting[size]!.movement;
    if (keys.has(key)) break;
    const fenced = fence ? fences.get(fence.liquidationId) : undefined;
    if (fence && fenced !== undefined && fenced !== fence.version) break;
    const adds = fence && fenced === undefined ? 2 : 1;
    if (items + adds > MAX_TRANSACTION_ITEMS) break;
    keys.add(key);
    if (fence) fences.set(fence.liquidationId, fence.version);
    items += adds;
    size += 1;
  }
  return waiting.splice(0, size);
}

/**
 * The group's movements on `current`, one after the other as separate transactions would apply them: the
 * entries of those allowed (each on the balance the ones before it leave) and the refused ones, which change
 * nothing (`malformed`: a give-back beyond what its plan moved, judged on `plans`, its reference's entries as read, and
 * the group's before it). `after`: the balance once the entries are applied.
 */
function planGroup(
  group: readonly Pending[],
  current: AccountBalance,
  plans: ReadonlyMap<string, readonly JournalEntry[]>,
) {
  const entries: { readonly pending: Pending; readonly entry: JournalEntry }[] = [];
  const refused: { readonly pending: Pending; readonly reason: string; readonly malformed?: true }[] = [];
  let after = current;
  for (const pending of group) {
    const { movement } = pending;
    const plan = plans.get(movement.reference);
    // A key already journaled is answered by its put's condition (its entry, or a conflict), not judged again.
    if (plan && !plan.some((e) => e.idempotencyKey === movement.idempotencyKey)) {
      const planned = entries.filter((e) => e.entry.reference === movement.reference).map((e) => e.entry);
      const given = givenBackProblem(movement, movedByItsPlan(movement, [...plan, ...planned]));
      if (given) {
        refused.push({ pending, reason: `ledger/sign-against-kind: ${given}`, malformed: true });
        continue;
      }
    }
    const next = nextBalance(after, movement);
    if ('refused' in next) {
      refused.push({ pending, reason: next.refused });
      continue;
    }
    entries.push({
      pending,
      entry: {
        account: movement.account,
        idempotencyKey: movement.idempotencyKey,
        amount: movement.amount,
        balanceBefore: after.balance,
        balanceAfter: next.balance,
        kind: movement.kind,
        reference: movement.reference,
        atMs: movement.atMs,
        sequence: next.sequence,
        ...whoMoved(movement),
      },
    });
    after = next;
  }
  return { entries, refused, after };
}

/**
 * Gives an account's journal entries written before the index by sequence existed (session 27) their
 * `journalSequence`, so the reconcile's index sees them. Once per table; a re-run, or one racing another, changes
 * nothing (each update is conditional on the attribute's absence). Reads the account's entries a page at a time.
 */
export async function indexJournal(
  dynamo: DynamoDBClient,
  table: string,
  account: string,
): Promise<{ readonly entries: number; readonly indexed: number }> {
  let entries = 0;
  let indexed = 0;
  let start: Item | undefined;
  do {
    const out = await dynamo.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :journal)',
        ProjectionExpression: 'pk, sk, #seq, journalSequence',
        ExpressionAttributeNames: { '#seq': 'sequence' },
        ExpressionAttributeValues: { ':pk': S(pkOf(account)), ':journal': S(JOURNAL_PREFIX) },
        ...(start === undefined ? {} : { ExclusiveStartKey: start }),
      }),
    );
    for (const item of out.Items ?? []) {
      entries++;
      if (item.journalSequence !== undefined) continue;
      try {
        await dynamo.send(
          new UpdateItemCommand({
            TableName: table,
            Key: { pk: item.pk!, sk: item.sk! },
            UpdateExpression: 'SET journalSequence = #seq',
            ConditionExpression: 'attribute_exists(sk) AND attribute_not_exists(journalSequence)',
            ExpressionAttributeNames: { '#seq': 'sequence' },
          }),
        );
        indexed++;
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
      }
    }
    start = out.LastEvaluatedKey;
  } while (start !== undefined);
  return { entries, indexed };
}

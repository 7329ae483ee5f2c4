import {
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import {
  type AccountBalance,
  ConditionFailedError,
  type CrashHook,
  type JournalEntry,
  type Ledger,
  LedgerIdempotencyConflictError,
  type LedgerMovement,
} from '../../ports/index.ts';
import {
  AdapterInputError,
  cancellationCodes,
  type Item,
  N,
  noCrash,
  readBig,
  readInt,
  readS,
  S,
} from './codec.ts';

/**
 * Ledger table, pk/sk. Balance item `ACCOUNT#<account>` / `BALANCE`; journal entries `ACCOUNT#<account>` /
 * `J#<idempotencyKey>`, immutable. One movement is one TransactWriteItems: the journal put (absent key) and the
 * balance put conditional on the exact sequence and balance read, so the floor and draw-cap checks made on
 * that read hold at commit time. A lost race re-reads and re-checks. A key already journaled (its put's
 * condition fails, or the check refuses it now) returns its entry (same amount) or throws
 * LedgerIdempotencyConflictError (another amount: a caller bug).
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

const pkOf = (account: string): string => `ACCOUNT#${account}`;

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
});

const entryFromItem = (item: Item): JournalEntry => ({
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
 */
export function nextBalance(
  current: AccountBalance,
  movement: LedgerMovement,
): AccountBalance | { readonly refused: string } {
  const balance = current.balance + movement.amount;
  if (movement.amount >= 0n) return { ...current, balance, sequence: current.sequence + 1 };
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
function sameMovement(entry: JournalEntry, movement: LedgerMovement): JournalEntry {
  if (entry.amount !== movement.amount) {
    throw new LedgerIdempotencyConflictError(
      `ledger/idempotency-conflict: ${movement.account} ${movement.idempotencyKey} was applied with ${entry.amount}, not ${movement.amount}`,
    );
  }
  return entry;
}

/**
 * Runs the movements of one account one after the other within this process. Concurrent settlements in one
 * process (a batch's records run in parallel, and the local runner hosts every function in one process) would
 * otherwise race on the balance item, and all but one lose each round: waiting here costs one read and one
 * transaction each instead of a storm of retries. Correctness never rests on it (the conditions do).
 */
class AccountTurns {
  readonly #tails = new Map<string, Promise<void>>();

  run<T>(account: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(account) ?? Promise.resolve();
    const result = previous.then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(account, tail);
    void tail.then(() => {
      if (this.#tails.get(account) === tail) this.#tails.delete(account);
    });
    return result;
  }
}

export class DynamoLedger implements Ledger {
  readonly #turns = new AccountTurns();
  /** The highest sequence of each account this process has read or written: a `known` below it is stale. */
  readonly #seen = new Map<string, number>();

  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
    private readonly crash: CrashHook = noCrash,
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

  async apply(movement: LedgerMovement, known?: AccountBalance): Promise<JournalEntry> {
    if (!movement.account) throw new AdapterInputError('ledger/empty-account');
    if (!movement.idempotencyKey) throw new AdapterInputError('ledger/empty-idempotency-key');
    return this.#turns.run(movement.account, () => this.applyNow(movement, known));
  }

  #saw(account: string, sequence: number): void {
    if (sequence > (this.#seen.get(account) ?? -1)) this.#seen.set(account, sequence);
  }

  private async applyNow(movement: LedgerMovement, known?: AccountBalance): Promise<JournalEntry> {
    // The caller's read serves the first attempt unless this process has seen the account move on since
    // (movements that took their turn before this one): then it is stale for sure, and read again.
    let hint =
      known?.account === movement.account && known.sequence >= (this.#seen.get(movement.account) ?? -1)
        ? known
        : undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // No read of the key first: the journal put's condition detects a key already applied, so a first
      // application costs one read and one transaction (or none and one, on a caller's fresh read).
      const onHint = hint !== undefined;
      const current = hint ?? (await this.balance(movement.account));
      hint = undefined;
      const next = nextBalance(current, movement);
      // Judged on the caller's read, which may be stale: judge again on a fresh one.
      if ('refused' in next && onHint) continue;
      if ('refused' in next) {
        // A debit applied before may be refused now (the fund has moved on): it is still a success.
        const existing = await this.entry(movement.account, movement.idempotencyKey);
        if (existing) return sameMovement(existing, movement);
        throw new ConditionFailedError(next.refused);
      }
      const entry: JournalEntry = {
        account: movement.account,
        idempotencyKey: movement.idempotencyKey,
        amount: movement.amount,
        balanceBefore: current.balance,
        balanceAfter: next.balance,
        kind: movement.kind,
        reference: movement.reference,
        atMs: movement.atMs,
        sequence: next.sequence,
      };
      const outcome = await this.commit(entry, current, next);
      if (outcome === 'committed') {
        this.#saw(movement.account, next.sequence);
        this.crash('ledger.apply');
        return entry;
      }
      if (outcome === 'duplicate') {
        const first = await this.entry(movement.account, movement.idempotencyKey);
        if (first) return sameMovement(first, movement);
      }
      // The caller's read was stale: read now, no crowd to wait for.
      if (onHint) continue;
      // Lost the race on the balance item: full-jitter backoff, then re-read and re-check. The base is long
      // enough to spread a crowd of settlements (bursts of 50 on the emulator: settle p99 17 s at 5 ms, 3.8 s at 25).
      const capMs = Math.min(MAX_BACKOFF_MS, 25 * 2 ** attempt);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * capMs));
    }
    throw new LedgerContentionError(`ledger/contention: ${movement.account} after ${MAX_ATTEMPTS} attempts`);
  }

  /** Entries of an account in sequence order. */
  async journal(account: string): Promise<readonly JournalEntry[]> {
    const entries: JournalEntry[] = [];
    let start: Item | undefined;
    do {
      const out = await this.dynamo.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': S(pkOf(account)), ':prefix': S(JOURNAL_PREFIX) },
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
    entry: JournalEntry,
    current: AccountBalance,
    next: AccountBalance,
  ): Promise<'committed' | 'duplicate' | 'conflict'> {
    const balanceItem: Item = {
      pk: S(pkOf(entry.account)),
      sk: S(BALANCE_SK),
      balance: N(next.balance),
      sequence: N(next.sequence),
      windowStartMs: N(next.windowStartMs),
      windowDrawn: N(next.windowDrawn),
    };
    const balanceGuard =
      current.sequence === 0
        ? { ConditionExpression: 'attribute_not_exists(pk)' }
        : {
            ConditionExpression: '#seq = :seq AND balance = :before',
            ExpressionAttributeNames: { '#seq': 'sequence' },
            ExpressionAttributeValues: { ':seq': N(current.sequence), ':before': N(current.balance) },
          };
    try {
      await this.dynamo.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.table,
                Item: entryItem(entry),
                ConditionExpression: 'attribute_not_exists(sk)',
              },
            },
            { Put: { TableName: this.table, Item: balanceItem, ...balanceGuard } },
          ],
        }),
      );
      return 'committed';
    } catch (error) {
      const codes = cancellationCodes(error);
      if (!codes) throw error;
      if (codes[0] === 'ConditionalCheckFailed') return 'duplicate';
      if (codes[1] === 'ConditionalCheckFailed' || codes.includes('TransactionConflict')) return 'conflict';
      throw error;
    }
  }
}

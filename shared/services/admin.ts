import { z } from 'zod';
import {
  ConfigError,
  lotSizeOf,
  type MarketConfig,
  marketConfig,
  quoteCurrency,
  type RiskConfig,
} from '../domain/config.ts';
import {
  entriesWord,
  INDEX_JOURNAL_RUN,
  type JournalAudit,
  type Reconciliation,
  unindexedAmong,
} from '../domain/journal-audit.ts';
import { isLiquidatable } from '../domain/margin.ts';
import { fillsKeptOnReregister } from '../domain/provider-fills.ts';
import { oldNumberingEndsAt } from '../domain/tick.ts';
import {
  absBig,
  type BaseE8,
  floorToLot,
  formatBase,
  formatPrice,
  formatQuote,
  formatQuoteGrouped,
  MAX_SCALED_DIGITS,
  PPM_SCALE,
  type PriceE8,
  parseBase,
  parsePpm,
  parsePrice,
  parseQuote,
  type QuoteE6,
  UnitError,
} from '../domain/units.ts';
import {
  type AccountBalance,
  type AppliedEntry,
  type AuditCheckpoint,
  type AuditToSave,
  ConditionFailedError,
  highestSequence,
  type JournalEntry,
  type Ledger,
  LedgerIdempotencyConflictError,
  type LedgerMovement,
  MAX_DECLARED_OPERATOR,
  type MarketRepository,
  type PositionRecord,
  type PositionRepository,
  type ProviderRecord,
  type ProviderRepository,
  silentTelemetry,
  type Telemetry,
  type UnindexedEntries,
} from '../ports/index.ts';
import { INSURANCE_ACCOUNT } from './context.ts';
import { type ResendDeps, rebaseTakingOver, withLiquidationPrice } from './margin-check.ts';
import { type JournalReader, reconcileAccount } from './reconcile.ts';
import { wakeForNewBids } from './registration-wake.ts';
import type { WakeDeps } from './wake.ts';

/** Positions one reindexPositions request reads and may write (one page: bounded work per request). */
export const REINDEX_PAGE_MAX = 1000;

/** Admin requests (IAM-only function): every field validated, amounts as decimal strings. */
const id = z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/, 'letters, digits and . _ : - only (1-100)');
const decimal = z.string().max(80);
/**
 * Control, format (bidi), private-use and unassigned characters, line and paragraph separators: what would forge or
 * reorder a line the name is shown on.
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Cn}\u2028\u2029]/u;
/**
 * Who a fund movement's request says asks: journaled as declaredOperator, UNVERIFIED (anyone who may invoke the admin
 * function writes it; CloudTrail names who did, by the journaled invocation id). Trimmed, 1 to MAX_DECLARED_OPERATOR
 * printable characters, the first a letter or a digit: `fund statement --csv` writes it in a cell of its own, which a
 * spreadsheet would run as a formula were it to begin with = + - @ (review51-admin-operator-formula).
 */
export const declaredOperatorSchema = z
  .string({
    error: (issue) =>
      issue.input === undefined
        ? 'required for a deposit or withdrawal: who asks (a name or an IAM ARN, journaled as declared, unverified)'
        : 'must be a string',
  })
  .trim()
  .min(1, 'blank: say who asks (a name or an IAM ARN)')
  .max(MAX_DECLARED_OPERATOR, `at most ${MAX_DECLARED_OPERATOR} characters`)
  .refine(
    (v) => !UNPRINTABLE.test(v),
    'printable characters only (no control, format or separator character)',
  )
  .refine(
    // One reason a value: a blank or unprintable one is refused above.
    (v) => v === '' || UNPRINTABLE.test(v) || /^[\p{L}\p{N}]/u.test(v),
    'must begin with a letter or a digit (a spreadsheet reads a cell beginning with = + - @ as a formula)',
  );
export const adminRequestSchema = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('deposit'),
    amount: decimal,
    idempotencyKey: id,
    operator: declaredOperatorSchema,
  }),
  z.strictObject({
    action: z.literal('withdraw'),
    amount: decimal,
    idempotencyKey: id,
    operator: declaredOperatorSchema,
  }),
  z.strictObject({
    action: z.literal('registerProvider'),
    id,
    /** A new provider's capital; for one registered before, it keeps its own unless this says otherwise. */
    capital: decimal.optional(),
    /** The provider's version as the caller read it: a change made on an older read is refused. */
    expectedVersion: z.number().int().min(0).optional(),
    maxDiscount: decimal,
    /** Largest lot per auction, in base units of each market it quotes, unless maxLotBySymbol says otherwise. */
    maxLot: decimal,
    /** Markets whose lot differs from maxLot (base units differ from market to market: 10 ETH, 0.5 BTC). */
    maxLotBySymbol: z
      .unknown()
      // A parsed event's own "__proto__" key: zod's record would drop it without a word.
      .refine((raw) => typeof raw !== 'object' || raw === null || !Object.hasOwn(raw, '__proto__'), {
        message: '"__proto__" is not a market',
      })
      .pipe(z.record(z.string().max(20), decimal))
      .optional(),
    symbols: z
      .array(z.string().max(20))
      .min(1)
      .max(20)
      .refine((symbols) => new Set(symbols).size === symbols.length, 'a symbol is listed twice'),
  }),
  z.strictObject({
    action: z.literal('openPosition'),
    // A liquidation's ledger keys start with its position's id and a colon, the operator's with "admin:": a
    // position named "admin" or "admin:..." would share the operator's keys (a deposit keyed "x:0:fee" is the fee
    // of position "admin:x").
    id: id.refine(
      (v) => v !== 'admin' && !v.startsWith('admin:'),
      '"admin" and "admin:..." are reserved: the fund\'s operator keys begin with "admin:"',
    ),
    traderId: id,
    symbol: z.string().max(20),
    side: z.enum(['LONG', 'SHORT']),
    size: decimal,
    entryPrice: decimal,
    collateral: decimal,
  }),
  // A price feed that restarted and counts its sequence from the start again (its ticks refused as out of order, or
  // held as tick/sequence-behind once stamped past the cut-off).
  z.strictObject({
    action: z.literal('resumeFeed'),
    symbol: z.string().max(20),
    fromSequence: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
  // One page of a market side's open positions priced again with this deployment's risk configuration.
  z.strictObject({
    action: z.literal('reindexPositions'),
    symbol: z.string().max(20),
    side: z.enum(['LONG', 'SHORT']),
    // A cursor holds a key per index shard still being read: up to 16 of them, ids of up to 100 characters.
    cursor: z.string().max(8000).optional(),
    limit: z.number().int().min(1).max(REINDEX_PAGE_MAX).optional(),
  }),
]);
export type AdminRequest = z.input<typeof adminRequestSchema>;
export const ADMIN_ACTIONS: readonly string[] = adminRequestSchema.options.map((o) => o.shape.action.value);

export class AdminInputError extends Error {
  override readonly name = 'AdminInputError';
}

export interface AdminDeps extends WakeDeps, ResendDeps {
  readonly ledger: Ledger;
  readonly providers: ProviderRepository;
  readonly positions: PositionRepository;
  readonly markets: MarketRepository;
  readonly config: RiskConfig;
  readonly nowMs: () => number;
  /**
   * A registration's wake counts in AuctionsWoken and AuctionWakeFailures by market, as a tick's and a spent
   * provider's do (the admin function's Powertools; the CLI, run from an operator's shell, its own).
   */
  readonly telemetry: Telemetry;
  /**
   * Who the fund's deposits and withdrawals are journaled as moved by (LedgerMovement.actor): the operator CLI's
   * caller, as STS names it. Never taken from a request, which anyone who may invoke the function writes (its
   * `operator` is journaled apart, as declared: LedgerMovement.declaredOperator).
   */
  readonly actor?: string;
  /**
   * The admin function's Lambda request id (LedgerMovement.invocationId): CloudTrail's Invoke data event of that
   * request names the principal who invoked it. Absent on the CLI's path, which names its caller in `actor`.
   */
  readonly invocationId?: string;
  /**
   * How a withdrawal's check waits before reading again a journal entry the index does not list yet (its lag):
   * real time unless given (tests give one that does not wait).
   */
  readonly pause?: (ms: number) => Promise<void>;
}

export type AdminResult =
  | {
      readonly ok: true;
      readonly entry?: JournalEntry;
      /** deposit, withdraw: the key was applied before; `entry` is that first application, nothing moved now. */
      readonly alreadyApplied?: boolean;
      readonly id?: string;
      /** registerProvider: sleeping auctions woken in this call to see the new terms. */
      readonly woken?: number;
      /**
       * registerProvider: markets with more sleepers than one call wakes (REGISTRATION_WAKES_PER_PART): the rest are
       * woken by continuation messages the auction function handles, after this answer.
       */
      readonly wakeContinues?: readonly string[];
      /** registerProvider: why the wake failed (the provider is registered; sleepers see it when they step). */
      readonly wakeError?: string;
      /** resumeFeed: the last accepted tick's sequence before and after. */
      readonly sequence?: { readonly before: number; readonly after: number };
      /**
       * resumeFeed: the tick of the old numbering that was still starting liquidations, taken over, and how many
       * of the liquidations it started were re-sent (those still QUEUED).
       */
      readonly tookOver?: { readonly sequence: number; readonly resent: number };
      /**
       * reindexPositions: positions read and priced again, how many of them were rewritten, and the cursor of
       * the next page (absent: the side is done).
       */
      readonly reindexed?: { readonly checked: number; readonly updated: number; readonly cursor?: string };
    }
  | { readonly ok: false; readonly reason: string };

/** A provider's lots in the markets where they differ from its maxLot: each must be a market it quotes. */
function lotsBySymbol(
  requested: Readonly<Record<string, string>> | undefined,
  symbols: readonly string[],
  config: RiskConfig,
): Record<string, BaseE8> | undefined {
  if (requested === undefined) return undefined;
  const lots: Record<string, BaseE8> = {};
  for (const [name, lot] of Object.entries(requested)) {
    const { symbol } = marketConfig(config, name);
    if (!symbols.includes(symbol))
      throw new AdminInputError(
        `admin/invalid: maxLotBySymbol: ${symbol} is not one of the provider's symbols (${symbols.join(', ')})`,
      );
    lots[symbol] = parseBase(lot, `maxLotBySymbol.${symbol}`, { positive: true });
  }
  return Object.keys(lots).length > 0 ? lots : undefined;
}

/**
 * The capital a registration leaves a provider with. Auctions use a provider's capital at any time, so an operator's
 * read of it is stale by the time a change lands: restating it would give back what fills used since ("money
 * from nothing"). A change keeps the stored capital unless it names the version it read (then it is refused if
 * anything changed the provider since); a new provider must state its capital.
 */
function providerCapital(
  id: string,
  existing: ProviderRecord | undefined,
  stated: QuoteE6 | undefined,
  expectedVersion: number | undefined,
): QuoteE6 {
  if (!existing) {
    if (expectedVersion !== undefined)
      throw new AdminInputError(
        `admin/concurrent-change: provider ${id} does not exist (expected version ${expectedVersion})`,
      );
    if (stated === undefined)
      throw new AdminInputError(`admin/invalid: capital: a new provider (${id}) needs its capital`);
    return stated;
  }
  if (expectedVersion !== undefined && expectedVersion !== existing.version) {
    throw new AdminInputError(
      `admin/concurrent-change: provider ${id} is at version ${existing.version}, not ${expectedVersion} (auctions may have used its capital): read it again`,
    );
  }
  if (stated === undefined) return existing.capital;
  if (expectedVersion === undefined) {
    throw new AdminInputError(
      `admin/invalid: capital: provider ${id} exists (version ${existing.version}, capital ${formatQuote(existing.capital)} unused) and auctions use its capital: if this registered it before, it stands (leave capital out to change its other terms); to set its capital, restate it with expectedVersion (the version you read)`,
    );
  }
  return stated;
}

/** Validates and applies one admin request; bad input is refused with a reason and changes nothing. */
export async function handleAdmin(input: unknown, deps: AdminDeps): Promise<AdminResult> {
  const parsed = adminRequestSchema.safeParse(input);
  if (!parsed.success) {
    return {
      ok: false,
      reason: `admin/invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    };
  }
  try {
    return await apply(parsed.data, deps);
  } catch (error) {
    if (error instanceof UnitError || error instanceof AdminInputError || error instanceof ConfigError) {
      return {
        ok: false,
        reason: error.message.startsWith('admin/') ? error.message : `admin/invalid-value: ${error.message}`,
      };
    }
    if (error instanceof LedgerIdempotencyConflictError) {
      return { ok: false, reason: keyReused(parsed.data, error, deps.config) };
    }
    if (error instanceof ConditionFailedError) {
      const { data } = parsed;
      // A withdrawal the floor refused: said with what was asked and what the fund could give, in its currency.
      if (data.action === 'withdraw' && error.message.startsWith('ledger/below-floor'))
        return {
          ok: false,
          reason: `admin/insufficient-funds: ledger/below-floor: withdrawing ${amountOf(data.amount, deps.config)} would take the fund below its floor${await withdrawable(deps)}; nothing moved`,
        };
      // A refused movement of the fund is most often one the floor refuses; anything else changed under the request.
      const moves = data.action === 'deposit' || data.action === 'withdraw';
      return {
        ok: false,
        reason: moves
          ? `admin/insufficient-funds or concurrent change: ${error.message}${data.action === 'withdraw' ? await withdrawable(deps) : ''}; nothing moved`
          : `admin/concurrent-change: ${error.message} (it changed since it was read: read it again and retry)`,
      };
    }
    throw error;
  }
}

/** An amount as fund and status show it (grouped, never rounded), in the configuration's quote currency. */
const grouped = (value: QuoteE6, config: RiskConfig): string =>
  `${formatQuoteGrouped(value)} ${quoteCurrency(config)}`;

/** A request's amount (already parsed once, so valid) for a reason. */
const amountOf = (amount: string, config: RiskConfig): string =>
  grouped(parseQuote(amount, 'amount'), config);

/**
 * A fund key used again with another amount or direction: what it moved, what was asked, that nothing moved now and
 * what to do (the ledger's own message, in signed fixed-point, when its amounts are unknown).
 */
function keyReused(
  request: z.output<typeof adminRequestSchema>,
  error: LedgerIdempotencyConflictError,
  config: RiskConfig,
): string {
  const movement = (signed: QuoteE6) =>
    `${signed < 0n ? 'a withdrawal' : 'a deposit'} of ${grouped(absBig(signed), config)}`;
  const key = 'idempotencyKey' in request ? request.idempotencyKey : '';
  const what =
    error.applied === undefined || error.asked === undefined
      ? error.message
      : `key ${key} already moved ${movement(error.applied)}, not ${movement(error.asked)}`;
  return `admin/idempotency-key-reused: ${what}; nothing moved (a key moves the fund once: a new movement needs a new key)`;
}

/** What the fund holds above its floor, for a refused withdrawal's reason (nothing when it cannot be read). */
async function withdrawable(deps: AdminDeps): Promise<string> {
  try {
    const { balance } = await deps.ledger.balance(INSURANCE_ACCOUNT);
    const { floor } = deps.config.insurance;
    const room = balance > floor ? balance - floor : 0n;
    const q = (v: QuoteE6) => grouped(v, deps.config);
    return ` (balance ${q(balance)}, floor ${q(floor)}: at most ${q(room)} can be withdrawn)`;
  } catch {
    return '';
  }
}

/**
 * Entries past ledger-reconcile's checkpoint a withdrawal's check reads at most (20 pages of the journal's index,
 * a second or two): the scheduled run (every 5 minutes, 100,000 entries at most) keeps the rest audited. Past it the
 * withdrawal is not judged, and refused.
 */
export const WITHDRAWAL_AUDIT_MAX_ENTRIES = 20_000;
/** Checks a withdrawal makes at most while movements keep landing between its check and its write. */
export const WITHDRAWAL_CHECKS = 10;

/**
 * A withdrawal, only while the fund's balance reconciles with its journal (withdraw46-unreconciled), and written
 * on exactly the balance checked (LedgerMovement.expected): a balance that changed between the check and the write,
 * by a movement or by hand, refuses the write, and the check is made again on what moved since.
 */
async function checkedWithdrawal(movement: LedgerMovement, deps: AdminDeps): Promise<AppliedEntry> {
  let audited: JournalAudit | undefined;
  for (let check = 0; check < WITHDRAWAL_CHECKS; check++) {
    const checked = await checkFund(deps.ledger, audited, deps.pause);
    const { balance, audit } = checked;
    const refusal = withdrawalRefusal(checked, quoteCurrency(deps.config));
    if (refusal !== undefined) {
      // This withdrawal's key applied before (its answer lost, run again): its first entry; the key moves nothing now.
      const applied = await deps.ledger.entriesOf(INSURANCE_ACCOUNT, 'admin');
      if (applied.some((e) => e.idempotencyKey === movement.idempotencyKey))
        return deps.ledger.apply(movement);
      throw new AdminInputError(refusal.reason);
    }
    try {
      const expected = { sequence: balance.sequence, balance: balance.balance };
      // Stamped at its write, not before its checks: a statement closes a quiet period by time on how soon an entry
      // commits after its stamp (SETTLED_AFTER_MS; review48-statement-withdraw-stamp).
      return await deps.ledger.apply({ ...movement, atMs: deps.nowMs(), expected }, balance);
    } catch (error) {
      if (!(error instanceof ConditionFailedError) || !error.message.startsWith('ledger/moved-since-read'))
        throw error;
      // The prefix just checked stands (entries are immutable): the next check reads only what moved since.
      audited = audit;
    }
  }
  throw new AdminInputError(
    `admin/fund-busy: the fund moved between its journal's check and the withdrawal ${WITHDRAWAL_CHECKS} times in a row; nothing moved: run it again with the same key`,
  );
}

/**
 * The fund's balance judged against its journal as ledger-reconcile judges it, from its checkpoint (or from
 * `from`, a prefix this withdrawal audited already), reading WITHDRAWAL_AUDIT_MAX_ENTRIES at most; nothing stored.
 * An entry the index does not show even after the waits is looked for in the journal itself (as many entries at
 * most): one there that the index lacks is a journal to index, not a break (withdraw46-not-indexed).
 */
async function checkFund(
  ledger: Ledger,
  from: JournalAudit | undefined,
  pause?: (ms: number) => Promise<void>,
  waitedFor?: number,
  lookedBefore?: LookMade,
  auditedBefore?: AuditMade,
) {
  let read: AccountBalance | undefined;
  let reused = false;
  // Read before the balance, as reconcileAccount reads it (its `auditCheckpoint` below answers with what is decided
  // here): the prefix an earlier check audited past it, while it is still the checkpoint stored, is gone on from.
  const checkpoint = from === undefined ? await ledger.auditCheckpoint(INSURANCE_ACCOUNT) : undefined;
  const resumed = from === undefined ? resumable(auditedBefore, checkpoint) : undefined;
  /** Where the audit this check goes on from ends (undefined: ledger-reconcile has stored no checkpoint). */
  const start = from === undefined ? checkpoint?.sequence : from.sequence;
  /** Entries past `start` the resumed prefix audited already: counted as read, as a check from `start` reads them. */
  const skipped = resumed === undefined ? 0 : resumed.sequence - (start ?? 0);
  const reader: JournalReader = {
    balance: async (account) => {
      read = await ledger.balance(account);
      return read;
    },
    journalAfter: (account, after, limit) => ledger.journalAfter(account, after, limit),
    // Asked only for a fee or a draw given back among the entries read (a settlement planned again: rare).
    entriesOf: (account, reference) => ledger.entriesOf(account, reference),
    // Asked only on a missing entry: its cost (a read of the journal itself) is never a withdrawal's that goes.
    // An earlier check's look is reused while the journal has not changed (status47-look-remembered).
    unindexedEntries: async (account, maxRead) => {
      if (
        lookedBefore !== undefined &&
        (await lookStands(ledger, lookedBefore, read!.sequence, lookedBefore.missing))
      ) {
        reused = true;
        return lookedBefore.look;
      }
      return ledger.unindexedEntries(account, maxRead);
    },
    auditCheckpoint: async () =>
      from !== undefined
        ? { ...from, epoch: '' }
        : resumed !== undefined
          ? { ...resumed, epoch: checkpoint?.epoch ?? '' }
          : checkpoint,
    saveAuditCheckpoint: async () => {},
  };
  // Silent: the reconcile's metrics and alarms are ledger-reconcile's runs'.
  const report = await reconcileAccount(reader, INSURANCE_ACCOUNT, silentTelemetry, {
    from: 'checkpoint',
    // As many past `start` as a check from it reads, what the resumed prefix audited counted in.
    maxEntries: WITHDRAWAL_AUDIT_MAX_ENTRIES - skipped,
    // Not the reader's: `read` stays the balance judged, the one the withdrawal is written on (`expected`).
    balanceAgain: (account) => ledger.balance(account),
    ...(pause === undefined ? {} : { pause }),
    ...(waitedFor === undefined ? {} : { waitedFor }),
  });
  // The look reused was made for another missing entry: judged again on a look of its own.
  if (reused && report.missing !== lookedBefore!.missing)
    return checkFund(ledger, from, pause, waitedFor, undefined, auditedBefore);
  // A balance set back below the prefix resumed (by hand): judged from the checkpoint, as a check without it judges.
  // And nothing missing past it: only a check from the checkpoint says the journal whole, an entry lost behind the
  // prefix meanwhile found (review48-resumed-reconciled).
  if (resumed !== undefined && (read!.sequence < resumed.sequence || report.missing === undefined))
    return checkFund(ledger, from, pause, waitedFor, lookedBefore);
  const audit = { sequence: report.auditedThrough, sum: report.journalSum, minBalance: report.minBalance };
  // Judged as ledger-reconcile judges it (judgeReconciliation, in reconcileAccount): the same verdict.
  const { verdict, look } = report;
  return {
    balance: read!,
    verdict,
    audit,
    // The verdict's: entries the chart of accounts refuses are ledger-reconcile's to page, not a withdrawal's refusal.
    problemCount: report.problemCount - report.chartProblems,
    /** Entries this check read past where its audit started (a resumed prefix's counted in). */
    read: report.entries + skipped,
    start,
    ownPrefix: from !== undefined,
    missing: report.missing,
    look,
    /**
     * The entries the chart of accounts refuses, as ledger-reconcile's checkpoint counted them and this check found
     * past it (through its clean prefix): what `backstop status` says of them, reading nothing more.
     */
    chart: report.chart,
    /** Where the next check of a withdrawalChecker may go on from. */
    audited: { checkpoint, clean: { ...report.clean, chart: report.chart } },
  };
}

/**
 * An audit a check made, with the checkpoint it began at (withdrawalChecker): its clean prefix (no break in it:
 * one with breaks is read again, so they are found again) stands while the journal has only grown, entries being
 * immutable (status48-journal-remembered).
 */
interface AuditMade {
  readonly checkpoint: AuditCheckpoint | undefined;
  /** With the chart's findings through it (the checkpoint's and the check's). */
  readonly clean: AuditToSave;
}

/**
 * The prefix an earlier check audited, when a check may go on from it: the checkpoint stored is still the one it
 * began at (ledger-reconcile storing another, or a restart, is judged afresh from that one), and it reaches past it.
 */
function resumable(
  before: AuditMade | undefined,
  checkpoint: AuditCheckpoint | undefined,
): AuditToSave | undefined {
  if (before === undefined || before.clean.sequence <= (checkpoint?.sequence ?? 0)) return undefined;
  const same = (a: AuditCheckpoint | undefined, b: AuditCheckpoint | undefined) =>
    a === b ||
    (a !== undefined &&
      b !== undefined &&
      a.epoch === b.epoch &&
      a.sequence === b.sequence &&
      a.sum === b.sum &&
      a.minBalance === b.minBalance);
  return same(before.checkpoint, checkpoint) ? before.clean : undefined;
}

/** A look for entries left out of the index, and the journal it was made on (withdrawalChecker). */
interface LookMade {
  readonly look: UnindexedEntries;
  readonly balanceSequence: number;
  readonly missing: number;
}

/**
 * Whether a look made by an earlier check still tells what the journal holds (status47-look-remembered): no entry
 * written since (the balance's entry, each entry commits with it), the same entry missing, and the lowest entry it
 * found left out of the index still left out (one read of the index: index-journal, run since, lists it). A look
 * reads up to 20,000 entries of the journal, strongly consistent, to find what only a new entry or index-journal
 * changes.
 */
async function lookStands(
  ledger: Ledger,
  before: LookMade | undefined,
  balanceSequence: number,
  missing: number,
): Promise<boolean> {
  if (before === undefined || before.balanceSequence !== balanceSequence || before.missing !== missing)
    return false;
  const { lowest } = before.look;
  if (lowest === undefined) return true;
  const [next] = await ledger.journalAfter(INSURANCE_ACCOUNT, lowest - 1, 1);
  return next?.sequence !== lowest;
}

/** The fund as a withdrawal's check judged it (FundCheck.verdict), with what its refusal says. */
export type FundCheck = Awaited<ReturnType<typeof checkFund>>;

/**
 * The fund judged as a withdrawal now would judge it, from ledger-reconcile's checkpoint: what `backstop status`
 * shows, by the withdrawal's own check (withdraw46-status-refused).
 */
export const checkFundForWithdrawal = (ledger: Ledger): Promise<FundCheck> => checkFund(ledger, undefined);

/**
 * checkFundForWithdrawal for a caller that makes it again and again (`backstop status --watch`, every few seconds):
 * an entry the last check waited for and did not find is not waited for again. Those waits (6.35 s) are for an
 * index's lag; a lost entry, or a journal not indexed, lasts, and held every refresh of the operator's screen that
 * long (review46-status-watch). A new missing entry is waited for as a withdrawal waits. Its look for entries left
 * out of the index is made again only once the journal has changed (lookStands: status47-look-remembered). While an
 * entry is missing, a check goes on from where the last one's audit stopped, clean, before it (resumable), not from
 * ledger-reconcile's checkpoint, which cannot pass the missing entry either (status48-journal-remembered).
 */
export function withdrawalChecker(
  pause?: (ms: number) => Promise<void>,
): (ledger: Ledger) => Promise<FundCheck> {
  let waitedFor: number | undefined;
  let looked: LookMade | undefined;
  let audited: AuditMade | undefined;
  return async (ledger) => {
    const checked = await checkFund(ledger, undefined, pause, waitedFor, looked, audited);
    waitedFor = checked.missing;
    // Kept only while an entry is missing, where each check read the journal from the checkpoint up to it (20,000
    // entries at most) to stop there again; otherwise ledger-reconcile's checkpoint moves every few minutes and a check
    // reads what came since: an entry lost behind the last read is found, as a check from the checkpoint finds it.
    audited = checked.missing === undefined ? undefined : checked.audited;
    looked =
      checked.look === undefined || checked.missing === undefined
        ? undefined
        : { look: checked.look, balanceSequence: checked.balance.sequence, missing: checked.missing };
    return checked;
  };
}

/** The code of a withdrawal's refusal for the journal, by what the check found. */
const REFUSAL_CODE = {
  unreconciled: 'admin/fund-not-reconciled',
  'not-audited': 'admin/fund-not-audited',
  'not-indexed': 'admin/fund-not-indexed',
} as const;

/**
 * Why the journal refuses a withdrawal on this check: its code and its reason (which begins with the code),
 * amounts in `quote`; undefined when it does not (the floor may still).
 */
export function withdrawalRefusal(
  checked: FundCheck,
  quote: string,
): { readonly code: string; readonly reason: string } | undefined {
  const { verdict } = checked;
  if (verdict.reconciled) return undefined;
  const code = REFUSAL_CODE[verdict.reason];
  return { code, reason: `${code}: ${notReconciledReason(verdict, checked, quote)}` };
}

/** Problems a refusal names (the reconcile's log and `backstop status` list them all). */
const PROBLEMS_NAMED = 3;

/** Why a withdrawal is refused on a fund that does not reconcile, and what to do (DEPLOY.md's runbook). */
function notReconciledReason(
  verdict: Exclude<Reconciliation, { reconciled: true }>,
  checked: FundCheck,
  quote: string,
): string {
  const { balance, problemCount, look } = checked;
  const inQuote = (value: QuoteE6) => `${formatQuoteGrouped(value)} ${quote}`;
  if (verdict.reason === 'not-indexed') {
    // Read through the index, the journal looks broken at its first entry left out of it: say why, and the command
    // (a stack deployed before session 27 said "entry 1 missing ... escalate": withdraw46-not-indexed).
    return (
      `the fund's journal holds entries its index by sequence does not list (${unindexedAmong(look!)}, from entry ${verdict.lowest}), ` +
      `so a withdrawal's check, which reads the journal through that index, found entry ${checked.missing} missing and cannot judge the fund; nothing moved. ` +
      'They were written before the index existed (a stack deployed before session 27) or by the previous version during a deploy: ' +
      `run ${INDEX_JOURNAL_RUN}, then withdraw again; deposits are still taken`
    );
  }
  if (verdict.reason === 'not-audited') {
    // From where the audit stood, as ledger-reconcile counts its backlog; `behind`, what is left past the entries
    // this check read, said "1 entry short ..., more than a withdrawal reads" (review46-not-audited).
    const from = checked.start ?? 0;
    const short = balance.sequence - from;
    const prefix = checked.ownPrefix
      ? 'as this withdrawal checked it'
      : checked.start === undefined
        ? 'ledger-reconcile has stored no checkpoint'
        : "ledger-reconcile's checkpoint";
    return (
      `the fund's journal is audited through entry ${from} (${prefix}), ${entriesWord(short)} short of its balance's entry ${balance.sequence}: more than the ${entriesWord(WITHDRAWAL_AUDIT_MAX_ENTRIES)} a withdrawal reads, so the fund is not judged; nothing moved. ` +
      'ledger-reconcile is behind or stopped, or the fund moved that much since its last run (a burst of settlements): ' +
      'run ledger-reconcile until its backlog is 0 (docs/DEPLOY.md, "Reconcile behind"), then withdraw again; deposits are still taken'
    );
  }
  const { difference, problems } = verdict;
  const said = [
    `balance ${inQuote(balance.balance)} at entry ${balance.sequence}`,
    ...(difference === undefined
      ? []
      : [`difference ${difference > 0n ? '+' : ''}${inQuote(difference)} from the journal's sum`]),
    ...problems.slice(0, PROBLEMS_NAMED),
    // The rest are in ledger-reconcile's log and `backstop status`.
    ...(problemCount > PROBLEMS_NAMED ? [`and ${problemCount - PROBLEMS_NAMED} more problems`] : []),
    ...(look === undefined ? [] : [indexLooked(look)]),
  ];
  return (
    `the fund's balance does not reconcile with its journal (${said.join('; ')}); nothing moved. ` +
    'Withdrawals are refused until it does: do not move money to cover the difference (it would hide it); escalate ' +
    '(docs/DEPLOY.md, "Ledger difference"). Deposits are still taken'
  );
}

/** What the look for entries left out of the index found, on a missing entry it does not explain. */
function indexLooked(look: UnindexedEntries): string {
  if (look.complete)
    return look.read === 0
      ? 'the journal holds no entry: none is left out of its index by sequence'
      : `each of the journal's ${entriesWord(look.read)} is in its index by sequence: the missing entry is not one left out of it`;
  // Not read to the end: an entry left out of the index may lie further on (withdraw46-not-indexed).
  return `none of the first ${entriesWord(look.read)} of the journal is left out of its index by sequence; on a stack deployed before session 27, run \`backstop fund index-journal\` first (a re-run changes nothing)`;
}

async function apply(request: z.output<typeof adminRequestSchema>, deps: AdminDeps): Promise<AdminResult> {
  switch (request.action) {
    case 'deposit':
    case 'withdraw': {
      const amount = parseQuote(request.amount, 'amount', { positive: true });
      const atMs = deps.nowMs();
      const movement: LedgerMovement = {
        account: INSURANCE_ACCOUNT,
        idempotencyKey: `admin:${request.idempotencyKey}`,
        amount: request.action === 'deposit' ? amount : -amount,
        kind: request.action,
        reference: 'admin',
        atMs,
        floor: deps.config.insurance.floor,
        ...(deps.actor === undefined ? {} : { actor: deps.actor }),
        ...(deps.invocationId === undefined ? {} : { invocationId: deps.invocationId }),
        declaredOperator: request.operator,
      };
      // A deposit is never held for the journal: money added in a crisis must not wait for anything.
      const entry =
        request.action === 'deposit'
          ? await deps.ledger.apply(movement)
          : await checkedWithdrawal(movement, deps);
      // A key applied before answers with its first entry, stamped when that one moved the money.
      const { replayed, ...first } = entry;
      return { ok: true, entry: first, ...(replayed ? { alreadyApplied: true } : {}) };
    }
    case 'registerProvider': {
      const maxDiscountPpm = parsePpm(request.maxDiscount, 'maxDiscount');
      // One rate is a SELL discount and a BUY premium: at 100 % or more it bids nothing for a SELL lot, and a BUY
      // premium that high is beyond the auction's cap (mark / floor: the floor is at least 0.667, config.ts).
      if (maxDiscountPpm >= PPM_SCALE)
        throw new AdminInputError(
          `admin/invalid: maxDiscount: ${request.maxDiscount} must be below 1 (a share of the mark: 0.02 is 2 %)`,
        );
      const maxLot = parseBase(request.maxLot, 'maxLot', { positive: true });
      const symbols = request.symbols.map((s) => marketConfig(deps.config, s).symbol);
      const maxLotBySymbol = lotsBySymbol(request.maxLotBySymbol, symbols, deps.config);
      const stated =
        request.capital === undefined
          ? undefined
          : parseQuote(request.capital, 'capital', { positive: true });
      const existing = await deps.providers.get(request.id);
      const terms = { maxDiscountPpm, maxLot, ...(maxLotBySymbol ? { maxLotBySymbol } : {}), symbols };
      // A registration whose answer was lost, sent again: it stands as written, untouched by any auction since.
      if (
        existing?.version === 0 &&
        request.expectedVersion === undefined &&
        existing.capital === stated &&
        sameProviderTerms(existing, terms)
      )
        // The wake too: the first call may have died between its write and its wake (both are idempotent).
        return { ok: true, id: request.id, alreadyApplied: true, ...(await wakeForNewBids(symbols, deps)) };
      const capital = providerCapital(request.id, existing, stated, request.expectedVersion);
      await deps.providers.put(
        // New terms, the fills it won kept (providers48-fills-on-record).
        {
          id: request.id,
          capital,
          ...terms,
          ...fillsKeptOnReregister(existing),
          version: existing ? existing.version + 1 : 0,
        },
        existing?.version,
      );
      // The markets it left too: their sleepers planned on its bid, which is gone.
      const touched = [...new Set([...(existing?.symbols ?? []), ...symbols])];
      return { ok: true, id: request.id, ...(await wakeForNewBids(touched, deps)) };
    }
    case 'openPosition': {
      const record = openedPosition(request, deps.config);
      // The id is taken (a create refused, or a refusal by the mark of now): by this request sent before, its
      // answer lost (the mark may have moved since), or by another position.
      const taken = async (): Promise<AdminResult> => {
        const stored = await deps.positions.get(record.id);
        if (stored && openedAs(stored, record)) return { ok: true, id: record.id, alreadyApplied: true };
        throw new AdminInputError(
          `admin/position-exists: ${record.id} is another position (${stored ? `${stored.side} ${formatBase(stored.size)} ${stored.symbol} at ${formatPrice(stored.entryPrice)}, trader ${stored.traderId}` : 'gone since'}): a new position needs a new id`,
        );
      };
      try {
        refuseLiquidatableAtOpen(record, await openingMark(record.symbol, deps.markets), deps.config);
      } catch (error) {
        if ((await deps.positions.get(record.id)) !== undefined) return taken();
        throw error;
      }
      try {
        await deps.positions.create(record);
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error;
        return taken();
      }
      return { ok: true, id: record.id };
    }
    case 'resumeFeed': {
      const symbol = marketConfig(deps.config, request.symbol).symbol;
      const state = await deps.markets.get(symbol);
      const highest = highestSequence(state);
      const before = highest < 0 ? undefined : highest;
      // The feed's next tick is fromSequence: the last one counts just below it (marks and times are kept, so the
      // band and the time order judge the next tick as usual).
      const after = request.fromSequence - 1;
      if (!state || before === undefined || before <= after) {
        // A held print is not the last tick: the refusal names it, and the resume that drops it (ux45-resume-held-jump).
        const held = state?.heldJump?.tick.sequence;
        const heldNote =
          held === undefined || before === undefined
            ? ''
            : `; it holds print ${held} (numbered ${held < before ? 'behind the last' : 'past maxSequenceJump'}, held, not recorded): \`backstop feed resume --symbol ${symbol} --from-sequence ${before}\` (or from below it) drops it, as does the feed's next accepted print`;
        throw new AdminInputError(
          before === undefined
            ? `admin/nothing-to-resume: ${symbol} has had no tick yet: its feed's first tick is judged as any`
            : `admin/nothing-to-resume: ${symbol}'s last tick is ${before}, already below ${request.fromSequence}${heldNote}`,
        );
      }
      // A tick of the old numbering still starting liquidations is taken over (rebaseTakingOver). Its late
      // continuation re-sends what it started; the positions it had not reached are the restarted feed's to find at
      // its own mark. The old feed's ticks (a redelivery, a retry) are known by their stamps (domain/tick.ts).
      const pending = state.pendingSequence;
      const oldEndsAt = oldNumberingEndsAt(state, marketConfig(deps.config, symbol));
      const resent = await rebaseTakingOver(symbol, after, state, oldEndsAt, deps);
      return {
        ok: true,
        id: symbol,
        sequence: { before, after },
        ...(pending === undefined ? {} : { tookOver: { sequence: pending, resent } }),
      };
    }
    case 'reindexPositions':
      return {
        ok: true,
        id: marketConfig(deps.config, request.symbol).symbol,
        reindexed: await reindex(request, deps),
      };
  }
}

type OpenPositionRequest = Extract<AdminRequest, { action: 'openPosition' }>;

/**
 * Whether a stored position is the one `opened` describes: the same trader, market, side and entry; the same size
 * and collateral too while it is as opened (liquidations and ADL change them later, never the rest).
 */
export function openedAs(stored: PositionRecord, opened: PositionRecord): boolean {
  const same =
    stored.traderId === opened.traderId &&
    stored.symbol === opened.symbol &&
    stored.side === opened.side &&
    stored.entryPrice === opened.entryPrice;
  return (
    same && (stored.version > 0 || (stored.size === opened.size && stored.collateral === opened.collateral))
  );
}

function sameProviderTerms(
  stored: ProviderRecord,
  terms: Pick<ProviderRecord, 'maxDiscountPpm' | 'maxLot' | 'maxLotBySymbol' | 'symbols'>,
): boolean {
  const lots = (r: Pick<ProviderRecord, 'maxLotBySymbol'>) =>
    JSON.stringify(Object.entries(r.maxLotBySymbol ?? {}).sort(), (_, v) =>
      typeof v === 'bigint' ? `${v}` : v,
    );
  return (
    stored.maxDiscountPpm === terms.maxDiscountPpm &&
    stored.maxLot === terms.maxLot &&
    lots(stored) === lots(terms) &&
    [...stored.symbols].sort().join() === [...terms.symbols].sort().join()
  );
}

/** The record an openPosition request writes (its amounts parsed: UnitError or ConfigError on bad ones). */
export function openedPosition(request: OpenPositionRequest, config: RiskConfig): PositionRecord {
  const market = marketConfig(config, request.symbol);
  const size = parseBase(request.size, 'size', { positive: true });
  refuseOffTheLot(size, market);
  const record = withLiquidationPrice(
    {
      id: request.id,
      traderId: request.traderId,
      symbol: market.symbol,
      side: request.side,
      size,
      entryPrice: parsePrice(request.entryPrice, 'entryPrice'),
      collateral: parseQuote(request.collateral, 'collateral', { positive: true }),
      state: 'OPEN',
      version: 0,
    },
    config,
  );
  // A short with a collateral thousands of times its notional: a price no mark reaches, and more digits than a
  // DynamoDB number holds (38; every amount is kept within 30), which AWS would refuse as a ValidationException.
  if (record.liquidationPrice >= 10n ** BigInt(MAX_SCALED_DIGITS))
    throw new AdminInputError(
      `admin/invalid: collateral: ${request.collateral} leaves a liquidation price beyond ${MAX_SCALED_DIGITS} digits (a price no mark reaches): open it with less`,
    );
  return record;
}

/**
 * A position opens as a whole number of its market's lots: the venue fills whole lots only, so a part under one
 * could never be sold when the position is liquidated (it would end as `waterfall/sub-lot-remainder`).
 */
function refuseOffTheLot(size: BaseE8, market: MarketConfig): void {
  const lot = lotSizeOf(market);
  if (size % lot === 0n) return;
  const below = floorToLot(size, lot);
  const nearest = [...(below > 0n ? [below] : []), below + lot].map(formatBase).join(' or ');
  throw new AdminInputError(
    `admin/size-off-lot: size ${formatBase(size)} is not a whole number of ${market.symbol}'s lot ${formatBase(lot)} (the exchange fills whole lots only: the part under a lot could never be sold); open it as ${nearest}`,
  );
}

/** The mark a position opens at: the market's last accepted one (undefined before any: its entry price). */
export async function openingMark(symbol: string, markets: MarketRepository): Promise<PriceE8 | undefined> {
  return (await markets.get(symbol))?.lastTick?.markPrice;
}

/** Every OPEN position must be healthy at the last accepted mark (margin-check relies on it). */
export function refuseLiquidatableAtOpen(
  record: PositionRecord,
  mark: PriceE8 | undefined,
  config: RiskConfig,
): void {
  const at = mark ?? record.entryPrice;
  if (isLiquidatable(record, at, marketConfig(config, record.symbol).maintenanceMargin)) {
    throw new AdminInputError(
      `admin/liquidatable-at-open: liquidation price ${formatPrice(record.liquidationPrice)} vs mark ${formatPrice(at)}`,
    );
  }
}

/**
 * Prices one page of a market side's open positions again with the deployment's risk configuration: a stored
 * liquidation price (the index margin-check reads) is computed when a position is written, so a change of the
 * market's maintenance margin leaves the positions written before it at their old price until this runs (a
 * raise would leave some of them past their new price unseen). A position that moved meanwhile was written by
 * a writer with the configuration it runs (skipped); one LIQUIDATING is not read, and is priced again when a
 * cancelled liquidation puts it back. Positions now past the last mark are found by the next tick.
 */
async function reindex(
  request: Extract<z.output<typeof adminRequestSchema>, { action: 'reindexPositions' }>,
  deps: AdminDeps,
): Promise<{ checked: number; updated: number; cursor?: string }> {
  const symbol = marketConfig(deps.config, request.symbol).symbol;
  const page = await deps.positions
    .queryAdlOrder(symbol, request.side, 'entry', request.limit ?? REINDEX_PAGE_MAX, request.cursor)
    .catch((error: unknown) => {
      // The adapters refuse a cursor they did not return (of another side, market or index) by its reason.
      if (request.cursor !== undefined && error instanceof Error && /bad-cursor/.test(error.message))
        throw new AdminInputError(`admin/bad-cursor: not a cursor of ${symbol} ${request.side}`);
      throw error;
    });
  let updated = 0;
  for (const position of page.positions) {
    const priced = withLiquidationPrice(position, deps.config);
    if (priced.liquidationPrice === position.liquidationPrice) continue;
    try {
      // Only the price: the position stays in the index partition it is stored in.
      await deps.positions.reprice(position.id, priced.liquidationPrice, position.version);
      updated += 1;
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
    }
  }
  return { checked: page.positions.length, updated, ...(page.cursor ? { cursor: page.cursor } : {}) };
}

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_USAGE } from '../../cli/config.ts';
import { REPLAY_USAGE } from '../../cli/ops/events.ts';
import { POSTING_COLUMNS, statementJson } from '../../cli/ops/fund-statement.ts';
import { collectPositionLiquidations } from '../../cli/ops/liquidation-show.ts';
import { LOCAL_USAGE } from '../../cli/ops/local.ts';
import { STATUS_USAGE } from '../../cli/ops/status.ts';
import { INVOKE_ACTIONS } from '../../infra/constructs/functions.ts';
import { CONDITION_VALUES_WARNING, QUEUE_POLICY_QUOTAS } from '../../infra/constructs/queues.ts';
import { OUTPUT_KEYS } from '../../infra/outputs.ts';
import { createEmbeddedAdapters } from '../../shared/adapters/embedded/index.ts';
import { EmbeddedLedger } from '../../shared/adapters/embedded/ledger.ts';
import { OPEN_INDEX_SHARDS } from '../../shared/adapters/shards.ts';
import { KEYLESS_VENUES } from '../../shared/adapters/venue/index.ts';
import { adviceTargetFromEnv, withTargetFlags } from '../../shared/advice.ts';
import {
  CLAIMED_CONFIG_DIGEST_CHARS,
  decodeClaimedFacts,
  encodeClaimedFacts,
} from '../../shared/domain/claimed-facts.ts';
import {
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  parseRiskConfig,
} from '../../shared/domain/config.ts';
import { CONTRA_ACCOUNTS, FUND_CHART } from '../../shared/domain/fund-statement.ts';
import { missingEntryProblem, type Reconciliation } from '../../shared/domain/journal-audit.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { differenceMovements, planKeyOf } from '../../shared/domain/waterfall.ts';
import { PutEntriesError, TickPublishError } from '../../shared/feed/publisher.ts';
import type { Deployment } from '../../shared/local/deployment.ts';
import { NOT_ITS_PER_MAX, notItsLimitLine } from '../../shared/local/dlq.ts';
import { STATUS_COUNT_EVERY_MS, STRANDED_CONFIRM_MS, STRANDED_LOOK_MAX } from '../../shared/local/status.ts';
import { metricsService } from '../../shared/metrics.ts';
import {
  MAX_DECLARED_OPERATOR,
  type PositionRecord,
  REFUSAL_NOTES_PER_SECOND,
  REFUSAL_TRACE_KEPT_MS,
  silentTelemetry,
} from '../../shared/ports/index.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { readFundStatement } from '../../shared/services/fund-statement.ts';
import { VENUE_KEY_ENV } from '../../shared/topology.ts';

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

/**
 * The note of docs/DEPLOY.md that begins with `**Upgrading to session <n>**`, its paragraphs up to the next one that
 * begins in bold (the next note or topic), its lines joined.
 */
function upgradeNote(session: number): string {
  const deploy = read('docs/DEPLOY.md');
  const begin = deploy.indexOf(`**Upgrading to session ${session}**`);
  expect(begin).toBeGreaterThan(0);
  return deploy.slice(begin, deploy.indexOf('\n\n**', begin)).replace(/\s+/g, ' ');
}

// review47-upgrade-note: the session 47 note said the upgrade changed nothing the functions do, while ledger-reconcile
// gained a look and `verdict`, a new problem text, and liquidation-consumer dead-letters a malformed quote; nor did it
// name `local up --venue-key` or a shell's VENUE_KEY_ID no longer reaching the local functions.
describe("docs/DEPLOY.md's session 47 upgrade note against the code", () => {
  const note = upgradeNote(47);

  it("names ledger-reconcile's verdicts and its problem on a journal not indexed as the code writes them", () => {
    expect(note).not.toContain('nor what the functions do');
    const reasons: (Exclude<Reconciliation, { reconciled: true }>['reason'] | 'reconciled')[] = [
      'reconciled',
      'unreconciled',
      'not-audited',
      'not-indexed',
    ];
    expect(note).toContain(
      `carry \`verdict\`: ${reasons
        .map((r) => `\`${r}\``)
        .join(', ')
        .replace(/, (?=[^,]*$)/, ' or ')}`,
    );
    const problem = missingEntryProblem(1, 4, { lowest: 1, found: 3, read: 4, complete: true });
    expect(problem).toContain('run `backstop fund index-journal`');
    // review47-reconcile-note-flags: as ledger-reconcile writes it on AWS, the command with its stack's flags
    // (ops47-reconcile-advice); a later sentence called that a change from "the bare command", which no version of
    // the function wrote (session 46's named no command).
    const lambda = { POWERTOOLS_SERVICE_NAME: metricsService('S'), AWS_REGION: 'R' };
    const written = withTargetFlags(problem, adviceTargetFromEnv(lambda)!);
    const [start] = written.split(', which does not list');
    const command = /run `(backstop fund index-journal[^`]*)`/.exec(written)![1];
    expect(command).toBe('backstop fund index-journal --target aws --stage S --region R');
    expect(note).toContain(`\`${start!.replace('sequence 4', 'sequence N')}, ... run ${command}\``);
    expect(note).not.toMatch(/where it named the bare command/);
  });

  it("names the quote's refusal as the consumer gives it, and what a venue that reads a key now needs", () => {
    const refusal = 'venue/bad-answer: the quote of ';
    expect(read('shared/services/liquidation/venue.ts')).toContain(
      `\`${refusal}\${liquidation.symbol} (liquidation`,
    );
    expect(note).toContain(`\`${refusal}<symbol> (liquidation <id>): ...\``);
    expect(note).toContain('`LiquidationsDlqAlarm`');
    expect(KEYLESS_VENUES.length).toBeGreaterThan(0);
    expect(note).toContain('`KEYLESS_VENUES`');
    expect(LOCAL_USAGE).toContain('--venue-key FILE');
    expect(note).toContain('`--venue-key FILE`');
    expect(note).toContain(`a \`${VENUE_KEY_ENV}\` set in the shell no longer reaches the local functions`);
  });

  // review47-adl-note-functions: the ADL events (adl47-who-closed) were appended to a note that still said two functions
  // change (ledger-reconcile, liquidation-consumer), and named none for them: the auction function settles too.
  it('counts the auction among the functions that change: it settles, and its ADL records events too', () => {
    expect(read('shared/services/liquidation/adl-rounds.ts')).toContain('...recordAdlEvent(current, {');
    expect(read('functions/auction/index.ts')).toContain('processAuctionMessage');
    expect(read('shared/services/auction.ts')).toContain(
      'await decideAndSettle(liquidation, deps, auction, carried)',
    );
    expect(note).toContain('Four functions change what they do');
    expect(note).toContain(
      "liquidation-consumer and auction, the functions that settle liquidations and run ADL's rounds",
    );
  });

  // review47-adl-note-writers: the note said a previous version's margin check starting a liquidation, or an admin
  // change, drops the list; both update the item in place (no whole-item Put), which keeps attributes they do not know.
  it("names as dropping the ADL events only the previous version's functions that put a position whole", () => {
    expect(read('shared/adapters/aws/liquidations.ts')).toContain(
      "UpdateExpression: 'SET #state = :liquidating, version = :next REMOVE liqKey, liqPrice'",
    );
    expect(read('shared/adapters/aws/positions.ts')).toContain(
      "UpdateExpression: 'SET liquidationPrice = :price, liqPrice = :price, version = :next'",
    );
    for (const service of ['margin-check', 'admin']) {
      const code = read(`shared/services/${service}.ts`);
      expect(code).not.toContain('positions.replace(');
      expect(code).not.toContain("kind: 'position'");
    }
    expect(note).not.toContain('a margin check starting its liquidation');
    expect(note).not.toContain('an admin change');
    expect(note).toContain(
      "margin-check (starting a liquidation, repricing) and the admin function (a new position, reindex's reprice) write no position whole",
    );
  });

  // review47-feed-upgrade-note: b25d678 (feed47-*) made margin-check write the market record on a refusal, changed its
  // continuation's failure, the publisher's errors an exchange's feed code reads and replay's output; the note said none.
  it("names margin-check's note on the breaker, its continuation's failures, the publisher's new errors and replay's keys", () => {
    expect(note).toContain('Four functions change what they do');
    expect(read('shared/adapters/aws/markets.ts')).toContain("'SET breaker.confirming = :confirming'");
    expect(note).toContain('`breaker.confirming`');
    expect(read('shared/lambda/wiring.ts')).toMatch(
      /`continuation\/put-failed: \$\{failed\.code\}\$\{failed\.message \? ` \(\$\{failed\.message\}\)` : ''\} after \$\{attempts\(failed\.attempts\)\}`/,
    );
    expect(note).toContain('`continuation/put-failed: <code> (<message>) after <n> attempts`');
    const putFailed = new PutEntriesError(
      { accepted: 0, rejected: [], unknown: [], eventIds: [] },
      [],
      [],
      new Error('x'),
    );
    expect(putFailed.message.startsWith('events/put-failed: a PutEvents call failed after 1 attempt (')).toBe(
      true,
    );
    // Session 47's words; session 48 names the call's attempts before its error (feed48b-put-failed-line).
    expect(note).toContain('`events/put-failed: a PutEvents call failed (<error>: <message>): ...`');
    const notPublished = new TickPublishError([], [], [], {
      accepted: 2,
      rejected: [],
      unknown: [],
      eventIds: ['a', 'b'],
    });
    expect(notPublished.message).toBe('tick/not-published: of 2 ticks 2 put; ');
    expect(note).toContain('`tick/not-published: of N ticks M put; ...`');
    for (const field of ['refused', 'unknown', 'unsent', 'outcome', 'cause'] as const)
      expect(field in notPublished, field).toBe(true);
    expect('unpublished' in notPublished).toBe(false);
    expect(note).toContain(
      '`TickPublishError.unpublished` is gone: `.refused` (not on the bus; each with its `scope`, `entry` or `call`), `.unknown` (on the bus or not) and `.unsent` (never sent)',
    );
    expect(note).toContain('`PutEntriesError` (`.outcome`, `.unknown`, `.unsent`, `.cause`)');
    const events = read('cli/ops/events.ts');
    for (const key of ['notTaken', 'notTakenTicks', 'unknownFate']) {
      expect(events).toMatch(new RegExp(`\\b${key}: `));
      expect(note).toContain(`\`${key}\``);
    }
    expect(read('shared/local/ticks.ts')).toMatch(
      /`replay\/stalled: \$\{options\.symbol\} handled no tick for/,
    );
    expect(note).toContain('stops as `replay/stalled` (exit 1)');
  });

  // final47-json-keys: the note named `adlEvents` on the record but not the keys `liquidations show --position --json`
  // gained with it, nor status's `breaker.confirming`, which a script reading either would look for.
  it('names the keys session 47 added to `liquidations show --position --json` and `status --json`', async () => {
    const shown = async (over: Partial<PositionRecord>) => {
      const adapters = createEmbeddedAdapters();
      await adapters.positions.create({
        id: 's9',
        traderId: 't-s9',
        symbol: 'ETH-USD',
        side: 'SHORT',
        size: parseBase('4'),
        entryPrice: parsePrice('200'),
        collateral: parseQuote('91.5'),
        state: 'OPEN',
        liquidationPrice: parsePrice('215'),
        version: 0,
        ...over,
      });
      return keysOf(await collectPositionLiquidations(adapters, 's9'));
    };
    const before = await shown({});
    const event = {
      liquidationId: 'p1:0',
      round: 0,
      size: parseBase('6'),
      price: parsePrice('178'),
      mark: parsePrice('175'),
      given: parseQuote('18'),
      haircut: 0n,
      atMs: 0,
    };
    const added = new Set([
      ...(await shown({
        adlEvents: { total: 1, recent: [event] },
        adlEventsSetAside: [{ unreadable: 'recent[0]', stored: { M: {} } }],
      })),
    ]);
    for (const key of before) added.delete(key);
    expect([...added].sort()).toEqual(
      [
        'deleveragedBy',
        'total',
        'events',
        'liquidationId',
        'round',
        'at',
        'closedSize',
        'mark',
        'price',
        'profitGiven',
        'haircut',
        'unreadableAdlEvents',
        'reason',
        'current',
      ].sort(),
    );
    const show = note.slice(note.indexOf('`liquidations show --position` reads'));
    for (const key of added) expect(show, key).toContain(`\`${key}\``);
    expect(read('shared/local/status.ts')).toContain(
      '{ confirming: { sequence: m.breaker.confirming.sequence, at: iso(m.breaker.confirming.atMs) } }',
    );
    expect(note).toContain('`markets.<symbol>.breaker.confirming` in `--json`, its `sequence` and `at`');
  });
});

/** Every key of a JSON value, nested ones too (an array's by its items'). */
function keysOf(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) keysOf(item, into);
  else if (value !== null && typeof value === 'object')
    for (const [key, inner] of Object.entries(value)) {
      into.add(key);
      keysOf(inner, into);
    }
  return into;
}

describe("docs/DEPLOY.md's month-end close against `backstop fund statement`", () => {
  const deploy = read('docs/DEPLOY.md');
  const begin = deploy.indexOf("**Month-end close: the insurance fund's statement**");
  const section = deploy.slice(begin, deploy.indexOf('**When an alarm fires**', begin));

  it('books each kind against the contra account of the chart, and names the CSV columns in order', () => {
    expect(begin).toBeGreaterThan(0);
    for (const [kind, { contra }] of Object.entries(FUND_CHART))
      expect(section).toMatch(new RegExp(`\\| \`${kind}\` \\|[^\\n]*\\| \`${contra}\` \\|\\n`));
    expect(section).toContain(`\`${POSTING_COLUMNS.join(',')}\``);
    // review50-audit-csv-fund-balance: the balance column is the fund's on the contra account's row too, and has a unit.
    expect(section.replace(/\s+/g, ' ')).toContain(
      "`fundBalanceAfter` the fund's balance after the entry, in the quote currency as the amounts, on both its postings (the contra account's row too: not that account's balance)",
    );
    // Four kinds, booked against three accounts: what finance maps.
    const count = ['no', 'one', 'two', 'three', 'four', 'five'][CONTRA_ACCOUNTS.length];
    expect(section).toContain(`Map the ${count} contra accounts to the general`);
  });

  // books51-sign-against-kind: the table's two columns are the ways the chart lets each kind move the fund.
  it("says which way each kind moves the fund as the chart's rule, which the ledger holds movements to", () => {
    for (const [kind, { moves, givenBack }] of Object.entries(FUND_CHART)) {
      const row = new RegExp(`\\| \`${kind}\` \\|([^|]*)\\|([^|]*)\\|`).exec(section);
      const [into, out] = [row![1]!.trim(), row![2]!.trim()];
      expect(into !== '', `${kind}: money in`).toBe(moves === 'in' || givenBack !== undefined);
      expect(out !== '', `${kind}: money out`).toBe(moves === 'out' || givenBack !== undefined);
      // The way back is a plan made again's only.
      if (givenBack !== undefined) expect(moves === 'in' ? out : into).toContain('planned again');
    }
  });

  // review51-books-statement-against-kind: the statement booked an entry against its kind and said nothing.
  it('says a statement names the entries that move the fund against their kind, as the CLI words it', () => {
    expect(read('cli/ops/fund-statement.ts')).toContain('entries move the fund against their kind');
    expect(section.replace(/\s+/g, ' ')).toContain(
      "named (`N entries move the fund against their kind: ...` in the text and on `--csv`'s stderr, `againstKind` in `--json`; exit 0, as it reconciles)",
    );
  });

  // books51-csv-as-text: a spreadsheet opening the CSV turns a reference such as 12:3 into a time.
  it('says to import the CSV as text, and where its amounts may become numbers', () => {
    const flat = section.replace(/\s+/g, ' ');
    expect(flat).toContain('**Import it as text**, never by opening the file in a spreadsheet');
    for (const column of ['debit', 'credit', 'fundBalanceAfter']) {
      expect(POSTING_COLUMNS).toContain(column);
      expect(flat).toMatch(
        new RegExp(`Turn [^.]*\`${column}\`[^.]* into numbers only where 6 decimal places are kept exactly`),
      );
    }
  });

  // audit50-statement-causes: nothing told an auditor how an entry ties to the settlement that moved it.
  it("ties each entry to its cause as the settlement's plans key it", () => {
    const plan = (amount: bigint) => ({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: 'p1:0:fee',
      amount,
      kind: 'liquidation-fee' as const,
      reference: 'p1:0',
      atMs: 1,
      floor: 0n,
    });
    const config = { drawCapPerWindow: 10n, windowSeconds: 60, floor: 0n };
    // A plan made again moves the difference under its number; the key it began from is the plan's.
    const [again] = differenceMovements([plan(3n)], { 'p1:0:fee': 2n }, 1, { atMs: 1, config });
    expect(again).toMatchObject({ idempotencyKey: 'p1:0:fee:r1', reference: 'p1:0', amount: 1n });
    expect(planKeyOf(again!.idempotencyKey)).toBe('p1:0:fee');
    for (const said of [
      '`<liquidation id>:fee`',
      '`<liquidation id>:shortfall`',
      '`:r<n>`',
      '`fee` is the sum of its `liquidation-fee` entries',
      '`insurancePaid` the sum of its `shortfall-payout` entries negated',
      '`shortfall` is `insurancePaid` + `adlCovered`',
      '`admin:<--key>`',
    ])
      expect(section.replace(/\s+/g, ' '), said).toContain(said);
  });

  it('names every key --json writes', async () => {
    const ledger = new EmbeddedLedger();
    const move = (key: string, kind: string, amount: bigint, atMs: number) =>
      ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: key,
        amount,
        kind,
        reference: key,
        atMs,
        floor: 0n,
        // A movement through the admin function: invokedMovements' keys are named too.
        ...(kind === 'deposit' ? { invocationId: 'req-1', declaredOperator: 'jane' } : {}),
      });
    await move('a', 'deposit', 5n, 1);
    await move('b', 'liquidation-fee', 1n, 2);
    await move('c', 'liquidation-fee', 1n, 3);
    await move('d', 'liquidation-fee', 1n, 4);
    ledger.leaveOutOfJournalIndex(INSURANCE_ACCOUNT, [2]);
    const keys = new Set<string>();
    for (const read of [
      await readFundStatement(
        ledger,
        INSURANCE_ACCOUNT,
        { from: { atMs: 1 }, to: { atMs: 4 } },
        { pause: async () => {} },
      ),
      await readFundStatement(ledger, INSURANCE_ACCOUNT, { from: undefined, to: undefined }, { max: 1 }),
    ])
      keysOf(statementJson(read, 'USD'), keys);
    expect(keys.size).toBeGreaterThan(30);
    for (const key of keys) expect(section, key).toContain(`\`${key}\``);
  });
});

// status48-look-cost: DEPLOY.md priced `status --watch` an hour by its counts alone (~530,000 read units), not the look
// for stranded work each refresh between counts makes with the work queues drained (status47-stranded-live).
describe("docs/DEPLOY.md's price of `status --watch` against the look it makes", () => {
  it("counts the look's read units a refresh, and an hour of them at the default interval", () => {
    const text = read('docs/DEPLOY.md').replace(/\s+/g, ' ');
    // A Query is half a read unit at least (eventually consistent); a record of ~1 KB read consistently, one.
    const empty = OPEN_INDEX_SHARDS / 2;
    // A shard's full page, STRANDED_LOOK_MAX keys (id, openShard, startedAtMs: ~50 bytes with an id of the priced
    // book's 1,000,000 positions), is over 4 KB and under 8: a read unit, not half (review48-look-cost-pages).
    const keyBytes =
      'id'.length + 'p999999:0'.length + 'openShard'.length + 'open#0'.length + 'startedAtMs'.length + 8;
    expect(STRANDED_LOOK_MAX * keyBytes).toBeGreaterThan(4_096);
    expect(STRANDED_LOOK_MAX * keyBytes).toBeLessThan(8_192);
    const full = OPEN_INDEX_SHARDS + STRANDED_LOOK_MAX;
    // At 2 s, 1,800 refreshes an hour, the counts' among them.
    const refreshes = 3_600 / 2 - 3_600_000 / STATUS_COUNT_EVERY_MS;
    const anHour = (units: number) => Number((units * refreshes).toPrecision(2)).toLocaleString('en-US');
    expect(text).toContain(
      `~${empty} read units a refresh on a stack with no open work (~${anHour(empty)} an hour at 2 s), up to ~${full} with open work (~${anHour(full)} an hour`,
    );
  });
});

// The session 48 note names what scripts and log filters meet: each key, flag, metric and figure it names is the code's.
describe("docs/DEPLOY.md's session 48 upgrade note against the code", () => {
  const note = upgradeNote(48);

  it('names the metric, the rate and the hour the refusal traces are kept by, as the code has them', () => {
    expect(read('shared/metrics.ts')).toContain("name: 'RefusalTraceFailures'");
    expect(note).toContain('`RefusalTraceFailures`');
    expect(REFUSAL_NOTES_PER_SECOND).toBe(10);
    expect(note).toContain('at most 10 times a second a kind');
    expect(REFUSAL_TRACE_KEPT_MS).toBe(60 * 60 * 1000);
    expect(note).toContain('after a trace is an hour old removes it');
  });

  it("names the stranded minute and its option as status and replay's usage give them", () => {
    expect(STRANDED_CONFIRM_MS).toBe(60_000);
    expect(STATUS_USAGE).toContain('--stranded-after S');
    expect(REPLAY_USAGE).toContain('--stranded-after S');
    expect(note).toContain('`--stranded-after S`, 0 to 3600, default 60');
  });

  it('names only keys the commands write', () => {
    const written: Record<string, string[]> = {
      'shared/local/status.ts': ['strandedUnconfirmed', 'strandedForSeconds', 'strandedAtLeast', 'refused'],
      'cli/ops/events.ts': ['failed', 'unknownTicks'],
      'shared/local/dlq.ts': ['arrivedDuring', 'pastCount', 'notReached', 'stopped'],
      'cli/ops/dlq.ts': ['notRedriven'],
      'shared/domain/fund-statement.ts': ["'lagging'"],
    };
    for (const [file, keys] of Object.entries(written))
      for (const key of keys) {
        expect(read(file), `${key} in ${file}`).toContain(key);
        const named = key.startsWith("'")
          ? key.slice(1, -1)
          : key === 'refused'
            ? 'markets.<symbol>.refused'
            : key;
        expect(note, key).toContain(`\`${named}\``);
      }
    expect(note).toContain(
      '`events/put-failed: a PutEvents call failed after <n> attempts (<error>: <message>): ...`',
    );
    expect(read('shared/local/deployment.ts')).toContain('export const cliCredentials');
    expect(read('shared/adapters/aws/sqs-queue.ts')).toContain('longPoll');
  });
});

// The session 49 note names what an operator must configure before the deploy and what scripts meet after it: each
// context key, error code, JSON key and quota it names is the code's.
describe("docs/DEPLOY.md's session 49 upgrade note against the code", () => {
  const note = upgradeNote(49);

  it('names the context keys the stack reads, with their defaults', () => {
    const config = read('infra/config.ts');
    for (const key of [
      'queueSendersOnly',
      'queueSenderPrincipals',
      'tickPublishersOnly',
      'feedPrincipals',
      'adminInvokers',
    ]) {
      expect(config, key).toContain(key);
      expect(note, key).toContain(`\`${key}\``);
    }
    expect(note).toContain('`queueSendersOnly`, default `true`');
    expect(read('infra/constructs/queues.ts')).toContain('RedrivePermission.DENY_ALL');
    expect(note).toContain('`RedriveAllowPolicy` `denyAll`');
    expect(QUEUE_POLICY_QUOTAS.bytes).toBe(8192);
    expect(note).toContain("past SQS's 8,192 bytes");
    expect(INVOKE_ACTIONS).toEqual(['lambda:InvokeFunction', 'lambda:InvokeAsync']);
    expect(note).toContain('`lambda:InvokeFunction` and `lambda:InvokeAsync`');
  });

  it('names only error codes and keys the commands write', () => {
    const written: Record<string, string[]> = {
      'shared/local/dlq.ts': [
        'dlq/not-its-dead-letter',
        'dlq/send-refused',
        'movedFrom',
        'redriveRefuses',
        'stopped',
      ],
      'shared/local/queue-senders.ts': ['sqs/send-refused'],
      'cli/ops/events.ts': ['inject/unknown-fate', 'notSentTicks', 'notSent', 'unknownTicks'],
      'shared/feed/publisher.ts': ['events/not-sent', 'refusedAfter', 'notSent'],
      'cli/ops/providers.ts': ['marketNotConfigured'],
      'shared/ports/index.ts': ['RefusalNote', 'holdSequenceJump', 'continueSequenceJump', 'rebaseSequence'],
      'shared/domain/model.ts': ['SetAside'],
    };
    for (const [file, keys] of Object.entries(written))
      for (const key of keys) {
        expect(read(file), `${key} in ${file}`).toContain(key);
        expect(note, key).toContain(`\`${key}`);
      }
  });
});

// The session 50 note names what an operator meets at synth and what scripts meet after the deploy: each warning id,
// error code, JSON key, CSV column and figure it names is the code's.
describe("docs/DEPLOY.md's session 50 upgrade note against the code", () => {
  const note = upgradeNote(50);

  it("names synth's warning and the quota as the stack has them", () => {
    expect(CONDITION_VALUES_WARNING).toBe('backstop:queuePolicyConditionValues');
    expect(note).toContain(`\`${CONDITION_VALUES_WARNING}\``);
    expect(QUEUE_POLICY_QUOTAS.conditions).toBe(10);
    expect(note).toContain('its 10 "conditions"');
    expect(note).toContain("past SQS's 8,192 bytes");
    expect(QUEUE_POLICY_QUOTAS.bytes).toBe(8192);
    expect(NOT_ITS_PER_MAX).toBe(10);
    expect(note).toContain('stops after leaving 10 times `--max`');
  });

  it('names only error codes, keys and columns the code writes', () => {
    const written: Record<string, string[]> = {
      'cli/ops/events.ts': ['replay/unknown-fate'],
      'shared/local/status.ts': ['status/look-permission'],
      'shared/local/dlq.ts': [
        'dlq/arn-unread',
        'notItsLimit',
        'acceptedSource',
        'acceptedSources',
        'sourceArn',
      ],
      'cli/ops/providers.ts': ['noLongerQuotes', 'marketUnconfirmed'],
      'cli/ops/fund-statement.ts': ['fundBalanceAfter', 'unnamedMovements'],
      'shared/adapters/aws/markets.ts': ['continuedWriter'],
      'shared/ports/index.ts': ['JumpContinued', 'continueSequenceJump'],
      'shared/feed/publisher.ts': ['requestsOf'],
      'shared/adapters/venue/key.ts': ['fixedVenueKey'],
      'test/contract/venue-suite.ts': ['unread-after', 'fault-unread-after'],
      'infra/constructs/queues.ts': ['measureQueuePolicy', 'conditionValues'],
    };
    for (const [file, keys] of Object.entries(written))
      for (const key of keys) {
        expect(read(file), `${key} in ${file}`).toContain(key);
        expect(note, key).toContain(key);
      }
    // Last in session 50; session 51 put its two after it (its own note says so), the column kept where it was.
    expect(POSTING_COLUMNS.slice(POSTING_COLUMNS.indexOf('fundBalanceAfter'))).toEqual([
      'fundBalanceAfter',
      'invocationId',
      'declaredOperator',
    ]);
    expect(POSTING_COLUMNS.indexOf('fundBalanceAfter')).toBe(POSTING_COLUMNS.indexOf('actor') + 1);
    expect(note).toContain('a last column, `fundBalanceAfter`');
  });

  it('cites only rows docs/RELIABILITY.md has', () => {
    const rows = new Set(
      read('docs/RELIABILITY.md')
        .split('\n')
        .map((line) => /^\| ([a-z0-9-]+) \|/.exec(line)?.[1])
        .filter((id): id is string => id !== undefined),
    );
    const cited = [
      ...note.matchAll(/\b((?:[a-z]+50[a-z]?|review50-[a-z0-9]+|final50[a-c])-[a-z0-9-]+)/g),
    ].map((m) => m[1] ?? '');
    expect(cited.length).toBeGreaterThan(30);
    for (const id of cited) expect(rows.has(id), id).toBe(true);
  });
});

// The session 51 note names what callers of the admin function must send and what the stack adds: each key, column,
// context key and refusal it names is the code's.
describe("docs/DEPLOY.md's session 51 upgrade note against the code", () => {
  const note = upgradeNote(51);

  // The lot's part, written after the rest of the note (note51-lot-told).
  it("names the lot's key, codes and context field as the code has them, and the refusals it says", () => {
    for (const [file, key] of [
      ['shared/domain/config.ts', 'lotSize: baseSize('],
      ['shared/services/admin.ts', 'admin/size-off-lot'],
      ['shared/services/liquidation/freeze.ts', 'waterfall/sub-lot-remainder'],
      ['shared/domain/waterfall.ts', 'waterfall/sub-lot-remainder'],
      ['shared/ports/index.ts', 'marketOrderSize'],
    ] as const) {
      expect(read(file), `${key} in ${file}`).toContain(key);
      expect(note, key).toContain(key.replace(': baseSize(', ''));
    }
    const market = DEFAULT_RISK_CONFIG_INPUT.markets[0]!;
    const withLot = (dustSize: string) => ({
      ...DEFAULT_RISK_CONFIG_INPUT,
      markets: [{ ...market, lotSize: '0.001', dustSize }],
    });
    // "dustSize must then be 0 or whole lots (synth refuses another, saying why)".
    expect(() => parseRiskConfig(withLot('0.0015'))).toThrow(/dustSize/);
    expect(() => parseRiskConfig(withLot('0.002'))).not.toThrow();
    expect(note).toContain('`dustSize` must then be 0 or whole lots (synth refuses another, saying why)');
    // "session 50 refuses a key it does not know at synth": its market schema was strict, as this one is.
    expect(() =>
      parseRiskConfig({ ...DEFAULT_RISK_CONFIG_INPUT, markets: [{ ...market, lotSizeX: '1' }] }),
    ).toThrow();
    expect(note).toContain('session 50 refuses a key it does not know at synth');
  });

  it('names the refusal of a request without its operator as the admin function gives it', async () => {
    const result = await handleAdmin(
      { action: 'deposit', amount: '1', idempotencyKey: 'k' },
      {
        ...createEmbeddedAdapters(),
        config: DEFAULT_RISK_CONFIG,
        telemetry: silentTelemetry,
        nowMs: () => 0,
      },
    );
    expect(result.ok).toBe(false);
    const reason = result.ok ? '' : result.reason;
    expect(reason.startsWith('admin/invalid: operator: required for a deposit or withdrawal: ')).toBe(true);
    expect(note).toContain('`admin/invalid: operator: required for a deposit or withdrawal: ...`');
    expect(note).toContain(`1 to ${MAX_DECLARED_OPERATOR} printable characters`);
  });

  it('names only keys, columns and context keys the code has', () => {
    expect(POSTING_COLUMNS.slice(-2)).toEqual(['invocationId', 'declaredOperator']);
    expect(note).toContain('two columns after `fundBalanceAfter`: `invocationId`, `declaredOperator`');
    const written: Record<string, string[]> = {
      'shared/ports/index.ts': ['invocationId', 'declaredOperator'],
      'cli/ops/fund-statement.ts': [
        'invokedMovements',
        'unnamedMovements',
        'moved through the admin function',
      ],
      'infra/config.ts': ['adminTrail:'],
      'cli/ops/seed.ts': ['--operator'],
    };
    for (const [file, keys] of Object.entries(written))
      for (const key of keys) {
        expect(read(file), `${key} in ${file}`).toContain(key);
        expect(note, key).toContain(key.replace(/:$/, ''));
      }
    expect(note).toContain('`-c backstop:adminTrail=false`');
  });

  // note51-upgrade-told: the note named the admin function's changes alone; what else session 51 changed for an
  // operator or an integrator is named below, each name held to the code that writes it.
  it("names margin-check's writes and the markets repository's answers as the port and the AWS store have them", () => {
    const ports = read('shared/ports/index.ts');
    expect(ports).toMatch(/export type JumpContinued = [^;]*'continued-later';/);
    expect(note).toContain("`JumpContinued`'s new `continued-later`");
    for (const answer of ['note-refused', 'not-held']) {
      expect(ports).toMatch(new RegExp(`export type JumpContinued = [^;]*'${answer}'`));
      expect(note).toContain(`\`${answer}\``);
    }
    // Required, as heldTick: `?:` would let a judgment leave it out.
    expect(ports).toContain('readonly heldContinuedAtMs: number | undefined;');
    expect(ports).toContain('readonly heldTick: PrintAsRead | undefined;');
    expect(note).toContain(
      '`JudgedJump.heldContinuedAtMs` is now required (`number | undefined`, as `heldTick`)',
    );
    for (const method of ['continueSequenceJump', 'holdSequenceJump']) {
      expect(ports).toContain(`  ${method}(`);
      expect(note).toContain(`\`${method}\``);
    }
    const condition = '(attribute_not_exists(heldJump.continuedAtMs) OR heldJump.continuedAtMs <= :at)';
    expect(read('shared/adapters/aws/markets.ts')).toContain(`const notLater = '${condition}';`);
    expect(note).toContain(`\`${condition.slice(1, -1)}\``);
    expect(read('shared/domain/tick.ts')).toContain(
      `\`\${off}: the held \${held.tick.sequence} is being continued\``,
    );
    expect(note).toContain('`...: the held S is being continued`');
  });

  it("names the ledgers' refusal, ledger-reconcile's count and line, and the statement's, as the code gives them", async () => {
    const refusal = await new EmbeddedLedger()
      .apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: 'admin:d',
        amount: -parseQuote('5'),
        kind: 'deposit',
        reference: 'admin:d',
        atMs: 1,
        floor: 0n,
      })
      .then(
        () => 'applied',
        (error: Error) => error.message,
      );
    expect(refusal).toBe(
      'ledger/sign-against-kind: deposit of -5.00 under key admin:d: kind deposit raises the fund, never lowers it',
    );
    expect(note).toContain(`\`${refusal}\`, nothing moved`);
    expect(read('shared/adapters/aws/ledger.ts')).toContain('movementProblem(movement)');
    for (const kind of ['deposit', 'withdraw', 'liquidation-fee', 'shortfall-payout'] as const) {
      expect(FUND_CHART[kind], kind).toBeDefined();
      expect(note).toContain(`\`${kind}\``);
    }
    const reconcile = read('functions/ledger-reconcile/index.ts');
    const warning = "ledger reconciled; journal entries the fund's chart of accounts refuses";
    for (const said of [
      `log.warn("${warning}", summary)`,
      "log.warn('ledger not reconciled', summary)",
      'chartProblems: report.chartProblems,',
      'problemCount: report.problemCount,',
    ])
      expect(reconcile, said).toContain(said);
    expect(note).toContain(
      `the line is \`${warning}\`, a warning (a log filter on \`ledger not reconciled\` misses it)`,
    );
    expect(note).toContain('(`chartProblems`, among `problemCount`)');
    // The alarm that pages, on the metric the run counts them in; its description the one alarm change.
    expect(read('shared/metrics.ts')).toContain("name: 'LedgerJournalProblems'");
    const monitoring = read('infra/constructs/monitoring.ts');
    expect(monitoring).toMatch(
      /'LedgerJournalAlarm',\s+this\.business\(METRICS\.LedgerJournalProblems, [^)]*\),\s+'[^']*or of a sign its kind never moves \(paged by the run that reads it; it refuses no withdrawal\)/,
    );
    expect(note).toContain("of the alarms only `LedgerJournalAlarm`'s description");
    expect(note).toContain('counts in `LedgerJournalProblems`, so `LedgerJournalAlarm` pages, once');
    // A withdrawal's check judges the breaks alone.
    expect(read('shared/services/admin.ts')).toContain(
      'problemCount: report.problemCount - report.chartProblems,',
    );
    const statement = read('cli/ops/fund-statement.ts');
    expect(statement).toContain('entries move the fund against their kind`');
    expect(statement).toContain('againstKind: ');
    expect(note).toContain('`N entries move the fund against their kind: ...`');
    expect(note).toContain('`againstKind` in `--json`');
  });

  it("names a harness's fault report and the example adapter's deadlines as the contract and the adapter have them", () => {
    const suite = read('test/contract/venue-suite.ts');
    expect(suite).toContain('export type FaultDone = () => boolean | Promise<boolean>;');
    expect(suite).toContain('fail?(fault: ExchangeFault): FaultDone;');
    expect(note).toContain('a `FaultDone` (a function');
    expect(note).toContain('or a promise of it');
    expect(suite).toContain(`\`fail('\${fault}') answered no report: `);
    expect(note).toContain("`fail('<fault>') answered no report: ...`");
    expect(suite).toContain(`\`the fault '\${fault}' took no effect: `);
    expect(note).toContain("`the fault '<fault>' took no effect: ...`");
    // fault-sequences' executing attempt meets unread-after too.
    expect(suite).toMatch(
      /id: 'fault-sequences',[\s\S]*?const atExecution = fc\.constantFrom<[^>]*>\(\s*undefined,\s*'lost-after',\s*'unread-after',/,
    );
    expect(note).toContain('`fault-sequences` injects `unread-after` too');
    const adapter = read('test/contract/my-exchange/venue.ts');
    expect(adapter).toContain(`\`venue/unavailable: \${what} not read within the call's deadline\``);
    expect(adapter).toContain(
      `withinDeadline(this.#sharedInstrument(symbol), deadline, \`\${symbol}'s grid\`)`,
    );
    expect(note).toContain("`venue/unavailable: <symbol>'s grid not read within the call's deadline`");
    expect(adapter).toMatch(
      /interface MyExchangeOptions \{[^}]*readonly deadline\?: \(ms: number\) => AbortSignal;/,
    );
    expect(note).toContain('`MyExchangeOptions.deadline`');
  });

  it("quotes the redrive's bound as dlq redrive words it", () => {
    // The line names only its target's flags.
    const target = { kind: 'aws', stage: 's', region: 'r' } as Deployment;
    const line = notItsLimitLine(target, 'liquidations', 11);
    const head = `stopped after leaving 11 letters as not liquidations's (dlq/not-its-dead-letter), ${NOT_ITS_PER_MAX} times --max, at one more: it and any past it not reached; `;
    expect(line.startsWith(head)).toBe(true);
    expect(note).toContain(
      `\`${head.replace('11 letters', 'N letters').replace("liquidations's", "Q's")}...\`, where it said \`those past them not reached\``,
    );
    expect(read('shared/local/dlq.ts')).not.toContain('those past them not reached');
    expect(read('shared/local/dlq.ts')).toContain('notItsLimit');
    expect(note).toContain('no `notItsLimit`');
  });

  it("names `liquidations show`'s lines and --json keys as the command writes them", () => {
    const show = read('cli/ops/liquidation-show.ts');
    expect(show).toContain(
      `\`  trigger      mark \${price(l.triggerMark)} of tick \${l.tickSequence ?? l.tickKey} (\${l.tickKey}), stamped \${l.startedAt} by the feed\``,
    );
    expect(note).toContain(
      '`mark M of tick N (K), stamped T by the feed`, where it was `mark M (tick K), started T`',
    );
    for (const [label, written] of [
      ['at claim', '`  at claim     position '],
      ['sized', `\`  sized        \${`],
      ['fee', `\`  fee          \${feeText(`],
      ['loss', `\`  loss         \${lossText(`],
    ] as const) {
      expect(show, label).toContain(written);
      expect(note, label).toContain(`\`${label}\``);
    }
    const answering = read('docs/DEPLOY.md');
    const section = answering.slice(
      answering.indexOf('**Answering a trader**'),
      answering.indexOf('\n\n**', answering.indexOf('**Answering a trader**') + 1),
    );
    for (const key of [
      'startedBy',
      'restWas',
      'tickSequence',
      'slippagePercent',
      'lastResort',
      'claimed',
      'feeBasis',
      'traderLoss',
    ]) {
      expect(show, key).toMatch(new RegExp(`readonly ${key}\\??: `));
      expect(note, key).toContain(`\`${key}\``);
      expect(section, key).toMatch(new RegExp(`\\b${key}\\b`));
    }
    expect(read('shared/ports/index.ts')).toContain('readonly claimed?: string;');
    expect(read('docs/PERFORMANCE.md').replace(/\s+/g, ' ')).toContain(
      "the bench's market, auction and fund layers are unchanged (14, 24, 18) and ADL's 18",
    );
    expect(note).toContain(
      "about 135 bytes on the liquidation's item: the bench's market, auction and fund layers write the units they did, ADL's 2 more, 18",
    );
  });

  it('names the install scripts package.json approves, and that no other package of the lockfile has one', () => {
    const pkg = JSON.parse(read('package.json')) as { allowScripts: Record<string, boolean> };
    expect(pkg.allowScripts).toEqual({ node: true, esbuild: true });
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { hasInstallScript?: boolean }>;
    };
    const withScripts = Object.entries(lock.packages)
      .filter(([, p]) => p.hasInstallScript)
      .map(([path]) => path.replace(/^node_modules\//, ''));
    expect(withScripts.sort()).toEqual(Object.keys(pkg.allowScripts).sort());
    expect(note).toContain("package.json's new `allowScripts`, which approves the install scripts of `node`");
    expect(note).toContain('and `esbuild`');
    expect(note).toContain('the only packages of the lockfile with install scripts');
  });

  it('cites only rows docs/RELIABILITY.md has, of every part of the session', () => {
    const rows = new Set(
      read('docs/RELIABILITY.md')
        .split('\n')
        .map((line) => /^\| ([a-z0-9-]+) \|/.exec(line)?.[1])
        .filter((id): id is string => id !== undefined),
    );
    const cited = [...note.matchAll(/\b([a-z]+51[a-z]?-[a-z0-9-]*[a-z0-9])\b/g)].map((m) => m[1] ?? '');
    expect(cited.length).toBeGreaterThan(40);
    for (const id of cited) expect(rows.has(id), id).toBe(true);
    const parts = new Set(cited.map((id) => id.replace(/-.*/, '')));
    for (const part of [
      'admin51',
      'feed51',
      'venue51',
      'books51',
      'dlq51',
      'support51',
      'tidy51',
      'risk51',
      'note51',
    ])
      expect(parts.has(part), part).toBe(true);
  });
});

// books52-given-back-proved, books52-uncharted-kind, books52-status-chart: the note tells the refusals and the status
// line as the code words them.
describe("docs/DEPLOY.md's session 52 upgrade note against the code", () => {
  const note = upgradeNote(52);

  it("names the ledgers' refusals, the checkpoint's count and status's line as the code gives them", async () => {
    const ledger = new EmbeddedLedger();
    const refusal = (kind: string, idempotencyKey: string, amount: string) =>
      ledger
        .apply({
          account: INSURANCE_ACCOUNT,
          idempotencyKey,
          amount: parseQuote(amount, 'amount', { allowNegative: true }),
          kind,
          reference: idempotencyKey.split(':')[0]!,
          atMs: 1,
          floor: 0n,
        })
        .then(
          () => 'applied',
          (error: Error) => error.message,
        );
    const uncharted = await refusal('fee', 'K', '1');
    expect(uncharted).toMatch(/^ledger\/uncharted-kind: /);
    expect(note).toContain(`\`${uncharted}\`, nothing moved`);
    const given = await refusal('liquidation-fee', 'x:fee:r1', '-1');
    const [head, tail] = [given.slice(0, given.indexOf(': kind ')), given.slice(given.indexOf(', at most'))];
    expect(head).toBe('ledger/sign-against-kind: liquidation-fee of -1.00 under key x:fee:r1');
    expect(note).toContain(`\`${head}: ...${tail}\`, nothing moved`);
    for (const attribute of ['chartCount', 'chartFirst', 'chartLast', 'chartCountedAfter']) {
      expect(read('shared/adapters/aws/ledger.ts')).toContain(`${attribute}: N(`);
      expect(note).toContain(`\`${attribute}\``);
    }
    expect(read('cli/ops/status.ts')).toContain(`the fund's chart refuses (\${range}\${counted}): `);
    expect(note).toContain(
      "`chart of accounts: N entries the fund's chart refuses (entries F to L; counted after entry C): backstop fund statement --from-sequence F --to-sequence L names them ...`",
    );
    expect(read('shared/local/status.ts')).toContain('readonly chartRefused: {');
    expect(note).toContain('`insuranceFund.chartRefused` in `--json`');
  });

  // facts52-claim-config-digest, review52-facts-config-digest-command: the paragraph on the claim's configuration
  // names the pair, the line, the key, the output and the command as the code has them.
  it("names the claim's configuration pair, show's line and key, the stack's output and the command as the code has them", () => {
    const facts = {
      position: { size: 1n, entryPrice: 2n, collateral: 3n },
      maintenanceMargin: 25_000n,
      initialMargin: 50_000n,
      liquidationFee: 10_000n,
      slippageBound: 30_000n,
    };
    const digest = 'a'.repeat(CLAIMED_CONFIG_DIGEST_CHARS);
    const withDigest = encodeClaimedFacts({ ...facts, configDigest: digest });
    const without = encodeClaimedFacts(facts);
    expect(withDigest).toBe(`${without} config=${digest}`);
    expect(note).toContain(
      `the first ${CLAIMED_CONFIG_DIGEST_CHARS} characters of the digest of the risk configuration`,
    );
    expect(note).toContain(
      `a \`config=\` pair at the end of \`context.claimed\`'s text (${withDigest.length - without.length} bytes;`,
    );
    // What a session 51 reader does with it: a pair it does not know is passed over, the rest read.
    expect(decodeClaimedFacts(`${without} later=x`)).toEqual(decodeClaimedFacts(without));
    expect(note).toContain("session 51's `show` passes over the pair it does not know and reads the rest");
    const show = read('cli/ops/liquidation-show.ts');
    expect(show).toContain('readonly configDigest: string | null;');
    expect(note).toContain('`context.claimed.configDigest`: a string');
    expect(show).toContain(
      "'  config       which risk configuration the claim applied is not recorded (claimed before session 52",
    );
    expect(note).toContain('`which risk configuration the claim applied is not recorded`');
    expect(note).toContain('on a `config` line under `at claim`');
    expect(OUTPUT_KEYS.riskConfigDigest).toBe('RiskConfigDigest');
    expect(note).toContain("the start of the stack's `RiskConfigDigest` output");
    expect(CONFIG_USAGE).toContain('Usage: backstop config digest [--config FILE.json]');
    expect(note).toContain('`backstop config digest --config FILE` is new');
    const rows = read('docs/RELIABILITY.md');
    for (const id of ['facts52-claim-config-digest', 'review52-facts-config-digest-command']) {
      expect(rows).toContain(`| ${id} |`);
      expect(note).toContain(id);
    }
  });

  // review52-lot-upgrade-note: the paragraph on the exchange's lot names the dead letter's reasons, the reopened
  // auction's history note and what an older watch alarms on as the code has them.
  it("names the lot's dead-letter reasons, a reopened auction's note and the watch's alarm as the code has them", () => {
    const freeze = read('shared/services/liquidation/freeze.ts');
    for (const outcome of [
      'no provider could bid for it',
      'its auction ended with no provider taking it',
      'no auction opens once its plan is made (SETTLING)',
      'the market-only strategy runs no auction',
    ]) {
      expect(freeze).toContain(`return '${outcome}';`);
      expect(note).toContain(`\`${outcome}\``);
    }
    const tail = 'ADL closes its counterparties in whole lots only, and the venue fills whole lots only';
    expect(freeze).toContain(`${tail}\``);
    expect(note).toContain(`\`${tail}\``);
    // The words session 51 wrote, which a match must stop expecting.
    expect(freeze).not.toContain('no provider or ADL counterparty took it');
    expect(note).toContain('where it said `no provider or ADL counterparty took it`');
    expect(read('shared/services/liquidation/auction-start.ts')).toContain(
      `\`lot \${opening.lot}\${replacing ? ' again' : ''}\``,
    );
    expect(note).toContain('noted `lot N again` (N: its size in 1e-8 units)');
    expect(read('shared/metrics.ts')).toContain("name: 'LiquidationsOverdue'");
    expect(note).toContain('(`LiquidationsOverdue`)');
    expect(note).toContain('`tailSeconds` x (`maxResets` + 1)');
    expect(read('shared/services/liquidation-watch.ts')).toContain(
      'auctionStartMs + tailSeconds * 1000 * (maxResets + 1)',
    );
    const rows = read('docs/RELIABILITY.md');
    for (const id of ['lot52-adl-whole-lots', 'lot52-sub-lot-auction-again', 'lot52-sub-lot-reason']) {
      expect(rows).toContain(`| ${id} |`);
      expect(note).toContain(id);
    }
  });
});

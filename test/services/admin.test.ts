import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import type { AuctionRecord, ProviderRepository } from '../../shared/ports/index.ts';
import { type AdminRequest, handleAdmin } from '../../shared/services/admin.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { handleTick, withLiquidationPrice } from '../../shared/services/margin-check.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';
import { crashOnceAt, createPipeline } from '../support/pipeline.ts';
import { adminDepsOf, pendingTick, racingRebase } from '../support/resume.ts';

/** An operator's request to open a 1 ETH long p1 from 200. */
const openP1 = (collateral: string) => ({
  action: 'openPosition',
  id: 'p1',
  traderId: 't1',
  symbol: 'ETH-USD',
  side: 'LONG',
  size: '1',
  entryPrice: '200',
  collateral,
});

/** An operator's registration of a provider lp1 on ETH-USD. */
const REGISTER_LP1 = {
  action: 'registerProvider',
  id: 'lp1',
  capital: '1000',
  maxDiscount: '0.02',
  maxLot: '5',
  symbols: ['ETH-USD'],
};

function setup() {
  const p = createPipeline();
  const deps = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
  return { p, run: (request: AdminRequest | unknown) => handleAdmin(request, deps) };
}

describe('admin requests', () => {
  it('deposits and withdraws with idempotency keys, and the journal reconciles', async () => {
    const { p, run } = setup();
    const first = await run({ action: 'deposit', amount: '1000.5', idempotencyKey: 'd1', operator: 'ops' });
    expect(first).toMatchObject({ ok: true });
    expect(first).not.toHaveProperty('alreadyApplied');
    p.clock.advance(1);
    // The key again: its first entry, and said to be that (the CLI printed its balance as if it had just moved).
    expect(
      await run({ action: 'deposit', amount: '1000.5', idempotencyKey: 'd1', operator: 'ops' }),
    ).toMatchObject({
      ok: true,
      alreadyApplied: true,
      entry: { sequence: 1 },
    });
    expect(
      await run({ action: 'withdraw', amount: '0.5', idempotencyKey: 'w1', operator: 'ops' }),
    ).toMatchObject({
      ok: true,
    });
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(parseQuote('1000'));
    const report = await reconcileAccount(p.adapters.ledger, INSURANCE_ACCOUNT, p.telemetry);
    expect(report).toMatchObject({ difference: 0n, entries: 2, problems: [] });
  });

  it('answers a position or provider sent again (its answer lost) as applied, and another under its id as refused', async () => {
    // Found by an audit in session 37: the retry was told "concurrent change: read it again and retry", the same
    // answer another position under the id got, and seed --file counted a row with other terms as already there.
    const { p, run } = setup();
    const open = openP1('50');
    expect(await run(open)).toEqual({ ok: true, id: 'p1' });
    expect(await run(open)).toEqual({ ok: true, id: 'p1', alreadyApplied: true });
    const other = await run({ ...open, side: 'SHORT', size: '5', collateral: '500' });
    expect(other).toMatchObject({ ok: false });
    expect(other.ok ? '' : other.reason).toMatch(
      /^admin\/position-exists: p1 is another position \(LONG 1 ETH-USD at 200, trader t1\)/,
    );
    expect(await p.adapters.positions.get('p1')).toMatchObject({ side: 'LONG', size: parseBase('1') });

    const register = REGISTER_LP1;
    expect(await run(register)).toMatchObject({ ok: true, id: 'lp1' });
    expect(await run(register)).toMatchObject({ ok: true, id: 'lp1', alreadyApplied: true });
    expect((await p.adapters.providers.get('lp1'))?.version).toBe(0);
    // Once an auction used its capital, restating it is not a retry: refused, saying it stands as registered.
    const stored = (await p.adapters.providers.get('lp1'))!;
    await p.adapters.providers.put({ ...stored, capital: parseQuote('400'), version: 1 }, 0);
    const again = await run(register);
    expect(again.ok ? '' : again.reason).toMatch(
      /capital 400 unused.*if this registered it before, it stands/,
    );
    expect((await p.adapters.providers.get('lp1'))?.capital).toBe(parseQuote('400'));
  });

  it('answers a position sent again after the mark crossed it as applied, and a registration sent again wakes too', async () => {
    // Found by a review in session 37: the retry of an open whose answer was lost was refused as liquidatable at
    // open once the market had crossed it, and a registration's retry skipped the wake its first call died before.
    const { p, run } = setup();
    await p.fund('100000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    expect(await run(openP1('50'))).toEqual({ ok: true, id: 'p1' });
    for (const price of ['195', '190', '185', '180', '175', '170', '165', '160', '155', '152', '150']) {
      await p.tick('ETH-USD', price);
      await p.runUntil(p.clock.nowMs() + 1_000);
    }
    expect((await p.adapters.positions.get('p1'))?.state).not.toBe('OPEN');
    expect(await run(openP1('50'))).toEqual({ ok: true, id: 'p1', alreadyApplied: true });
    // Another position under the id, refused by the mark: refused as the id's, which is what to fix.
    const other = await run({ ...openP1('50'), side: 'SHORT' });
    expect(other.ok ? '' : other.reason).toMatch(/^admin\/position-exists: p1 is another position/);

    const crash = crashOnceAt('providers.put');
    const q = createPipeline({ crashHook: crash.hook });
    const deps = { ...q.adapters, config: q.config, telemetry: q.telemetry, nowMs: () => q.clock.nowMs() };
    const register = REGISTER_LP1;
    crash.arm();
    await expect(handleAdmin(register, deps)).rejects.toThrow();
    expect(crash.crashed()).toBe(true);
    expect((await q.adapters.providers.get('lp1'))?.version).toBe(0);
    const bump = vi.spyOn(q.adapters.markets, 'bumpProvidersEpoch');
    expect(await handleAdmin(register, deps)).toMatchObject({ ok: true, alreadyApplied: true });
    expect(bump).toHaveBeenCalled();
  });

  it('reconciles while movements commit: the journal is judged up to the balance it read', async () => {
    const { p, run } = setup();
    await run({ action: 'deposit', amount: '100', idempotencyKey: 'd1', operator: 'ops' });
    const ledger = p.adapters.ledger;
    // A deposit lands after the balance was read, before the journal is.
    const racing = {
      balance: ledger.balance.bind(ledger),
      unindexedEntries: ledger.unindexedEntries.bind(ledger),
      entriesOf: ledger.entriesOf.bind(ledger),
      auditCheckpoint: ledger.auditCheckpoint.bind(ledger),
      saveAuditCheckpoint: ledger.saveAuditCheckpoint.bind(ledger),
      journalAfter: async (account: string, after: number, limit: number) => {
        await run({ action: 'deposit', amount: '10', idempotencyKey: 'd2', operator: 'ops' });
        return ledger.journalAfter(account, after, limit);
      },
    };
    const report = await reconcileAccount(racing, INSURANCE_ACCOUNT, p.telemetry);
    expect(report).toMatchObject({ difference: 0n, entries: 1, problems: [], balance: parseQuote('100') });
    expect((await ledger.journal(INSURANCE_ACCOUNT)).length).toBe(2);
  });

  it.each<[string, unknown, RegExp]>([
    ['unknown action', { action: 'mint', amount: '1' }, /admin\/invalid/],
    ['extra field', { action: 'deposit', amount: '1', idempotencyKey: 'k', to: 'me' }, /admin\/invalid/],
    [
      'exponent amount',
      { action: 'deposit', amount: '1e6', idempotencyKey: 'k', operator: 'ops' },
      /exponent/,
    ],
    [
      'negative amount',
      { action: 'deposit', amount: '-5', idempotencyKey: 'k', operator: 'ops' },
      /negative/,
    ],
    [
      'zero amount',
      { action: 'withdraw', amount: '0', idempotencyKey: 'k', operator: 'ops' },
      /greater than zero/,
    ],
    [
      'too many decimals',
      { action: 'deposit', amount: '1.0000001', idempotencyKey: 'k', operator: 'ops' },
      /decimals/,
    ],
    ['bad key', { action: 'deposit', amount: '1', idempotencyKey: 'a b', operator: 'ops' }, /admin\/invalid/],
    [
      'unknown market',
      {
        action: 'registerProvider',
        id: 'lp',
        capital: '1',
        maxDiscount: '0.1',
        maxLot: '1',
        symbols: ['DOGE-USD'],
      },
      /unknown market/,
    ],
    [
      'a lot for a market the provider does not quote',
      {
        action: 'registerProvider',
        id: 'lp',
        capital: '1',
        maxDiscount: '0.1',
        maxLot: '1',
        maxLotBySymbol: { 'BTC-USD': '0.1' },
        symbols: ['ETH-USD'],
      },
      /maxLotBySymbol: BTC-USD is not one of the provider's symbols \(ETH-USD\)/,
    ],
    [
      'a lot of zero for one market',
      {
        action: 'registerProvider',
        id: 'lp',
        capital: '1',
        maxDiscount: '0.1',
        maxLot: '1',
        maxLotBySymbol: { 'ETH-USD': '0' },
        symbols: ['ETH-USD'],
      },
      /maxLotBySymbol.ETH-USD/,
    ],
    ['not an object', 'deposit 5', /admin\/invalid/],
  ])('refuses %s with a reason and changes nothing', async (_name, request, reason) => {
    const { p, run } = setup();
    const result = await run(request);
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.reason).toMatch(reason);
    expect(await p.adapters.ledger.journal(INSURANCE_ACCOUNT)).toEqual([]);
    expect(await p.adapters.providers.list('ETH-USD')).toEqual([]);
  });

  it('refuses a maxLotBySymbol key "__proto__" (zod would drop it) as it refuses any key that is not a market', async () => {
    // Found by a review of session 29's changes: the request was accepted and the lot silently ignored.
    const { p, run } = setup();
    const request = JSON.parse(
      '{"action":"registerProvider","id":"lp","capital":"1000","maxDiscount":"0.02","maxLot":"10",' +
        '"maxLotBySymbol":{"__proto__":"0.05"},"symbols":["ETH-USD"]}',
    ) as unknown;
    expect(await run(request)).toMatchObject({ ok: false, reason: expect.stringMatching(/__proto__/) });
    expect(await p.adapters.providers.get('lp')).toBeUndefined();
  });

  it('says a provider changed under a registration (not "insufficient funds") when its conditional put is refused', async () => {
    // Noticed by the pipeline fuzzing in session 29: a change of terms racing an auction fill was refused as
    // "admin/insufficient-funds or concurrent change".
    const p = createPipeline();
    const providers = p.adapters.providers;
    let race = false;
    const racing: ProviderRepository = {
      list: (symbol) => providers.list(symbol),
      get: (id) => providers.get(id),
      put: async (record, expected) => {
        const stored = await providers.get(record.id);
        // An auction fill lands between the registration's read and its write.
        if (race && stored) await providers.put({ ...stored, version: stored.version + 1 }, stored.version);
        return providers.put(record, expected);
      },
    };
    const deps = {
      ...p.adapters,
      providers: racing,
      config: p.config,
      telemetry: p.telemetry,
      nowMs: () => p.clock.nowMs(),
    };
    const terms = {
      action: 'registerProvider',
      id: 'lp',
      maxDiscount: '0.02',
      maxLot: '10',
      symbols: ['ETH-USD'],
    };
    expect(await handleAdmin({ ...terms, capital: '1000' }, deps)).toMatchObject({ ok: true });
    race = true;
    expect(await handleAdmin({ ...terms, maxLot: '5' }, deps)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^admin\/concurrent-change: .*read it again and retry/),
    });
    expect((await providers.get('lp'))?.maxLot).toBe(parseBase('10'));
  });

  it('refuses a deposit too large for a DynamoDB number with a reason, and changes nothing', async () => {
    const { p, run } = setup();
    const result = await run({
      action: 'deposit',
      amount: `1${'0'.repeat(30)}`,
      idempotencyKey: 'huge',
      operator: 'ops',
    });
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/amount: .*too large/) });
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(0n);
  });

  it('refuses a withdrawal below the floor with a reason', async () => {
    const { p, run } = setup();
    await run({ action: 'deposit', amount: '10', idempotencyKey: 'd1', operator: 'ops' });
    const result = await run({
      action: 'withdraw',
      amount: '10.000001',
      idempotencyKey: 'w1',
      operator: 'ops',
    });
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/admin\/insufficient-funds/) });
    // With what was asked and what the fund holds above its floor, in its currency (the AWS ledger's refusal says
    // only "ledger/below-floor"; the amounts had no currency and it said "or concurrent change": walk43-withdraw-refusal).
    expect(result.ok ? '' : result.reason).toBe(
      'admin/insufficient-funds: ledger/below-floor: withdrawing 10.000001 USD would take the fund below its floor ' +
        '(balance 10.00 USD, floor 0.00 USD: at most 10.00 USD can be withdrawn); nothing moved',
    );
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(parseQuote('10'));
  });

  it('refuses a key used again with another amount or direction: what it moved, that nothing moved, what to do', async () => {
    // walk43-key-reused: said "ledger/idempotency-conflict: insurance-fund admin:d1 was applied with 1000.5, not 2000".
    const { p, run } = setup();
    await run({ action: 'deposit', amount: '1000.5', idempotencyKey: 'd1', operator: 'ops' });
    await run({ action: 'withdraw', amount: '100', idempotencyKey: 'w1', operator: 'ops' });
    const tail = '; nothing moved (a key moves the fund once: a new movement needs a new key)';
    expect(await run({ action: 'deposit', amount: '2000', idempotencyKey: 'd1', operator: 'ops' })).toEqual({
      ok: false,
      reason: `admin/idempotency-key-reused: key d1 already moved a deposit of 1,000.50 USD, not a deposit of 2,000.00 USD${tail}`,
    });
    expect(await run({ action: 'deposit', amount: '100', idempotencyKey: 'w1', operator: 'ops' })).toEqual({
      ok: false,
      reason: `admin/idempotency-key-reused: key w1 already moved a withdrawal of 100.00 USD, not a deposit of 100.00 USD${tail}`,
    });
    expect((await p.adapters.ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(parseQuote('900.5'));
  });

  it.each(['admin', 'admin:x'])(
    'refuses a position named "%s" (its ledger keys would meet the operator\'s) and changes nothing',
    async (id) => {
      const { p, run } = setup();
      const result = await run({
        action: 'openPosition',
        id,
        traderId: 't1',
        symbol: 'ETH-USD',
        side: 'LONG',
        size: '10',
        entryPrice: '200',
        collateral: '290',
      });
      // Its first liquidation's fee would be keyed "<id>:0:fee": for "admin:x" that is a deposit keyed "x:0:fee"
      // (every delivery of the liquidation then met the deposit's key: dead-lettered, or the fee taken as paid).
      expect(result).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/admin\/invalid: id: .*reserved/),
      });
      expect(await p.adapters.positions.get(id)).toBeUndefined();
      // An id that only contains "admin" is an ordinary one.
      expect(
        await run({
          action: 'openPosition',
          id: `${id}x`.replace(':', '-'),
          traderId: 't1',
          symbol: 'ETH-USD',
          side: 'LONG',
          size: '10',
          entryPrice: '200',
          collateral: '290',
        }),
      ).toMatchObject({ ok: true });
    },
  );

  it('registers a provider and opens a healthy position, refusing one already liquidatable', async () => {
    const { p, run } = setup();
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    expect(
      await run({
        action: 'registerProvider',
        id: 'lp-1',
        capital: '50000',
        maxDiscount: '0.05',
        maxLot: '100',
        symbols: ['ETH-USD'],
      }),
    ).toEqual({ ok: true, id: 'lp-1', woken: 0 });
    expect((await p.adapters.providers.get('lp-1'))?.capital).toBe(parseQuote('50000'));
    const open = openP1('20');
    expect(await run(open)).toEqual({ ok: true, id: 'p1' });
    const underwater = { ...open, id: 'p2', entryPrice: '230' };
    expect(await run(underwater)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/liquidatable-at-open/),
    });
    expect(await p.adapters.positions.get('p2')).toBeUndefined();
  });

  // lot51-open-whole-lots: the venue fills whole lots only; a part under one could never be sold.
  it("refuses a position that is not a whole number of its market's lot, naming the lot, and opens one that is", async () => {
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) =>
        m.symbol === 'ETH-USD' ? { ...m, lotSize: '0.001' } : m,
      ),
    });
    const p = createPipeline({ config });
    const run = (request: unknown) =>
      handleAdmin(request, { ...p.adapters, config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    expect(await run({ ...openP1('20'), size: '1.0005' })).toEqual({
      ok: false,
      reason:
        "admin/size-off-lot: size 1.0005 is not a whole number of ETH-USD's lot 0.001 (the exchange fills whole lots only: the part under a lot could never be sold); open it as 1 or 1.001",
    });
    expect(await run({ ...openP1('20'), size: '0.0005' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/lot 0\.001 .*; open it as 0\.001$/),
    });
    expect(await p.adapters.positions.get('p1')).toBeUndefined();
    expect(await run({ ...openP1('20'), size: '1.001' })).toEqual({ ok: true, id: 'p1' });
    expect((await p.adapters.positions.get('p1'))?.size).toBe(parseBase('1.001'));
    // A market without a lot takes any size, as before.
    expect(await run({ ...openP1('1'), id: 'p2', symbol: 'BTC-USD', size: '0.00000001' })).toEqual({
      ok: true,
      id: 'p2',
    });
  });
});

// admin51-invocation-journaled, admin51-declared-operator: a movement through the admin function named nobody (Lambda
// hands it no caller), and nothing in its journal entry led to the CloudTrail event that names who invoked it.
describe('who moves the fund through an admin request', () => {
  const move = (action: 'deposit' | 'withdraw', key: string, operator: unknown) => ({
    action,
    amount: '10',
    idempotencyKey: key,
    ...(operator === undefined ? {} : { operator }),
  });

  it('journals the invocation id and the declared operator beside the actor, never in it', async () => {
    const p = createPipeline();
    const deps = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    const viaLambda = { ...deps, invocationId: 'req-1' };
    const deposit = await handleAdmin(move('deposit', 'd1', '  jane@treasury  '), viaLambda);
    expect(deposit).toMatchObject({
      ok: true,
      entry: { invocationId: 'req-1', declaredOperator: 'jane@treasury' },
    });
    expect(deposit.ok && deposit.entry).not.toHaveProperty('actor');
    await handleAdmin(move('withdraw', 'w1', 'jane@treasury'), { ...deps, invocationId: 'req-2' });
    // The CLI's path: its caller as STS names it (actor), no invocation.
    const arn = 'arn:aws:sts::123456789012:assumed-role/treasury/jane';
    await handleAdmin(move('deposit', 'd2', arn), { ...deps, actor: arn });
    const journal = await p.adapters.ledger.journal(INSURANCE_ACCOUNT);
    expect(journal.map((e) => [e.kind, e.actor, e.invocationId, e.declaredOperator])).toEqual([
      ['deposit', undefined, 'req-1', 'jane@treasury'],
      ['withdraw', undefined, 'req-2', 'jane@treasury'],
      ['deposit', arn, undefined, arn],
    ]);
  });

  it("keeps the first invocation's id and operator when its key is sent again from another invocation", async () => {
    const p = createPipeline();
    const deps = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    await handleAdmin(move('deposit', 'd1', 'jane'), { ...deps, invocationId: 'first' });
    const again = await handleAdmin(move('deposit', 'd1', 'mallory'), { ...deps, invocationId: 'second' });
    expect(again).toMatchObject({
      ok: true,
      alreadyApplied: true,
      entry: { invocationId: 'first', declaredOperator: 'jane' },
    });
    const journal = await p.adapters.ledger.journal(INSURANCE_ACCOUNT);
    expect(journal.map((e) => [e.invocationId, e.declaredOperator])).toEqual([['first', 'jane']]);
  });

  it.each<[string, unknown, string]>([
    [
      'missing',
      undefined,
      'admin/invalid: operator: required for a deposit or withdrawal: who asks (a name or an IAM ARN, journaled as declared, unverified)',
    ],
    ['blank', ' \t ', 'admin/invalid: operator: blank: say who asks (a name or an IAM ARN)'],
    ['too long', 'x'.repeat(2049), 'admin/invalid: operator: at most 2048 characters'],
    [
      'a line break inside',
      'jane\nbackstop: forged line',
      'admin/invalid: operator: printable characters only (no control, format or separator character)',
    ],
    [
      'a bidi override',
      'jane\u202e',
      'admin/invalid: operator: printable characters only (no control, format or separator character)',
    ],
    ['not a string', 7, 'admin/invalid: operator: must be a string'],
  ])(
    'refuses a deposit and a withdrawal whose operator is %s, naming it, and moves nothing',
    async (_, operator, reason) => {
      const { p, run } = setup();
      for (const action of ['deposit', 'withdraw'] as const)
        expect(await run(move(action, `${action}-1`, operator))).toEqual({ ok: false, reason });
      expect(await p.adapters.ledger.journal(INSURANCE_ACCOUNT)).toEqual([]);
    },
  );

  it('takes 2048 printable characters, trimmed, any script', async () => {
    const { p, run } = setup();
    const name = `Zoë Ødegård ${'x'.repeat(2048 - 12)}`;
    expect(name).toHaveLength(2048);
    expect(await run(move('deposit', 'd1', ` ${name} `))).toMatchObject({
      ok: true,
      entry: { declaredOperator: name },
    });
    expect((await p.adapters.ledger.journal(INSURANCE_ACCOUNT))[0]!.declaredOperator).toBe(name);
  });

  // review51-admin-operator-arn: the CLI declares its caller's ARN by default, which the 128 of before refused.
  it("takes every ARN the CLI may declare: an assumed role's at its longest, a user's with a path", async () => {
    const { p, run } = setup();
    // The longest partition's, a 64-character role name and a 64-character session name.
    const assumedRole = `arn:aws-us-gov:sts::123456789012:assumed-role/${'r'.repeat(64)}/${'s'.repeat(64)}`;
    expect(assumedRole).toHaveLength(175);
    // A 511-character path (IAM's limit is 512) and a 64-character name.
    const user = `arn:aws:iam::123456789012:user/${'p/'.repeat(255)}${'u'.repeat(64)}`;
    for (const [key, arn] of [
      ['d1', assumedRole],
      ['d2', user],
    ] as const)
      expect(await run(move('deposit', key, arn))).toMatchObject({
        ok: true,
        entry: { declaredOperator: arn },
      });
    expect((await p.adapters.ledger.journal(INSURANCE_ACCOUNT)).map((e) => e.declaredOperator)).toEqual([
      assumedRole,
      user,
    ]);
  });
});

describe('resumeFeed', () => {
  it("lets a feed that restarted its sequence drive the market again, judged against the last tick's mark and time", async () => {
    const { p, run } = setup();
    await p.tick('ETH-USD', '200', { sequence: 4999 }); // a market's first print waits for a second
    await p.tick('ETH-USD', '200', { sequence: 5000 });
    const long = await p.open('LONG', '10', '200', '200'); // liquidatable below ~184.6
    // The feed restarts at 1: refused as out of order, the market is blind.
    expect(await p.tick('ETH-USD', '180', { sequence: 1 })).toMatchObject({ reason: 'tick/out-of-order' });
    expect(await run({ action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 2 })).toEqual({
      ok: true,
      id: 'ETH-USD',
      sequence: { before: 5000, after: 1 },
    });
    const market = await p.adapters.markets.get('ETH-USD');
    expect(market?.lastTick).toMatchObject({ sequence: 1 });
    expect(market?.lastTick?.markPrice).toBe(parsePrice('200'));
    // The old feed's ticks end a clock skew (5 s) after its last: one delivered again is refused by its time, and
    // the new feed's come after.
    expect(market?.resumedAfterMs).toBe(p.clock.nowMs() + 5_000);
    expect(await p.tick('ETH-USD', '200', { sequence: 5000 })).toMatchObject({ reason: 'tick/out-of-order' });
    p.clock.advance(6_000);
    // Still judged against 200 (the band holds): a bad print trips the breaker, a real one liquidates.
    expect(await p.tick('ETH-USD', '100', { sequence: 2 })).toMatchObject({ reason: 'tick/price-band' });
    expect(await p.tick('ETH-USD', '180', { sequence: 3 })).toMatchObject({
      status: 'accepted',
      enqueued: 1,
    });
    expect((await p.adapters.positions.get(long.id))?.state).toBe('LIQUIDATING');
  });

  it('lets a feed that restarted before its first print was confirmed open the market (the print waits on)', async () => {
    const { p, run } = setup();
    await p.open('LONG', '10', '200', '200'); // liquidatable below ~184.6
    expect(await p.tick('ETH-USD', '200', { sequence: 700 })).toMatchObject({ reason: 'tick/unconfirmed' });
    // The feed restarts at 1: out of order against the waiting print, the market could never open.
    expect(await p.tick('ETH-USD', '200', { sequence: 1 })).toMatchObject({ reason: 'tick/out-of-order' });
    expect(await run({ action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 2 })).toEqual({
      ok: true,
      id: 'ETH-USD',
      sequence: { before: 700, after: 1 },
    });
    const market = await p.adapters.markets.get('ETH-USD');
    expect(market?.lastTick).toBeUndefined();
    expect(market?.breaker?.tick).toMatchObject({ sequence: 1, markPrice: parsePrice('200') });
    p.clock.advance(6_000);
    // The next print is judged against the waiting one: within the band it opens the market, and liquidates.
    expect(await p.tick('ETH-USD', '180', { sequence: 2 })).toMatchObject({
      status: 'accepted',
      enqueued: 1,
    });
  });

  it.each([
    { case: 'an unknown market', request: { symbol: 'DOGE-USD', fromSequence: 1 }, reason: /DOGE-USD/ },
    {
      case: 'a market without ticks',
      request: { symbol: 'BTC-USD', fromSequence: 1 },
      reason: /nothing-to-resume/,
    },
    {
      case: 'a sequence not below the last',
      request: { symbol: 'ETH-USD', fromSequence: 11 },
      reason: /nothing-to-resume/,
    },
    {
      case: 'a negative sequence',
      request: { symbol: 'ETH-USD', fromSequence: -1 },
      reason: /admin\/invalid/,
    },
  ])('refuses $case and changes nothing', async ({ request, reason }) => {
    const { p, run } = setup();
    await p.tick('ETH-USD', '200', { sequence: 9 }); // a market's first print waits for a second
    await p.tick('ETH-USD', '200', { sequence: 10 });
    const result = await run({ action: 'resumeFeed', ...request });
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(reason) });
    expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.sequence).toBe(10);
  });

  it('takes over a tick of the old numbering still starting liquidations: what it started is sent again, what it left the restarted feed starts', async () => {
    const p = createPipeline({ maxPositionsPerInvocation: 1 });
    const deps = adminDepsOf(p);
    await p.tick('ETH-USD', '200', { sequence: 10 });
    const longs = [];
    for (let i = 0; i < 2; i++) longs.push(await p.open('LONG', '10', '200', '200'));
    const tick = await pendingTick(p, '180', 11);
    // Its invocation died after starting one liquidation, before its message went out (here: the message is lost).
    const queue = p.adapters.liquidationQueue;
    for (const m of await queue.receive(10, 30)) await queue.delete(m.receiptHandle);
    const started = (await p.adapters.liquidations.listByTick('ETH-USD#11')).map((l) => l.positionId);
    expect(started).toHaveLength(1);

    expect(await handleAdmin({ action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 1 }, deps)).toEqual({
      ok: true,
      id: 'ETH-USD',
      sequence: { before: 11, after: 0 },
      tookOver: { sequence: 11, resent: 1 },
    });
    const market = await p.adapters.markets.get('ETH-USD');
    expect(market?.pendingSequence).toBeUndefined();
    expect(market?.lastTick).toMatchObject({ sequence: 0, markPrice: 18_000_000_000n });
    expect(queue.pending().map((m) => JSON.parse(m.body).positionId)).toEqual(started);

    // The old tick's continuation, late: nothing of it is pending any more; it sends what it started once more.
    expect(await handleTick(tick, p.marginDeps, p.clock.nowMs(), 1)).toMatchObject({
      reason: 'tick/continuation-done',
    });
    // The restarted feed's first print (stamped after any of the old feed's can be) is judged as usual, and starts
    // the long the old tick had not reached.
    p.clock.advance(6_000);
    const restarted = await p.tick('ETH-USD', '180', { sequence: 1 });
    expect(restarted).toMatchObject({ status: 'accepted', enqueued: 1 });
    await p.drain();
    for (const long of longs) expect((await p.adapters.positions.get(long.id))?.state).toBe('CLOSED');
    expect((await p.check()).violations).toEqual([]);
  });

  it('leaves the tick it would take over alone when the market changed since it was read', async () => {
    const p = createPipeline({ maxPositionsPerInvocation: 1 });
    await p.tick('ETH-USD', '200', { sequence: 10 });
    for (let i = 0; i < 2; i++) await p.open('LONG', '10', '200', '200');
    const tick = await pendingTick(p, '180', 11);
    // The tick's continuation finishes between the resume's read and its rebase.
    const racing = racingRebase(p, async () => {
      for (let segment = 1; ; segment++) {
        const outcome = await handleTick(tick, p.marginDeps, p.clock.nowMs(), segment);
        if (outcome.status !== 'accepted' || !outcome.needsContinuation) break;
      }
    });
    expect(
      await handleAdmin({ action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 1 }, racing),
    ).toMatchObject({ ok: false, reason: expect.stringMatching(/admin\/concurrent-change/) });
    const market = await p.adapters.markets.get('ETH-USD');
    expect(market?.lastTick?.sequence).toBe(11);
    expect(market?.pendingSequence).toBeUndefined();
    // Asked again, the resume finds nothing to take over.
    expect(
      await handleAdmin({ action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 1 }, adminDepsOf(p)),
    ).toEqual({ ok: true, id: 'ETH-USD', sequence: { before: 11, after: 0 } });
  });
});

describe('reindexPositions', () => {
  /** The default rules with ETH-USD's maintenance margin raised from 2.5 % to 4 % (a deploy's change). */
  const RAISED = parseRiskConfig({
    ...DEFAULT_RISK_CONFIG_INPUT,
    markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) =>
      m.symbol === 'ETH-USD' ? { ...m, maintenanceMargin: '0.04' } : m,
    ),
  });

  it("prices a side's positions again after a change of the maintenance margin, page by page, so the index finds them", async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    const longs = [];
    for (const collateral of ['200', '300', '400']) longs.push(await p.open('LONG', '10', '200', collateral));
    const short = await p.open('SHORT', '10', '200', '200');
    const raised = { ...p.adapters, config: RAISED, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    // Priced again, the first long is past 186 (its old price was below it): the index did not show it there.
    const repriced = withLiquidationPrice(longs[0]!, RAISED).liquidationPrice;
    expect(repriced).toBeGreaterThan(parsePrice('186'));
    expect(longs[0]!.liquidationPrice).toBeLessThan(parsePrice('186'));
    const crossedAt186 = async () =>
      (await p.adapters.positions.queryCrossed('ETH-USD', 'LONG', parsePrice('186'), 10)).positions.map(
        (x) => x.id,
      );
    expect(await crossedAt186()).toEqual([]);

    const first = await handleAdmin(
      { action: 'reindexPositions', symbol: 'ETH-USD', side: 'LONG', limit: 2 },
      raised,
    );
    expect(first).toMatchObject({ ok: true, id: 'ETH-USD', reindexed: { checked: 2, updated: 2 } });
    const cursor = first.ok ? first.reindexed?.cursor : undefined;
    expect(cursor).toBeDefined();
    const second = await handleAdmin(
      { action: 'reindexPositions', symbol: 'ETH-USD', side: 'LONG', limit: 2, cursor },
      raised,
    );
    expect(second).toEqual({ ok: true, id: 'ETH-USD', reindexed: { checked: 1, updated: 1 } });
    for (const long of longs) {
      const stored = await p.adapters.positions.get(long.id);
      expect(stored).toMatchObject({
        liquidationPrice: withLiquidationPrice(long, RAISED).liquidationPrice,
        version: long.version + 1,
      });
    }
    expect(await crossedAt186()).toEqual([longs[0]!.id]);
    // The other side is its own run; once priced, a side is left as it is.
    expect((await p.adapters.positions.get(short.id))?.version).toBe(short.version);
    expect(
      await handleAdmin({ action: 'reindexPositions', symbol: 'ETH-USD', side: 'LONG' }, raised),
    ).toEqual({ ok: true, id: 'ETH-USD', reindexed: { checked: 3, updated: 0 } });
  });

  /** A pipeline deployed with RAISED, holding a long written under the old rules (liquidation price ~184.62). */
  async function deployedWithOldLong() {
    const p = createPipeline({ config: RAISED });
    await p.tick('ETH-USD', '200');
    const old = withLiquidationPrice(
      {
        id: 'old-long',
        traderId: 't1',
        symbol: 'ETH-USD',
        side: 'LONG',
        size: parseBase('10'),
        entryPrice: parsePrice('200'),
        collateral: parseQuote('200'),
        state: 'OPEN',
        version: 0,
      },
      parseRiskConfig(DEFAULT_RISK_CONFIG_INPUT),
    );
    await p.adapters.positions.create(old);
    return { p, old, raisedPrice: withLiquidationPrice(old, RAISED).liquidationPrice };
  }

  it('a position reopened by a cancelled liquidation is priced by the rules deployed, not the ones it had', async () => {
    const { p, old, raisedPrice } = await deployedWithOldLong();
    // LIQUIDATING when a reindex runs (it reads only OPEN positions), then healthy again: cancelled, reopened.
    expect(await p.tick('ETH-USD', '184.5')).toMatchObject({ enqueued: 1 });
    expect((await p.adapters.positions.get(old.id))?.state).toBe('LIQUIDATING');
    await p.tick('ETH-USD', '200');
    await p.drain();
    expect(p.adapters.liquidations.all().map((l) => l.state)).toEqual(['CANCELLED']);
    const reopened = (await p.adapters.positions.get(old.id))!;
    expect(reopened).toMatchObject({ state: 'OPEN', liquidationPrice: raisedPrice });
    // So the next tick past its new price finds it.
    expect(await p.tick('ETH-USD', '186')).toMatchObject({ enqueued: 1 });
  });

  it("a reindex that writes a crossed position between a tick's index read and its start does not hide it", async () => {
    const { p, old } = await deployedWithOldLong();
    const deps = { ...p.adapters, config: RAISED, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    const positions = p.adapters.positions;
    const read = positions.queryCrossed.bind(positions);
    let raced = false;
    Object.assign(positions, {
      queryCrossed: async (...args: Parameters<typeof positions.queryCrossed>) => {
        const page = await read(...args);
        if (!raced) {
          raced = true;
          await handleAdmin({ action: 'reindexPositions', symbol: 'ETH-USD', side: 'LONG' }, deps);
        }
        return page;
      },
    });
    expect(await p.tick('ETH-USD', '184')).toMatchObject({ status: 'accepted', enqueued: 1 });
    expect(raced).toBe(true);
    expect((await p.adapters.positions.get(old.id))?.state).toBe('LIQUIDATING');
  });

  it.each([
    { case: 'an unknown market', request: { symbol: 'DOGE-USD', side: 'LONG' }, reason: /DOGE-USD/ },
    { case: 'a bad side', request: { symbol: 'ETH-USD', side: 'FLAT' }, reason: /admin\/invalid/ },
    {
      case: 'a page too long',
      request: { symbol: 'ETH-USD', side: 'LONG', limit: 5000 },
      reason: /admin\/invalid/,
    },
    {
      case: 'a cursor it did not return',
      request: { symbol: 'ETH-USD', side: 'LONG', cursor: 'not-a-cursor' },
      reason: /admin\/bad-cursor/,
    },
    {
      // Long enough for a key per shard of 16 (a review saw 2,514 characters refused as too long): judged as a cursor.
      case: 'a long cursor it did not return',
      request: { symbol: 'ETH-USD', side: 'LONG', cursor: 'x'.repeat(5000) },
      reason: /admin\/bad-cursor/,
    },
  ])('refuses $case and changes nothing', async ({ request, reason }) => {
    const { p, run } = setup();
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200');
    const result = await run({ action: 'reindexPositions', ...request });
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(reason) });
    expect((await p.adapters.positions.get(long.id))?.version).toBe(long.version);
  });
});

describe("a registration's wake is counted by market (registration-wakes-uncounted)", () => {
  /** A SELL auction of `symbol` asleep until its wake mark. */
  const sleeperOf = (id: string, symbol: string, wakeMark: string): AuctionRecord => ({
    id,
    liquidationId: `${id}:liq`,
    symbol,
    direction: 'SELL',
    lot: parseBase('1'),
    remainingLot: parseBase('1'),
    top: parsePrice('200'),
    startedAtMs: 1,
    resets: 0,
    step: 1,
    state: 'RUNNING',
    fills: [],
    wakeMark: parsePrice(wakeMark),
    version: 0,
  });
  const both = { ...REGISTER_LP1, symbols: ['ETH-USD', 'BTC-USD'] };

  it('AuctionsWoken in each market woken, as a tick and a spent provider count theirs', async () => {
    const { p, run } = setup();
    for (const i of [1, 2, 3]) await p.adapters.auctions.create(sleeperOf(`e${i}`, 'ETH-USD', '190'));
    for (const i of [1, 2]) await p.adapters.auctions.create(sleeperOf(`b${i}`, 'BTC-USD', '9000'));
    expect(await run(both)).toEqual({ ok: true, id: 'lp1', woken: 5 });
    // Before: nothing (the admin service had no telemetry; only its answer said how many).
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(3);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@BTC-USD`)).toBe(2);
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(5);
    expect(p.telemetry.unmarked).toEqual(new Set());
  });

  it('a failed wake in the market it failed in, with a warning; the other market woken and counted', async () => {
    const { p, run } = setup();
    await p.adapters.auctions.create(sleeperOf('e1', 'ETH-USD', '190'));
    await p.adapters.auctions.create(sleeperOf('b1', 'BTC-USD', '9000'));
    const sleepers = p.adapters.auctions.sleepers.bind(p.adapters.auctions);
    vi.spyOn(p.adapters.auctions, 'sleepers').mockImplementation(async (symbol, ...rest) => {
      if (symbol === 'BTC-USD') throw new Error('ThrottlingException');
      return sleepers(symbol, ...rest);
    });
    // BTC's wake goes on in a continuation, which retries its sleepers (registration-wake-unbounded).
    expect(await run(both)).toMatchObject({ ok: true, id: 'lp1', woken: 1, wakeContinues: ['BTC-USD'] });
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@BTC-USD`)).toBe(1);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBeUndefined();
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(1);
    expect(p.telemetry.warnings).toContain(
      'provider registered; the auction function retries the wake of the sleeping auctions of BTC-USD',
    );
    expect(p.telemetry.unmarked).toEqual(new Set());
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTracedRefusal } from '../../shared/ports/index.ts';
import { parseTickDetail } from '../../shared/schemas/tick.ts';
import { type AdminDeps, handleAdmin } from '../../shared/services/admin.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { handleTick } from '../../shared/services/margin-check.ts';
import { recordFigures, toJson } from '../support/invariants.ts';
import { createPipeline, type Pipeline, syntheticBook } from '../support/pipeline.ts';

/**
 * Scenario 6, bad input. Property-based fuzzing of tick events (through parseTickDetail and handleTick, as the
 * margin-check function calls them) and of admin requests (handleAdmin, as the admin function calls it): every
 * bad input is refused with a namespaced reason and changes nothing, checked by snapshotting the whole embedded
 * state before and after. One documented exception: a well-formed tick outside the price band arms the circuit
 * breaker (that is the guard working); it then changes the breaker only. Then the bad print inside the real data.
 */

const repoRoot = path.resolve(import.meta.dirname, '..', '..');
const NOW = Date.UTC(2020, 2, 12, 9, 30, 0);

/** Everything a handler could change, as one comparable string. */
async function snapshot(p: Pipeline, symbols: readonly string[], withoutBreaker = false) {
  const markets = [];
  for (const symbol of symbols) {
    // A refusal's trace (feed48-refusal-trace) is the refusal's own record, checked apart.
    const { refusals: _trace, ...state } = (await p.adapters.markets.get(symbol)) ?? {};
    const read = 'symbol' in state ? state : undefined;
    markets.push(withoutBreaker && read ? { ...read, breaker: undefined } : read);
  }
  return toJson({
    // Every position, liquidation, auction and provider write goes through the observer's log.
    writes: p.observer.groups.length,
    balance: await p.adapters.ledger.balance(INSURANCE_ACCOUNT),
    journal: await p.adapters.ledger.journal(INSURANCE_ACCOUNT),
    markets,
    queues: [
      p.adapters.liquidationQueue.pending(),
      p.adapters.auctionQueue.pending(),
      p.adapters.liquidationDeadLetters.pending(),
      p.adapters.auctionDeadLetters.pending(),
    ],
  });
}

/** A market with an accepted tick at 200, positions on both sides, a fund and a provider. */
async function world(): Promise<Pipeline> {
  const p = createPipeline({ startMs: NOW });
  await p.tick('ETH-USD', '200', { sequence: 10 });
  p.seed(syntheticBook({ count: 20, seed: 5, price: '200' }));
  await p.fund('1000');
  await p.provider('lp-1', '100000', '0.02', '100');
  return p;
}

// --- tick events -----------------------------------------------------------------------------------------------

const validDetail = () => ({
  symbol: 'ETH-USD',
  markPrice: '199.5',
  timestamp: NOW,
  sequence: 11,
  source: 'fuzz',
});

const notAPrice = fc.oneof(
  fc.constantFrom(
    'NaN',
    'nan',
    'Infinity',
    '-Infinity',
    'inf',
    '-5',
    '-0.01',
    '0',
    '0.00000000',
    '1e3',
    '1E-2',
    '2e2',
    '0x10',
    ' 199',
    '199 ',
    '+199',
    '1,000',
    '199.',
    '.5',
    '',
    '１９９',
    '199.123456789',
    '9'.repeat(40),
    `1${'0'.repeat(31)}.5`,
  ),
  fc.string({ maxLength: 40 }).filter((s) => !/^\d+(\.\d{1,8})?$/.test(s)),
);

const wrongType = fc.oneof(
  fc.constantFrom(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    null,
    true,
    false,
    199.5,
    -1,
    1e308,
  ),
  fc.constant({}),
  fc.constant([]),
  fc.constant({ value: '199.5' }),
);

const MAX_EPOCH_MS = 8.64e15;
type Mutation = { readonly label: string; readonly apply: (d: Record<string, unknown>) => unknown };

/** One mutation of a valid event, each bad by construction. */
const tickMutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constantFrom('symbol', 'markPrice', 'timestamp', 'sequence', 'source').map((field) => ({
    label: `missing ${field}`,
    apply: (d: Record<string, unknown>) => {
      delete d[field];
      return d;
    },
  })),
  fc
    .tuple(fc.constantFrom('symbol', 'markPrice', 'indexPrice', 'timestamp', 'sequence', 'source'), wrongType)
    .map(([field, value]) => ({
      label: `${field} of type ${Array.isArray(value) ? 'array' : typeof value} (${String(value)})`,
      apply: (d: Record<string, unknown>) => ({ ...d, [field]: value }),
    })),
  fc.tuple(fc.constantFrom('markPrice', 'indexPrice'), notAPrice).map(([field, value]) => ({
    label: `${field} "${value.slice(0, 20)}"`,
    apply: (d: Record<string, unknown>) => ({ ...d, [field]: value }),
  })),
  fc
    .oneof(
      fc.integer({ min: NOW + 5_001, max: MAX_EPOCH_MS }),
      fc.integer({ min: 0, max: NOW - 60_001 }),
      fc.constantFrom(-1, 1.5, MAX_EPOCH_MS + 1, Number.MAX_SAFE_INTEGER + 2),
      fc.constantFrom(
        '1970-01-01T00:00:00Z',
        '2020-03-12T09:40:00Z',
        '9999-12-31T23:59:59Z',
        '2020-13-45T00:00:00Z',
        '2020-03-12 09:30:00',
        'yesterday',
        '',
      ),
    )
    .map((timestamp) => ({
      label: `timestamp ${String(timestamp)}`,
      apply: (d: Record<string, unknown>) => ({ ...d, timestamp }),
    })),
  fc
    .oneof(
      fc.constantFrom(
        'DOGE-USD',
        'eth-usd',
        'ETH-USDT',
        'ETH',
        '',
        ' ETH-USD',
        'ETH-USD\u0000',
        '../ETH-USD',
      ),
      fc.string({ minLength: 1, maxLength: 12 }).filter((s) => s !== 'ETH-USD' && s !== 'BTC-USD'),
    )
    .map((symbol) => ({
      label: `symbol "${symbol}"`,
      apply: (d: Record<string, unknown>) => ({ ...d, symbol }),
    })),
  fc.constantFrom(10, 9, 0, -1, 1.5).map((sequence) => ({
    label: `sequence ${sequence} (seen, older or not a sequence)`,
    apply: (d: Record<string, unknown>) => ({ ...d, sequence }),
  })),
  fc.constantFrom('100', '250', '1000000', '0.00000001').map((markPrice) => ({
    label: `well-formed price ${markPrice} outside the band`,
    apply: (d: Record<string, unknown>) => ({ ...d, markPrice }),
  })),
  fc.constantFrom('150', '260').map((indexPrice) => ({
    label: `index ${indexPrice} far from the mark`,
    apply: (d: Record<string, unknown>) => ({ ...d, indexPrice }),
  })),
  fc.constantFrom('symbol', 'source', 'markPrice').map((field) => ({
    label: `oversized ${field}`,
    apply: (d: Record<string, unknown>) => ({ ...d, [field]: '9'.repeat(1_000_000) }),
  })),
  fc.constantFrom('indexprice', 'mark', '__proto__', 'constructor').map((key) => ({
    label: `unknown key ${key}`,
    // Through JSON, as EventBridge delivers it: "__proto__" becomes an own key, as an attacker would send it.
    apply: (d: Record<string, unknown>) => JSON.parse(JSON.stringify({ ...d, [key]: '199' })),
  })),
  fc.constant({
    label: 'deeply nested payload',
    apply: (d: Record<string, unknown>) => {
      let nested: unknown = '199.5';
      for (let i = 0; i < 10_000; i++) nested = { nested };
      return { ...d, markPrice: nested };
    },
  }),
  fc.constant({
    label: 'a getter that throws',
    apply: (d: Record<string, unknown>) =>
      Object.defineProperty({ ...d }, 'markPrice', {
        enumerable: true,
        get() {
          throw new Error('hostile');
        },
      }),
  }),
  fc.constantFrom(null, undefined, 42, 'tick', [], [validDetail()]).map((payload) => ({
    label: `payload ${Array.isArray(payload) ? 'array' : String(payload)}`,
    apply: () => payload,
  })),
);

// --- admin requests --------------------------------------------------------------------------------------------

const validAdmin = (): Record<string, Record<string, unknown>> => ({
  deposit: { action: 'deposit', amount: '100', idempotencyKey: 'k-1', operator: 'ops' },
  withdraw: { action: 'withdraw', amount: '100', idempotencyKey: 'k-2', operator: 'ops' },
  registerProvider: {
    action: 'registerProvider',
    id: 'lp-9',
    capital: '1000',
    maxDiscount: '0.02',
    maxLot: '10',
    symbols: ['ETH-USD'],
  },
  openPosition: {
    action: 'openPosition',
    id: 'new-1',
    traderId: 't-1',
    symbol: 'ETH-USD',
    side: 'LONG',
    size: '1',
    entryPrice: '200',
    collateral: '50',
  },
});

const AMOUNT_FIELDS: Record<string, readonly string[]> = {
  deposit: ['amount'],
  withdraw: ['amount'],
  registerProvider: ['capital', 'maxLot'],
  openPosition: ['size', 'entryPrice', 'collateral'],
};
const ID_FIELDS: Record<string, readonly string[]> = {
  deposit: ['idempotencyKey'],
  withdraw: ['idempotencyKey'],
  registerProvider: ['id'],
  openPosition: ['id', 'traderId'],
};

const notAnAmount = fc.oneof(
  fc.constantFrom(
    'NaN',
    'Infinity',
    '-5',
    '0',
    '1e3',
    '',
    ' ',
    '0x1f',
    '1,5',
    `${'9'.repeat(81)}`,
    '1.0000001',
  ),
  fc.string({ maxLength: 12 }).filter((s) => !/^\s*\+?\d+(\.\d+)?\s*$/.test(s)),
);
const notAnId = fc.oneof(
  fc.constantFrom('', 'a b', 'a/b', 'x'.repeat(101), 'é', 'k\u0000'),
  fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !/^[A-Za-z0-9._:-]{1,100}$/.test(s)),
);

const adminMutation: fc.Arbitrary<{ label: string; request: unknown }> = fc
  .constantFrom('deposit', 'withdraw', 'registerProvider', 'openPosition')
  .chain((action) => {
    const base = validAdmin()[action]!;
    const fields = Object.keys(base).filter((k) => k !== 'action');
    return fc.oneof(
      fc.constantFrom(...fields).map((field) => {
        const request = { ...base };
        delete request[field];
        return { label: `${action} without ${field}`, request };
      }),
      fc.tuple(fc.constantFrom(...AMOUNT_FIELDS[action]!), notAnAmount).map(([field, value]) => ({
        label: `${action} ${field} "${value.slice(0, 20)}"`,
        request: { ...base, [field]: value },
      })),
      fc.tuple(fc.constantFrom(...ID_FIELDS[action]!), notAnId).map(([field, value]) => ({
        label: `${action} ${field} "${value.slice(0, 20)}"`,
        request: { ...base, [field]: value },
      })),
      fc.tuple(fc.constantFrom(...fields), wrongType).map(([field, value]) => ({
        label: `${action} ${field} of type ${typeof value}`,
        request: { ...base, [field]: value },
      })),
      fc.constantFrom('extra', 'Amount', '__proto__').map((key) => ({
        label: `${action} with unknown key ${key}`,
        request: JSON.parse(JSON.stringify({ ...base, [key]: '1' })),
      })),
      fc.constantFrom('Deposit', 'delete', '', 'withdraw ', 'drop').map((verb) => ({
        label: `action "${verb}"`,
        request: { ...base, action: verb },
      })),
      fc.constantFrom(null, undefined, 7, 'deposit', [base]).map((request) => ({
        label: `request ${Array.isArray(request) ? 'array' : String(request)}`,
        request,
      })),
      // Well-formed but refused by the rules: unknown markets, the floor, ids taken, a position liquidatable now.
      fc.constantFrom(
        { label: 'withdraw beyond the fund', request: { ...validAdmin().withdraw, amount: '1000000' } },
        {
          label: 'deposit key reused with another amount',
          request: { ...validAdmin().deposit, idempotencyKey: 'seed', amount: '5' },
        },
        {
          label: 'provider for an unknown market',
          request: { ...validAdmin().registerProvider, symbols: ['DOGE-USD'] },
        },
        { label: 'provider with no market', request: { ...validAdmin().registerProvider, symbols: [] } },
        {
          label: 'position on an unknown market',
          request: { ...validAdmin().openPosition, symbol: 'DOGE-USD' },
        },
        { label: 'position side UP', request: { ...validAdmin().openPosition, side: 'UP' } },
        { label: 'position id taken', request: { ...validAdmin().openPosition, id: 'b1' } },
        {
          label: 'position liquidatable at open',
          request: { ...validAdmin().openPosition, collateral: '1' },
        },
      ),
    );
  });

describe('scenario 6: bad input', () => {
  it('refuses every malformed or out-of-rule tick with a reason and changes nothing', async () => {
    const reasons: Record<string, number> = {};
    let runs = 0;
    const symbols = ['ETH-USD', 'BTC-USD'];
    await fc.assert(
      fc.asyncProperty(tickMutation, async (mutation) => {
        runs += 1;
        const p = await world();
        const detail = mutation.apply(validDetail() as Record<string, unknown>);
        const before = await snapshot(p, symbols);
        const beforeBreakerAside = await snapshot(p, symbols, true);
        const parsed = parseTickDetail(detail);
        let reason: string;
        if (!parsed.ok) reason = parsed.reason;
        else {
          const outcome = await handleTick(parsed.tick, p.marginDeps, p.clock.nowMs());
          reason = outcome.status === 'rejected' ? outcome.reason : `accepted: ${toJson(outcome)}`;
        }
        expect(reason, mutation.label).toMatch(/^tick\/[a-z-]+/);
        const key = reason.split(':')[0]!;
        reasons[key] = (reasons[key] ?? 0) + 1;
        // The breaker is the guard itself: a well-formed tick outside the band arms it, and changes nothing else.
        if (key === 'tick/price-band' || key === 'tick/breaker-open') {
          expect(await snapshot(p, symbols, true), mutation.label).toBe(beforeBreakerAside);
          expect((await p.adapters.markets.get('ETH-USD'))?.breaker, mutation.label).toBeDefined();
        } else {
          expect(await snapshot(p, symbols), mutation.label).toBe(before);
        }
        // A refusal that records nothing else leaves its trace, the tick's.
        if (parsed.ok && isTracedRefusal(key))
          expect(
            (await p.adapters.markets.get(parsed.tick.symbol))?.refusals?.[key],
            mutation.label,
          ).toMatchObject({
            sequence: parsed.tick.sequence,
            timestampMs: parsed.tick.timestampMs,
          });
        expect(p.adapters.liquidations.all(), mutation.label).toEqual([]);
      }),
      { numRuns: 400, seed: 7 },
    );
    expect(reasons['tick/malformed']).toBeGreaterThan(100);
    recordFigures('6-bad-ticks', { runs, reasons });
  });

  it('refuses every malformed or out-of-rule admin request with a reason and changes nothing', async () => {
    const reasons: Record<string, number> = {};
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(adminMutation, async ({ label, request }) => {
        runs += 1;
        const p = await world();
        const deps: AdminDeps = {
          ...p.adapters,
          config: p.config,
          telemetry: p.telemetry,
          nowMs: () => p.clock.nowMs(),
        };
        await handleAdmin({ action: 'deposit', amount: '10', idempotencyKey: 'seed', operator: 'ops' }, deps);
        const before = await snapshot(p, ['ETH-USD', 'BTC-USD']);
        const providers = toJson(await p.adapters.providers.list('ETH-USD'));
        // The admin function promises { ok: false, reason } for every refusal: a throw fails the sample.
        const result = await handleAdmin(request, deps);
        const reason = result.ok ? `accepted: ${toJson(result)}` : result.reason;
        // A reason, not an acceptance. Some are not namespaced ("amount: empty value", "unknown market X"): reported.
        expect(reason, label).not.toMatch(/^accepted/);
        expect(reason.length, label).toBeGreaterThan(5);
        const key = reason.split(':')[0]!.slice(0, 40);
        reasons[key] = (reasons[key] ?? 0) + 1;
        expect(await snapshot(p, ['ETH-USD', 'BTC-USD']), label).toBe(before);
        expect(toJson(await p.adapters.providers.list('ETH-USD')), label).toBe(providers);
      }),
      { numRuns: 400, seed: 11 },
    );
    recordFigures('6-bad-admin', { runs, reasons });
  });

  it('a bad print inside the real data (the 323.00 high of eth leg 2) trips the price guard, not liquidations', async () => {
    const { p, rejected, accepted, ticks } = await replayLeg2();
    const report = await p.check();
    expect(report.violations).toEqual([]);
    // Exactly one print is refused, the bad one; the next print is accepted (it agrees with the last mark).
    expect(rejected).toEqual([
      { at: '2020-03-13T02:39:15.000Z', price: '323.00', reason: 'tick/price-band' },
    ]);
    expect(accepted).toContain('2020-03-13T02:39:30.000Z 108.80');
    // Every short would be liquidatable at 323: none was started by it or after it (one real spike, 135.04 at
    // 22:10, liquidates the most leveraged shorts early on; that is not the bad print).
    const badSequence = accepted.length + rejected.findIndex((r) => r.price === '323.00') + 1;
    const late = p.adapters.liquidations
      .all()
      .filter((l) => l.side === 'SHORT' && Number(l.tickKey.split('#')[1]) >= badSequence);
    expect(late).toEqual([]);
    const longs = p.adapters.liquidations.all().length;
    expect(longs).toBeGreaterThan(50);
    recordFigures('6-bad-print', { ticks, rejected, longLiquidations: longs, figures: report.figures });
  });

  it('admin-idempotency-conflict: a reused key with another amount is refused as { ok: false }', async () => {
    const p = await world();
    const deps: AdminDeps = {
      ...p.adapters,
      config: p.config,
      telemetry: p.telemetry,
      nowMs: () => p.clock.nowMs(),
    };
    await handleAdmin({ action: 'deposit', amount: '10', idempotencyKey: 'seed', operator: 'ops' }, deps);
    const result = await handleAdmin(
      { action: 'deposit', amount: '5', idempotencyKey: 'seed', operator: 'ops' },
      deps,
    );
    expect(result.ok).toBe(false);
    expect(result).toMatchObject({ reason: expect.stringMatching(/^admin\/idempotency-key-reused: /) });
  });

  it('breaker-never-reset: after the bad print, a second bad print near it is refused too', async () => {
    // Formerly nothing called markets.resetBreaker after the closing tick: the tripping tick (323.00) stayed
    // stored, and any later print within the band of it was accepted as "breaker-persisted".
    const { p } = await replayLeg2();
    p.clock.advance(15_000);
    const outcome = await p.tick('ETH-USD', '320');
    expect(outcome).toMatchObject({ status: 'rejected', reason: 'tick/price-band' });
  });
});

/** Replays every print of eth leg 2 (open, high, low, close of each minute, 15 s apart) over a 400-position book. */
async function replayLeg2() {
  const file = path.resolve(repoRoot, '..', 'shared', 'data', 'eth-usdt-perp-2020-03-12-leg2-1m.csv');
  const rows = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => {
      const [ms, , open, high, low, close] = line.split(',');
      return { ms: Number(ms), prices: [open!, high!, low!, close!] };
    });
  const first = rows[0]!;
  const p = createPipeline({ startMs: first.ms - 60_000 });
  await p.tick('ETH-USD', first.prices[0]!);
  p.seed(syntheticBook({ count: 400, seed: 12, price: first.prices[0]! }));
  await p.fund('2000000');
  await p.provider('lp-1', '20000000', '0.02', '1000');
  await p.provider('lp-2', '20000000', '0.05', '1000');
  const rejected: { at: string; price: string; reason: string }[] = [];
  const accepted: string[] = [];
  let ticks = 0;
  for (const row of rows) {
    for (const [i, price] of row.prices.entries()) {
      // Queued work (auctions take minutes) runs until the print, as it would between live ticks.
      await p.runUntil(row.ms + i * 15_000);
      const at = new Date(row.ms + i * 15_000).toISOString();
      const outcome = await p.tick('ETH-USD', price);
      ticks += 1;
      if (outcome.status === 'rejected') rejected.push({ at, price, reason: outcome.reason });
      else accepted.push(`${at} ${price}`);
    }
  }
  await p.drain();
  return { p, rejected, accepted, ticks };
}

import { describe, expect, it } from 'vitest';
import { UsageError } from '../../cli/args.ts';
import { parseCommand } from '../../cli/ops/common.ts';
import { timeOption } from '../../cli/ops/events.ts';
import { pricesOption } from '../../cli/ops/seed.ts';
import { positionLayoutFromEnv } from '../../shared/adapters/aws/position-layout.ts';
import { ConfigError, DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { riskConfigFromEnv } from '../../shared/lambda/runtime.ts';
import { applyAdmin, positionsFromFile, refuseUnopenable, SeedFileError } from '../../shared/local/seed.ts';
import { parseTime } from '../../shared/prices/parse.ts';
import { encodeMessage, PoisonMessageError, parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { createPipeline } from '../support/pipeline.ts';
import { DEEP_AUCTION } from '../support/risk-configs.ts';

/**
 * Found by an audit of the entry points' bad input in session 38: each input was taken (or half applied) where
 * it should have been refused with its reason and changed nothing. Each test failed before its fix.
 */

describe('queue messages', () => {
  /** A long's slice in a running auction (an empty book), with one provider bidding `maxDiscount` under the mark. */
  async function inAuction(maxDiscount: string) {
    // Bids up to 30 % under the mark: an auction as deep as the rules allow.
    const p = createPipeline({ config: parseRiskConfig(DEEP_AUCTION) });
    await p.fund('10000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.provider('lp-1', '100000', maxDiscount, '100');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    const [liquidation] = p.adapters.liquidations.all();
    expect(liquidation?.state).toBe('AUCTION');
    return { p, id: `${liquidation!.id}:auction` };
  }

  it("an auction step due before its auction began leaves the curve's start where it was", async () => {
    const { p, id } = await inAuction('0.05');
    const before = (await p.adapters.auctions.get(id))!;
    const body = encodeMessage({ auctionId: id, step: before.step, symbol: 'ETH-USD', dueAtMs: 0 });
    await p.handlers.auction({ body, receiptHandle: 'r', messageId: 'm', receiveCount: 1 } as never);
    // It moved the start by 50 years: the curve never left its top, the tail never came.
    expect((await p.adapters.auctions.get(id))!.startedAtMs).toBeLessThanOrEqual(p.clock.nowMs());
    await p.runUntil(p.clock.nowMs() + 3 * 3_600_000);
    expect((await p.adapters.auctions.get(id))?.state).not.toBe('RUNNING');
  });

  it('an auction step due before its step was planned moves no curve, however old the auction (review, session 38)', async () => {
    // A bid the curve reaches only after about 56 minutes: the auction still walks at 20.
    const { p, id } = await inAuction('0.3');
    for (let i = 0; i < 20; i++) {
      await p.runUntil(p.clock.nowMs() + 60_000);
      await p.tick('ETH-USD', '175');
    }
    const before = (await p.adapters.auctions.get(id))!;
    expect(before.state).toBe('RUNNING');
    expect(p.clock.nowMs() - before.startedAtMs).toBeGreaterThan(19 * 60_000);
    for (const early of [
      () => 0,
      (a: typeof before) => a.startedAtMs,
      (a: typeof before) => a.stepDueAtMs! - 901_000,
    ]) {
      const now = (await p.adapters.auctions.get(id))!;
      const body = encodeMessage({ auctionId: id, step: now.step, symbol: 'ETH-USD', dueAtMs: early(now) });
      await p.handlers.auction({ body, receiptHandle: 'r', messageId: 'm', receiveCount: 1 } as never);
    }
    // Clamped to the start, the auction's age counted as lateness: its curve back at the top.
    expect((await p.adapters.auctions.get(id))!.startedAtMs).toBe(before.startedAtMs);
  });

  it("a dispute's first time ahead of now holds a liquidation no longer than venueCheckHoldSeconds", async () => {
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => ({
        ...m,
        venueCheckBand: '0.05',
        venueCheckHoldSeconds: 30,
      })),
    });
    const p = createPipeline({ config });
    await p.tick('ETH-USD', '100');
    await p.tick('ETH-USD', '100');
    await p.open('LONG', '10', '100', '100');
    p.clock.advance(1_000);
    await p.tick('ETH-USD', '91');
    p.venue.onTick('ETH-USD', parsePrice('100'), p.clock.nowMs()); // the venue disputes the mark
    const [queued] = p.adapters.liquidations.all();
    const [original] = await p.adapters.liquidationQueue.receive(10, 30);
    await p.adapters.liquidationQueue.delete(original!.receiptHandle);
    const ahead = { ...JSON.parse(original!.body), markDisputedSinceMs: p.clock.nowMs() + 365 * 86_400_000 };
    await p.adapters.liquidationQueue.send(JSON.stringify(ahead), 0);
    await p.runUntil(p.clock.nowMs() + 120_000);
    expect((await p.adapters.liquidations.get(queued!.id))?.state).not.toBe('QUEUED');
  });

  it('a liquidation id of the tick index is poison at once, not retried until its dead letter', () => {
    expect(() => parseLiquidationMessage(encodeMessage({ liquidationId: '~tick~ETH-USD#1~0' }))).toThrow(
      PoisonMessageError,
    );
  });
});

describe('admin requests', () => {
  it('refuses a position whose liquidation price has more digits than a DynamoDB number holds, writing nothing', async () => {
    const p = createPipeline();
    const deps = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    const result = await handleAdmin(
      {
        action: 'openPosition',
        id: 'q1',
        traderId: 't1',
        symbol: 'ETH-USD',
        side: 'SHORT',
        size: '0.00000001',
        entryPrice: '200',
        collateral: '100000000000000000000000',
      },
      deps,
    );
    expect(result).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/liquidation price beyond 30 digits/),
    });
    expect(await p.adapters.positions.get('q1')).toBeUndefined();
  });

  it('refuses a provider that lists a market twice', async () => {
    const p = createPipeline();
    const deps = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    const result = await handleAdmin(
      {
        action: 'registerProvider',
        id: 'lp-1',
        capital: '1000',
        maxDiscount: '0.05',
        maxLot: '10',
        symbols: ['ETH-USD', 'ETH-USD'],
      },
      deps,
    );
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/listed twice/) });
    expect(await p.adapters.providers.get('lp-1')).toBeUndefined();
  });
});

describe('operator input', () => {
  it('a positions file with a row whose id another position holds is refused before anything is written', async () => {
    const p = createPipeline();
    const deps = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    const row = (id: string, trader: string) => `${id},${trader},ETH-USD,LONG,1,200,50`;
    const taken = await handleAdmin(
      {
        ...positionsFromFile(
          `id,traderId,symbol,side,size,entryPrice,collateral\n${row('p2', 'other')}`,
          'csv',
          'f',
        )[0]!,
        action: 'openPosition',
      },
      deps,
    );
    expect(taken.ok).toBe(true);
    const file = [
      'id,traderId,symbol,side,size,entryPrice,collateral',
      row('p1', 't1'),
      row('p2', 't1'),
      row('p3', 't1'),
    ];
    const requests = positionsFromFile(file.join('\n'), 'csv', 'book.csv');
    await expect(refuseUnopenable(requests, p.config, p.adapters.markets, p.adapters.reader)).rejects.toThrow(
      new SeedFileError('seed/id-taken: p2: another position is stored under this id'),
    );
    expect(await p.adapters.positions.get('p1')).toBeUndefined();
    // The same file seeded twice: the second run finds its own positions, and answers them as already there.
    const own = positionsFromFile([file[0], row('p1', 't1'), row('p3', 't1')].join('\n'), 'csv', 'own.csv');
    await refuseUnopenable(own, p.config, p.adapters.markets, p.adapters.reader);
    expect(await applyAdmin(own, deps)).toMatchObject({ created: 2, failed: [] });
    await expect(
      refuseUnopenable(own, p.config, p.adapters.markets, p.adapters.reader),
    ).resolves.toBeUndefined();
    expect(await applyAdmin(own, deps)).toMatchObject({ created: 0, existing: 2, failed: [] });
  });

  it('a positions file run again after the mark moved passes: its rows are stored as they opened (review, session 38)', async () => {
    const p = createPipeline();
    const deps = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    const file = ['id,traderId,symbol,side,size,entryPrice,collateral', 's1,t1,ETH-USD,LONG,1,200,60'].join(
      '\n',
    );
    const rows = positionsFromFile(file, 'csv', 'book.csv');
    await refuseUnopenable(rows, p.config, p.adapters.markets, p.adapters.reader);
    expect(await applyAdmin(rows, deps)).toMatchObject({ created: 1, failed: [] });
    for (const mark of ['180', '160', '145', '140']) {
      p.clock.advance(1_000);
      await p.tick('ETH-USD', mark);
    }
    expect((await p.adapters.positions.get('s1'))?.state).toBe('LIQUIDATING');
    // Its row would not open at this mark, but it is there: the admin service answers it as already there.
    await expect(
      refuseUnopenable(rows, p.config, p.adapters.markets, p.adapters.reader),
    ).resolves.toBeUndefined();
    expect(await applyAdmin(rows, deps)).toMatchObject({ created: 0, existing: 1, failed: [] });
  });

  it('RISK_CONFIG that is not JSON is refused naming the setting', () => {
    expect(() => positionLayoutFromEnv({ POSITION_INDEX_SHARDS: '{"ETH-USD": 2' })).toThrow(
      /POSITION_INDEX_SHARDS/,
    );
    expect(() => riskConfigFromEnv({ RISK_CONFIG: '{"markets": [' })).toThrow(ConfigError);
    expect(() => riskConfigFromEnv({ RISK_CONFIG: '{"markets": [' })).toThrow(/RISK_CONFIG is not JSON/);
  });

  it('refuses 16-digit epochs that are not whole milliseconds, above 2^53 too', () => {
    for (const cell of ['1584000000000001', '9007199254741001', '9999999999999999'])
      expect(() => parseTime(cell, 2), cell).toThrow(/whole milliseconds/);
    expect(parseTime('1584000000000000', 2)).toBe(1_584_000_000_000);
    expect(() => timeOption('9999999999999999')).toThrow(UsageError);
  });

  it('refuses a --price pair with more than one "=", and any option given twice', () => {
    expect(() => pricesOption('ETH-USD=100=5', ['ETH-USD'])).toThrow(
      /--price: "ETH-USD=100=5" is not SYMBOL=PRICE/,
    );
    const spec = { amount: { type: 'string' }, key: { type: 'string' } } as const;
    expect(() => parseCommand(['withdraw', '--amount', '1', '--amount', '1000000'], spec)).toThrow(
      new UsageError('--amount: given twice'),
    );
    expect(() => parseCommand(['withdraw', '--amount=1', '--amount', '2'], spec)).toThrow(/given twice/);
    expect(parseCommand(['withdraw', '--amount', '1', '--key', 'k'], spec).values).toEqual({
      amount: '1',
      key: 'k',
    });
  });
});

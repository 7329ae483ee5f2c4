import { describe, expect, it } from 'vitest';
import {
  collectPositionLiquidations,
  type LiquidationShow,
  type PositionLiquidations,
} from '../../cli/ops/liquidation-show.ts';
import { createAwsAdapters, createAwsClients, localClientConfig } from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { riskConfigDigest } from '../../shared/config-digest.ts';
import {
  DEFAULT_RISK_CONFIG_INPUT,
  parseRiskConfig,
  type RiskConfigInput,
} from '../../shared/domain/config.ts';
import {
  formatBase,
  formatDecimal,
  formatPrice,
  formatQuote,
  formatQuoteGrouped,
  parseBase,
  parsePrice,
  parseQuote,
} from '../../shared/domain/units.ts';
import { startLocalStack } from '../../shared/local/stack.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { cli, useOperatorEmulator } from '../support/cli.ts';
import { AUCTION_ONLY } from '../support/risk-configs.ts';

/**
 * `backstop liquidations show` through the CLI against liquidations the real handlers ran on moto (a tick on the
 * bus, margin-check, the consumer, the auction function, the ledger): one settled on the market, one through an
 * auction, one with a fund payout and ADL; an unknown id; the JSON parsed.
 */
const emulator = useOperatorEmulator('liqshow');

const open = (id: string, side: 'LONG' | 'SHORT', size: string, entry: string, collateral: string) => ({
  action: 'openPosition',
  id,
  traderId: `t-${id}`,
  symbol: 'ETH-USD',
  side,
  size,
  entryPrice: entry,
  collateral,
});

let stages = 0;

interface Stage {
  readonly at: string[];
  readonly adapters: ReturnType<typeof createAwsAdapters>;
  tick(price: string, indexPrice?: string): Promise<void>;
  admin(request: unknown): Promise<void>;
}

/** A stage run by the project's handlers with `config`; stopped (its records kept) before `check` runs the CLI. */
async function withStage(
  prefix: string,
  config: RiskConfigInput,
  scenario: (stage: Stage) => Promise<void>,
  check: (stage: Stage) => Promise<void>,
): Promise<void> {
  stages += 1;
  const stageName = `${prefix}${stages}`;
  const stack = await startLocalStack({
    endpoint: emulator.moto.endpoint,
    stage: stageName,
    riskConfig: config,
    fastRetries: true,
  });
  let sequence = 0;
  const stage: Stage = {
    at: ['--endpoint', emulator.moto.endpoint, '--stage', stageName],
    adapters: createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock }),
    async tick(price, indexPrice) {
      sequence += 1;
      const failures = await stack.putTicks([
        {
          symbol: 'ETH-USD',
          markPrice: price,
          ...(indexPrice === undefined ? {} : { indexPrice }),
          timestamp: Date.now(),
          sequence,
          source: 'test',
        },
      ]);
      expect(failures).toEqual([]);
      await stack.runner.runUntilIdle({ deadlineMs: 60_000 });
    },
    async admin(request) {
      const result = (await stack.runner.invoke('admin', request)) as { ok: boolean };
      expect(result, JSON.stringify(result)).toMatchObject({ ok: true });
    },
  };
  try {
    await scenario(stage);
    expect(stack.runner.errors.map((e) => String(e.error))).toEqual([]);
  } finally {
    await stack.stop();
  }
  await check(stage);
}

/** `liquidations show` of `id`, text and JSON, both exit 0; the JSON parsed. */
async function show(stage: Stage, id: string): Promise<{ text: string; json: LiquidationShow }> {
  const text = await cli('liquidations', 'show', id, ...stage.at);
  expect(text.stderr).toBe('');
  expect(text.code).toBe(0);
  const json = await cli('liquidations', 'show', id, '--json', ...stage.at);
  expect(json.code, json.stderr).toBe(0);
  return { text: text.stdout, json: JSON.parse(json.stdout) as LiquidationShow };
}

/** The one liquidation of `positionId`, found through `show --position`. */
async function onlyLiquidationOf(stage: Stage, positionId: string): Promise<string> {
  const run = await cli('liquidations', 'show', '--position', positionId, '--json', ...stage.at);
  expect(run.code, run.stderr).toBe(0);
  const listed = JSON.parse(run.stdout) as PositionLiquidations;
  expect(listed.position).toMatchObject({ id: positionId, traderId: `t-${positionId}`, symbol: 'ETH-USD' });
  expect(listed.liquidations).toHaveLength(1);
  return listed.liquidations[0]!.id;
}

/** How far below `mark` a long's close sold, in percent to 0.01 %, rounded toward zero. */
const belowMark = (price: bigint, mark: bigint): string =>
  formatDecimal(((mark - price) * 10_000n) / mark, 2);

/** The start of `config`'s digest, as a claim records it: what the stack's RiskConfigDigest output begins with. */
const digestStart = (config: RiskConfigInput): string =>
  riskConfigDigest(parseRiskConfig(config)).slice(0, 12);

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const DECIMAL = /^-?\d+(\.\d+)?$/;

describe('liquidations show', () => {
  it('a liquidation settled on the market: fills, history, the fee in the journal; --position lists it', async () => {
    await withStage(
      'shm',
      DEFAULT_RISK_CONFIG_INPUT,
      async (s) => {
        await s.tick('200');
        await s.admin(open('p1', 'LONG', '10', '200', '200'));
        await s.tick('184');
      },
      async (s) => {
        const id = await onlyLiquidationOf(s, 'p1');
        const stored = (await s.adapters.liquidations.get(id))!;
        expect(stored.state).toBe('SETTLED_MARKET');
        const { text, json } = await show(s, id);
        const l = json.liquidation;
        expect(l).toMatchObject({
          id,
          positionId: 'p1',
          symbol: 'ETH-USD',
          side: 'LONG',
          base: 'ETH',
          quote: 'USD',
          state: 'SETTLED_MARKET',
          open: false,
          triggerMark: '184',
          tickKey: 'ETH-USD#2',
          remainingSize: formatBase(stored.remainingSize),
        });
        // Every state with its time; the notes' stored integers as decimals in their units.
        expect(l.history.map((e) => e.state)).toEqual(stored.history.map((e) => e.state));
        for (const e of l.history) expect(e.at).toMatch(ISO);
        expect(l.history[0]!.note).toBe('crossed at 184');
        const claimed = l.history.find((e) => e.state === 'EXECUTING')!;
        expect(claimed.note).toMatch(/^size 10 ETH, limit \d+(\.\d+)? USD$/);
        expect(claimed.storedNote).toMatch(/^size 1000000000 limit \d+$/);
        // Each fill with how far below the claim's mark it sold (support51-why-liquidated).
        expect(l.marketFills).toEqual(
          stored.marketFills.map((f) => ({
            price: formatPrice(f.price),
            size: formatBase(f.size),
            slippagePercent: belowMark(f.price, parsePrice('184')),
          })),
        );
        expect(l.marketFilledSize).toBe('10');
        expect(l.context).toMatchObject({ plannedSize: '10', executionMark: '184', limitPrice: '178.48' });
        // What the claim read and applied: the position's liquidation price the mark crossed, the tick of the
        // mark it executed at, the rules, and why it closed all of it (support51-why-liquidated, support51-why-size).
        expect(l.startedBy).toBe('tick');
        expect(l.tickSequence).toBe(2);
        expect(l.context?.claimed).toEqual({
          position: { size: '10', collateral: '200', entryPrice: '200' },
          // (10 x 200 - 200) / (10 x 0.975), rounded up: a long is liquidated at a mark at or below it.
          liquidationPrice: '184.61538462',
          bankruptcyPrice: '180',
          maintenanceMargin: '0.025',
          initialMargin: '0.05',
          liquidationFee: '0.01',
          slippageBound: '0.03',
          // Closing 7.07 ETH would restore the initial margin, but would leave 2.93 ETH (540 USD), under the
          // smallest slice (1,000 USD): all of it.
          sizing: {
            reason: 'sizing/dust-remainder',
            percentOfPosition: '100',
            why: "the whole position: what a partial close would leave is below the market's dust size or smallest slice",
          },
          markTick: { sequence: 2 },
          // The configuration the stage's functions ran, by its digest's start (facts52-claim-config-digest).
          configDigest: digestStart(DEFAULT_RISK_CONFIG_INPUT),
        });
        expect(json.auction).toBeUndefined();
        const s1 = stored.settlement!;
        expect(json.settlement).toMatchObject({
          settledBy: 'market',
          amounts: { marketClosedSize: '10', fee: formatQuote(s1.fee), shortfall: '0', insurancePaid: '0' },
          // Settled without a plan: the position CLOSED by the settlement's write says so.
          payoutTo: 'trader',
          adl: { rounds: 0, owesRounds: false },
        });
        expect(json.settlement!.adl.closes).toBeUndefined();
        // The fee is the rate on what the fills were worth, rounded up; the trader lost part of its collateral.
        const notional16 = stored.marketFills.reduce((t, f) => t + f.size * f.price, 0n);
        expect(json.settlement!.feeBasis).toEqual({
          rate: '0.01',
          closedNotional: formatQuote(notional16 / 10n ** 10n),
          atRate: formatQuote(s1.fee),
          paid: formatQuote(s1.fee),
          credited: formatQuote(s1.fee),
          how: 'at-rate',
        });
        expect(s1.fee).toBe((notional16 + 10n ** 12n - 1n) / 10n ** 12n);
        expect(json.settlement!.traderLoss).toEqual({
          collateral: '200',
          lost: formatQuote(parseQuote('200') - s1.traderPayout),
          beyondCollateral: '0',
          restDeficit: '0',
        });
        // The fee, credited to the fund under the liquidation's key.
        expect(json.journal).toMatchObject({
          account: INSURANCE_ACCOUNT,
          fee: formatQuote(s1.fee),
          fundPaid: '0',
          agreesWithSettlement: true,
        });
        expect(json.journal.entries).toEqual([
          expect.objectContaining({ kind: 'liquidation-fee', key: `${id}:fee`, amount: formatQuote(s1.fee) }),
        ]);
        const p1 = (await s.adapters.positions.get('p1'))!;
        expect(json.position).toMatchObject({
          id: 'p1',
          traderId: 't-p1',
          state: 'CLOSED',
          entryPrice: '200',
          closedPayout: formatQuote(p1.closedPayout!),
        });

        expect(text.split('\n')[0]).toBe(`liquidation ${id}: ETH-USD LONG, SETTLED_MARKET`);
        expect(text).toContain(
          `  position     p1 of trader t-p1, entry 200 USD; now CLOSED, paid out ${formatQuoteGrouped(p1.closedPayout!)} USD (version ${p1.version})`,
        );
        expect(text).toContain(
          `  trigger      mark 184 USD of tick 2 (ETH-USD#2), stamped ${l.startedAt} by the feed\n`,
        );
        expect(text).toContain(
          '  at claim     position 10 ETH, entry 200 USD, collateral 200.00 USD: liquidation price 184.61538462 USD (equity at the maintenance margin, 2.5 % of its value), bankruptcy price 180 USD (equity zero)\n',
        );
        expect(text).toContain(
          `\n  config       the claim applied the risk configuration whose digest begins ${digestStart(DEFAULT_RISK_CONFIG_INPUT)} (a stack's RiskConfigDigest output; backstop config digest --config FILE prints a file's)\n`,
        );
        expect(text).toContain(
          `  execution    10 ETH planned at mark 184 USD (tick 2 of ${l.context!.executionMarkAt}), limit 178.48 USD (the mark less the slippage bound, 3 %)\n`,
        );
        expect(text).toContain(
          "  sized        100 % of the position's 10 ETH: the whole position: what a partial close would leave is below the market's dust size or smallest slice\n",
        );
        for (const f of l.marketFills)
          expect(text).toContain(
            `\n    ${f.size} ETH at ${f.price} USD, ${Number(f.slippagePercent).toFixed(2)} % below the mark\n`,
          );
        expect(text).toContain(
          `\n  fee          the trader paid ${formatQuoteGrouped(s1.fee)} USD: the rate in force when it was claimed, 1 %, of the closed notional ${formatQuoteGrouped(notional16 / 10n ** 10n)} USD (rounded up)\n`,
        );
        expect(text).toContain(
          `\n  loss         the trader lost ${formatQuoteGrouped(parseQuote('200') - s1.traderPayout)} USD of its 200.00 USD of collateral\n`,
        );
        expect(text).toContain('  market fills ');
        expect(text).toContain(`settlement (market)`);
        expect(text).toMatch(/\n {2}#1 \S+Z liquidation-fee \d[\d,]*\.\d\d+ USD -> /);
        expect(text).toContain('(as the settlement says)');
        // Nothing printed as a stored integer (prices and sizes are 1e8 of their unit).
        expect(text).not.toMatch(/\b\d{9,}\b/);

        const listed = await cli('liquidations', 'show', '--position', 'p1', ...s.at);
        expect(listed.code).toBe(0);
        expect(listed.stdout).toContain(`  ${id} SETTLED_MARKET (market), started `);
      },
    );
  }, 120_000);

  it('a liquidation through an auction: the provider, its price and size, how the auction ended', async () => {
    await withStage(
      'sha',
      AUCTION_ONLY,
      async (s) => {
        await s.tick('200');
        await s.admin(open('p1', 'LONG', '10', '200', '200'));
        await s.admin({
          action: 'registerProvider',
          id: 'lp-1',
          capital: '100000',
          maxDiscount: '0.01',
          maxLot: '100',
          symbols: ['ETH-USD'],
        });
        await s.tick('184');
      },
      async (s) => {
        const id = await onlyLiquidationOf(s, 'p1');
        const auction = (await s.adapters.auctions.get(`${id}:auction`))!;
        expect(auction.state).toBe('CLEARED');
        const { text, json } = await show(s, id);
        expect(json.liquidation.state).toBe('SETTLED_AUCTION');
        expect(json.liquidation.history.map((e) => e.state)).toContain('AUCTION');
        expect(json.liquidation.history.find((e) => e.state === 'AUCTION')?.note).toBe('lot 10 ETH');
        expect(json.auction).toMatchObject({
          id: `${id}:auction`,
          state: 'CLEARED',
          direction: 'SELL',
          lot: '10',
          remainingLot: '0',
          filledSize: '10',
          step: auction.step,
          resets: 0,
          endedBy: auction.endedBy,
        });
        expect(json.auction!.startedAt).toMatch(ISO);
        // Each fill's step, time and the step's mark, kept on the auction's item as on lp-1's record
        // (review52-support-fill-times-on-auction, through the AWS adapter): how far below that mark it bought, as a market
        // fill's.
        const lp1 = (await s.adapters.providers.get('lp-1'))!;
        const kept = lp1.fills && 'recent' in lp1.fills ? lp1.fills.recent : [];
        expect(kept).toHaveLength(auction.fills.length);
        expect(auction.fills.map((f) => [f.step, f.atMs, f.mark])).toEqual(
          kept.map((k) => [k.step, k.atMs, k.mark]),
        );
        expect(json.auction!.fills).toEqual(
          auction.fills.map((f, i) => ({
            providerId: 'lp-1',
            price: expect.stringMatching(DECIMAL),
            size: formatBase(f.size),
            ...(f.cost === undefined ? {} : { cost: formatQuote(f.cost) }),
            step: kept[i]!.step,
            at: new Date(kept[i]!.atMs).toISOString(),
            mark: formatPrice(kept[i]!.mark),
            slippagePercent: belowMark(f.price, kept[i]!.mark),
          })),
        );
        expect(json.auction!.providersUnread).toBeUndefined();
        expect(text).toContain("\n  fills        each with its step's time and mark\n");
        for (const f of json.auction!.fills)
          expect(text).toContain(
            `\n    lp-1: ${f.size} ETH at ${f.price} USD (cost ${formatQuoteGrouped(parseQuote(f.cost!))} USD), step ${f.step} at ${f.at}, ${Number(f.slippagePercent).toFixed(2)} % below the step's mark ${f.mark} USD\n`,
          );
        expect(json.settlement?.amounts).toMatchObject({ auctionClosedSize: '10', marketClosedSize: '0' });
        expect(json.settlement?.settledBy).toBe('auction');
        // The fee's base is what the provider's fills were worth at their prices (support51-fee-and-loss).
        const stored = (await s.adapters.liquidations.get(id))!;
        const notional16 = auction.fills.reduce((t, f) => t + f.size * f.price, 0n);
        expect(json.settlement?.feeBasis).toMatchObject({
          rate: '0.01',
          closedNotional: formatQuote(notional16 / 10n ** 10n),
          atRate: formatQuote((notional16 + 10n ** 12n - 1n) / 10n ** 12n),
          paid: formatQuote(stored.settlement!.fee),
          credited: formatQuote(stored.settlement!.fee),
        });
        expect(text).toMatch(new RegExp(`\\nauction ${id}:auction: SELL CLEARED, ended at step \\d+`));
        expect(text).toMatch(/\n {4}lp-1: [\d.]+ ETH at [\d.]+ USD/);
        expect(text).not.toMatch(/\b\d{9,}\b/);
      },
    );
  }, 120_000);

  it('a partial close: how much of the position, and why that much; the rest keeps the collateral (support51-why-size)', async () => {
    await withStage(
      'shp',
      DEFAULT_RISK_CONFIG_INPUT,
      async (s) => {
        await s.tick('200');
        // 100 ETH at 200 on 2,000: at 184 its equity is 400, under the maintenance margin (460).
        await s.admin(open('p1', 'LONG', '100', '200', '2000'));
        // The feed's index beside its mark: what a trader's "the price never went there" is checked against.
        await s.tick('184', '185.5');
      },
      async (s) => {
        const id = await onlyLiquidationOf(s, 'p1');
        const stored = (await s.adapters.liquidations.get(id))!;
        const planned = stored.context!.plannedSize;
        // Closing c at 184 with a 1 % fee leaves the rest its 5 %: 400 - 1.84 c >= 9.2 (100 - c), c >= 70.65.
        expect(planned > parseBase('70.65') && planned < parseBase('70.66')).toBe(true);
        const { text, json } = await show(s, id);
        expect(json.liquidation.context?.claimed).toMatchObject({
          position: { size: '100', collateral: '2000', entryPrice: '200' },
          liquidationPrice: '184.61538462',
          markTick: { sequence: 2, indexPrice: '185.5' },
          sizing: {
            reason: 'sizing/restore-initial-margin',
            percentOfPosition: '70.65',
            why: 'part of the position: the least whose close leaves the rest its initial margin (5 % of its value)',
          },
        });
        expect(text).toContain(
          `\n  execution    ${json.liquidation.context!.plannedSize} ETH planned at mark 184 USD (tick 2 of ${json.liquidation.context!.executionMarkAt}, index 185.5 USD), limit 178.48 USD (the mark less the slippage bound, 3 %)\n`,
        );
        expect(text).toContain(
          "\n  sized        70.65 % of the position's 100 ETH: part of the position: the least whose close leaves the rest its initial margin (5 % of its value)\n",
        );
        // The rest stays open with what the slice left of the collateral: nothing was paid out, no deficit.
        const p1 = (await s.adapters.positions.get('p1'))!;
        expect(p1.state).toBe('OPEN');
        expect(json.settlement).toMatchObject({
          payoutTo: 'rest',
          traderLoss: {
            collateral: '2000',
            lost: formatQuote(parseQuote('2000') - stored.settlement!.traderPayout),
            beyondCollateral: '0',
            restDeficit: '0',
          },
        });
        expect(text).toContain(
          `\n  loss         the position had 2,000.00 USD of collateral; its rest keeps what is left after the slice (lost ${formatQuoteGrouped(parseQuote('2000') - stored.settlement!.traderPayout)} USD)\n`,
        );
      },
    );
  }, 120_000);

  it('a liquidation with a fund payout and ADL: the shortfall split, the counterparty and its close, the payout in the journal', async () => {
    await withStage(
      'shd',
      // The market takes none (its bound), and no provider bids: ADL takes the position at the mark.
      AUCTION_ONLY,
      async (s) => {
        await s.admin({ action: 'deposit', amount: '20', idempotencyKey: 'seed', operator: 'ops' });
        await s.tick('200');
        await s.admin(open('p1', 'LONG', '10', '200', '200')); // bankrupt at 180
        await s.admin(open('s1', 'SHORT', '10', '200', '400'));
        await s.tick('175');
      },
      async (s) => {
        const id = await onlyLiquidationOf(s, 'p1');
        const stored = (await s.adapters.liquidations.get(id))!;
        const settled = stored.settlement!;
        expect(stored.state).toBe('SETTLED_ADL');
        // 10 ETH closed by ADL at 175 against 200 of collateral: 50 short, the fund's 20 paid, ADL the other 30.
        expect(settled.shortfall).toBe(parseQuote('50'));
        expect(settled.insurancePaid).toBe(parseQuote('20'));
        expect(settled.adlCovered).toBe(parseQuote('30'));
        const { text, json } = await show(s, id);
        expect(json.settlement).toMatchObject({
          settledBy: 'insurance>adl',
          payoutTo: 'trader',
          amounts: {
            adlClosedSize: '10',
            shortfall: '50',
            insurancePaid: '20',
            adlCovered: '30',
            badDebt: '0',
            fee: '0',
          },
        });
        // The counterparty and its close, as the settlement committed it: s1's record says the same.
        const s1 = (await s.adapters.positions.get('s1'))!;
        const [close, ...others] = json.settlement!.adl.closes!;
        expect(others).toEqual([]);
        expect(close).toMatchObject({
          positionId: 's1',
          closedSize: '10',
          profitGiven: '30',
          haircut: '0',
          now: { state: 'CLOSED', size: '0', version: s1.version },
        });
        expect(close!.planVersion + 1).toBe(s1.version);
        // s1 closed 10 at 175 from 200 with 400 of collateral (250 profit) and gave 30 of it.
        expect(s1.closedPayout).toBe(parseQuote('400') + parseQuote('250') - parseQuote(close!.profitGiven));
        // The counterparty's side (adl47-who-closed): its record names the liquidation that closed it.
        const byPosition = await cli('liquidations', 'show', '--position', 's1', '--json', ...s.at);
        expect(byPosition.code, byPosition.stderr).toBe(0);
        const ofS1 = JSON.parse(byPosition.stdout) as PositionLiquidations;
        expect(ofS1.liquidations).toEqual([]);
        expect(ofS1.deleveragedBy).toEqual({
          total: 1,
          events: [
            {
              liquidationId: id,
              round: 0,
              at: expect.stringMatching(ISO),
              closedSize: '10',
              mark: '175',
              price: close!.price,
              profitGiven: '30',
              haircut: '0',
              // Why s1 (support52-adl-why-me): at 175 its profit, 250, is 62.5 % of its 400 of collateral, and
              // its effective leverage 1,750 of value on 650 of equity.
              rank: { place: 1, of: 1, profitPercentOfCollateral: '62.5', effectiveLeverage: '2.69' },
            },
          ],
        });
        expect(close!.rank).toEqual(ofS1.deleveragedBy!.events[0]!.rank);
        const s1Text = await cli('liquidations', 'show', '--position', 's1', ...s.at);
        expect(s1Text.stdout).toContain(
          `\n  deleveraged by ADL once:\n  ${ofS1.deleveragedBy!.events[0]!.at} by ${id} (its settlement): closed 10 ETH at mark 175 USD (effective ${close!.price} USD), gave 30.00 USD (haircut 0.00 USD)\n    the only counterparty its settlement's ADL took from, ranked first by profit as a share of collateral x effective leverage at the plan's mark: profit 62.5 % of its collateral, effective leverage 2.69x\n`,
        );
        expect(json.liquidation.context?.plan).toMatchObject({
          mark: '175',
          fundBalance: '20',
          position: { size: '10', collateral: '200', entryPrice: '200' },
        });
        // Bankrupt at the mark: all of it closed; the fee's rate (1 % of 1,750) capped at the nothing the close left;
        // the trader lost its collateral, and the 50 beyond it was the fund's and ADL's (support51-fee-and-loss).
        expect(json.liquidation.context?.claimed).toMatchObject({
          liquidationPrice: '184.61538462',
          bankruptcyPrice: '180',
          slippageBound: '0.000001',
          sizing: { reason: 'sizing/insolvent', percentOfPosition: '100' },
          markTick: { sequence: 2 },
          // Another configuration than the built-in one: its digest, not the defaults'.
          configDigest: digestStart(AUCTION_ONLY),
        });
        expect(json.settlement!.feeBasis).toEqual({
          rate: '0.01',
          closedNotional: '1750',
          atRate: '17.5',
          paid: '0',
          credited: '0',
          how: 'capped',
        });
        expect(json.settlement!.traderLoss).toEqual({
          collateral: '200',
          lost: '200',
          beyondCollateral: '50',
          restDeficit: '0',
        });
        expect(text).toContain(
          '\n  fee          the trader paid 0.00 USD: the rate in force when it was claimed, 1 %, of the closed notional 1,750.00 USD is 17.50 USD, capped at what the close left the trader\n',
        );
        expect(text).toContain(
          '\n  loss         the trader lost all of its collateral, 200.00 USD; the close lost 50.00 USD more, borne by the fund, ADL or bad debt (the shortfall), never by the trader\n  shortfall    50.00 USD: fund paid 20.00 USD, ADL covered 30.00 USD, no bad debt\n',
        );
        expect(text).toContain(
          "\n  sized        100 % of the position's 10 ETH: the whole position: it had no equity left at the mark (past its bankruptcy price)\n",
        );
        expect(text).toContain(', limit 174.999825 USD (the mark less the slippage bound, 0.0001 %)\n');
        // The payout, debited from the fund under the liquidation's key.
        expect(json.journal).toMatchObject({ fee: '0', fundPaid: '20', agreesWithSettlement: true });
        expect(json.journal.entries).toEqual([
          expect.objectContaining({
            kind: 'shortfall-payout',
            key: `${id}:shortfall`,
            amount: '-20',
            balanceAfter: '0',
          }),
        ]);
        expect(json.journal.entries[0]!.at).toMatch(ISO);
        expect(json.auction).toBeUndefined();

        expect(text).toContain(
          '  shortfall    50.00 USD: fund paid 20.00 USD, ADL covered 30.00 USD, no bad debt',
        );
        expect(text).toMatch(/\n {2}ADL {10}s1: closed 10 ETH at [\d.]+ USD \(effective\), gave /);
        expect(text).toContain(
          `gave 30.00 USD (haircut 0.00 USD), from version ${close!.planVersion}; now CLOSED, 0 ETH`,
        );
        expect(text).toMatch(/\n {2}#2 \S+Z shortfall-payout -20\.00 USD -> 0\.00 USD \(p1:\d+:shortfall\)/);
        expect(text).not.toMatch(/\b\d{9,}\b/);
        expect(parseBase(json.liquidation.remainingSize)).toBe(stored.remainingSize);
      },
    );
  }, 120_000);

  it('an unknown id: exit 2 and one line; a position id given for a liquidation id says which command to run', async () => {
    const { stage, names, at } = await emulator.newStage('shu');
    const { positions } = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });
    await positions.create({
      id: 'p7',
      traderId: 't-p7',
      symbol: 'ETH-USD',
      side: 'LONG',
      size: parseBase('1'),
      entryPrice: parsePrice('200'),
      collateral: parseQuote('20'),
      state: 'OPEN',
      liquidationPrice: parsePrice('185'),
      version: 0,
    });
    const unknown = await cli('liquidations', 'show', 'nope:0', ...at);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toBe(
      `backstop: liquidations show: no liquidation "nope:0" in stage ${stage} (local) (a liquidation's id is <position id>:<version>; --position <id> lists a position's)\n`,
    );
    const json = await cli('liquidations', 'show', 'nope:0', '--json', ...at);
    expect(json.code).toBe(2);
    expect(json.stdout).toBe('');
    const position = await cli('liquidations', 'show', '--position', 'nobody', ...at);
    expect(position.code).toBe(2);
    expect(position.stderr).toBe(
      `backstop: liquidations show: no position "nobody" in stage ${stage} (local)\n`,
    );
    const usage = await cli('liquidations', 'show', ...at);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^backstop: liquidations show: a liquidation id/);
    // A position's id where a liquidation's is asked for: the command that lists its liquidations.
    const given = await cli('liquidations', 'show', 'p7', ...at);
    expect(given.code).toBe(2);
    expect(given.stderr).toBe(
      `backstop: liquidations show: "p7" is a position, not a liquidation: backstop liquidations show --position p7 ${at.join(' ')}\n`,
    );
    const none = await cli('liquidations', 'show', '--position', 'p7', '--json', ...at);
    expect(none.code).toBe(0);
    expect(JSON.parse(none.stdout)).toMatchObject({
      position: { id: 'p7', state: 'OPEN' },
      liquidations: [],
    });
    const mixed = await cli('liquidations', 'show', 'p1:0', '--resend', ...at);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('--resend is an option of liquidations overdue');
  });

  it('--position reads its liquidations by BatchGetItem, 100 keys a call, unprocessed keys asked again (ops47-show-batch-get)', async () => {
    // Found by the review of session 46: one GetItem per version of the position, up to 1,000 calls for a command an
    // operator runs in an incident (8 at a time).
    const { names } = await emulator.newStage('shb');
    const clients = createAwsClients(localClientConfig(emulator.moto.endpoint));
    try {
      const adapters = createAwsAdapters({ clients, names, clock: systemClock });
      await adapters.positions.create({
        id: 'p8',
        traderId: 't-p8',
        symbol: 'ETH-USD',
        side: 'LONG',
        size: parseBase('1'),
        entryPrice: parsePrice('200'),
        collateral: parseQuote('20'),
        state: 'OPEN',
        liquidationPrice: parsePrice('185'),
        version: 250,
      });
      // One in each call's 100 ids, past the first 40 (left unprocessed by whichever call comes first).
      const started = [60, 160, 249];
      const slice = (v: number): LiquidationRecord => ({
        id: `p8:${v}`,
        positionId: 'p8',
        symbol: 'ETH-USD',
        side: 'LONG',
        state: 'CANCELLED',
        tickKey: `ETH-USD#${v}`,
        triggerMark: parsePrice('185'),
        remainingSize: parseBase('1'),
        marketFills: [],
        history: [{ atMs: Date.now(), state: 'CANCELLED', note: 'healthy at 19000000000' }],
        version: 1,
      });
      await adapters.transactor.commit(
        started.map((v) => ({ kind: 'liquidation', record: slice(v), expectedVersion: undefined })),
      );
      // DynamoDB leaves keys unprocessed under load (moto never does): the first call answers 40 of its 100.
      let batches = 0;
      clients.dynamo.middlewareStack.add(
        ((
          next: (a: unknown) => Promise<{ output: Record<string, unknown> }>,
          context: { commandName?: string },
        ) =>
          async (args: { input: { RequestItems: Record<string, { Keys: unknown[] }> } }) => {
            if (context.commandName !== 'BatchGetItemCommand' || batches++ > 0) return next(args);
            const [table, request] = Object.entries(args.input.RequestItems)[0]!;
            const out = await next({
              ...args,
              input: { RequestItems: { [table]: { ...request, Keys: request.Keys.slice(0, 40) } } },
            });
            return {
              ...out,
              output: {
                ...out.output,
                UnprocessedKeys: { [table]: { ...request, Keys: request.Keys.slice(40) } },
              },
            };
          }) as never,
        { step: 'initialize', name: 'unprocessedKeys' },
      );
      clients.counter.reset();
      const listed = (await collectPositionLiquidations(adapters, 'p8'))!;
      expect(listed.liquidations.map((l) => l.id)).toEqual(started.map((v) => `p8:${v}`));
      // The position's GetItem, then 251 ids in three BatchGetItem calls and the first one's rest asked again.
      expect(clients.counter.snapshot()).toEqual({ 'dynamodb.BatchGetItem': 4, 'dynamodb.GetItem': 1 });
    } finally {
      clients.destroy();
    }
  });
});

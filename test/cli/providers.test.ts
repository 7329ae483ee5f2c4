import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import type { ProviderShow, ProvidersList } from '../../cli/ops/providers.ts';
import { createAwsAdapters } from '../../shared/adapters/aws/index.ts';
import { providerItem } from '../../shared/adapters/aws/providers.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { DEFAULT_RISK_CONFIG, DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import { fillEdge, providerFillsRead, withProviderFill } from '../../shared/domain/provider-fills.ts';
import { formatBase, formatPrice, formatQuote, formatQuoteGrouped } from '../../shared/domain/units.ts';
import { startLocalStack } from '../../shared/local/stack.ts';
import { cli, useOperatorEmulator } from '../support/cli.ts';
import { AUCTION_ONLY } from '../support/risk-configs.ts';

/**
 * `backstop providers show | list` (providers48-fills-on-record) against providers the real handlers filled on moto
 * (a tick on the bus, margin-check, the consumer, the auction function): what each won, from its own record.
 */
const emulator = useOperatorEmulator('providers');

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('providers show and list', () => {
  it("show: a provider's terms, capital left, totals and latest fills with their edge; list; refusals", async () => {
    const stage = 'prov1';
    const stack = await startLocalStack({
      endpoint: emulator.moto.endpoint,
      stage,
      riskConfig: AUCTION_ONLY,
      fastRetries: true,
    });
    const at = ['--endpoint', emulator.moto.endpoint, '--stage', stage];
    let sequence = 0;
    const tick = async (price: string) => {
      sequence += 1;
      expect(
        await stack.putTicks([
          { symbol: 'ETH-USD', markPrice: price, timestamp: Date.now(), sequence, source: 'test' },
        ]),
      ).toEqual([]);
      await stack.runner.runUntilIdle({ deadlineMs: 60_000 });
    };
    const admin = async (request: unknown) =>
      expect(await stack.runner.invoke('admin', request)).toMatchObject({ ok: true });
    try {
      await tick('200');
      await tick('200');
      await admin({
        action: 'openPosition',
        id: 'p1',
        traderId: 't-p1',
        symbol: 'ETH-USD',
        side: 'LONG',
        size: '10',
        entryPrice: '200',
        collateral: '200',
      });
      for (const [id, discount] of [
        ['lp-1', '0.01'],
        ['lp-2', '0.02'],
      ] as const)
        await admin({
          action: 'registerProvider',
          id,
          capital: '100000',
          maxDiscount: discount,
          maxLot: '100',
          symbols: ['ETH-USD'],
        });
      await admin({
        action: 'registerProvider',
        id: 'lp-btc',
        capital: '5000',
        maxDiscount: '0.05',
        maxLot: '1',
        symbols: ['BTC-USD'],
      });
      await tick('184');
      expect(stack.runner.errors.map((e) => String(e.error))).toEqual([]);
    } finally {
      await stack.stop();
    }

    const adapters = createAwsAdapters({ clients: emulator.clients, names: stack.names, clock: systemClock });
    const stored = (await adapters.providers.get('lp-1'))!;
    expect(providerFillsRead(stored.fills)).toBe(true);
    if (!providerFillsRead(stored.fills)) return;
    const fill = stored.fills.recent[0]!;
    const auction = (await adapters.auctions.get(`${fill.liquidationId}:auction`))!;
    const onAuction = auction.fills.find((f) => f.providerId === 'lp-1')!;
    expect([fill.size, fill.price, fill.cost]).toEqual([onAuction.size, onAuction.price, onAuction.cost]);
    expect(fill.edge).toBe(fillEdge('SELL', fill.size, fill.mark, fill.cost));

    const json = await cli('providers', 'show', 'lp-1', '--json', ...at);
    expect(json.code, json.stderr).toBe(0);
    const shown = JSON.parse(json.stdout) as ProviderShow;
    expect(shown).toEqual({
      provider: {
        id: 'lp-1',
        symbols: ['ETH-USD'],
        capital: formatQuote(stored.capital),
        quote: 'USD',
        maxDiscount: '0.01',
        maxLot: '100',
        version: stored.version,
      },
      fills: {
        total: 1,
        since: expect.stringMatching(ISO),
        byMarket: [
          {
            symbol: 'ETH-USD',
            base: 'ETH',
            fills: 1,
            bought: formatBase(fill.size),
            paid: formatQuote(fill.cost),
            sold: '0',
            received: '0',
            edge: formatQuote(fill.edge),
          },
        ],
        recent: [
          {
            at: expect.stringMatching(ISO),
            auctionId: auction.id,
            liquidationId: auction.liquidationId,
            step: fill.step,
            symbol: 'ETH-USD',
            direction: 'SELL',
            size: formatBase(fill.size),
            price: formatPrice(fill.price),
            cost: formatQuote(fill.cost),
            mark: '184',
            edge: formatQuote(fill.edge),
          },
        ],
      },
    });
    // Bought 1 % under the mark: its edge is that 1 % of the value at the mark, floored.
    expect(fill.edge).toBe((fill.size * 184n * 10n ** 8n) / 10n ** 10n - fill.cost);
    expect(BigInt(100000 * 1e6) - stored.capital).toBe(fill.cost);

    const text = await cli('providers', 'show', 'lp-1', ...at);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`provider lp-1 (version ${stored.version}): quotes ETH-USD\n`);
    expect(text.stdout).toContain(`  capital      ${formatQuoteGrouped(stored.capital)} USD unused\n`);
    expect(text.stdout).toContain(
      '  terms        bids 1 % from the mark, takes up to 100 ETH of an auction\n',
    );
    expect(text.stdout).toContain(
      `    ETH-USD  1 fill: bought ${formatBase(fill.size)} ETH for ${formatQuoteGrouped(fill.cost)} USD; edge ${formatQuoteGrouped(fill.edge)} USD at the marks\n`,
    );
    expect(text.stdout).toContain(
      `${auction.id} step ${fill.step}: bought ${formatBase(fill.size)} ETH at ${formatPrice(fill.price)} USD, paid ${formatQuoteGrouped(fill.cost)} USD; mark 184 USD, edge ${formatQuoteGrouped(fill.edge)} USD`,
    );
    expect(text.stdout).not.toMatch(/\b\d{9,}\b/);

    // A provider that won nothing says so; one unknown is refused with exit 2.
    const none = await cli('providers', 'show', 'lp-btc', '--json', ...at);
    expect(none.code).toBe(0);
    expect((JSON.parse(none.stdout) as ProviderShow).fills).toBeUndefined();
    expect((await cli('providers', 'show', 'lp-btc', ...at)).stdout).toContain(
      'won          nothing recorded',
    );
    const unknown = await cli('providers', 'show', 'lp-9', ...at);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      `backstop: providers show: no provider "lp-9" in stage ${stage} (local) (backstop providers list lists them)\n`,
    );

    const list = await cli('providers', 'list', '--json', ...at);
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as ProvidersList;
    expect(listed.providers.map((p) => [p.id, p.fills])).toEqual([
      ['lp-1', 1],
      [
        'lp-2',
        (await adapters.auctions.get(auction.id))!.fills.filter((f) => f.providerId === 'lp-2').length,
      ],
      ['lp-btc', 0],
    ]);
    expect(listed.providers[0]!.totals).toEqual(shown.fills!.byMarket);
    const eth = JSON.parse(
      (await cli('providers', 'list', '--market', 'ETH-USD', '--json', ...at)).stdout,
    ) as ProvidersList;
    expect(eth.market).toBe('ETH-USD');
    expect(eth.providers.map((p) => p.id)).toEqual(['lp-1', 'lp-2']);
    const listText = await cli('providers', 'list', '--market', 'BTC-USD', ...at);
    expect(listText.stdout).toBe(
      '1 provider quoting BTC-USD:\n  lp-btc (BTC-USD): capital 5,000.00 USD unused; bids 5 % from the mark, takes up to 1 BTC of an auction\n    no fill recorded\n',
    );

    // A record that does not read is named, the others listed, exit 1 (review48-providers-list-unreadable).
    await emulator.clients.dynamo.send(
      new PutItemCommand({
        TableName: stack.names.tables.providers,
        Item: { ...providerItem({ ...stored, id: 'lp-bad' }), capital: { S: 'lots' } },
      }),
    );
    const broken = await cli('providers', 'list', '--json', ...at);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toBe(
      'providers list: provider lp-bad cannot be read (adapter/not-an-integer: capital), not listed: every auction step of its markets fails on it\n',
    );
    const brokenList = JSON.parse(broken.stdout) as ProvidersList;
    expect(brokenList.providers.map((p) => p.id)).toEqual(['lp-1', 'lp-2', 'lp-btc']);
    expect(brokenList.unreadable).toEqual([{ id: 'lp-bad', reason: 'adapter/not-an-integer: capital' }]);
    expect((await cli('providers', 'list', ...at)).stdout).toContain('3 providers:\n');

    const usage = await cli('providers', 'show', ...at);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('providers show: a provider id');
    expect((await cli('providers', 'show', 'lp-1', '--market', 'ETH-USD', ...at)).code).toBe(2);
    expect((await cli('providers', 'frob', ...at)).code).toBe(2);
    const help = await cli('providers', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('backstop providers show <providerId>');
    expect((await cli('--help')).stdout).toContain('providers  providers show <id> | list');
  }, 120_000);

  // follow48-providers-market: a lowercase or unknown --market printed "no provider quotes ..." and exited 0.
  it('takes --market as replay takes a symbol: a configured market, exit 2 naming them for another', async () => {
    const { at } = await emulator.newStage('pmkt');
    const lower = await cli('providers', 'list', '--market', 'eth-usd', '--json', ...at);
    expect(lower.code, lower.stderr).toBe(0);
    expect((JSON.parse(lower.stdout) as ProvidersList).market).toBe('ETH-USD');
    expect((await cli('providers', 'list', '--market', 'btc', ...at)).stdout).toBe(
      'no provider quotes BTC-USD\n',
    );
    const markets = DEFAULT_RISK_CONFIG.markets.map((m) => m.symbol).join(', ');
    const unknown = await cli('providers', 'list', '--market', 'DOGE-USD', ...at);
    expect([unknown.code, unknown.stdout, unknown.stderr]).toEqual([
      2,
      '',
      `backstop: --market: "DOGE-USD" is not a configured market (${markets})\n`,
    ]);
    // The markets of the configuration the stage runs: given as --config (a cdk.json too), checked as replay does.
    const sol = path.join(emulator.dir, 'sol.json');
    const eth = DEFAULT_RISK_CONFIG_INPUT.markets[0]!;
    writeFileSync(
      sol,
      JSON.stringify({ ...DEFAULT_RISK_CONFIG_INPUT, markets: [{ ...eth, symbol: 'SOL-USD' }] }),
    );
    const withConfig = await cli('providers', 'list', '--market', 'sol', '--config', sol, ...at);
    expect([withConfig.code, withConfig.stdout]).toEqual([0, 'no provider quotes SOL-USD\n']);
    expect((await cli('providers', 'list', '--market', 'eth-usd', '--config', sol, ...at)).stderr).toBe(
      'backstop: --market: "eth-usd" is not a configured market (SOL-USD)\n',
    );
    expect((await cli('providers', 'list', '--config', 'x.json', ...at)).stderr).toMatch(
      /--config only with --market/,
    );
    expect((await cli('providers', 'show', 'lp-1', '--config', 'x.json', ...at)).code).toBe(2);
  });

  // providers49-forged-lines: the rendered block kept every line feed (printable's keepLines), a record's own with the
  // renderer's, so a line feed in a stored id or symbol printed a line of the record's making as the command's.
  it("prints a line feed in a provider's record escaped, never a line of its own", async () => {
    const { names, at } = await emulator.newStage('pfrg');
    const forged = '\n  capital      1,000,000.00 USD unused';
    const fills = withProviderFill(undefined, {
      liquidationId: `long-1:1${forged}`,
      step: 0,
      symbol: 'ETH-USD',
      direction: 'SELL',
      size: 10_000_000n,
      price: 180_000_000_000n,
      cost: 18_000_000n,
      mark: 185_000_000_000n,
      edge: 500_000n,
      atMs: 1_584_050_040_000,
    });
    const provider = {
      id: 'lp-forge',
      capital: 1_000_000n,
      maxDiscountPpm: 50_000n,
      maxLot: 100_000_000n,
      symbols: ['ETH-USD', `BTC-USD${forged}`],
      fills,
      version: 1,
    };
    await emulator.clients.dynamo.send(
      new PutItemCommand({ TableName: names.tables.providers, Item: providerItem(provider) }),
    );
    for (const args of [['show', 'lp-forge'], ['list']]) {
      const run = await cli('providers', ...args, ...at);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain('\\u000a  capital      1,000,000.00 USD unused');
      // The record's text never starts a line: the one capital line is the command's.
      expect(run.stdout.split('\n').filter((l) => l.trimStart().startsWith('capital'))).toHaveLength(
        args[0] === 'show' ? 1 : 0,
      );
    }
  });

  // providers49-list-unconfigured: a market taken out of the risk configuration was refused (exit 2), so the providers
  // that still quote it (and hold what they won in it) could not be listed by it.
  it('lists the providers of a market no longer configured that they still quote, saying so', async () => {
    const { names, at } = await emulator.newStage('punc');
    const provider = {
      id: 'lp-doge',
      capital: 1_000_000_000n,
      maxDiscountPpm: 50_000n,
      maxLot: 100_000_000n,
      symbols: ['DOGE-USD', 'ETH-USD'],
      version: 0,
    };
    await emulator.clients.dynamo.send(
      new PutItemCommand({ TableName: names.tables.providers, Item: providerItem(provider) }),
    );
    const text = await cli('providers', 'list', '--market', 'doge', ...at);
    expect([text.code, text.stderr]).toEqual([0, '']);
    expect(text.stdout).toBe(
      "1 provider quoting DOGE-USD (DOGE-USD is not a market of the risk configuration):\n  lp-doge (DOGE-USD, ETH-USD): capital 1,000.00 USD unused; bids 5 % from the mark, takes up to 1 of its market's base of an auction\n    no fill recorded\n",
    );
    const json = JSON.parse((await cli('providers', 'list', '--market', 'DOGE-USD', '--json', ...at)).stdout);
    expect(json).toMatchObject({ market: 'DOGE-USD', marketNotConfigured: true });
    expect((json as ProvidersList).providers.map((p) => p.id)).toEqual(['lp-doge']);
    // A configured market is listed as before; one neither configured nor quoted is still refused.
    expect(
      (
        JSON.parse(
          (await cli('providers', 'list', '--market', 'eth', '--json', ...at)).stdout,
        ) as ProvidersList
      ).marketNotConfigured,
    ).toBeUndefined();
    const unknown = await cli('providers', 'list', '--market', 'SHIB-USD', ...at);
    expect([unknown.code, unknown.stdout]).toEqual([2, '']);
    expect(unknown.stderr).toMatch(/^backstop: --market: "SHIB-USD" is not a configured market/);
  });

  // providers50-list-dropped-market: a provider that stopped quoting a market, which was then taken out of the risk
  // configuration, could not be listed by it (exit 2), though its record holds what it won there; nor by a configured
  // market it dropped (not listed).
  it('lists by a market the providers that no longer quote it but hold fills won in it, saying so', async () => {
    const { names, at } = await emulator.newStage('pdrp');
    const fill = (symbol: string, step: number) => ({
      liquidationId: `long-${symbol}:1`,
      step,
      symbol,
      direction: 'SELL' as const,
      size: 10_000_000n,
      price: 180_000_000_000n,
      cost: 18_000_000n,
      mark: 185_000_000_000n,
      edge: 500_000n,
      atMs: 1_584_050_040_000 + step,
    });
    const provider = {
      id: 'lp-was-doge',
      capital: 1_000_000_000n,
      maxDiscountPpm: 50_000n,
      maxLot: 100_000_000n,
      symbols: ['ETH-USD'],
      fills: withProviderFill(withProviderFill(undefined, fill('DOGE-USD', 0)), fill('BTC-USD', 1)),
      version: 2,
    };
    await emulator.clients.dynamo.send(
      new PutItemCommand({ TableName: names.tables.providers, Item: providerItem(provider) }),
    );
    const text = await cli('providers', 'list', '--market', 'doge', ...at);
    expect([text.code, text.stderr]).toEqual([0, '']);
    // Before: exit 2, "DOGE" is not a configured market.
    expect(text.stdout).toBe(
      '1 provider quoting DOGE-USD or holding fills won in it (1 no longer quoting it) (DOGE-USD is not a market of the risk configuration):\n' +
        '  lp-was-doge (ETH-USD): capital 1,000.00 USD unused; bids 5 % from the mark, takes up to 1 ETH of an auction\n' +
        '    no longer quotes DOGE-USD\n' +
        '    DOGE-USD  1 fill: bought 0.1 DOGE for 18.00 USD; edge 0.50 USD at the marks\n',
    );
    const json = JSON.parse((await cli('providers', 'list', '--market', 'DOGE-USD', '--json', ...at)).stdout);
    expect(json).toMatchObject({
      market: 'DOGE-USD',
      marketNotConfigured: true,
      providers: [{ id: 'lp-was-doge', noLongerQuotes: true, fills: 1, totals: [{ symbol: 'DOGE-USD' }] }],
    });
    // A configured market it dropped: listed, said so (before: "no provider quotes BTC-USD").
    const btc = JSON.parse((await cli('providers', 'list', '--market', 'btc', '--json', ...at)).stdout);
    expect(btc).toMatchObject({
      market: 'BTC-USD',
      providers: [{ id: 'lp-was-doge', noLongerQuotes: true }],
    });
    expect(btc.marketNotConfigured).toBeUndefined();
    // One it quotes: as before.
    const eth = JSON.parse((await cli('providers', 'list', '--market', 'eth', '--json', ...at)).stdout);
    expect(eth.providers).toEqual([expect.objectContaining({ id: 'lp-was-doge', fills: 0, totals: [] })]);
    expect(eth.providers[0].noLongerQuotes).toBeUndefined();
    // A market neither configured nor held by anyone: still the usage error.
    expect((await cli('providers', 'list', '--market', 'SHIB-USD', ...at)).code).toBe(2);
  });

  // providers50-list-unreadable-market: --market S, not configured, whose only provider's record does not read was
  // refused as a usage error (exit 2), the record unnamed: that record may be the one quoting S.
  it('names a record that does not read when no provider that reads quotes an unconfigured --market', async () => {
    const { names, at } = await emulator.newStage('punr');
    const provider = {
      id: 'lp-doge',
      capital: 1_000_000_000n,
      maxDiscountPpm: 50_000n,
      maxLot: 100_000_000n,
      symbols: ['DOGE-USD'],
      version: 0,
    };
    await emulator.clients.dynamo.send(
      new PutItemCommand({
        TableName: names.tables.providers,
        Item: { ...providerItem(provider), capital: { S: 'lots' } },
      }),
    );
    const run = await cli('providers', 'list', '--market', 'DOGE-USD', ...at);
    // Before: exit 2, `--market: "DOGE-USD" is not a configured market`, lp-doge unnamed.
    expect([run.code, run.stdout, run.stderr]).toEqual([
      1,
      'no provider whose record reads quotes DOGE-USD (DOGE-USD is not a market of the risk configuration, ETH-USD, BTC-USD: a typo, or a market of a record that does not read)\n',
      'providers list: provider lp-doge cannot be read (adapter/not-an-integer: capital), not listed: every auction step of its markets fails on it\n',
    ]);
    const json = await cli('providers', 'list', '--market', 'doge-usd', '--json', ...at);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({
      market: 'DOGE-USD',
      marketNotConfigured: true,
      marketUnconfirmed: { configured: ['ETH-USD', 'BTC-USD'] },
      providers: [],
      unreadable: [{ id: 'lp-doge', reason: 'adapter/not-an-integer: capital' }],
    });
    // A configured market: listed as before, the record named too.
    const eth = await cli('providers', 'list', '--market', 'eth', ...at);
    expect([eth.code, eth.stdout]).toEqual([1, 'no provider whose record reads quotes ETH-USD\n']);
    // review50-feed-providers-typo: a typo of a configured market cannot be told from that record's market: exit 1 for
    // the record, the typo said as likely (before, only "not a market of the risk configuration").
    const typo = await cli('providers', 'list', '--market', 'ETHH-USD', ...at);
    expect([typo.code, typo.stdout]).toEqual([
      1,
      'no provider whose record reads quotes ETHH-USD (ETHH-USD is not a market of the risk configuration, ETH-USD, BTC-USD: a typo, or a market of a record that does not read)\n',
    ]);
    expect(typo.stderr).toContain('provider lp-doge cannot be read');
  });
});

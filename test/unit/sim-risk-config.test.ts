import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CfnOutput } from 'aws-cdk-lib';
import { afterAll, describe, expect, it } from 'vitest';
import { OUTPUT_KEYS, riskConfigDigest } from '../../infra/outputs.ts';
import {
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  parseRiskConfig,
  type RiskConfigInput,
} from '../../shared/domain/config.ts';
import { cli } from '../support/cli.ts';
import { buildStack, KEYLESS_PROJECT, removeSynthDirs, synthDir } from '../support/infra-project.ts';

/** backstop simulate --config (the risk configuration replayed) and --fund-needed (fund sizing). */

const dir = mkdtempSync(path.join(tmpdir(), 'sim-risk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `content` as a file of this test's folder (JSON unless a string); `name` may name a folder of it first. */
function file(name: string, content: unknown): string {
  const at = path.join(dir, name);
  mkdirSync(path.dirname(at), { recursive: true });
  writeFileSync(at, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return at;
}

const withMarkets = (change: Record<string, string>, symbol?: string): RiskConfigInput => ({
  ...DEFAULT_RISK_CONFIG_INPUT,
  markets: DEFAULT_RISK_CONFIG_INPUT.markets
    .filter((m) => symbol === undefined || m.symbol === 'ETH-USD')
    .map((m) => ({ ...m, ...change, ...(symbol ? { symbol } : {}) })),
});

/**
 * ETH from 200 down 12 % a minute for six minutes, then flat: a cliff that leaves bad debt on a small book even
 * with ADL (its counterparties' profit runs out), so the fund's size decides it.
 */
function cliffPrices(): string {
  const rows: string[] = [];
  let price = 200;
  for (let i = 0; i < 40; i++) {
    rows.push(`${1584003720 + i * 60},${price.toFixed(2)}`);
    if (i >= 3 && i < 9) price *= 0.88;
  }
  return file('eth-cliff.csv', `time,close\n${rows.join('\n')}\n`);
}

describe('backstop simulate --config: a bad file is one line on stderr, exit 2, and nothing runs', () => {
  const feeTooHigh = file('fee-too-high.json', withMarkets({ liquidationFee: '0.5' }));
  const cases: [string, string[], RegExp][] = [
    [
      'a missing file',
      ['--config', path.join(dir, 'none.json')],
      /--config: cannot read .*none\.json \(ENOENT\)/,
    ],
    [
      'a file that is not JSON',
      ['--config', file('bad.json', '{ markets: ')],
      /--config: .*bad\.json is not JSON/,
    ],
    [
      'JSON that is neither a risk config nor a cdk.json',
      ['--config', file('list.json', [1])],
      /--config: .*list\.json: neither a risk configuration \(markets, auction, insurance\) nor a cdk\.json/,
    ],
    [
      'a rate out of its bounds, with its market named, as synth says it',
      ['--config', feeTooHigh],
      /--config: .*fee-too-high\.json: invalid risk config: markets\.0\.liquidationFee \(ETH-USD\): liquidationFee: must be at most 0\.1/,
    ],
    [
      'an unknown key (a misspelt one is not the default)',
      ['--config', file('typo.json', { ...DEFAULT_RISK_CONFIG_INPUT, insurence: {} })],
      /invalid risk config: \(root\): Unrecognized key: "insurence"/,
    ],
    [
      'a cdk.json whose backstop:riskConfig breaks a rule across fields',
      [
        '--config',
        file('margins/cdk.json', {
          app: 'x',
          context: { 'backstop:riskConfig': withMarkets({ initialMargin: '0.01' }) },
        }),
      ],
      /--config: .*cdk\.json: backstop:riskConfig: ETH-USD: initialMargin must be greater than maintenanceMargin/,
    ],
    [
      'a cdk.json whose key is misspelt (never the defaults replayed for it)',
      ['--config', file('cdk-typo.json', { context: { 'backstop:riskconfig': DEFAULT_RISK_CONFIG_INPUT } })],
      /--config: .*cdk-typo\.json: invalid CDK context: unknown context key\(s\) backstop:riskconfig;/,
    ],
    [
      'a cdk.context.json whose value is the first line of a pretty-printed file',
      ['--config', file('first-line/cdk.context.json', { 'backstop:riskConfig': '{' })],
      /cdk\.context\.json: invalid CDK context: backstop:riskConfig: not valid JSON: only "\{" arrived/,
    ],
    [
      'a config without the built-in scenario market, and no price file',
      ['--config', file('usdt.json', withMarkets({}, 'ETH-USDT'))],
      /--config: the built-in scenario is ETH-USD prices, and .*usdt\.json has no ETH-USD market \(ETH-USDT\): give --prices/,
    ],
    [
      '--fund-needed with a bad file',
      ['--fund-needed', '--config', feeTooHigh],
      /liquidationFee: must be at most/,
    ],
    ['--fund-needed with --fund', ['--fund-needed', '--fund', '1000'], /--fund: not with --fund-needed/],
    [
      '--fund-needed with --report',
      ['--fund-needed', '--report', 'x.html'],
      /--report: not with --fund-needed/,
    ],
    ['--resolution without --fund-needed', ['--resolution', '10'], /--resolution: only with --fund-needed/],
    ['a resolution of 0', ['--fund-needed', '--resolution', '0'], /--resolution: must be more than 0/],
  ];
  for (const [name, argv, message] of cases) {
    it(`refuses ${name}`, async () => {
      const r = await cli('simulate', ...argv);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^backstop: /);
    });
  }
});

describe('backstop simulate --config: the replay takes its rules from the file', () => {
  const run = async (...argv: string[]) => {
    const r = await cli('simulate', '--positions', '300', '--seed', '5', '--json', ...argv);
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout);
  };

  it('a higher liquidation fee earns the fund more than the built-in rules, and the JSON and table say which', async () => {
    const input = withMarkets({ liquidationFee: '0.02' });
    const digest = riskConfigDigest(parseRiskConfig(input));
    const plain = file('fee-2pc.json', input);
    const builtIn = await run();
    const fee = await run('--config', plain);
    expect(builtIn.riskConfig).toEqual({
      file: null,
      read: 'defaults',
      beside: null,
      digest: riskConfigDigest(DEFAULT_RISK_CONFIG),
    });
    // The stack's RiskConfigDigest output for the same input: what the risk team compares with.
    expect(fee.riskConfig).toEqual({ file: plain, read: 'risk config', beside: null, digest });
    expect(Number(fee.feesCollected)).toBeGreaterThan(Number(builtIn.feesCollected) * 1.5);
    expect(fee.insuranceFund.end).not.toBe(builtIn.insuranceFund.end);
    expect(Number(fee.insuranceFund.end)).toBeGreaterThan(Number(builtIn.insuranceFund.end));
    expect(fee.conservationError).toBe('0');

    // The same rules from a cdk.json's context, or a cdk.context.json's (a -c value's JSON string): the same run.
    const cdk = file('cdk-fee.json', { app: 'node app.ts', context: { 'backstop:riskConfig': input } });
    const fromCdk = await run('--config', cdk);
    expect(fromCdk.riskConfig).toEqual({ file: cdk, read: 'backstop:riskConfig', beside: null, digest });
    expect(fromCdk.insuranceFund).toEqual(fee.insuranceFund);
    const context = file('cdk-fee.context.json', { 'backstop:riskConfig': JSON.stringify(input) });
    expect((await run('--config', context)).riskConfig.digest).toBe(digest);
    // A cdk.json that sets no risk config deploys the defaults, and says so.
    const none = file('cdk-none.json', { app: 'x', context: { 'backstop:stage': 'prod' } });
    const defaults = await run('--config', none);
    expect(defaults.riskConfig).toEqual({
      file: none,
      read: 'defaults',
      beside: null,
      digest: builtIn.riskConfig.digest,
    });
    expect(defaults.insuranceFund).toEqual(builtIn.insuranceFund);

    const report = path.join(dir, 'fee.html');
    const table = await cli(
      'simulate',
      '--positions',
      '300',
      '--seed',
      '5',
      '--config',
      cdk,
      '--report',
      report,
    );
    const line = `risk config ${cdk} (its backstop:riskConfig), digest ${digest.slice(0, 12)}, as synth reads it without -c values`;
    expect(table.stdout.split('\n')[2]).toBe(line);
    expect(readFileSync(report, 'utf8')).toContain(`Rules: ${line}.`);
    const plainTable = await cli('simulate', '--positions', '300', '--seed', '5');
    expect(plainTable.stdout).not.toContain('risk config');
  }, 60_000);

  it('replays a market only the file lists, named and priced in its quote currency', async () => {
    const r = await cli(
      'simulate',
      '--config',
      file('usdt-market.json', withMarkets({}, 'ETH-USDT')),
      '--prices',
      cliffPrices(),
      '--positions',
      '300',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Backstop simulation: eth-cliff\.csv, ETH-USDT,/);
    expect(r.stdout).toMatch(/fund 2,130\.00 USDT\n/);
    expect(r.stdout).toMatch(/closed on the market \(USDT\)/);
  }, 30_000);
});

// review48-risk-cdk-context-pair: `--config cdk.json` read cdk.json alone, while synth merges cdk.context.json beside it
// (where DEPLOY.md keeps the risk configuration): the defaults were replayed, under a digest that was not the stack's.
describe('backstop simulate --config cdk.json: the context synth merges, and the digest the stack outputs', () => {
  afterAll(removeSynthDirs);
  const fee = withMarkets({ liquidationFee: '0.02' });
  const replay = async (given: string) => {
    const r = await cli('simulate', '--positions', '300', '--json', '--config', given);
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout).riskConfig;
  };

  it('reads the risk configuration in cdk.context.json beside a cdk.json, by the digest synth outputs', async () => {
    const cdkJson = { app: 'node --import tsx infra/app.ts', context: { 'backstop:stage': 'qa' } };
    const contextJson = { 'backstop:riskConfig': JSON.stringify(fee) };
    const cdk = file('pair/cdk.json', cdkJson);
    const beside = file('pair/cdk.context.json', contextJson);
    // The stack synth builds from the two files: the CDK CLI hands the app both contexts, cdk.json's over the other.
    const { stack } = buildStack(
      KEYLESS_PROJECT,
      { ...contextJson, ...cdkJson.context },
      { outdir: synthDir('sim-risk-synth-') },
    );
    // The output's value as the stack holds it (a literal: the template's, without the 10 s of a synth).
    const deployed = (stack.node.findChild(OUTPUT_KEYS.riskConfigDigest) as CfnOutput).value as string;
    expect(deployed).not.toBe(riskConfigDigest(DEFAULT_RISK_CONFIG));
    expect(await replay(cdk)).toEqual({ file: cdk, read: 'backstop:riskConfig', beside, digest: deployed });
    const table = await cli('simulate', '--positions', '300', '--config', cdk);
    expect(table.stdout.split('\n')[2]).toBe(
      `risk config ${cdk} with cdk.context.json beside it (backstop:riskConfig of cdk.context.json), digest ${deployed.slice(0, 12)}, as synth reads it without -c values`,
    );
  }, 60_000);

  it("merges the two as the CDK CLI does, cdk.json's over cdk.context.json's, whichever is given", async () => {
    // A partial object in cdk.json is merged key by key into cdk.context.json's (aws-cdk's deepMerge).
    const cdk = file('both/cdk.json', {
      context: { 'backstop:riskConfig': { insurance: { ...fee.insurance, floor: '1000' } } },
    });
    const context = file('both/cdk.context.json', { 'backstop:riskConfig': fee });
    const digest = riskConfigDigest(
      parseRiskConfig({ ...fee, insurance: { ...fee.insurance, floor: '1000' } }),
    );
    expect(await replay(cdk)).toMatchObject({ beside: context, digest });
    expect(await replay(context)).toMatchObject({ beside: cdk, digest });
    const table = await cli('simulate', '--positions', '300', '--config', context);
    expect(table.stdout.split('\n')[2]).toContain('(backstop:riskConfig of both, merged)');
    // A string in cdk.json replaces cdk.context.json's object whole.
    file('both/cdk.json', { context: { 'backstop:riskConfig': JSON.stringify(DEFAULT_RISK_CONFIG_INPUT) } });
    expect((await replay(context)).digest).toBe(riskConfigDigest(DEFAULT_RISK_CONFIG));
  }, 60_000);
});

describe('backstop simulate --fund-needed', () => {
  it('finds the smallest fund that leaves no bad debt uncovered: one step less leaves some', async () => {
    const prices = cliffPrices();
    const base = ['simulate', '--prices', prices, '--positions', '2000'];
    const r = await cli(...base, '--fund-needed', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ strategy: 'waterfall', positions: 2000, resolution: '1', monotone: true });
    // review48-risk-json-keys: README names every key a script reads (it named monotone and the pair only).
    const readme = readFileSync(path.join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Your risk configuration, and the fund it needs'));
    const documented = section.slice(0, section.indexOf('\n## ')).replace(/\s+/g, ' ');
    const keys = [
      ...Object.keys(out),
      ...Object.keys(out.fundNeeded),
      ...Object.keys(out.figures.noBadDebt),
      'unreachable',
      ...Object.keys(out.runs[0]),
      ...Object.keys(out.riskConfig),
    ];
    for (const key of keys) expect(documented, key).toContain(`\`${key}\``);
    const runs = out.runs.length;
    expect(r.stderr.match(/^fund-needed: run \d+: fund /gm)).toHaveLength(runs);
    expect(runs).toBeLessThanOrEqual(20);
    for (const [target, left] of [
      ['noUncoveredBadDebt', 'badDebtUncovered'],
      ['noBadDebt', 'badDebt'],
    ] as const) {
      const figure = out.figures[target];
      expect(figure.resolved).toBe(true);
      expect(out.fundNeeded[target]).toBe(figure.fund);
      expect(figure.at[left]).toBe('0');
      expect(Number(figure.below.fund)).toBe(Number(figure.fund) - 1);
      expect(Number(figure.below[left])).toBeGreaterThan(0);
    }
    // Here ADL covers part of what the fund refuses: a fund that leaves none uncovered still leaves some to ADL.
    expect(Number(out.fundNeeded.noUncoveredBadDebt)).toBeGreaterThan(0);
    expect(Number(out.fundNeeded.noBadDebt)).toBeGreaterThan(Number(out.fundNeeded.noUncoveredBadDebt));

    // The same two funds by plain simulate: the figure is a property of the runs, not of the search's bookkeeping.
    const needed = out.fundNeeded.noUncoveredBadDebt;
    const at = JSON.parse((await cli(...base, '--fund', needed, '--json')).stdout);
    const under = JSON.parse((await cli(...base, '--fund', String(Number(needed) - 1), '--json')).stdout);
    expect(at.badDebtUncovered).toBe('0');
    expect(Number(under.badDebtUncovered)).toBeGreaterThan(0);
  }, 120_000);

  it('prints the figures as a table, market-only needing one fund for both (it has no ADL)', async () => {
    const r = await cli(
      'simulate',
      '--prices',
      cliffPrices(),
      '--positions',
      '2000',
      '--strategy',
      'market-only',
      '--fund-needed',
      '--resolution',
      '10',
    );
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(
      'Backstop fund sizing: eth-cliff.csv, ETH-USD, 40 ticks, 2,000 positions, seed 1, market-only',
    );
    expect(lines[1]).toBe('the smallest starting insurance fund, to 10.00 USD, for which market-only leaves');
    const uncovered = r.stdout.match(/^no bad debt left uncovered +([\d,.]+) +([\d,.]+)$/m);
    const all = r.stdout.match(/^no bad debt at all \(ADL covers no deficit\) +([\d,.]+) +([\d,.]+)$/m);
    expect(uncovered?.[1]).toBe(all?.[1]);
    expect(Number(uncovered![1]!.replaceAll(',', '')) % 10).toBe(0);
    expect(Number(uncovered![2]!.replaceAll(',', ''))).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/^\d+ simulations in \d+ s; no larger fund left more than a smaller one$/m);
  }, 60_000);
});

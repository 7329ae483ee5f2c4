import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { riskConfigDigest } from '../../shared/config-digest.ts';
import {
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  parseRiskConfig,
} from '../../shared/domain/config.ts';
import { cli } from '../support/cli.ts';

/**
 * review52-facts-config-digest-command: a file's digest at once, as a claim's `config` line and a stack's
 * RiskConfigDigest output give it, where `simulate --config` replays a crash for seconds to print its start.
 */

const dir = mkdtempSync(path.join(tmpdir(), 'config-digest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const at = path.join(dir, name);
  mkdirSync(path.dirname(at), { recursive: true });
  writeFileSync(at, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return at;
}

const feeHalved = {
  ...DEFAULT_RISK_CONFIG_INPUT,
  markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => ({ ...m, liquidationFee: '0.005' })),
};

describe('backstop config digest', () => {
  it("prints a file's whole digest, the stack's RiskConfigDigest of it, and what it read", async () => {
    const own = file('risk.json', feeHalved);
    const digest = riskConfigDigest(parseRiskConfig(feeHalved));
    expect(digest).not.toBe(riskConfigDigest(DEFAULT_RISK_CONFIG));
    const run = await cli('config', 'digest', '--config', own);
    expect(run).toEqual({
      code: 0,
      stdout: `${digest}\nrisk config ${own}, digest ${digest.slice(0, 12)}\n`,
      stderr: '',
    });
    // A cdk.json beside the cdk.context.json holding it: read as synth reads the pair.
    const cdk = file('pair/cdk.json', { context: { 'backstop:stage': 'qa' } });
    file('pair/cdk.context.json', { 'backstop:riskConfig': JSON.stringify(feeHalved) });
    const pair = await cli('config', 'digest', '--config', cdk, '--json');
    expect(pair.code).toBe(0);
    expect(JSON.parse(pair.stdout)).toEqual({
      file: cdk,
      read: 'backstop:riskConfig',
      beside: path.join(dir, 'pair/cdk.context.json'),
      digest,
    });
  });

  it('without --config, the built-in configuration', async () => {
    expect(await cli('config', 'digest')).toEqual({
      code: 0,
      stdout: `${riskConfigDigest(DEFAULT_RISK_CONFIG)}\nthe built-in risk configuration (what a stack deployed without backstop:riskConfig runs)\n`,
      stderr: '',
    });
  });

  it('refuses a bad file, a missing or unknown subcommand, with one line and exit 2, printing no digest', async () => {
    const tooHigh = file('too-high.json', {
      ...feeHalved,
      markets: feeHalved.markets.map((m) => ({ ...m, liquidationFee: '0.5' })),
    });
    for (const [argv, error] of [
      [['digest', '--config', tooHigh], `backstop: --config: ${tooHigh}: invalid risk config: markets.0`],
      [['digest', '--config', path.join(dir, 'none.json')], 'backstop: --config: cannot read'],
      [[], 'backstop: config: missing subcommand (digest)'],
      [['show'], 'backstop: config: unknown subcommand "show" (digest)'],
      [['digest', 'risk.json'], 'backstop: config: unexpected argument "risk.json"'],
    ] as const) {
      const run = await cli('config', ...argv);
      expect(run.code, argv.join(' ')).toBe(2);
      expect(run.stdout, argv.join(' ')).toBe('');
      expect(run.stderr, argv.join(' ')).toContain(error);
      expect(run.stderr.split('\n'), argv.join(' ')).toHaveLength(2);
    }
  });
});

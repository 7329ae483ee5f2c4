import { describe, expect, it } from 'vitest';
import type { RiskConfigSource } from '../../cli/risk-config.ts';
import { riskConfigLine } from '../../cli/simulate.ts';
import { DEFAULT_RISK_CONFIG, DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';

/** simulate's table and report line for a --config: what of which file was replayed, under which digest. */
describe('riskConfigLine', () => {
  const source = (over: Partial<RiskConfigSource>): RiskConfigSource => ({
    config: DEFAULT_RISK_CONFIG,
    input: DEFAULT_RISK_CONFIG_INPUT,
    read: 'risk config',
    digest: '0123456789abcdef0123',
    ...over,
  });
  const tail = 'digest 0123456789ab, as synth reads it without -c values';

  it('says nothing for the built-in configuration (the demo table stays as it is)', () => {
    expect(riskConfigLine(source({}))).toBeUndefined();
  });

  it('names a risk configuration file and its digest, cut to 12 characters', () => {
    expect(riskConfigLine(source({ file: 'fee.json' }))).toBe('risk config fee.json, digest 0123456789ab');
  });

  it('says what of a cdk.json or its context was read, and the file beside it by name', () => {
    const cdk = (over: Partial<RiskConfigSource>) =>
      riskConfigLine(source({ file: 'deploy/cdk.json', ...over }));
    expect(cdk({ read: 'backstop:riskConfig' })).toBe(
      `risk config deploy/cdk.json (its backstop:riskConfig), ${tail}`,
    );
    expect(cdk({ read: 'defaults' })).toBe(
      `risk config deploy/cdk.json (no backstop:riskConfig in it: the defaults), ${tail}`,
    );
    const beside = 'deploy/cdk.context.json';
    expect(cdk({ read: 'defaults', beside })).toBe(
      `risk config deploy/cdk.json with cdk.context.json beside it (no backstop:riskConfig in either: the defaults), ${tail}`,
    );
    expect(cdk({ read: 'backstop:riskConfig', beside, from: ['deploy/cdk.json', beside] })).toBe(
      `risk config deploy/cdk.json with cdk.context.json beside it (backstop:riskConfig of both, merged), ${tail}`,
    );
    expect(cdk({ read: 'backstop:riskConfig', beside, from: [beside] })).toBe(
      `risk config deploy/cdk.json with cdk.context.json beside it (backstop:riskConfig of cdk.context.json), ${tail}`,
    );
  });
});

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLocalResources } from '../../shared/adapters/aws/index.ts';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { cli, publishStackOutputs, useOperatorEmulator } from '../support/cli.ts';

const emulator = useOperatorEmulator('deployed-markets');

/** A stage deployed as the CDK stack would be (names from Backstop-<stage>'s outputs), as moto.test.ts does. */
async function deployedStage(stage: string): Promise<string[]> {
  await publishStackOutputs(
    emulator.moto.endpoint,
    stage,
    await createLocalResources(emulator.clients, stage),
  );
  return [
    '--target',
    'localstack',
    '--endpoint',
    emulator.moto.endpoint,
    '--region',
    'us-east-1',
    '--stage',
    stage,
  ];
}

// Found by a review of the operator workflow in session 25: inject and replay judged the symbol against the
// built-in markets, with no --config.
describe('inject tick / replay on a deployed stack whose risk config is not the defaults', () => {
  it('can put a tick for a market the stack runs (backstop:riskConfig with SOL-USD)', async () => {
    const at = await deployedStage('solstage');
    // Deployed with -c backstop:riskConfig=... adding SOL-USD (DEPLOY.md, "Context values").
    const input = {
      ...DEFAULT_RISK_CONFIG_INPUT,
      markets: [
        ...DEFAULT_RISK_CONFIG_INPUT.markets,
        { ...DEFAULT_RISK_CONFIG_INPUT.markets[0]!, symbol: 'SOL-USD' },
      ],
    };
    parseRiskConfig(input);
    const file = path.join(emulator.dir, 'risk.json');
    writeFileSync(file, JSON.stringify(input));
    // The other operator commands take the deployed configuration with --config: seeding SOL-USD works.
    const seeded = await cli(
      'seed',
      'positions',
      '--markets',
      'SOL-USD',
      '--price',
      '150',
      '--count',
      '3',
      '--config',
      file,
      ...at,
    );
    expect(seeded.code, seeded.stderr).toBe(0);

    // Without the deployed configuration the symbol is judged against the built-in markets; with it, it is put.
    const plain = await cli('inject', 'tick', '--symbol', 'SOL-USD', '--price', '150', '--wait', '0', ...at);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/not a configured market/);
    const withConfig = await cli(
      'inject',
      'tick',
      '--symbol',
      'SOL-USD',
      '--price',
      '150',
      '--config',
      file,
      '--wait',
      '0',
      ...at,
    );
    expect(withConfig.code, withConfig.stderr).toBe(0);
    expect(JSON.parse(withConfig.stdout).entry.Detail.symbol).toBe('SOL-USD');

    // replay judges the symbol the same way, before it sends anything.
    const prices = path.join(emulator.dir, 'sol.csv');
    // One price: nothing runs margin-check here, and a replay's next tick waits for the market to handle the one
    // before (review46-replay-order).
    writeFileSync(prices, 'timestamp,close\n1584000000000,150\n');
    const replayPlain = await cli('replay', prices, '--symbol', 'SOL-USD', '--speed', 'max', ...at);
    expect(replayPlain.code).toBe(2);
    expect(replayPlain.stderr).toMatch(/--symbol: "SOL-USD" is not a configured market/);
    const replayed = await cli(
      'replay',
      prices,
      '--symbol',
      'SOL-USD',
      '--speed',
      'max',
      '--json',
      '--config',
      file,
      ...at,
    );
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(JSON.parse(replayed.stdout)).toMatchObject({
      symbol: 'SOL-USD',
      sent: 1,
      accepted: 1,
      rejected: 0,
    });
  });
});

import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CfnOutput } from 'aws-cdk-lib';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { OUTPUT_KEYS } from '../../infra/outputs.ts';
import { riskConfigDigest } from '../../shared/config-digest.ts';
import { decodeClaimedFacts } from '../../shared/domain/claimed-facts.ts';
import { DEFAULT_RISK_CONFIG, DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import { riskConfigFromEnv } from '../../shared/lambda/runtime.ts';
import { RISK_CONFIG_ENV } from '../../shared/topology.ts';
import { cli } from '../support/cli.ts';
import { buildStack, KEYLESS_PROJECT, removeSynthDirs, synthDir } from '../support/infra-project.ts';
import { createPipeline } from '../support/pipeline.ts';

afterAll(removeSynthDirs);

/** `value` with its objects' keys in reverse order, at every level: what a hand-written file may look like. */
const reversedKeys = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(reversedKeys)
    : value !== null && typeof value === 'object'
      ? Object.fromEntries(
          Object.entries(value)
            .reverse()
            .map(([k, v]) => [k, reversedKeys(v)]),
        )
      : value;

// facts52-claim-config-digest: the claim records the start of the digest of the configuration its function runs,
// which support matches against the stack's RiskConfigDigest output. Synth computes that output from the context,
// the function parses the JSON built into its code: this holds the two to the same bytes, end to end.
describe("the configuration a claim names, against the stack's RiskConfigDigest output", () => {
  it('is the one built into the functions: the claim records the start of the digest synth outputs', async () => {
    // Not the defaults, its markets and keys in another order than the built-in one's, given as -c gives it.
    const input = reversedKeys({
      ...DEFAULT_RISK_CONFIG_INPUT,
      markets: [...DEFAULT_RISK_CONFIG_INPUT.markets]
        .reverse()
        .map((m) => ({ ...m, liquidationFee: '0.0075' })),
    });
    const outdir = synthDir('claim-config-digest-');
    const { stack } = buildStack(
      KEYLESS_PROJECT,
      { 'backstop:riskConfig': JSON.stringify(input) },
      { outdir },
    );
    const deployed = (stack.node.findChild(OUTPUT_KEYS.riskConfigDigest) as CfnOutput).value as string;
    expect(deployed).toMatch(/^[0-9a-f]{64}$/);
    expect(deployed).not.toBe(riskConfigDigest(DEFAULT_RISK_CONFIG));

    // The consumer reads the configuration built into its code (RISK_CONFIG=bundled), the module synth wrote.
    const consumer = stack.functions.liquidationConsumer.node.defaultChild as CfnFunction;
    const environment = stack.resolve(consumer.environment) as { variables: Record<string, string> };
    expect(environment.variables[RISK_CONFIG_ENV]).toBe('bundled');
    const modules = readdirSync(outdir).filter((name) => /^risk-config-[0-9a-f]+\.mjs$/.test(name));
    expect(modules).toHaveLength(1);
    const { BACKSTOP_RISK_CONFIG: bundled } = (await import(
      pathToFileURL(path.join(outdir, modules[0]!)).href
    )) as { BACKSTOP_RISK_CONFIG: string };
    const running = riskConfigFromEnv({ [RISK_CONFIG_ENV]: 'bundled' }, bundled);

    // A claim under it, as its function makes one.
    const p = createPipeline({ config: running, marks: 'as-configured' });
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '184');
    await p.drain();
    const [l] = p.adapters.liquidations.all();
    expect(l?.state).toBe('SETTLED_MARKET');
    const facts = decodeClaimedFacts(l!.context!.claimed);
    expect(facts?.liquidationFee).toBe(7_500n);
    expect(facts?.configDigest).toBe(deployed.slice(0, 12));

    // And what support runs on the file deployed: the whole of the output.
    const cdkJson = path.join(outdir, 'cdk.json');
    writeFileSync(cdkJson, JSON.stringify({ context: { 'backstop:riskConfig': JSON.stringify(input) } }));
    const digest = await cli('config', 'digest', '--config', cdkJson);
    expect(digest.code).toBe(0);
    expect(digest.stdout.split('\n')[0]).toBe(deployed);
  }, 60_000);
});

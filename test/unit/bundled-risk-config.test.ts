import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import { buildSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { writeRiskConfigModule } from '../../infra/constructs/functions.ts';
import { ConfigError, DEFAULT_RISK_CONFIG, DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import { bundledRiskConfigJson, riskConfigFromEnv } from '../../shared/lambda/runtime.ts';
import { RISK_CONFIG_BUNDLED, RISK_CONFIG_ENV } from '../../shared/topology.ts';

/**
 * Session 40: the risk configuration is built into the functions' code (any number of markets), and RISK_CONFIG
 * says where it is. These read it the way a deployed function does: from a bundle built with the stack's module.
 */

const runtime = fileURLToPath(new URL('../../shared/lambda/runtime.ts', import.meta.url));
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const withMarkets = (count: number) =>
  JSON.stringify({
    ...DEFAULT_RISK_CONFIG_INPUT,
    markets: Array.from({ length: count }, (_, i) => ({
      ...DEFAULT_RISK_CONFIG_INPUT.markets[0],
      symbol: `M${i}-USD`,
    })),
  });

/**
 * Bundles a cold start of the shared runtime as the stack bundles a function (ESM, minified, CommonJS dependencies
 * inlined, the configuration's module injected), runs it under RISK_CONFIG=bundled and returns what it printed.
 */
function coldStartOfBundle(riskConfigJson: string): {
  status: number | null;
  stdout: string;
  stderr: string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-bundled-config-'));
  dirs.push(dir);
  const module = writeRiskConfigModule(new Stack(new App({ outdir: dir }), 'Probe'), riskConfigJson);
  const entry = join(dir, 'entry.ts');
  writeFileSync(
    entry,
    `import { riskConfigFromEnv } from ${JSON.stringify(runtime)};\n` +
      'try {\n' +
      '  console.log(riskConfigFromEnv().markets.map((m) => m.symbol).join(","));\n' +
      '} catch (error) {\n' +
      '  console.error(error.name + ": " + error.message);\n' +
      '  process.exitCode = 1;\n' +
      '}\n',
  );
  const outfile = join(dir, 'index.mjs');
  buildSync({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    mainFields: ['module', 'main'],
    minify: true,
    inject: [module],
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    outfile,
    logLevel: 'error',
  });
  const run = spawnSync(process.execPath, [outfile], {
    env: { PATH: process.env.PATH, [RISK_CONFIG_ENV]: RISK_CONFIG_BUNDLED, POWERTOOLS_DEV: 'false' },
    encoding: 'utf8',
  });
  return { status: run.status, stdout: run.stdout.trim(), stderr: run.stderr.trim() };
}

describe('the risk configuration built into the code', () => {
  it('is what a bundled function reads at cold start: 40 markets, far past the 4 KB environment', () => {
    const json = withMarkets(40);
    expect(json.length).toBeGreaterThan(4 * 4096);
    const run = coldStartOfBundle(json);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.split(',')).toEqual(Array.from({ length: 40 }, (_, i) => `M${i}-USD`));
  });

  it('refuses a broken one at cold start with a ConfigError naming where it came from', () => {
    const notJson = coldStartOfBundle('{"markets": [');
    expect(notJson.status).toBe(1);
    expect(notJson.stderr).toMatch(/^ConfigError: the risk configuration built into this code is not JSON/);
    const invalid = coldStartOfBundle(withMarkets(0));
    expect(invalid.status).toBe(1);
    expect(invalid.stderr).toMatch(
      /^ConfigError: the risk configuration built into this code: invalid risk config/,
    );
  });

  it('is absent from code run from source (the local runner, tests)', () => {
    expect(bundledRiskConfigJson()).toBeUndefined();
  });
});

describe('RISK_CONFIG says where the configuration is (one rule)', () => {
  const json = withMarkets(40);

  it('bundled: the built-in one; JSON: that one, in code with none built in; unset: the defaults', () => {
    expect(riskConfigFromEnv({ [RISK_CONFIG_ENV]: RISK_CONFIG_BUNDLED }, json).markets).toHaveLength(40);
    expect(riskConfigFromEnv({ [RISK_CONFIG_ENV]: json }, undefined).markets).toHaveLength(40);
    expect(riskConfigFromEnv({}, undefined)).toBe(DEFAULT_RISK_CONFIG);
  });

  it('refuses "bundled" in code that carries none (a function not deployed by the CDK app)', () => {
    const read = () => riskConfigFromEnv({ [RISK_CONFIG_ENV]: RISK_CONFIG_BUNDLED }, undefined);
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(/RISK_CONFIG is "bundled" but this code has no risk configuration built in/);
  });

  it('refuses another source beside the built-in one: a console edit, or none, fails loudly', () => {
    for (const env of [{ [RISK_CONFIG_ENV]: withMarkets(2) }, {}]) {
      const read = () => riskConfigFromEnv(env, json);
      expect(read).toThrow(ConfigError);
      expect(read).toThrow(
        /RISK_CONFIG must be "bundled", not (JSON|unset): change the configuration with a deploy/,
      );
    }
  });

  it('names RISK_CONFIG when its JSON is broken or invalid', () => {
    expect(() => riskConfigFromEnv({ [RISK_CONFIG_ENV]: '{"markets": [' }, undefined)).toThrow(
      /^RISK_CONFIG is not JSON/,
    );
    expect(() => riskConfigFromEnv({ [RISK_CONFIG_ENV]: withMarkets(0) }, undefined)).toThrow(
      /^RISK_CONFIG: invalid risk config/,
    );
  });
});

import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../shared/topology.ts';

/**
 * ops47-reconcile-advice: ledger-reconcile names a command with its stack's target flags, from shared/advice.ts, not
 * from the CLI's shared/local/deployment.ts, which would bundle the CloudFormation client and the CLI's target code into
 * the function. Each function is bundled as the stack bundles it (esbuild, the SDK left to the runtime); what it takes
 * in is read from esbuild's metafile.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));

function bundledInputs(folder: string) {
  const out = buildSync({
    entryPoints: [`functions/${folder}/index.ts`],
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    mainFields: ['module', 'main'],
    external: ['@aws-sdk/*'],
    metafile: true,
    write: false,
    logLevel: 'silent',
  });
  const inputs = Object.keys(out.metafile.inputs);
  const external = Object.values(out.metafile.outputs).flatMap((o) =>
    o.imports.filter((i) => i.external).map((i) => i.path),
  );
  return { inputs, external };
}

describe("the functions' bundles", () => {
  it.each(FUNCTIONS.map((def) => def.folder))(
    '%s takes in nothing of the CLI, local tooling or infra',
    (folder) => {
      const { inputs, external } = bundledInputs(folder);
      expect(inputs.filter((i) => /^(cli|infra|shared\/local)\//.test(i))).toEqual([]);
      expect(external.filter((p) => p.startsWith('@aws-sdk/client-cloudformation'))).toEqual([]);
    },
  );

  // review48-timeouts-runtime-sdk: the functions leave @aws-sdk/* to the nodejs24.x runtime, which ships the service
  // clients; the SDK's inner packages are not sure to be importable from a function's code (@smithy/node-http-handler
  // is not, aws/aws-sdk-js-v3#6169), and one missing fails every function at its start. clients.ts imported
  // @aws-sdk/credential-provider-node.
  it.each(FUNCTIONS.map((def) => def.folder))(
    '%s imports no package of the SDK but its clients',
    (folder) => {
      const { external } = bundledInputs(folder);
      expect(external.filter((p) => p.startsWith('@aws-sdk/') && !p.startsWith('@aws-sdk/client-'))).toEqual(
        [],
      );
    },
  );

  it("ledger-reconcile's advice comes from shared/advice.ts", () => {
    expect(bundledInputs('ledger-reconcile').inputs).toContain('shared/advice.ts');
  });
});

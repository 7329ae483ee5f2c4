import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { loadConfig } from './config.ts';
import { addNagChecks } from './nag.ts';
import { stackName } from './outputs.ts';
import { BackstopStack } from './stack.ts';

/** `cdk synth` / `cdk deploy` entry (cdk.json: node --import tsx infra/app.ts). */
const app = new App();
const config = loadConfig(app.node.getAllContext());
new BackstopStack(app, stackName(config.stage), {
  config,
  projectRoot: fileURLToPath(new URL('..', import.meta.url)),
  description: `Backstop liquidation engine (${config.stage})`,
  // Environment-agnostic unless the CLI found credentials: synth works offline.
  ...(process.env.CDK_DEFAULT_ACCOUNT && process.env.CDK_DEFAULT_REGION
    ? { env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION } }
    : {}),
});
addNagChecks(app);
app.synth();

import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';

/**
 * cdk-nag 3 runs as a CDK policy-validation plugin: an unacknowledged finding fails `app.synth()` and is
 * written to the assembly's validation report. Acknowledgements sit next to the resources they concern
 * (infra/constructs/*), each with its reason.
 */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
}

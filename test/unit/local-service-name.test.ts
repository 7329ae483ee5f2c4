import { expect, it } from 'vitest';
// What `backstop local up` does: cli/ops/local.ts imports the local stack module (and through it
// shared/lambda/wiring.ts -> runtime.ts) before startLocalStack applies the stage's environment.
import { applyFunctionEnvironment, functionEnvironment } from '../../shared/local/stack.ts';
import { metricsService } from '../../shared/metrics.ts';
import { fakeResourceNames } from '../support/resource-names.ts';

const names = fakeResourceNames();

// Found by a review of session 31: the CLI loaded the handlers' Powertools instances before local up gave the
// stage's environment, so local stages emitted under the bare `backstop`.
it("a local stage's functions emit their metrics under the stage's service, as a Lambda's do", async () => {
  delete process.env.POWERTOOLS_SERVICE_NAME;
  applyFunctionEnvironment(functionEnvironment('demo', names, 'http://localhost:5000', 'us-east-1'));
  expect(process.env.POWERTOOLS_SERVICE_NAME).toBe(metricsService('demo'));
  // The handlers (loaded after the environment, as loadHandlers does) share this module's instances.
  const { metrics, powertoolsTelemetry } = await import('../../shared/lambda/runtime.ts');
  powertoolsTelemetry().count('PositionsChecked', 1);
  const emf = metrics.serializeMetrics() as unknown as Record<string, unknown>;
  metrics.clearMetrics();
  expect(emf.service).toBe('backstop-demo');
});

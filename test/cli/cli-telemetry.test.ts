import { describe, expect, it } from 'vitest';
import { cliTelemetry } from '../../cli/ops/common.ts';
import { applyAdmin } from '../../shared/local/seed.ts';
import type { AdminRequest } from '../../shared/services/admin.ts';
import { createPipeline } from '../support/pipeline.ts';

describe("the CLI's telemetry for the services it runs (registration-wakes-uncounted)", () => {
  it("says on stderr when a provider it registered could not wake the market's sleepers", async () => {
    const p = createPipeline();
    let stderr = '';
    const io = { stderr: { write: (text: string) => (stderr += text) } };
    const deps = {
      ...p.adapters,
      config: p.config,
      telemetry: cliTelemetry(io),
      nowMs: () => p.clock.nowMs(),
    };
    p.adapters.markets.bumpProvidersEpoch = async () => {
      throw new Error('ThrottlingException');
    };
    const request: AdminRequest = {
      action: 'registerProvider',
      id: 'lp-1',
      capital: '1000',
      maxDiscount: '0.02',
      maxLot: '5',
      symbols: ['ETH-USD'],
    };
    // applyAdmin's outcome counts the provider written and keeps no wake error: only the warning tells.
    expect(await applyAdmin([request], deps)).toMatchObject({ created: 1, failed: [] });
    expect(stderr).toBe(
      'backstop: warning: provider registered; sleeping auctions not woken, they see it when they step (ETH-USD providers epoch: ThrottlingException)\n',
    );
  });
});

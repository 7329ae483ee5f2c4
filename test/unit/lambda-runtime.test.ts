import { afterEach, describe, expect, it, vi } from 'vitest';
import { log, logger, powertoolsTelemetry, withRecordKeys } from '../../shared/lambda/runtime.ts';

describe('record keys on log lines', () => {
  afterEach(() => vi.restoreAllMocks());

  it("keeps each record's correlation id on its own lines while a batch's records interleave", async () => {
    const info = vi.spyOn(logger, 'info').mockImplementation(() => {});
    const warn = vi.spyOn(logger, 'warn').mockImplementation(() => {});
    const telemetry = powertoolsTelemetry();
    let releaseA = () => {};
    const aWaits = new Promise<void>((resolve) => {
      releaseA = resolve;
    });
    const a = withRecordKeys({ correlation_id: 'A', receiveCount: '1' }, async () => {
      log.info('a starts');
      await aWaits;
      telemetry.warn('a ends', { extra: 1 });
    });
    const b = withRecordKeys({ correlation_id: 'B' }, async () => {
      telemetry.info('b runs');
      releaseA();
    });
    await Promise.all([a, b]);
    log.info('outside');
    const lines = [...info.mock.calls, ...warn.mock.calls].map(([message, fields]) => [message, fields]);
    expect(lines).toEqual([
      ['a starts', { correlation_id: 'A', receiveCount: '1' }],
      ['b runs', { correlation_id: 'B' }],
      ['outside', {}],
      ['a ends', { correlation_id: 'A', receiveCount: '1', extra: 1 }],
    ]);
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { createPipeline } from '../support/pipeline.ts';

/**
 * What `backstop status`'s `refused <kind>: N ticks since ...` counts, as the out-of-order entry says
 * (review50-oncall-trace-count): a tick numbered past the latest the trace noted; and the trace goes only with an
 * accepted tick an hour after its latest note (or a resume), so while every tick is refused it stays, however old. The
 * entry said a source numbered below a tick refused "earlier in the hour" shows as nothing new: it does hours later too.
 */
it('counts out-of-order ticks numbered past the latest noted, and keeps the trace past the hour while none is accepted', async () => {
  const p = createPipeline();
  await p.tick('ETH-USD', '200', { sequence: 100 }); // a market's first print waits for a second
  await p.tick('ETH-USD', '200', { sequence: 101 });
  const last = p.clock.nowMs();
  const stray = (sequence: number) => p.tick('ETH-USD', '200', { sequence, timestampMs: last });
  const trace = async () => (await p.adapters.markets.get('ETH-USD'))?.refusals?.['tick/out-of-order'];
  expect(await stray(50)).toMatchObject({ reason: 'tick/out-of-order' });
  expect(await trace()).toMatchObject({ sequence: 50, count: 1 });
  // Two hours on, nothing accepted since: a stray numbered below it is refused and shows as nothing new.
  p.clock.advance(2 * 3_600_000);
  expect(await stray(40)).toMatchObject({ reason: 'tick/out-of-order' });
  expect(await trace()).toMatchObject({ sequence: 50, count: 1 });
  expect(await stray(60)).toMatchObject({ reason: 'tick/out-of-order' });
  expect(await trace()).toMatchObject({ sequence: 60, count: 2 });
  const deploy = readFileSync(path.resolve(import.meta.dirname, '../../docs/DEPLOY.md'), 'utf8').replace(
    /\s+/g,
    ' ',
  );
  expect(deploy).toContain(
    'a trace that notes a tick only when numbered past the latest it noted, at most 10 a second, and is removed only by a resume or by an accepted tick an hour after its latest note',
  );
});

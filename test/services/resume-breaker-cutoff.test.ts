import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { FEED_USAGE } from '../../cli/ops/seed.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { createPipeline } from '../support/pipeline.ts';
import { adminDepsOf } from '../support/resume.ts';

/**
 * Where a resume's old numbering ends, as DEPLOY.md and `feed resume --help` say (review50-oncall-resume-breaker): the
 * old feed's last recorded print, its last accepted tick or the print its breaker holds, whichever is stamped later,
 * plus maxClockSkewSeconds (5 s). The runbook said the last accepted tick: a restarted feed's tick stamped between the
 * two ends is refused as out of order where it read as accepted.
 */
it("refuses after a resume a tick stamped within maxClockSkewSeconds of the breaker's print, not only of the last accepted", async () => {
  const p = createPipeline();
  await p.tick('ETH-USD', '200', { sequence: 10 }); // a market's first print waits for a second
  await p.tick('ETH-USD', '200', { sequence: 11 });
  const accepted = p.clock.nowMs();
  p.clock.advance(3_000);
  // The old feed's last print trips the breaker, stamped 3 s after its last accepted tick.
  expect(await p.tick('ETH-USD', '100', { sequence: 12 })).toMatchObject({ reason: 'tick/price-band' });
  const held = p.clock.nowMs();
  expect(
    await handleAdmin({ action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 1 }, adminDepsOf(p)),
  ).toMatchObject({ ok: true });
  p.clock.advance(6_000);
  // Past the last accepted tick's 5 s, within the held print's: the old feed's.
  expect(await p.tick('ETH-USD', '200', { sequence: 1, timestampMs: accepted + 5_001 })).toMatchObject({
    reason: 'tick/out-of-order',
  });
  expect(await p.tick('ETH-USD', '200', { sequence: 1, timestampMs: held + 5_000 })).toMatchObject({
    reason: 'tick/out-of-order',
  });
  expect(await p.tick('ETH-USD', '200', { sequence: 1, timestampMs: held + 5_001 })).toMatchObject({
    status: 'accepted',
  });
  expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.sequence).toBe(1);
  // As the operator reads it: the help and DEPLOY.md ("Adding a market", the numbering alarm's entry).
  const deploy = readFileSync(path.resolve(import.meta.dirname, '../../docs/DEPLOY.md'), 'utf8').replace(
    /\s+/g,
    ' ',
  );
  expect(FEED_USAGE.replace(/\s+/g, ' ')).toContain(
    "after the old feed's last recorded print (its last accepted tick, or the print its breaker holds)",
  );
  expect(deploy).toContain(
    "the old feed's last print the market recorded (its last accepted tick, or the print its breaker holds, whichever is stamped later) plus `maxClockSkewSeconds`",
  );
  expect(deploy).toContain(
    "after the old feed's last recorded print (its last accepted tick, or the print its breaker holds, if stamped later;",
  );
});

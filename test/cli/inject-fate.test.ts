import { describe, expect, it } from 'vitest';
import {
  createAwsAdapters,
  createAwsQueueTransports,
  type ResourceNames,
} from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { silentTelemetry } from '../../shared/ports/index.ts';
import { parseTickDetail } from '../../shared/schemas/tick.ts';
import { handleTick } from '../../shared/services/margin-check.ts';
import { cli, injectTick, useOperatorEmulator } from '../support/cli.ts';

/**
 * `inject tick` says what margin-check made of its tick, from the market record (accepted, or held by the breaker)
 * or, for a refusal that leaves no trace, from the same rule on the market as it stood. Noted by an operator's walk
 * in session 25 (it exited 0 for a tick the stack then refused); done in session 26.
 */

const emulator = useOperatorEmulator('inject-fate');

/**
 * Margin-check as the stack runs it, on this stage: the bus's rule delivers ticks to the stage's tick queue; each
 * is judged by the service margin-check runs, on the AWS adapters. Serves until `done` settles.
 */
async function serveTicks(names: ResourceNames, done: Promise<unknown>): Promise<number> {
  const adapters = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });
  const { tickQueue } = createAwsQueueTransports(emulator.clients, names);
  let finished = false;
  void done.finally(() => {
    finished = true;
  });
  let handled = 0;
  while (!finished) {
    for (const m of await tickQueue.receive(10, 30)) {
      const parsed = parseTickDetail((JSON.parse(m.body) as { detail: unknown }).detail);
      if (!parsed.ok) throw new Error(parsed.reason);
      await handleTick(
        parsed.tick,
        {
          ...adapters,
          config: DEFAULT_RISK_CONFIG,
          telemetry: silentTelemetry,
          maxPositionsPerInvocation: 100,
        },
        Date.now(),
      );
      await tickQueue.delete(m.receiptHandle);
      handled += 1;
    }
  }
  return handled;
}

/** `inject tick` while margin-check serves the stage. */
async function injectServed(names: ResourceNames, at: string[], price: string) {
  const run = cli('inject', 'tick', '--symbol', 'ETH-USD', '--price', price, ...at);
  const handled = await serveTicks(names, run);
  const result = await run;
  return { ...result, handled, fate: JSON.parse(result.stdout).fate as Record<string, unknown> };
}

describe('inject tick reports its fate', () => {
  it("a market's first print is held until a second agrees, which is accepted; a gap is held by the breaker", async () => {
    const { names, at } = await emulator.newStage('fate');
    const first = await injectServed(names, at, '1500');
    expect(first).toMatchObject({
      code: 0,
      handled: 1,
      fate: { outcome: 'held', reason: 'tick/unconfirmed' },
    });
    expect(first.stderr).toMatch(/first print .* waits for a second that agrees/);

    const second = await injectServed(names, at, '1501');
    expect(second).toMatchObject({ code: 0, handled: 1, fate: { outcome: 'accepted' } });
    expect(second.stderr).toBe('');

    // 40 % from the last mark (band 15 %): the breaker holds it instead of liquidating on it.
    const gap = await injectServed(names, at, '900');
    expect(gap).toMatchObject({ code: 3, fate: { outcome: 'held', reason: 'tick/price-band' } });
    expect(gap.stderr).toMatch(/the circuit breaker holds tick \d+ \(tick\/price-band\)/);
  });

  it('a refusal that leaves no trace is said at once, with its reason', async () => {
    const { names, at } = await emulator.newStage('fate');
    const markets = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock }).markets;
    const last = { sequence: 50, markPrice: parsePrice('1500'), timestampMs: Date.now() };
    await markets.acceptTick('ETH-USD', last, undefined, false);
    const run = await injectTick('ETH-USD', '1500', '--sequence', '50', ...at);
    expect(run.code).toBe(3);
    expect(JSON.parse(run.stdout).fate).toEqual({
      outcome: 'refused',
      reason: 'tick/duplicate',
      detail: 'sequence 50 seen',
    });
    expect(run.stderr).toMatch(/margin-check refuses tick 50: tick\/duplicate/);
    // Nothing changed on the market.
    expect((await markets.get('ETH-USD'))?.lastTick).toEqual(last);
  });

  it('without waiting, says what margin-check will make of it: a gap the breaker will hold exits 3', async () => {
    const { at, names } = await emulator.newStage('fate');
    const markets = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock }).markets;
    await markets.acceptTick(
      'ETH-USD',
      { sequence: 5, markPrice: parsePrice('1500'), timestampMs: Date.now() },
      undefined,
      false,
    );
    const inBand = await injectTick('ETH-USD', '1510', '--wait', '0', ...at);
    expect(inBand.code).toBe(0);
    expect(JSON.parse(inBand.stdout).fate).toEqual({ outcome: 'sent', expected: 'accept' });
    const gap = await injectTick('ETH-USD', '900', '--wait', '0', ...at);
    expect(gap.code).toBe(3);
    expect(JSON.parse(gap.stdout).fate).toEqual({
      outcome: 'sent',
      expected: 'hold',
      reason: 'tick/price-band',
    });
    expect(gap.stderr).toMatch(/the circuit breaker will hold tick \d+ \(tick\/price-band\)/);
  });

  it('a tick nobody handles within the wait exits 4 and says what to check', async () => {
    const { at } = await emulator.newStage('fate');
    const run = await injectTick('ETH-USD', '1500', '--wait', '1', ...at);
    expect(run.code).toBe(4);
    expect(JSON.parse(run.stdout).fate).toMatchObject({ outcome: 'not-handled' });
    expect(run.stderr).toMatch(/is the stack running \(backstop local up\)/);
  });

  it('refuses a --wait that is not a whole number of seconds, before sending anything', async () => {
    const { at } = await emulator.newStage('fate');
    const run = await injectTick('ETH-USD', '1500', '--wait', 'soon', ...at);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--wait: "soon" is not a whole number of seconds/);
  });
});

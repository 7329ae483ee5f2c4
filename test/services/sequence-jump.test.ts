import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_SEQUENCE_JUMP } from '../../shared/domain/config.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * A tick numbered far above the market's last, recorded, would make every later tick of the feed out of order: one
 * print numbered 2^53 - 1 blinded a market until an operator ran `feed resume` (security review, session 25).
 * Through margin-check: such a tick is held, not recorded.
 */
/** A market at 100 (sequences 0 and 1) with a long liquidatable below about 92.3, a second on. */
async function marketWithLong(p: Pipeline) {
  await p.tick('ETH-USD', '100', { sequence: 0 });
  await p.tick('ETH-USD', '100', { sequence: 1 });
  const long = await p.open('LONG', '10', '100', '100');
  p.clock.advance(1_000);
  return long;
}

describe('a tick that jumps the sequence', () => {
  it('is held, not recorded: the feed goes on, and its next print liquidates what it crosses', async () => {
    const p = createPipeline();
    const long = await marketWithLong(p);
    expect(await p.tick('ETH-USD', '100', { sequence: Number.MAX_SAFE_INTEGER })).toMatchObject({
      status: 'rejected',
      reason: 'tick/sequence-jump',
    });
    const market = await p.adapters.markets.get('ETH-USD');
    expect(market?.lastTick?.sequence).toBe(1);
    expect(market?.heldJump?.tick.sequence).toBe(Number.MAX_SAFE_INTEGER);
    expect(p.telemetry.total('TicksRejected')).toBeGreaterThan(0);

    // A redelivery of it changes nothing.
    expect(await p.tick('ETH-USD', '100', { sequence: Number.MAX_SAFE_INTEGER })).toMatchObject({
      reason: 'tick/sequence-jump',
    });
    expect((await p.adapters.markets.get('ETH-USD'))?.heldJump?.heldAtMs).toBe(market?.heldJump?.heldAtMs);

    // The feed's next print is judged as usual: accepted, it drops the held one and liquidates the long.
    p.clock.advance(1_000);
    expect(await p.tick('ETH-USD', '91', { sequence: 2 })).toMatchObject({ status: 'accepted' });
    const after = await p.adapters.markets.get('ETH-USD');
    expect(after?.lastTick?.sequence).toBe(2);
    expect(after?.heldJump).toBeUndefined();
    expect((await p.adapters.positions.get(long.id))?.state).toBe('LIQUIDATING');
    await p.drain();
    expect((await p.check()).violations).toEqual([]);
  });

  it('a feed restarted on a new numbering is followed once a print continues from the jump, 5 s later', async () => {
    const p = createPipeline(); // breakerConfirmSeconds 5
    await p.tick('ETH-USD', '100', { sequence: 0 });
    await p.tick('ETH-USD', '100', { sequence: 1 });
    const base = 1 + DEFAULT_MAX_SEQUENCE_JUMP + 1_000;
    p.clock.advance(1_000);
    expect(await p.tick('ETH-USD', '100', { sequence: base })).toMatchObject({
      reason: 'tick/sequence-jump',
    });
    p.clock.advance(1_000);
    expect(await p.tick('ETH-USD', '100', { sequence: base + 1 })).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    expect((await p.adapters.markets.get('ETH-USD'))?.heldJump?.tick.sequence).toBe(base);
    p.clock.advance(4_000);
    expect(await p.tick('ETH-USD', '100.5', { sequence: base + 2 })).toMatchObject({ status: 'accepted' });
    const market = await p.adapters.markets.get('ETH-USD');
    expect(market?.lastTick?.sequence).toBe(base + 2);
    expect(market?.heldJump).toBeUndefined();
    // The old numbering is now behind it.
    p.clock.advance(1_000);
    expect(await p.tick('ETH-USD', '100', { sequence: 2 })).toMatchObject({ reason: 'tick/out-of-order' });
  });

  it('a glitch held above a feed restarted on a new numbering does not keep that feed out (review, session 33)', async () => {
    const p = createPipeline();
    const long = await marketWithLong(p);
    expect(await p.tick('ETH-USD', '100', { sequence: Number.MAX_SAFE_INTEGER })).toMatchObject({
      reason: 'tick/sequence-jump',
    });
    // The restarted feed, one print a second: its first print replaces the glitch, the next four wait for the
    // span, the one 5 s after its first moves the market onto its numbering.
    const base = 1 + DEFAULT_MAX_SEQUENCE_JUMP + 1_000;
    const reasons: string[] = [];
    for (let i = 0; i <= 5; i++) {
      p.clock.advance(1_000);
      const outcome = await p.tick('ETH-USD', i < 5 ? '100' : '90', { sequence: base + i });
      reasons.push(outcome.status === 'accepted' ? 'accepted' : outcome.reason);
    }
    expect(reasons).toEqual(['tick/sequence-jump', ...Array(4).fill('tick/sequence-confirming'), 'accepted']);
    expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.sequence).toBe(base + 5);
    expect((await p.adapters.positions.get(long.id))?.state).toBe('LIQUIDATING');
  });

  it('a feed resumed from 0 is guarded too: a glitch after the resume is held (review, session 33)', async () => {
    const p = createPipeline();
    const deps = { ...p.adapters, config: p.config, nowMs: () => p.clock.nowMs() };
    await p.tick('ETH-USD', '100', { sequence: 500 });
    await p.tick('ETH-USD', '100', { sequence: 501 });
    const resumed = await handleAdmin({ action: 'resumeFeed', symbol: 'ETH-USD', fromSequence: 0 }, deps);
    expect(resumed.ok).toBe(true);
    p.clock.advance(6_000);
    expect(await p.tick('ETH-USD', '100', { sequence: Number.MAX_SAFE_INTEGER })).toMatchObject({
      reason: 'tick/sequence-jump',
    });
    p.clock.advance(1_000);
    expect(await p.tick('ETH-USD', '100', { sequence: 0 })).toMatchObject({ status: 'accepted' });
  });

  it('a glitch repeated more often than the span does not keep a restarted feed out (review, session 33)', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '100', { sequence: 0 });
    await p.tick('ETH-USD', '100', { sequence: 1 });
    const base = 1 + DEFAULT_MAX_SEQUENCE_JUMP + 1_000;
    const reasons: string[] = [];
    // The old feed stops; the restarted one ticks every second; a print numbered 2^53 - 1 comes every 4 s.
    for (let i = 0; i < 12; i++) {
      p.clock.advance(1_000);
      if (i % 4 === 1) await p.tick('ETH-USD', '100', { sequence: Number.MAX_SAFE_INTEGER });
      const outcome = await p.tick('ETH-USD', '100', { sequence: base + i });
      reasons.push(outcome.status === 'accepted' ? 'accepted' : outcome.reason);
    }
    expect(reasons.slice(0, 2)).toEqual(['tick/sequence-jump', 'tick/sequence-jump']);
    expect(reasons).toContain('accepted');
    expect(reasons.at(-1)).toBe('accepted');
    expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.sequence).toBe(base + 11);
  });
});

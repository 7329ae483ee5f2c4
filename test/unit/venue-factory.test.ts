import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../shared/adapters/embedded/clock.ts';
import { EmbeddedMarketRepository } from '../../shared/adapters/embedded/markets.ts';
import { VenueConfigError } from '../../shared/adapters/venue/config.ts';
import { createVenue, VENUE, VENUES } from '../../shared/adapters/venue/index.ts';
import { MarkFollowingVenue } from '../../shared/adapters/venue/mark-following.ts';
import { DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import { price } from '../../shared/domain/units.ts';
import { resetWiring, wiring } from '../../shared/lambda/wiring.ts';
import { functionEnvironment } from '../../shared/local/stack.ts';
import type { MarketRepository } from '../../shared/ports/index.ts';
import { fakeResourceNames } from '../support/resource-names.ts';

/**
 * The seam an exchange adapter plugs into (docs/VENUE.md): the wiring builds whatever adapters/venue/index.ts names,
 * and the deployed functions still trade on the simulated book that follows the marks.
 */

afterEach(() => resetWiring());

/** A markets table any call of which fails the test: building a venue must read nothing. */
const untouchable = (): MarketRepository =>
  new Proxy({} as MarketRepository, {
    get: (_, method) => () => {
      throw new Error(`venue construction called markets.${String(method)}`);
    },
  });

describe('venue factory', () => {
  // Whatever VENUE names (an integrator changes it, docs/VENUE.md), the wiring builds that venue and no other.
  it('the functions trade on the venue VENUE names, built by the wiring', () => {
    const env = functionEnvironment('dev', fakeResourceNames(), 'http://localhost:5000', 'us-east-1', {
      riskConfig: DEFAULT_RISK_CONFIG_INPUT,
    });
    const named = createVenue({ markets: untouchable(), clock: new ManualClock(0), env: {} }, VENUE);
    expect(wiring(env).settlement.venue.constructor).toBe(named.constructor);
  });

  it('the simulated book that follows the marks is the venue VENUES names mark-following', () => {
    expect(
      createVenue({ markets: untouchable(), clock: new ManualClock(0), env: {} }, 'mark-following'),
    ).toBeInstanceOf(MarkFollowingVenue);
  });

  // Every function builds the wiring, and four of the six never trade: a venue reading anything (its secret, the
  // exchange's markets) when built would fail their cold starts, or need a grant they must not have.
  it.each(Object.keys(VENUES))('builds %s without a call to anything', (name) => {
    expect(() =>
      createVenue({ markets: untouchable(), clock: new ManualClock(0), env: {} }, name),
    ).not.toThrow();
  });

  it("builds the venue on the context's markets table", async () => {
    const markets = new EmbeddedMarketRepository();
    await markets.acceptTick(
      'ETH-USD',
      { sequence: 1, markPrice: price('195'), timestampMs: 1_000 },
      undefined,
      false,
    );
    const venue = createVenue({ markets, clock: new ManualClock(2_000), env: {} });
    const { bid, ask } = await venue.quote('ETH-USD');
    expect(bid! < price('195') && price('195') < ask!).toBe(true);
  });

  it('refuses a venue it does not know, naming those it does', () => {
    const context = { markets: untouchable(), clock: new ManualClock(0), env: {} };
    expect(() => createVenue(context, 'no-such-exchange')).toThrow(VenueConfigError);
    expect(() => createVenue(context, 'toString')).toThrow(/venue\/unknown: toString; known: mark-following/);
  });
});

import type { Clock, MarketRepository, Venue } from '../../ports/index.ts';
import { VenueConfigError } from './config.ts';
import { MarkFollowingVenue } from './mark-following.ts';

/**
 * The venues the functions can trade on, and the one they do: the seam where an exchange adapter plugs in
 * (docs/VENUE.md). The wiring (shared/lambda/wiring.ts) builds the venue here once per container, for every function
 * alike, the local stack's included; only liquidation-consumer and auction place orders or ask for quotes. An adapter
 * is added to VENUES and named in VENUE: no service, handler or stack changes.
 */

/** What a venue is built from. Building does no I/O: four of the six functions never trade, nor may read the secret. */
export interface VenueContext {
  /** The markets table (the simulated book follows its last accepted mark). */
  readonly markets: MarketRepository;
  readonly clock: Clock;
  /**
   * The function's environment: names, never credentials (test/infra/secrets.test.ts); an exchange's API key is
   * read from Secrets Manager at the adapter's first call, by `secretsManagerVenueKey(env)` (key.ts, docs/VENUE.md).
   */
  readonly env: NodeJS.ProcessEnv;
}

export type VenueFactory = (context: VenueContext) => Venue;

export const VENUES = {
  /** The simulated order book following the marks: the default (local runs, tests, a stack that moves nothing). */
  'mark-following': ({ markets, clock }) => new MarkFollowingVenue(markets, clock),
} as const satisfies Readonly<Record<string, VenueFactory>>;

export type VenueName = keyof typeof VENUES;

/** The venue the deployed and local functions trade on, chosen when the code is built (as the bundled risk config). */
export const VENUE: VenueName = 'mark-following';

/**
 * The venues that read no API key: the simulated ones, which trade on no exchange. Every other adapter of VENUES reads
 * its key from Secrets Manager at its first call (secretsManagerVenueKey, VENUE_KEY_ID), so the stack refuses to
 * synthesize one without backstop:venueSecret, and `backstop local up` to start one without --venue-key: without it
 * every order fails its key's read, and its slice goes to the auction (venue47-secret-required).
 */
export const KEYLESS_VENUES: readonly VenueName[] = ['mark-following'];

/** Whether the venue named `name` reads an API key (any but KEYLESS_VENUES, an unknown name too). */
export const readsVenueKey = (name: string): boolean => !(KEYLESS_VENUES as readonly string[]).includes(name);

/** The venue named `name` (VENUE by default), built from `context`. */
export function createVenue(context: VenueContext, name: string = VENUE): Venue {
  const factory: VenueFactory | undefined = Object.hasOwn(VENUES, name)
    ? VENUES[name as VenueName]
    : undefined;
  if (!factory)
    throw new VenueConfigError(`venue/unknown: ${name}; known: ${Object.keys(VENUES).join(', ')}`);
  return factory(context);
}

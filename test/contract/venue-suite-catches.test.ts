import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../shared/adapters/embedded/clock.ts';
import { type SimulatedMarketConfig, SimulatedVenue } from '../../shared/adapters/venue/simulated.ts';
import type { Fill } from '../../shared/domain/model.ts';
import { base, price } from '../../shared/domain/units.ts';
import {
  type OrderRequest,
  type OrderResult,
  type Venue,
  VenueError,
  type VenueErrorKind,
} from '../../shared/ports/index.ts';
import {
  checkVenueProperty,
  type ExchangeFault,
  VENUE_PROPERTIES,
  type VenueHarness,
} from './venue-suite.ts';

/**
 * The venue contract is not vacuous: each mistake an exchange adapter is likely to make (a wrapper around the
 * simulated book making it) fails the properties named for it (others may fail it too). Nor is it stricter than the
 * consumer: an adapter differing only in what the consumer does not read passes every property.
 */

const SYMBOL = 'ETH-USD';
const MARK = price('2000');
const FAULTS = {
  'lost-before': 'timeout',
  'lost-after': 'timeout-after-fill',
  refused: 'reject',
  down: 'unavailable',
  'unread-after': 'timeout-after-fill',
} as const satisfies Record<ExchangeFault, unknown>;

/**
 * A harness whose venue is `adapter` over a simulated book (the exchange: its record of executions, its faults), the
 * book's model `market` if given.
 */
const harnessOf =
  (
    adapter: (exchange: SimulatedVenue) => Venue,
    sibling?: (exchange: SimulatedVenue) => Venue,
    market?: Partial<SimulatedMarketConfig>,
  ) =>
  async (): Promise<VenueHarness> => {
    const clock = new ManualClock(0);
    const exchange = new SimulatedVenue({ clock, ...(market ? { defaults: market } : {}) });
    exchange.onTick(SYMBOL, MARK, 0);
    return {
      venue: adapter(exchange),
      symbol: SYMBOL,
      unlisted: 'DOGE-USD',
      reference: { mark: MARK, atMs: 0 },
      minSize: 1n,
      maxSize: base('2000'),
      netTraded: async (symbol) => exchange.traded(symbol),
      netPaid: async (symbol) => exchange.paid(symbol),
      fail: (fault) => exchange.injectFault(FAULTS[fault]),
      emptyBook: (symbol, empty) => {
        if (empty) exchange.faults.emptyBooks.add(symbol);
        else exchange.faults.emptyBooks.delete(symbol);
      },
      ...(sibling ? { sibling: () => sibling(exchange) } : {}),
      elapse: (ms) => clock.advance(ms),
      close: async () => {},
    };
  };

/** An adapter passing orders through `order`, answers through `answer`, errors through `error`. */
const through =
  (ways: {
    order?: (o: OrderRequest) => OrderRequest;
    answer?: (r: OrderResult, o: OrderRequest) => OrderResult;
    error?: (e: unknown) => unknown;
    quote?: (q: { bid?: bigint; ask?: bigint }) => { bid?: bigint; ask?: bigint };
  }) =>
  (exchange: SimulatedVenue): Venue => ({
    placeIoc: async (o) => {
      let r: OrderResult;
      try {
        r = await exchange.placeIoc(ways.order ? ways.order(o) : o);
      } catch (e) {
        throw ways.error ? ways.error(e) : e;
      }
      return ways.answer ? ways.answer(r, o) : { ...r, clientOrderId: o.clientOrderId };
    },
    quote: async (symbol) => {
      const q = await exchange.quote(symbol);
      return ways.quote ? ways.quote(q) : q;
    },
  });

/** The exchange's price grid (0.01 USD), on which the simulated book quotes. */
const TICK = 1_000_000n;

const sizeOf = (fills: readonly { size: bigint }[]): bigint => fills.reduce((t, f) => t + f.size, 0n);

/**
 * An IOC sent as a plain limit order: its unfilled rest stays on the exchange, which fills it once the book
 * reaches its limit (here, when the adapter next looks at the book).
 */
const resting = (exchange: SimulatedVenue): Venue => {
  const rests = new Map<string, { readonly order: OrderRequest; left: bigint }>();
  let n = 0;
  const match = async () => {
    for (const rest of rests.values()) {
      if (rest.left === 0n) continue;
      const { order } = rest;
      const r = await exchange.placeIoc({
        ...order,
        clientOrderId: `${order.clientOrderId}#${++n}`,
        size: rest.left,
      });
      rest.left -= sizeOf(r.fills);
    }
  };
  return {
    placeIoc: async (o) => {
      const r = await exchange.placeIoc(o);
      const left = o.size - sizeOf(r.fills);
      if (!rests.has(o.clientOrderId) && left > 0n) rests.set(o.clientOrderId, { order: o, left });
      return r;
    },
    quote: async (symbol) => {
      await match();
      return exchange.quote(symbol);
    },
  };
};

/** Executes every call anew (an exchange that keeps no client order ids, as many do once an order is closed). */
let calls = 0;
const forgetful = through({ order: (o) => ({ ...o, clientOrderId: `${o.clientOrderId}#${++calls}` }) });

/** Remembers ids in its own memory, over an exchange that does not: MarkFollowingVenue's idempotency, per container. */
const inMemory = (exchange: SimulatedVenue): Venue => {
  const inner = forgetful(exchange);
  const known = new Map<string, OrderResult>();
  return {
    placeIoc: async (o) => {
      const first = known.get(o.clientOrderId);
      if (first) return first;
      const r = await inner.placeIoc(o);
      known.set(o.clientOrderId, r);
      return r;
    },
    quote: (symbol, reference) => inner.quote(symbol, reference),
  };
};

/**
 * An adapter that reads an order's outcome apart from placing it, over an exchange where, after 'unread-after', the
 * reads of that order's outcome fail (the key refused) until another id is placed: the read's failure answered as
 * `kind`. The other faults are the book's own. 'unread-after' is the next new order's, as the book's faults are: a
 * repeat of an id the exchange answered before passes it by (venue52-stub-repeat-no-fault).
 */
const unreadAs = (kind: VenueErrorKind) => async (): Promise<VenueHarness> => {
  let armed: { done: boolean } | undefined;
  let unread: string | undefined;
  const placed = new Set<string>();
  const h = await harnessOf((exchange) => ({
    placeIoc: async (o) => {
      if (o.clientOrderId !== unread) unread = undefined;
      // Placed: the exchange executes it (a repeat, it answers the first execution).
      const result = await exchange.placeIoc(o);
      const repeat = placed.has(o.clientOrderId);
      placed.add(o.clientOrderId);
      if (armed && !repeat) {
        armed.done = true;
        armed = undefined;
        unread = o.clientOrderId;
      }
      if (o.clientOrderId === unread)
        throw new VenueError(`venue/${kind}: ${o.clientOrderId}: its trades unread, the key refused`, kind);
      return result;
    },
    quote: (s) => exchange.quote(s),
  }))();
  return {
    ...h,
    fail: (fault) => {
      if (fault !== 'unread-after') return h.fail!(fault);
      const injected = { done: false };
      armed = injected;
      return () => injected.done;
    },
  };
};

/**
 * An exchange checking its rate limit before its duplicate check, under an adapter: refuseRepeat() has it refuse the
 * next order repeating an id it executed. `lookUp`: the adapter looks a refused order's id up (the exchange's record
 * answers it: found, its execution), or passes the refusal on as `rejected` (review52-venue-repeat-refused).
 */
const refusingRepeats = (lookUp: boolean) => async (): Promise<VenueHarness> => {
  let armed: { done: boolean } | undefined;
  const executed = new Set<string>();
  const h = await harnessOf((exchange) => ({
    placeIoc: async (o) => {
      if (armed && executed.has(o.clientOrderId)) {
        armed.done = true;
        armed = undefined;
        if (!lookUp)
          throw new VenueError(`venue/rejected: ${o.clientOrderId}: refused (RATE_LIMITED)`, 'rejected');
        // Looked up: the exchange answers the id's execution.
        return exchange.placeIoc(o);
      }
      const result = await exchange.placeIoc(o);
      executed.add(o.clientOrderId);
      return result;
    },
    quote: (s) => exchange.quote(s),
  }))();
  return {
    ...h,
    refuseRepeat: () => {
      const injected = { done: false };
      armed = injected;
      return () => injected.done;
    },
  };
};

const MISTAKES: readonly {
  readonly mistake: string;
  readonly caughtBy: readonly string[];
  readonly harness: () => Promise<VenueHarness>;
}[] = [
  {
    mistake: 'client order ids cut to the 36 characters an exchange takes',
    caughtBy: ['distinct-ids'],
    harness: harnessOf(through({ order: (o) => ({ ...o, clientOrderId: o.clientOrderId.slice(0, 36) }) })),
  },
  {
    mistake: 'client order ids folded to lower case',
    caughtBy: ['distinct-ids'],
    harness: harnessOf(through({ order: (o) => ({ ...o, clientOrderId: o.clientOrderId.toLowerCase() }) })),
  },
  {
    mistake: 'an exchange that forgets ids once an order is closed, the adapter asking it nothing first',
    caughtBy: ['repeat', 'repeat-concurrent', 'final', 'fault-lost-after'],
    harness: harnessOf(forgetful),
  },
  {
    mistake: "the exchange's duplicate-id error passed on as a rejection",
    caughtBy: ['repeat', 'repeat-concurrent'],
    harness: harnessOf((exchange) => {
      const placed = new Set<string>();
      const inner = through({})(exchange);
      return {
        placeIoc: async (o) => {
          if (placed.has(o.clientOrderId))
            throw new VenueError(`duplicate clientOrderId ${o.clientOrderId}`, 'rejected');
          placed.add(o.clientOrderId);
          return inner.placeIoc(o);
        },
        quote: (s, r) => inner.quote(s, r),
      };
    }),
  },
  {
    mistake:
      "a repeat of an executed id refused by the exchange (its rate limit before its duplicate check) passed on as 'rejected'",
    caughtBy: ['repeat-refused'],
    harness: refusingRepeats(false),
  },
  {
    mistake: 'a lost answer reported as the exchange being unavailable',
    caughtBy: ['fault-lost-after', 'fault-sequences', 'fault-unread-after'],
    harness: harnessOf(
      through({
        error: (e) =>
          e instanceof VenueError && e.kind === 'timeout' ? new VenueError(e.message, 'unavailable') : e,
      }),
    ),
  },
  {
    // venue50-unread-after: the example adapter did so (review50-integrate-example-after-sent), and no fault of the
    // contract came after a placement answered.
    mistake: "a read of an executed order's outcome that failed answered as 'unavailable' (never sent)",
    caughtBy: ['fault-unread-after', 'fault-sequences'],
    harness: unreadAs('unavailable'),
  },
  {
    mistake: "a read of an executed order's outcome that failed answered as 'rejected'",
    caughtBy: ['fault-unread-after', 'fault-sequences'],
    harness: unreadAs('rejected'),
  },
  {
    mistake: "only the first page of an order's trades reported",
    caughtBy: ['answer-is-execution'],
    harness: harnessOf(
      through({
        answer: (r, o) => {
          const fills = r.fills.slice(0, 1);
          const size = fills.reduce((t, f) => t + f.size, 0n);
          return {
            clientOrderId: o.clientOrderId,
            fills,
            status: size === 0n ? 'NONE' : size === o.size ? 'FILLED' : 'PARTIAL',
          };
        },
      }),
    ),
  },
  {
    mistake: "a SELL limit rounded down to the exchange's tick (0.01 USD), past the limit asked",
    caughtBy: ['answer-is-execution'],
    harness: harnessOf(
      through({
        order: (o) =>
          o.direction === 'SELL' ? { ...o, limitPrice: (o.limitPrice / 1_000_000n) * 1_000_000n } : o,
      }),
    ),
  },
  {
    mistake: "every trade reported at the first trade's price (the order's price, not each trade's)",
    caughtBy: ['answer-is-execution'],
    harness: harnessOf(
      through({
        answer: (r, o) => ({
          ...r,
          clientOrderId: o.clientOrderId,
          fills: r.fills.map((f) => ({ ...f, price: r.fills[0]!.price })),
        }),
      }),
    ),
  },
  {
    mistake: 'the trades reported as one, at their average price rounded down',
    caughtBy: ['answer-is-execution'],
    harness: harnessOf(
      through({
        answer: (r, o) => {
          const size = sizeOf(r.fills);
          const notional = r.fills.reduce((t, f) => t + f.price * f.size, 0n);
          return {
            ...r,
            clientOrderId: o.clientOrderId,
            fills: size ? [{ price: notional / size, size }] : [],
          };
        },
      }),
    ),
  },
  {
    mistake: 'an IOC sent as a plain limit order: its rest stays on the book and fills later',
    caughtBy: ['empty-book'],
    harness: harnessOf(resting),
  },
  {
    mistake: "limits sent as they come, off the exchange's tick grid, which refuses them",
    caughtBy: ['answer-is-execution', 'quote-sell'],
    harness: harnessOf(
      through({
        order: (o) => {
          if (o.limitPrice % TICK !== 0n)
            throw new VenueError(`venue/rejected: limit ${o.limitPrice} off the tick grid`, 'rejected');
          return o;
        },
      }),
    ),
  },
  {
    // integrate50-sub-lot-refused: the contract let an order under the minimum be refused, each refusal a venue failure.
    mistake: 'an order under one lot refused (rejected), not answered with no fills',
    caughtBy: ['answer-is-execution'],
    harness: async () => {
      const lot = base('0.001');
      const refusing = through({
        order: (o) => {
          if (o.size < lot) throw new VenueError(`venue/rejected: ${o.size} is under one lot`, 'rejected');
          return o;
        },
      });
      return { ...(await harnessOf(refusing, undefined, { lotSize: lot })()), minSize: lot, lotSize: lot };
    },
  },
  {
    mistake: 'errors thrown as they come from the HTTP client (not VenueError)',
    caughtBy: ['refuses-size-0', 'unlisted', 'fault-refused', 'fault-down', 'fault-lost-before'],
    harness: harnessOf(through({ error: (e) => new Error(`HTTP 400: ${String(e)}`) })),
  },
  {
    mistake: 'a kind of its own, outside the ones the alarm sums',
    caughtBy: ['fault-refused'],
    harness: harnessOf(
      through({
        error: (e) =>
          e instanceof VenueError && e.kind === 'rejected'
            ? new VenueError(e.message, 'auth' as VenueErrorKind)
            : e,
      }),
    ),
  },
  {
    mistake: 'a quote taking the bid one tick too high (a stale or rounded book)',
    caughtBy: ['quote-sell'],
    harness: harnessOf(
      through({ quote: (q) => (q.bid === undefined ? q : { ...q, bid: q.bid + 1_000_000n }) }),
    ),
  },
  {
    mistake: "a quote outage thrown as the HTTP client's error",
    caughtBy: ['quote-failure'],
    harness: async () => {
      let failing: 'lost' | 'down' | undefined;
      const h = await harnessOf((exchange) => ({
        placeIoc: (o) => exchange.placeIoc(o),
        quote: async (symbol) => {
          const fault = failing;
          failing = undefined;
          if (fault) throw new Error(fault === 'lost' ? 'ETIMEDOUT' : 'HTTP 503');
          return exchange.quote(symbol);
        },
      }))();
      return {
        ...h,
        failQuote: (fault) => {
          failing = fault;
        },
      };
    },
  },
  {
    mistake:
      "idempotency kept in the adapter's memory over an exchange that keeps none (MarkFollowingVenue's)",
    caughtBy: ['sibling-repeat', 'sibling-lost-after'],
    harness: harnessOf(inMemory, inMemory),
  },
];

/** A harness with every control: `adapter` and its sibling over the exchange (its book's model `market`), and quote faults. */
const everyControl =
  (adapter: (exchange: SimulatedVenue) => Venue, market?: Partial<SimulatedMarketConfig>) =>
  async (): Promise<VenueHarness> => {
    let failing: 'lost' | 'down' | undefined;
    const withQuoteFaults = (exchange: SimulatedVenue): Venue => {
      const inner = adapter(exchange);
      return {
        placeIoc: (o) => inner.placeIoc(o),
        quote: async (symbol, reference) => {
          const fault = failing;
          failing = undefined;
          if (fault) throw new VenueError(`venue/${fault}`, fault === 'lost' ? 'timeout' : 'unavailable');
          return inner.quote(symbol, reference);
        },
      };
    };
    const h = await harnessOf(withQuoteFaults, withQuoteFaults, market)();
    return {
      ...h,
      failQuote: (fault) => {
        failing = fault;
      },
    };
  };

/** What an exchange keeps per client order id, shared by the adapter's instances (as the exchange's, or a table's). */
const perExchange = <T>(make: () => T) => {
  const kept = new WeakMap<SimulatedVenue, T>();
  return (exchange: SimulatedVenue): T => {
    const found = kept.get(exchange) ?? make();
    kept.set(exchange, found);
    return found;
  };
};

/** The ids the exchange has seen (its order history). */
const history = perExchange(() => new Set<string>());

/** The ids being placed: an adapter's claims, written before it places (a conditional write in production). */
const claims = perExchange(() => new Set<string>());

/** Each trade of 2 units or more as two, as a paged trade history may list them. */
const split = (fills: readonly Fill[]): Fill[] =>
  fills.flatMap((f) =>
    f.size < 2n
      ? [f]
      : [
          { price: f.price, size: f.size / 2n },
          { price: f.price, size: f.size - f.size / 2n },
        ],
  );

/**
 * A book without a spread (its bid level at the ask's price): locked, as a real exchange's book is for moments when
 * the mark is on its tick grid.
 */
const LOCKED: Partial<SimulatedMarketConfig> = {
  baseHalfSpreadPpm: 0,
  halfSpreadPerVol: 0,
  maxHalfSpreadPpm: 0,
};

const SOUND: readonly {
  readonly adapter: string;
  readonly venue: (exchange: SimulatedVenue) => Venue;
  readonly market?: Partial<SimulatedMarketConfig>;
}[] = [
  {
    adapter: 'stateless, over an exchange keeping its client order ids',
    venue: (exchange) => ({ placeIoc: (o) => exchange.placeIoc(o), quote: (s) => exchange.quote(s) }),
  },
  {
    adapter: "answering a repeat from the exchange's trade history, newest first and split otherwise",
    venue: (exchange) => ({
      placeIoc: async (o) => {
        const repeat = history(exchange).has(o.clientOrderId);
        const r = await exchange.placeIoc(o);
        history(exchange).add(o.clientOrderId);
        return repeat ? { ...r, fills: split([...r.fills].reverse()) } : r;
      },
      quote: (s) => exchange.quote(s),
    }),
  },
  {
    adapter: 'with a status of its own (FILLED for a partial fill: the consumer reads the fills)',
    venue: through({
      answer: (r, o) => ({
        ...r,
        clientOrderId: o.clientOrderId,
        status: r.fills.length ? 'FILLED' : r.status,
      }),
    }),
  },
  {
    adapter: 'claiming each id before it places, failing a placement of an id in flight as a timeout',
    venue: (exchange) => ({
      placeIoc: async (o) => {
        const placing = claims(exchange);
        if (placing.has(o.clientOrderId))
          throw new VenueError(
            `venue/timeout: ${o.clientOrderId} is being placed, its outcome unknown`,
            'timeout',
          );
        placing.add(o.clientOrderId);
        try {
          return await exchange.placeIoc(o);
        } finally {
          placing.delete(o.clientOrderId);
        }
      },
      quote: (s) => exchange.quote(s),
    }),
  },
  {
    // The consumer takes a bid equal to the ask (checkQuote refuses one above it alone).
    adapter: 'over a locked book: the bid equal to the ask',
    venue: (exchange) => ({ placeIoc: (o) => exchange.placeIoc(o), quote: (s) => exchange.quote(s) }),
    market: LOCKED,
  },
];

const byId = new Map(VENUE_PROPERTIES.map((p) => [p.id, p]));

/** An error's message and its causes'. */
const messages = (error: unknown): string =>
  error instanceof Error ? [error.message, messages(error.cause)].join('\n') : '';

describe('the venue contract catches the mistakes it is written against', () => {
  it('names each property once', () => {
    expect(byId.size).toBe(VENUE_PROPERTIES.length);
  });

  // Every property can be met, the ones the simulated venues go without included, and by adapters differing in
  // what the consumer does not read or is safe to be told. But repeat-refused: its refusal is an exchange's, which these
  // adapters over a book answering repeats first never meet (met below, by an adapter looking the id up).
  for (const { adapter, venue, market } of SOUND)
    it(`passes an adapter ${adapter}, on every property`, async () => {
      for (const property of VENUE_PROPERTIES.filter((p) => !p.needs?.includes('repeat refusal')))
        await checkVenueProperty(property, everyControl(venue, market), { numRuns: 50, seed: 46 });
    });

  // review52-venue-repeat-refused: the contract injected no refusal on a repeat (a fault is the next new order's), so an
  // adapter passing an exchange's refusal of a repeat of an executed id on as 'rejected' passed it: the delivery after
  // the one that placed it hands the executed size to the auction.
  it("fails repeat-refused on an adapter answering a refused repeat of an executed id 'rejected', saying so; one looking the id up passes", async () => {
    const property = byId.get('repeat-refused')!;
    await checkVenueProperty(property, refusingRepeats(true));
    await expect(checkVenueProperty(property, refusingRepeats(false))).rejects.toThrow(
      /^a repeat of \S+, executed, refused by the exchange and answered rejected: look the id up before answering rejected/,
    );
    // A harness whose refusal did nothing is told so, not passed.
    const idle = async (): Promise<VenueHarness> => ({
      ...(await refusingRepeats(false)()),
      refuseRepeat: () => () => false,
    });
    await expect(checkVenueProperty(property, idle)).rejects.toThrow(
      /^the repeat refusal took no effect: the harness reports that the exchange did not refuse \S+/,
    );
  });

  // venue47-quote-locked: quote-sell and quote-buy asked for a bid below the ask, which the consumer does not: an
  // adapter quoting a locked book, as real exchanges show for moments, failed the contract the consumer passes.
  it('takes a locked quote (the bid equal to the ask), as the consumer does, and refuses a crossed one', async () => {
    const locked = await everyControl(through({}), LOCKED)();
    const quote = await locked.venue.quote(locked.symbol, locked.reference);
    expect(quote).toEqual({ bid: MARK, ask: MARK });
    for (const id of ['quote-sell', 'quote-buy']) {
      const property = byId.get(id)!;
      await checkVenueProperty(property, everyControl(through({}), LOCKED));
      await expect(
        checkVenueProperty(property, harnessOf(through({ quote: (q) => ({ bid: q.ask, ask: q.bid }) }))),
        id,
      ).rejects.toThrow(/a crossed quote: the bid \d+ above the ask \d+/);
    }
  });

  // The mistake is the kind alone: answering the read's failure as a timeout passes every property (but the controls
  // the harness lacks), and answering it 'unavailable' passes every other one than the two injecting 'unread-after'
  // (venue50-unread-after: no other fault comes after an order was answered; venue51-unread-sequences).
  it("passes an adapter answering an executed order's unread outcome as a timeout; 'unavailable' fails the properties injecting it alone", async () => {
    const offered = VENUE_PROPERTIES.filter(
      (p) => !(p.needs ?? []).some((c) => c === 'sibling' || c === 'quote faults' || c === 'repeat refusal'),
    );
    for (const property of offered) {
      await checkVenueProperty(property, unreadAs('timeout'), { numRuns: 50, seed: 46 });
      if (property.id !== 'fault-unread-after' && property.id !== 'fault-sequences')
        await checkVenueProperty(property, unreadAs('unavailable'), { numRuns: 50, seed: 46 });
    }
  });

  // venue51-fault-proved: a harness whose fail('unread-after') or fail('lost-after') did nothing passed the properties
  // injecting it, each answer the execution as if found: the suite now asks the exchange's report, and names the fault.
  for (const fault of ['unread-after', 'lost-after'] as const)
    it(`fails every property injecting ${fault} on a harness whose fail('${fault}') does nothing, naming the fault`, async () => {
      const idle = async (): Promise<VenueHarness> => {
        const h = await everyControl(through({}))();
        // Nothing injected; the exchange's report says so.
        return { ...h, fail: (f) => (f === fault ? () => false : h.fail!(f)) };
      };
      const injecting = VENUE_PROPERTIES.filter((p) =>
        fault === 'unread-after'
          ? ['fault-unread-after', 'fault-sequences'].includes(p.id)
          : ['fault-lost-after', 'fault-sequences', 'sibling-lost-after'].includes(p.id),
      );
      expect(injecting.length).toBeGreaterThan(1);
      for (const property of injecting) {
        // The same harness with the fault done passes it.
        await checkVenueProperty(property, everyControl(through({})), { numRuns: 50, seed: 46 });
        const failed = await checkVenueProperty(property, idle, { numRuns: 50, seed: 46 }).then(
          () => undefined,
          (error: unknown) => error,
        );
        // A property's run failing is said by fast-check, the suite's error its cause.
        expect(messages(failed), property.id).toMatch(
          new RegExp(
            `the fault '${fault}' took no effect: the harness reports that the exchange did not .* at \\S+, the order placed after fail\\('${fault}'\\)`,
          ),
        );
      }
    });

  // review51-venue-fault-report-async: a report read from a fault proxy in another process (before a testnet) is a
  // promise, which the suite took as a report of nothing done: such a harness failed every property injecting a fault.
  it("takes a harness's report on a fault as a promise, and fails the property when it resolves to not done", async () => {
    const proxied = (said: boolean) => async (): Promise<VenueHarness> => {
      const h = await everyControl(through({}))();
      return {
        ...h,
        fail: (f) => {
          const report = h.fail!(f);
          return async () => said && (await report());
        },
      };
    };
    for (const id of ['fault-lost-after', 'fault-unread-after', 'fault-refused']) {
      await checkVenueProperty(byId.get(id)!, proxied(true));
      await expect(checkVenueProperty(byId.get(id)!, proxied(false)), id).rejects.toThrow(
        /^the fault '[a-z-]+' took no effect: the harness reports that the exchange did not /,
      );
    }
    await checkVenueProperty(byId.get('fault-sequences')!, proxied(true), { numRuns: 50, seed: 46 });
  });

  // venue52-sequence-named: fast-check's error opened with "Property failed after n tests" and its counterexample (a
  // bare list of arguments), the run's own error, the only one naming what failed, under "Caused by" after it.
  it('names the fault sequence of a failing fault-sequences run first in its own message, then how to replay it', async () => {
    const failed = await checkVenueProperty(
      byId.get('fault-sequences')!,
      harnessOf(
        through({
          error: (e) =>
            e instanceof VenueError && e.kind === 'timeout' ? new VenueError(e.message, 'unavailable') : e,
        }),
      ),
      { numRuns: 50, seed: 46 },
    ).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failed).toBeInstanceOf(Error);
    const [first, ...rest] = (failed as Error).message.split('\n');
    // The sequence as the order met it, its executing fault last, then what the run found.
    expect(first).toMatch(
      /^fault-sequences: the fault sequence ((lost-before|refused|down), )*(lost-after|unread-after), then .*, for a (SELL|BUY) of \d+ BaseE8 \(vc-[^)]+\): .*kind unavailable/,
    );
    // fast-check's report after it: its seed and path replay the run.
    expect(rest.join('\n')).toMatch(/Property failed after \d+ tests\n\{ seed: 46, path: "[\d:]+"/);
    expect((failed as Error).cause).toBeInstanceOf(Error);
  });

  // venue52-sequences-fill: on a book its orders move and a clock nothing moved, a fifth of fault-sequences' runs on the
  // simulated books filled nothing (their faults met no execution), and nothing said so.
  it("fails fault-sequences when fewer than 9 in 10 of its runs execute anything, counting them; the book's clock moved, they do", async () => {
    const still = async (): Promise<VenueHarness> => {
      const { elapse: _, ...h } = await everyControl(through({}))();
      return h;
    };
    await expect(
      checkVenueProperty(byId.get('fault-sequences')!, still, { numRuns: 50, seed: 46 }),
    ).rejects.toThrow(
      /^only \d+ of 50 runs of fault-sequences executed anything \(45 must\), so their faults met orders that filled nothing: a stub .* offers elapse\(\) .*; a testnet, whose time passes on its own, needs a book within 10 % of the reference mark at each run .*, never a real pause as elapse\(\)/,
    );
    await checkVenueProperty(byId.get('fault-sequences')!, everyControl(through({})), {
      numRuns: 50,
      seed: 46,
    });
  });

  it('fails a property injecting a fault on a harness whose fail() answers no report, saying what to return', async () => {
    const unreported = async (): Promise<VenueHarness> => {
      const h = await everyControl(through({}))();
      // A harness written before the report: it injects, and answers nothing.
      return { ...h, fail: ((f: ExchangeFault) => void h.fail!(f)) as unknown as VenueHarness['fail'] };
    };
    await expect(checkVenueProperty(byId.get('fault-lost-before')!, unreported)).rejects.toThrow(
      "fail('lost-before') answered no report: return the exchange's, a function saying whether it did the fault",
    );
  });

  for (const { mistake, caughtBy, harness } of MISTAKES) {
    it(`${mistake}: ${caughtBy.join(', ')}`, async () => {
      for (const id of caughtBy) {
        const property = byId.get(id);
        if (!property) throw new Error(`no property ${id}`);
        // Seeded: the same runs each time (the contract's own runs are not).
        await expect(checkVenueProperty(property, harness, { numRuns: 50, seed: 46 }), id).rejects.toThrow();
      }
    });
  }
});

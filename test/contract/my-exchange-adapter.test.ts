import { afterEach, describe, expect, it } from 'vitest';
import { fixedVenueKey, type VenueKey } from '../../shared/adapters/venue/key.ts';
import { parseBase, parsePrice } from '../../shared/domain/units.ts';
import { type OrderRequest, VenueError } from '../../shared/ports/index.ts';
import { type ExchangeStub, startExchangeStub } from './my-exchange/stub.ts';
import { MyExchangeVenue } from './my-exchange/venue.ts';

/**
 * The example adapter is a template integrators copy (docs/VENUE.md, "Testing it"): what the venue contract's faults
 * do not reach is held here (session 50's review of it).
 */

let exchange: ExchangeStub | undefined;
afterEach(async () => {
  await exchange?.stop();
  exchange = undefined;
});

const sell = (id: string, size = '0.01'): OrderRequest => ({
  clientOrderId: id,
  symbol: 'ETH-USD',
  direction: 'SELL',
  size: parseBase(size),
  limitPrice: parsePrice('1990'),
  reference: { mark: parsePrice('2000'), atMs: 0 },
});

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );

describe('the example adapter (test/contract/my-exchange/venue.ts)', () => {
  // review50-integrate-example-after-sent: a read after the order was taken failed as `unavailable`, which the
  // consumer takes as "nothing executed": after 3 such attempts it handed the executed size to the auction.
  it('answers a timeout, never unavailable, when what it reads after placing fails: the order executed', async () => {
    exchange = await startExchangeStub();
    const venue = new MyExchangeVenue({ key: fixedVenueKey(exchange.secret), baseUrl: exchange.url });
    // The key is rotated once the order has executed (the reader's refresh still has the old one): its trades and
    // every look-up of it are refused, as they would be by a connection refused.
    exchange.rotateKeyAfterNextOrder();
    const first = await failure(venue.placeIoc(sell('p1:1:market')));
    expect(exchange.position('ETH-USD')).toBe(-parseBase('0.01'));
    expect(first).toBeInstanceOf(VenueError);
    expect(first).toMatchObject({ kind: 'timeout' });
    // The consumer's next attempt of the same id: refused the key before the order was read, nothing taken (the
    // consumer keeps the order in doubt from the first attempt's timeout); never an answer of nothing executed.
    const again = await failure(venue.placeIoc(sell('p1:1:market')));
    expect(again).toMatchObject({ kind: 'unavailable' });
    expect(exchange.position('ETH-USD')).toBe(-parseBase('0.01'));
  });

  it("answers a timeout when the exchange's duplicate cannot be looked up: the order exists", async () => {
    exchange = await startExchangeStub();
    const venue = new MyExchangeVenue({ key: fixedVenueKey(exchange.secret), baseUrl: exchange.url });
    exchange.next('lost-after');
    expect(await failure(venue.placeIoc(sell('p4:1:market')))).toMatchObject({ kind: 'timeout' });
    // Asked again: the duplicate, then its look-up refused twice (the reader's refresh included).
    exchange.refuseKeyOn('GET /v1/orders', 2);
    expect(await failure(venue.placeIoc(sell('p4:1:market')))).toMatchObject({ kind: 'timeout' });
    expect(exchange.served.get('GET /v1/orders')).toBe(2);
    const answer = await venue.placeIoc(sell('p4:1:market'));
    expect(answer.fills.reduce((t, f) => t + f.size, 0n)).toBe(parseBase('0.01'));
    expect(exchange.position('ETH-USD')).toBe(-parseBase('0.01'));
  });

  // review50-integrate-example-secret-echo: JSON.parse's error quotes the text it could not read, and the consumer
  // records an error that is not a VenueError on the liquidation and in its logs.
  it("never puts the secret's value in an error: a secret that is not its JSON is unavailable, said so", async () => {
    exchange = await startExchangeStub();
    for (const secret of ['key-plain-0123456789abcdef', '{"apiKey": 7, "k": "key-plain-0123456789abcdef"}']) {
      const venue = new MyExchangeVenue({ key: fixedVenueKey(secret), baseUrl: exchange.url });
      for (const call of [venue.quote('ETH-USD'), venue.placeIoc(sell('p2:1:market'))]) {
        const error = await failure(call);
        expect(error).toBeInstanceOf(VenueError);
        expect(error).toMatchObject({ kind: 'unavailable' });
        expect((error as Error).message).toContain('not JSON with an "apiKey" string');
        expect((error as Error).message).not.toContain('0123456789abcdef');
      }
    }
    expect(exchange.served.get('POST /v1/orders') ?? 0).toBe(0);
  });

  // final50c-example-key-header: a key an HTTP header cannot carry (a line break, a NUL: a key file pasted whole into
  // the JSON) made fetch throw `Headers.append: "<the key>" is an invalid header value.`, which the adapter passed on
  // as a `timeout` (in doubt, though nothing left): the key in the liquidation's record and the logs.
  it('never puts the key in an error when an HTTP header cannot carry it: unavailable, nothing sent', async () => {
    exchange = await startExchangeStub();
    for (const apiKey of ['key-0123456789abcdef\nsecret-fedcba9876543210', 'key-0123456789abcdef\u0000']) {
      const venue = new MyExchangeVenue({
        key: fixedVenueKey(JSON.stringify({ apiKey })),
        baseUrl: exchange.url,
      });
      for (const call of [() => venue.quote('ETH-USD'), () => venue.placeIoc(sell('p7:1:market'))]) {
        const error = await failure(call());
        expect(error).toBeInstanceOf(VenueError);
        expect(error).toMatchObject({ kind: 'unavailable' });
        expect((error as Error).message).not.toContain('0123456789abcdef');
        expect((error as Error).message).not.toContain('fedcba9876543210');
      }
    }
    expect([...exchange.served.values()].reduce((t, n) => t + n, 0)).toBe(0);
  });

  // final50c-example-sub-lot-after-found: a repeat under one lot looks its id up first; found, the order exists and may
  // have executed, but a failed read of its trades (a connection refused, the key refused twice) left as `unavailable`.
  it('answers a timeout when a sub-lot repeat finds its order but cannot read its trades', async () => {
    exchange = await startExchangeStub();
    const venue = new MyExchangeVenue({ key: fixedVenueKey(exchange.secret), baseUrl: exchange.url });
    expect((await venue.placeIoc(sell('p8:1:market'))).fills).not.toEqual([]);
    // The same id again, under one lot (a grid the exchange made coarser since, read by another container).
    exchange.refuseKeyOn('GET /v1/trades', 2);
    expect(await failure(venue.placeIoc(sell('p8:1:market', '0.0005')))).toMatchObject({ kind: 'timeout' });
    expect(exchange.served.get('GET /v1/trades')).toBe(3);
    const answer = await venue.placeIoc(sell('p8:1:market', '0.0005'));
    expect(answer.fills.reduce((t, f) => t + f.size, 0n)).toBe(parseBase('0.01'));
    expect(exchange.position('ETH-USD')).toBe(-parseBase('0.01'));
  });

  // review50-integrate-example-grid: a grid that did not parse (a lot of 0, a tick finer than the 1e-8 prices are
  // in) threw a RangeError or a UnitError, not a VenueError, and was kept: every later order of the container failed.
  it('refuses a grid it cannot trade on as unavailable, and reads it again at the next call', async () => {
    exchange = await startExchangeStub();
    const venue = new MyExchangeVenue({ key: fixedVenueKey(exchange.secret), baseUrl: exchange.url });
    for (const grid of [
      { tickSize: '0.01', lotSize: '0' },
      { tickSize: '0.000000001', lotSize: '0.001' },
      { tickSize: 'one cent', lotSize: '0.001' },
    ]) {
      exchange.serveGrid('ETH-USD', grid);
      const error = await failure(venue.placeIoc(sell('p3:1:market')));
      expect(error, JSON.stringify(grid)).toBeInstanceOf(VenueError);
      expect(error).toMatchObject({
        kind: 'unavailable',
        message: expect.stringContaining("ETH-USD's grid"),
      });
    }
    expect(exchange.served.get('POST /v1/orders') ?? 0).toBe(0);
    exchange.serveGrid('ETH-USD', undefined);
    const answer = await venue.placeIoc(sell('p3:1:market'));
    expect(answer.fills.reduce((t, f) => t + f.size, 0n)).toBe(parseBase('0.01'));
  });

  // review50-integrate-example-grid-kept: the grid was read once a container (hours on Lambda), an unlisted answer too:
  // a market whose tick or lot the exchange changed was refused at every order (each a venue failure, the slice to
  // the auction), and one listed later stayed unlisted.
  it('reads the grid again after the exchange refuses a price or size on it, and asks again of an unlisted market', async () => {
    exchange = await startExchangeStub();
    const venue = new MyExchangeVenue({ key: fixedVenueKey(exchange.secret), baseUrl: exchange.url });
    const at = (id: string, limit: string): OrderRequest => ({ ...sell(id), limitPrice: parsePrice(limit) });
    expect((await venue.placeIoc(at('p5:1:market', '1990.01'))).fills).not.toEqual([]);
    exchange.list('ETH-USD', { tickSize: '0.05', lotSize: '0.001' });
    // Its first order on the old grid is refused; the next reads the new one.
    expect(await failure(venue.placeIoc(at('p5:2:market', '1990.01')))).toMatchObject({ kind: 'rejected' });
    expect((await venue.placeIoc(at('p5:2:market', '1990.01'))).fills).not.toEqual([]);
    exchange.list('ETH-USD', { tickSize: '0.05', lotSize: '0.01' });
    const odd = { ...at('p5:3:market', '1990'), size: parseBase('0.015') };
    expect(await failure(venue.placeIoc(odd))).toMatchObject({ kind: 'rejected' });
    expect((await venue.placeIoc(odd)).fills).toEqual([expect.objectContaining({ size: parseBase('0.01') })]);
    // Unlisted, then listed.
    expect(await venue.quote('SOL-USD')).toEqual({});
    expect(await failure(venue.placeIoc({ ...sell('p6:1:market'), symbol: 'SOL-USD' }))).toMatchObject({
      kind: 'rejected',
    });
    exchange.list('SOL-USD', { tickSize: '0.01', lotSize: '0.001' });
    expect((await venue.placeIoc({ ...sell('p6:1:market'), symbol: 'SOL-USD' })).fills).not.toEqual([]);
  });

  // venue51-grid-shared-deadline: a market's first grid read, shared by every call meanwhile, ran under the first
  // caller's deadline: a first call slowed by its key's read (a cold Secrets Manager call) spent it, and its end failed
  // the read for a later call with most of its own deadline left. The deadlines are the test's, ended when it says: no
  // wait on real time (review51-venue-grid-test-clock: it waited 1 s and 1.5 s against a 2 s deadline).
  it("reads a market's grid shared by the calls waiting on it under a deadline of its own, not the first caller's", async () => {
    exchange = await startExchangeStub();
    const secret = exchange.secret;
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reads = 0;
    // The container's first read of the key waits until released; every later one answers at once.
    const key: VenueKey = {
      get: async () => {
        if (reads++ === 0) await held;
        return secret;
      },
      refresh: async () => secret,
    };
    const deadlines: AbortController[] = [];
    const venue = new MyExchangeVenue({
      key,
      baseUrl: exchange.url,
      deadline: () => {
        const made = new AbortController();
        deadlines.push(made);
        return made.signal;
      },
    });
    const first = failure(venue.placeIoc(sell('p9:1:market')));
    // Its deadline made, the grid's read begun with the key's, held.
    expect([deadlines.length, reads]).toEqual([1, 1]);
    // It shares the first's grid read, under a deadline of its own.
    const later = venue.placeIoc(sell('p9:2:market'));
    later.catch(() => {});
    expect([deadlines.length, reads]).toEqual([2, 1]);
    // The first's deadline ends, the later's does not: then the key is read, and the grid.
    deadlines[0]!.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    release();
    // Before: failed 'unavailable' with the first, its grid read aborted by the first's deadline.
    expect((await later).fills.reduce((t, f) => t + f.size, 0n)).toBe(parseBase('0.01'));
    // The first failed at its deadline's end, nothing sent.
    expect(await first).toMatchObject({
      kind: 'unavailable',
      message: "venue/unavailable: ETH-USD's grid not read within the call's deadline",
    });
    // The grid's read had a deadline of its own, made once the key was read.
    expect(deadlines).toHaveLength(3);
    expect(exchange.served.get('GET /v1/instruments/:id')).toBe(1);
    expect(exchange.served.get('POST /v1/orders')).toBe(1);
  });

  // The stub's report on a fault (the contract's proof that it took effect), and where the fault goes: to the next new
  // order (venue52-stub-repeat-no-fault). A repeat of an executed id took it: `refused` answered that executed order as
  // refused (the adapter's `rejected`, which hands its size to the auction: sold twice), `lost-before` and `down` as
  // never sent, and `lost-after` and `unread-after` were spent undone, the next new order meeting no fault.
  it('reports a fault done only where the exchange did it; a repeat of an executed id passes every fault by, for the next new order', async () => {
    exchange = await startExchangeStub();
    const venue = new MyExchangeVenue({ key: fixedVenueKey(exchange.secret), baseUrl: exchange.url });
    const lost = exchange.next('lost-after');
    expect(lost()).toBe(false);
    expect(await failure(venue.placeIoc(sell('p10:1:market')))).toMatchObject({ kind: 'timeout' });
    expect(lost()).toBe(true);
    const newOrderMeets = {
      'lost-before': 'timeout',
      refused: 'rejected',
      down: 'unavailable',
      'lost-after': 'timeout',
      'unread-after': 'timeout',
    } as const;
    for (const [n, [fault, kind]] of Object.entries(newOrderMeets).entries()) {
      const queued = exchange.next(fault as keyof typeof newOrderMeets);
      const before = exchange.position('ETH-USD');
      const again = await venue.placeIoc(sell('p10:1:market'));
      expect(
        again.fills.reduce((t, f) => t + f.size, 0n),
        fault,
      ).toBe(parseBase('0.01'));
      expect(exchange.position('ETH-USD'), fault).toBe(before);
      expect(queued(), `${fault}, after the repeat`).toBe(false);
      // The next new order takes it.
      expect(await failure(venue.placeIoc(sell(`p11:${n}:market`))), fault).toMatchObject({ kind });
      expect(queued(), `${fault}, after the next new order`).toBe(true);
    }
  });

  // review52-venue-repeat-refused: an exchange checking its rate limit (or margin, a halt) before its duplicate check
  // refuses a repeat of an order it executed; the adapter passed the refusal on as `rejected`, which the consumer, in
  // the delivery after the one that placed it, takes as nothing executed: the executed size to the auction, sold twice.
  it('looks a refused order up before answering rejected: a repeat of an executed id refused answers its execution', async () => {
    exchange = await startExchangeStub();
    const venue = new MyExchangeVenue({ key: fixedVenueKey(exchange.secret), baseUrl: exchange.url });
    const first = await venue.placeIoc(sell('p13:1:market'));
    expect(first.fills.reduce((t, f) => t + f.size, 0n)).toBe(parseBase('0.01'));
    const refused = exchange.refuseNextRepeat();
    // Before: `venue/rejected: p13:1:market: refused (RATE_LIMITED)`.
    const again = await venue.placeIoc(sell('p13:1:market'));
    expect(refused()).toBe(true);
    expect(again).toEqual(first);
    expect(exchange.position('ETH-USD')).toBe(-parseBase('0.01'));
    // Its look-up refused too (the key, twice): it cannot say, so not sent for all it knows, never rejected.
    const unknown = exchange.refuseNextRepeat();
    exchange.refuseKeyOn('GET /v1/orders', 2);
    expect(await failure(venue.placeIoc(sell('p13:1:market')))).toMatchObject({
      kind: 'unavailable',
      message: expect.stringContaining('refused (RATE_LIMITED), and its id could not be looked up'),
    });
    expect(unknown()).toBe(true);
    // A new order refused is not found: rejected, after one look-up.
    const looked = exchange.served.get('GET /v1/orders') ?? 0;
    exchange.next('refused');
    expect(await failure(venue.placeIoc(sell('p13:2:market')))).toMatchObject({
      kind: 'rejected',
      message: 'venue/rejected: p13:2:market: refused (INSUFFICIENT_MARGIN)',
    });
    expect(exchange.served.get('GET /v1/orders')).toBe(looked + 1);
    expect(exchange.position('ETH-USD')).toBe(-parseBase('0.01'));
  });

  // tidy52-venue-unlisted-repeat: a market the exchange no longer lists was answered `rejected` without the id looked
  // up: a repeat of an order executed before the delisting, in a container reading the grid anew, handed the executed
  // size to the auction, which sold it again.
  it('looks the id up before answering rejected for a market not listed: a repeat after a delisting answers its execution', async () => {
    exchange = await startExchangeStub();
    exchange.list('SOL-USD', { tickSize: '0.01', lotSize: '0.001' });
    const solSell = (id: string) => ({ ...sell(id), symbol: 'SOL-USD' });
    const first = await new MyExchangeVenue({
      key: fixedVenueKey(exchange.secret),
      baseUrl: exchange.url,
    }).placeIoc(solSell('p14:1:market'));
    expect(first.fills.reduce((t, f) => t + f.size, 0n)).toBe(parseBase('0.01'));
    exchange.delist('SOL-USD');
    // The repeat in another container, which reads the grid anew: the market is not listed.
    const venue = new MyExchangeVenue({ key: fixedVenueKey(exchange.secret), baseUrl: exchange.url });
    // Before: `venue/rejected: p14:1:market: SOL-USD is not listed`.
    expect(await venue.placeIoc(solSell('p14:1:market'))).toEqual(first);
    expect(exchange.position('SOL-USD')).toBe(-parseBase('0.01'));
    // A new order on it: not found, rejected, nothing placed.
    expect(await failure(venue.placeIoc(solSell('p14:2:market')))).toMatchObject({
      kind: 'rejected',
      message: 'venue/rejected: p14:2:market: SOL-USD is not listed (UNKNOWN_SYMBOL)',
    });
    // Its look-up refused (the key, twice): it cannot say, so not sent for all it knows, never rejected.
    exchange.refuseKeyOn('GET /v1/orders', 2);
    expect(await failure(venue.placeIoc(solSell('p14:1:market')))).toMatchObject({
      kind: 'unavailable',
      message: expect.stringContaining(
        'SOL-USD is not listed (UNKNOWN_SYMBOL), and its id could not be looked up',
      ),
    });
    expect(exchange.served.get('POST /v1/orders')).toBe(1);
  });

  // venue52-deadline-before-sent: a call whose deadline ended before its request left (spent waiting for the key's read)
  // handed fetch an aborted signal; fetch threw its AbortError at once, sending nothing, and the adapter read it as a
  // `timeout`: an order in doubt, its delivery failed and asked again (dead-lettered only had every redelivery failed
  // so too), though nothing was sent.
  it('answers a call whose deadline ended before its request was sent as unavailable, nothing sent; after placing, a timeout', async () => {
    exchange = await startExchangeStub();
    const secret = exchange.secret;
    let gets = 0;
    let holdGet: number | undefined;
    let reached!: () => void;
    let release!: () => void;
    const hold = (get: number) => {
      holdGet = get;
      const atHold = new Promise<void>((resolve) => {
        reached = resolve;
      });
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      return { atHold, released };
    };
    let held: ReturnType<typeof hold> | undefined;
    // The key's read numbered `holdGet` waits until released, the others answer at once.
    const key: VenueKey = {
      get: async () => {
        if (++gets === holdGet && held) {
          reached();
          await held.released;
        }
        return secret;
      },
      refresh: async () => secret,
    };
    const deadlines: AbortController[] = [];
    const venue = new MyExchangeVenue({
      key,
      baseUrl: exchange.url,
      deadline: () => {
        const made = new AbortController();
        deadlines.push(made);
        return made.signal;
      },
    });
    const ended = () =>
      deadlines.at(-1)!.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    // The market's grid read: every later call takes it as read.
    expect((await venue.placeIoc(sell('p12:1:market'))).fills).not.toEqual([]);
    const placedBefore = exchange.served.get('POST /v1/orders');
    // The order's key read (before its POST) outlasts its deadline.
    held = hold(gets + 1);
    const unsent = failure(venue.placeIoc(sell('p12:2:market')));
    await held.atHold;
    ended();
    release();
    // Before: a timeout (fetch's AbortError), though nothing left.
    expect(await unsent).toMatchObject({
      kind: 'unavailable',
      message: expect.stringContaining("not sent: the call's deadline ended first"),
    });
    expect(exchange.served.get('POST /v1/orders')).toBe(placedBefore);
    // Placed, its trades' read not sent for the same reason: the order may have executed, so a timeout.
    held = hold(gets + 2);
    const unread = failure(venue.placeIoc(sell('p12:3:market')));
    await held.atHold;
    ended();
    release();
    expect(await unread).toMatchObject({
      kind: 'timeout',
      message: expect.stringContaining('the order was placed'),
    });
    expect(exchange.served.get('POST /v1/orders')).toBe(placedBefore! + 1);
  });
});

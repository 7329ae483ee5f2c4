import { createHash } from 'node:crypto';
import type { VenueKey } from '../../../shared/adapters/venue/key.ts';
import type { Fill } from '../../../shared/domain/model.ts';
import {
  type BaseE8,
  formatBase,
  formatPrice,
  type PriceE8,
  parseBase,
  parsePrice,
} from '../../../shared/domain/units.ts';
import {
  type OrderRequest,
  type OrderResult,
  type Venue,
  VenueError,
  type VenueErrorKind,
} from '../../../shared/ports/index.ts';

/**
 * An exchange adapter written from docs/VENUE.md alone, as an integrator would (session 50), for the imaginary
 * exchange of stub.ts: what the page says to do, each step named after its bullet ("What it must do"). The venue
 * contract runs it in venue-my-exchange.test.ts; test/unit/venue-doc.test.ts holds the page's snippets to it.
 */

export interface MyExchangeOptions {
  /** The API key's reader (secretsManagerVenueKey(env) when deployed): read at the first call, never when built. */
  readonly key: VenueKey;
  readonly baseUrl: string;
  /** Each call's deadline (the page: about 10 s, 3 attempts of it within the consumer's 60 s). */
  readonly callTimeoutMs?: number;
  /**
   * Makes a deadline `ms` from now: AbortSignal.timeout. A test passes its own, ended when it says, so that no test
   * waits on real time (review51-venue-grid-test-clock).
   */
  readonly deadline?: (ms: number) => AbortSignal;
}

interface Instrument {
  readonly tick: PriceE8;
  readonly lot: BaseE8;
}

/** An HTTP answer the exchange gave: its status and its error code, if any. */
class Answered extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(`${status} ${code}`);
  }
}

/**
 * "Client order ids": the exchange takes at most 36 of [A-Za-z0-9_-]; the consumer's are about 130 of
 * [A-Za-z0-9._:-]. A pure function of the whole id that never maps two ids to one: base32 of SHA-256, cut to 26
 * characters (130 bits).
 */
export function exchangeOrderId(clientOrderId: string): string {
  const digest = createHash('sha256').update(clientOrderId, 'utf8').digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out.slice(0, 26);
}

const fail = (message: string, kind: VenueErrorKind): never => {
  throw new VenueError(`venue/${kind}: ${message}`, kind);
};

/** How a request that got no HTTP answer failed: never sent (unavailable), or sent and unanswered (timeout). */
function unanswered(error: unknown, what: string): never {
  const code = (error as { cause?: { code?: string } })?.cause?.code;
  // Refused or not resolved: nothing left the process.
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return fail(`${what}: not sent (${code})`, 'unavailable');
  // A deadline, a reset or closed connection: it may have been taken.
  return fail(
    `${what}: no answer (${(error as Error)?.name ?? 'error'}: ${(error as Error)?.message})`,
    'timeout',
  );
}

/**
 * Once the order may have reached the exchange, a failure reading its outcome (its trades, its look-up) says nothing
 * of whether it executed: a `timeout`, never `unavailable`, which the consumer takes as "nothing executed" and, after
 * its attempts, hands the size to the auction: sold twice (review50-integrate-example-after-sent).
 */
async function afterPlacing<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof VenueError && error.kind === 'unavailable')
      return fail(`${error.message.replace(/^venue\/unavailable: /, '')} (the order was placed)`, 'timeout');
    throw error;
  }
}

/** The key's fields, from the secret's string; never its text in an error (the consumer records and logs errors). */
function apiKeyOf(raw: string): string {
  let apiKey: unknown;
  try {
    apiKey = (JSON.parse(raw) as { apiKey?: unknown } | null)?.apiKey;
  } catch {
    // JSON.parse's message quotes the text: not passed on (review50-integrate-example-secret-echo).
  }
  if (typeof apiKey !== 'string' || apiKey.length === 0)
    return fail(
      'the venue key is not JSON with an "apiKey" string (docs/VENUE.md, "The secret")',
      'unavailable',
    );
  // fetch refuses a header value holding a line break or a NUL with an error quoting it: the key in the consumer's
  // record and logs, as a `timeout` though nothing left (final50c-example-key-header). Keys are printable ASCII.
  if (!/^[\x21-\x7e]+$/.test(apiKey))
    return fail(
      'the venue key\'s "apiKey" holds a character other than printable ASCII (a space, a line break?)',
      'unavailable',
    );
  return apiKey;
}

/** A grid step from the exchange's decimal string: a positive multiple of the 1e-8 unit Backstop's amounts are in. */
function gridStep(text: string, parse: typeof parsePrice, what: string, symbol: string): bigint {
  let step: bigint | undefined;
  try {
    step = parse(text, what);
  } catch {
    // Finer than 1e-8 (or not a decimal): its fills could not be recorded exactly.
  }
  if (step === undefined || step <= 0n)
    return fail(
      `${symbol}'s grid: ${what} ${JSON.stringify(text)} is not a positive multiple of 1e-8`,
      'unavailable',
    );
  return step;
}

/**
 * `shared` as one caller waits for it: failed as `unavailable` (nothing sent) once `deadline` ends first, the read
 * going on for the others.
 */
function withinDeadline<T>(shared: Promise<T>, deadline: AbortSignal, what: string): Promise<T> {
  const expired = () =>
    new VenueError(`venue/unavailable: ${what} not read within the call's deadline`, 'unavailable');
  if (deadline.aborted) return Promise.reject(expired());
  return new Promise<T>((resolve, reject) => {
    const onEnd = () => reject(expired());
    deadline.addEventListener('abort', onEnd, { once: true });
    shared.then(resolve, reject).finally(() => deadline.removeEventListener('abort', onEnd));
  });
}

const roundDown = (v: bigint, grid: bigint): bigint => v - (v % grid);
const roundUp = (v: bigint, grid: bigint): bigint => (v % grid === 0n ? v : v - (v % grid) + grid);

export class MyExchangeVenue implements Venue {
  readonly #key: VenueKey;
  readonly #baseUrl: string;
  readonly #timeoutMs: number;
  readonly #deadline: (ms: number) => AbortSignal;
  readonly #instruments = new Map<string, Promise<Instrument | undefined>>();

  constructor(options: MyExchangeOptions) {
    // Building does no I/O (step 3): the key is read at the first call.
    this.#key = options.key;
    this.#baseUrl = options.baseUrl;
    this.#timeoutMs = options.callTimeoutMs ?? 10_000;
    this.#deadline = options.deadline ?? ((ms) => AbortSignal.timeout(ms));
  }

  async placeIoc(order: OrderRequest): Promise<OrderResult> {
    if (typeof order.clientOrderId !== 'string' || order.clientOrderId.length === 0)
      fail('an empty client order id', 'rejected');
    if (order.direction !== 'BUY' && order.direction !== 'SELL')
      fail(`${order.clientOrderId}: direction ${String(order.direction)}`, 'rejected');
    if (typeof order.size !== 'bigint' || order.size <= 0n)
      fail(`${order.clientOrderId}: size ${String(order.size)}`, 'rejected');
    if (typeof order.limitPrice !== 'bigint' || order.limitPrice <= 0n)
      fail(`${order.clientOrderId}: limit ${String(order.limitPrice)}`, 'rejected');
    const deadline = this.#deadline(this.#timeoutMs);
    const id = exchangeOrderId(order.clientOrderId);
    const instrument = await this.#instrument(order.symbol, deadline);
    // Not listed (now): a refusal like the others, the id looked up first, since a repeat of an order executed before
    // the exchange delisted its market is refused so too (tidy52-venue-unlisted-repeat).
    if (!instrument) {
      const refusal = `${order.symbol} is not listed (UNKNOWN_SYMBOL)`;
      const found = await this.#refusedOrFound(id, order.clientOrderId, refusal, deadline);
      return this.#answer(order, found, deadline);
    }
    // "Limits and sizes on the exchange's grids, never past the order's": a SELL's limit up, a BUY's down, the size
    // down to the lot.
    const size = roundDown(order.size, instrument.lot);
    const limit =
      order.direction === 'SELL'
        ? roundUp(order.limitPrice, instrument.tick)
        : roundDown(order.limitPrice, instrument.tick);
    // Less than a lot (or a BUY limit under one tick): not sent, answered with no fills rather than refused (each
    // refusal counts towards VenueFailuresAlarm); but a repeat answers the first execution whatever it carries, so the
    // id is looked up first (the contract's `repeat` caught this adapter answering NONE to a sub-lot repeat).
    if (size === 0n || limit === 0n) {
      const placed = await this.#find(id, order.clientOrderId, deadline);
      // Found, it may have executed: its trades unread are in doubt (final50c-example-sub-lot-after-found).
      const fills =
        placed === undefined ? [] : await afterPlacing(this.#trades(placed, order.clientOrderId, deadline));
      return { clientOrderId: order.clientOrderId, fills, status: fills.length > 0 ? 'PARTIAL' : 'NONE' };
    }
    // Placed without a look-up first: this exchange refuses a repeated client id for ever (its duplicate error,
    // below). One keeping ids unique only among open orders executes an IOC's repeat again: look the id up first, or
    // claim it with a conditional write of your own ("Idempotent placement").
    let orderId: string;
    try {
      const placed = await this.#call('POST', '/v1/orders', deadline, {
        clientOrderId: id,
        symbol: order.symbol,
        side: order.direction,
        quantity: formatBase(size),
        price: formatPrice(limit),
        timeInForce: 'IOC',
      });
      orderId = this.#text(placed, 'orderId', order.clientOrderId);
    } catch (error) {
      if (!(error instanceof Answered)) throw error;
      // "The exchange's duplicate client order id error is never passed on as a rejection": find it, answer it.
      if (error.code === 'DUPLICATE_CLIENT_ORDER_ID') {
        orderId = await afterPlacing(this.#lookUp(id, order.clientOrderId, deadline));
      } else if (error.status === 503 && error.code === 'MAINTENANCE') {
        return fail(`${order.clientOrderId}: the exchange is down (${error.code})`, 'unavailable');
      } else if (error.status >= 400 && error.status < 500) {
        // Off its grid: the exchange changed the market's tick or lot since it was read. Read again at the next
        // attempt, which then goes through (review50-integrate-example-grid-kept).
        if (error.code === 'INVALID_PRICE' || error.code === 'INVALID_QUANTITY')
          this.#instruments.delete(order.symbol);
        orderId = await this.#refusedOrFound(id, order.clientOrderId, `refused (${error.code})`, deadline);
      } else {
        return fail(`${order.clientOrderId}: ${error.message}`, 'timeout');
      }
    }
    return this.#answer(order, orderId, deadline);
  }

  /** The answer to `order` placed as the exchange's `orderId`: its trades, read. */
  async #answer(order: OrderRequest, orderId: string, deadline: AbortSignal): Promise<OrderResult> {
    const fills = await afterPlacing(this.#trades(orderId, order.clientOrderId, deadline));
    const filled = fills.reduce((total, f) => total + f.size, 0n);
    return {
      clientOrderId: order.clientOrderId,
      fills,
      status: filled === 0n ? 'NONE' : filled === order.size ? 'FILLED' : 'PARTIAL',
    };
  }

  async quote(symbol: string): Promise<{ bid?: PriceE8; ask?: PriceE8 }> {
    const deadline = this.#deadline(this.#timeoutMs);
    let book: Record<string, unknown>;
    try {
      book = await this.#call('GET', `/v1/book/${encodeURIComponent(symbol)}`, deadline);
    } catch (error) {
      if (!(error instanceof Answered)) throw error;
      if (error.code === 'UNKNOWN_SYMBOL') return {};
      if (error.status === 503 && error.code === 'MAINTENANCE')
        return fail(`quote of ${symbol}: the exchange is down`, 'unavailable');
      return fail(`quote of ${symbol}: ${error.message}`, 'timeout');
    }
    const side = (name: 'bid' | 'ask'): PriceE8 | undefined => {
      const v = book[name];
      if (v === null || v === undefined) return undefined;
      if (typeof v !== 'string')
        return fail(`quote of ${symbol}: ${name} is not a decimal string`, 'timeout');
      try {
        return parsePrice(v, name);
      } catch (error) {
        return fail(`quote of ${symbol}: ${(error as Error).message}`, 'timeout');
      }
    };
    const bid = side('bid');
    const ask = side('ask');
    return { ...(bid === undefined ? {} : { bid }), ...(ask === undefined ? {} : { ask }) };
  }

  /** The exchange's order of our id, after its duplicate: in doubt (a timeout) when it cannot be found yet. */
  async #lookUp(id: string, clientOrderId: string, deadline: AbortSignal): Promise<string> {
    const found = await this.#find(id, clientOrderId, deadline);
    // Never a rejection: the id exists, its outcome is not known here.
    return found ?? fail(`${clientOrderId}: a duplicate not found`, 'timeout');
  }

  /**
   * After the exchange refused a placement (`refusal`, said in the rejection): a refusal answers the request, not the
   * id. An exchange checking its rate limit, margin, a halt or its grid before its duplicate check, or no longer
   * listing the market, refuses a repeat of an order it executed too, and `rejected` for that repeat hands the executed
   * size to the auction, which sells it again. So the id is looked up: found, its order (its trades are the answer);
   * not found, `rejected`; the look-up failed, `unavailable` (this request placed nothing, and the consumer keeps an
   * order an earlier delivery may have placed in doubt).
   */
  async #refusedOrFound(
    id: string,
    clientOrderId: string,
    refusal: string,
    deadline: AbortSignal,
  ): Promise<string> {
    let found: string | undefined;
    try {
      found = await this.#find(id, clientOrderId, deadline);
    } catch (error) {
      if (!(error instanceof VenueError)) throw error;
      return fail(
        `${clientOrderId}: ${refusal}, and its id could not be looked up (${error.message})`,
        'unavailable',
      );
    }
    return found ?? fail(`${clientOrderId}: ${refusal}`, 'rejected');
  }

  /** The exchange's order id of our id, or undefined when it has none; in doubt (a timeout) when it cannot say. */
  async #find(id: string, clientOrderId: string, deadline: AbortSignal): Promise<string | undefined> {
    try {
      const found = await this.#call('GET', `/v1/orders?clientOrderId=${encodeURIComponent(id)}`, deadline);
      return this.#text(found, 'orderId', clientOrderId);
    } catch (error) {
      if (!(error instanceof Answered)) throw error;
      if (error.code === 'ORDER_NOT_FOUND') return undefined;
      return fail(`${clientOrderId}: its order could not be looked up (${error.message})`, 'timeout');
    }
  }

  /** "Every trade of the order (page through them all)", each at its own price and size. */
  async #trades(orderId: string, clientOrderId: string, deadline: AbortSignal): Promise<Fill[]> {
    const fills: Fill[] = [];
    let cursor: string | undefined;
    do {
      let page: Record<string, unknown>;
      try {
        page = await this.#call(
          'GET',
          `/v1/trades?orderId=${encodeURIComponent(orderId)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
          deadline,
        );
      } catch (error) {
        if (!(error instanceof Answered)) throw error;
        // The order was placed: its trades unread, it stays in doubt.
        return fail(`${clientOrderId}: trades unread (${error.message})`, 'timeout');
      }
      const trades = page.trades;
      if (!Array.isArray(trades)) return fail(`${clientOrderId}: trades unreadable`, 'timeout');
      for (const t of trades as { price?: unknown; quantity?: unknown }[]) {
        if (typeof t?.price !== 'string' || typeof t.quantity !== 'string')
          return fail(`${clientOrderId}: a trade without decimal strings`, 'timeout');
        try {
          fills.push({ price: parsePrice(t.price, 'price'), size: parseBase(t.quantity, 'quantity') });
        } catch (error) {
          return fail(`${clientOrderId}: ${(error as Error).message}`, 'timeout');
        }
      }
      cursor = typeof page.next === 'string' ? page.next : undefined;
    } while (cursor !== undefined);
    return fills;
  }

  /**
   * `symbol`'s grid, read once and shared by every call meanwhile. The read has a deadline of its own from when its
   * request is sent (after the key's read, itself bounded), never the first caller's: a first call slowed by its key's
   * read spent most of its deadline there, and its deadline's end failed the read for every call sharing it
   * (venue51-grid-shared-deadline). Each caller waits for it within its own deadline, nothing sent if that ends first.
   */
  #instrument(symbol: string, deadline: AbortSignal): Promise<Instrument | undefined> {
    return withinDeadline(this.#sharedInstrument(symbol), deadline, `${symbol}'s grid`);
  }

  #sharedInstrument(symbol: string): Promise<Instrument | undefined> {
    const known = this.#instruments.get(symbol);
    if (known) return known;
    const reading = this.#key
      .get()
      .then(() =>
        this.#call('GET', `/v1/instruments/${encodeURIComponent(symbol)}`, this.#deadline(this.#timeoutMs)),
      )
      .then((i) => ({
        tick: gridStep(this.#text(i, 'tickSize', symbol), parsePrice, 'tickSize', symbol),
        lot: gridStep(this.#text(i, 'lotSize', symbol), parseBase, 'lotSize', symbol),
      }))
      .catch((error: unknown) => {
        // Not kept, whatever failed (the call, or a grid it cannot read), nor an unlisted market (it may be listed
        // later): the next call asks again. Nothing was placed, so nothing is in doubt
        // (review50-integrate-example-grid, review50-integrate-example-grid-kept).
        this.#instruments.delete(symbol);
        if (error instanceof Answered && error.code === 'UNKNOWN_SYMBOL') return undefined;
        if (error instanceof Answered) return fail(`${symbol}'s grid: ${error.message}`, 'unavailable');
        if (error instanceof VenueError && error.kind === 'timeout')
          return fail(error.message.replace(/^venue\/timeout: /, ''), 'unavailable');
        throw error;
      });
    this.#instruments.set(symbol, reading);
    return reading;
  }

  #text(answer: Record<string, unknown>, field: string, what: string): string {
    const v = answer[field];
    if (typeof v !== 'string') return fail(`${what}: an answer without ${field}`, 'timeout');
    return v;
  }

  /**
   * One request with the key (read at the first call: "The secret"), once more with a fresh one when the exchange
   * refuses it. Throws Answered for an HTTP error, a VenueError when no answer came.
   */
  async #call(
    method: 'GET' | 'POST',
    path: string,
    deadline: AbortSignal,
    body?: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    let raw = await this.#key.get();
    for (let attempt = 0; ; attempt++) {
      const apiKey = apiKeyOf(raw);
      // Its deadline spent before the request left (waiting for the key's read, or the grid's): fetch would throw its
      // AbortError and send nothing, which `unanswered` cannot tell from a deadline once sent, a `timeout` (in doubt).
      // Nothing was sent: `unavailable` (after placing, afterPlacing makes it a timeout: venue52-deadline-before-sent).
      if (deadline.aborted)
        return fail(`${method} ${path}: not sent: the call's deadline ended first`, 'unavailable');
      let response: Response;
      let text: string;
      try {
        response = await fetch(`${this.#baseUrl}${path}`, {
          method,
          headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
          ...(body ? { body: JSON.stringify(body) } : {}),
          signal: deadline,
        });
        text = await response.text();
      } catch (error) {
        return unanswered(error, `${method} ${path}`);
      }
      let json: Record<string, unknown>;
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return fail(`${method} ${path}: an answer it cannot read (${response.status})`, 'timeout');
      }
      if (response.ok) return json;
      const code = typeof json.code === 'string' ? json.code : 'UNKNOWN';
      if (response.status === 401) {
        // Rotated since it was read: once more with the key read again; refused again, nothing was sent under it.
        if (attempt === 0) {
          raw = await this.#key.refresh(raw);
          continue;
        }
        return fail(`${method} ${path}: the key is refused`, 'unavailable');
      }
      throw new Answered(response.status, code);
    }
  }
}

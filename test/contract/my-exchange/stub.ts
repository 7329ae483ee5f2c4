import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  type BaseE8,
  formatBase,
  formatPrice,
  minBig,
  type PriceE8,
  parseBase,
  parsePrice,
} from '../../../shared/domain/units.ts';
import type { ExchangeFault, FaultDone } from '../venue-suite.ts';

/**
 * An imaginary exchange's HTTP API, faked for the venue contract (docs/VENUE.md, "Testing it"): what an integrator
 * writes before an adapter, here for the one in venue.ts, which was written from docs/VENUE.md alone (session 50).
 * Like many exchanges: decimal strings on the wire, a tick and a lot grid, client order ids of at most 36 of
 * [A-Za-z0-9_-], an IOC answered once final with its trades paged, a repeated client id answered as a duplicate (the
 * order is then looked up by it), one resting order splitting a level into several trades.
 *
 * - GET  /v1/instruments/:symbol               { symbol, tickSize, lotSize }, 404 UNKNOWN_SYMBOL
 * - GET  /v1/book/:symbol                      { bid: "1999.99" | null, ask: ... }, 404 UNKNOWN_SYMBOL
 * - POST /v1/orders                            { clientOrderId, symbol, side, quantity, price, timeInForce: "IOC" }
 *                                              -> { orderId, clientOrderId, status }, 409 DUPLICATE_CLIENT_ORDER_ID,
 *                                              429 RATE_LIMITED (checked before the duplicate: refuseNextRepeat)
 * - GET  /v1/orders?clientOrderId=             { orderId, clientOrderId, status }, 404 ORDER_NOT_FOUND
 * - GET  /v1/trades?orderId=&cursor=           { trades: [{ price, quantity }], next?: cursor }, 3 a page
 * Every call carries X-API-KEY; another key is 401 INVALID_API_KEY.
 */

const PAGE = 3;
/** Levels a side, each of two resting orders. */
const LEVELS = 50;

interface Instrument {
  readonly tick: PriceE8;
  readonly lot: BaseE8;
  readonly mid: PriceE8;
  /** Each resting order's size (a level holds two). */
  readonly restingSize: BaseE8;
}

interface Trade {
  readonly price: PriceE8;
  readonly size: BaseE8;
}

interface Order {
  readonly orderId: string;
  readonly clientOrderId: string;
  readonly status: 'FILLED' | 'PARTIALLY_FILLED' | 'EXPIRED';
  readonly trades: readonly Trade[];
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(code);
  }
}

export interface ExchangeStub {
  readonly url: string;
  /** The API key as the operator stores it in Secrets Manager (docs/VENUE.md, "The secret"). */
  readonly secret: string;
  mid(symbol: string): PriceE8;
  lot(symbol: string): BaseE8;
  /** Base the account bought minus sold, from the exchange's own trades. */
  position(symbol: string): BaseE8;
  /** Each trade's price x size (PriceE8 x BaseE8), bought minus sold. */
  quoteSpent(symbol: string): bigint;
  /**
   * The next new order's call suffers `fault` (a repeat of an id it took passes it by); answers whether the exchange
   * did it (the contract's proof it took effect).
   */
  next(fault: ExchangeFault): FaultDone;
  /**
   * Refuses the next order that repeats an id it took (429 RATE_LIMITED), as an exchange checking its rate limit,
   * margin or a halt before its duplicate check does; answers whether it did (the contract's refuseRepeat).
   */
  refuseNextRepeat(): FaultDone;
  nextQuote(fault: 'lost' | 'down'): void;
  setEmpty(symbol: string, empty: boolean): void;
  /** Requests served, by route ("POST /v1/orders"): what the adapter sent. */
  readonly served: Map<string, number>;
  /** Rotates the API key once the next order has executed: every later call under the old one is refused (401). */
  rotateKeyAfterNextOrder(): void;
  /** Refuses the key on the next `times` calls of `route` ("GET /v1/orders"), as a key rotated meanwhile. */
  refuseKeyOn(route: string, times: number): void;
  /** Lists `symbol` on this grid, or changes its grid (exchanges change a market's tick or lot): its book as ETH-USD's. */
  list(symbol: string, grid: { tickSize: string; lotSize: string }): void;
  /** Lists `symbol` no more (404 UNKNOWN_SYMBOL): its orders are still looked up by client id, their trades read. */
  delist(symbol: string): void;
  /** Serves `symbol`'s grid as these strings (what another exchange's instruments call may answer). */
  serveGrid(symbol: string, grid: { tickSize: string; lotSize: string } | undefined): void;
  stop(): Promise<void>;
}

export async function startExchangeStub(): Promise<ExchangeStub> {
  let apiKey = `key-${randomUUID()}`;
  let rotateAfterOrder = false;
  const grids = new Map<string, { tickSize: string; lotSize: string }>();
  const keyRefused = new Map<string, number>();
  const instruments = new Map<string, Instrument>([
    [
      'ETH-USD',
      {
        tick: parsePrice('0.01'),
        lot: parseBase('0.001'),
        mid: parsePrice('2000'),
        restingSize: parseBase('0.05'),
      },
    ],
  ]);
  const empty = new Set<string>();
  const orders = new Map<string, Order>();
  const byId = new Map<string, Order>();
  const positions = new Map<string, BaseE8>();
  const spent = new Map<string, bigint>();
  /** Faults for the next new orders' calls, each marked done where the exchange does it (spent on an invalid order, it is not). */
  const faults: { readonly fault: ExchangeFault; done: boolean }[] = [];
  /** The refusal the next repeat of an id it took meets (refuseNextRepeat), marked done once it did. */
  let repeatRefusal: { done: boolean } | undefined;
  /** The order 'unread-after' executed: reads of its outcome refuse the key (as a rotation) until another id is taken. */
  let unread: Order | undefined;
  const quoteFaults: ('lost' | 'down')[] = [];
  const served = new Map<string, number>();

  const instrument = (symbol: string): Instrument => {
    const found = instruments.get(symbol);
    if (!found) throw new HttpError(404, 'UNKNOWN_SYMBOL');
    return found;
  };
  const best = (i: Instrument, side: 'bid' | 'ask'): PriceE8 =>
    side === 'bid' ? i.mid - i.tick : i.mid + i.tick;

  /** Walks the book within the limit; the book is static (each order meets it whole, as a deep market would). */
  const execute = (symbol: string, side: 'BUY' | 'SELL', size: BaseE8, limit: PriceE8): Trade[] => {
    const i = instrument(symbol);
    if (empty.has(symbol)) return [];
    const trades: Trade[] = [];
    let left = size;
    for (let level = 0; level < LEVELS && left > 0n; level++) {
      const price =
        side === 'SELL' ? best(i, 'bid') - i.tick * BigInt(level) : best(i, 'ask') + i.tick * BigInt(level);
      if (side === 'SELL' ? price < limit : price > limit) break;
      for (let resting = 0; resting < 2 && left > 0n; resting++) {
        const take = minBig(left, i.restingSize);
        trades.push({ price, size: take });
        left -= take;
      }
    }
    const base = trades.reduce((t, x) => t + x.size, 0n);
    const paid = trades.reduce((t, x) => t + x.price * x.size, 0n);
    positions.set(symbol, (positions.get(symbol) ?? 0n) + (side === 'BUY' ? base : -base));
    spent.set(symbol, (spent.get(symbol) ?? 0n) + (side === 'BUY' ? paid : -paid));
    return trades;
  };

  const orderJson = (o: Order) => ({ orderId: o.orderId, clientOrderId: o.clientOrderId, status: o.status });

  const body = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  };
  const text = (v: unknown, what: string): string => {
    if (typeof v !== 'string') throw new HttpError(400, `INVALID_${what.toUpperCase()}`);
    return v;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<unknown> => {
    const url = new URL(req.url ?? '/', 'http://stub');
    const [, version, resource, id] = url.pathname.split('/');
    const route = `${req.method} /${version}/${resource}${id ? '/:id' : ''}`;
    served.set(route, (served.get(route) ?? 0) + 1);
    const refusing = keyRefused.get(route) ?? 0;
    if (refusing > 0) keyRefused.set(route, refusing - 1);
    if (req.headers['x-api-key'] !== apiKey || refusing > 0) throw new HttpError(401, 'INVALID_API_KEY');
    if (req.method === 'GET' && resource === 'instruments' && id) {
      const i = instrument(decodeURIComponent(id));
      const served = grids.get(decodeURIComponent(id));
      if (served) return { symbol: id, ...served };
      return { symbol: id, tickSize: formatPrice(i.tick), lotSize: formatBase(i.lot) };
    }
    if (req.method === 'GET' && resource === 'book' && id) {
      const symbol = decodeURIComponent(id);
      const fault = quoteFaults.shift();
      if (fault === 'lost') return res.destroy();
      if (fault === 'down') throw new HttpError(503, 'MAINTENANCE');
      const i = instrument(symbol);
      if (empty.has(symbol)) return { bid: null, ask: null };
      return { bid: formatPrice(best(i, 'bid')), ask: formatPrice(best(i, 'ask')) };
    }
    if (req.method === 'POST' && resource === 'orders' && !id) {
      const o = await body(req);
      // A fault is the next new order's (the contract's fail()): a repeat of an id the exchange took passes it by,
      // answered as the duplicate it is (the adapter then answers the recorded execution), and leaves it queued.
      // Taken by a repeat, 'refused' answered an executed order as refused, and 'lost-before' or 'down' as never sent.
      const repeat = typeof o.clientOrderId === 'string' && orders.has(o.clientOrderId);
      // Its rate limit before its duplicate check: a repeat of an executed id refused (review52-venue-repeat-refused).
      if (repeat && repeatRefusal) {
        repeatRefusal.done = true;
        repeatRefusal = undefined;
        throw new HttpError(429, 'RATE_LIMITED');
      }
      const injected = repeat ? undefined : faults.shift();
      const fault = injected?.fault;
      // Marked where it takes effect: a fault whose order fails otherwise first (an invalid order) is spent undone.
      if (injected && (fault === 'lost-before' || fault === 'down' || fault === 'refused'))
        injected.done = true;
      if (fault === 'lost-before') return res.destroy();
      if (fault === 'down') throw new HttpError(503, 'MAINTENANCE');
      if (fault === 'refused') throw new HttpError(400, 'INSUFFICIENT_MARGIN');
      // Another id taken: the outcome refused since 'unread-after' can be read again.
      if (o.clientOrderId !== unread?.clientOrderId) unread = undefined;
      const clientOrderId = text(o.clientOrderId, 'clientOrderId');
      if (!/^[A-Za-z0-9_-]{1,36}$/.test(clientOrderId)) throw new HttpError(400, 'INVALID_CLIENT_ORDER_ID');
      if (orders.has(clientOrderId)) throw new HttpError(409, 'DUPLICATE_CLIENT_ORDER_ID');
      if (o.timeInForce !== 'IOC' || (o.side !== 'BUY' && o.side !== 'SELL'))
        throw new HttpError(400, 'INVALID_ORDER');
      const symbol = text(o.symbol, 'symbol');
      const i = instrument(symbol);
      const size = parseBase(text(o.quantity, 'quantity'));
      const limit = parsePrice(text(o.price, 'price'));
      if (size <= 0n || size % i.lot !== 0n) throw new HttpError(400, 'INVALID_QUANTITY');
      if (limit % i.tick !== 0n) throw new HttpError(400, 'INVALID_PRICE');
      const trades = execute(symbol, o.side, size, limit);
      const filled = trades.reduce((t, x) => t + x.size, 0n);
      const order: Order = {
        orderId: randomUUID(),
        clientOrderId,
        status: filled === size ? 'FILLED' : filled > 0n ? 'PARTIALLY_FILLED' : 'EXPIRED',
        trades,
      };
      orders.set(clientOrderId, order);
      byId.set(order.orderId, order);
      if (rotateAfterOrder) {
        rotateAfterOrder = false;
        apiKey = `key-${randomUUID()}`;
      }
      if (injected) injected.done = true;
      if (fault === 'lost-after') return res.destroy();
      if (fault === 'unread-after') unread = order;
      return orderJson(order);
    }
    if (req.method === 'GET' && resource === 'orders' && !id) {
      const order = orders.get(url.searchParams.get('clientOrderId') ?? '');
      if (order && order === unread) throw new HttpError(401, 'INVALID_API_KEY');
      if (!order) throw new HttpError(404, 'ORDER_NOT_FOUND');
      return orderJson(order);
    }
    if (req.method === 'GET' && resource === 'trades' && !id) {
      const order = byId.get(url.searchParams.get('orderId') ?? '');
      if (order && order === unread) throw new HttpError(401, 'INVALID_API_KEY');
      if (!order) throw new HttpError(404, 'ORDER_NOT_FOUND');
      const from = Number(url.searchParams.get('cursor') ?? '0');
      const page = order.trades.slice(from, from + PAGE);
      return {
        trades: page.map((t) => ({ price: formatPrice(t.price), quantity: formatBase(t.size) })),
        ...(from + PAGE < order.trades.length ? { next: String(from + PAGE) } : {}),
      };
    }
    throw new HttpError(404, 'NOT_FOUND');
  };

  const server = createServer((req, res) => {
    handle(req, res).then(
      (answer) => {
        if (res.destroyed) return;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      },
      (error: unknown) => {
        const e = error instanceof HttpError ? error : new HttpError(500, 'INTERNAL');
        res.writeHead(e.status, { 'content-type': 'application/json' }).end(JSON.stringify({ code: e.code }));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  return {
    url: `http://127.0.0.1:${port}`,
    secret: JSON.stringify({ apiKey, apiSecret: 'not-checked' }),
    mid: (symbol) => instrument(symbol).mid,
    lot: (symbol) => instrument(symbol).lot,
    position: (symbol) => positions.get(symbol) ?? 0n,
    quoteSpent: (symbol) => spent.get(symbol) ?? 0n,
    next: (fault) => {
      const injected = { fault, done: false };
      faults.push(injected);
      return () => injected.done;
    },
    refuseNextRepeat: () => {
      const injected = { done: false };
      repeatRefusal = injected;
      return () => injected.done;
    },
    nextQuote: (fault) => void quoteFaults.push(fault),
    setEmpty: (symbol, isEmpty) => void (isEmpty ? empty.add(symbol) : empty.delete(symbol)),
    served,
    rotateKeyAfterNextOrder: () => {
      rotateAfterOrder = true;
    },
    refuseKeyOn: (route, times) => void keyRefused.set(route, times),
    list: (symbol, grid) =>
      void instruments.set(symbol, {
        ...(instruments.get(symbol) ?? instruments.get('ETH-USD')!),
        tick: parsePrice(grid.tickSize),
        lot: parseBase(grid.lotSize),
      }),
    delist: (symbol) => void instruments.delete(symbol),
    serveGrid: (symbol, grid) => void (grid ? grids.set(symbol, grid) : grids.delete(symbol)),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

import { ConfigError, type RiskConfig } from '../domain/config.ts';
import {
  formatBase,
  formatPpm,
  formatPrice,
  formatQuote,
  type PriceE8,
  parseBase,
  parsePrice,
  parseQuote,
  UnitError,
} from '../domain/units.ts';
import { counted } from '../domain/words.ts';
import { chunksOf, eachInFlight } from '../in-flight.ts';
import type { BatchReader, MarketRepository, PositionRecord, ProviderRecord } from '../ports/index.ts';
import {
  type AdminDeps,
  AdminInputError,
  type AdminRequest,
  adminRequestSchema,
  handleAdmin,
  openedAs,
  openedPosition,
  openingMark,
  refuseLiquidatableAtOpen,
} from '../services/admin.ts';

/**
 * Seeding a deployment through the admin service (the same validation as the admin function): synthetic books
 * and providers from shared/sim, or positions from a CSV / JSON file. Every request is checked before the
 * first write, so a bad file changes nothing.
 */

export class SeedFileError extends Error {
  override readonly name = 'SeedFileError';
}

export type OpenPosition = Extract<AdminRequest, { action: 'openPosition' }>;
type RegisterProvider = Extract<AdminRequest, { action: 'registerProvider' }>;

/** Columns of a positions CSV (header required, any order; traderId optional). */
export const POSITION_COLUMNS = [
  'id',
  'traderId',
  'symbol',
  'side',
  'size',
  'entryPrice',
  'collateral',
] as const;
const REQUIRED_COLUMNS = POSITION_COLUMNS.filter((c) => c !== 'traderId');

export const openPositionRequest = (p: PositionRecord): OpenPosition => ({
  action: 'openPosition',
  id: p.id,
  traderId: p.traderId,
  symbol: p.symbol,
  side: p.side,
  size: formatBase(p.size),
  entryPrice: formatPrice(p.entryPrice),
  collateral: formatQuote(p.collateral),
});

/** A provider's per-market lots as decimal strings, the key absent when it has none (requests and `providers show`). */
export const formattedLotsBySymbol = (
  p: Pick<ProviderRecord, 'maxLotBySymbol'>,
): { maxLotBySymbol?: Record<string, string> } =>
  p.maxLotBySymbol
    ? {
        maxLotBySymbol: Object.fromEntries(
          Object.entries(p.maxLotBySymbol).map(([symbol, lot]) => [symbol, formatBase(lot)]),
        ),
      }
    : {};

export const registerProviderRequest = (p: ProviderRecord): RegisterProvider => ({
  action: 'registerProvider',
  id: p.id,
  capital: formatQuote(p.capital),
  maxDiscount: formatPpm(p.maxDiscountPpm),
  maxLot: formatBase(p.maxLot),
  ...formattedLotsBySymbol(p),
  symbols: [...p.symbols],
});

/** Checks a request against the admin schema, and its amounts as the admin service parses them; names the row. */
function checked(raw: Record<string, unknown>, where: string): OpenPosition {
  const request = { action: 'openPosition', ...raw, traderId: raw.traderId || `trader-${String(raw.id)}` };
  const parsed = adminRequestSchema.safeParse(request);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(row)'}: ${i.message}`).join('; ');
    throw new SeedFileError(`seed/bad-row: ${where}: ${issues}`);
  }
  const position = parsed.data as OpenPosition;
  try {
    parseBase(position.size, 'size', { positive: true });
    parsePrice(position.entryPrice, 'entryPrice');
    parseQuote(position.collateral, 'collateral', { positive: true });
  } catch (error) {
    if (error instanceof UnitError) throw new SeedFileError(`seed/bad-row: ${where}: ${error.message}`);
    throw error;
  }
  return position;
}

/**
 * What the admin service would refuse of a file's positions, before any is written: a market the configuration
 * does not have, a position liquidatable at its market's last mark, an id listed twice (the second would count
 * as "already there"), an id another stored position holds (`reader`: the store's). A row stored as it opened (the
 * file run again) passes whatever the mark now: the admin service answers it as already there. The reason names
 * the position.
 */
export async function refuseUnopenable(
  requests: readonly OpenPosition[],
  config: RiskConfig,
  markets: MarketRepository,
  reader?: Pick<BatchReader, 'positions'>,
): Promise<void> {
  const ids = new Set<string>();
  for (const request of requests) {
    if (ids.has(request.id)) throw new SeedFileError(`seed/duplicate-id: ${request.id} is listed twice`);
    ids.add(request.id);
  }
  const stored = reader ? await storedPositions(reader, [...ids]) : new Map<string, PositionRecord>();
  const marks = new Map<string, PriceE8 | undefined>();
  for (const request of requests) {
    try {
      const record = openedPosition(request, config);
      const there = stored.get(record.id);
      if (there) {
        // Written with the others, this row was refused after the rows before it (the file half applied).
        if (!openedAs(there, record))
          throw new SeedFileError(`seed/id-taken: ${record.id}: another position is stored under this id`);
        continue;
      }
      if (!marks.has(record.symbol)) marks.set(record.symbol, await openingMark(record.symbol, markets));
      refuseLiquidatableAtOpen(record, marks.get(record.symbol), config);
    } catch (error) {
      if (error instanceof ConfigError || error instanceof AdminInputError)
        throw new SeedFileError(`seed/bad-row: ${request.id}: ${error.message}`);
      throw error;
    }
  }
}

/** Reads of the store a file's check runs at once (each a BatchGetItem of 100 on AWS). */
const STORED_READS_IN_FLIGHT = 16;

async function storedPositions(
  reader: Pick<BatchReader, 'positions'>,
  ids: readonly string[],
): Promise<Map<string, PositionRecord>> {
  const chunks = chunksOf(ids, 100);
  const found = new Map<string, PositionRecord>();
  await eachInFlight(chunks, STORED_READS_IN_FLIGHT, async (chunk) => {
    for (const p of await reader.positions(chunk)) found.set(p.id, p);
  });
  return found;
}

/** Positions from a CSV (header row naming POSITION_COLUMNS) or a JSON array of objects with those fields. */
export function positionsFromFile(text: string, format: 'csv' | 'json', file: string): OpenPosition[] {
  return format === 'json' ? fromJson(text, file) : fromCsv(text, file);
}

function fromJson(text: string, file: string): OpenPosition[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SeedFileError(`seed/not-json: ${file}: ${(error as Error).message}`);
  }
  if (!Array.isArray(json))
    throw new SeedFileError(`seed/not-a-list: ${file}: expected a JSON array of positions`);
  return json.map((row, i) => {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      throw new SeedFileError(`seed/bad-row: ${file}: entry ${i + 1}: not an object`);
    }
    return checked(row as Record<string, unknown>, `${file}: entry ${i + 1}`);
  });
}

function fromCsv(text: string, file: string): OpenPosition[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let header: string[] | undefined;
  const rows: OpenPosition[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const cells = line.split(',').map((c) => c.trim());
    if (!header) {
      header = cells;
      const missing = REQUIRED_COLUMNS.filter((c) => !cells.includes(c));
      if (missing.length > 0) {
        throw new SeedFileError(
          `seed/no-header: ${file}: line ${i + 1}: missing ${counted(missing.length, 'column', 'columns')}: ${missing.join(', ')}`,
        );
      }
      return;
    }
    if (cells.length !== header.length) {
      throw new SeedFileError(
        `seed/bad-row: ${file}: line ${i + 1}: ${cells.length} columns, expected ${header.length}`,
      );
    }
    const raw = Object.fromEntries(header.map((name, c) => [name, cells[c]]));
    rows.push(checked(raw, `${file}: line ${i + 1}`));
  });
  if (rows.length === 0) throw new SeedFileError(`seed/empty: ${file}: no positions`);
  return rows;
}

export interface SeedOutcome {
  readonly created: number;
  /** Already there (same id): seeding the same book twice is harmless. */
  readonly existing: number;
  readonly failed: readonly { readonly id: string; readonly reason: string }[];
}

export interface ApplyOptions {
  /** Requests in flight at once (default 16). */
  readonly concurrency?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * Applies admin requests through handleAdmin, a few at a time; refusals are collected, not thrown. A row that throws
 * (a store's failure) throws, once the rows in flight are done, and no other row begins (tidy45-pool-after-failure).
 */
export async function applyAdmin(
  requests: readonly AdminRequest[],
  deps: AdminDeps,
  options: ApplyOptions = {},
): Promise<SeedOutcome> {
  let created = 0;
  let existing = 0;
  let done = 0;
  const failed: { id: string; reason: string }[] = [];
  await eachInFlight(requests, options.concurrency ?? 16, async (request) => {
    const result = await handleAdmin(request, deps);
    // A row already there as written counts as there; one there with other terms is refused, with its reason.
    if (result.ok) {
      if (result.alreadyApplied) existing += 1;
      else created += 1;
    } else failed.push({ id: 'id' in request ? request.id : request.action, reason: result.reason });
    done += 1;
    options.onProgress?.(done, requests.length);
  });
  return { created, existing, failed };
}

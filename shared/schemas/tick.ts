import { z } from 'zod';
import type { Tick, TickSegment } from '../domain/tick.ts';
import { parsePrice } from '../domain/units.ts';

/**
 * The EventBridge detail of a PriceTick:
 *   { symbol, markPrice: "1520.5", indexPrice?: "1520.4", timestamp: ISO 8601 | epoch ms, sequence, source }
 * Prices are decimal strings (a JSON number is refused: floats cannot carry exact prices). Strict: an unknown
 * key is an error, so a misspelt optional field (e.g. "indexprice") is not silently dropped.
 */

/** Longest accepted price string: 20 integer digits + "." + 8 decimals leaves room, 80-digit junk does not. */
const MAX_PRICE_LENGTH = 32;
/** Largest epoch ms a JavaScript Date can hold. */
const MAX_EPOCH_MS = 8.64e15;

const priceString = (what: string) =>
  z
    .string()
    .min(1)
    .max(MAX_PRICE_LENGTH)
    .transform((s, ctx) => {
      // parseDecimal trims and takes a sign; an event is machine-written, so either is malformed.
      if (s.trim() !== s || s.startsWith('+')) {
        ctx.addIssue({ code: 'custom', message: `"${s}": surrounding whitespace or an explicit "+" sign` });
        return z.NEVER;
      }
      try {
        return parsePrice(s, what);
      } catch (e) {
        // The path already names the field: drop parseDecimal's "what: " prefix.
        const message = (e as Error).message;
        ctx.addIssue({ code: 'custom', message: message.replace(`${what}: `, '') });
        return z.NEVER;
      }
    });

const isoDateTime = z.iso.datetime({ offset: true });

const timestamp = z
  .union([z.string().max(40), z.number()], { error: 'expected an ISO 8601 string or epoch milliseconds' })
  .transform((v, ctx) => {
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v) && v >= 0 && v <= MAX_EPOCH_MS) return v;
      ctx.addIssue({
        code: 'custom',
        message: `epoch milliseconds must be an integer in [0, 8.64e15], got ${v}`,
      });
      return z.NEVER;
    }
    const ms = isoDateTime.safeParse(v).success ? Date.parse(v) : Number.NaN;
    if (!Number.isSafeInteger(ms) || ms < 0) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not an ISO 8601 date-time after 1970` });
      return z.NEVER;
    }
    return ms;
  });

export const priceTickDetailSchema = z.strictObject({
  symbol: z
    .string()
    .min(1)
    .max(32)
    .regex(/^[A-Za-z0-9._-]+$/, 'symbol: letters, digits, ".", "_" or "-"'),
  markPrice: priceString('markPrice'),
  indexPrice: priceString('indexPrice').optional(),
  timestamp,
  sequence: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  source: z.string().min(1).max(64),
});

export type PriceTickDetail = z.input<typeof priceTickDetailSchema>;

/**
 * A PriceTickContinuation's detail: the tick's, with the segment (n-th continuation of the tick, n >= 1). Without
 * one it is a continuation put by a version before segments (in flight across a deploy): its segment is unknown.
 * Fields it does not know are dropped, not refused: margin-check writes continuations for margin-check, and in a
 * rolling deploy the other version reads them; refused, the rest of the tick was never checked (found by a review
 * of upgrades, session 28). The feed's own tick stays strict: a misspelt field there is the feed's error.
 */
export const tickContinuationDetailSchema = z.object({
  ...priceTickDetailSchema.shape,
  segment: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
});

export type ParsedTick =
  | { readonly ok: true; readonly tick: Tick; readonly segment: TickSegment }
  | { readonly ok: false; readonly reason: string };

/**
 * Parses an event detail into a domain Tick; never throws. Reasons read 'tick/malformed: <path>: <problem>'.
 * A continuation's detail (`continuation`) also carries its segment; a tick's own event is segment 0.
 */
export function parseTickDetail(input: unknown, continuation = false): ParsedTick {
  try {
    const parsed = (continuation ? tickContinuationDetailSchema : priceTickDetailSchema).safeParse(input);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
      return { ok: false, reason: `tick/malformed: ${issues.join('; ')}` };
    }
    const d = parsed.data;
    const tick: Tick = {
      symbol: d.symbol,
      markPrice: d.markPrice,
      ...(d.indexPrice === undefined ? {} : { indexPrice: d.indexPrice }),
      timestampMs: d.timestamp,
      sequence: d.sequence,
      source: d.source,
    };
    const segment = !continuation
      ? 0
      : 'segment' in d && typeof d.segment === 'number'
        ? d.segment
        : 'unknown';
    return { ok: true, tick, segment };
  } catch (e) {
    // Defence in depth: a hostile object (throwing getter, proxy) must not crash the handler.
    return { ok: false, reason: `tick/malformed: ${(e as Error)?.message ?? String(e)}` };
  }
}

import { frozenCopy } from '../frozen.ts';
import type { LiquidationContext } from '../ports/index.ts';

/**
 * The stored form of a liquidation's context (DynamoDB keeps it as one JSON attribute): JSON with bigints as
 * tagged decimal strings. The embedded adapters keep the object itself.
 */

/**
 * Bigints are stored as decimal strings tagged with a trailing "n". A string that would read as a tag (a
 * position id "42n") or that starts with the escape is stored behind a leading backslash, removed on decoding, so
 * every string comes back as itself.
 */
const BIGINT_TAG = /^-?\d+n$/;
const ESCAPE = '\\';

/** A string as stored: behind the escape when it would read as a bigint tag or starts with the escape. */
const storedString = (value: string): string =>
  (value.endsWith('n') && BIGINT_TAG.test(value)) || value.startsWith(ESCAPE) ? ESCAPE + value : value;

/**
 * The value with bigints as tagged strings and strings as stored, for a plain JSON.stringify: about twice as fast
 * as a replacer function, which costs a call per key (contexts are encoded at every transition).
 */
function tagged(value: unknown): unknown {
  switch (typeof value) {
    case 'bigint':
      return `${value}n`;
    case 'string':
      return storedString(value);
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) return value.map(tagged);
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) out[key] = tagged((value as Record<string, unknown>)[key]);
      return out;
    }
    default:
      return value;
  }
}

const decodeValue = (_key: string, value: unknown): unknown => {
  if (typeof value !== 'string') return value;
  if (value.startsWith(ESCAPE)) return value.slice(1);
  return BIGINT_TAG.test(value) ? BigInt(value.slice(0, -1)) : value;
};

export function encodeContext(context: LiquidationContext): string {
  const text = JSON.stringify(tagged(context));
  // A frozen copy, not the caller's object: the caller may reuse its object after the write.
  remember(text, frozenCopy(context));
  return text;
}

/**
 * A stored context's text back as the context, served from what this container encoded or read lately: frozen
 * at every level, as one object serves every reader (a reader changing it would change what the next one reads).
 */
export function contextFromText(text: string): LiquidationContext {
  const known = recent.get(text);
  if (known) return known;
  const context = frozenCopy(parseContext(text));
  remember(text, context);
  return context;
}

/** encodeContext's inverse, always parsing (contextFromText serves what it encoded or parsed lately). */
export function parseContext(text: string): LiquidationContext {
  return JSON.parse(text, decodeValue) as LiquidationContext;
}

/**
 * Contexts this container encoded or read lately, by their text: a liquidation's next step reads back the
 * context its last step wrote (a settlement read each one about five times). Each is frozen at every level (as
 * the embedded adapters' records), so one object can serve every reader and nobody can change it in place.
 * Found by the adapter parity review, session 27: the cache held the caller's own object, so a caller changing
 * it after the write, or a reader changing what it read, changed what the next read returned.
 */
const recent = new Map<string, LiquidationContext>();
const RECENT_CONTEXTS = 512;

function remember(text: string, context: LiquidationContext): void {
  if (recent.size >= RECENT_CONTEXTS) recent.delete(recent.keys().next().value as string);
  recent.set(text, context);
}

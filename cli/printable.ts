/**
 * Text from outside the operator (a dead letter's body, a record's ids and notes, an error AWS or the venue wrote) as
 * the CLI prints it (security48b-terminal-text): characters a terminal may act on instead of showing are escaped as
 * `\uXXXX`. SQS bodies cannot hold ESC but can hold C1 controls (U+009B is CSI, as ESC [ is), and the bidi overrides
 * and isolates reorder what follows them on the line. `keepLines` keeps line feeds and tabs (a rendered block);
 * without it a field stays on its line.
 */
// Every character but these: C0, DEL, C1 and the bidi controls (U+202A-U+202E, U+2066-U+2069).
const UNPRINTABLE = /[^\x20-\x7e\u00a0-\u2029\u202f-\u2065\u206a-\uffff]/g;

export const printable = (text: string, keepLines = false): string =>
  text.replace(UNPRINTABLE, (c) =>
    keepLines && (c === '\n' || c === '\t') ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );

/**
 * `JSON.stringify(value)` with the same characters escaped: it escapes C0 itself but leaves DEL, C1 and the bidi
 * controls as they are. JSON's own `\uXXXX`, so the data parsed is the same, character for character.
 */
export const printableJson = (value: unknown): string => printable(JSON.stringify(value) ?? 'null');

/**
 * `value` with every string in it (deep: arrays and plain objects) made `printable` on one line, for a renderer to
 * lay out: a line feed in a record's text (a note, an id, a reason) is `\u000a`, never the start of a line of its own
 * that could pass for one the command printed (providers49-forged-lines). Other values are kept as they are.
 */
export function printableFields<T>(value: T): T {
  if (typeof value === 'string') return printable(value) as T;
  if (Array.isArray(value)) return value.map(printableFields) as T;
  if (value !== null && typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    return Object.fromEntries(
      Object.entries(value).map(([key, field]) => [printable(key), printableFields(field)]),
    ) as T;
  }
  return value;
}

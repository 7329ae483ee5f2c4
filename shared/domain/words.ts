/**
 * A count and its noun, the singular for one: `1 message`, `3 messages`, `0 breaks`. The operator commands' and
 * errors' words say one thing in the singular (final47-plurals); `counted(n, 'liquidation is', 'liquidations are')`
 * takes the verb along. Not grouped: a count grouped as the usage says 20,000 is `entriesWord`'s (journal-audit.ts).
 */
export const counted = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/** A time in epoch ms as the commands and reports say it: ISO 8601, UTC, to the millisecond. */
export const iso = (ms: number): string => new Date(ms).toISOString();

/** Items as a sentence lists them: `a`, `a and b`, `a, b and c` (a command's subcommands, its exit codes). */
export const spokenList = (items: readonly string[]): string =>
  items.length > 1 ? `${items.slice(0, -1).join(', ')} and ${items.at(-1)}` : (items[0] ?? '');

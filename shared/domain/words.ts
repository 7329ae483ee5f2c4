/**
 * A count and its noun, the singular for one: `1 message`, `3 messages`, `0 breaks`. The operator commands' and
 * errors' words say one thing in the singular (final47-plurals); `counted(n, 'liquidation is', 'liquidations are')`
 * takes the verb along. Not grouped: a count grouped as the usage says 20,000 is `entriesWord`'s (journal-audit.ts).
 */
export const counted = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/** A time in epoch ms as the commands and reports say it: ISO 8601, UTC, to the millisecond. */
export const iso = (ms: number): string => new Date(ms).toISOString();

import { type SetAside, setAsideList, type Unreadable } from './model.ts';

/**
 * A record's display list (a position's ADL events, a provider's fills): the latest few entries, oldest first, and
 * how many there were in all. Bounded, so the item that carries it stays small however often it is added to.
 */
export interface Latest<T> {
  /** Every entry recorded: more than `recent` holds when older ones were let go. */
  readonly total: number;
  readonly recent: readonly T[];
}

/**
 * `list` with `entry` recorded: the latest `max` kept, `total` counting it. An entry `same` as one already kept is not
 * recorded again: `list` itself is returned (the write that carries an entry is conditional on the version it was
 * planned on, so only a record built twice from one read could hold it).
 */
export function withLatest<T, L extends Latest<T>>(
  list: L | undefined,
  entry: T,
  max: number,
  same: (kept: T, entry: T) => boolean,
): L | Latest<T> {
  if (!list) return { total: 1, recent: [entry] };
  const { recent } = list;
  for (const kept of recent) if (same(kept, entry)) return list;
  const kept = recent.slice(Math.max(0, recent.length + 1 - max));
  kept.push(entry);
  return { total: Math.max(list.total, recent.length) + 1, recent: kept };
}

/**
 * A display list with an entry recorded by `add`. A list this version cannot read is neither a refusal (that would
 * block the money path for a display) nor dropped: it is set aside as it was, after those set aside before, and a new
 * list starts with the entry (follow47-adl-events-unreadable). Those set aside are kept as they are: a set-aside kept
 * whole (not a list) stays so, or is the first of the new list (providers49-set-aside-not-a-list).
 */
export function recordOrSetAside<L extends object>(
  list: L | Unreadable | undefined,
  aside: SetAside | undefined,
  add: (list: L | undefined) => L,
): { list: L; aside?: SetAside } {
  if (list === undefined || !unreadable(list)) return { list: add(list), ...(aside ? { aside } : {}) };
  return { list: add(undefined), aside: [...setAsideList(aside), list] };
}

const unreadable = (value: object): value is Unreadable => 'unreadable' in value;

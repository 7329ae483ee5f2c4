import type { BaseE8, PriceE8, QuoteE6 } from './units.ts';

/** The core records of the backstop. Units are in the types (see units.ts). */

export type Side = 'LONG' | 'SHORT';

/** OPEN positions are in the liquidation-price index; LIQUIDATING and CLOSED ones are not. */
export type PositionState = 'OPEN' | 'LIQUIDATING' | 'CLOSED';

export interface Position {
  readonly id: string;
  readonly traderId: string;
  readonly symbol: string;
  readonly side: Side;
  /** Open size, always > 0 while OPEN or LIQUIDATING. */
  readonly size: BaseE8;
  readonly entryPrice: PriceE8;
  /** Isolated margin posted for this position (realized PnL of partial closes flows into it). */
  readonly collateral: QuoteE6;
  /**
   * How much `collateral` overstates the position's exact margin, in E16 (quote units x 1e10; 0 <= it < 1e10): a
   * slice leaves its rest the sub-unit of its PnL rounded up, and the position's final close takes it back
   * (accounting.ts), so no slice's rounding pays the trader. Absent: 0.
   */
  readonly collateralOverE16?: bigint;
  readonly state: PositionState;
  /**
   * Profit ADL took out of this position's collateral while the profit stays unrealized (adl.ts): no later ADL
   * takes it again. Absent: none.
   */
  readonly adlProfitGiven?: QuoteE6;
  /** CLOSED only: what the trader was paid when the position closed (its collateral is then 0). */
  readonly closedPayout?: QuoteE6;
  /**
   * The ADL closes and haircuts this position took as a counterparty (who deleveraged it), written by the same
   * write that reduced it: the latest few and how many in all. Absent: none (or written by a version that kept none).
   * Stored in a shape this version cannot read: UnreadableAdlEvents, kept as it is (display only: no money path
   * depends on it).
   */
  readonly adlEvents?: AdlEvents | UnreadableAdlEvents;
  /**
   * Lists of ADL events this version could not read, set aside as they were when an event started a new list
   * (recordAdlEvent), oldest first; stored as something other than a list, kept whole (SetAside). Absent: none.
   */
  readonly adlEventsSetAside?: SetAside;
  /** Optimistic-concurrency version: every write is conditional on it. */
  readonly version: number;
}

/**
 * A value stored in a shape this version cannot read (a later version's, an edit by hand): kept and written back as
 * it was, never rewritten or dropped, and shown as unreadable with why.
 */
export interface Unreadable {
  /** Why it could not be read. */
  readonly unreadable: string;
  /** The value as stored, in the store's own form: opaque here. */
  readonly stored: unknown;
}

/**
 * Values set aside as unreadable (recordOrSetAside): a list, oldest first; or, stored as something other than a list
 * (a later version's shape, an edit by hand), that value kept whole, so a write that sets nothing aside writes it back
 * as it was, not wrapped in a list (providers49-set-aside-not-a-list).
 */
export type SetAside = readonly Unreadable[] | Unreadable;

/** The set-aside values one by one: one kept whole is one. */
export const setAsideList = (aside: SetAside | undefined): readonly Unreadable[] =>
  aside === undefined ? [] : 'unreadable' in aside ? [aside] : aside;

/** A position's list of ADL events that does not read. */
export type UnreadableAdlEvents = Unreadable;

/** Whether a position's ADL events read (not an UnreadableAdlEvents). */
export const adlEventsRead = (events: AdlEvents | UnreadableAdlEvents | undefined): events is AdlEvents =>
  events !== undefined && !('unreadable' in events);

/** One ADL fill a counterparty took: part of its size closed at the mark, or profit given, or both. */
export interface AdlEvent {
  /** The liquidation whose rest or deficit it took. */
  readonly liquidationId: string;
  /** 0: the liquidation's settlement; n: its n-th ADL round after it (a deficit beyond one transaction). */
  readonly round: number;
  /** Size closed (0: profit given alone, a haircut). */
  readonly size: BaseE8;
  /** The effective close price (informational: the money that moved is `given`). */
  readonly price: PriceE8;
  /** The mark the size closed at. */
  readonly mark: PriceE8;
  /** Profit given up to cover the deficit, `haircut` included. */
  readonly given: QuoteE6;
  /** The part of `given` beyond the closed size's profit, taken from the profit left open. */
  readonly haircut: QuoteE6;
  readonly atMs: number;
}

/** A position's ADL events: the latest MAX_ADL_EVENTS_KEPT (domain/adl.ts), oldest first, and how many in all. */
export interface AdlEvents {
  /** Every event recorded on the position: more than `recent` holds when older ones were let go. */
  readonly total: number;
  readonly recent: readonly AdlEvent[];
}

export interface Fill {
  readonly price: PriceE8;
  readonly size: BaseE8;
  /**
   * What the counterparty paid for the fill (a sale) or was paid (a purchase), when it settled the fill in whole
   * units of its own (an auction's provider): the close counts this, not price x size, so no unit of the
   * rounding is lost between them. Absent: price x size, exactly (the close rounds once).
   */
  readonly cost?: QuoteE6;
}

/** Terminal states of a liquidation: exactly one is reached, once. */
export const TERMINAL_STATES = [
  'SETTLED_MARKET',
  'SETTLED_AUCTION',
  'SETTLED_INSURANCE',
  'SETTLED_ADL',
  'CANCELLED',
] as const;
export type TerminalState = (typeof TERMINAL_STATES)[number];

/**
 * A liquidation moves forward only: QUEUED -> EXECUTING (claimed: its market order is fixed) -> (AUCTION ->)
 * (SETTLING: inputs frozen ->) terminal. MARKET_EXECUTED is read for records written before EXECUTING existed.
 * Every transition is a conditional write on the previous version, so a redelivered message resumes.
 */
export type LiquidationState =
  | 'QUEUED'
  | 'EXECUTING'
  | 'MARKET_EXECUTED'
  | 'AUCTION'
  | 'SETTLING'
  | TerminalState;

export const isTerminal = (state: LiquidationState): state is TerminalState =>
  (TERMINAL_STATES as readonly string[]).includes(state);

/** The layer that settled (part of) a liquidation; ordered as the waterfall runs. */
export type Layer = 'market' | 'auction' | 'insurance' | 'adl';

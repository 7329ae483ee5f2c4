import type { InsuranceConfig } from './config.ts';
import { maxBig, minBig, type QuoteE6 } from './units.ts';

/**
 * Insurance fund rules as a pure state machine. The ledger enforces the same floor and draw cap on its
 * conditional writes; this module decides the amounts beforehand so the waterfall knows what goes to ADL.
 */

export interface InsuranceState {
  readonly balance: QuoteE6;
  /** Start of the current draw window, epoch ms, aligned to a multiple of the window length. */
  readonly windowStartMs: number;
  /** Paid out within the current window. */
  readonly windowDrawn: QuoteE6;
}

export type InsuranceReason =
  | 'insurance/non-positive-amount'
  | 'insurance/bad-reason'
  | 'insurance/bad-time'
  | 'insurance/bad-state'
  | 'insurance/bad-config';

/** Why (part of) a debit was refused: the binding limit. */
export type DebitRefusal = 'insurance/floor' | 'insurance/draw-cap';

export class InsuranceError extends Error {
  override readonly name = 'InsuranceError';
  constructor(
    readonly reason: InsuranceReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

export interface CreditResult {
  readonly next: InsuranceState;
  readonly credited: QuoteE6;
  readonly reason: string;
}

export interface DebitPlan {
  /** Paid by the fund now. */
  readonly paid: QuoteE6;
  /** Not paid (goes to ADL); paid + refused == amount. */
  readonly refused: QuoteE6;
  /** The limit that refused the remainder; absent when everything was paid. */
  readonly reason?: DebitRefusal;
  readonly next: InsuranceState;
}

export const windowLengthMs = (config: InsuranceConfig): number => config.windowSeconds * 1000;

/** windowStart = floor(now / len) * len. */
export const windowStartFor = (nowMs: number, config: InsuranceConfig): number => {
  const len = windowLengthMs(config);
  return Math.floor(nowMs / len) * len;
};

function assertTime(nowMs: number): void {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0)
    throw new InsuranceError('insurance/bad-time', `nowMs ${nowMs} must be a non-negative integer`);
}

function assertState(s: InsuranceState): void {
  if (!Number.isSafeInteger(s.windowStartMs) || s.windowStartMs < 0)
    throw new InsuranceError('insurance/bad-state', `windowStartMs ${s.windowStartMs}`);
  if (s.windowDrawn < 0n) throw new InsuranceError('insurance/bad-state', `windowDrawn ${s.windowDrawn} < 0`);
}

function assertConfig(c: InsuranceConfig): void {
  if (!Number.isSafeInteger(c.windowSeconds) || c.windowSeconds <= 0)
    throw new InsuranceError('insurance/bad-config', `windowSeconds ${c.windowSeconds}`);
  if (c.drawCapPerWindow < 0n || c.floor < 0n)
    throw new InsuranceError('insurance/bad-config', 'drawCapPerWindow and floor must be >= 0');
}

function assertPositive(amount: QuoteE6): void {
  if (amount <= 0n) throw new InsuranceError('insurance/non-positive-amount', `amount ${amount} must be > 0`);
}

/**
 * A new window starts when now >= windowStart + len; its start is floor(now / len) * len. A clock that
 * went backwards stays in the current window (never reopens an old one with a fresh allowance).
 */
export function rollWindow(state: InsuranceState, nowMs: number, config: InsuranceConfig): InsuranceState {
  assertState(state);
  assertTime(nowMs);
  assertConfig(config);
  if (nowMs < state.windowStartMs + windowLengthMs(config)) return state;
  return { ...state, windowStartMs: windowStartFor(nowMs, config), windowDrawn: 0n };
}

/**
 * balance' = balance + amount. Credits are never refused (no cap, no floor applies to inflows) and leave the draw
 * window alone; a shortfall payout given back is creditBack.
 */
export function credit(state: InsuranceState, amount: QuoteE6, reason: string): CreditResult {
  assertState(state);
  assertPositive(amount);
  if (typeof reason !== 'string' || reason.trim() === '')
    throw new InsuranceError('insurance/bad-reason', 'a credit needs a reason');
  return { next: { ...state, balance: state.balance + amount }, credited: amount, reason };
}

/**
 * A shortfall payout given back: a settlement planned again pays the fund's shortfall less than an earlier plan
 * of it drew (docs/RELIABILITY.md, credit-back-window). balance' = balance + amount, and when the draws it gives
 * back were counted in the current window (`drawWindowStartMs` is its start),
 * windowDrawn' = windowDrawn - min(amount, windowDrawn). One of another window (the window has rolled since)
 * leaves the current window's draws alone: they are other money. The ledger applies the same rule to a credit
 * of kind 'shortfall-payout' that carries a drawWindow, so what planDebit sees next is what the ledger enforces.
 */
export function creditBack(state: InsuranceState, amount: QuoteE6, drawWindowStartMs: number): CreditResult {
  assertState(state);
  assertPositive(amount);
  assertTime(drawWindowStartMs);
  const sameWindow = drawWindowStartMs === state.windowStartMs;
  const windowDrawn = sameWindow ? state.windowDrawn - minBig(amount, state.windowDrawn) : state.windowDrawn;
  return {
    next: { ...state, balance: state.balance + amount, windowDrawn },
    credited: amount,
    reason: 'shortfall-payout',
  };
}

export interface FeeReturn {
  /** Given back now: min(amount, max(0, balance - floor)). */
  readonly given: QuoteE6;
  /** What the floor kept: amount - given. */
  readonly kept: QuoteE6;
  readonly next: InsuranceState;
}

/**
 * A liquidation fee given back: a settlement planned again owes less fee than an earlier plan of it credited.
 * The ledger checks it as any debit against the floor (not the draw cap: it is no payout), so what would take
 * the fund below its floor is kept, and the waterfall charges it to the settlement (chargeFee).
 */
export function planFeeReturn(state: InsuranceState, amount: QuoteE6, config: InsuranceConfig): FeeReturn {
  assertState(state);
  assertPositive(amount);
  assertConfig(config);
  const given = minBig(amount, maxBig(0n, state.balance - config.floor));
  return { given, kept: amount - given, next: { ...state, balance: state.balance - given } };
}

/**
 * paid = min(amount, max(0, balance - floor), max(0, cap - windowDrawn)) in the window of `nowMs`;
 * refused = amount - paid. When both limits bind equally the reason is the floor (the fund is empty).
 */
export function planDebit(
  state: InsuranceState,
  amount: QuoteE6,
  nowMs: number,
  config: InsuranceConfig,
): DebitPlan {
  assertPositive(amount);
  const current = rollWindow(state, nowMs, config);
  const floorRoom = maxBig(0n, current.balance - config.floor);
  const capRoom = maxBig(0n, config.drawCapPerWindow - current.windowDrawn);
  const paid = minBig(amount, minBig(floorRoom, capRoom));
  const refused = amount - paid;
  const next = { ...current, balance: current.balance - paid, windowDrawn: current.windowDrawn + paid };
  if (refused === 0n) return { paid, refused, next };
  return { paid, refused, reason: floorRoom <= capRoom ? 'insurance/floor' : 'insurance/draw-cap', next };
}

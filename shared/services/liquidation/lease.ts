/**
 * The order lease: one delivery at a time places a liquidation's venue orders. Separate: the claim, the market order,
 * the last resort and the settlement all take it or wait for it.
 */
import { randomUUID } from 'node:crypto';
import { METRICS } from '../../metrics.ts';
import { ConditionFailedError, type LiquidationRecord, type OrderLease } from '../../ports/index.ts';
import { type LiquidationContext, ORDER_LEASE_MS, type SettlementDeps } from '../context.ts';
import { LiquidationBusyError } from './errors.ts';
import { type Carried, commitOrSkip, contextOf } from './step.ts';

/**
 * A refused order counts as not executed only while no other delivery can place the same client order id: a
 * duplicate delivery placing it a moment later would have it executed after the slice went on to the auction
 * (sold twice, the duplicate's fills recorded nowhere). So a delivery places orders only under its lease.
 */
export const leaseFor = (owner: string, nowMs: number, deps: SettlementDeps): OrderLease => ({
  owner,
  untilMs: nowMs + (deps.orderLeaseMs ?? ORDER_LEASE_MS),
});

/** This delivery's token as a lease owner (one per message processed). */
export function ownerOf(carried: Carried): string {
  carried.owner ??= randomUUID();
  return carried.owner;
}

/** The context without its lease (a failed delivery releases it; an order it placed stays pending). */
const withoutLease = ({ lease: _, ...context }: LiquidationContext): LiquidationContext => context;

/** The context as stored by a commit that records an order's outcome: no order pending, nobody holding them. */
export const outcomeRecorded = ({
  lease: _,
  lastResortOrder: __,
  ...context
}: LiquidationContext): LiquidationContext => context;

/**
 * The record under this delivery's lease: as it is when the lease is ours, else with the lease taken (one
 * conditional write; taken over when another's ran out). Undefined when another writer moved the record first (read
 * it again). A live lease of another delivery is waited for, then defers this one (awaitLeaseHolder).
 */
export async function holdLease(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
  order?: LiquidationContext['lastResortOrder'],
): Promise<LiquidationRecord | undefined> {
  const owner = ownerOf(carried);
  if ((await awaitLeaseHolder(liquidation, deps, carried, ' places its orders')) === 'moved')
    return undefined;
  const now = deps.clock.nowMs();
  const context = contextOf(liquidation);
  const held = context.lease;
  // An order to record before it is placed is written even under a lease already held.
  if (!order && held && held.untilMs > now && held.owner === owner) return liquidation;
  if (held && held.owner !== owner) {
    deps.telemetry.warn('order lease ran out; taking it over', { liquidationId: liquidation.id });
    deps.telemetry.count(METRICS.OrderLeaseTakeovers.name, 1, { Market: liquidation.symbol });
  }
  const leased: LiquidationRecord = {
    ...liquidation,
    context: { ...context, lease: leaseFor(owner, now, deps), ...(order ? { lastResortOrder: order } : {}) },
    version: liquidation.version + 1,
  };
  const written = await commitOrSkip(deps, [
    { kind: 'liquidation', record: leased, expectedVersion: liquidation.version },
  ]);
  if (!written) return undefined;
  carried.leased = leased;
  return leased;
}

/**
 * While another delivery holds the lease its order may be executing: an order placed or an outcome decided now (a
 * settlement, a freeze) could sell the slice twice or leave that order's fills recorded nowhere. Waits for the
 * holder to record its outcome ('moved': read the record again) or for its lease to run out ('free': it died);
 * after a few reads, defers this delivery (LiquidationBusyError) until then.
 */
export async function awaitLeaseHolder(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
  holderDoes = "'s order may be executing",
): Promise<'free' | 'moved'> {
  const held = liquidation.context?.lease;
  const foreign = () => !!held && held.untilMs > deps.clock.nowMs() && held.owner !== carried.owner;
  if (!foreign()) return 'free';
  // Usually a duplicate delivery whose twin holds the lease and records its outcome within a second: wait for
  // that (the record moves on) rather than fail and come back when the lease would run out.
  for (let attempt = 1; deps.backoff && attempt <= LEASE_POLLS && foreign(); attempt++) {
    await deps.backoff(attempt);
    if ((await deps.liquidations.get(liquidation.id))?.version !== liquidation.version) return 'moved';
  }
  if (!foreign()) return 'free';
  deps.telemetry.count(METRICS.OrderLeaseDeferrals.name, 1, { Market: liquidation.symbol });
  throw new LiquidationBusyError(
    `liquidation/busy: ${liquidation.id} (another delivery${holderDoes} until ${new Date(held!.untilMs).toISOString()})`,
    held!.untilMs - deps.clock.nowMs(),
  );
}

/** Reads of the record while waiting for another delivery's lease (with the deps' backoff between them). */
const LEASE_POLLS = 8;

/**
 * Runs one delivery's work; when it fails, gives up the order lease it took (it places nothing more), so its
 * retry need not wait for the lease to run out. Best effort: a lease not released runs out.
 */
export async function releasingLease<T>(
  carried: Carried,
  deps: SettlementDeps,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const leased = carried.leased;
    carried.leased = undefined;
    if (leased?.context) {
      const released = { ...leased, context: withoutLease(leased.context), version: leased.version + 1 };
      try {
        // Conditional on the leased version: a record that moved on no longer holds this lease.
        await deps.transactor.commit([
          { kind: 'liquidation', record: released, expectedVersion: leased.version },
        ]);
      } catch (releaseError) {
        if (!(releaseError instanceof ConditionFailedError)) {
          deps.telemetry.warn('order lease not released; it runs out', {
            liquidationId: leased.id,
            reason: String(releaseError),
          });
        }
      }
    }
    throw error;
  }
}

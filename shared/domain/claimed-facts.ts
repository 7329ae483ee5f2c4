import type { Position } from './model.ts';
import type { SizingReason } from './sizing.ts';
import type { Ppm, PriceE8 } from './units.ts';

/** What a claim read and applied (LiquidationContext.claimed): display only, no decision reads it. */
export interface ClaimedFacts {
  /** The position as the claim read it (the version it works on: the whole position, or a slice's rest). */
  readonly position: Pick<Position, 'size' | 'entryPrice' | 'collateral' | 'collateralOverE16'>;
  /** Why plannedSize is what it is (domain/sizing.ts). Absent: the market-only baseline closes the whole position. */
  readonly sizing?: SizingReason;
  /** The tick whose mark was executionMark (absent: the market had none recorded, so the trigger mark). */
  readonly markTick?: { readonly sequence: number; readonly indexPrice?: PriceE8 };
  /** The market's rules the claim applied: its margins, the fee rate and the market order's slippage bound. */
  readonly maintenanceMargin: Ppm;
  readonly initialMargin: Ppm;
  readonly liquidationFee: Ppm;
  readonly slippageBound: Ppm;
  /**
   * The first CLAIMED_CONFIG_DIGEST_CHARS characters of the digest of the risk configuration the claim applied
   * (config-digest.ts: the stack's RiskConfigDigest output begins with them). Absent: claimed before session 52,
   * under a configuration no record names.
   */
  readonly configDigest?: string;
}

/**
 * A prefix, not the whole digest: its 64 characters took liquidations settled by an auction or the fund past the
 * 1 KB of one write unit (2 units more each in the bench: docs/PERFORMANCE.md). 12 (48 bits) tell a deployment's
 * configurations apart, and are what `simulate --config` prints of a file's digest.
 */
export const CLAIMED_CONFIG_DIGEST_CHARS = 12;

/*
 * Stored as one short text of `name=value` pairs (`size=1000000000 entry=20000000000 collateral=200000000
 * sizing=dust-remainder tick=7 mm=25000 im=50000 fee=10000 slip=20000 config=3f1c0a9b7d2e`), not as an object:
 * every write of the liquidation after the claim rewrites its whole item, and the object's names (about 260 bytes
 * in all) took a market-settled liquidation past the 1 KB a write unit covers (review51-support-claimed-size). A
 * pair this version does not know is passed over, so a later version may add one.
 */

const SIZING_PREFIX = 'sizing/';
const SIZING_REASONS: ReadonlySet<string> = new Set<SizingReason>([
  'sizing/restore-initial-margin',
  'sizing/min-slice',
  'sizing/max-close-share',
  'sizing/dust-remainder',
  'sizing/insolvent',
  'sizing/fee-exceeds-margin-relief',
  'sizing/no-partial-restores',
]);

/** The facts as the context stores them (LiquidationContext.claimed). */
export function encodeClaimedFacts(f: ClaimedFacts): string {
  const p = f.position;
  const pairs = [`size=${p.size}`, `entry=${p.entryPrice}`, `collateral=${p.collateral}`];
  if (p.collateralOverE16 !== undefined) pairs.push(`over=${p.collateralOverE16}`);
  if (f.sizing !== undefined) pairs.push(`sizing=${f.sizing.slice(SIZING_PREFIX.length)}`);
  if (f.markTick !== undefined) {
    pairs.push(`tick=${f.markTick.sequence}`);
    if (f.markTick.indexPrice !== undefined) pairs.push(`index=${f.markTick.indexPrice}`);
  }
  pairs.push(
    `mm=${f.maintenanceMargin}`,
    `im=${f.initialMargin}`,
    `fee=${f.liquidationFee}`,
    `slip=${f.slippageBound}`,
  );
  if (f.configDigest !== undefined) pairs.push(`config=${f.configDigest}`);
  return pairs.join(' ');
}

const INTEGER = /^-?\d+$/;
const DIGEST = /^[0-9a-f]{1,64}$/;

/**
 * The stored facts back, or undefined when `stored` does not read as them (not a text, a value missing or not an
 * integer, an unknown sizing reason, a digest not in lowercase hex): display only, so a record edited by hand shows
 * without them, nothing fails.
 */
export function decodeClaimedFacts(stored: unknown): ClaimedFacts | undefined {
  if (typeof stored !== 'string') return undefined;
  const values = new Map<string, string>();
  for (const pair of stored.split(' ')) {
    const at = pair.indexOf('=');
    if (at <= 0) return undefined;
    values.set(pair.slice(0, at), pair.slice(at + 1));
  }
  const integer = (name: string): bigint | undefined => {
    const v = values.get(name);
    return v !== undefined && INTEGER.test(v) ? BigInt(v) : undefined;
  };
  const size = integer('size');
  const entryPrice = integer('entry');
  const collateral = integer('collateral');
  const maintenanceMargin = integer('mm');
  const initialMargin = integer('im');
  const liquidationFee = integer('fee');
  const slippageBound = integer('slip');
  if (
    size === undefined ||
    entryPrice === undefined ||
    collateral === undefined ||
    maintenanceMargin === undefined ||
    initialMargin === undefined ||
    liquidationFee === undefined ||
    slippageBound === undefined
  )
    return undefined;
  const optional = (name: string): bigint | undefined | false =>
    values.has(name) ? (integer(name) ?? false) : undefined;
  const over = optional('over');
  const sequence = optional('tick');
  const indexPrice = optional('index');
  const sizingText = values.get('sizing');
  const sizing = sizingText === undefined ? undefined : `${SIZING_PREFIX}${sizingText}`;
  if (over === false || sequence === false || indexPrice === false) return undefined;
  if (sizing !== undefined && !SIZING_REASONS.has(sizing)) return undefined;
  if (sequence !== undefined && sequence > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const configDigest = values.get('config');
  if (configDigest !== undefined && !DIGEST.test(configDigest)) return undefined;
  return {
    position: { size, entryPrice, collateral, ...(over === undefined ? {} : { collateralOverE16: over }) },
    ...(sizing === undefined ? {} : { sizing: sizing as SizingReason }),
    ...(sequence === undefined
      ? {}
      : {
          markTick: {
            sequence: Number(sequence),
            ...(indexPrice === undefined ? {} : { indexPrice }),
          },
        }),
    maintenanceMargin,
    initialMargin,
    liquidationFee,
    slippageBound,
    ...(configDigest === undefined ? {} : { configDigest }),
  };
}

import { describe, expect, it } from 'vitest';
import { SINGLE_SHARD_LAYOUT } from '../../shared/adapters/aws/position-layout.ts';
import { positionItem } from '../../shared/adapters/aws/positions.ts';
import { providerItem } from '../../shared/adapters/aws/providers.ts';
import { auctionItem } from '../../shared/adapters/aws/record-items.ts';
import { RECORD_SCHEMA, SCHEMA_ATTR } from '../../shared/adapters/aws/writer-schema.ts';
import { base, price } from '../../shared/domain/units.ts';
import type { AuctionRecord, PositionRecord, ProviderRecord } from '../../shared/ports/index.ts';

/**
 * The writer-schema fence's rule (adapters/aws/writer-schema.ts): a release that adds an attribute a whole-item Put
 * must keep raises RECORD_SCHEMA, or an older function's Put during a rolling deploy drops it. Each attribute of an
 * auction item is listed here once it is decided: written by schema 1 (the fence's first), harmless to drop (and why),
 * or kept since the schema that raised for it. A new attribute fails this test until it is decided.
 */
const SCHEMA_1 = new Set([
  'id',
  'liquidationId',
  'symbol',
  'direction',
  'lot',
  'remainingLot',
  'top',
  'startedAtMs',
  'resets',
  'step',
  'state',
  'fills',
  'lastFailure',
  'wakeMark',
  'endedBy',
  'endedAtMark',
  'stepDueAtMs',
  'spentIn',
  'spentWokenTo',
  'spentWakeBegan',
  'wakeKey',
  'version',
  SCHEMA_ATTR,
]);

/** Dropped by an older Put, nothing is lost (docs/DEPLOY.md says why for each). */
const HARMLESS_TO_DROP = new Set([
  // The wake's next part goes 25 sends at a time instead of one batch (wakes43b).
  'spentWakeSendFailed',
  // liquidation-watch's claim: one twin more at its next run (watch44-resend-once).
  'stepResent',
  // The owner of a wake debt (capped44-stale-run-quiet). Dropped by a previous version's Put in a deploy's minutes,
  // the owner may be a message that ended: the debt's sleepers then wake at their own planned step (900 s at most)
  // and find no bidder, as before spent wakes. Raising the schema would cost every deploy's alarms and any rollback
  // (review44-record-schema).
  'runFrom',
]);

/** Kept by every later writer: the schema that raised for it. */
const KEPT_SINCE: Readonly<Record<string, number>> = {};

/**
 * The resend claim's own fields (`stepResent` is a map: an older version reads it field by field and puts back those
 * fields alone, so a field added to it is dropped as an attribute would be).
 */
const CLAIM_FIELDS = new Set(['step', 'atMs']);
const CLAIM_FIELDS_HARMLESS_TO_DROP = new Set([
  // The claiming call's token (claim45-own-token). Dropped by a previous version's Put (or claim) in a deploy's
  // minutes, a claim whose answer was lost and whose retry comes after that Put answers false while its claim stands:
  // the step waits the hour for its resend, the defect the token fixes, in those minutes alone. A previous version
  // reads the claim's step and time and ignores the token. Raising the schema would cost every deploy's alarms and any
  // rollback (review44-record-schema).
  'claimer',
]);

/**
 * A fill's own fields (`fills` is a list of maps: an older version reads each fill's price, size, cost and provider and
 * puts back those alone, so a field added to a fill is dropped as an attribute would be).
 */
const FILL_FIELDS = new Set(['price', 'size', 'cost', 'providerId']);
const FILL_FIELDS_HARMLESS_TO_DROP = new Set([
  // When the fill was made (review52-support-fill-times-on-auction): read by `liquidations show` alone. Dropped by a previous
  // version's Put of the auction in a deploy's minutes (its next step), the auction's fills until then read as those of
  // before session 52: `show` times them from their providers' records where those tell them apart. Raising the schema
  // would cost every deploy's alarms and any rollback (review44-record-schema).
  'step',
  'atMs',
  'mark',
]);

/** An auction with every attribute its item can carry. */
const everything: AuctionRecord = {
  id: 'liq-1:auction',
  liquidationId: 'liq-1',
  symbol: 'ETH-USD',
  direction: 'SELL',
  lot: base('2'),
  remainingLot: base('1'),
  top: price('1900'),
  startedAtMs: 1,
  resets: 0,
  step: 3,
  state: 'RUNNING',
  fills: [
    {
      price: price('1880'),
      size: base('1'),
      providerId: 'lp-1',
      cost: 1_880_000_000n,
      step: 2,
      atMs: 3,
      mark: price('1900'),
    },
  ],
  lastFailure: { reason: 'x', attempt: 1, atMs: 2 },
  wakeMark: price('1850'),
  endedBy: 'plan',
  endedAtMark: price('1800'),
  stepDueAtMs: 3,
  stepResent: { step: 3, atMs: 4, claimer: 'c-1' },
  spentIn: ['ETH-USD'],
  spentWokenTo: { symbol: 'ETH-USD', direction: 'BUY', id: 's-1', step: 1, wakeMark: price('1.5') },
  spentWakeBegan: { 'ETH-USD': 7 },
  spentWakeSendFailed: true,
  runFrom: 2,
  version: 5,
};

describe('writer schema: every attribute of an auction item is decided (writer-schema.ts, docs/DEPLOY.md)', () => {
  it('each attribute is of schema 1, harmless to drop, or kept since a schema no newer than RECORD_SCHEMA', () => {
    const undecided = Object.keys(auctionItem(everything)).filter(
      (name) => !SCHEMA_1.has(name) && !HARMLESS_TO_DROP.has(name) && KEPT_SINCE[name] === undefined,
    );
    expect(undecided).toEqual([]);
    for (const [name, schema] of Object.entries(KEPT_SINCE))
      expect(RECORD_SCHEMA, `${name} is kept since schema ${schema}`).toBeGreaterThanOrEqual(schema);
  });

  it('each field of a fill is of schema 1 or harmless to drop', () => {
    const fields = Object.keys(auctionItem(everything).fills?.L?.[0]?.M ?? {});
    expect(fields).toContain('mark');
    expect(fields.filter((f) => !FILL_FIELDS.has(f) && !FILL_FIELDS_HARMLESS_TO_DROP.has(f))).toEqual([]);
  });

  it("each field of the resend claim is the claim's own or harmless to drop", () => {
    const fields = Object.keys(auctionItem(everything).stepResent?.M ?? {});
    expect(fields).toContain('claimer');
    expect(fields.filter((f) => !CLAIM_FIELDS.has(f) && !CLAIM_FIELDS_HARMLESS_TO_DROP.has(f))).toEqual([]);
  });
});

/** A position item's attributes written by schema 1 (all of an open one's, and a closed one's payout). */
const POSITION_SCHEMA_1 = new Set([
  'id',
  'traderId',
  'symbol',
  'side',
  'size',
  'entryPrice',
  'collateral',
  'collateralOverE16',
  'state',
  'version',
  'liquidationPrice',
  'closedPayout',
  'adlProfitGiven',
  'liqKey',
  'liqPrice',
  'adlLeverage',
  SCHEMA_ATTR,
]);

/** Dropped by an older Put, no money and no decision is lost (docs/DEPLOY.md, upgrading to session 47). */
const POSITION_HARMLESS_TO_DROP = new Set([
  // Who deleveraged the position (adl47-who-closed): read by `liquidations show --position` alone. A version before
  // session 47 that puts the position back in a deploy's minutes drops it, and the next event starts the list again
  // (the liquidation's own plan still names its settlement's counterparties). Raising the schema would cost every
  // deploy's retries and any rollback.
  'adlEvents',
  // Lists of ADL events this version could not read, set aside when an event started a new list
  // (follow47-adl-events-unreadable): display only, as `adlEvents`.
  'adlEventsSetAside',
]);

const POSITION_KEPT_SINCE: Readonly<Record<string, number>> = {};

/** A position with every attribute its item can carry (an open one's index keys and a closed one's payout). */
const everyPosition: PositionRecord = {
  id: 'pos-1',
  traderId: 't-1',
  symbol: 'ETH-USD',
  side: 'SHORT',
  size: base('1'),
  entryPrice: price('2000'),
  collateral: 1n,
  collateralOverE16: 1n,
  state: 'OPEN',
  version: 3,
  liquidationPrice: price('2100'),
  closedPayout: 1n,
  adlProfitGiven: 1n,
  adlEvents: {
    total: 1,
    recent: [
      { liquidationId: 'p:1', round: 0, size: 1n, price: 1n, mark: 1n, given: 1n, haircut: 0n, atMs: 1 },
    ],
  },
  adlEventsSetAside: [{ unreadable: 'adapter/missing-attribute: recent', stored: { M: {} } }],
};

describe('writer schema: every attribute of a position item is decided (writer-schema.ts, docs/DEPLOY.md)', () => {
  it('each attribute is of schema 1, harmless to drop, or kept since a schema no newer than RECORD_SCHEMA', () => {
    const undecided = Object.keys(positionItem(everyPosition, SINGLE_SHARD_LAYOUT)).filter(
      (name) =>
        !POSITION_SCHEMA_1.has(name) &&
        !POSITION_HARMLESS_TO_DROP.has(name) &&
        POSITION_KEPT_SINCE[name] === undefined,
    );
    expect(undecided).toEqual([]);
    for (const [name, schema] of Object.entries(POSITION_KEPT_SINCE))
      expect(RECORD_SCHEMA, `${name} is kept since schema ${schema}`).toBeGreaterThanOrEqual(schema);
  });
});

/** A provider item's attributes written by schema 1. */
const PROVIDER_SCHEMA_1 = new Set([
  'id',
  'capital',
  'maxDiscountPpm',
  'maxLot',
  'maxLotBySymbol',
  'symbols',
  'version',
  SCHEMA_ATTR,
]);

/** Dropped by an older Put, no money and no decision is lost (providers48-fills-not-fenced). */
const PROVIDER_HARMLESS_TO_DROP = new Set([
  // What the provider won (providers48-fills-on-record): read by `providers show | list` alone. A version before session
  // 48 that puts the provider back in a deploy's minutes (its auction step's fill, its admin's registration) drops it,
  // and the next fill starts new totals, whose `sinceMs` says when (the auctions keep every fill). Raising the schema
  // would cost every deploy's auction steps and any rollback.
  'fills',
  // Fills this version could not read, set aside when a fill started new totals: display only, as `fills`.
  'fillsSetAside',
]);

const everyProvider: ProviderRecord = {
  id: 'lp-1',
  capital: 1n,
  maxDiscountPpm: 1n,
  maxLot: 1n,
  maxLotBySymbol: { 'BTC-USD': 1n },
  symbols: ['ETH-USD', 'BTC-USD'],
  fills: {
    total: 1,
    recent: [
      {
        liquidationId: 'p:1',
        step: 0,
        symbol: 'ETH-USD',
        direction: 'SELL',
        size: 1n,
        price: 1n,
        cost: 1n,
        mark: 1n,
        edge: 0n,
        atMs: 1,
      },
    ],
    byMarket: { 'ETH-USD': { fills: 1, bought: 1n, paid: 1n, sold: 0n, received: 0n, edge: 0n } },
    sinceMs: 1,
  },
  fillsSetAside: [{ unreadable: 'adapter/missing-attribute: recent', stored: { M: {} } }],
  version: 2,
};

describe('writer schema: every attribute of a provider item is decided (writer-schema.ts, docs/DEPLOY.md)', () => {
  it('each attribute is of schema 1 or harmless to drop', () => {
    const undecided = Object.keys(providerItem(everyProvider)).filter(
      (name) => !PROVIDER_SCHEMA_1.has(name) && !PROVIDER_HARMLESS_TO_DROP.has(name),
    );
    expect(undecided).toEqual([]);
  });
});

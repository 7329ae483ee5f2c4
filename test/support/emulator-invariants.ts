import { type AttributeValue, ScanCommand } from '@aws-sdk/client-dynamodb';
import {
  type AwsAdapters,
  type AwsClients,
  createAwsQueueTransports,
  type ResourceNames,
} from '../../shared/adapters/aws/index.ts';
import { marketConfig, type RiskConfig } from '../../shared/domain/config.ts';
import { isLiquidatable } from '../../shared/domain/margin.ts';
import { isTerminal } from '../../shared/domain/model.ts';
import type { PriceE8, QuoteE6 } from '../../shared/domain/units.ts';
import {
  type AuctionRecord,
  type LiquidationRecord,
  type PositionRecord,
  silentTelemetry,
} from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';
import {
  type CountingVenue,
  checkAuctions,
  checkSettlement,
  checkVenueOrders,
  journalFlows,
  startedAuctionId,
} from './invariants.ts';

/**
 * The invariants of issue 7 read back from what a local stage stored on the emulator, through the AWS adapters
 * and the SDK (no write log, unlike invariants.ts for the embedded engine): every liquidation terminal and
 * listed, queues and DLQs empty, positions consistent with their liquidations, the fund's ledger reconciles, each
 * settlement re-derived from its fills, and the money conserved exactly. Scope: no ADL (a settlement that used
 * ADL is a violation here: its counterparties' payouts cannot be told from the stored records alone).
 */

/** Messages left (visible, in flight or delayed) in every queue of a stage, its DLQs and its tick queue. */
export async function queueDepths(
  clients: AwsClients,
  names: ResourceNames,
): Promise<Record<string, number>> {
  const transports = createAwsQueueTransports(clients, names);
  const all = [
    ...Object.entries(transports.queues),
    ...Object.entries(transports.deadLetters).map(([id, q]) => [`${id}Dlq`, q] as const),
    ['ticks', transports.tickQueue] as const,
  ];
  const depths: Record<string, number> = {};
  for (const [name, queue] of all) {
    if (!queue) continue;
    const d = await queue.depth();
    depths[name] = d.visible + d.inFlight + d.delayed;
  }
  return depths;
}

/** Items of the liquidations table that are liquidations (not tick-index items), by a full Scan. */
async function storedLiquidationIds(clients: AwsClients, table: string): Promise<Set<string>> {
  const ids = new Set<string>();
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await clients.dynamo.send(
      new ScanCommand({
        TableName: table,
        ProjectionExpression: 'id',
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of page.Items ?? []) {
      const id = item.id?.S;
      if (id && !id.startsWith('~')) ids.add(id);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return ids;
}

export interface StoredCheckInput {
  readonly adapters: AwsAdapters;
  readonly clients: AwsClients;
  readonly names: ResourceNames;
  readonly config: RiskConfig;
  /** The positions as seeded (collateral at creation). */
  readonly book: readonly PositionRecord[];
  /** Providers' capital as registered, by id. */
  readonly providerCapital: ReadonlyMap<string, QuoteE6>;
  /** Keys of every tick put on the bus (`${symbol}#${sequence}`). */
  readonly tickKeys: readonly string[];
  /** Mark of the last tick: no OPEN position may be liquidatable there. */
  readonly lastMark: PriceE8;
  /** The handlers' venue, when observed. */
  readonly venue?: CountingVenue;
}

export interface StoredReport {
  readonly violations: string[];
  readonly figures: {
    readonly liquidations: number;
    readonly byState: Record<string, number>;
    readonly positionsClosed: number;
    readonly positionsOpen: number;
    readonly queues: Record<string, number>;
    readonly journalEntries: number;
    readonly fundBalance: QuoteE6;
    readonly fundMin: QuoteE6;
    readonly auctions: number;
    readonly auctionFills: number;
    readonly venueOrders: number;
    readonly venueExecutions: number;
    readonly conservation: {
      traders: QuoteE6;
      fund: QuoteE6;
      venue: QuoteE6;
      providers: QuoteE6;
      badDebt: QuoteE6;
      error: QuoteE6;
    };
  };
}

/** Every liquidation the ticks started, and the slices their settlements started, read back by id. */
async function readLiquidations(input: StoredCheckInput): Promise<Map<string, LiquidationRecord>> {
  const found = new Map<string, LiquidationRecord>();
  for (const key of input.tickKeys)
    for (const l of await input.adapters.liquidations.listByTick(key)) found.set(l.id, l);
  const next = [...found.values()];
  while (next.length > 0) {
    const id = next.pop()!.context?.nextLiquidationId;
    if (!id || found.has(id)) continue;
    const l = await input.adapters.liquidations.get(id);
    if (l) {
      found.set(id, l);
      next.push(l);
    }
  }
  return found;
}

export async function checkStoredInvariants(input: StoredCheckInput): Promise<StoredReport> {
  const { adapters, config } = input;
  const violations: string[] = [];
  const fail = (message: string): void => {
    if (violations.length < 200) violations.push(message);
  };

  // --- liquidations: all listed, each terminal; queues and DLQs empty ----------------------------------------
  const liquidations = await readLiquidations(input);
  const stored = await storedLiquidationIds(input.clients, input.names.tables.liquidations);
  for (const id of stored)
    if (!liquidations.has(id)) fail(`lost: liquidation ${id} is stored but not listed`);
  const byState: Record<string, number> = {};
  for (const l of liquidations.values()) {
    byState[l.state] = (byState[l.state] ?? 0) + 1;
    if (!isTerminal(l.state)) fail(`unfinished: ${l.id} is ${l.state}`);
    if (l.context?.adlRound) fail(`unfinished: ${l.id} owes ADL round ${l.context.adlRound.round + 1}`);
    const terminalEvents = l.history.filter((e) => isTerminal(e.state)).length;
    if (isTerminal(l.state) && terminalEvents !== 1)
      fail(`settle: ${l.id} reached a terminal state ${terminalEvents} times`);
  }
  const queues = await queueDepths(input.clients, input.names);
  for (const [name, depth] of Object.entries(queues))
    if (depth !== 0) fail(`queue: ${depth} messages left in ${name}`);

  // --- the fund's ledger --------------------------------------------------------------------------------------
  const ledger = await reconcileAccount(adapters.ledger, INSURANCE_ACCOUNT, silentTelemetry);
  if (ledger.difference !== 0n) fail(`ledger: balance differs from its journal by ${ledger.difference}`);
  for (const problem of ledger.problems) fail(`ledger: ${problem}`);
  if (ledger.minBalance < 0n) fail(`ledger: the fund went to ${ledger.minBalance}, below zero`);
  const journal = await adapters.ledger.journal(INSURANCE_ACCOUNT);
  const flows = journalFlows(journal);
  for (const problem of flows.problems) fail(problem);
  for (const reference of flows.byReference.keys())
    if (!liquidations.has(reference)) fail(`ledger: a liquidation flow references ${reference}, unknown`);

  // --- settlements re-derived from their fills ----------------------------------------------------------------
  const auctions = new Map<string, AuctionRecord>();
  /** Payout of the settlement that closed each position. */
  const closingPayout = new Map<string, QuoteE6>();
  let traders = 0n;
  let venue = 0n;
  let providers = 0n;
  let badDebt = 0n;
  const seededById = new Map(input.book.map((p) => [p.id, p]));
  for (const [positionId, list] of byPosition(liquidations.values())) {
    // The position each liquidation started from: the seeded record, then what the previous slices left.
    const seeded = seededById.get(positionId);
    if (!seeded) {
      fail(`settle: ${list[0]!.id} liquidates ${positionId}, never seeded`);
      continue;
    }
    let before = {
      side: seeded.side,
      size: seeded.size,
      entryPrice: seeded.entryPrice,
      collateral: seeded.collateral,
    };
    for (const l of list) {
      if (!isTerminal(l.state) || l.state === 'CANCELLED') continue;
      const context = l.context;
      if (!context) {
        fail(`settle: ${l.id} is ${l.state} without a context`);
        break;
      }
      const frozen = context.settle?.position;
      if (frozen && (frozen.size !== before.size || frozen.collateral !== before.collateral))
        fail(
          `settle: ${l.id} froze ${frozen.size}/${frozen.collateral}, the slices before left ${before.size}/${before.collateral}`,
        );
      let auction: AuctionRecord | undefined;
      const auctionId = startedAuctionId(l);
      if (auctionId) {
        auction = await adapters.auctions.get(auctionId);
        if (auction) auctions.set(auction.id, auction);
        else fail(`settle: ${l.id}'s auction ${auctionId} is not stored`);
      }
      const checked = checkSettlement(l, context, before, auction, config);
      for (const problem of checked.problems) fail(problem);
      const { close, recorded, planned } = checked;
      if (close.adlSize !== 0n || recorded.covered !== 0n)
        fail(`settle: ${l.id} used ADL, outside this check's scope`);
      const f = flows.byReference.get(l.id) ?? { fee: 0n, paid: 0n };
      if (f.fee !== recorded.fee || f.paid !== recorded.paid)
        fail(
          `settle: ${l.id} journal fee/paid ${f.fee}/${f.paid}, settlement ${recorded.fee}/${recorded.paid}`,
        );
      traders += close.payout - before.collateral;
      venue += close.toVenue;
      providers += close.toProviders;
      badDebt += recorded.badDebt;
      if (planned === before.size) {
        if (closingPayout.has(positionId)) fail(`settle: position ${positionId} closed twice (${l.id})`);
        closingPayout.set(positionId, close.payout);
      }
      before = { ...before, size: before.size - planned, collateral: close.payout };
    }
  }

  // --- positions: CLOSED exactly when a settlement closed them, never left LIQUIDATING -------------------------
  const maintenance = (symbol: string) => marketConfig(config, symbol).maintenanceMargin;
  let tradersGlobal = 0n;
  let positionsClosed = 0;
  for (const seeded of input.book) {
    const now = await adapters.positions.get(seeded.id);
    if (!now) {
      fail(`lost: position ${seeded.id} is not stored`);
      continue;
    }
    const payout = closingPayout.get(seeded.id);
    if (now.state === 'CLOSED') {
      positionsClosed += 1;
      if (payout === undefined) fail(`lost: position ${seeded.id} is CLOSED without a settlement`);
      tradersGlobal += (payout ?? 0n) - seeded.collateral;
      continue;
    }
    if (payout !== undefined)
      fail(`settle: position ${seeded.id} is ${now.state} after its closing settlement`);
    if (now.state !== 'OPEN') fail(`stuck: position ${seeded.id} is ${now.state}`);
    else if (isLiquidatable(now, input.lastMark, maintenance(now.symbol)))
      fail(`health: OPEN position ${seeded.id} (v${now.version}) is liquidatable at the last mark`);
    tradersGlobal += now.collateral - seeded.collateral;
  }
  if (tradersGlobal !== traders)
    fail(`traders: positions now hold ${tradersGlobal} more than at creation, settlements say ${traders}`);

  // --- providers: capital consumed = the cost of the auction fills ----------------------------------------------
  let capitalUsed = 0n;
  for (const [id, capital] of input.providerCapital) {
    const now = await adapters.providers.get(id);
    capitalUsed += capital - (now?.capital ?? capital);
  }
  const auctionCheck = checkAuctions(auctions.values());
  for (const problem of auctionCheck.problems) fail(problem);
  if (capitalUsed !== auctionCheck.cost)
    fail(`providers: capital used ${capitalUsed}, auction fills cost ${auctionCheck.cost}`);

  // --- venue: one execution per client order id, fills recorded as executed -----------------------------------
  const venueCheck = input.venue ? checkVenueOrders(input.venue, [...liquidations.values()]) : undefined;
  for (const problem of venueCheck?.problems ?? []) fail(problem);

  const error = traders + flows.fundFlow + venue + providers - badDebt;
  if (error !== 0n) fail(`conservation: flows sum to ${error}, not 0`);
  const fund = await adapters.ledger.balance(INSURANCE_ACCOUNT);
  return {
    violations,
    figures: {
      liquidations: liquidations.size,
      byState,
      positionsClosed,
      positionsOpen: input.book.length - positionsClosed,
      queues,
      journalEntries: journal.length,
      fundBalance: fund.balance,
      fundMin: ledger.minBalance,
      auctions: auctions.size,
      auctionFills: auctionCheck.fills,
      venueOrders: input.venue?.orders.size ?? 0,
      venueExecutions: venueCheck?.executions ?? 0,
      conservation: { traders, fund: flows.fundFlow, venue, providers, badDebt, error },
    },
  };
}

/** Liquidations grouped by position, in the order of the position versions they started from. */
function byPosition(liquidations: Iterable<LiquidationRecord>): Map<string, LiquidationRecord[]> {
  const groups = new Map<string, LiquidationRecord[]>();
  for (const l of liquidations) groups.set(l.positionId, [...(groups.get(l.positionId) ?? []), l]);
  const version = (l: LiquidationRecord) => Number(l.id.slice(l.id.lastIndexOf(':') + 1));
  for (const list of groups.values()) list.sort((a, b) => version(a) - version(b));
  return groups;
}

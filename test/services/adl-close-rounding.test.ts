import { describe, expect, it } from 'vitest';
import { pnlE16 } from '../../shared/domain/accounting.ts';
import { marginE16 } from '../../shared/domain/margin.ts';
import { NOTIONAL_TO_QUOTE, parseQuote } from '../../shared/domain/units.ts';
import {
  InjectedCrash,
  type Ledger,
  type LiquidationRecord,
  type PositionRecord,
} from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { processLiquidation } from '../../shared/services/liquidation.ts';
import { withLiquidationPrice } from '../../shared/services/margin-check.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/** The book's spread wide enough that the long's market order fills nothing; no provider bids: ADL closes it. */
const WIDE_BOOK = { venue: { defaults: { baseHalfSpreadPpm: 60_000, maxHalfSpreadPpm: 60_000 } } };

/**
 * A long bankrupt at 175 by exactly 5 USD with an empty fund, which ADL closes at the mark against three shorts:
 * each short's close realizes its profit floored (8.333333, 8.333333 and 8.333333 USD), leaving 0.2533, 0.2533 and
 * 0.5033 of a micro-dollar (1.01 in all) that none of them keeps. `over`: the first short carries that much of a
 * slice's sub-unit (Position.collateralOverE16, E16), which its close rounds too.
 */
async function bankruptAgainstThreeShorts(p: Pipeline, over = 0n) {
  await p.tick('ETH-USD', '200');
  const long = await p.open('LONG', '1', '200', '20');
  const shorts = [
    await p.open('SHORT', '0.33333333', '200.00000001', '100'),
    await p.open('SHORT', '0.33333333', '200.00000001', '100'),
    await p.open('SHORT', '0.33333334', '200.00000001', '100'),
  ];
  if (over > 0n) {
    const first = shorts[0]!;
    shorts[0] = withLiquidationPrice(
      { ...first, collateralOverE16: over, version: first.version + 1 },
      p.config,
    );
    await p.adapters.positions.replace(shorts[0], first.version);
  }
  await p.tick('ETH-USD', '175');
  await p.drain();
  const [liquidation] = p.adapters.liquidations.all().filter((l) => l.positionId === long.id);
  return { long, shorts, liquidation: liquidation! };
}

/** `ledger` with its `apply` replaced (an older version's movement, say); every read goes to it. */
const applyingWith = (ledger: Ledger, apply: Ledger['apply']): Ledger => ({
  balance: (account) => ledger.balance(account),
  journal: (account) => ledger.journal(account),
  journalAfter: (account, after, limit) => ledger.journalAfter(account, after, limit),
  latestEntries: (account, limit) => ledger.latestEntries(account, limit),
  unindexedEntries: (account, maxRead) => ledger.unindexedEntries(account, maxRead),
  auditCheckpoint: (account) => ledger.auditCheckpoint(account),
  saveAuditCheckpoint: (account, audit, restart) => ledger.saveAuditCheckpoint(account, audit, restart),
  entriesOf: (account, reference) => ledger.entriesOf(account, reference),
  apply,
});

describe("ADL closes' rounding goes to the fund (adl-close-rounding)", () => {
  it('three counterparties each leaving a sub-unit: their whole unit lowers the deficit they cover', async () => {
    const p = createPipeline(WIDE_BOOK);
    const { long, shorts, liquidation } = await bankruptAgainstThreeShorts(p);
    const s = liquidation.settlement!;
    expect(liquidation.state).toBe('SETTLED_ADL');
    expect(s.adlClosedSize).toBe(long.size);
    // The long's loss beyond its collateral is exactly 5 USD; the counterparties' rounding paid a micro-dollar of it.
    expect(s.shortfall).toBe(parseQuote('4.999999'));
    expect(s.insurancePaid).toBe(0n);
    expect(s.adlCovered).toBe(parseQuote('4.999999'));
    expect(s.badDebt).toBe(0n);
    // What the shorts gave up at the mark, exactly: the long's 5 USD (4.999999 covered, the unit their closes
    // rounded away lowering the deficit) and 0.01 of a micro-dollar, the rounding's sub-unit left.
    let gave16 = 0n;
    for (const before of shorts) {
      const after = (await p.adapters.positions.get(before.id))!;
      const equity = (x: PositionRecord) =>
        x.state === 'CLOSED'
          ? (x.closedPayout ?? 0n) * NOTIONAL_TO_QUOTE
          : marginE16(x) + pnlE16(x.side, x.size, x.entryPrice, 17_500_000_000n);
      gave16 += equity(before) - equity(after);
    }
    expect(gave16 - parseQuote('5') * NOTIONAL_TO_QUOTE).toBe(100_000_000n);
    expect((await p.check()).violations).toEqual([]);
  });

  it("counts a counterparty's sub-unit over as its close rounds it: 0.91 of a unit in all, none to the fund", async () => {
    // The delivery that froze the plan dies: the next one applies it from the counterparties it froze.
    let frozen = false;
    const p: Pipeline = createPipeline({
      ...WIDE_BOOK,
      crashHook: (point) => {
        if (frozen || point !== 'transactor.commit') return;
        if (p.adapters.liquidations.all().some((l) => l.state === 'SETTLING')) {
          frozen = true;
          throw new InjectedCrash(point);
        }
      },
    });
    // The first short's exact margin is 0.1 of a micro-dollar under its collateral: its close leaves 0.1533.
    const { liquidation } = await bankruptAgainstThreeShorts(p, 1_000_000_000n);
    expect(frozen).toBe(true);
    expect(liquidation.history.map((h) => h.note ?? '')).not.toContain('planning again');
    expect(liquidation.settlement?.shortfall).toBe(parseQuote('5'));
    expect(liquidation.settlement?.adlCovered).toBe(parseQuote('5'));
    expect((await p.check()).violations).toEqual([]);
  });

  /**
   * The frozen plan as a version before adl-close-rounding stored it: its counterparties without their sub-units
   * (collateralUnderE16), and without the field this version's plans carry (adlTraderRounding).
   */
  async function asFrozenByOlderVersion(p: Pipeline, id: string): Promise<void> {
    const frozen = (await p.adapters.liquidations.get(id))!;
    const settle = frozen.context!.settle!;
    const { adlTraderRounding: _, ...older } = settle;
    const candidates = (settle.candidates ?? []).map(({ collateralUnderE16: _under, ...c }) => c);
    const record: LiquidationRecord = {
      ...frozen,
      version: frozen.version + 1,
      context: { ...frozen.context!, settle: { ...older, candidates } },
    };
    await p.adapters.liquidations.replace(record, frozen.version);
  }

  it('review42-adl-older-plan: a plan an older version froze credits no unit its counterparties did not give', async () => {
    // The first short carries 0.1 of a unit over: its close rounds 0.1533 away, 0.91 in all. The older version's
    // frozen candidate does not say so: applied as frozen, this version counted 1.01 and credited the fund a unit.
    let frozen = false;
    const p: Pipeline = createPipeline({
      ...WIDE_BOOK,
      crashHook: (point) => {
        if (frozen || point !== 'transactor.commit') return;
        if (p.adapters.liquidations.all().some((l) => l.state === 'SETTLING')) {
          frozen = true;
          throw new InjectedCrash(point);
        }
      },
    });
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '1', '200', '20');
    const first = await p.open('SHORT', '0.33333333', '200.00000001', '100');
    await p.open('SHORT', '0.33333333', '200.00000001', '100');
    await p.open('SHORT', '0.33333334', '200.00000001', '100');
    await p.adapters.positions.replace(
      withLiquidationPrice(
        { ...first, collateralOverE16: 1_000_000_000n, version: first.version + 1 },
        p.config,
      ),
      first.version,
    );
    await p.tick('ETH-USD', '175');
    const [queued] = p.adapters.liquidations.all();
    await expect(processLiquidation({ liquidationId: queued!.id }, p.deps)).rejects.toBeInstanceOf(
      InjectedCrash,
    );
    expect(frozen).toBe(true);
    await asFrozenByOlderVersion(p, queued!.id);
    await p.drain();
    const settled = (await p.adapters.liquidations.get(queued!.id))!;
    expect(settled.state).toBe('SETTLED_ADL');
    expect((await p.check()).violations).toEqual([]);
    expect(settled.settlement?.shortfall).toBe(parseQuote('5'));
    expect(settled.settlement?.adlCovered).toBe(parseQuote('5'));
    expect(settled.history.map((h) => h.note ?? '')).toContain('planning again');
  });

  it('review42-adl-older-plan: a fund payment an older version applied is not met with another amount under its key', async () => {
    // The fund pays the shortfall: the older version's plan drew 5.00 under the settlement's key and its delivery
    // died before the commit. Applied as frozen by this version, the plan drew 4.999999 under the same key.
    const p = createPipeline(WIDE_BOOK);
    await p.fund('1000');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '1', '200', '20');
    await p.open('SHORT', '0.33333333', '200.00000001', '100');
    await p.open('SHORT', '0.33333333', '200.00000001', '100');
    await p.open('SHORT', '0.33333334', '200.00000001', '100');
    await p.tick('ETH-USD', '175');
    const [queued] = p.adapters.liquidations.all();
    const id = queued!.id;
    const ledger = p.deps.ledger;
    // The older version's plan: the same draw without the counterparties' unit; then its delivery dies.
    const older = applyingWith(ledger, async (movement, known) => {
      expect(movement.idempotencyKey).toBe(`${id}:shortfall`);
      expect(movement.amount).toBe(-parseQuote('4.999999'));
      await ledger.apply({ ...movement, amount: -parseQuote('5') }, known);
      throw new InjectedCrash('ledger.apply');
    });
    await expect(
      processLiquidation({ liquidationId: id }, { ...p.deps, ledger: older }),
    ).rejects.toBeInstanceOf(InjectedCrash);
    await asFrozenByOlderVersion(p, id);
    // Within the plan's 30 s: it is not stale.
    await processLiquidation({ liquidationId: id }, p.deps);
    await p.drain();
    const settled = (await p.adapters.liquidations.get(id))!;
    expect(settled.state).toBe('SETTLED_ADL');
    expect(settled.settlement?.shortfall).toBe(parseQuote('4.999999'));
    expect(settled.settlement?.insurancePaid).toBe(parseQuote('4.999999'));
    const entries = await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, id);
    expect(entries.reduce((t, e) => t + e.amount, 0n)).toBe(-parseQuote('4.999999'));
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
  });
});

describe("the trader's own close's rounding joins ADL's (adl-trader-rounding)", () => {
  /**
   * A long of 1 ETH entered at 200.00000001 with 27 USD, liquidatable and solvent at 175, which ADL closes whole at
   * the mark against adl-close-rounding's three shorts. Its exact equity there is 1.99999999 USD: its close keeps
   * 1.999999 and rounds 0.99 of a micro-dollar away; the shorts' closes round 1.01 away. 2.00 in all: two units.
   */
  async function solventAgainstThreeShorts(p: Pipeline) {
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '1', '200.00000001', '27');
    const shorts = [
      await p.open('SHORT', '0.33333333', '200.00000001', '100'),
      await p.open('SHORT', '0.33333333', '200.00000001', '100'),
      await p.open('SHORT', '0.33333334', '200.00000001', '100'),
    ];
    await p.tick('ETH-USD', '175');
    return { long, shorts };
  }

  it("a solvent trader's sub-unit and the counterparties' make two units for the fund; the payout is its own", async () => {
    const p = createPipeline(WIDE_BOOK);
    const { long, shorts } = await solventAgainstThreeShorts(p);
    await p.drain();
    const [liquidation] = p.adapters.liquidations.all().filter((l) => l.positionId === long.id);
    const s = liquidation!.settlement!;
    expect(liquidation!.state).toBe('SETTLED_ADL');
    expect([s.adlClosedSize, s.carriedSize, s.shortfall]).toEqual([long.size, 0n, 0n]);
    // The fee due is 1.75 USD; the fund gets both units with it (before: 1.750001, the trader's 0.99 to nobody).
    expect(s.fee).toBe(parseQuote('1.750002'));
    // The trader is paid its own close floored: 27 - 25.00000001 - 1.75 = 0.24999999.
    expect(s.traderPayout).toBe(parseQuote('0.249999'));
    // What the shorts and the trader gave at the mark, exactly, is what the fund got beyond the fee due: 2.00.
    const mark = 17_500_000_000n;
    let gave16 = 0n;
    for (const before of shorts) {
      const after = (await p.adapters.positions.get(before.id))!;
      const equity = (x: PositionRecord) =>
        x.state === 'CLOSED'
          ? (x.closedPayout ?? 0n) * NOTIONAL_TO_QUOTE
          : marginE16(x) + pnlE16(x.side, x.size, x.entryPrice, mark);
      gave16 += equity(before) - equity(after);
    }
    gave16 += marginE16(long) + pnlE16(long.side, long.size, long.entryPrice, mark);
    gave16 -= (s.traderPayout + parseQuote('1.75')) * NOTIONAL_TO_QUOTE;
    expect(gave16).toBe(2n * NOTIONAL_TO_QUOTE);
    expect((await p.check()).violations).toEqual([]);
  });

  it('adl-trader-rounding: a plan adl-close-rounding froze is planned again, not met with another fee under its key', async () => {
    // That version's plan credits the shorts' unit, not the trader's: it applied a fee of 1.750001 and its delivery
    // died. Applied as frozen by this version, the plan credited 1.750002 under the same key.
    const p = createPipeline(WIDE_BOOK);
    await solventAgainstThreeShorts(p);
    const [queued] = p.adapters.liquidations.all();
    const id = queued!.id;
    const ledger = p.deps.ledger;
    const older = applyingWith(ledger, async (movement, known) => {
      expect(movement.idempotencyKey).toBe(`${id}:fee`);
      expect(movement.amount).toBe(parseQuote('1.750002'));
      await ledger.apply({ ...movement, amount: parseQuote('1.750001') }, known);
      throw new InjectedCrash('ledger.apply');
    });
    await expect(
      processLiquidation({ liquidationId: id }, { ...p.deps, ledger: older }),
    ).rejects.toBeInstanceOf(InjectedCrash);
    // As that version stored it: its flag, not this version's; its candidates with their sub-units.
    const frozen = (await p.adapters.liquidations.get(id))!;
    const { adlTraderRounding: _, ...settle } = frozen.context!.settle!;
    expect(settle.candidates?.length).toBe(3);
    await p.adapters.liquidations.replace(
      {
        ...frozen,
        version: frozen.version + 1,
        context: { ...frozen.context!, settle: { ...settle, adlCloseRounding: true } },
      },
      frozen.version,
    );
    // Within the plan's 30 s: it is not stale.
    await processLiquidation({ liquidationId: id }, p.deps);
    await p.drain();
    const settled = (await p.adapters.liquidations.get(id))!;
    expect(settled.state).toBe('SETTLED_ADL');
    expect(settled.history.map((h) => h.note ?? '')).toContain('planning again');
    expect(settled.settlement?.fee).toBe(parseQuote('1.750002'));
    const entries = await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, id);
    expect(entries.map((e) => [e.idempotencyKey, e.amount])).toEqual([
      [`${id}:fee`, parseQuote('1.750001')],
      [`${id}:fee:r1`, 1n],
    ]);
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
  });
});

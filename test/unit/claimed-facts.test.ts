import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { itemBytes } from '../../shared/adapters/aws/item-size.ts';
import { liquidationItem, withWriter } from '../../shared/adapters/aws/record-items.ts';
import { riskConfigDigest } from '../../shared/config-digest.ts';
import {
  type ClaimedFacts,
  decodeClaimedFacts,
  encodeClaimedFacts,
} from '../../shared/domain/claimed-facts.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { parseBase, parsePrice, parseQuote, ppm } from '../../shared/domain/units.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';
import { encodeContext, parseContext } from '../../shared/schemas/context.ts';
import { createPipeline } from '../support/pipeline.ts';

/** What the claim records for `liquidations show` (review51-support-claimed-size). */
describe('the claimed facts as the context stores them', () => {
  const full: ClaimedFacts = {
    position: {
      size: parseBase('3000.12345678'),
      entryPrice: parsePrice('2345.12345678'),
      collateral: -parseQuote('1234.567891'),
      collateralOverE16: 9_999_999_999n,
    },
    sizing: 'sizing/restore-initial-margin',
    markTick: { sequence: 1_234_567, indexPrice: parsePrice('2301.5') },
    maintenanceMargin: ppm('0.025'),
    initialMargin: ppm('0.05'),
    liquidationFee: ppm('0.01'),
    slippageBound: ppm('0.03'),
    configDigest: '3f1c0a9b7d2e',
  };

  it('reads back as written, every field and without the optional ones', () => {
    expect(decodeClaimedFacts(encodeClaimedFacts(full))).toEqual(full);
    const bare: ClaimedFacts = {
      position: { size: 1n, entryPrice: 2n, collateral: 0n },
      maintenanceMargin: 0n,
      initialMargin: 1n,
      liquidationFee: 2n,
      slippageBound: 999_999n,
    };
    expect(decodeClaimedFacts(encodeClaimedFacts(bare))).toEqual(bare);
    expect(decodeClaimedFacts(encodeClaimedFacts({ ...bare, markTick: { sequence: 0 } }))).toEqual({
      ...bare,
      markTick: { sequence: 0 },
    });
  });

  it("passes a later version's pair over; anything else that does not read is no facts, never an error", () => {
    expect(decodeClaimedFacts(`${encodeClaimedFacts(full)} feed=binance`)).toEqual(full);
    const text = encodeClaimedFacts(full);
    for (const stored of [
      undefined,
      42,
      // The object this commit first stored (claimed before its review).
      { position: full.position, maintenanceMargin: 25_000n },
      '',
      text.replace(/ mm=\d+/, ''),
      text.replace('size=', 'size=1.5'),
      text.replace('restore-initial-margin', 'half'),
      text.replace(/tick=\d+/, 'tick=x'),
      text.replace(' ', '  '),
      `${text} loose`,
      // The configuration's digest is hex (facts52-claim-config-digest).
      text.replace('config=3f1c0a9b7d2e', 'config=3F1C0A9B7D2E'),
      text.replace('config=3f1c0a9b7d2e', 'config='),
      text.replace('config=3f1c0a9b7d2e', `config=${'a'.repeat(65)}`),
    ])
      expect(decodeClaimedFacts(stored)).toBeUndefined();
  });

  it("read a claim's facts from before session 52 as they were: the configuration's digest absent, unknown", () => {
    // As session 51 wrote them, word for word: no `config` pair.
    const old =
      'size=1000000000 entry=20000000000 collateral=200000000 sizing=dust-remainder tick=3 mm=25000 im=50000 fee=10000 slip=30000';
    const decoded = decodeClaimedFacts(old);
    expect(decoded).toEqual({
      position: { size: parseBase('10'), entryPrice: parsePrice('200'), collateral: parseQuote('200') },
      sizing: 'sizing/dust-remainder',
      markTick: { sequence: 3 },
      maintenanceMargin: ppm('0.025'),
      initialMargin: ppm('0.05'),
      liquidationFee: ppm('0.01'),
      slippageBound: ppm('0.03'),
    });
    expect(decoded).not.toHaveProperty('configDigest');
    // The same with it: the digest, and nothing else changed.
    expect(decodeClaimedFacts(`${old} config=3f1c0a9b7d2e`)).toEqual({
      ...decoded,
      configDigest: '3f1c0a9b7d2e',
    });
  });

  it('a version that does not know them carries them as they are: the context round-trips them unchanged', () => {
    const context = { plannedSize: 1n, executionMark: 2n, claimed: encodeClaimedFacts(full) };
    const text = encodeContext(context);
    expect(parseContext(text)).toEqual(context);
    expect(encodeContext(parseContext(text))).toBe(text);
  });

  it("keep a market-settled liquidation's item within one write unit at every write: about 155 bytes, its digest's start", async () => {
    // The crash replay's shape: a long settled whole on the market. Stored as an object, the facts took its item
    // from 818 to 1,075 bytes (two write units a write instead of one, on every write after the claim). Its
    // configuration's digest whole (64 characters, 207 bytes here) took the settled put, with its writer, from 950 to
    // 1,022 bytes, past 1 KB once its tick is a feed's (millions), not 3; its start, to 970 (facts52-claim-config-digest).
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '184');
    await p.drain();
    const [l] = p.adapters.liquidations.all();
    expect(l?.state).toBe('SETTLED_MARKET');
    const { claimed, ...without } = l!.context!;
    const added = itemBytes(liquidationItem(l!)) - itemBytes(liquidationItem({ ...l!, context: without }));
    expect(added).toBeGreaterThan(0);
    expect(added).toBeLessThanOrEqual(160);
    // Every write of it, as a put alone writes it (with its writer's token), fits the 1 KB a write unit covers.
    const written = p.observer.groups.flatMap((g) =>
      g.writes.flatMap((w) => (w.kind === 'liquidation' ? [w.after as LiquidationRecord] : [])),
    );
    expect(written.map((w) => w.state)).toContain('EXECUTING');
    for (const w of written)
      expect(itemBytes(withWriter(liquidationItem(w), randomUUID()))).toBeLessThanOrEqual(1024);
    expect(decodeClaimedFacts(claimed)).toMatchObject({
      position: { size: parseBase('10'), entryPrice: parsePrice('200'), collateral: parseQuote('200') },
      sizing: 'sizing/dust-remainder',
      // The start of the digest of the configuration the claim applied: the pipeline's own (its marks held).
      configDigest: riskConfigDigest(p.config).slice(0, 12),
    });
    expect(riskConfigDigest(p.config)).not.toBe(riskConfigDigest(DEFAULT_RISK_CONFIG));
  });
});

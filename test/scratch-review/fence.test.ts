import { describe, expect, it } from 'vitest';
import { parseBase } from '../../shared/domain/units.ts';
import type { Ledger, PositionRecord } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { processLiquidation } from '../../shared/services/liquidation.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

async function gappedLongAgainstShort() {
  const p = createPipeline();
  await p.tick('ETH-USD', '200', { sequence: 1 });
  await p.fund('100000');
  await p.open('LONG', '10', '200', '200');
  const short = await p.open('SHORT', '10', '200', '2000');
  p.venue.faults.emptyBooks.add('ETH-USD');
  await p.tick('ETH-USD', '175', { sequence: 2 });
  const [liquidation] = p.adapters.liquidations.all();
  return { p, id: liquidation!.id, short };
}
async function changePosition(p: Pipeline, id: string, change: Partial<PositionRecord>) {
  const stored = (await p.adapters.positions.get(id))!;
  await p.adapters.positions.replace({ ...stored, ...change, version: stored.version + 1 }, stored.version);
}

describe('scratch', () => {
  for (const size of ['9', '8', '5']) {
    it(`stale first movement held; twin re-plans with nothing applied (short ${size})`, async () => {
      const { p, id, short } = await gappedLongAgainstShort();
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let reached!: () => void;
      const atLedger = new Promise<void>((r) => (reached = r));
      const ledger = p.deps.ledger;
      let held = false;
      const seen: string[] = [];
      const slow: Ledger = {
        balance: (a) => ledger.balance(a),
        journal: (a) => ledger.journal(a),
        entriesOf: (a, r) => ledger.entriesOf(a, r),
        apply: async (m, known) => {
          seen.push(`${m.idempotencyKey}=${m.amount}@${m.fence?.version}`);
          if (!held) {
            held = true;
            reached();
            await released;
          }
          return ledger.apply(m, known);
        },
      };
      const first = processLiquidation({ liquidationId: id }, { ...p.deps, ledger: slow });
      await atLedger;
      await changePosition(p, short.id, { size: parseBase(size) });
      await processLiquidation({ liquidationId: id }, p.deps);
      const journal = await p.adapters.ledger.entriesOf(INSURANCE_ACCOUNT, id);
      console.log(
        'twin journal',
        journal.map((e) => `${e.idempotencyKey}=${e.amount}`),
      );
      release();
      const r = await first.then(
        (x) => x,
        (e) => e,
      );
      console.log('stale seen', seen, 'outcome', r instanceof Error ? `${r.name}: ${r.message}` : r);
      expect(r instanceof Error ? r.name : 'ok').toBe('ok');
    });
  }
});

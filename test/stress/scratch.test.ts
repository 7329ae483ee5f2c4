import { describe, expect, it } from 'vitest';
import { createPipeline } from '../support/pipeline.ts';

describe('scratch', () => {
  it('market', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.open('LONG', '400', '200', '4000');
    await p.tick('ETH-USD', '184');
    await p.drain();
    const r = await p.check();
    console.log(JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 1));
    expect(r.violations).toEqual([]);
  });
  it('adl', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.open('SHORT', '5', '200', '400');
    await p.open('SHORT', '3', '200', '100');
    await p.open('SHORT', '1', '200', '100');
    await p.tick('ETH-USD', '175');
    await p.drain();
    const r = await p.check();
    console.log(JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 1));
    console.log(p.adapters.liquidations.all().map(l=>[l.state, l.settlement]));
    expect(r.violations).toEqual([]);
  });
  it('auction', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.provider('lp-1', '100000', '0.02', '100');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    await p.drain();
    const r = await p.check();
    console.log(JSON.stringify(r.figures, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
    expect(r.violations).toEqual([]);
  });
});

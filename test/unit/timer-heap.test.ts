import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Timer, TimerHeap } from '../../shared/adapters/embedded/heap.ts';

describe('TimerHeap', () => {
  it('pops timers earliest (at, seq) first, whatever the order they were pushed in', () => {
    // Ops: push a timer at a time (in order, out of order, ties) or pop; compared with a sorted list.
    const op = fc.oneof(fc.record({ push: fc.integer({ min: 0, max: 50 }) }), fc.constant({ pop: true }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const heap = new TimerHeap<number>();
        const model: Timer<number>[] = [];
        let seq = 0;
        for (const o of ops) {
          if ('push' in o) {
            seq += 1;
            const timer = { at: o.push, seq, value: seq };
            heap.push(timer);
            model.push(timer);
            model.sort((a, b) => a.at - b.at || a.seq - b.seq);
          } else {
            expect(heap.peek()).toBe(model[0]);
            expect(heap.pop()).toBe(model.shift());
          }
          expect(heap.size).toBe(model.length);
        }
        while (model.length > 0) expect(heap.pop()).toBe(model.shift());
        expect(heap.pop()).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('keeps order across a long run of timers pushed in time order', () => {
    const heap = new TimerHeap<number>();
    for (let i = 0; i < 10_000; i++) heap.push({ at: i, seq: i, value: i });
    heap.push({ at: 5, seq: 10_000, value: -1 }); // one out of order goes to the heap
    const popped: number[] = [];
    for (let t = heap.pop(); t; t = heap.pop()) popped.push(t.at);
    expect(popped).toHaveLength(10_001);
    expect(popped).toEqual([...popped].sort((a, b) => a - b));
  });
});

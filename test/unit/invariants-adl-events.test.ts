import { describe, expect, it } from 'vitest';
import { MAX_ADL_EVENTS_KEPT, recordAdlEvent, withAdlEvent } from '../../shared/domain/adl.ts';
import type { AdlEvent, AdlEvents, UnreadableAdlEvents } from '../../shared/domain/model.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import type { PositionRecord } from '../../shared/ports/index.ts';
import { adlEventProblems } from '../support/invariants.ts';
import { position } from '../support/records.ts';

/**
 * The invariant checker's oracle for a counterparty's ADL events (invariants48-adl-events-kept): before, it checked
 * the count and the last event only, so a write that dropped or changed an older kept event, or lost a set-aside
 * list, passed every simulation and fuzz run.
 */

const event = (n: number, over: Partial<AdlEvent> = {}): AdlEvent => ({
  liquidationId: `long-${n}:1`,
  round: 0,
  size: base('0.5'),
  price: price('1812.34'),
  mark: price('1800'),
  given: usd('6.17'),
  haircut: 0n,
  atMs: 1_584_050_040_000 + n,
  ...over,
});

const withEvents = (n: number): PositionRecord => {
  let events: AdlEvents | undefined;
  for (let i = 1; i <= n; i++) events = withAdlEvent(events, event(i));
  return position({ id: 'short-1', ...(events ? { adlEvents: events } : {}) });
};

const next = event(99);
const expected = { liquidationId: next.liquidationId, round: 0, size: next.size, given: next.given };
const recorded = (was: PositionRecord): PositionRecord => ({ ...was, ...recordAdlEvent(was, next) });

describe('invariants: ADL events on a counterparty write', () => {
  it.each([0, 2, MAX_ADL_EVENTS_KEPT - 1, MAX_ADL_EVENTS_KEPT, MAX_ADL_EVENTS_KEPT + 3])(
    'passes the event recorded after %i others',
    (n) => {
      const was = withEvents(n);
      expect(adlEventProblems(was, recorded(was), expected)).toEqual([]);
    },
  );

  it('flags an older event dropped short of the cap', () => {
    const was = withEvents(3);
    const after = recorded(was);
    const events = after.adlEvents as AdlEvents;
    const dropped = { ...after, adlEvents: { ...events, recent: events.recent.slice(1) } };
    expect(adlEventProblems(was, dropped, expected)).toEqual([
      expect.stringMatching(/^adl events: short-1 kept [\s\S]* of /),
    ]);
  });

  it('flags an older event changed', () => {
    const was = withEvents(MAX_ADL_EVENTS_KEPT);
    const events = recorded(was).adlEvents as AdlEvents;
    const changed = {
      ...was,
      adlEvents: { ...events, recent: [{ ...events.recent[0]!, given: 0n }, ...events.recent.slice(1)] },
    };
    expect(adlEventProblems(was, changed, expected)).toHaveLength(1);
  });

  it('flags a set-aside list lost, and an unreadable list not set aside', () => {
    const unreadable: UnreadableAdlEvents = { unreadable: 'not a list', stored: { S: 'x' } };
    const keptAside = position({ id: 'short-1', adlEventsSetAside: [unreadable] });
    const lost = { ...recorded(keptAside), adlEventsSetAside: undefined };
    expect(adlEventProblems(keptAside, recorded(keptAside), expected)).toEqual([]);
    expect(adlEventProblems(keptAside, lost, expected)).toEqual([
      expect.stringMatching(/^adl events: short-1 set aside undefined/),
    ]);

    const unread = position({ id: 'short-1', adlEvents: unreadable });
    expect(adlEventProblems(unread, recorded(unread), expected)).toEqual([]);
    const notAside = { ...recorded(unread), adlEventsSetAside: undefined };
    expect(adlEventProblems(unread, notAside, expected)).toHaveLength(1);
  });

  it('still flags a wrong count and a wrong last event', () => {
    const was = withEvents(2);
    const after = recorded(was);
    const events = after.adlEvents as AdlEvents;
    expect(adlEventProblems(was, { ...after, adlEvents: { ...events, total: 9 } }, expected)).toHaveLength(1);
    expect(adlEventProblems(was, after, { ...expected, given: 1n })).toEqual([
      expect.stringMatching(/last event/),
    ]);
  });
});

import { expect, it } from 'vitest';
import { counted, iso, spokenList } from '../../shared/domain/words.ts';

it('says a count with its noun, in the singular for one (dlq48-counted)', () => {
  expect(counted(1, 'message', 'messages')).toBe('1 message');
  expect(counted(0, 'message', 'messages')).toBe('0 messages');
  expect(counted(2, 'liquidation is', 'liquidations are')).toBe('2 liquidations are');
  expect(counted(12345, 'entry', 'entries')).toBe('12345 entries'); // not grouped: entriesWord's
});

it('says a time as ISO 8601 in UTC, to the millisecond', () => {
  expect(iso(Date.UTC(2020, 2, 12, 9, 5, 7, 42))).toBe('2020-03-12T09:05:07.042Z');
  expect(iso(0)).toBe('1970-01-01T00:00:00.000Z');
});

it('lists items as a sentence does: the last after "and"', () => {
  expect(spokenList([])).toBe('');
  expect(spokenList(['deposit'])).toBe('deposit');
  expect(spokenList(['deposit', 'withdraw'])).toBe('deposit and withdraw');
  expect(spokenList(['list', 'redrive', 'discard'])).toBe('list, redrive and discard');
});

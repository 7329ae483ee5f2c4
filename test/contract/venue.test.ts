import { ManualClock } from '../../shared/adapters/embedded/clock.ts';
import { EmbeddedMarketRepository } from '../../shared/adapters/embedded/markets.ts';
import { MarkFollowingVenue } from '../../shared/adapters/venue/mark-following.ts';
import { SimulatedVenue, type VenueFault } from '../../shared/adapters/venue/simulated.ts';
import { base, price } from '../../shared/domain/units.ts';
import { type ExchangeFault, type VenueHarness, venueContractSuite } from './venue-suite.ts';

/** The venue contract (venue-suite.ts) run against both simulated venues. */

const SYMBOL = 'ETH-USD';
const MARK = price('2000');
const START_MS = 1_700_000_000_000;

/**
 * The exchange faults as the simulated book's own: it executes, then loses the answer, for 'lost-after', and for
 * 'unread-after' (the book is its own adapter: no read of an outcome apart from the answer).
 */
const SIMULATED: Record<ExchangeFault, VenueFault> = {
  'lost-before': 'timeout',
  'lost-after': 'timeout-after-fill',
  refused: 'reject',
  down: 'unavailable',
  'unread-after': 'timeout-after-fill',
};

/**
 * The controls of a simulated book: its faults, its empty books, its record of executions, and its clock (the suite's
 * orders move the book, which comes back as the clock moves).
 */
const controlsOf = (book: SimulatedVenue, clock: ManualClock) => ({
  netTraded: async (symbol: string) => book.traded(symbol),
  netPaid: async (symbol: string) => book.paid(symbol),
  fail: (fault: ExchangeFault) => book.injectFault(SIMULATED[fault]),
  emptyBook: (symbol: string, empty: boolean) => {
    if (empty) book.faults.emptyBooks.add(symbol);
    else book.faults.emptyBooks.delete(symbol);
  },
  elapse: (ms: number) => clock.advance(ms),
  close: async () => {},
});

/** What the simulated venues go without, and why. */
const WITHOUT = {
  // One book per process: the sim engine holds one, and each Lambda container its own (mark-following.ts).
  sibling: 'client order ids are remembered in the process that placed them (a simulation: one book each)',
  // Quote outages are a test's wrapper around them (test/services/venue-answers.test.ts).
  'quote faults': 'the simulated book always quotes',
  // The book is its own exchange: it answers a repeat from its record before any check (and takes no fault on one).
  'repeat refusal':
    'a repeat is answered from the record of its executions before any check: nothing refuses it',
};

// A coarse lot grid, so that sizes and the lot rounding are exercised.
const LOT = base('0.001');

venueContractSuite(
  'simulated',
  async (): Promise<VenueHarness> => {
    const clock = new ManualClock(START_MS);
    const book = new SimulatedVenue({ clock, defaults: { lotSize: LOT } });
    book.onTick(SYMBOL, MARK, START_MS);
    return {
      venue: book,
      symbol: SYMBOL,
      unlisted: 'DOGE-USD',
      reference: { mark: MARK, atMs: START_MS },
      minSize: LOT,
      maxSize: base('2000'),
      lotSize: LOT,
      ...controlsOf(book, clock),
    };
  },
  { propertyRuns: 100, without: WITHOUT },
);

// A thin book (5 levels a side) and a fill cap off the lot grid: the partial fills the stress scenarios use.
venueContractSuite(
  'simulated, thin book and a fill cap',
  async (): Promise<VenueHarness> => {
    const clock = new ManualClock(START_MS);
    const book = new SimulatedVenue({
      clock,
      defaults: { lotSize: LOT, levels: 5, poolQuoteReserve: 500_000 },
    });
    book.faults.maxFillPerOrder = base('0.0125');
    book.onTick(SYMBOL, MARK, START_MS);
    return {
      venue: book,
      symbol: SYMBOL,
      unlisted: 'DOGE-USD',
      reference: { mark: MARK, atMs: START_MS },
      minSize: LOT,
      maxSize: base('50'),
      lotSize: LOT,
      ...controlsOf(book, clock),
    };
  },
  { propertyRuns: 100, without: WITHOUT },
);

venueContractSuite(
  'mark-following',
  async (): Promise<VenueHarness> => {
    // Its book opens at the first mark it is given: the orders' reference, or the markets table's last tick.
    const clock = new ManualClock(START_MS);
    const venue = new MarkFollowingVenue(new EmbeddedMarketRepository(), clock);
    return {
      venue,
      symbol: SYMBOL,
      unlisted: 'DOGE-USD',
      reference: { mark: MARK, atMs: START_MS },
      minSize: 1n,
      maxSize: base('2000'),
      ...controlsOf(venue.book, clock),
    };
  },
  { propertyRuns: 100, without: WITHOUT },
);

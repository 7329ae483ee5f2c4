import { fixedVenueKey } from '../../shared/adapters/venue/key.ts';
import { startExchangeStub } from './my-exchange/stub.ts';
import { MyExchangeVenue } from './my-exchange/venue.ts';
import { venueContractSuite } from './venue-suite.ts';

// docs/VENUE.md's harness, as the page gives it (test/unit/venue-doc.test.ts holds the two to each other), run on an
// adapter written from the page alone (my-exchange/venue.ts) over a fake of an imaginary exchange's HTTP API.

venueContractSuite(
  'my-exchange',
  async () => {
    const exchange = await startExchangeStub(); // a fake of its HTTP API: a book, an account, faults
    const key = () => fixedVenueKey(exchange.secret); // the secret's string, as stored in Secrets Manager
    const venue = new MyExchangeVenue({ key: key(), baseUrl: exchange.url });
    return {
      venue,
      symbol: 'ETH-USD',
      unlisted: 'DOGE-USD',
      reference: { mark: exchange.mid('ETH-USD'), atMs: Date.now() },
      minSize: exchange.lot('ETH-USD'),
      maxSize: exchange.lot('ETH-USD') * 1_000n,
      lotSize: exchange.lot('ETH-USD'),
      netTraded: async (symbol) => exchange.position(symbol), // the exchange's records, never the adapter's answers
      netPaid: async (symbol) => exchange.quoteSpent(symbol), // its trades' price x size (PriceE8 x BaseE8), bought minus sold, fees apart
      fail: (fault) => exchange.next(fault), // the next new order: lost-before, lost-after, refused, down, unread-after; answers whether it did it
      refuseRepeat: () => exchange.refuseNextRepeat(), // the next repeat of an id it took: refused (its rate limit) before its duplicate check
      failQuote: (fault) => exchange.nextQuote(fault), // the next quote: lost, down
      emptyBook: (symbol, empty) => exchange.setEmpty(symbol, empty), // refilled, it meets any order resting on it
      sibling: () => new MyExchangeVenue({ key: key(), baseUrl: exchange.url }), // another container: its own reader
      close: () => exchange.stop(),
    };
  },
  { propertyRuns: 100 },
);

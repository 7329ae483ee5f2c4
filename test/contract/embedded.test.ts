import { createEmbeddedAdapters, ManualClock } from '../../shared/adapters/embedded/index.ts';
import { contractSuite } from './suite.ts';

/** The embedded adapters on a ManualClock: queue time moves only through `advance`. */
contractSuite(
  'embedded',
  async ({ crashHook }) => {
    const clock = new ManualClock(1_700_000_000_000);
    const adapters = createEmbeddedAdapters({ clock, ...(crashHook ? { crashHook } : {}) });
    return {
      adapters,
      transactor: adapters.transactor,
      deadLetters: {
        liquidations: adapters.liquidationDeadLetters,
        auctionSteps: adapters.auctionDeadLetters,
      },
      advance: (ms) => clock.advance(ms),
      leaveOutOfJournalIndex: async (account, sequences) =>
        adapters.ledger.leaveOutOfJournalIndex(account, sequences),
      writeBalanceOutsideJournal: async (account, balance, sequence) =>
        adapters.ledger.writeBalanceOutsideJournal(account, { balance, sequence }),
      close: async () => {},
    };
  },
  { propertyRuns: 200, eventuallyMs: 1_000 },
);

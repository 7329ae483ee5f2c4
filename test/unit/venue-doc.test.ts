import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../shared/adapters/embedded/clock.ts';
import { KEYLESS_VENUES } from '../../shared/adapters/venue/index.ts';
import { fixedVenueKey, secretsManagerVenueKey } from '../../shared/adapters/venue/key.ts';
import { parseBase, parsePrice } from '../../shared/domain/units.ts';
import { resetWiring, wiring } from '../../shared/lambda/wiring.ts';
import { functionEnvironment } from '../../shared/local/stack.ts';
import { METRICS } from '../../shared/metrics.ts';
import {
  type MarketRepository,
  VENUE_ERROR_KINDS,
  type Venue,
  VenueError,
} from '../../shared/ports/index.ts';
import { ORDER_LEASE_MS } from '../../shared/services/context.ts';
import { lastResortOrderId } from '../../shared/services/liquidation.ts';
import { liquidationIdOf } from '../../shared/services/margin-check.ts';
import {
  DEAD_LETTER_RETENTION_SECONDS,
  FUNCTIONS,
  localVenueSecretName,
  QUEUES,
  VENUE_KEY_ENV,
  VENUE_TRADERS,
} from '../../shared/topology.ts';
import { MyExchangeVenue } from '../contract/my-exchange/venue.ts';
import { VENUE_PROPERTIES } from '../contract/venue-suite.ts';
import { lines, pageReferenceTests, repoFile, tsSnippets } from '../support/doc-pages.ts';
import { fakeResourceNames } from '../support/resource-names.ts';

/**
 * docs/VENUE.md is what an exchange's engineer writes an adapter from: its snippets, names and numbers are held to the
 * code here, and its harness to the contract test that runs it on an adapter written from the page alone
 * (test/contract/venue-my-exchange.test.ts, session 50), so a change to either shows.
 */

const venue = repoFile('docs/VENUE.md');
const flat = venue.replace(/\s+/g, ' ');
const snippets = tsSnippets(venue);

afterEach(() => resetWiring());

describe('docs/VENUE.md against the code', () => {
  it('describes the port as it is: two calls, the statuses, the three kinds of failure', () => {
    const port = repoFile('shared/ports/index.ts');
    expect(port).toContain('placeIoc(order: OrderRequest): Promise<OrderResult>;');
    expect(port).toMatch(
      /quote\(symbol: string, reference\?: OrderRequest\['reference'\]\): Promise<\{ bid\?: PriceE8; ask\?: PriceE8 \}>;/,
    );
    expect(port).toContain("readonly status: 'FILLED' | 'PARTIAL' | 'NONE';");
    expect(flat).toContain('(`FILLED`: the whole size, `PARTIAL`: some, `NONE`: none)');
    const kinds = [...venue.matchAll(/^ {2}\| [^|]+ \| `(\w+)` \|/gm)].map((m) => m[1]!);
    expect(kinds.sort()).toEqual([...VENUE_ERROR_KINDS].sort());
  });

  it("gives the consumer's numbers: attempts, timeout, lease, concurrency, retention, receives", () => {
    const env = functionEnvironment('dev', fakeResourceNames(), 'http://localhost:5000', 'us-east-1');
    expect(wiring(env).settlement.venueAttempts).toBe(3);
    expect(flat).toContain('tries again (3 attempts)');
    const consumer = FUNCTIONS.find((f) => f.id === 'liquidationConsumer')!;
    const auction = FUNCTIONS.find((f) => f.id === 'auction')!;
    expect(consumer.timeoutSeconds).toBe(60);
    expect(flat).toContain("fit in liquidation-consumer's 60 s");
    expect(ORDER_LEASE_MS).toBe(90_000);
    expect(flat).toContain('the order lease (90 s)');
    // integrate50-venue-concurrency: the page had the auction's containers run their batches in parallel too.
    const trigger = (f: typeof consumer) => (f.trigger?.kind === 'queue' ? f.trigger : undefined)!;
    expect(repoFile('functions/liquidation-consumer/index.ts')).not.toContain('processInParallel');
    expect(repoFile('functions/auction/index.ts')).toContain('processInParallel: false');
    const calls =
      trigger(consumer).maxConcurrency * trigger(consumer).batchSize + trigger(auction).maxConcurrency;
    expect(flat).toContain(
      `Up to ${trigger(consumer).maxConcurrency} consumer containers, each running its batch of ${trigger(consumer).batchSize} records in parallel, and ${trigger(auction).maxConcurrency} auction containers, each one record at a time (auctions clear against the same providers): up to ${calls} calls at once`,
    );
    expect(DEAD_LETTER_RETENTION_SECONDS).toBe(14 * 24 * 3600);
    expect(flat).toContain('from the dead-letter queue (kept 14 days)');
    expect(QUEUES.find((q) => q.id === 'liquidations')?.deadLetter?.maxReceiveCount).toBe(5);
    expect(flat).toContain('then after 5 receives the dead-letter queue');
    expect(FUNCTIONS.length - VENUE_TRADERS.length).toBe(4);
    expect(flat).toContain('four of the six functions never trade');
    expect([...VENUE_TRADERS].sort()).toEqual(['auction', 'liquidationConsumer']);
  });

  it("gives the consumer's client order ids as it writes them", () => {
    const liquidationId = liquidationIdOf({ id: 'p.1:a-b', version: 7 } as never);
    expect(lastResortOrderId(liquidationId, 2)).toBe('p.1:a-b:7:last-resort:2');
    expect(repoFile('shared/services/liquidation/market-order.ts')).toContain(`\`\${liquidationId}:market\``);
    expect(flat).toContain('`<position>:<version>:market` and `<position>:<version>:last-resort:<n>`');
    // A position id: admin's registration takes up to 100 of [A-Za-z0-9._:-].
    expect(repoFile('shared/services/admin.ts')).toContain('/^[A-Za-z0-9._:-]{1,100}$/');
    expect(flat).toContain('a position id being up to 100 of `[A-Za-z0-9._:-]`');
  });

  it("names the key's variable, the local secret, the keyless venues and what the failures feed as they are", () => {
    expect(VENUE_KEY_ENV).toBe('VENUE_KEY_ID');
    expect(flat).toContain('`VENUE_KEY_ID`');
    expect(localVenueSecretName('<stage>')).toBe('backstop-<stage>-venue-key');
    expect(flat).toContain('as `backstop-<stage>-venue-key` (`localVenueSecretName`');
    expect(KEYLESS_VENUES).toEqual(['mark-following']);
    for (const metric of ['VenueOrderFailures', 'RecordFailures', 'LastResortWaits', 'SlippageBps'])
      expect(Object.keys(METRICS), metric).toContain(metric);
    const liquidation = repoFile('shared/services/liquidation/venue.ts');
    for (const line of ['venue attempt failed', 'venue refused the order; handing over to the auction']) {
      expect(flat).toContain(`\`${line}\``);
      expect(liquidation).toContain(`'${line}'`);
    }
    expect(liquidation).toContain(
      `\`venue/bad-answer: the quote of \${liquidation.symbol} (liquidation \${liquidation.id}): `,
    );
    expect(flat).toContain('(`venue/bad-answer: the quote of <symbol> (liquidation <id>): ...`');
  });

  it("names each of the contract's properties, and no other", () => {
    const section = venue.slice(venue.indexOf('| property (suite id) |'), venue.indexOf('## The secret'));
    // The suite ids: the parenthesis ending each row's first cell.
    const firstCells = [...section.matchAll(/^\| [^|]*\(([^()|]+)\) \|/gm)].map((m) => m[1]!).join(' ');
    const named = [...firstCells.matchAll(/`([a-z-]+\*?)`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(10);
    const ids = VENUE_PROPERTIES.map((p) => p.id);
    const matches = (pattern: string, id: string) =>
      pattern.endsWith('*') ? id.startsWith(pattern.slice(0, -1)) : id === pattern;
    for (const pattern of named)
      expect(
        ids.some((id) => matches(pattern, id)),
        pattern,
      ).toBe(true);
    for (const id of ids)
      expect(
        named.some((pattern) => matches(pattern, id)),
        id,
      ).toBe(true);
  });

  // integrate50: the harness as the page gives it is the one the example adapter's contract test runs.
  it('gives the harness test/contract/venue-my-exchange.test.ts runs, line for line', () => {
    const harness = snippets.find((s) => s.includes('venueContractSuite('))!;
    const file = lines(repoFile('test/contract/venue-my-exchange.test.ts'));
    const snippet = lines(harness);
    for (const line of snippet.filter((l) => l.startsWith('import '))) expect(file, line).toContain(line);
    const body = snippet.filter((l) => !l.startsWith('import '));
    const at = file.indexOf(body[0]!);
    expect(at).toBeGreaterThan(0);
    expect(file.slice(at, at + body.length)).toEqual(body);
    // Every control offered: none named in `without`, so every property runs.
    expect(body.join('\n')).not.toContain('without');
  });

  it("gives netPaid's unit with an example that holds", () => {
    expect(flat).toContain(
      '`netPaid` is in PriceE8 x BaseE8 units (1e-16 of the quote currency: a trade of 0.5 at 2000.01 adds 200001000000n x 50000000n)',
    );
    expect([parsePrice('2000.01'), parseBase('0.5')]).toEqual([200001000000n, 50000000n]);
  });

  it('builds the factory of "The secret" with no I/O, the key read at the first call, and its failure an \'unavailable\'', async () => {
    const snippet = snippets.find((s) => s.includes("'my-exchange': ({ env })"))!;
    expect(snippet).toContain(
      "'my-exchange': ({ env }) => new MyExchangeVenue({ key: secretsManagerVenueKey(env), baseUrl: '...' }),",
    );
    expect(snippet).toContain('const raw = await this.key.get();');
    expect(snippet).toContain('const fresh = await this.key.refresh(raw);');
    // The factory as the page writes it, on a markets table that fails any call and an environment naming no key.
    const untouchable = new Proxy({} as MarketRepository, {
      get: (_, method) => () => {
        throw new Error(`venue construction called markets.${String(method)}`);
      },
    });
    const factory = ({ env }: { env: NodeJS.ProcessEnv }): Venue =>
      new MyExchangeVenue({ key: secretsManagerVenueKey(env), baseUrl: 'http://127.0.0.1:9' });
    const built = factory({ env: {}, ...{ markets: untouchable, clock: new ManualClock(0) } });
    const failed = await built.quote('ETH-USD').catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(VenueError);
    expect(failed).toMatchObject({
      kind: 'unavailable',
      message: expect.stringContaining(`${VENUE_KEY_ENV} is not set`),
    });
    // The contract's key: the string it was given, every time.
    const key = fixedVenueKey('{"apiKey":"a","apiSecret":"b"}');
    expect([await key.get(), await key.refresh('x')]).toEqual([
      '{"apiKey":"a","apiSecret":"b"}',
      '{"apiKey":"a","apiSecret":"b"}',
    ]);
  });

  pageReferenceTests(venue, { sectionsAbove: 0, filesAbove: 5, findingsAbove: 4 });
});

import { describe, expect, it } from 'vitest';
import { PROVIDER_READS_IN_FLIGHT, registerNewProviders } from '../../cli/ops/seed.ts';
import type { AdminDeps, AdminRequest } from '../../shared/services/admin.ts';

// timeouts48-seed-reads: `seed providers` read every provider's record at once (Promise.all). The CLI's request timeout
// counts the wait for one of the client's 50 connections, so thousands read together on a slow link queued past it and
// failed as TimeoutErrors where they answered late (review47-timeout-socket-queue, fixed so for `dlq list`).
describe('seed providers reads the providers already there a few at a time', () => {
  it(`at most ${PROVIDER_READS_IN_FLIGHT} reads in flight, each provider read once`, async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `lp-${i}`);
    let inFlight = 0;
    let most = 0;
    const read: string[] = [];
    const deps = {
      providers: {
        get: async (id: string) => {
          inFlight += 1;
          most = Math.max(most, inFlight);
          read.push(id);
          // Answered after the calls begun so far: a read sent with every other at once is in flight with them.
          await Promise.resolve();
          inFlight -= 1;
          return { id };
        },
      },
    } as unknown as AdminDeps;
    const requests = ids.map((id) => ({ action: 'registerProvider', id }) as unknown as AdminRequest);
    const outcome = await registerNewProviders(requests, deps, () => {});
    // Before: 200 at once.
    expect(most).toBe(PROVIDER_READS_IN_FLIGHT);
    expect(PROVIDER_READS_IN_FLIGHT).toBe(16);
    expect(read).toEqual(ids);
    // Every one there: none written, each counted as there.
    expect(outcome).toMatchObject({ created: 0, existing: 200, failed: [] });
    expect([...outcome.existingIds]).toEqual(ids);
  });
});

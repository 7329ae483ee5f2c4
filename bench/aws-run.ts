import { instrumentAwsClients } from '../shared/lambda/wiring.ts';
import { MotoNotInstalledError, SETUP_HINT, startMoto } from '../shared/local/moto.ts';
import { type ApiCallsResult, benchAwsCalls } from './aws.ts';
import { CapacityMeter } from './capacity.ts';
import type { BenchIds } from './ids.ts';
import { benchLatency, type LatencyResult } from './latency.ts';

/**
 * Parts 3 and 4, each on a moto server of its own. Imported lazily by run.ts: the Lambda modules bring Powertools'
 * tracer, whose async hooks would slow the in-process parts measured before.
 */

export interface AwsSizes {
  readonly noCrossTicks: number;
  readonly callsCrossed: readonly number[];
  readonly perLayer: number;
  readonly latency: { readonly bursts: number; readonly positionsPerBurst: number };
}

async function withMoto<T>(run: (endpoint: string) => Promise<T>): Promise<T> {
  let moto: Awaited<ReturnType<typeof startMoto>>;
  try {
    moto = await startMoto();
  } catch (error) {
    if (error instanceof MotoNotInstalledError) {
      throw new Error(`bench/no-emulator: parts 3 and 4 need moto (${SETUP_HINT}), or set BENCH_SKIP_AWS=1`);
    }
    throw error;
  }
  try {
    return await run(moto.endpoint);
  } finally {
    await moto.stop();
  }
}

const stagePrefix = (): string => `b${Date.now().toString(36)}`;

export function runApiCalls(
  sizes: AwsSizes,
  ids: BenchIds,
  log: (line: string) => void,
): Promise<ApiCallsResult> {
  return withMoto(async (endpoint) => {
    const meter = new CapacityMeter();
    instrumentAwsClients((clients) => meter.attach(clients));
    try {
      return await benchAwsCalls({
        endpoint,
        meter,
        noCrossTicks: sizes.noCrossTicks,
        crossed: sizes.callsCrossed,
        perLayer: sizes.perLayer,
        stagePrefix: stagePrefix(),
        ids,
        log,
      });
    } finally {
      instrumentAwsClients(undefined);
    }
  });
}

export function runLatency(sizes: AwsSizes, log: (line: string) => void): Promise<LatencyResult> {
  return withMoto((endpoint) =>
    benchLatency({
      endpoint,
      bursts: sizes.latency.bursts,
      positionsPerBurst: sizes.latency.positionsPerBurst,
      stage: `${stagePrefix()}latency`,
      log,
    }),
  );
}

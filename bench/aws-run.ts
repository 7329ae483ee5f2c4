import { instrumentAwsClients } from '../shared/lambda/wiring.ts';
import { MotoNotInstalledError, SETUP_HINT, startMoto } from '../shared/local/moto.ts';
import { type ApiCallsResult, benchAwsCalls } from './aws.ts';
import { CapacityMeter } from './capacity.ts';
import { benchLatency, type LatencyResult } from './latency.ts';

/**
 * Parts 3 and 4 on a moto server of their own. Imported lazily by run.ts: the Lambda modules bring Powertools'
 * tracer, whose async hooks would slow the in-process parts measured before.
 */

export interface AwsSizes {
  readonly noCrossTicks: number;
  readonly callsCrossed: readonly number[];
  readonly perLayer: number;
  readonly latency: { readonly positions: number; readonly ticks: number };
}

export async function runAwsParts(
  sizes: AwsSizes,
  log: (line: string) => void,
): Promise<{ apiCalls: ApiCallsResult; latencyMs: LatencyResult }> {
  let moto: Awaited<ReturnType<typeof startMoto>>;
  try {
    moto = await startMoto();
  } catch (error) {
    if (error instanceof MotoNotInstalledError) {
      throw new Error(`bench/no-emulator: parts 3 and 4 need moto (${SETUP_HINT}), or set BENCH_SKIP_AWS=1`);
    }
    throw error;
  }
  const meter = new CapacityMeter();
  instrumentAwsClients((clients) => meter.attach(clients));
  const prefix = `b${Date.now().toString(36)}`;
  try {
    const apiCalls = await benchAwsCalls({
      endpoint: moto.endpoint,
      meter,
      noCrossTicks: sizes.noCrossTicks,
      crossed: sizes.callsCrossed,
      perLayer: sizes.perLayer,
      stagePrefix: prefix,
      log,
    });
    const latencyMs = await benchLatency({
      endpoint: moto.endpoint,
      positions: sizes.latency.positions,
      ticks: sizes.latency.ticks,
      stage: `${prefix}latency`,
      log,
    });
    return { apiCalls, latencyMs };
  } finally {
    instrumentAwsClients(undefined);
    await moto.stop();
  }
}

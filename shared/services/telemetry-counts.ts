import type { Telemetry } from '../ports/index.ts';

/**
 * Telemetries that pass everything on to another but one metric's counts, which they keep back: the wrappers the
 * auction's delivery puts around its telemetry. The only place counts are forwarded by a name they did not choose
 * (test/support/emit-sites.ts reads every other count's name from its call).
 */

type Count = Telemetry['count'];

/** `telemetry`, its counts through `count`. */
function withCount(telemetry: Telemetry, count: Count): Telemetry {
  return {
    count,
    observe: (metric, value, dimensions) => telemetry.observe(metric, value, dimensions),
    info: (message, fields) => telemetry.info(message, fields),
    warn: (message, fields) => telemetry.warn(message, fields),
  };
}

/** `telemetry`, counting `metric` at most once per value of `dimension` (a missing one is a value too). */
export function countingOncePer(telemetry: Telemetry, metric: string, dimension: string): Telemetry {
  const counted = new Set<string | undefined>();
  return withCount(telemetry, (name, value, dimensions) => {
    if (name === metric) {
      const key = dimensions?.[dimension];
      if (counted.has(key)) return;
      counted.add(key);
    }
    telemetry.count(name, value, dimensions);
  });
}

/** `telemetry`, holding back the counts of `metric` until `release` (never, when it is not called). */
export function holdingCounts(
  telemetry: Telemetry,
  metric: string,
): { readonly telemetry: Telemetry; release(): void } {
  const held: Parameters<Count>[] = [];
  return {
    telemetry: withCount(telemetry, (name, value, dimensions) => {
      if (name === metric) held.push([name, value, dimensions]);
      else telemetry.count(name, value, dimensions);
    }),
    release: () => {
      for (const args of held.splice(0)) telemetry.count(...args);
    },
  };
}

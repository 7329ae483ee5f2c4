/**
 * Imported first by run.ts, before any handler module creates its Powertools logger and metrics: the handlers log
 * at WARN (the stack's default) and do not print EMF metrics, so the console shows the benchmark's progress.
 * BENCH_EMF=1 keeps the metrics output.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
if (process.env.BENCH_EMF !== '1') process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

import { parentPort, workerData } from 'node:worker_threads';
import { type LegOptions, replayLeg } from './replay.ts';

/** One leg of the replay in its own thread (legs are independent: each has its own book and adapters). */
const { file, positions, options } = workerData as {
  file: string;
  positions: number;
  options: LegOptions;
};
parentPort?.postMessage(await replayLeg(file, positions, options));

/**
 * A moto server per test file: `const moto = await startMoto()` in beforeAll, `await moto.stop()` in afterAll.
 * The implementation is shared with `backstop local up` (shared/local/moto.ts).
 */
export { MotoNotInstalledError, type MotoServer, startMoto } from '../../shared/local/moto.ts';

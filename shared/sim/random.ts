/**
 * A small seeded PRNG for the simulation (never for anything secret): mulberry32, 32-bit state, period 2^32.
 * The same seed gives the same stream on every platform; the float helpers use only IEEE-754 operations and
 * V8's deterministic Math functions, so a run is reproducible byte for byte on the same Node version.
 */

export class RandomError extends Error {
  override readonly name = 'RandomError';
}

export class Rng {
  #state: number;
  #spareNormal: number | undefined;

  /** seed: any safe integer (reduced modulo 2^32). */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RandomError(`random/bad-seed: ${seed} is not a safe integer`);
    this.#state = Number(BigInt.asUintN(32, BigInt(seed)));
  }

  /** Next 32-bit unsigned integer (mulberry32). */
  nextUint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in (0, 1]: safe under log(). */
  nextOpen(): number {
    return (this.nextUint32() + 1) / 4294967296;
  }

  /** Uniform integer in [min, max] (inclusive). */
  int(min: number, max: number): number {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || max < min) {
      throw new RandomError(`random/bad-range: [${min}, ${max}]`);
    }
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** Uniform in [min, max). */
  uniform(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal N(0, 1), Box-Muller (the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.#spareNormal !== undefined) {
      const spare = this.#spareNormal;
      this.#spareNormal = undefined;
      return spare;
    }
    const r = Math.sqrt(-2 * Math.log(this.nextOpen()));
    const theta = 2 * Math.PI * this.next();
    this.#spareNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Pareto with scale xm and shape alpha: xm * U^(-1/alpha), heavy-tailed for small alpha. */
  pareto(xm: number, alpha: number): number {
    return xm * this.nextOpen() ** (-1 / alpha);
  }

  /** Log-uniform in [min, max]: every ratio band (2-4x, 4-8x) equally likely. */
  logUniform(min: number, max: number): number {
    return min * (max / min) ** this.next();
  }

  /** An independent child stream (a different purpose must not shift another's draws). */
  fork(label: string): Rng {
    let h = this.#state ^ 0x9e3779b9;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    return new Rng(h >>> 0);
  }
}

import { assert } from './assert.js';

/**
 * A seeded, splittable PRNG (xoshiro128** seeded through SplitMix32). Deterministic across
 * platforms: 32-bit integer math only. `split()` derives an independent stream, so adding
 * draws in one component does not shift another's sequence.
 *
 * @example const rng = new Prng(42); const child = rng.split(); rng.int(10);
 */
export class Prng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  constructor(seed: number) {
    assert(Number.isSafeInteger(seed), `seed must be a safe integer, got ${seed}`);
    let x = (seed ^ Math.floor(seed / 0x1_0000_0000)) >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** A uniform u32. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A uniform float in [0, 1) with 53 bits of randomness. */
  float(): number {
    const high = this.u32() >>> 5;
    const low = this.u32() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** A uniform integer in [0, bound). */
  int(bound: number): number {
    assert(Number.isSafeInteger(bound) && bound > 0, `bound must be a positive safe integer, got ${bound}`);
    return Math.floor(this.float() * bound);
  }

  /** A uniform integer in [min, max] inclusive. */
  range(min: number, max: number): number {
    assert(min <= max, `empty range [${min}, ${max}]`);
    return min + this.int(max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'cannot pick from an empty list');
    return items[this.int(items.length)] as T;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** An independent generator derived from this one. */
  split(): Prng {
    return new Prng(this.u32() * 0x20_0000 + (this.u32() >>> 11));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The seed for a randomized test: `SEED` from the environment, or a fresh one to print. */
export function seedFrom(env: Readonly<Record<string, string | undefined>>, fallback: () => number): number {
  const text = env['SEED'];
  if (text === undefined || text === '') return fallback();
  const seed = Number(text);
  assert(Number.isSafeInteger(seed), `SEED must be an integer, got ${JSON.stringify(text)}`);
  return seed;
}

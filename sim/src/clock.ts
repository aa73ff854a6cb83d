import { assert } from '@veritydb/types';

/** Microseconds a simulated tick lasts on a perfect clock. */
export const TICK_US = 1000;

/**
 * One replica's wall clock: it runs at its own rate (drift, in parts per million) from its own
 * offset and may jump (an NTP step, an operator, a VM migration), backwards too. The replica only
 * uses it to stamp prepares; their timestamps must stay strictly increasing whatever it reads.
 */
export class SimClock {
  #nowUs: number;
  #driftPpm: number;

  constructor(offsetUs: number, driftPpm: number) {
    assert(Number.isInteger(offsetUs) && offsetUs >= 0, 'clock offset is whole microseconds');
    this.#nowUs = offsetUs;
    this.#driftPpm = driftPpm;
  }

  get nowUs(): number { return this.#nowUs; }
  get driftPpm(): number { return this.#driftPpm; }

  /** One tick of real time passes; returns the clock's reading. */
  advance(): number {
    this.#nowUs += Math.max(0, Math.round(TICK_US * (1 + this.#driftPpm / 1_000_000)));
    return this.#nowUs;
  }

  /** Steps the clock by `deltaUs` (never below zero). */
  jump(deltaUs: number): void {
    this.#nowUs = Math.max(0, this.#nowUs + Math.round(deltaUs));
  }
}

import type { Prng } from '@veritydb/types';

export interface NetworkOptions {
  readonly delayMinTicks: number;
  readonly delayMaxTicks: number;
  /** Probability a packet is dropped. */
  readonly loss: number;
  /** Probability a packet is delivered twice. */
  readonly duplicate: number;
  /** Probability a delivered packet has one byte flipped (the codec must reject it). */
  readonly corrupt: number;
}

export interface Packet {
  readonly from: number;
  readonly to: number;
  readonly bytes: Uint8Array;
  readonly dueTick: number;
  readonly sequence: number;
}

/**
 * A simulated packet network between numbered endpoints: random delay (so reordering), loss,
 * duplication, in-flight corruption, directed link blocks for symmetric and asymmetric
 * partitions, and clogged links (nothing for a while, then a burst). Deterministic given its PRNG.
 */
export class SimNetwork {
  options: NetworkOptions;
  readonly #prng: Prng;
  #queue: Packet[] = [];
  #sequence = 0;
  readonly #blocked = new Set<string>();
  /** Clogged links: nothing is delivered on them before the tick given, then everything held is. */
  readonly #clogged = new Map<string, number>();
  sent = 0;
  dropped = 0;
  corrupted = 0;

  constructor(prng: Prng, options: NetworkOptions) {
    this.#prng = prng;
    this.options = options;
  }

  get inFlight(): number { return this.#queue.length; }

  block(from: number, to: number): void { this.#blocked.add(`${from}>${to}`); }
  unblock(from: number, to: number): void { this.#blocked.delete(`${from}>${to}`); }
  heal(): void { this.#blocked.clear(); }
  blocked(from: number, to: number): boolean { return this.#blocked.has(`${from}>${to}`); }
  get blockedLinks(): string[] { return [...this.#blocked].sort(); }

  /** Holds every packet on `from>to` until `untilTick`, then delivers them together. */
  clog(from: number, to: number, untilTick: number): void {
    const key = `${from}>${to}`;
    this.#clogged.set(key, Math.max(untilTick, this.#clogged.get(key) ?? 0));
  }

  unclog(): void { this.#clogged.clear(); }

  #isClogged(from: number, to: number, nowTick: number): boolean {
    const until = this.#clogged.get(`${from}>${to}`);
    return until !== undefined && nowTick < until;
  }

  send(from: number, to: number, bytes: Uint8Array, nowTick: number): void {
    this.sent += 1;
    if (this.#prng.chance(this.options.loss)) { this.dropped += 1; return; }
    const copies = this.#prng.chance(this.options.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.#prng.range(this.options.delayMinTicks, this.options.delayMaxTicks);
      this.#queue.push({ from, to, bytes, dueTick: nowTick + delay, sequence: this.#sequence++ });
    }
  }

  /** Packets due by `nowTick`, in (due, sequence) order; blocked links drop them at delivery. */
  deliver(nowTick: number): Packet[] {
    const due: Packet[] = [];
    const rest: Packet[] = [];
    for (const packet of this.#queue) {
      (packet.dueTick <= nowTick && !this.#isClogged(packet.from, packet.to, nowTick) ? due : rest).push(packet);
    }
    this.#queue = rest;
    due.sort((a, b) => a.dueTick - b.dueTick || a.sequence - b.sequence);
    const out: Packet[] = [];
    for (const packet of due) {
      if (this.blocked(packet.from, packet.to)) { this.dropped += 1; continue; }
      if (this.#prng.chance(this.options.corrupt)) {
        const bytes = packet.bytes.slice();
        const at = this.#prng.int(bytes.length);
        bytes[at] = (bytes[at] ?? 0) ^ (1 << this.#prng.int(8));
        this.corrupted += 1;
        out.push({ ...packet, bytes });
        continue;
      }
      out.push(packet);
    }
    return out;
  }

  /** Drops every packet still in flight to `to` (a crashed endpoint's receive buffers). */
  dropTo(to: number): void {
    this.#queue = this.#queue.filter((p) => p.to !== to);
  }
}

import { assert, assertNever, type Prng } from '@veritydb/types';
import { encodeEntry, type DurableState, type Effect, type Superblock } from '@veritydb/vsr';

type StorageEffect = Extract<Effect, { kind: 'write_log' | 'truncate_log' | 'write_superblock' }>;

interface PendingWrite {
  readonly effect: StorageEffect;
  readonly doneTick: number;
}

/**
 * An in-memory disk for one replica. Writes complete in issue order after a random delay. A
 * crash keeps a random prefix of the writes still in flight (they may have reached the platter
 * without the replica being told), may tear the first one it cuts, and loses the rest.
 */
export class SimDisk {
  superblock: Superblock;
  readonly slots = new Map<number, Uint8Array>();
  #pending: PendingWrite[] = [];

  constructor(superblock: Superblock) {
    this.superblock = superblock;
  }

  get pendingCount(): number { return this.#pending.length; }

  submit(effect: StorageEffect, nowTick: number, delayTicks: number): void {
    const last = this.#pending[this.#pending.length - 1];
    const doneTick = Math.max(last?.doneTick ?? nowTick, nowTick) + delayTicks;
    this.#pending.push({ effect, doneTick });
  }

  /** Completes due writes; returns their ids in order. */
  complete(nowTick: number): number[] {
    const done: number[] = [];
    while (this.#pending.length > 0 && (this.#pending[0] as PendingWrite).doneTick <= nowTick) {
      const write = this.#pending.shift() as PendingWrite;
      this.#persist(write.effect);
      done.push(write.effect.writeId);
    }
    return done;
  }

  /** Completes the oldest write now, whatever its due tick (scripted tests). */
  completeOne(): number | undefined {
    const write = this.#pending.shift();
    if (write === undefined) return undefined;
    this.#persist(write.effect);
    return write.effect.writeId;
  }

  #persist(effect: StorageEffect): void {
    switch (effect.kind) {
      case 'write_log':
        for (const entry of effect.entries) this.slots.set(entry.header.op, encodeEntry(entry));
        return;
      case 'truncate_log':
        for (const op of [...this.slots.keys()]) if (op > effect.afterOp) this.slots.delete(op);
        return;
      case 'write_superblock':
        this.superblock = effect.superblock;
        return;
      default:
        assertNever(effect);
    }
  }

  /** Crash: a random prefix of in-flight writes survives, the next log write may be torn. */
  crash(prng: Prng, tornProbability: number): { survived: number; torn: boolean } {
    let survived = 0;
    let torn = false;
    for (const write of this.#pending) {
      if (prng.chance(0.5)) { this.#persist(write.effect); survived += 1; continue; }
      if (write.effect.kind === 'write_log' && prng.chance(tornProbability)) {
        const entries = write.effect.entries;
        const cut = prng.int(entries.length);
        for (let i = 0; i < cut; i++) { const e = entries[i]; if (e) this.slots.set(e.header.op, encodeEntry(e)); }
        const victim = entries[cut];
        if (victim !== undefined) {
          const bytes = encodeEntry(victim);
          this.slots.set(victim.header.op, bytes.slice(0, prng.int(bytes.length)));
          torn = true;
        }
      }
      // A superblock write is never torn into a bad state: several checksummed copies (DESIGN §5.5).
      break;
    }
    this.#pending = [];
    return { survived, torn };
  }

  /** Flips one byte of the slot at `op` (corruption at rest, found when the replica next reads it). */
  corrupt(op: number, prng: Prng): void {
    const bytes = this.slots.get(op);
    assert(bytes !== undefined && bytes.length > 0, 'corrupt an existing slot');
    const copy = bytes.slice();
    const at = prng.int(copy.length);
    copy[at] = (copy[at] ?? 0) ^ (1 + prng.int(255));
    this.slots.set(op, copy);
  }

  durableState(): DurableState {
    return { superblock: this.superblock, slots: new Map(this.slots) };
  }
}

import { assert, assertNever, type Prng } from '@veritydb/types';
import { decodeEntry, encodeEntry, type DurableState, type Effect, type Superblock } from '@veritydb/vsr';
import type { ClusterId } from '@veritydb/types';

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
  /**
   * Misdirected writes (a fault hook set by the simulator): given the op of an entry being
   * written, the slot it lands in instead, or undefined to write it where it belongs.
   */
  misdirect: ((op: number) => number | undefined) | undefined;
  /** Wiped and no superblock written since: the replica has nothing but its place in the cluster (it must `rejoin`). */
  blank = false;
  /** Ops whose last write was misdirected (their own slot lacks the entry the replica believes durable). */
  readonly misdirected = new Set<number>();

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
        for (const entry of effect.entries) {
          const op = entry.header.op;
          const target = this.misdirect?.(op);
          if (target === undefined) { this.slots.set(op, encodeEntry(entry)); this.misdirected.delete(op); continue; }
          assert(target !== op && this.slots.has(target), 'a misdirected write lands on another written slot');
          this.slots.set(target, encodeEntry(entry));
          this.misdirected.add(op);
        }
        return;
      case 'truncate_log':
        for (const op of [...this.slots.keys()]) if (op > effect.afterOp) this.slots.delete(op);
        for (const op of [...this.misdirected]) if (op > effect.afterOp) this.misdirected.delete(op);
        return;
      case 'write_superblock':
        this.superblock = effect.superblock;
        this.blank = false;
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

  /** The disk is lost: a blank one (no log, a superblock that knows only the replica's place) replaces it. */
  wipe(): void {
    this.superblock = { cluster: this.superblock.cluster, replica: this.superblock.replica, replicaCount: this.superblock.replicaCount,
      view: 0, logView: 0, commitMax: 0, checkpoint: 0, viewHeaders: [] };
    this.blank = true;
    this.slots.clear();
    this.#pending = [];
    this.misdirected.clear();
  }

  /** Cuts the slot at `op` to half its bytes, as a write torn by a crash leaves it (scripted tests). */
  tear(op: number): void {
    const bytes = this.slots.get(op);
    assert(bytes !== undefined && bytes.length > 1, 'tear an existing slot');
    this.slots.set(op, bytes.slice(0, bytes.length >> 1));
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

  /** What the replica reads when it opens; `unreadable` slots fail to read (latent sector errors). */
  durableState(unreadable: readonly number[] = []): DurableState {
    const slots = new Map(this.slots);
    for (const op of unreadable) if (slots.has(op)) slots.set(op, new Uint8Array(0));
    return { superblock: this.superblock, slots };
  }

  /**
   * Would a replica opening this disk distrust its head (a faulty slot above the highest intact
   * entry, a misdirected write above it, or view headers beyond it)? Errs towards "yes": the
   * simulator uses it to keep enough replicas able to form a view.
   */
  headUntrusted(cluster: ClusterId): boolean {
    if (this.blank || this.superblock.amnesia === true) return true;
    const ops = [...this.slots.keys()].sort((a, b) => b - a);
    let durableTop = 0;
    for (const op of ops) {
      const entry = decodeEntry(this.slots.get(op) as Uint8Array);
      if (entry !== undefined && entry.header.op === op && entry.header.cluster === cluster) { durableTop = op; break; }
      if (op > 0) return true;
    }
    for (const op of this.misdirected) if (op > durableTop) return true;
    return this.superblock.viewHeaders.some((header) => header.op > durableTop);
  }

  /** Everything needed to undo a crash the fault atlas refuses. */
  snapshot(): () => void {
    const superblock = this.superblock;
    const slots = new Map(this.slots);
    const pending = [...this.#pending];
    const misdirected = new Set(this.misdirected);
    const blank = this.blank;
    return () => {
      this.blank = blank;
      this.superblock = superblock;
      this.slots.clear();
      for (const [op, bytes] of slots) this.slots.set(op, bytes);
      this.#pending = pending;
      this.misdirected.clear();
      for (const op of misdirected) this.misdirected.add(op);
    };
  }
}

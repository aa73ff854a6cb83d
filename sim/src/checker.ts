import { checksumEqual, checksumHex } from '@veritydb/types';
import { linksTo, type Header } from '@veritydb/vsr';

/** A violated cluster property: the seed that produced it is a bug report. */
export class SafetyViolation extends Error {
  override readonly name = 'SafetyViolation';
}

/**
 * Default distance between state hash comparisons. A hash covers all state (the store's
 * checkpoint image), so its cost grows with the run; every 128 ops keeps it a small share of a run.
 */
export const STATE_HASH_INTERVAL_OPS = 128;

function fail(message: string): never {
  throw new SafetyViolation(message);
}

interface CommittedOp {
  readonly header: Header;
  readonly result: Uint8Array;
  readonly executed: boolean;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * Cluster-wide safety checks, fed by replica effects and client outcomes as they happen:
 * committed prefixes agree and hash-chain, each request executes at most once, every accepted
 * reply is the committed result, views and commits never regress, and client history is
 * linearizable in log order (replies carry positions).
 */
export class Checker {
  readonly #committed = new Map<number, CommittedOp>();
  /** Per replica incarnation: the last op it committed. */
  readonly #lastCommitted = new Map<number, number>();
  readonly #executed = new Map<string, number>();
  readonly #views = new Map<number, { view: number; commit: number }>();
  /** State hash (hex) at each op where one was taken, and the replica that took it first. */
  readonly #stateHashes = new Map<number, { hash: string; replica: number }>();
  /** Ops (beyond the interval) where a hash is wanted: where a replica crashed. */
  readonly #stateHashOps = new Set<number>();
  readonly #stateHashIntervalOps: number;
  stateHashChecks = 0;
  /** Comparisons of a restarted replica's replayed state with its own state before the crash. */
  restartStateHashChecks = 0;
  /** Highest op of any reply accepted so far (real-time order bound for later requests). */
  #acceptedOpMax = 0;
  acceptedReplies = 0;
  stateTransfers = 0;

  /** `stateHashIntervalOps`: compare replica state hashes at every multiple of it. */
  constructor(stateHashIntervalOps = STATE_HASH_INTERVAL_OPS) {
    this.#stateHashIntervalOps = stateHashIntervalOps;
  }

  get committedOpMax(): number { return this.#committed.size; }

  /** Whether a replica that just applied `op` should report its state hash. */
  wantsStateHash(op: number): boolean {
    return op % this.#stateHashIntervalOps === 0 || this.#stateHashOps.has(op);
  }

  /**
   * Replicas agree on the state hash at equal applied positions, across replicas and across a
   * replica's incarnations (a restart replays its durable log into a fresh state machine).
   * `want`: ask every replica that applies `op` from now on for its hash too (a crash point).
   */
  onStateHash(replica: number, op: number, hash: string, want = false): void {
    if (want) this.#stateHashOps.add(op);
    this.stateHashChecks += 1;
    const known = this.#stateHashes.get(op);
    if (known === undefined) {
      this.#stateHashes.set(op, { hash, replica });
      return;
    }
    if (known.hash !== hash) {
      fail(`state hash at op ${op}: replica ${replica} has ${hash.slice(0, 12)}, replica ${known.replica} had ${known.hash.slice(0, 12)}`);
    }
    // One incarnation applies an op once, so the same replica again is a restart's replay.
    if (known.replica === replica) this.restartStateHashChecks += 1;
  }

  committedAt(op: number): Header | undefined { return this.#committed.get(op)?.header; }

  onCommitted(replica: number, header: Header, result: Uint8Array, executed: boolean): void {
    const last = this.#lastCommitted.get(replica) ?? 0;
    if (header.op !== last + 1) fail(`replica ${replica} committed op ${header.op} after ${last}`);
    this.#lastCommitted.set(replica, header.op);
    const previous = this.#committed.get(header.op - 1)?.header;
    if (header.op > 1 && previous !== undefined && !linksTo(header, previous)) {
      fail(`committed op ${header.op} does not chain to committed op ${header.op - 1}`);
    }
    const known = this.#committed.get(header.op);
    if (known === undefined) {
      if (header.op > 1 && previous === undefined) fail(`op ${header.op} committed before op ${header.op - 1}`);
      // Whatever the primaries' clocks did (drift, jumps back), the log's timestamps only grow.
      if (previous !== undefined && header.timestampUs <= previous.timestampUs) {
        fail(`committed op ${header.op} has timestamp ${header.timestampUs}, not above op ${header.op - 1}'s ${previous.timestampUs}`);
      }
      this.#committed.set(header.op, { header, result, executed });
      if (executed && header.operation === 'normal') {
        const key = `${header.client}/${header.session}/${header.request}`;
        const first = this.#executed.get(key);
        if (first !== undefined) fail(`request ${key} executed twice: ops ${first} and ${header.op}`);
        this.#executed.set(key, header.op);
      }
      return;
    }
    if (!checksumEqual(known.header.checksum, header.checksum)) {
      fail(`replica ${replica} committed ${checksumHex(header.checksum).slice(0, 12)} at op ${header.op}, ` +
        `cluster committed ${checksumHex(known.header.checksum).slice(0, 12)}`);
    }
    if (known.executed !== executed || !bytesEqual(known.result, result)) {
      fail(`replica ${replica} computed a different result at op ${header.op}`);
    }
  }

  /** Replica `replica` installed another replica's state at `op` (state transfer): it goes on from there. */
  onStateTransfer(replica: number, op: number): void {
    const last = this.#lastCommitted.get(replica) ?? 0;
    if (op <= last) fail(`replica ${replica} installed a state at op ${op}, not ahead of its op ${last}`);
    if (!this.#committed.has(op)) fail(`replica ${replica} installed a state at op ${op}, which is not committed`);
    this.#lastCommitted.set(replica, op);
    this.stateTransfers += 1;
  }

  /** Views and commit numbers of a live replica never go back (within an incarnation). */
  onState(replica: number, view: number, commit: number): void {
    const last = this.#views.get(replica);
    if (last !== undefined && (view < last.view || commit < last.commit)) {
      fail(`replica ${replica} regressed: view ${last.view}->${view}, commit ${last.commit}->${commit}`);
    }
    this.#views.set(replica, { view, commit });
  }

  /**
   * A restarted replica starts from its durable view (an in-memory view that never reached the
   * superblock was never advertised beyond a vote) and re-applies from op 1.
   */
  onReopen(replica: number, view: number): void {
    this.#views.set(replica, { view, commit: 0 });
    this.#lastCommitted.set(replica, 0);
  }

  /** The real-time floor for a request starting now: it must land after every reply already accepted. */
  requestFloor(): number {
    return this.#acceptedOpMax;
  }

  onReply(client: bigint, request: number, op: number, body: Uint8Array, floor: number): void {
    const committed = this.#committed.get(op);
    if (committed === undefined) fail(`client ${client} accepted a reply for uncommitted op ${op}`);
    const h = committed.header;
    if (h.client !== client || h.request !== request) {
      fail(`client ${client} request ${request} accepted a reply for op ${op}, which is ${h.client}/${h.request}`);
    }
    if (h.operation === 'normal' && (!committed.executed || !bytesEqual(committed.result, body))) {
      fail(`client ${client} request ${request} accepted a result that differs from the committed one at op ${op}`);
    }
    if (op <= floor) fail(`linearizability: client ${client} request ${request} at op ${op} started after a reply at op ${floor}`);
    this.#acceptedOpMax = Math.max(this.#acceptedOpMax, op);
    this.acceptedReplies += 1;
  }
}

import type { Checksum } from '@veritydb/types';

/** One committed operation as the replicated state machine sees it. */
export interface ApplyInput {
  readonly op: number;
  readonly timestampUs: number;
  readonly client: bigint;
  readonly body: Uint8Array;
  /** The op's header checksum: its hash in the log's chain (the kernel records it in `__events`). */
  readonly checksum: Checksum;
}

/**
 * The deterministic state machine VSR replicates (the kernel, or a test machine). The replica
 * calls `apply` once per committed `normal` op that executes, in op order, on every replica; the
 * returned bytes are the reply the client receives and the session table caches. It must be
 * pure: the same sequence of inputs gives the same outputs on every replica.
 *
 * A machine that numbers its state by log position (the kernel) also implements `skip`: it is
 * called, in the same op order, for every other committed op (a registration, or a request the
 * session table does not execute: a duplicate, an older request, an evicted session), so the
 * machine sees every op of the log exactly once.
 *
 * @example const machine: StateMachine = { apply: ({ body }) => body };
 */
export interface StateMachine {
  apply(input: ApplyInput): Uint8Array;
  skip?(input: ApplyInput): void;
  /**
   * A hash of the whole state, equal on every replica at the same op. When present, replicas
   * compare it at every checkpoint op (`ReplicaOptions.checkpointIntervalOps`) and a difference
   * stops the replica that sees it.
   */
  stateHash?(): Checksum;
  /**
   * State transfer (both or neither): `snapshot` returns the whole state as bytes; `restore`
   * replaces the state with such bytes, taken at `op` by another replica. A machine without them
   * catches up by applying every entry.
   */
  snapshot?(): Uint8Array;
  restore?(state: Uint8Array, op: number): void;
}

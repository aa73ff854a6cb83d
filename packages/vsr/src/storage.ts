import type { Checksum, ClusterId } from '@veritydb/types';
import type { Header } from './header.js';

/**
 * The protocol state a replica keeps in its superblock. A replica never advertises a view or
 * log view that is not durable here.
 */
export interface Superblock {
  readonly cluster: ClusterId;
  readonly replica: number;
  readonly replicaCount: number;
  readonly view: number;
  /** The latest view in which this replica's log was installed as the view's log. */
  readonly logView: number;
  readonly commitMax: number;
  /**
   * Op of the latest checkpoint (0: none): a multiple of the checkpoint interval at which this
   * replica computed `checkpointHash`. The state itself is not kept by VSR (a restart replays the
   * log from op 1); the restarted replica must reach the same hash when its replay passes `checkpoint`.
   */
  readonly checkpoint: number;
  /** The state hash at `checkpoint` (absent: none, or a superblock written before checkpoints had hashes). */
  readonly checkpointHash?: Checksum;
  /**
   * Set while the replica recovers from a lost disk (`Replica.rejoin`) and does not yet hold a
   * view's log: a restart before that must not make it a voter again. Absent means false.
   */
  readonly amnesia?: boolean;
  /**
   * The newest headers of the log installed for `logView` (at most vsrConstants.viewHeadersMax).
   * A replica may know a header of its view's log before it has the body; without these, a
   * restart would shrink its log under an unchanged log_view, and the view change would prefer
   * that shorter log over a longer one of an older view.
   */
  readonly viewHeaders: readonly Header[];
}

/**
 * What a replica finds on disk when it opens: its superblock and the raw bytes of every log slot
 * (by op). Slots are decoded and verified by the replica; a torn or corrupt slot is a fault to
 * repair, never a sign that the entry was not there.
 */
export interface DurableState {
  readonly superblock: Superblock;
  readonly slots: ReadonlyMap<number, Uint8Array>;
}

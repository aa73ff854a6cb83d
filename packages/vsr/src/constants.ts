import { assert, limits } from '@veritydb/types';

/**
 * Bounds and timeouts of the VSR replica, in ticks where they are times. Values that belong in
 * `@veritydb/types` limits later (see VSR.md) live here meanwhile, with their relationships asserted.
 */
export const vsrConstants = Object.freeze({
  /** Headers a do_view_change / start_view carries: the uncommitted suffix fits with room to spare. */
  viewHeadersMax: limits.pipelinePreparesMax * 2 + 2,
  /** Headers one `headers` reply may carry. */
  repairHeadersMax: 64,
  /** Prepares a replica requests per repair round. */
  repairPreparesMax: 16,
  /** Framing and fixed fields of a `state` message besides its two byte strings. */
  stateMessageOverheadBytes: 1024,
  /** Largest encoded replica message (a prepare with the largest body plus framing). */
  messageBytesMax: limits.frameBytesMax,
  /** Backup: ticks without a prepare/commit from the primary before voting for a new view. */
  primaryTimeoutTicks: 40,
  /** Primary: ticks between commit heartbeats. */
  commitIntervalTicks: 8,
  /** Primary: ticks before re-sending a prepare that lacks a quorum of prepare_ok. */
  prepareTimeoutTicks: 12,
  /** Primary: ticks without hearing from a replication quorum before abdicating. */
  abdicateTimeoutTicks: 60,
  /** View change: ticks before giving up on a view and voting for the next one. */
  viewChangeTimeoutTicks: 50,
  /** Ticks a start_view_change vote stays counted (votes are re-sent while they hold). */
  voteLifetimeTicks: 30,
  /** Ticks between repair rounds (request_headers / request_prepare / request_start_view). */
  repairIntervalTicks: 6,
  /** Ops between checkpoints, where replicas compare state hashes (a replica may be given another interval). */
  checkpointIntervalOps: 1024,
  /** A backup this many ops behind its commit, missing the next entry, asks the primary for its state. */
  stateTransferLagOps: 1024,
  /** Checkpoint hashes kept, own and peers' (a peer ahead reports hashes this replica has not reached yet). */
  checkpointHashesMax: 8,
  /** Client sessions kept before deterministic eviction (a replica may be given fewer). */
  clientSessionsMax: limits.clientSessionsMax,
});

assert(vsrConstants.viewHeadersMax > limits.pipelinePreparesMax, 'view headers must cover the whole pipeline');
assert(vsrConstants.commitIntervalTicks * 3 < vsrConstants.primaryTimeoutTicks, 'several heartbeats fit in a primary timeout');
assert(vsrConstants.primaryTimeoutTicks < vsrConstants.abdicateTimeoutTicks, 'a primary abdicates after backups would time out');
assert(vsrConstants.voteLifetimeTicks > vsrConstants.repairIntervalTicks, 'votes outlive their re-send interval');

/** Replicas needed to commit (replication quorum) and to change view, per cluster size. */
export function quorums(replicaCount: number): { replication: number; viewChange: number } {
  assert(Number.isInteger(replicaCount) && replicaCount >= 1 && replicaCount <= limits.replicasMax,
    `replica count must be in [1, ${limits.replicasMax}], got ${replicaCount}`);
  // Majorities: any replication quorum intersects any view-change quorum.
  const majority = Math.floor(replicaCount / 2) + 1;
  const result = { replication: majority, viewChange: majority };
  assert(result.replication + result.viewChange > replicaCount, 'quorums intersect');
  return result;
}

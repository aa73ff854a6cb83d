/**
 * @veritydb/runtime (DESIGN §9): the layer that owns the real world — files, fsync, the clock —
 * and drives the pure core. Today: the single-node engine (log with group commit → kernel apply
 * → reads, checkpoints, exactly-once client sessions, directory lock, cluster identity) shared by
 * `vdb-server` and the SDK's embedded mode.
 */
export {
  SingleNodeEngine, runtimeLimits, CHECKPOINT_TIME_SHARE_MAX, EMBEDDED_CLUSTER, type EngineOptions, type EngineStatus,
  type SessionRegisterOutcome, type SessionWriteOutcome, type TenantName, type WaitOutcome,
} from './engine.js';
export { ClosedError, InvalidArgument, Overloaded } from './errors.js';
export { CHECKPOINT_FILE } from './checkpoint-file.js';
export { BACKUP_SKIPPED, type BackupCut, type BackupSource } from './backup-cut.js';
export { CLUSTER_ID_FILE } from './cluster-identity.js';
export {
  ClusterNode, clusterNodeLimits, type ClusterNodeOptions, type ClusterNodeStatus, type PeerTransport, type RegisterOutcome,
  type WriteOutcome,
} from './cluster/node.js';
export { Journal, JOURNAL_DIR, JOURNAL_GROW_BYTES, parseJournal, type JournalOpened } from './cluster/journal.js';
export { KernelMachine } from './cluster/machine.js';
export type { LedgerView } from './cluster/ledger.js';
export {
  EXPORT_MAGIC, EXPORT_PREAMBLE_BYTES, EXPORT_VERSION, SIGNATURE_DOMAIN, encodeExportHead, encodeStatement, exportLimits,
  parseStatement, signedMessage, verifyExport, type ChainHead, type ExportCheck, type ExportFault, type HeadStatement,
} from './export/format.js';
export { prepareTenantExport, type LogReader, type SigningKey, type TenantExport } from './export/writer.js';
export { KERNEL_OPTIONS } from './recovery.js';

import { assert } from './assert.js';

/**
 * Every bound in VerityDB, in one place, with the relationships between them asserted at load.
 * Names carry units last. Change a value here and the assertions below say what else must move.
 */
export const limits = Object.freeze({
  /** Largest record body (one request's payload) in the log. */
  recordBodyBytesMax: 8 * 1024 * 1024,
  /** Default size at which a log segment rolls. */
  segmentBytesDefault: 64 * 1024 * 1024,
  /** Smallest segment size accepted (tests use small ones to exercise rolling). */
  segmentBytesMin: 4 * 1024,
  /** Largest segment size accepted (offsets within a segment fit in a u32). */
  segmentBytesMax: 1024 * 1024 * 1024,
  /** Records one `append` call may carry. */
  appendBatchRecordsMax: 8192,
  /** Records one group commit covers with a single fdatasync. */
  groupCommitRecordsMax: 8192,
  /** Records appended to the log but not yet durable; beyond this `append` refuses (backpressure). */
  logPendingRecordsMax: 4 * 8192,
  /** Sealed log segments whose file handles stay open for reads. */
  segmentReadHandlesMax: 16,
  /** Copies of the superblock kept on disk. */
  superblockCopies: 4,
  /** Largest superblock payload. */
  superblockPayloadBytesMax: 64 * 1024,
  /** Largest wire frame (DESIGN §10). */
  frameBytesMax: 16 * 1024 * 1024,
  /** Largest SQL text in one statement. */
  sqlTextBytesMax: 1024 * 1024,
  /** Statements in one atomic batch. */
  batchStatementsMax: 1024,
  /** Largest single value (TEXT, BYTES, JSON) in a row. */
  valueBytesMax: 1024 * 1024,
  /** Columns per table. */
  tableColumnsMax: 256,
  /** Tables per tenant. */
  tenantTablesMax: 4096,
  /** Identifier length (table, column, index names). */
  identifierBytesMax: 63,
  /** Rows one query may return. */
  queryRowsMax: 1_000_000,
  /** Parsed statements kept in the statement cache. */
  statementCacheEntriesMax: 4096,
  /** Prepares in flight at the primary (VSR pipeline). */
  pipelinePreparesMax: 64,
  /** Client requests queued at the primary behind the pipeline. */
  requestQueueMax: 4096,
  /** Client sessions kept in the session table before deterministic eviction. */
  clientSessionsMax: 4096,
  /** Replicas in a cluster. */
  replicasMax: 5,
  /** Ops between checkpoints. */
  checkpointIntervalOps: 4096,
});

export type Limits = typeof limits;

assert(limits.segmentBytesMin <= limits.segmentBytesDefault && limits.segmentBytesDefault <= limits.segmentBytesMax,
  'segment default within [min, max]');
assert(limits.segmentBytesMax <= 0xffff_ffff, 'segment offsets must fit in a u32');
assert(limits.recordBodyBytesMax < limits.segmentBytesDefault, 'a record must fit in a default segment');
assert(limits.recordBodyBytesMax <= limits.frameBytesMax, 'a request must fit in one frame');
assert(limits.valueBytesMax <= limits.recordBodyBytesMax, 'a value must fit in a record');
assert(limits.sqlTextBytesMax <= limits.recordBodyBytesMax, 'a statement must fit in a record');
assert(limits.appendBatchRecordsMax <= limits.groupCommitRecordsMax, 'one append fits in one group commit');
assert(limits.pipelinePreparesMax <= limits.requestQueueMax, 'the queue holds at least a pipeline');
assert(limits.logPendingRecordsMax >= limits.groupCommitRecordsMax, 'a full group commit fits behind the pending bound');
assert(limits.segmentReadHandlesMax >= 1, 'reads need at least one open segment');
assert(limits.superblockCopies >= 2, 'a torn superblock write must leave a good copy');
assert(limits.checkpointIntervalOps > limits.pipelinePreparesMax, 'a checkpoint never lands inside the pipeline');

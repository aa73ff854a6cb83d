export {
  Log, APPEND_PENDING_RECORDS_MAX, type LogOptions, type LogHead, type LogStats, type LogPrefixFile, type RecoveryReport, type VerifyOptions,
  type VerifyProgress, type VerifyReason, type VerifyResult,
} from './log.js';
export type { FaultMode, FaultyRecord } from './recovery.js';
export { auditSegment } from './recovery.js';
export {
  RECORD_MAGIC, RECORD_VERSION_BLAKE3, RECORD_PREFIX_BYTES, RECORD_HEADER_BYTES, RECORD_FRAME_BYTES_MIN,
  RECORD_FRAME_BYTES_MAX, encodeRecord, encodeRecordInto, decodeRecord, decodeRecordAt, decodeHeader, recordFrameBytes,
  type RecordFields, type RecordLinks, type RecordHeader, type LogRecord, type RecordFault, type Decoded,
} from './record.js';
export { INDEX_HEADER_BYTES, INDEX_SLOT_BYTES, segmentFileName, indexFileName } from './segment-index.js';
export {
  Superblock, SUPERBLOCK_COPY_BYTES, SUPERBLOCK_COPY_HEADER_BYTES, encodeSuperblockCopy, decodeSuperblockCopy,
  type SuperblockCopyState,
} from './superblock.js';
export { syncDirectory, processAlive, writeFully, readAt } from './files.js';

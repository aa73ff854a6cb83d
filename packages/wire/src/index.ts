/**
 * @veritydb/wire: the VerityDB wire protocol (PROTOCOL.md). Pure encoding and an incremental,
 * socket-free decoder; no I/O.
 *
 *   bytes ──FrameDecoder.push──▶ Frame.payload ──decodeClientMessage──▶ ClientMessage
 *   ServerMessage ──encodeServerMessage──▶ payload ──encodeFrame──▶ bytes
 */
export { FRAME_HEADER_BYTES, FRAME_MAGIC, FRAME_VERSION, encodeFrame, payloadCrc, type Frame } from './frame.js';
export { FrameDecoder, type FrameDecoderOptions, type FrameError, type FramePush } from './frame-decoder.js';
export {
  decodeClientMessage, decodeRequest, decodeResponse, decodeServerMessage, encodeClientMessage, encodeRequest,
  encodeResponse, encodeServerMessage, frameErrorResponse,
} from './codec.js';
export {
  ClientHandshake, PROTOCOL_VERSIONS, ServerHandshake, connectionError, negotiateVersion, type ClientHandshakeState,
  type ClientStep, type ServerHandshakeState, type ServerIdentity, type ServerStep,
} from './handshake.js';
export {
  CONSISTENCY_MODES, DEFAULT_REQUEST_OPTIONS, ERROR_CODES, REPLICA_ROLES, REPLICA_STATES, isFinalResponse,
  type AdminOp, type ClientHello, type ClientMessage, type ClusterStatus, type Column, type Consistency,
  type Decoded, type ErrorCode, type PlainErrorCode, type PrimaryHint, type ReplicaStatus, type Request,
  type RequestBody, type RequestId, type RequestOptions, type Response, type ResponseBody, type Result, type Role,
  type ServerHello, type ServerMessage, type Session, type Statement, type TenantInfo, type WireError, type VerifyReport,
  type VerifyOutcome, type ExportChunk, type BackupFileChunk, type BackupDone,
} from './messages.js';
export {
  VALUE_TAG, dateFromDays, daysFromDate, decodeRowBlock, decodeValueList, encodeRowBlock, encodeValueList, fromValue,
  toValue, valueFitsType, type WireValue, type WireValueKind,
} from './values.js';
export { isBackupPath, validateClientMessage, validateServerMessage } from './validate.js';
export { wireLimits, type WireLimits } from './limits.js';
export { encodeResultFrames, type ResultToStream } from './stream.js';

/**
 * `veritydb` — the VerityDB SDK (DESIGN §11). Embedded mode: `Verity.open(dir)` runs the
 * engine in-process (log, kernel, store, SQL) on a data directory. Remote mode:
 * `Verity.connect({ addresses, token })` talks to `vdb-server` over the wire protocol. Both
 * return the same `Verity`/`Tenant` API.
 */
export {
  Verity, Tenant, type OpenOptions, type WriteResult, type ReadResult, type QueryOptions, type Consistency,
  type BatchStatement, type BatchResult, type EventFilter, type VerityEvent, type ResultColumn, type TenantInfo,
  type DatabaseStatus, type ReplicaInfo, type VerifyScope, type VerifyOptions,
} from './verity.js';
export type { ConnectOptions } from './remote.js';
export type { BackupPart } from './backup.js';
export type { CallOptions } from './options.js';
export type { VerifyResult } from '@veritydb/storage';
export { Timestamp, type Row, type OutValue, type SqlParam } from './values.js';
export {
  VerityError, SqlError, ConstraintViolation, TenantNotFound, TenantExists, TimeoutError, AbortedError,
  IndeterminateError, ClosedError, InvalidArgument, PositionUnavailable, Unauthorized, Forbidden, RemoteError, NotSupported,
  type SqlErrorDetails,
} from './errors.js';

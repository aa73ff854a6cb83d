/**
 * `veritydb` — the VerityDB SDK (DESIGN §11). Embedded mode: `Verity.open(dir)` runs the
 * engine in-process (log, kernel, store, SQL) on a data directory.
 */
export {
  Verity, Tenant, type OpenOptions, type WriteResult, type ReadResult, type QueryOptions, type Consistency,
  type BatchStatement, type BatchResult, type EventFilter, type VerityEvent, type ResultColumn,
} from './verity.js';
export type { CallOptions } from './options.js';
export type { VerifyResult } from '@veritydb/storage';
export { Timestamp, type Row, type OutValue, type SqlParam } from './values.js';
export {
  VerityError, SqlError, ConstraintViolation, TenantNotFound, TenantExists, TimeoutError, AbortedError,
  IndeterminateError, ClosedError, InvalidArgument, PositionUnavailable, type SqlErrorDetails,
} from './errors.js';

/**
 * @veritydb/client: the low-level client of the VerityDB wire protocol (packages/wire/PROTOCOL.md).
 *
 *   Connection  one authenticated TCP connection to one server: pipelining, streamed results,
 *               typed errors, timeouts (Indeterminate for writes, Timeout for reads), AbortSignal,
 *               a bounded number of requests in flight (Overloaded).
 *   Client      a connection to the primary of a cluster, discovered from a list of addresses and
 *               followed through NotPrimary redirects.
 *
 * Values travel as wire values (`WireValue`, re-exported) so every SQL type round-trips exactly;
 * the SDK (`veritydb`) converts them to plain JavaScript.
 */
export { Client, REDIRECTS_MAX_DEFAULT, type ClientOptions } from './client.js';
export {
  Connection, connectionLimits, type CallOptions, type ConnectionOptions, type ExecuteOptions, type ExecuteResult,
  type QueryResult, type ReadOptions, type StatementResult,
} from './connection.js';
export { formatAddress, parseAddress, type Address, type ParsedAddress } from './address.js';
export {
  AbortedError, BadFrameError, BadRequestError, CancelledError, ClientError, ConnectionClosedError,
  ConstraintViolationError, EvictedError, ForbiddenError, IndeterminateError, InternalError, NotPrimaryError, NotSupportedError,
  OverloadedError, QuotaExceededError, SqlError, TenantExistsError, TenantNotFoundError, TimeoutError,
  UnauthorizedError, UnavailableError, UnsupportedVersionError, fromWireError, type ClientErrorCode,
} from './errors.js';
export type { Column, Result, Statement, WireValue, Session, TenantInfo, ClusterStatus, VerifyReport, VerifyOutcome, BackupFileChunk, BackupDone, ResponseBody } from '@veritydb/wire';

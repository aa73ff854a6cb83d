import { assertNever, VerityError } from '@veritydb/types';
import type { ErrorCode, PrimaryHint, WireError } from '@veritydb/wire';

/**
 * Errors the client throws. Each is a `VerityError` whose `code` is stable: the wire error
 * codes (PROTOCOL.md §7) one for one, plus two that only a client can observe
 * (`ConnectionClosed`, `Aborted`). Switch on `code`, or use `instanceof` on the classes.
 *
 * @example
 *   try { await connection.execute(1, [{ sql: 'INSERT …', params: [] }]); }
 *   catch (e) { if (e instanceof IndeterminateError) retryWithSameSession(); }
 */
export type ClientErrorCode = ErrorCode | 'ConnectionClosed' | 'Aborted';

export class ClientError extends VerityError {
  override readonly name: string = 'ClientError';
  declare readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(code, message, details);
  }
}

/** A write or linearizable read reached a replica that is not the primary; `primary` says where to go. */
export class NotPrimaryError extends ClientError {
  override readonly name: string = 'NotPrimaryError';
  readonly primary: PrimaryHint;
  constructor(message: string, primary: PrimaryHint) {
    super('NotPrimary', message, { primary });
    this.primary = primary;
  }
}

/** The token is missing, malformed, badly signed, expired or revoked. */
export class UnauthorizedError extends ClientError {
  override readonly name: string = 'UnauthorizedError';
  constructor(message: string) { super('Unauthorized', message); }
}

/** The token is valid but lacks the scope for this request. */
export class ForbiddenError extends ClientError {
  override readonly name: string = 'ForbiddenError';
  constructor(message: string) { super('Forbidden', message); }
}

export class TenantNotFoundError extends ClientError {
  override readonly name: string = 'TenantNotFoundError';
  constructor(message: string) { super('TenantNotFound', message); }
}

export class TenantExistsError extends ClientError {
  override readonly name: string = 'TenantExistsError';
  constructor(message: string) { super('TenantExists', message); }
}

/** A parse, name or type error. `line`/`column` are 1-based, 0 when unknown. */
export class SqlError extends ClientError {
  override readonly name: string = 'SqlError';
  readonly sqlState: string;
  readonly line: number;
  readonly column: number;
  constructor(message: string, sqlState: string, line: number, column: number) {
    super('SqlError', message, { sqlState, line, column });
    this.sqlState = sqlState;
    this.line = line;
    this.column = column;
  }
}

/** A primary key, unique or not-null constraint refused the write; nothing changed. */
export class ConstraintViolationError extends ClientError {
  override readonly name: string = 'ConstraintViolationError';
  readonly constraint: string;
  constructor(message: string, constraint: string) {
    super('ConstraintViolation', message, { constraint });
    this.constraint = constraint;
  }
}

export class QuotaExceededError extends ClientError {
  override readonly name: string = 'QuotaExceededError';
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super('QuotaExceeded', message, { retryAfterMs });
    this.retryAfterMs = retryAfterMs;
  }
}

/** A read did not complete in time. Reads change nothing, so retrying is always safe. */
export class TimeoutError extends ClientError {
  override readonly name: string = 'TimeoutError';
  constructor(message: string) { super('Timeout', message); }
}

/**
 * The outcome of a write is unknown: it may or may not have been applied. Never treat this
 * as a failure; retry with the same session and request number, or read to find out.
 */
export class IndeterminateError extends ClientError {
  override readonly name: string = 'IndeterminateError';
  constructor(message: string) { super('Indeterminate', message); }
}

/** Too many requests are queued (here or at the server); back off for `retryAfterMs`. */
export class OverloadedError extends ClientError {
  override readonly name: string = 'OverloadedError';
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super('Overloaded', message, { retryAfterMs });
    this.retryAfterMs = retryAfterMs;
  }
}

/** Error codes with no detail share one class each, named after the code. */
export class BadFrameError extends ClientError {
  override readonly name: string = 'BadFrameError';
  constructor(message: string) { super('BadFrame', message); }
}
export class BadRequestError extends ClientError {
  override readonly name: string = 'BadRequestError';
  constructor(message: string) { super('BadRequest', message); }
}
export class UnsupportedVersionError extends ClientError {
  override readonly name: string = 'UnsupportedVersionError';
  constructor(message: string) { super('UnsupportedVersion', message); }
}
export class EvictedError extends ClientError {
  override readonly name: string = 'EvictedError';
  constructor(message: string) { super('Evicted', message); }
}
export class UnavailableError extends ClientError {
  override readonly name: string = 'UnavailableError';
  constructor(message: string) { super('Unavailable', message); }
}
export class CancelledError extends ClientError {
  override readonly name: string = 'CancelledError';
  constructor(message: string) { super('Cancelled', message); }
}
export class InternalError extends ClientError {
  override readonly name: string = 'InternalError';
  constructor(message: string) { super('Internal', message); }
}

/** The server does not offer this request (in this configuration); the message says what to do instead. */
export class NotSupportedError extends ClientError {
  override readonly name: string = 'NotSupportedError';
  constructor(message: string) { super('NotSupported', message); }
}

/** The connection is gone (refused, reset, closed); a read in flight failed with it. */
export class ConnectionClosedError extends ClientError {
  override readonly name: string = 'ConnectionClosedError';
  constructor(message: string) { super('ConnectionClosed', message); }
}

/** The caller's AbortSignal fired; for a read, or for a write that was never sent. */
export class AbortedError extends ClientError {
  override readonly name: string = 'AbortedError';
  constructor(message: string) { super('Aborted', message); }
}

/** The client error for a wire error (exhaustive over the codes). */
export function fromWireError(error: WireError): ClientError {
  switch (error.code) {
    case 'NotPrimary': return new NotPrimaryError(error.message, error.primary);
    case 'SqlError': return new SqlError(error.message, error.sqlState, error.line, error.column);
    case 'ConstraintViolation': return new ConstraintViolationError(error.message, error.constraint);
    case 'QuotaExceeded': return new QuotaExceededError(error.message, error.retryAfterMs);
    case 'Overloaded': return new OverloadedError(error.message, error.retryAfterMs);
    case 'Unauthorized': return new UnauthorizedError(error.message);
    case 'Forbidden': return new ForbiddenError(error.message);
    case 'TenantNotFound': return new TenantNotFoundError(error.message);
    case 'TenantExists': return new TenantExistsError(error.message);
    case 'Timeout': return new TimeoutError(error.message);
    case 'Indeterminate': return new IndeterminateError(error.message);
    case 'BadFrame': return new BadFrameError(error.message);
    case 'BadRequest': return new BadRequestError(error.message);
    case 'UnsupportedVersion': return new UnsupportedVersionError(error.message);
    case 'Evicted': return new EvictedError(error.message);
    case 'Unavailable': return new UnavailableError(error.message);
    case 'Cancelled': return new CancelledError(error.message);
    case 'Internal': return new InternalError(error.message);
    case 'NotSupported': return new NotSupportedError(error.message);
    default: return assertNever(error);
  }
}

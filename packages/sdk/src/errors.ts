import { VerityError } from '@veritydb/types';
import { ClosedError, InvalidArgument } from '@veritydb/runtime';

/**
 * Errors the SDK throws. Every one is a `VerityError` with a stable `code` to switch on;
 * the classes group them (`instanceof SqlError`). Bugs are never reported this way: an
 * `AssertionError` means VerityDB itself is wrong.
 *
 * @example
 *   try { await t.execute('INSERT INTO p VALUES (1)'); }
 *   catch (e) { if (e instanceof ConstraintViolation) console.log(e.code, e.position); }
 */
export { VerityError };

/** `ClosedError` (the database is closed) and `InvalidArgument` (a call with arguments the SDK
 * cannot send: wrong types, bad ids, oversize text) are the engine's own: they live in
 * `@veritydb/runtime`, shared with the server. */
export { ClosedError, InvalidArgument };

export interface SqlErrorDetails {
  /** PostgreSQL SQLSTATE, where one exists. */
  readonly sqlState: string;
  /** 1-based place in the SQL text, for errors tied to one. */
  readonly line?: number;
  readonly column?: number;
  /** Log position of the rejected entry, when the statement was a write that was logged. */
  readonly position?: number;
  /** Index of the failing statement within a batch. */
  readonly statement?: number;
}

/** A statement the SQL layer refused: `code` is the SQL error code (e.g. `UndefinedTable`). */
export class SqlError extends VerityError {
  override readonly name: string = 'SqlError';
  readonly sqlState: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly position: number | undefined;
  readonly statement: number | undefined;

  constructor(code: string, message: string, details: SqlErrorDetails) {
    super(code, message, { ...details });
    this.sqlState = details.sqlState;
    this.line = details.line;
    this.column = details.column;
    this.position = details.position;
    this.statement = details.statement;
  }
}

/** A write that would break a constraint (unique, not null, …): a business outcome. */
export class ConstraintViolation extends SqlError {
  override readonly name: string = 'ConstraintViolation';
}

/** SQL error codes that are constraint violations (SQLSTATE class 23). */
export function isConstraintState(sqlState: string): boolean {
  return sqlState.startsWith('23');
}

export class TenantNotFound extends VerityError {
  override readonly name: string = 'TenantNotFound';
  constructor(tenant: number) {
    super('TenantNotFound', `tenant ${tenant} does not exist`, { tenant });
  }
}

export class TenantExists extends VerityError {
  override readonly name: string = 'TenantExists';
  constructor(tenant: number) {
    super('TenantExists', `tenant ${tenant} already exists`, { tenant });
  }
}

/** The call gave up before its request reached the log: it certainly did not happen. */
export class TimeoutError extends VerityError {
  override readonly name: string = 'TimeoutError';
  constructor(timeoutMs: number) {
    super('Timeout', `timed out after ${timeoutMs} ms`, { timeoutMs });
  }
}

/** The caller's `AbortSignal` fired before the request reached the log. */
export class AbortedError extends VerityError {
  override readonly name: string = 'AbortedError';
  constructor(reason: unknown) {
    super('Aborted', `aborted${reason instanceof Error ? `: ${reason.message}` : ''}`);
  }
}

/** The call gave up (timeout or abort) after its write was handed to the log: it may or may
 * not have happened. Read your data (or the `__events` table) to find out. */
export class IndeterminateError extends VerityError {
  override readonly name: string = 'IndeterminateError';
  constructor(why: string) {
    super('Indeterminate', `${why} after the write was submitted: it may or may not have been applied`);
  }
}

/** An AS OF / `position` read beyond what this database has applied. */
export class PositionUnavailable extends VerityError {
  override readonly name: string = 'PositionUnavailable';
  constructor(requested: number, head: number) {
    super('PositionUnavailable', `position ${requested} is beyond the last applied position ${head}`, { requested, head });
  }
}

/** The server refused the token (missing, malformed, badly signed, expired or revoked). */
export class Unauthorized extends VerityError {
  override readonly name: string = 'Unauthorized';
  constructor(message: string) {
    super('Unauthorized', message);
  }
}

/** The token is valid but lacks the scope for this call. */
export class Forbidden extends VerityError {
  override readonly name: string = 'Forbidden';
  constructor(message: string) {
    super('Forbidden', message);
  }
}

/** Remote mode: the server or the connection failed the call for a reason that is not about the
 * call itself. `code` is the wire or client code (`Unavailable`, `ConnectionClosed`,
 * `Overloaded`, `NotPrimary`, `QuotaExceeded`, `BadRequest`, `Internal`, …). */
export class RemoteError extends VerityError {
  override readonly name: string = 'RemoteError';
}

/** The operation does not exist in this mode (e.g. `verify` over the wire protocol, which has
 * no verify request yet). */
export class NotSupported extends VerityError {
  override readonly name: string = 'NotSupported';
  constructor(message: string) {
    super('NotSupported', message);
  }
}

import {
  ClientError, ConstraintViolationError, SqlError as WireSqlError, type Column, type WireValue,
} from '@veritydb/client';
import type { Param } from '@veritydb/kernel';
import { SQL_ERROR_STATES } from '@veritydb/query';
import { VerityError, type JsonValue, type SqlType, type Value } from '@veritydb/types';
import {
  AbortedError, ConstraintViolation, Forbidden, IndeterminateError, InvalidArgument, NotSupported, RemoteError, SqlError, TenantExists,
  TenantNotFound, TimeoutError, Unauthorized,
} from './errors.js';
import { toOutValue, toParams, type Row } from './values.js';

/**
 * Remote mode's conversions: SDK parameters to wire values, wire rows to the same row objects
 * embedded mode returns (through the same `toOutValue`), and client errors to the SDK's error
 * classes, so that code written against one mode runs unchanged against the other.
 */

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** Wire values for statement parameters (checked by the same `toParams` as embedded mode). */
export function toWireParams(params: readonly unknown[] | undefined): WireValue[] {
  return toParams(params).map((param, i) => toWireValue(param, i));
}

function toWireValue(param: Param, index: number): WireValue {
  if (param === null) return { kind: 'null' };
  switch (typeof param) {
    case 'boolean': return { kind: 'bool', value: param };
    case 'string': return { kind: 'text', value: param };
    case 'number': return Number.isSafeInteger(param) ? { kind: 'int64', value: BigInt(param) } : { kind: 'float64', value: param };
    case 'bigint':
      if (param < INT64_MIN || param > INT64_MAX) throw new InvalidArgument(`parameter ${index + 1} is outside the 64-bit integer range`);
      return { kind: 'int64', value: param };
    default: break;
  }
  if (param instanceof Uint8Array) return { kind: 'bytes', value: param };
  if (param instanceof Date) {
    const millis = param.getTime();
    if (Number.isNaN(millis)) throw new InvalidArgument(`parameter ${index + 1} is an invalid Date`);
    return { kind: 'timestamp', value: BigInt(millis) * 1000n };
  }
  return { kind: 'json', value: param as JsonValue };
}

/** A result row as an object keyed by column name (values as in embedded mode). */
export function wireRow(columns: readonly Column[], row: readonly WireValue[]): Row {
  const out: Row = {};
  columns.forEach((column, i) => {
    const value = row[i];
    out[column.name] = value === undefined ? null : toOutValue(toValue(value, column.type), column.type);
  });
  return out;
}

/** The engine's value for a wire value (an INTEGER column's int64 is a number, as in the engine). */
function toValue(value: WireValue, type: SqlType): Value {
  if (value.kind === 'null') return null;
  if (value.kind === 'int64' && type === 'INTEGER') return Number(value.value);
  return value.value;
}

export function wireRows(columns: readonly Column[], rows: readonly (readonly WireValue[])[]): Row[] {
  return rows.map((row) => wireRow(columns, row));
}

/** SQL error codes by SQLSTATE (the first code listed for a state wins). */
const CODE_OF_STATE: ReadonlyMap<string, string> = new Map(
  Object.entries(SQL_ERROR_STATES).reverse().map(([code, state]) => [state, code] as const),
);
/** The server prefixes a batch statement's error and suffixes where a rejected write was logged. */
const STATEMENT_PREFIX = /^statement (\d+): /;
const LOGGED_SUFFIX = / \(the attempt is logged at position (\d+)\)$/;
/** Kernel errors without a SQLSTATE travel as `Code: message` with state 22023. */
const CODE_PREFIX = /^([A-Z][A-Za-z]+): /;

/** What the caller was doing when an error came back: decides the error class and details. */
export interface ErrorContext {
  readonly tenant?: number;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/**
 * The SDK error for an error from the client: the same classes and codes as embedded mode for
 * the same outcome, plus `Unauthorized`, `Forbidden` and `RemoteError` (connection, overload,
 * server failures). Anything that is not a client error is returned as it is.
 */
export function sdkError(error: unknown, context: ErrorContext): unknown {
  if (!(error instanceof ClientError)) return error;
  if (error instanceof WireSqlError) return sqlError(error.message, error.sqlState, error.line, error.column);
  if (error instanceof ConstraintViolationError) return constraintError(error.message);
  switch (error.code) {
    case 'TenantNotFound': return context.tenant === undefined ? new VerityError('TenantNotFound', error.message) : new TenantNotFound(context.tenant);
    case 'TenantExists': return context.tenant === undefined ? new VerityError('TenantExists', error.message) : new TenantExists(context.tenant);
    case 'Unauthorized': return new Unauthorized(error.message);
    case 'Forbidden': return new Forbidden(error.message);
    case 'NotSupported': return new NotSupported(error.message);
    case 'Timeout': return new TimeoutError(context.timeoutMs);
    case 'Aborted': return new AbortedError(context.signal?.reason);
    case 'Indeterminate':
      return new IndeterminateError(context.signal?.aborted === true ? 'aborted'
        : /no reply within/.test(error.message) ? `timed out after ${context.timeoutMs} ms` : 'the connection ended');
    default: return new RemoteError(error.code, error.message, error.details);
  }
}

function sqlError(text: string, sqlState: string, line: number, column: number): VerityError {
  const { message, statement, position } = unwrap(text);
  const kernelCode = sqlState === '22023' ? CODE_PREFIX.exec(message)?.[1] : undefined;
  if (kernelCode !== undefined && !Object.hasOwn(SQL_ERROR_STATES, kernelCode)) {
    return new VerityError(kernelCode, message.slice(kernelCode.length + 2), position === undefined ? {} : { position });
  }
  return new SqlError(CODE_OF_STATE.get(sqlState) ?? 'SqlError', message, {
    sqlState,
    ...(line > 0 ? { line } : {}),
    ...(column > 0 ? { column } : {}),
    ...(position === undefined ? {} : { position }),
    ...(statement === undefined ? {} : { statement }),
  });
}

function constraintError(text: string): ConstraintViolation {
  const { message, statement, position } = unwrap(text);
  const notNull = /not-null constraint|contains null values/.test(message);
  return new ConstraintViolation(notNull ? 'NotNullViolation' : 'UniqueViolation', message, {
    sqlState: notNull ? SQL_ERROR_STATES.NotNullViolation : SQL_ERROR_STATES.UniqueViolation,
    ...(position === undefined ? {} : { position }),
    ...(statement === undefined ? {} : { statement }),
  });
}

/** The message as embedded mode words it, with the statement index and logged position apart. */
export function unwrap(text: string): { message: string; statement?: number; position?: number } {
  let message = text;
  let statement: number | undefined;
  let position: number | undefined;
  const prefix = STATEMENT_PREFIX.exec(message);
  if (prefix !== null) {
    statement = Number(prefix[1]) - 1;
    message = message.slice(prefix[0].length);
  }
  const suffix = LOGGED_SUFFIX.exec(message);
  if (suffix !== null) {
    position = Number(suffix[1]);
    message = message.slice(0, suffix.index);
  }
  return {
    message,
    ...(statement === undefined ? {} : { statement }),
    ...(position === undefined ? {} : { position }),
  };
}

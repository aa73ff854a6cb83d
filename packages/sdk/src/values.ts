import type { Row as EngineRow, SqlType, Value } from '@veritydb/types';
import { timestampText, type ColumnInfo } from '@veritydb/query';
import { isParam, type Param } from '@veritydb/kernel';
import { InvalidArgument } from './errors.js';

/**
 * Values as the SDK hands them out (DESIGN §11): BIGINT as a number when it is a safe integer,
 * else a bigint; TIMESTAMP as a `Timestamp` (a `Date` that also carries the exact
 * microseconds); DATE as 'YYYY-MM-DD' text (no time zone to get wrong); BYTES as
 * `Uint8Array`; JSON parsed.
 */

/**
 * A TIMESTAMP value. JavaScript dates hold milliseconds, the engine holds microseconds: this is
 * a `Date` (at the millisecond, rounded down) with the exact value in `micros`. Sent back as a
 * parameter it keeps its microseconds.
 *
 * @example const ts = rows[0].created as Timestamp; ts.toISOString(); ts.micros; // 1715…123456n
 */
export class Timestamp extends Date {
  /** Microseconds since the Unix epoch (UTC). */
  readonly micros: bigint;

  constructor(micros: bigint) {
    const remainder = micros % 1000n;
    super(Number((micros - remainder) / 1000n) - (remainder < 0n ? 1 : 0));
    this.micros = micros;
  }

  /** PostgreSQL's text form, e.g. '2024-01-01 12:30:45.123456'. */
  toSqlText(): string {
    return timestampText(this.micros);
  }
}
export type OutValue = null | boolean | number | bigint | string | Uint8Array | Date | unknown;
/** A result row: an object keyed by column name, in column order. */
export type Row = Record<string, OutValue>;

/** What a statement parameter may be: numbers, bigints, strings, booleans, null/undefined,
 * `Uint8Array`, `Date`, or a JSON object/array. */
export type SqlParam = Param | undefined;

export function toRows(columns: readonly ColumnInfo[], rows: readonly EngineRow[]): Row[] {
  return rows.map((row) => toRow(columns, row));
}

export function toRow(columns: readonly ColumnInfo[], row: EngineRow): Row {
  const out: Row = {};
  columns.forEach((column, i) => {
    out[column.name] = toOutValue(row[i] as Value, column.type);
  });
  return out;
}

export function toOutValue(value: Value, type: SqlType): OutValue {
  if (value === null) return null;
  if (typeof value === 'bigint') {
    if (type === 'TIMESTAMP') return new Timestamp(value);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }
  return value;
}

/** Checks and normalises parameters before they are logged: `undefined` becomes null. */
export function toParams(params: readonly unknown[] | undefined): Param[] {
  if (params === undefined) return [];
  if (!Array.isArray(params)) throw new InvalidArgument('params must be an array');
  return params.map((value: unknown, i) => {
    if (value === undefined) return null;
    // As text, a Timestamp converts to its column's type with every microsecond (a Date
    // parameter would be cut to milliseconds).
    if (value instanceof Timestamp) return value.toSqlText();
    if (!isParam(value)) throw new InvalidArgument(`parameter ${i + 1} is not a value VerityDB can store (${describe(value)})`);
    return value;
  });
}

function describe(value: unknown): string {
  if (typeof value === 'object' && value !== null) return value.constructor?.name ?? 'object';
  return typeof value;
}

import type { Row as EngineRow, SqlType, Value } from '@veritydb/types';
import type { ColumnInfo } from '@veritydb/query';
import { isParam, type Param } from '@veritydb/kernel';
import { InvalidArgument } from './errors.js';

/**
 * Values as the SDK hands them out (DESIGN §11): BIGINT as a number when it is a safe integer,
 * else a bigint; TIMESTAMP as a `Date` (millisecond precision; the engine keeps µs); DATE as
 * 'YYYY-MM-DD' text (no time zone to get wrong); BYTES as `Uint8Array`; JSON parsed.
 */
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
    if (type === 'TIMESTAMP') return new Date(Number(value / 1000n) - (value % 1000n < 0n ? 1 : 0));
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
    if (!isParam(value)) throw new InvalidArgument(`parameter ${i + 1} is not a value VerityDB can store (${describe(value)})`);
    return value;
  });
}

function describe(value: unknown): string {
  if (typeof value === 'object' && value !== null) return value.constructor?.name ?? 'object';
  return typeof value;
}

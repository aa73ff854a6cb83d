import { canonicalJson, limits, VerityError, type JsonValue, type SqlType, type Value } from '@veritydb/types';
import { ByteReader, ByteWriter, MalformedBytes } from './bytes.js';
import { wireLimits } from './limits.js';

/**
 * A value on the wire, tagged with its wire type (PROTOCOL.md §6). In memory a DATE and a TEXT
 * are both strings and a TIMESTAMP and a BIGINT are both bigints (see @veritydb/types), so the
 * wire keeps the tag to round-trip exactly.
 *
 * @example const v: WireValue = { kind: 'timestamp', value: 1_700_000_000_000_000n };
 */
export type WireValue =
  | { readonly kind: 'null' }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'int64'; readonly value: bigint }
  | { readonly kind: 'float64'; readonly value: number }
  | { readonly kind: 'text'; readonly value: string }
  | { readonly kind: 'bytes'; readonly value: Uint8Array }
  /** 'YYYY-MM-DD', years 0000..9999 (proleptic Gregorian). */
  | { readonly kind: 'date'; readonly value: string }
  /** Microseconds since 1970-01-01T00:00:00Z. */
  | { readonly kind: 'timestamp'; readonly value: bigint }
  | { readonly kind: 'json'; readonly value: JsonValue };

export type WireValueKind = WireValue['kind'];

/** Tag bytes of the value encoding. */
export const VALUE_TAG = Object.freeze({
  null: 0x00, false: 0x01, true: 0x02, int64: 0x03, float64: 0x04, text: 0x05, bytes: 0x06, date: 0x07,
  timestamp: 0x08, json: 0x09,
} as const);

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
/** Days from 1970-01-01 to 0000-01-01 and to 9999-12-31. */
const DATE_DAYS_MIN = -719_528;
const DATE_DAYS_MAX = 2_932_896;
const DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;
const LONE_SURROGATE = /\p{Cs}/u;

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A typed failure while encoding or decoding values. */
export class ValueError extends MalformedBytes {}

/** Writes a value list: `uvarint count, value*`. Throws VerityError('BadRequest') on invalid values. */
export function encodeValueList(values: readonly WireValue[]): Uint8Array {
  if (values.length > wireLimits.paramsMax) badValue(`${values.length} values exceed paramsMax ${wireLimits.paramsMax}`);
  const writer = new ByteWriter();
  writer.uvarint(values.length);
  for (const value of values) writeValue(writer, value);
  return writer.finish();
}

/** Reads a value list written by encodeValueList; throws MalformedBytes on any defect. */
export function decodeValueList(bytes: Uint8Array): WireValue[] {
  const reader = new ByteReader(bytes);
  const count = reader.uvarint(wireLimits.paramsMax);
  if (count > reader.remaining) throw new ValueError(`${count} values cannot fit in ${reader.remaining} bytes`);
  const values: WireValue[] = [];
  for (let i = 0; i < count; i++) values.push(readValue(reader));
  if (reader.remaining !== 0) throw new ValueError(`${reader.remaining} trailing bytes after the value list`);
  return values;
}

/** Writes a row block: `uvarint rowCount, uvarint columnCount, value* (row-major)`. */
export function encodeRowBlock(columnCount: number, rows: readonly (readonly WireValue[])[]): Uint8Array {
  const writer = new ByteWriter();
  writer.uvarint(rows.length);
  writer.uvarint(columnCount);
  rows.forEach((row, index) => {
    if (row.length !== columnCount) badValue(`row ${index} has ${row.length} values for ${columnCount} columns`);
    for (const value of row) writeValue(writer, value);
  });
  return writer.finish();
}

/** Reads a row block, checking its column count and each value's kind against the columns. */
export function decodeRowBlock(bytes: Uint8Array, columnTypes: readonly SqlType[]): WireValue[][] {
  const reader = new ByteReader(bytes);
  const rowCount = reader.uvarint(limits.queryRowsMax);
  const columnCount = reader.uvarint(wireLimits.resultColumnsMax);
  if (columnCount !== columnTypes.length) {
    throw new ValueError(`row block has ${columnCount} columns, the result declares ${columnTypes.length}`);
  }
  if (columnCount === 0 && rowCount !== 0) throw new ValueError('rows without columns');
  if (rowCount * columnCount > reader.remaining) throw new ValueError(`${rowCount} rows cannot fit in ${reader.remaining} bytes`);
  const rows: WireValue[][] = [];
  for (let r = 0; r < rowCount; r++) {
    const row: WireValue[] = [];
    for (let c = 0; c < columnCount; c++) {
      const value = readValue(reader);
      const type = columnTypes[c] as SqlType;
      if (!valueFitsType(value, type)) throw new ValueError(`row ${r} column ${c}: a ${value.kind} value in a ${type} column`);
      row.push(value);
    }
    rows.push(row);
  }
  if (reader.remaining !== 0) throw new ValueError(`${reader.remaining} trailing bytes after the row block`);
  return rows;
}

/** Whether a wire value may appear in a column of the given SQL type (NULL fits every type). */
export function valueFitsType(value: WireValue, type: SqlType): boolean {
  switch (value.kind) {
    case 'null': return true;
    case 'bool': return type === 'BOOLEAN';
    case 'int64': return type === 'BIGINT' || (type === 'INTEGER' && value.value >= -(2n ** 31n) && value.value < 2n ** 31n);
    case 'float64': return type === 'DOUBLE';
    case 'text': return type === 'TEXT';
    case 'bytes': return type === 'BYTES';
    case 'date': return type === 'DATE';
    case 'timestamp': return type === 'TIMESTAMP';
    case 'json': return type === 'JSON';
  }
}

/**
 * The engine's in-memory value (see @veritydb/types) for a wire value: int64 and timestamp
 * become bigint, date a 'YYYY-MM-DD' string; in an INTEGER column an int64 becomes a number.
 *
 * @example toValue({ kind: 'int64', value: 7n }, 'INTEGER') === 7
 */
export function toValue(value: WireValue, type?: SqlType): Value {
  if (value.kind === 'null') return null;
  if (value.kind === 'int64' && type === 'INTEGER') return Number(value.value);
  return value.value;
}

/**
 * The wire value for an in-memory value of a column type (used by servers sending rows).
 * Throws VerityError('BadRequest') if the value does not belong to the type.
 */
export function fromValue(value: Value, type: SqlType): WireValue {
  if (value === null) return { kind: 'null' };
  switch (type) {
    case 'BIGINT':
    case 'INTEGER':
      if (typeof value === 'bigint') return { kind: 'int64', value };
      if (typeof value === 'number' && Number.isSafeInteger(value)) return { kind: 'int64', value: BigInt(value) };
      break;
    case 'DOUBLE': if (typeof value === 'number') return { kind: 'float64', value }; break;
    case 'TEXT': if (typeof value === 'string') return { kind: 'text', value }; break;
    case 'BOOLEAN': if (typeof value === 'boolean') return { kind: 'bool', value }; break;
    case 'DATE': if (typeof value === 'string') return { kind: 'date', value }; break;
    case 'TIMESTAMP': if (typeof value === 'bigint') return { kind: 'timestamp', value }; break;
    case 'BYTES': if (value instanceof Uint8Array) return { kind: 'bytes', value }; break;
    case 'JSON':
      if (typeof value !== 'bigint' && !(value instanceof Uint8Array)) return { kind: 'json', value: value as JsonValue };
      break;
  }
  return badValue(`a ${typeof value} is not a ${type} value`);
}

function writeValue(writer: ByteWriter, value: WireValue): void {
  switch (value.kind) {
    case 'null': writer.u8(VALUE_TAG.null); return;
    case 'bool': writer.u8(value.value ? VALUE_TAG.true : VALUE_TAG.false); return;
    case 'int64':
      if (value.value < INT64_MIN || value.value > INT64_MAX) badValue(`int64 out of range: ${value.value}`);
      writer.u8(VALUE_TAG.int64);
      writer.varint64(value.value);
      return;
    case 'float64': writer.u8(VALUE_TAG.float64); writer.f64(value.value); return;
    case 'text':
      if (LONE_SURROGATE.test(value.value)) badValue('text contains a lone UTF-16 surrogate');
      writeLengthPrefixed(writer, VALUE_TAG.text, utf8.encode(value.value));
      return;
    case 'bytes': writeLengthPrefixed(writer, VALUE_TAG.bytes, value.value); return;
    case 'date': {
      const days = daysFromDate(value.value);
      if (days === null) badValue(`not a date in 0000-01-01..9999-12-31: ${JSON.stringify(value.value)}`);
      writer.u8(VALUE_TAG.date);
      writer.varint64(BigInt(days));
      return;
    }
    case 'timestamp':
      if (value.value < INT64_MIN || value.value > INT64_MAX) badValue(`timestamp out of range: ${value.value}`);
      writer.u8(VALUE_TAG.timestamp);
      writer.varint64(value.value);
      return;
    case 'json': {
      const depthError = jsonProblem(value.value, 0);
      if (depthError !== null) badValue(depthError);
      writeLengthPrefixed(writer, VALUE_TAG.json, utf8.encode(canonicalJson(value.value)));
      return;
    }
  }
}

function writeLengthPrefixed(writer: ByteWriter, tag: number, bytes: Uint8Array): void {
  if (bytes.length > limits.valueBytesMax) badValue(`value of ${bytes.length} bytes exceeds valueBytesMax ${limits.valueBytesMax}`);
  writer.u8(tag);
  writer.uvarint(bytes.length);
  writer.raw(bytes);
}

function readValue(reader: ByteReader): WireValue {
  const at = reader.offset;
  const tag = reader.u8();
  switch (tag) {
    case VALUE_TAG.null: return { kind: 'null' };
    case VALUE_TAG.false: return { kind: 'bool', value: false };
    case VALUE_TAG.true: return { kind: 'bool', value: true };
    case VALUE_TAG.int64: return { kind: 'int64', value: reader.varint64() };
    case VALUE_TAG.float64: return { kind: 'float64', value: reader.f64() };
    case VALUE_TAG.text: return { kind: 'text', value: readUtf8(reader, at) };
    case VALUE_TAG.bytes: return { kind: 'bytes', value: reader.raw(reader.uvarint(limits.valueBytesMax)).slice() };
    case VALUE_TAG.date: {
      const days = reader.varint64();
      if (days < BigInt(DATE_DAYS_MIN) || days > BigInt(DATE_DAYS_MAX)) throw new ValueError(`date out of range at byte ${at}`);
      return { kind: 'date', value: dateFromDays(Number(days)) };
    }
    case VALUE_TAG.timestamp: return { kind: 'timestamp', value: reader.varint64() };
    case VALUE_TAG.json: return { kind: 'json', value: readJson(reader, at) };
    default: throw new ValueError(`unknown value tag 0x${tag.toString(16).padStart(2, '0')} at byte ${at}`);
  }
}

function readUtf8(reader: ByteReader, at: number): string {
  const bytes = reader.raw(reader.uvarint(limits.valueBytesMax));
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new ValueError(`invalid UTF-8 in the value at byte ${at}`);
  }
}

function readJson(reader: ByteReader, at: number): JsonValue {
  const text = readUtf8(reader, at);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ValueError(`invalid JSON in the value at byte ${at}`);
  }
  const problem = jsonProblem(parsed as JsonValue, 0);
  if (problem !== null) throw new ValueError(`${problem} at byte ${at}`);
  return parsed as JsonValue;
}

/** Depth and finiteness check of a JSON value; it stops descending at the depth bound. */
function jsonProblem(value: JsonValue, depth: number): string | null {
  if (depth > wireLimits.jsonDepthMax) return `JSON nested deeper than ${wireLimits.jsonDepthMax}`;
  if (typeof value === 'number') return Number.isFinite(value) ? null : 'JSON numbers must be finite';
  if (value === null || typeof value !== 'object') return null;
  const children = Array.isArray(value) ? (value as readonly JsonValue[]) : Object.values(value as Record<string, JsonValue>);
  for (const child of children) {
    const problem = jsonProblem(child, depth + 1);
    if (problem !== null) return problem;
  }
  return null;
}

/** Days since 1970-01-01 of a 'YYYY-MM-DD' date, or null if it is not a real date in range. */
export function daysFromDate(text: string): number | null {
  const match = DATE_PATTERN.exec(text);
  if (match === null) return null;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  // Civil-to-days over 400-year eras, counted from March so the leap day ends the year.
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** 'YYYY-MM-DD' of a day count since 1970-01-01 (inverse of daysFromDate). */
export function dateFromDays(days: number): string {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) -
    Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthIndex = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
  const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

function badValue(message: string): never {
  throw new VerityError('BadRequest', message);
}

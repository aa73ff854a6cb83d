import { canonicalJson, limits, type JsonValue, type SqlType, type Value } from '@veritydb/types';
import { fail } from './errors.js';

/**
 * Value typing and conversion with PostgreSQL's rules: the input functions that turn text
 * (untyped literals, text parameters) into each type, the output text of each type, and the
 * casts between types. `UNKNOWN` is PostgreSQL's type of an untyped literal ('5', NULL) and of
 * a parameter before its context decides.
 */
export type ExprType = SqlType | 'UNKNOWN';

export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

export function checkInt32(n: number): number {
  if (!Number.isInteger(n) || n < INT32_MIN || n > INT32_MAX) fail('NumericOverflow', 'integer out of range');
  return n === 0 ? 0 : n;
}

export function checkInt64(n: bigint): bigint {
  if (n < INT64_MIN || n > INT64_MAX) fail('NumericOverflow', 'bigint out of range');
  return n;
}

export function isNumericType(t: ExprType): t is 'INTEGER' | 'BIGINT' | 'DOUBLE' {
  return t === 'INTEGER' || t === 'BIGINT' || t === 'DOUBLE';
}

/** Maps a type name as written (with PostgreSQL's aliases) to our type. */
export function sqlTypeFromName(raw: string): SqlType | null {
  const name = raw.toUpperCase().replace(/\s+/g, ' ').trim();
  switch (name) {
    case 'BIGINT': case 'INT8': case 'BIGSERIAL': return 'BIGINT';
    case 'INTEGER': case 'INT': case 'INT4': case 'SMALLINT': case 'INT2': return 'INTEGER';
    case 'DOUBLE PRECISION': case 'DOUBLE': case 'FLOAT': case 'FLOAT8': case 'REAL': case 'FLOAT4':
    case 'NUMERIC': case 'DECIMAL': return 'DOUBLE';
    case 'TEXT': case 'VARCHAR': case 'CHARACTER VARYING': case 'CHAR': case 'CHARACTER': case 'STRING': return 'TEXT';
    case 'BOOLEAN': case 'BOOL': return 'BOOLEAN';
    case 'DATE': return 'DATE';
    case 'TIMESTAMP': case 'TIMESTAMPTZ': case 'TIMESTAMP WITH TIME ZONE': case 'TIMESTAMP WITHOUT TIME ZONE': return 'TIMESTAMP';
    case 'BYTEA': case 'BYTES': case 'BLOB': return 'BYTES';
    case 'JSON': case 'JSONB': return 'JSON';
    default: return null;
  }
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function validDate(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return d <= (lengths[m - 1] as number);
}

/** 'YYYY-MM-DD' (a date) or null when the text is not a valid date. */
export function parseDateText(text: string): string | null {
  const m = DATE_RE.exec(text.trim());
  if (m === null) {
    const micros = parseTimestampText(text);
    return micros === null ? null : dateFromMicros(micros);
  }
  return validDate(Number(m[1]), Number(m[2]), Number(m[3])) ? (m[0] as string) : null;
}

/** Microseconds since the epoch (UTC) for 'YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][Z|±hh[:mm]]'. */
export function parseTimestampText(text: string): bigint | null {
  const m = TIMESTAMP_RE.exec(text.trim());
  if (m === null) return null;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const h = Number(m[4] ?? '0');
  const mi = Number(m[5] ?? '0');
  const s = Number(m[6] ?? '0');
  if (!validDate(y, mo, d) || h > 23 || mi > 59 || s > 59) return null;
  const fraction = BigInt((m[7] ?? '').padEnd(6, '0'));
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0'));
  }
  const seconds = daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offsetMinutes * 60;
  return BigInt(seconds) * 1_000_000n + fraction;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

export function dateFromMicros(micros: bigint): string {
  const days = Number((micros >= 0n ? micros : micros - 86_399_999_999n) / 86_400_000_000n);
  const [y, m, d] = civilFromDays(days);
  return `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
}

export function microsFromDate(date: string): bigint {
  const m = DATE_RE.exec(date);
  if (m === null) fail('InvalidDatetimeFormat', `invalid date "${date}"`);
  return BigInt(daysFromCivil(Number(m[1]), Number(m[2]), Number(m[3]))) * 86_400_000_000n;
}

/** PostgreSQL's text form of a timestamp: 'YYYY-MM-DD HH:MM:SS[.ffffff]'. */
export function timestampText(micros: bigint): string {
  const dayMicros = 86_400_000_000n;
  let days = micros / dayMicros;
  let rest = micros % dayMicros;
  if (rest < 0n) { rest += dayMicros; days -= 1n; }
  const [y, m, d] = civilFromDays(Number(days));
  const totalSeconds = Number(rest / 1_000_000n);
  const fraction = Number(rest % 1_000_000n);
  const time = `${pad(Math.floor(totalSeconds / 3600), 2)}:${pad(Math.floor(totalSeconds / 60) % 60, 2)}:${pad(totalSeconds % 60, 2)}`;
  const frac = fraction === 0 ? '' : `.${pad(fraction, 6).replace(/0+$/, '')}`;
  return `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)} ${time}${frac}`;
}

function hexOf(bytes: Uint8Array): string {
  let s = '\\x';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** PostgreSQL's text output of a value of type `type`. */
export function valueToText(value: Value, type: ExprType): string {
  if (value === null) fail('TypeMismatch', 'NULL has no text form');
  switch (type) {
    case 'TEXT': case 'DATE': case 'UNKNOWN': return typeof value === 'string' ? value : stringifyLoose(value);
    case 'INTEGER': case 'BIGINT': return String(value);
    case 'DOUBLE': return doubleText(value as number);
    case 'BOOLEAN': return value === true ? 'true' : 'false';
    case 'TIMESTAMP': return timestampText(value as bigint);
    case 'BYTES': return hexOf(value as Uint8Array);
    case 'JSON': return canonicalJson(value as JsonValue);
  }
}

function stringifyLoose(value: Value): string {
  if (value instanceof Uint8Array) return hexOf(value);
  if (typeof value === 'object') return canonicalJson(value as JsonValue);
  return String(value);
}

function doubleText(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  return String(n);
}

const TRUE_WORDS = new Set(['t', 'true', 'y', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['f', 'false', 'n', 'no', 'off', '0']);

/** The input function of `type`: text (an untyped literal or a text parameter) → value. */
export function valueFromText(text: string, type: SqlType): Value {
  const invalid = (): never => fail('InvalidTextRepresentation', `invalid input syntax for type ${type.toLowerCase()}: "${text}"`);
  switch (type) {
    case 'TEXT': return checkSize(text);
    case 'INTEGER': {
      const t = text.trim();
      if (!/^[+-]?\d+$/.test(t)) return invalid();
      const n = BigInt(t);
      if (n < BigInt(INT32_MIN) || n > BigInt(INT32_MAX)) fail('NumericOverflow', `value "${text}" is out of range for type integer`);
      return Number(n);
    }
    case 'BIGINT': {
      const t = text.trim();
      if (!/^[+-]?\d+$/.test(t)) return invalid();
      const n = BigInt(t);
      if (n < INT64_MIN || n > INT64_MAX) fail('NumericOverflow', `value "${text}" is out of range for type bigint`);
      return n;
    }
    case 'DOUBLE': {
      const t = text.trim().toLowerCase();
      if (t === 'nan') return NaN;
      if (t === 'infinity' || t === '+infinity' || t === 'inf') return Infinity;
      if (t === '-infinity' || t === '-inf') return -Infinity;
      if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(t)) return invalid();
      const n = Number(t);
      if (!Number.isFinite(n)) fail('NumericOverflow', `"${text}" is out of range for type double precision`);
      return n;
    }
    case 'BOOLEAN': {
      const t = text.trim().toLowerCase();
      if (TRUE_WORDS.has(t)) return true;
      if (FALSE_WORDS.has(t)) return false;
      return invalid();
    }
    case 'DATE': {
      const d = parseDateText(text);
      if (d === null) fail('InvalidDatetimeFormat', `invalid input syntax for type date: "${text}"`);
      return d;
    }
    case 'TIMESTAMP': {
      const m = parseTimestampText(text);
      if (m === null) fail('InvalidDatetimeFormat', `invalid input syntax for type timestamp: "${text}"`);
      return m;
    }
    case 'BYTES': return bytesFromText(text);
    case 'JSON': {
      try {
        return checkJsonSize(JSON.parse(text) as JsonValue);
      } catch {
        return fail('InvalidTextRepresentation', `invalid input syntax for type json: "${text.slice(0, 40)}"`);
      }
    }
  }
}

function bytesFromText(text: string): Uint8Array {
  if (text.startsWith('\\x')) {
    const hex = text.slice(2);
    if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) fail('InvalidTextRepresentation', 'invalid hexadecimal data for type bytea');
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    return checkSize(out);
  }
  if (text.includes('\\')) fail('InvalidTextRepresentation', 'invalid input syntax for type bytea (use the \\x hex format)');
  return checkSize(new TextEncoder().encode(text));
}

export function checkSize<T extends string | Uint8Array>(value: T): T {
  const length = typeof value === 'string' ? value.length : value.byteLength;
  if (length > limits.valueBytesMax) fail('StringTooLong', `value of ${length} bytes exceeds the ${limits.valueBytesMax}-byte limit`);
  return value;
}

function checkJsonSize(value: JsonValue): JsonValue {
  if (value !== null && typeof value === 'object') checkSize(canonicalJson(value));
  return value;
}

function roundHalfEven(n: number): number {
  const r = Math.round(n);
  return Math.abs(n % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** CAST(value AS to) from a value of static type `from` (`explicit` = written CAST or ::;
 * otherwise an assignment cast, as in INSERT/UPDATE, which PostgreSQL allows for fewer pairs). */
export function castValue(value: Value, from: ExprType, to: SqlType, explicit: boolean): Value {
  if (value === null) return null;
  if (from === to) return value;
  const mismatch = (): never =>
    fail('TypeMismatch', explicit
      ? `cannot cast type ${typeName(from)} to ${typeName(to)}`
      : `column is of type ${typeName(to)} but expression is of type ${typeName(from)}`);
  if (from === 'UNKNOWN') return typeof value === 'string' ? valueFromText(value, to) : castFromJs(value, to);
  if (to === 'TEXT') return checkSize(valueToText(value, from));
  switch (from) {
    case 'TEXT': return explicit ? valueFromText(value as string, to) : mismatch();
    case 'INTEGER': case 'BIGINT': case 'DOUBLE': {
      if (to === 'INTEGER' || to === 'BIGINT' || to === 'DOUBLE') return numericCast(value as number | bigint, to);
      if (to === 'BOOLEAN' && from === 'INTEGER' && explicit) return value !== 0;
      return mismatch();
    }
    case 'BOOLEAN': return to === 'INTEGER' && explicit ? (value === true ? 1 : 0) : mismatch();
    case 'DATE': return to === 'TIMESTAMP' ? microsFromDate(value as string) : mismatch();
    case 'TIMESTAMP': return to === 'DATE' ? dateFromMicros(value as bigint) : mismatch();
    case 'JSON': return mismatch();
    case 'BYTES': return mismatch();
  }
}

export function numericCast(value: number | bigint, to: 'INTEGER' | 'BIGINT' | 'DOUBLE'): number | bigint {
  switch (to) {
    case 'DOUBLE': return Number(value);
    case 'INTEGER': {
      if (typeof value === 'bigint') {
        if (value < BigInt(INT32_MIN) || value > BigInt(INT32_MAX)) fail('NumericOverflow', 'integer out of range');
        return Number(value);
      }
      if (!Number.isFinite(value)) fail('NumericOverflow', 'integer out of range');
      return checkInt32(roundHalfEven(value));
    }
    case 'BIGINT': {
      if (typeof value === 'bigint') return value;
      if (!Number.isFinite(value)) fail('NumericOverflow', 'bigint out of range');
      const r = roundHalfEven(value);
      if (r < -9223372036854775808 || r >= 9223372036854775808) fail('NumericOverflow', 'bigint out of range');
      return BigInt(r);
    }
  }
}

/** A JavaScript parameter value (DESIGN §11 SDK values) and the type it carries on its own. */
export function paramType(value: unknown): ExprType {
  if (value === null || value === undefined || typeof value === 'string') return 'UNKNOWN';
  if (typeof value === 'bigint') return 'BIGINT';
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX) return 'INTEGER';
    return Number.isSafeInteger(value) ? 'BIGINT' : 'DOUBLE';
  }
  if (typeof value === 'boolean') return 'BOOLEAN';
  if (value instanceof Uint8Array) return 'BYTES';
  if (value instanceof Date) return 'TIMESTAMP';
  return 'JSON';
}

/** Converts a parameter to its in-memory value for `paramType(value)`, or a typed error. */
export function paramValue(value: unknown, index: number): Value {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string': return checkSize(value);
    case 'boolean': return value;
    case 'bigint': return checkInt64(value);
    case 'number': {
      if (Number.isInteger(value) && !Number.isSafeInteger(value)) return value;
      return Number.isSafeInteger(value) && paramType(value) === 'BIGINT' ? BigInt(value) : value;
    }
    case 'object': {
      if (value instanceof Uint8Array) return checkSize(value);
      if (value instanceof Date) {
        const ms = value.getTime();
        if (!Number.isFinite(ms)) fail('InvalidParameter', `parameter $${index} is an invalid Date`);
        return BigInt(ms) * 1000n;
      }
      return jsonParam(value, index);
    }
    default: return fail('InvalidParameter', `parameter $${index} has unsupported type ${typeof value}`);
  }
}

function jsonParam(value: object, index: number): JsonValue {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    fail('InvalidParameter', `parameter $${index} is not JSON-serialisable`);
  }
  if (text === undefined) fail('InvalidParameter', `parameter $${index} is not JSON-serialisable`);
  checkSize(text);
  return JSON.parse(text) as JsonValue;
}

/** Conversion of a value whose type PostgreSQL would have inferred from context (a typed
 * parameter or an untyped NULL) to the context's type. */
function castFromJs(value: Value, to: SqlType): Value {
  if (typeof value === 'string') return valueFromText(value, to);
  if (to === 'JSON') return value;
  if (to === 'TEXT') return valueToText(value, 'UNKNOWN');
  return value;
}

export function typeName(t: ExprType): string {
  switch (t) {
    case 'DOUBLE': return 'double precision';
    case 'TIMESTAMP': return 'timestamp without time zone';
    case 'BYTES': return 'bytea';
    case 'UNKNOWN': return 'unknown';
    default: return t.toLowerCase();
  }
}

/** True when `value` is a valid in-memory value of `type` (asserted on the write path). */
export function valueHasType(value: Value, type: SqlType): boolean {
  if (value === null) return true;
  switch (type) {
    case 'BIGINT': case 'TIMESTAMP': return typeof value === 'bigint';
    case 'INTEGER': return typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
    case 'DOUBLE': return typeof value === 'number';
    case 'TEXT': return typeof value === 'string';
    case 'BOOLEAN': return typeof value === 'boolean';
    case 'DATE': return typeof value === 'string' && DATE_RE.test(value);
    case 'BYTES': return value instanceof Uint8Array;
    case 'JSON': return !(value instanceof Uint8Array) && typeof value !== 'bigint';
  }
}

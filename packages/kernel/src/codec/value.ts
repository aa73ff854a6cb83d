import { canonicalJson, type JsonValue, type Value } from '@veritydb/types';
import { ByteReader, ByteWriter, DecodeFailure } from './bytes.js';

/**
 * Canonical binary encoding of statement parameters. One encoding per value: numbers are
 * IEEE-754 doubles, bigints sign + magnitude, JSON documents their canonical text (sorted
 * keys), dates their epoch milliseconds, so equal parameters give equal bytes. A parameter
 * decodes to the same JavaScript type it was written as, because the SQL layer types a
 * parameter by its JavaScript type (a `Date` is a TIMESTAMP, a safe integer beyond int32 a
 * BIGINT): logging must not change what a statement means.
 */
export type Param = Value | Date;

const TAG_NULL = 0;
const TAG_FALSE = 1;
const TAG_TRUE = 2;
const TAG_NUMBER = 3;
const TAG_BIGINT = 4;
const TAG_STRING = 5;
const TAG_BYTES = 6;
const TAG_JSON = 7;
const TAG_DATE = 8;

export function writeValue(writer: ByteWriter, value: Param): void {
  if (value === null) {
    writer.u8(TAG_NULL);
    return;
  }
  switch (typeof value) {
    case 'boolean': writer.u8(value ? TAG_TRUE : TAG_FALSE); return;
    case 'number': writer.u8(TAG_NUMBER).f64(value); return;
    case 'bigint': writer.u8(TAG_BIGINT).bigint(value); return;
    case 'string': writer.u8(TAG_STRING).string(value); return;
    default:
      if (value instanceof Uint8Array) writer.u8(TAG_BYTES).bytes(value);
      else if (value instanceof Date) writer.u8(TAG_DATE).f64(value.getTime());
      else writer.u8(TAG_JSON).string(canonicalJson(value));
  }
}

export function readValue(reader: ByteReader): Param {
  const tag = reader.u8();
  switch (tag) {
    case TAG_NULL: return null;
    case TAG_FALSE: return false;
    case TAG_TRUE: return true;
    case TAG_NUMBER: return reader.f64();
    case TAG_BIGINT: return reader.bigint();
    case TAG_STRING: return reader.string();
    case TAG_BYTES: return reader.bytes();
    case TAG_JSON: return parseJsonDocument(reader.string());
    case TAG_DATE: return new Date(reader.f64());
    default: throw new DecodeFailure(`unknown value tag ${tag}`);
  }
}

function parseJsonDocument(text: string): JsonValue {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new DecodeFailure('JSON value is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object') throw new DecodeFailure('JSON tag holds a scalar');
  return parsed as JsonValue;
}

/** True when `value` can be sent as a statement parameter (DESIGN §11 SDK values). */
export function isParam(value: unknown): value is Param {
  if (value === null) return true;
  switch (typeof value) {
    case 'boolean':
    case 'number':
    case 'bigint':
    case 'string': return true;
    case 'object': return value instanceof Uint8Array || value instanceof Date || isJsonDocument(value, 0);
    default: return false;
  }
}

const JSON_DEPTH_MAX = 64;

function isJsonDocument(value: unknown, depth: number): boolean {
  if (depth > JSON_DEPTH_MAX) return false;
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.every((item) => isJsonDocument(item, depth + 1));
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value as Record<string, unknown>).every((item) => isJsonDocument(item, depth + 1));
}

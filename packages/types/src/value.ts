/**
 * SQL values as the engine holds them in memory. One representation per SQL type, shared by
 * store (keys, rows), query (expressions) and kernel, so no layer converts another's values.
 *
 *   type        in memory                      notes
 *   BIGINT      bigint                         the SDK hands out numbers when safe
 *   INTEGER     number (int32)
 *   DOUBLE      number
 *   TEXT        string
 *   BOOLEAN     boolean
 *   DATE        string 'YYYY-MM-DD'            sorts correctly as text
 *   TIMESTAMP   bigint microseconds since the Unix epoch (UTC)
 *   BYTES       Uint8Array
 *   JSON        JsonValue (parsed)             compared by canonical text
 *   (any)       null                           SQL NULL
 */
export const SQL_TYPES = ['BIGINT', 'INTEGER', 'DOUBLE', 'TEXT', 'BOOLEAN', 'DATE', 'TIMESTAMP', 'BYTES', 'JSON'] as const;
export type SqlType = (typeof SQL_TYPES)[number];

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };
export type Value = null | boolean | number | bigint | string | Uint8Array | JsonValue;
export type Row = readonly Value[];

/** A tuple of values: primary keys and index keys (composite keys have several). */
export type Key = readonly Value[];

const RANK_NULL = 0;
const RANK_BOOLEAN = 1;
const RANK_NUMBER = 2;
const RANK_STRING = 3;
const RANK_BYTES = 4;
const RANK_JSON = 5;

function rank(value: Value): number {
  if (value === null) return RANK_NULL;
  switch (typeof value) {
    case 'boolean': return RANK_BOOLEAN;
    case 'number':
    case 'bigint': return RANK_NUMBER;
    case 'string': return RANK_STRING;
    default: return value instanceof Uint8Array ? RANK_BYTES : RANK_JSON;
  }
}

/**
 * A total order over values, used for keys and sorting: NULL < booleans < numbers < text <
 * bytes < JSON. Within a column the type is fixed, so only the NULL rule matters across types.
 * Numbers and bigints compare exactly by mathematical value. NaN sorts above every number
 * (as PostgreSQL does). Text compares by UTF-16 code units (a "C" collation).
 *
 * @example compareValues(1n, 2) === -1
 */
export function compareValues(a: Value, b: Value): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case RANK_NULL: return 0;
    case RANK_BOOLEAN: return a === b ? 0 : a === false ? -1 : 1;
    case RANK_NUMBER: return compareNumbers(a as number | bigint, b as number | bigint);
    case RANK_STRING: return a === b ? 0 : (a as string) < (b as string) ? -1 : 1;
    case RANK_BYTES: return compareBytes(a as Uint8Array, b as Uint8Array);
    default: return compareStrings(canonicalJson(a as JsonValue), canonicalJson(b as JsonValue));
  }
}

function compareNumbers(a: number | bigint, b: number | bigint): number {
  const aNaN = typeof a === 'number' && Number.isNaN(a);
  const bNaN = typeof b === 'number' && Number.isNaN(b);
  if (aNaN || bNaN) return aNaN === bNaN ? 0 : aNaN ? 1 : -1;
  // Mixed number/bigint comparison with < and > is exact in JavaScript.
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareStrings(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Lexicographic order over key tuples; a prefix sorts before its extensions. */
export function compareKeys(a: Key, b: Key): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareValues(a[i] as Value, b[i] as Value);
    if (c !== 0) return c;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** JSON text with object keys sorted, so equal documents have equal text (and hashes). */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${(value as readonly JsonValue[]).map(canonicalJson).join(',')}]`;
  const object = value as { readonly [key: string]: JsonValue };
  const keys = Object.keys(object).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(object[k] as JsonValue)}`).join(',')}}`;
}

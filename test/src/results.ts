/**
 * A comparable form of statement outcomes, shared by the PostgreSQL oracle and the VerityDB side
 * of the differential test. PostgreSQL's result column types decide how a value is read
 * (`ValueKind`), so both engines' values land in one representation: numbers exact when
 * integral, µs for timestamps, 'YYYY-MM-DD' for dates, hex for bytes.
 *
 * @example
 *   const pg = normalizeValue('9007199254740993', 'int');   // { t: 'num', exact: 9007199254740993n, … }
 *   valuesEqual(pg, normalizeValue(9007199254740993n, 'int')) === true
 */
import type { RowOrder } from './sqlgen.js';

export type ValueKind = 'int' | 'numeric' | 'float' | 'text' | 'bool' | 'date' | 'timestamp' | 'bytes' | 'other';

export type NormValue =
  | null
  | { readonly t: 'num'; readonly exact: bigint | null; readonly approx: number }
  | { readonly t: 'text'; readonly v: string }
  | { readonly t: 'bool'; readonly v: boolean }
  | { readonly t: 'date'; readonly v: string }
  | { readonly t: 'ts'; readonly us: bigint }
  | { readonly t: 'bytes'; readonly hex: string }
  /** A value whose JavaScript form does not fit the expected kind (kept for the report). */
  | { readonly t: 'bad'; readonly v: string };

export type NormRow = readonly NormValue[];

export type Outcome =
  | { readonly ok: true; readonly columns: readonly string[] | null; readonly rows: readonly NormRow[]; readonly rowsAffected: number | null }
  | { readonly ok: false; readonly error: string };

const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
/** Relative tolerance for non-integral numbers: PostgreSQL computes AVG and decimal literals in
 * exact NUMERIC, VerityDB in binary doubles. */
const FLOAT_TOLERANCE = 1e-9;

const INTEGER_TEXT = /^-?\d+$/;
const INTEGRAL_DECIMAL_TEXT = /^(-?\d+)\.0*$/;
const DATE_TEXT = /^\d{4}-\d{2}-\d{2}$/;
const TIMESTAMP_TEXT = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|\+00(?::?00)?)?$/;

function num(exact: bigint | null, approx: number): NormValue {
  return { t: 'num', exact, approx };
}

function bad(raw: unknown): NormValue {
  return { t: 'bad', v: describeRaw(raw) };
}

export function describeRaw(raw: unknown): string {
  if (raw instanceof Uint8Array) return `Uint8Array(${hexOf(raw)})`;
  if (raw instanceof Date) return `Date(${Number.isNaN(raw.getTime()) ? 'invalid' : raw.toISOString()})`;
  if (typeof raw === 'bigint') return `${raw}n`;
  if (typeof raw === 'string') return JSON.stringify(raw);
  return `${typeof raw}:${String(raw)}`;
}

function hexOf(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

function normalizeNumber(raw: unknown): NormValue {
  if (typeof raw === 'bigint') return num(raw, Number(raw));
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return num(null, raw);
    return num(Number.isSafeInteger(raw) ? BigInt(raw) : null, raw);
  }
  if (typeof raw === 'string') {
    if (INTEGER_TEXT.test(raw)) return num(BigInt(raw), Number(raw));
    const integral = INTEGRAL_DECIMAL_TEXT.exec(raw);
    if (integral !== null) return num(BigInt(integral[1] as string), Number(raw));
    const value = Number(raw === 'Infinity' || raw === '-Infinity' || raw === 'NaN' ? raw : raw);
    if (Number.isNaN(value) && raw !== 'NaN') return bad(raw);
    return num(null, value);
  }
  return bad(raw);
}

/** Microseconds since the epoch of 'YYYY-MM-DD HH:MM:SS[.ffffff]' (UTC, as TIMESTAMP is). */
export function timestampTextToMicros(text: string): bigint | null {
  const m = TIMESTAMP_TEXT.exec(text);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s, frac] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms)) return null;
  const micros = BigInt((frac ?? '').padEnd(6, '0'));
  return BigInt(ms) * 1000n + micros;
}

function normalizeTimestamp(raw: unknown): NormValue {
  if (typeof raw === 'bigint') return { t: 'ts', us: raw };
  if (typeof raw === 'number' && Number.isSafeInteger(raw)) return { t: 'ts', us: BigInt(raw) };
  if (raw instanceof Date && !Number.isNaN(raw.getTime())) {
    // The SDK's `Timestamp` is a Date that also carries the exact microseconds.
    const micros = (raw as Date & { readonly micros?: unknown }).micros;
    return { t: 'ts', us: typeof micros === 'bigint' ? micros : BigInt(raw.getTime()) * 1000n };
  }
  if (typeof raw === 'string') {
    const us = timestampTextToMicros(raw);
    if (us !== null) return { t: 'ts', us };
  }
  return bad(raw);
}

function normalizeDate(raw: unknown): NormValue {
  if (typeof raw === 'string' && DATE_TEXT.test(raw)) return { t: 'date', v: raw };
  if (raw instanceof Date && !Number.isNaN(raw.getTime())) {
    const iso = raw.toISOString();
    if (iso.endsWith('T00:00:00.000Z')) return { t: 'date', v: iso.slice(0, 10) };
  }
  return bad(raw);
}

/** The comparable form of one value, read as `kind` (PostgreSQL's type of that result column). */
export function normalizeValue(raw: unknown, kind: ValueKind): NormValue {
  if (raw === null || raw === undefined) return raw === null ? null : bad(raw);
  switch (kind) {
    // An integer result must come back exact: a double beyond 2^53 or with a fraction is wrong.
    case 'int': return typeof raw === 'number' && !Number.isSafeInteger(raw) ? bad(raw) : normalizeNumber(raw);
    case 'numeric': case 'float': return normalizeNumber(raw);
    case 'text': return typeof raw === 'string' ? { t: 'text', v: raw } : bad(raw);
    case 'bool': return typeof raw === 'boolean' ? { t: 'bool', v: raw } : bad(raw);
    case 'date': return normalizeDate(raw);
    case 'timestamp': return normalizeTimestamp(raw);
    case 'bytes': return raw instanceof Uint8Array ? { t: 'bytes', hex: hexOf(raw) } : bad(raw);
    case 'other': return normalizeUntyped(raw);
  }
}

/** Without a known kind (a side that failed in PostgreSQL): read the value by its JavaScript type. */
export function normalizeUntyped(raw: unknown): NormValue {
  if (raw === null) return null;
  if (typeof raw === 'number' || typeof raw === 'bigint') return normalizeNumber(raw);
  if (typeof raw === 'string') return { t: 'text', v: raw };
  if (typeof raw === 'boolean') return { t: 'bool', v: raw };
  if (raw instanceof Uint8Array) return { t: 'bytes', hex: hexOf(raw) };
  if (raw instanceof Date) return normalizeTimestamp(raw);
  return bad(raw);
}

export function valuesEqual(a: NormValue, b: NormValue): boolean {
  if (a === null || b === null) return a === b;
  if (a.t !== b.t) return false;
  switch (a.t) {
    case 'num': {
      const other = b as typeof a;
      if (a.exact !== null && other.exact !== null) return a.exact === other.exact;
      return approxEqual(a.approx, other.approx);
    }
    case 'text': case 'date': case 'bad': return a.v === (b as typeof a).v;
    case 'bool': return a.v === (b as typeof a).v;
    case 'ts': return a.us === (b as typeof a).us;
    case 'bytes': return a.hex === (b as typeof a).hex;
  }
}

function approxEqual(a: number, b: number): boolean {
  if (a === b) return true;
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  return Math.abs(a - b) <= FLOAT_TOLERANCE * Math.max(1, Math.abs(a), Math.abs(b));
}

export function rowsEqual(a: NormRow, b: NormRow): boolean {
  return a.length === b.length && a.every((v, i) => valuesEqual(v, b[i] as NormValue));
}

export function formatValue(v: NormValue): string {
  if (v === null) return 'NULL';
  switch (v.t) {
    case 'num': return v.exact !== null ? String(v.exact) : String(v.approx);
    case 'text': return JSON.stringify(v.v);
    case 'bool': return v.v ? 'true' : 'false';
    case 'date': return `date ${v.v}`;
    case 'ts': return `ts ${formatMicros(v.us)}`;
    case 'bytes': return `\\x${v.hex}`;
    case 'bad': return `<unexpected ${v.v}>`;
  }
}

function formatMicros(us: bigint): string {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  const rest = us - ms * 1000n;
  const iso = new Date(Number(ms)).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(rest).padStart(3, '0')}`;
}

export function formatRow(row: NormRow): string {
  return `(${row.map(formatValue).join(', ')})`;
}

export function formatOutcome(o: Outcome): string {
  if (!o.ok) return `ERROR ${o.error}`;
  const head = `ok${o.rowsAffected === null ? '' : ` rowsAffected=${o.rowsAffected}`}`;
  const cols = o.columns === null ? '' : ` columns=[${o.columns.join(', ')}]`;
  const rows = o.rows.length === 0 ? ' rows=[]' : ` rows=[${o.rows.map(formatRow).join(' ')}]`;
  return `${head}${cols}${rows}`;
}

/** A sort key that is equal for values `valuesEqual` calls equal (doubles rounded). */
function sortKey(row: NormRow): string {
  return row.map((v) => {
    if (v === null) return 'N';
    if (v.t === 'num') {
      if (v.exact !== null && (v.exact > SAFE_MAX || v.exact < -SAFE_MAX)) return `n${Number(Number(v.exact).toPrecision(12))}`;
      if (v.exact !== null) return `n${v.exact}`;
      const rounded = Math.round(v.approx);
      if (Number.isSafeInteger(rounded) && approxEqual(rounded, v.approx)) return `n${rounded}`;
      return `n${Number(v.approx.toPrecision(12))}`;
    }
    return formatValue(v);
  }).join('\u0001');
}

function sortedRows(rows: readonly NormRow[]): NormRow[] {
  return rows.map((row) => ({ row, key: sortKey(row) }))
    .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0))
    .map((x) => x.row);
}

function sameMultiset(expected: readonly NormRow[], actual: readonly NormRow[]): boolean {
  if (expected.length !== actual.length) return false;
  const a = sortedRows(expected);
  const b = sortedRows(actual);
  return a.every((row, i) => rowsEqual(row, b[i] as NormRow));
}

/**
 * Why `actual` differs from `expected` (PostgreSQL), or null when they agree. Errors match
 * errors of any kind; rows compare as `order` allows; rowsAffected when both report it.
 */
export function compareOutcomes(expected: Outcome, actual: Outcome, order: RowOrder): string | null {
  if (!expected.ok || !actual.ok) {
    if (expected.ok === actual.ok) return null;
    return expected.ok ? 'PostgreSQL succeeded, VerityDB failed' : 'PostgreSQL failed, VerityDB succeeded';
  }
  if (expected.rowsAffected !== null && actual.rowsAffected !== null && expected.rowsAffected !== actual.rowsAffected) {
    return `rowsAffected ${actual.rowsAffected}, expected ${expected.rowsAffected}`;
  }
  if (expected.columns !== null && actual.columns !== null && expected.columns.join(',') !== actual.columns.join(',')) {
    return `columns [${actual.columns.join(', ')}], expected [${expected.columns.join(', ')}]`;
  }
  if (expected.rows.length !== actual.rows.length) return `${actual.rows.length} rows, expected ${expected.rows.length}`;
  if (!sameMultiset(expected.rows, actual.rows)) return 'different rows';
  switch (order.kind) {
    case 'none': return null;
    case 'total': return expected.rows.every((row, i) => rowsEqual(row, actual.rows[i] as NormRow)) ? null : 'same rows, different order';
    case 'keys': {
      const project = (row: NormRow): NormRow => order.keys.map((k) => row[k.output] ?? null);
      const ok = expected.rows.every((row, i) => rowsEqual(project(row), project(actual.rows[i] as NormRow)));
      return ok ? null : 'same rows, different order of the ORDER BY keys';
    }
  }
}

import { limits, type Position, type Row } from '@veritydb/types';
import {
  encodeFrame, encodeServerMessage, fromValue, wireLimits, type Column, type RequestId, type WireError, type WireValue,
} from '@veritydb/wire';
import type { EngineColumn, EngineParam } from './engine.js';

/**
 * Conversions between wire values and engine values, and the splitting of a result into
 * frames (PROTOCOL.md §5, streaming): rows are packed greedily until a frame's estimated size
 * reaches `frameRowBytesTarget`, well below the frame limit, so the estimate may be rough.
 */
export const resultLimits = Object.freeze({
  /** Row bytes aimed at per result frame. */
  frameRowBytesTarget: 1024 * 1024,
  /** A single row larger than this cannot be sent (it would not fit in one frame). */
  rowBytesMax: limits.frameBytesMax - 64 * 1024,
});

/** The engine parameter for a wire value (a statement parameter). */
export function paramOf(value: WireValue): EngineParam {
  switch (value.kind) {
    case 'null': return null;
    case 'int64': return Number.isSafeInteger(Number(value.value)) && BigInt(Number(value.value)) === value.value ? Number(value.value) : value.value;
    case 'timestamp': return timestampParam(value.value);
    case 'bool':
    case 'float64':
    case 'text':
    case 'bytes':
    case 'date':
    case 'json':
      return value.value;
  }
}

/** A TIMESTAMP parameter: a Date when whole milliseconds, else ISO text with microseconds. */
function timestampParam(micros: bigint): EngineParam {
  let millis = micros / 1000n;
  let rest = micros % 1000n;
  if (rest < 0n) {
    rest += 1000n;
    millis -= 1n;
  }
  // Outside a Date's range: pass the number, which the SQL layer refuses as a timestamp with a typed error.
  if (millis < -DATE_MILLIS_MAX || millis > DATE_MILLIS_MAX) return micros;
  const date = new Date(Number(millis));
  if (rest === 0n) return date;
  return `${date.toISOString().slice(0, -1)}${rest.toString().padStart(3, '0')}Z`;
}

const DATE_MILLIS_MAX = 8_640_000_000_000_000n;

/** Wire columns for engine columns. */
export function wireColumns(columns: readonly EngineColumn[]): Column[] {
  return columns.map((c) => ({ name: c.name, type: c.type }));
}

/** Wire rows for engine rows; throws (a bug) if a value does not belong to its column's type. */
export function wireRows(columns: readonly EngineColumn[], rows: readonly Row[]): WireValue[][] {
  return rows.map((row) => row.map((value, i) => fromValue(value, (columns[i] as EngineColumn).type)));
}

export interface ResultPart {
  readonly statementIndex: number;
  readonly columns: readonly Column[];
  readonly rows: readonly (readonly WireValue[])[];
  readonly rowsAffected: number;
  readonly position: Position;
}

/**
 * Encodes one statement's result as one or more frames. Only the last frame is final, and only
 * when `final` is set (the statement is the request's last). Returns an error instead of frames
 * if a single row cannot fit in a frame.
 */
export function resultFrames(requestId: RequestId, part: ResultPart, final: boolean): Uint8Array[] | WireError {
  const chunks: (readonly (readonly WireValue[])[])[] = [];
  let chunk: (readonly WireValue[])[] = [];
  let chunkBytes = 0;
  for (const row of part.rows) {
    const bytes = rowBytesEstimate(row);
    if (bytes > resultLimits.rowBytesMax) {
      return { code: 'SqlError', message: `a result row of about ${bytes} bytes does not fit in a frame`, sqlState: '54000', line: 0, column: 0 };
    }
    if (chunk.length > 0 && chunkBytes + bytes > resultLimits.frameRowBytesTarget) {
      chunks.push(chunk);
      chunk = [];
      chunkBytes = 0;
    }
    chunk.push(row);
    chunkBytes += bytes;
  }
  chunks.push(chunk);
  return chunks.map((rows, i) => encodeFrame(encodeServerMessage({
    kind: 'response', response: {
      requestId, body: {
        kind: 'result', result: {
          statementIndex: part.statementIndex, columns: part.columns, rows, rowsAffected: part.rowsAffected,
          position: part.position, final: final && i === chunks.length - 1,
        },
      },
    },
  })));
}

/** An upper bound on a row's encoded size (UTF-16 units × 3 bounds UTF-8 bytes). */
function rowBytesEstimate(row: readonly WireValue[]): number {
  let bytes = 0;
  for (const value of row) {
    switch (value.kind) {
      case 'text': bytes += 9 + value.value.length * 3; break;
      case 'date': bytes += 6; break;
      case 'bytes': bytes += 9 + value.value.length; break;
      case 'json': bytes += 9 + JSON.stringify(value.value).length * 3; break;
      default: bytes += 11;
    }
  }
  return bytes;
}

/** The frame of an error response. */
export function errorFrame(requestId: RequestId, error: WireError): Uint8Array {
  return encodeFrame(encodeServerMessage({ kind: 'response', response: { requestId, body: { kind: 'error', error: boundedError(error) } } }));
}

/**
 * The error with its message cut to the wire limit (messages may quote user input, e.g. SQL)
 * and its detail strings to theirs, so encoding an error can never fail.
 */
export function boundedError(error: WireError): WireError {
  const message = truncateUtf8(error.message, wireLimits.errorMessageBytesMax);
  if (error.code === 'ConstraintViolation') return { ...error, message, constraint: truncateUtf8(error.constraint, 255) || 'constraint' };
  if (error.code === 'SqlError' && !/^[0-9A-Z]{5}$/.test(error.sqlState)) return { ...error, message, sqlState: 'XX000' };
  return { ...error, message };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Text the wire accepts: no NUL, no lone surrogate, at most `bytesMax` UTF-8 bytes. */
export function truncateUtf8(raw: string, bytesMax: number): string {
  const text = raw.replaceAll('\u0000', '\\0').replace(/\p{Cs}/gu, '\ufffd');
  const bytes = encoder.encode(text);
  if (bytes.length <= bytesMax) return text;
  // Cut at a character boundary: drop continuation bytes at the cut, then decode.
  let end = bytesMax - 3;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return `${decoder.decode(bytes.subarray(0, end))}...`;
}

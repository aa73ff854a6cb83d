import type { ClientId, Position, TenantId } from '@veritydb/types';
import { limits } from '@veritydb/types';
import { CONSISTENCIES, high64, low64, ordinalOf, SQL_TYPE_ORDINALS, u128 } from './capnp-enums.js';
import { wireLimits } from './limits.js';
import {
  DEFAULT_REQUEST_OPTIONS, type Column, type Request, type RequestBody, type RequestOptions, type Response, type Result,
  type Session, type Statement,
} from './messages.js';
import { decodeRowBlock, decodeValueList, encodeRowBlock, encodeValueList } from './values.js';

/**
 * Hand-written Cap'n Proto for the messages of the write and read hot path: a request to execute
 * or query, and a response carrying a result. capnp-es builds a reader or builder object for
 * every struct, list and field it touches; on a loopback cluster those objects cost the primary
 * a tenth of its CPU and a client almost half of its own. The layouts below are those of the
 * generated code (`src/generated/*.ts`, from `schema/*.capnp`).
 *
 * The writers produce the bytes capnp-es produces for the same message (same allocation order,
 * one segment), so PROTOCOL.md's byte vectors hold for both; the tests compare them on random
 * messages. The readers take only the plain shape those writers (or any sane encoder) produce:
 * one segment, no far pointers, struct lists as composite lists, every needed pointer set, every
 * field well-formed. Anything else — including everything capnp-es's path would reject — makes
 * them return `null`, and the caller decodes with capnp-es, which gives the precise error. So a
 * reader never accepts what the general path refuses, and never reads a different value.
 */

// ---- layouts (data bytes, pointer words) of the generated structs ----

const CLIENT_MESSAGE = { dataWords: 1, pointers: 1, whichByte: 0, request: 1 } as const;
const SERVER_MESSAGE = { dataWords: 1, pointers: 1, whichByte: 0, response: 1 } as const;
const REQUEST = { dataWords: 3, pointers: 1, idByte: 0, whichByte: 8, execute: 0, query: 1 } as const;
const EXECUTE = { dataWords: 2, pointers: 3, tenantByte: 0, atomicBit: 64, statements: 0, session: 1, options: 2 } as const;
const QUERY = { dataWords: 1, pointers: 2, tenantByte: 0, statement: 0, options: 1 } as const;
const STATEMENT = { dataWords: 0, pointers: 2, sql: 0, params: 1 } as const;
const SESSION = { dataWords: 3, pointers: 0, highByte: 0, lowByte: 8, requestNumberByte: 16 } as const;
const OPTIONS = { dataWords: 3, pointers: 0, consistencyByte: 0, timeoutMsByte: 4, positionByte: 8, rowsLimitByte: 16 } as const;
const RESPONSE = { dataWords: 2, pointers: 1, requestIdByte: 0, whichByte: 8, result: 0 } as const;
const RESULT = { dataWords: 3, pointers: 2, statementIndexByte: 0, finalBit: 32, rowsAffectedByte: 8, positionByte: 16, columns: 0, rows: 1 } as const;
const COLUMN = { dataWords: 1, pointers: 1, typeByte: 0, name: 0 } as const;

/** The sections of a struct as the schema lays them out (words). */
interface Layout {
  readonly dataWords: number;
  readonly pointers: number;
}

const POINTER_STRUCT = 0;
const POINTER_LIST = 1;
const LIST_BYTES = 2;
const LIST_COMPOSITE = 7;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

// ---- reading ----

/** A struct inside the payload: byte offsets of its data and pointer sections, and their sizes. */
interface StructRef {
  readonly data: number;
  readonly dataBytes: number;
  readonly pointers: number;
  readonly pointerCount: number;
}

/** Thrown inside a fast reader to fall back; never escapes this module. */
const UNUSUAL = Symbol('unusual shape: decode with capnp-es');

function unusual(): never {
  throw UNUSUAL;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class Reader {
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  /** Byte range of the one segment within the payload. */
  readonly #start: number;
  readonly #end: number;
  /** Text and data bytes this payload may still yield (capnp-read.ts's content budget). */
  #budget: number;

  constructor(payload: Uint8Array) {
    this.#bytes = payload;
    this.#view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    // The caller checked the segment table; a single segment starts after 8 bytes of it.
    if (this.#view.getUint32(0, true) !== 0) unusual();
    this.#start = 8;
    this.#end = payload.length;
    this.#budget = payload.length;
  }

  root(layout: Layout): StructRef {
    return this.struct(this.#start, layout) ?? unusual();
  }

  /**
   * The struct a pointer word at byte `at` points to; null for a null pointer. It must have at
   * least `layout`'s sections: capnp-es copies a smaller (older-schema) struct when it is read,
   * rewriting the message under the reader, so only the general path may take those.
   */
  struct(at: number, layout: Layout): StructRef | null {
    const low = this.#view.getUint32(at, true);
    const high = this.#view.getUint32(at + 4, true);
    if (low === 0 && high === 0) return null;
    if ((low & 3) !== POINTER_STRUCT) unusual();
    const data = at + 8 + ((low | 0) >> 2) * 8;
    const dataWords = high & 0xffff;
    const pointerCount = high >>> 16;
    const end = data + (dataWords + pointerCount) * 8;
    if (data < this.#start || end > this.#end) unusual();
    if (dataWords < layout.dataWords || pointerCount < layout.pointers) unusual();
    return { data, dataBytes: dataWords * 8, pointers: data + dataWords * 8, pointerCount };
  }

  /** Pointer slot `index` of `ref`, or -1 when the struct has fewer pointers (reads as null). */
  pointer(ref: StructRef, index: number): number {
    return index < ref.pointerCount ? ref.pointers + index * 8 : -1;
  }

  child(ref: StructRef, index: number, layout: Layout): StructRef | null {
    const at = this.pointer(ref, index);
    return at < 0 ? null : this.struct(at, layout);
  }

  isNull(ref: StructRef, index: number): boolean {
    const at = this.pointer(ref, index);
    return at < 0 || (this.#view.getUint32(at, true) === 0 && this.#view.getUint32(at + 4, true) === 0);
  }

  u16(ref: StructRef, byte: number): number {
    return byte + 2 <= ref.dataBytes ? this.#view.getUint16(ref.data + byte, true) : 0;
  }

  u32(ref: StructRef, byte: number): number {
    return byte + 4 <= ref.dataBytes ? this.#view.getUint32(ref.data + byte, true) : 0;
  }

  u64(ref: StructRef, byte: number): bigint {
    return byte + 8 <= ref.dataBytes ? this.#view.getBigUint64(ref.data + byte, true) : 0n;
  }

  /** A u64 that must be a safe integer (else the general path reports it). */
  safe(ref: StructRef, byte: number): number {
    const value = this.u64(ref, byte);
    if (value > MAX_SAFE) unusual();
    return Number(value);
  }

  bit(ref: StructRef, bit: number): boolean {
    const byte = bit >>> 3;
    return byte < ref.dataBytes && (this.#bytes[ref.data + byte]! & (1 << (bit & 7))) !== 0;
  }

  /** The bytes of a Data/Text pointer (a byte list); null for a null pointer. */
  bytes(ref: StructRef, index: number): Uint8Array | null {
    const at = this.pointer(ref, index);
    if (at < 0) return null;
    const low = this.#view.getUint32(at, true);
    const high = this.#view.getUint32(at + 4, true);
    if (low === 0 && high === 0) return null;
    if ((low & 3) !== POINTER_LIST || (high & 7) !== LIST_BYTES) unusual();
    const start = at + 8 + ((low | 0) >> 2) * 8;
    const length = high >>> 3;
    if (start < this.#start || start + length > this.#end) unusual();
    this.#budget -= length;
    if (this.#budget < 0) unusual();
    return this.#bytes.subarray(start, start + length);
  }

  /** A Text field, strictly: NUL-terminated valid UTF-8 (a null pointer reads as ''). */
  text(ref: StructRef, index: number): string {
    const bytes = this.bytes(ref, index);
    if (bytes === null) return '';
    if (bytes.length === 0 || bytes[bytes.length - 1] !== 0) unusual();
    try {
      return strictUtf8.decode(bytes.subarray(0, bytes.length - 1));
    } catch {
      return unusual();
    }
  }

  /** The elements of a composite struct list (null pointer: none). */
  structList(ref: StructRef, index: number, max: number, layout: Layout): StructRef[] {
    const at = this.pointer(ref, index);
    if (at < 0) return [];
    const low = this.#view.getUint32(at, true);
    const high = this.#view.getUint32(at + 4, true);
    if (low === 0 && high === 0) return [];
    if ((low & 3) !== POINTER_LIST || (high & 7) !== LIST_COMPOSITE) unusual();
    const tag = at + 8 + ((low | 0) >> 2) * 8;
    const words = high >>> 3;
    if (tag < this.#start || tag + 8 + words * 8 > this.#end) unusual();
    const tagLow = this.#view.getUint32(tag, true);
    const tagHigh = this.#view.getUint32(tag + 4, true);
    if ((tagLow & 3) !== POINTER_STRUCT) unusual();
    const count = tagLow >>> 2;
    const dataWords = tagHigh & 0xffff;
    const pointerCount = tagHigh >>> 16;
    const stride = (dataWords + pointerCount) * 8;
    if (count > max || count * stride > words * 8) unusual();
    if (dataWords < layout.dataWords || pointerCount < layout.pointers) unusual();
    const out: StructRef[] = [];
    for (let i = 0; i < count; i++) {
      const data = tag + 8 + i * stride;
      out.push({ data, dataBytes: dataWords * 8, pointers: data + dataWords * 8, pointerCount });
    }
    return out;
  }
}

/**
 * Runs a fast reader; null means "decode with capnp-es". Every failure falls back, including a
 * value codec's error on bad params or rows: the general path then reports it precisely (or, for
 * a broken invariant, throws the same assertion).
 */
function attempt<T>(read: () => T): T | null {
  try {
    return read();
  } catch {
    return null;
  }
}

/**
 * A client message that is a request to execute or query, read without capnp-es; null for any
 * other message or shape (decode it with capnp-es). The result is not yet validated.
 */
export function fastReadClientRequest(payload: Uint8Array): Request | null {
  return attempt(() => {
    const reader = new Reader(payload);
    const root = reader.root(CLIENT_MESSAGE);
    if (reader.u16(root, CLIENT_MESSAGE.whichByte) !== CLIENT_MESSAGE.request) return unusual();
    const request = reader.child(root, 0, REQUEST) ?? unusual();
    const id = reader.u64(request, REQUEST.idByte);
    const which = reader.u16(request, REQUEST.whichByte);
    let body: RequestBody;
    if (which === REQUEST.execute) body = readExecute(reader, reader.child(request, 0, EXECUTE) ?? unusual());
    else if (which === REQUEST.query) body = readQuery(reader, reader.child(request, 0, QUERY) ?? unusual());
    else return unusual();
    return { id, body };
  });
}

function readExecute(reader: Reader, execute: StructRef): RequestBody {
  const tenant = reader.safe(execute, EXECUTE.tenantByte) as TenantId;
  const statements = reader.structList(execute, EXECUTE.statements, limits.batchStatementsMax, STATEMENT).map((s) => readStatement(reader, s));
  const atomic = reader.bit(execute, EXECUTE.atomicBit);
  const sessionRef = reader.child(execute, EXECUTE.session, SESSION);
  const session: Session | null = sessionRef === null ? null : {
    clientId: u128(reader.u64(sessionRef, SESSION.highByte), reader.u64(sessionRef, SESSION.lowByte)) as ClientId,
    requestNumber: reader.u32(sessionRef, SESSION.requestNumberByte),
  };
  const optionsRef = reader.child(execute, EXECUTE.options, OPTIONS);
  const options = optionsRef === null ? DEFAULT_REQUEST_OPTIONS : readOptions(reader, optionsRef);
  return { kind: 'execute', tenant, statements, atomic, session, options };
}

function readQuery(reader: Reader, query: StructRef): RequestBody {
  const tenant = reader.safe(query, QUERY.tenantByte) as TenantId;
  const statement = readStatement(reader, reader.child(query, QUERY.statement, STATEMENT) ?? unusual());
  const optionsRef = reader.child(query, QUERY.options, OPTIONS);
  const options = optionsRef === null ? DEFAULT_REQUEST_OPTIONS : readOptions(reader, optionsRef);
  return { kind: 'query', tenant, statement, options };
}

function readStatement(reader: Reader, statement: StructRef): Statement {
  const sql = reader.text(statement, STATEMENT.sql);
  const params = reader.bytes(statement, STATEMENT.params);
  return { sql, params: params === null ? [] : decodeValueList(params) };
}

function readOptions(reader: Reader, options: StructRef): RequestOptions {
  const consistency = CONSISTENCIES[reader.u16(options, OPTIONS.consistencyByte)] ?? unusual();
  return {
    consistency,
    position: reader.safe(options, OPTIONS.positionByte) as Position,
    timeoutMs: reader.u32(options, OPTIONS.timeoutMsByte),
    rowsLimit: reader.u32(options, OPTIONS.rowsLimitByte),
  };
}

/**
 * A server message that is a response carrying a result, read without capnp-es; null for any
 * other message or shape. The result is not yet validated.
 */
export function fastReadServerResult(payload: Uint8Array): Response | null {
  return attempt(() => {
    const reader = new Reader(payload);
    const root = reader.root(SERVER_MESSAGE);
    if (reader.u16(root, SERVER_MESSAGE.whichByte) !== SERVER_MESSAGE.response) return unusual();
    const response = reader.child(root, 0, RESPONSE) ?? unusual();
    if (reader.u16(response, RESPONSE.whichByte) !== RESPONSE.result) return unusual();
    const result = reader.child(response, RESPONSE.result, RESULT) ?? unusual();
    return { requestId: reader.u64(response, RESPONSE.requestIdByte), body: { kind: 'result', result: readResult(reader, result) } };
  });
}

function readResult(reader: Reader, result: StructRef): Result {
  const columns: Column[] = reader.structList(result, RESULT.columns, wireLimits.resultColumnsMax, COLUMN).map((column) => ({
    name: reader.text(column, COLUMN.name),
    type: SQL_TYPE_ORDINALS[reader.u16(column, COLUMN.typeByte)] ?? unusual(),
  }));
  const rowBytes = reader.bytes(result, RESULT.rows);
  return {
    statementIndex: reader.u32(result, RESULT.statementIndexByte),
    columns,
    rows: rowBytes === null ? [] : decodeRowBlock(rowBytes, columns.map((column) => column.type)),
    rowsAffected: reader.safe(result, RESULT.rowsAffectedByte),
    position: reader.safe(result, RESULT.positionByte) as Position,
    final: reader.bit(result, RESULT.finalBit),
  };
}

// ---- writing ----

const utf8 = new TextEncoder();

/** One segment, allocated word by word in the order capnp-es allocates. */
class Builder {
  #bytes: Uint8Array;
  #view: DataView;
  /** Next free byte of the segment (which starts at byte 8, after the segment table). */
  #next = 8;

  constructor(bytesHint: number) {
    this.#bytes = new Uint8Array(Math.max(64, roundUpToWord(bytesHint + 64)));
    this.#view = new DataView(this.#bytes.buffer);
  }

  /** Allocates `words` zeroed words; returns their byte offset. */
  allocate(words: number): number {
    const at = this.#next;
    const end = at + words * 8;
    if (end > this.#bytes.length) this.#grow(end);
    this.#next = end;
    return at;
  }

  /** A struct pointer at `at` to a struct at `target`. */
  structPointer(at: number, target: number, dataWords: number, pointers: number): void {
    this.#view.setUint32(at, (((target - at - 8) / 8) << 2) | POINTER_STRUCT, true);
    this.#view.setUint32(at + 4, dataWords | (pointers << 16), true);
  }

  /** Allocates a struct, points slot `at` to it; returns its byte offset. */
  struct(at: number, dataWords: number, pointers: number): number {
    const target = this.allocate(dataWords + pointers);
    this.structPointer(at, target, dataWords, pointers);
    return target;
  }

  /** Allocates a composite list of `count` structs, points slot `at` to it; returns the first element's offset. */
  structList(at: number, count: number, dataWords: number, pointers: number): number {
    const words = count * (dataWords + pointers);
    const tag = this.allocate(1 + words);
    this.#view.setUint32(at, (((tag - at - 8) / 8) << 2) | POINTER_LIST, true);
    this.#view.setUint32(at + 4, LIST_COMPOSITE | (words << 3), true);
    this.#view.setUint32(tag, (count << 2) | POINTER_STRUCT, true);
    this.#view.setUint32(tag + 4, dataWords | (pointers << 16), true);
    return tag + 8;
  }

  /** Allocates a byte list holding `content`, points slot `at` to it. */
  byteList(at: number, content: Uint8Array, terminator: boolean): void {
    const length = content.length + (terminator ? 1 : 0);
    const target = this.allocate(roundUpToWord(length) / 8);
    this.#bytes.set(content, target);
    this.#view.setUint32(at, (((target - at - 8) / 8) << 2) | POINTER_LIST, true);
    this.#view.setUint32(at + 4, LIST_BYTES | (length << 3), true);
  }

  u16(at: number, value: number): void {
    this.#view.setUint16(at, value, true);
  }

  u32(at: number, value: number): void {
    this.#view.setUint32(at, value, true);
  }

  u64(at: number, value: bigint): void {
    this.#view.setBigUint64(at, value, true);
  }

  bit(at: number, bit: number, value: boolean): void {
    if (value) this.#bytes[at + (bit >>> 3)]! |= 1 << (bit & 7);
  }

  /** The message with its one-segment table. */
  finish(): Uint8Array {
    const words = (this.#next - 8) / 8;
    this.#view.setUint32(0, 0, true);
    this.#view.setUint32(4, words, true);
    return this.#bytes.subarray(0, this.#next);
  }

  #grow(needed: number): void {
    const bytes = new Uint8Array(Math.max(needed, this.#bytes.length * 2));
    bytes.set(this.#bytes.subarray(0, this.#next));
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer);
  }
}

function roundUpToWord(bytes: number): number {
  return (bytes + 7) & ~7;
}

/**
 * Encodes a validated request to execute or query (the caller checks `kind`), byte for byte as
 * capnp-es would.
 */
export function fastWriteClientRequest(request: Request): Uint8Array {
  const body = request.body;
  let hint = 256;
  const statements = body.kind === 'execute' ? body.statements : body.kind === 'query' ? [body.statement] : [];
  const encoded = statements.map((statement) => ({ sql: utf8.encode(statement.sql), params: encodeValueList(statement.params) }));
  for (const { sql, params } of encoded) hint += sql.length + params.length + 32;
  const builder = new Builder(hint);
  const root = builder.struct(builder.allocate(1), CLIENT_MESSAGE.dataWords, CLIENT_MESSAGE.pointers);
  builder.u16(root, CLIENT_MESSAGE.request);
  const target = builder.struct(root + 8, REQUEST.dataWords, REQUEST.pointers);
  builder.u64(target + REQUEST.idByte, request.id);
  const pointer = target + REQUEST.dataWords * 8;
  switch (body.kind) {
    case 'execute': {
      builder.u16(target + REQUEST.whichByte, REQUEST.execute);
      const execute = builder.struct(pointer, EXECUTE.dataWords, EXECUTE.pointers);
      const pointers = execute + EXECUTE.dataWords * 8;
      builder.u64(execute + EXECUTE.tenantByte, BigInt(body.tenant));
      const first = builder.structList(pointers + EXECUTE.statements * 8, encoded.length, STATEMENT.dataWords, STATEMENT.pointers);
      encoded.forEach((statement, i) => writeStatement(builder, first + i * (STATEMENT.dataWords + STATEMENT.pointers) * 8, statement));
      builder.bit(execute, EXECUTE.atomicBit, body.atomic);
      if (body.session !== null) writeSession(builder, builder.struct(pointers + EXECUTE.session * 8, SESSION.dataWords, SESSION.pointers), body.session);
      writeOptions(builder, builder.struct(pointers + EXECUTE.options * 8, OPTIONS.dataWords, OPTIONS.pointers), body.options);
      break;
    }
    case 'query': {
      builder.u16(target + REQUEST.whichByte, REQUEST.query);
      const query = builder.struct(pointer, QUERY.dataWords, QUERY.pointers);
      const pointers = query + QUERY.dataWords * 8;
      builder.u64(query + QUERY.tenantByte, BigInt(body.tenant));
      writeStatement(builder, builder.struct(pointers + QUERY.statement * 8, STATEMENT.dataWords, STATEMENT.pointers), encoded[0]!);
      writeOptions(builder, builder.struct(pointers + QUERY.options * 8, OPTIONS.dataWords, OPTIONS.pointers), body.options);
      break;
    }
    default:
      throw new Error(`fastWriteClientRequest: ${body.kind} is not on the fast path`);
  }
  return builder.finish();
}

function writeStatement(builder: Builder, at: number, statement: { readonly sql: Uint8Array; readonly params: Uint8Array }): void {
  builder.byteList(at + STATEMENT.sql * 8, statement.sql, true);
  builder.byteList(at + STATEMENT.params * 8, statement.params, false);
}

function writeSession(builder: Builder, at: number, session: Session): void {
  builder.u64(at + SESSION.highByte, high64(session.clientId));
  builder.u64(at + SESSION.lowByte, low64(session.clientId));
  builder.u32(at + SESSION.requestNumberByte, session.requestNumber);
}

function writeOptions(builder: Builder, at: number, options: RequestOptions): void {
  builder.u16(at + OPTIONS.consistencyByte, ordinalOf(CONSISTENCIES, options.consistency));
  builder.u64(at + OPTIONS.positionByte, BigInt(options.position));
  builder.u32(at + OPTIONS.timeoutMsByte, options.timeoutMs);
  builder.u32(at + OPTIONS.rowsLimitByte, options.rowsLimit);
}

/** Encodes a validated response carrying a result, byte for byte as capnp-es would. */
export function fastWriteServerResult(requestId: bigint, result: Result): Uint8Array {
  const names = result.columns.map((column) => utf8.encode(column.name));
  const rows = encodeRowBlock(result.columns.length, result.rows);
  let hint = 160 + rows.length;
  for (const name of names) hint += name.length + 24;
  const builder = new Builder(hint);
  const root = builder.struct(builder.allocate(1), SERVER_MESSAGE.dataWords, SERVER_MESSAGE.pointers);
  builder.u16(root, SERVER_MESSAGE.response);
  const response = builder.struct(root + 8, RESPONSE.dataWords, RESPONSE.pointers);
  builder.u64(response + RESPONSE.requestIdByte, requestId);
  builder.u16(response + RESPONSE.whichByte, RESPONSE.result);
  const target = builder.struct(response + RESPONSE.dataWords * 8, RESULT.dataWords, RESULT.pointers);
  const pointers = target + RESULT.dataWords * 8;
  builder.u32(target + RESULT.statementIndexByte, result.statementIndex);
  const first = builder.structList(pointers + RESULT.columns * 8, names.length, COLUMN.dataWords, COLUMN.pointers);
  result.columns.forEach((column, i) => {
    const at = first + i * (COLUMN.dataWords + COLUMN.pointers) * 8;
    builder.byteList(at + COLUMN.dataWords * 8 + COLUMN.name * 8, names[i] as Uint8Array, true);
    builder.u16(at + COLUMN.typeByte, ordinalOf(SQL_TYPE_ORDINALS, column.type));
  });
  builder.byteList(pointers + RESULT.rows * 8, rows, false);
  builder.u64(target + RESULT.rowsAffectedByte, BigInt(result.rowsAffected));
  builder.u64(target + RESULT.positionByte, BigInt(result.position));
  builder.bit(target, RESULT.finalBit, result.final);
  return builder.finish();
}

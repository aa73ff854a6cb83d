import { assert, canonicalJson, type JsonValue, type Value } from '@veritydb/types';

/**
 * The canonical binary encoding of values, rows and store state, shared by checkpoints and the
 * state hash. Canonical: one value has exactly one encoding and the decoder rejects any other
 * (overlong varints, non-minimal bigints, non-canonical JSON, surrogate pairs split in two).
 *
 *   tag  value                 payload
 *   0    null
 *   1    false
 *   2    true
 *   3    number                float64 big-endian; every NaN as 0x7ff8000000000000; -0 kept
 *   4    bigint                sign u8 (0 or 1), varint byte count, magnitude big-endian, minimal
 *   5    string                varint byte count, WTF-8 (UTF-8 that keeps lone surrogates)
 *   6    bytes (Uint8Array)    varint byte count, raw
 *   7    JSON object or array  varint byte count, UTF-8 of canonicalJson
 */
const TAG_NULL = 0;
const TAG_FALSE = 1;
const TAG_TRUE = 2;
const TAG_NUMBER = 3;
const TAG_BIGINT = 4;
const TAG_STRING = 5;
const TAG_BYTES = 6;
const TAG_JSON = 7;

/** Bytes buffered before a writer with a chunk sink hands them on (the state hash streams). */
const WRITER_CHUNK_BYTES = 64 * 1024;
const WRITER_INITIAL_BYTES = 1024;
/** A varint of a safe integer (53 bits) takes at most 8 groups of 7 bits. */
const VARINT_BYTES_MAX = 8;
/** A string of these code units only: its WTF-8 is its ASCII, one byte per unit. */
const ASCII_ONLY = /^[\x00-\x7f]*$/;
/** Below this length the byte loop beats a `TextEncoder` call. */
const ENCODE_INTO_CHARS_MIN = 24;
const utf8Encoder = new TextEncoder();

/** Thrown by ByteReader on malformed input; decoders at the edge turn it into a typed result. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

/** Appends canonical encodings to a growing buffer, or streams them in chunks to a sink.
 * @example const w = new ByteWriter(); w.varuint(300); w.value('é'); const bytes = w.finish(); */
export class ByteWriter {
  #buffer = new Uint8Array(WRITER_INITIAL_BYTES);
  #view = new DataView(this.#buffer.buffer);
  #length = 0;
  readonly #sink: ((chunk: Uint8Array) => void) | undefined;

  /** With a sink, full chunks are handed over and forgotten (streaming); without, bytes grow. */
  constructor(sink?: (chunk: Uint8Array) => void) {
    this.#sink = sink;
  }

  u8(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xff, `u8 out of range: ${value}`);
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
  }

  u32(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff, `u32 out of range: ${value}`);
    this.#reserve(4);
    this.#view.setUint32(this.#length, value);
    this.#length += 4;
  }

  /** Unsigned LEB128 of a non-negative safe integer. */
  varuint(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, `varuint out of range: ${value}`);
    this.#reserve(VARINT_BYTES_MAX);
    let rest = value;
    while (rest >= 0x80) {
      this.#buffer[this.#length++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.#buffer[this.#length++] = rest;
  }

  f64(value: number): void {
    this.#reserve(8);
    if (Number.isNaN(value)) {
      this.#view.setUint32(this.#length, 0x7ff8_0000);
      this.#view.setUint32(this.#length + 4, 0);
    } else {
      this.#view.setFloat64(this.#length, value);
    }
    this.#length += 8;
  }

  raw(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /** Length-prefixed bytes. */
  bytes(bytes: Uint8Array): void {
    this.varuint(bytes.length);
    this.raw(bytes);
  }

  /** Length-prefixed WTF-8. */
  string(text: string): void {
    if (text.length >= ENCODE_INTO_CHARS_MIN && ASCII_ONLY.test(text)) {
      // The common case (checkpoints write every stored string): ASCII is its own WTF-8.
      this.varuint(text.length);
      this.#reserve(text.length);
      const written = utf8Encoder.encodeInto(text, this.#buffer.subarray(this.#length, this.#length + text.length)).written;
      assert(written === text.length, 'ASCII encodes one byte per character');
      this.#length += written;
      return;
    }
    const length = wtf8Length(text);
    this.varuint(length);
    this.#reserve(length);
    this.#length = writeWtf8(text, this.#buffer, this.#length);
  }

  value(value: Value): void {
    if (value === null) return this.u8(TAG_NULL);
    switch (typeof value) {
      case 'boolean': return this.u8(value ? TAG_TRUE : TAG_FALSE);
      case 'number': this.u8(TAG_NUMBER); return this.f64(value);
      case 'bigint': this.u8(TAG_BIGINT); return this.#bigint(value);
      case 'string': this.u8(TAG_STRING); return this.string(value);
      case 'object':
        if (value instanceof Uint8Array) {
          this.u8(TAG_BYTES);
          return this.bytes(value);
        }
        this.u8(TAG_JSON);
        return this.string(canonicalJson(value as JsonValue));
      default: assert(false, `not a SQL value: ${typeof value}`);
    }
  }

  #bigint(value: bigint): void {
    const negative = value < 0n;
    let magnitude = negative ? -value : value;
    const digits: number[] = [];
    while (magnitude > 0n) {
      digits.push(Number(magnitude & 0xffn));
      magnitude >>= 8n;
    }
    this.u8(negative ? 1 : 0);
    this.varuint(digits.length);
    this.#reserve(digits.length);
    for (let i = digits.length - 1; i >= 0; i--) this.#buffer[this.#length++] = digits[i] as number;
  }

  /** Everything written (writers without a sink), or the unflushed rest (with a sink). */
  finish(): Uint8Array {
    const out = this.#buffer.slice(0, this.#length);
    if (this.#sink !== undefined) {
      this.#sink(out);
      this.#length = 0;
    }
    return out;
  }

  #reserve(bytes: number): void {
    if (this.#sink !== undefined && this.#length + bytes > WRITER_CHUNK_BYTES && this.#length > 0) {
      this.#sink(this.#buffer.subarray(0, this.#length));
      this.#length = 0;
    }
    const needed = this.#length + bytes;
    if (needed <= this.#buffer.length) return;
    let size = this.#buffer.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
    this.#view = new DataView(grown.buffer);
  }
}

/** Reads what ByteWriter wrote, throwing DecodeError on anything malformed or truncated.
 * @example const r = new ByteReader(bytes); const n = r.varuint(); const v = r.value(); */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset: number;
  readonly #end: number;

  constructor(bytes: Uint8Array, offset = 0, end = bytes.length) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#offset = offset;
    this.#end = end;
  }

  get offset(): number {
    return this.#offset;
  }

  get remaining(): number {
    return this.#end - this.#offset;
  }

  u8(): number {
    this.#need(1);
    return this.#bytes[this.#offset++] as number;
  }

  u32(): number {
    this.#need(4);
    const value = this.#view.getUint32(this.#offset);
    this.#offset += 4;
    return value;
  }

  varuint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) throw new DecodeError('overlong varint');
        if (!Number.isSafeInteger(value)) throw new DecodeError('varint beyond a safe integer');
        return value;
      }
      scale *= 0x80;
    }
    throw new DecodeError('varint too long');
  }

  f64(): number {
    this.#need(8);
    const high = this.#view.getUint32(this.#offset);
    const value = this.#view.getFloat64(this.#offset);
    const low = this.#view.getUint32(this.#offset + 4);
    if (Number.isNaN(value) && (high !== 0x7ff8_0000 || low !== 0)) throw new DecodeError('non-canonical NaN');
    this.#offset += 8;
    return value;
  }

  raw(length: number): Uint8Array {
    this.#need(length);
    const out = this.#bytes.slice(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }

  bytes(): Uint8Array {
    return this.raw(this.varuint());
  }

  string(): string {
    const length = this.varuint();
    this.#need(length);
    const text = readWtf8(this.#bytes, this.#offset, this.#offset + length);
    this.#offset += length;
    return text;
  }

  value(): Value {
    const tag = this.u8();
    switch (tag) {
      case TAG_NULL: return null;
      case TAG_FALSE: return false;
      case TAG_TRUE: return true;
      case TAG_NUMBER: return this.f64();
      case TAG_BIGINT: return this.#bigint();
      case TAG_STRING: return this.string();
      case TAG_BYTES: return this.bytes();
      case TAG_JSON: return this.#json();
      default: throw new DecodeError(`unknown value tag ${tag}`);
    }
  }

  #bigint(): bigint {
    const sign = this.u8();
    if (sign > 1) throw new DecodeError('bad bigint sign');
    const length = this.varuint();
    this.#need(length);
    if (length > 0 && this.#bytes[this.#offset] === 0) throw new DecodeError('non-minimal bigint');
    if (length === 0 && sign === 1) throw new DecodeError('negative zero bigint');
    let magnitude = 0n;
    for (let i = 0; i < length; i++) magnitude = (magnitude << 8n) | BigInt(this.#bytes[this.#offset + i] as number);
    this.#offset += length;
    return sign === 1 ? -magnitude : magnitude;
  }

  #json(): JsonValue {
    const text = this.string();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new DecodeError('malformed JSON value');
    }
    if (parsed === null || typeof parsed !== 'object') throw new DecodeError('JSON tag on a scalar');
    if (canonicalJson(parsed as JsonValue) !== text) throw new DecodeError('non-canonical JSON');
    return parsed as JsonValue;
  }

  #need(bytes: number): void {
    if (bytes > this.#end - this.#offset) throw new DecodeError(`truncated: need ${bytes} bytes at ${this.#offset}`);
  }
}

/** Encodes one value on its own.
 * @example encodeValue(1n) // Uint8Array [4, 0, 1, 1]: tag, sign, length, magnitude */
export function encodeValue(value: Value): Uint8Array {
  const writer = new ByteWriter();
  writer.value(value);
  return writer.finish();
}

/** Decodes exactly one value; malformed or trailing bytes throw DecodeError. */
export function decodeValue(bytes: Uint8Array): Value {
  const reader = new ByteReader(bytes);
  const value = reader.value();
  if (reader.remaining !== 0) throw new DecodeError('trailing bytes after value');
  return value;
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}
function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

function wtf8Length(text: string): number {
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) length += 1;
    else if (unit < 0x800) length += 2;
    else if (isHighSurrogate(unit) && i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1))) {
      length += 4;
      i++;
    } else length += 3;
  }
  return length;
}

function writeWtf8(text: string, out: Uint8Array, start: number): number {
  let at = start;
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code < 0x80) {
      out[at++] = code;
      continue;
    }
    if (code < 0x800) {
      out[at++] = 0xc0 | (code >> 6);
      out[at++] = 0x80 | (code & 0x3f);
      continue;
    }
    if (isHighSurrogate(code) && i + 1 < text.length && isLowSurrogate(text.charCodeAt(i + 1))) {
      code = 0x10000 + ((code - 0xd800) << 10) + (text.charCodeAt(i + 1) - 0xdc00);
      i++;
      out[at++] = 0xf0 | (code >> 18);
      out[at++] = 0x80 | ((code >> 12) & 0x3f);
      out[at++] = 0x80 | ((code >> 6) & 0x3f);
      out[at++] = 0x80 | (code & 0x3f);
      continue;
    }
    out[at++] = 0xe0 | (code >> 12);
    out[at++] = 0x80 | ((code >> 6) & 0x3f);
    out[at++] = 0x80 | (code & 0x3f);
  }
  return at;
}

function continuation(bytes: Uint8Array, at: number, end: number): number {
  if (at >= end) throw new DecodeError('truncated UTF-8 sequence');
  const byte = bytes[at] as number;
  if ((byte & 0xc0) !== 0x80) throw new DecodeError('bad UTF-8 continuation byte');
  return byte & 0x3f;
}

function readWtf8(bytes: Uint8Array, start: number, end: number): string {
  const units: number[] = [];
  let previousWasLoneHigh = false;
  for (let at = start; at < end;) {
    const lead = bytes[at] as number;
    let code: number;
    if (lead < 0x80) {
      code = lead;
      at += 1;
    } else if ((lead & 0xe0) === 0xc0) {
      code = ((lead & 0x1f) << 6) | continuation(bytes, at + 1, end);
      if (code < 0x80) throw new DecodeError('overlong UTF-8');
      at += 2;
    } else if ((lead & 0xf0) === 0xe0) {
      code = ((lead & 0x0f) << 12) | (continuation(bytes, at + 1, end) << 6) | continuation(bytes, at + 2, end);
      if (code < 0x800) throw new DecodeError('overlong UTF-8');
      at += 3;
    } else if ((lead & 0xf8) === 0xf0) {
      code = ((lead & 0x07) << 18) | (continuation(bytes, at + 1, end) << 12) |
        (continuation(bytes, at + 2, end) << 6) | continuation(bytes, at + 3, end);
      if (code < 0x10000 || code > 0x10ffff) throw new DecodeError('UTF-8 code point out of range');
      at += 4;
    } else {
      throw new DecodeError('bad UTF-8 lead byte');
    }
    // A surrogate pair must be written as one 4-byte sequence, never as two 3-byte ones.
    if (previousWasLoneHigh && isLowSurrogate(code)) throw new DecodeError('split surrogate pair');
    previousWasLoneHigh = isHighSurrogate(code);
    if (code >= 0x10000) {
      code -= 0x10000;
      units.push(0xd800 + (code >> 10), 0xdc00 + (code & 0x3ff));
    } else {
      units.push(code);
    }
  }
  let text = '';
  const STRING_CHUNK_UNITS = 8192;
  for (let i = 0; i < units.length; i += STRING_CHUNK_UNITS) {
    text += String.fromCharCode(...units.slice(i, i + STRING_CHUNK_UNITS));
  }
  return text;
}

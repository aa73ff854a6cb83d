import { assert } from '@veritydb/types';

/**
 * Little-endian byte writer/reader for the kernel's canonical encodings (log-entry commands,
 * checkpoint state). Pure: no `node:*` (TextEncoder/TextDecoder are ECMAScript-host globals
 * with identical behaviour everywhere). The reader never trusts its input: every read checks
 * bounds and throws `DecodeFailure`, which decoders turn into `{ ok: false, reason }`.
 */

const UTF8_ENCODER = new TextEncoder();
const UTF8_DECODER = new TextDecoder('utf-8', { fatal: true });

/** Thrown by `ByteReader` on malformed input; caught at the decoding edge, never escapes it. */
export class DecodeFailure extends Error {
  override readonly name = 'DecodeFailure';
}

export class ByteWriter {
  #buffer: Uint8Array;
  #view: DataView;
  #length = 0;

  constructor(capacityBytes = 256) {
    this.#buffer = new Uint8Array(Math.max(16, capacityBytes));
    this.#view = new DataView(this.#buffer.buffer);
  }

  get length(): number {
    return this.#length;
  }

  u8(value: number): this {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xff, `u8 out of range: ${value}`);
    this.#reserve(1);
    this.#buffer[this.#length++] = value;
    return this;
  }

  /** Unsigned LEB128 of a non-negative safe integer (at most 8 bytes for 2^53). */
  varuint(value: number): this {
    assert(Number.isSafeInteger(value) && value >= 0, `varuint must be a non-negative safe integer: ${value}`);
    this.#reserve(8);
    let rest = value;
    while (rest >= 0x80) {
      this.#buffer[this.#length++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.#buffer[this.#length++] = rest;
    return this;
  }

  f64(value: number): this {
    this.#reserve(8);
    this.#view.setFloat64(this.#length, value, true);
    this.#length += 8;
    return this;
  }

  /** A signed arbitrary-size integer: sign byte, then the magnitude's bytes (little endian). */
  bigint(value: bigint): this {
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
    for (const digit of digits) this.#buffer[this.#length++] = digit;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.varuint(value.length);
    this.raw(value);
    return this;
  }

  raw(value: Uint8Array): this {
    this.#reserve(value.length);
    this.#buffer.set(value, this.#length);
    this.#length += value.length;
    return this;
  }

  string(value: string): this {
    return this.bytes(UTF8_ENCODER.encode(value));
  }

  finish(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }

  #reserve(bytes: number): void {
    const needed = this.#length + bytes;
    if (needed <= this.#buffer.length) return;
    let capacity = this.#buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = next;
    this.#view = new DataView(next.buffer);
  }
}

export class ByteReader {
  readonly #buffer: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  constructor(buffer: Uint8Array) {
    this.#buffer = buffer;
    this.#view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  get remaining(): number {
    return this.#buffer.length - this.#offset;
  }

  u8(): number {
    this.#need(1);
    return this.#buffer[this.#offset++] as number;
  }

  varuint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.u8();
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) throw new DecodeFailure('varuint exceeds 2^53');
        if (i > 0 && byte === 0) throw new DecodeFailure('varuint is not minimally encoded');
        return result;
      }
      scale *= 0x80;
    }
    throw new DecodeFailure('varuint longer than 8 bytes');
  }

  f64(): number {
    this.#need(8);
    const value = this.#view.getFloat64(this.#offset, true);
    this.#offset += 8;
    return value;
  }

  bigint(): bigint {
    const sign = this.u8();
    if (sign > 1) throw new DecodeFailure(`bad bigint sign byte ${sign}`);
    const length = this.varuint();
    this.#need(length);
    let magnitude = 0n;
    for (let i = length - 1; i >= 0; i--) magnitude = (magnitude << 8n) | BigInt(this.#buffer[this.#offset + i] as number);
    if (length > 0 && this.#buffer[this.#offset + length - 1] === 0) throw new DecodeFailure('bigint has a leading zero byte');
    this.#offset += length;
    if (sign === 1 && magnitude === 0n) throw new DecodeFailure('negative zero bigint');
    return sign === 1 ? -magnitude : magnitude;
  }

  bytes(): Uint8Array {
    const length = this.varuint();
    return this.raw(length);
  }

  raw(length: number): Uint8Array {
    this.#need(length);
    const out = this.#buffer.slice(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }

  string(): string {
    const bytes = this.bytes();
    try {
      return UTF8_DECODER.decode(bytes);
    } catch {
      throw new DecodeFailure('string is not valid UTF-8');
    }
  }

  /** Asserts the whole input was consumed: trailing bytes mean a different encoding. */
  end(): void {
    if (this.remaining !== 0) throw new DecodeFailure(`${this.remaining} trailing bytes`);
  }

  #need(bytes: number): void {
    if (bytes > this.remaining) throw new DecodeFailure(`truncated: need ${bytes} bytes, have ${this.remaining}`);
  }
}

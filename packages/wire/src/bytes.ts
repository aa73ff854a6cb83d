/**
 * Byte-level helpers for the value encoding (PROTOCOL.md §6): a growable writer and a bounds-
 * checked reader. Varints are LEB128 (7 bits per byte, least significant group first, high bit
 * = more follow); signed integers are zigzag-mapped first. Readers accept only the minimal
 * encoding, so every value has exactly one byte form.
 */
/** Largest magnitude whose zigzag image (2|n|) is still a safe integer. */
const SMALL_MAX = 2n ** 51n;

export class ByteWriter {
  #bytes = new Uint8Array(64);
  #view = new DataView(this.#bytes.buffer);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  u8(value: number): void {
    this.#reserve(1);
    this.#bytes[this.#length++] = value;
  }

  /** Unsigned LEB128 of a non-negative safe integer. */
  uvarint(value: number): void {
    this.#reserve(8);
    let rest = value;
    while (rest >= 0x80) {
      this.#bytes[this.#length++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.#bytes[this.#length++] = rest;
  }

  /** Zigzag + LEB128 of a signed 64-bit integer. */
  varint64(value: bigint): void {
    if (value >= -SMALL_MAX && value <= SMALL_MAX) {
      // Fast path: the zigzag image stays below 2^53, so number arithmetic is exact.
      const n = Number(value);
      this.uvarint(n >= 0 ? n * 2 : -n * 2 - 1);
      return;
    }
    let rest = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
    this.#reserve(10);
    while (rest >= 0x80n) {
      this.#bytes[this.#length++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.#bytes[this.#length++] = Number(rest);
  }

  f64(value: number): void {
    this.#reserve(8);
    this.#view.setFloat64(this.#length, value, false);
    this.#length += 8;
  }

  raw(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#bytes.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /** The written bytes (a copy sized exactly). */
  finish(): Uint8Array {
    return this.#bytes.slice(0, this.#length);
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#bytes.length * 2));
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
    this.#view = new DataView(grown.buffer);
  }
}

/** Thrown by ByteReader on malformed input; callers turn it into a typed decode failure. */
export class MalformedBytes extends Error {
  override readonly name = 'MalformedBytes';
}

export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  get offset(): number {
    return this.#offset;
  }

  u8(): number {
    if (this.#offset >= this.#bytes.length) throw new MalformedBytes(`truncated at byte ${this.#offset}`);
    return this.#bytes[this.#offset++] as number;
  }

  /** Unsigned LEB128, minimal, at most `max` (≤ 2^53 - 1). */
  uvarint(max: number): number {
    const start = this.#offset;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) throw new MalformedBytes(`non-minimal varint at byte ${start}`);
        if (value > max) throw new MalformedBytes(`varint ${value} at byte ${start} exceeds ${max}`);
        return value;
      }
      scale *= 0x80;
    }
    throw new MalformedBytes(`varint too long at byte ${start}`);
  }

  /** Zigzag + LEB128 signed 64-bit integer, minimal. */
  varint64(): bigint {
    const start = this.#offset;
    const small = this.#smallZigzag();
    if (small !== null) return BigInt(small);
    this.#offset = start;
    let value = 0n;
    for (let i = 0; i < 10; i++) {
      const byte = this.u8();
      if (i === 9 && byte > 1) throw new MalformedBytes(`varint overflows 64 bits at byte ${start}`);
      value |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) throw new MalformedBytes(`non-minimal varint at byte ${start}`);
        return (value >> 1n) ^ -(value & 1n);
      }
    }
    throw new MalformedBytes(`varint too long at byte ${start}`);
  }

  /** Fast path of varint64: a minimal varint of at most 7 bytes (< 2^49) decoded with numbers. */
  #smallZigzag(): number | null {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 7 && this.#offset < this.#bytes.length; i++) {
      const byte = this.#bytes[this.#offset++] as number;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) return null;
        return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
      }
      scale *= 0x80;
    }
    return null;
  }

  f64(): number {
    if (this.remaining < 8) throw new MalformedBytes(`truncated float at byte ${this.#offset}`);
    const value = this.#view.getFloat64(this.#offset, false);
    this.#offset += 8;
    return value;
  }

  /** The next `length` bytes as a view (callers copy what they keep). */
  raw(length: number): Uint8Array {
    if (this.remaining < length) throw new MalformedBytes(`truncated: ${length} bytes needed at byte ${this.#offset}`);
    const out = this.#bytes.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return out;
  }
}

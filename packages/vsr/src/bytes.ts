import { assert } from '@veritydb/types';

/** Little-endian fixed-layout writer. Grows as needed; `finish` returns the exact bytes. */
export class ByteWriter {
  #buffer = new Uint8Array(256);
  #view = new DataView(this.#buffer.buffer);
  #offset = 0;

  get offset(): number { return this.#offset; }

  #reserve(size: number): void {
    if (this.#offset + size <= this.#buffer.length) return;
    let length = this.#buffer.length * 2;
    while (length < this.#offset + size) length *= 2;
    const next = new Uint8Array(length);
    next.set(this.#buffer.subarray(0, this.#offset));
    this.#buffer = next;
    this.#view = new DataView(next.buffer);
  }

  u8(value: number): this {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xff, `u8 out of range: ${value}`);
    this.#reserve(1); this.#view.setUint8(this.#offset, value); this.#offset += 1; return this;
  }
  u16(value: number): this {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xffff, `u16 out of range: ${value}`);
    this.#reserve(2); this.#view.setUint16(this.#offset, value, true); this.#offset += 2; return this;
  }
  u32(value: number): this {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff, `u32 out of range: ${value}`);
    this.#reserve(4); this.#view.setUint32(this.#offset, value, true); this.#offset += 4; return this;
  }
  /** A non-negative safe integer stored as u64. */
  u64(value: number): this {
    assert(Number.isSafeInteger(value) && value >= 0, `u64 out of safe range: ${value}`);
    this.#reserve(8); this.#view.setBigUint64(this.#offset, BigInt(value), true); this.#offset += 8; return this;
  }
  u128(value: bigint): this {
    assert(value >= 0n && value < 1n << 128n, `u128 out of range: ${value}`);
    this.#reserve(16);
    this.#view.setBigUint64(this.#offset, value & 0xffff_ffff_ffff_ffffn, true);
    this.#view.setBigUint64(this.#offset + 8, value >> 64n, true);
    this.#offset += 16; return this;
  }
  bytes(value: Uint8Array): this {
    this.#reserve(value.length); this.#buffer.set(value, this.#offset); this.#offset += value.length; return this;
  }
  /** Overwrites a u32 already written (sizes known only at the end). */
  patchU32(at: number, value: number): void {
    assert(at + 4 <= this.#offset, 'patch inside written bytes');
    this.#view.setUint32(at, value, true);
  }
  finish(): Uint8Array { return this.#buffer.slice(0, this.#offset); }
}

/** Thrown by `ByteReader` when input ends early or a field is out of range; caught at the codec edge. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

/** Little-endian reader over untrusted bytes: every read is bounds-checked. */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset: number;

  constructor(bytes: Uint8Array, offset = 0) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#offset = offset;
  }

  get remaining(): number { return this.#bytes.length - this.#offset; }

  #need(size: number): void {
    if (this.#offset + size > this.#bytes.length) throw new DecodeError(`truncated: need ${size} at ${this.#offset}`);
  }
  u8(): number { this.#need(1); const v = this.#view.getUint8(this.#offset); this.#offset += 1; return v; }
  u16(): number { this.#need(2); const v = this.#view.getUint16(this.#offset, true); this.#offset += 2; return v; }
  u32(): number { this.#need(4); const v = this.#view.getUint32(this.#offset, true); this.#offset += 4; return v; }
  u64(): number {
    this.#need(8);
    const v = this.#view.getBigUint64(this.#offset, true);
    this.#offset += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError(`u64 beyond safe integer: ${v}`);
    return Number(v);
  }
  u128(): bigint {
    this.#need(16);
    const low = this.#view.getBigUint64(this.#offset, true);
    const high = this.#view.getBigUint64(this.#offset + 8, true);
    this.#offset += 16;
    return (high << 64n) | low;
  }
  bytes(length: number): Uint8Array {
    this.#need(length);
    const v = this.#bytes.slice(this.#offset, this.#offset + length);
    this.#offset += length;
    return v;
  }
}

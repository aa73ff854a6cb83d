import { assert } from '@veritydb/types';

/** Little-endian field helpers over a DataView. u64 fields hold safe integers in memory. */

const TWO_32 = 0x1_0000_0000;

export function writeU64(view: DataView, offset: number, value: number): void {
  // Hot path: build the message only on failure.
  if (!(Number.isSafeInteger(value) && value >= 0)) assert(false, `u64 field must be a non-negative safe integer, got ${value}`);
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_32), true);
}

/** Reads a u64; returns -1 when it does not fit in a safe integer (callers reject it). */
export function readU64(view: DataView, offset: number): number {
  const low = view.getUint32(offset, true);
  const high = view.getUint32(offset + 4, true);
  if (high >= 0x20_0000) return -1;
  return high * TWO_32 + low;
}

export function writeU128(view: DataView, offset: number, value: bigint): void {
  view.setBigUint64(offset, value & 0xffff_ffff_ffff_ffffn, true);
  view.setBigUint64(offset + 8, value >> 64n, true);
}

export function readU128(view: DataView, offset: number): bigint {
  return view.getBigUint64(offset, true) | (view.getBigUint64(offset + 8, true) << 64n);
}

export function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/** A growable byte buffer reused across group commits (no allocation in steady state). */
export class ByteBuilder {
  #buffer: Uint8Array;
  #length = 0;

  constructor(initialBytes: number) {
    this.#buffer = new Uint8Array(initialBytes);
  }

  get length(): number {
    return this.#length;
  }

  /** Reserves `bytes` at the end and returns the backing buffer and the offset to write at. */
  reserve(bytes: number): { buffer: Uint8Array; offset: number } {
    const needed = this.#length + bytes;
    if (needed > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    const offset = this.#length;
    this.#length = needed;
    return { buffer: this.#buffer, offset };
  }

  bytes(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }

  reset(): void {
    this.#length = 0;
  }
}
